/* engine_file.c — file transfer: the commands (sendfile, accept, reject,
 * cancel, transfers), each transfer's state machine, its frames on the
 * links (file_frame.h), its disk work on the thread pool (file_io.h) and
 * its "transfer" events; its row in the database is engine_file_db.c's.
 *
 * Every transfer is driven by one function, step(), called after anything
 * happens to it: a frame, a link up or down, a finished job, a command.
 * A transfer has at most one job on the thread pool at a time (busy),
 * besides a sync (syncing) and, for a receiver, the hash of the bytes
 * written (hashing): the hash, the slowest stage, runs beside the writes
 * and the loop that opens the next chunks. Its generation (gen) is raised
 * when what the job was for is gone (a link dropped, a resume), and the
 * job's result is then thrown away (not a write's or a hash's: the bytes
 * are on the disk, or in the hash state, whatever became of the link).
 * Transfers live until the engine is freed (after the loop has ended, so
 * no job can outlive one). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "engine_file.h"
#include "engine_internal.h"
#include "hychat/file_frame.h"
#include "hychat/file_io.h"
#include "hychat/file_name.h"
#include "hychat/log.h"
#include "hychat/settings.h"
#include "hychat/util.h"

#define XFER_NAME(e, name) name,
const char *const engine_file_state_names[XFER_STATE_COUNT] = { XFER_STATES(XFER_NAME) };
#undef XFER_NAME

enum job_kind {
	JOB_HASH,
	JOB_READ,
	JOB_CREATE,
	JOB_OPEN,
	JOB_WRITE,
	JOB_HASH_UPDATE, /* beside the writes: the next batch into x's hash */
	JOB_SYNC, /* beside the writes: fdatasync, then the sidecar */
	JOB_FINISH,
	JOB_REMOVE
};

struct job {
	uv_work_t req;
	struct engine_xfer *x;
	enum job_kind kind;
	unsigned gen;
	int rc, fd;
	char err[FILE_IO_ERR_MAX];
	/* Inputs, copied. */
	char *path, *part, *id;
	char *dest, *name; /* JOB_CREATE: accept's PATH (may be NULL) and the name */
	uint64_t off, size;
	uint64_t end; /* JOB_WRITE: off + the bytes written */
	uint8_t hash[FILE_IO_HASH_BYTES];
	struct buf data; /* JOB_READ out */
	struct file_batch *batch; /* JOB_WRITE, JOB_HASH_UPDATE in (x's, in its bq) */
	crypto_generichash_state *hs; /* JOB_HASH_UPDATE, JOB_FINISH: x's, when valid */
	/* Outputs. */
	struct file_io_stat st;
	char *result; /* JOB_CREATE: the .part; JOB_FINISH: the final path */
	char *target; /* JOB_CREATE: where the file is to land */
};

static void step(struct engine_xfer *x);

/* Events. */

static struct json_object *
xfer_json(struct engine_xfer *x, enum event_type type)
{
	struct json_object *o = type == EVENT_COUNT ? json_object_new_object() : event_new(type);

	event_add_str(o, "id", x->id);
	event_add_str(o, "peer", x->peer);
	event_add_str(o, "name", x->name);
	event_add_str(o, "direction", x->out ? "out" : "in");
	event_add_str(o, "state", engine_file_state_names[x->state]);
	event_add_int(o, "bytes", (long long)x->bytes);
	event_add_int(o, "size", (long long)x->size);
	event_add_int(o, "rate", (long long)x->rate);
	if (x->hash_hex[0] != '\0')
		event_add_str(o, "hash", x->hash_hex);
	if (x->path != NULL)
		event_add_str(o, "path", x->path);
	if (x->error != NULL)
		event_add_str(o, "error", x->error);
	return o;
}

static void
emit(struct engine_xfer *x)
{
	uint64_t now = hy_now_ms();

	if (now - x->rate_ms >= FILE_RATE_MS / 4) {
		if (x->rate_ms != 0 && x->bytes >= x->rate_bytes)
			x->rate =
			    (x->rate + (x->bytes - x->rate_bytes) * 1000 / (now - x->rate_ms)) / 2;
		x->rate_ms = now;
		x->rate_bytes = x->bytes;
	}
	if (engine_file_terminal(x->state) || x->state == XFER_PAUSED)
		x->rate = 0;
	x->last_emit_ms = now;
	event_emit(&x->e->bus, xfer_json(x, EVENT_TRANSFER));
}

static void
progress(struct engine_xfer *x)
{
	if (hy_now_ms() - x->last_emit_ms >= ENGINE_FILE_PROGRESS_MS)
		emit(x);
}

static void
set_state(struct engine_xfer *x, enum xfer_state s, const char *error)
{
	if (x->state == s && error == NULL)
		return;
	x->state = s;
	free(x->error);
	x->error = error != NULL ? xstrdup(error) : NULL;
	engine_file_save(x);
	emit(x);
}

/* Frames. */

static int
link_up(struct engine_xfer *x)
{
	return x->e->net != NULL && p2p_net_link_state(x->e->net, x->peer) == 1;
}

static void
send_frame(struct engine_xfer *x, struct file_frame *f)
{
	struct buf b;

	if (!link_up(x))
		return;
	memcpy(f->id, x->idb, sizeof(f->id));
	buf_init(&b);
	if (file_frame_put(&b, f) == 0 && p2p_net_send(x->e->net, x->peer, b.data, b.len) == 1)
		engine_ordered(x->e); /* a transfer's state, stored this turn */
	buf_fini(&b);
}

static void
send_simple(struct engine_xfer *x, enum file_frame_type type, uint64_t offset, const char *text)
{
	struct file_frame f = { .type = type, .offset = offset };

	if (text != NULL) {
		f.text = text;
		f.text_len =
		    strlen(text) > FILE_FRAME_REASON_MAX ? FILE_FRAME_REASON_MAX : strlen(text);
	}
	send_frame(x, &f);
}

/* Ends x here and tells the peer (a reason: failed; none: cancelled). */
static void
stop(struct engine_xfer *x, enum xfer_state s, const char *error, int tell)
{
	if (engine_file_terminal(x->state))
		return;
	if (tell)
		send_simple(x, s == XFER_REJECTED ? FILE_REJECT : FILE_CANCEL, 0,
		    error != NULL ? error : "");
	x->gen++;
	if (x->open != NULL)
		x->open->data.len = 0;
	buf_consume(&x->rbuf, x->rbuf.len);
	set_state(x, s, error);
	step(x);
}

/* Jobs. */

/* Where an accepted file lands: accept's PATH, a directory (made if it
 * is the download directory) or a file, and its .part beside it. */
static int
create_part(struct job *j)
{
	struct buf t;
	struct stat sb;
	char *dir = NULL;
	size_t n = j->dest != NULL ? strlen(j->dest) : 0;

	buf_init(&t);
	if (n == 0) {
		if ((dir = file_io_download_dir()) == NULL) {
			snprintf(
			    j->err, sizeof(j->err), "no download directory: set HOME or give PATH");
			return -1;
		}
		if (file_io_mkdirs(dir, j->err) < 0) {
			free(dir);
			return -1;
		}
		buf_printf(&t, "%s/%s", dir, j->name);
		free(dir);
	} else if (j->dest[n - 1] == '/' || (stat(j->dest, &sb) == 0 && S_ISDIR(sb.st_mode))) {
		buf_printf(&t, "%s%s%s", j->dest, j->dest[n - 1] == '/' ? "" : "/", j->name);
	} else {
		buf_append_str(&t, j->dest);
	}
	j->target = t.data;
	j->fd = file_io_part_create(j->target, j->size, j->id, j->hash, &j->result, j->err);
	return j->fd >= 0 ? 0 : -1;
}

static void
job_work(uv_work_t *req)
{
	struct job *j = req->data;

	switch (j->kind) {
	case JOB_HASH:
		if (j->fd >= 0)
			close(j->fd);
		j->fd = file_io_hash(j->path, &j->st, j->err);
		j->rc = j->fd >= 0 ? 0 : -1;
		break;
	case JOB_READ:
		buf_reserve(&j->data, (size_t)j->size);
		j->rc =
		    file_io_read(j->fd, j->off, (uint8_t *)j->data.data, (size_t)j->size, j->err);
		j->data.len = j->rc == 0 ? (size_t)j->size : 0;
		break;
	case JOB_CREATE: j->rc = create_part(j); break;
	case JOB_OPEN:
		j->fd = file_io_part_open(j->part, j->size, j->id, j->hash, &j->off, j->err);
		j->rc = j->fd >= 0 ? 0 : -1;
		break;
	case JOB_WRITE:
		j->rc = file_io_write(j->fd, j->batch->off, (const uint8_t *)j->batch->data.data,
		    j->batch->data.len, j->err);
		break;
	case JOB_HASH_UPDATE:
		crypto_generichash_update(
		    j->hs, (const uint8_t *)j->batch->data.data, j->batch->data.len);
		j->rc = 0;
		break;
	case JOB_SYNC:
		j->rc = file_io_sync(
		    j->fd, j->part, j->size, j->id, j->hash, j->off + j->data.len, j->err);
		break;
	case JOB_FINISH:
		j->rc = file_io_finish(
		    j->fd, j->part, j->path, j->size, j->hash, j->hs, &j->result, j->err);
		break;
	case JOB_REMOVE:
		if (j->fd >= 0)
			close(j->fd);
		if (j->part != NULL)
			file_io_remove(j->part);
		j->rc = 0;
		break;
	}
}

static void job_done(uv_work_t *req, int status);

/* A descriptor closed on the thread pool, apart from any transfer's jobs:
 * close(2) of a file just written may flush it (ext4 does after a
 * truncate; network file systems always), and the loop must not wait. */
struct closer {
	uv_work_t req;
	int fd;
};

static void
closer_work(uv_work_t *req)
{
	struct closer *c = req->data;

	close(c->fd);
}

static void
closer_done(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void
close_later(struct engine *e, int fd)
{
	struct closer *c;

	if (fd < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->req.data = c;
	if (uv_queue_work(e->loop, &c->req, closer_work, closer_done) != 0) {
		close(fd); /* cannot happen with a valid loop */
		free(c);
	}
}

/* Batches. */

static struct file_batch *
batch_get(struct engine_xfer *x)
{
	struct file_batch *b = x->spares;

	if (b != NULL) {
		x->spares = b->next;
		x->nspares--;
	} else {
		b = xcalloc(1, sizeof(*b));
		buf_init(&b->data);
		buf_reserve(&b->data, FILE_BATCH + FILE_FRAME_CHUNK_MAX);
	}
	b->next = NULL;
	b->data.len = 0;
	b->written = b->hashed = 0;
	return b;
}

static void
batch_put(struct engine_xfer *x, struct file_batch *b)
{
	if (x->nspares < FILE_SPARES && !engine_file_terminal(x->state)) {
		b->next = x->spares;
		x->spares = b;
		x->nspares++;
		return;
	}
	buf_fini(&b->data);
	free(b);
}

static void
batch_list_free(struct file_batch *b)
{
	while (b != NULL) {
		struct file_batch *next = b->next;
		buf_fini(&b->data);
		free(b);
		b = next;
	}
}

/* Every batch x holds, when no job holds any. */
static void
batches_free(struct engine_xfer *x)
{
	batch_list_free(x->open);
	batch_list_free(x->bq);
	batch_list_free(x->spares);
	x->open = x->bq = x->spares = x->wnext = x->hnext = NULL;
	x->bq_tail = &x->bq;
	x->nspares = 0;
}

/* The open batch goes to the lanes. */
static void
batch_close(struct engine_xfer *x)
{
	struct file_batch *b = x->open;

	if (b == NULL || b->data.len == 0)
		return;
	x->open = NULL;
	b->off = x->q_off;
	x->q_off += b->data.len;
	*x->bq_tail = b;
	x->bq_tail = &b->next;
	if (x->wnext == NULL)
		x->wnext = b;
	if (x->hnext == NULL && x->hs_ok)
		x->hnext = b;
}

/* A lane finished a batch: those both lanes are done with leave. */
static void
batches_trim(struct engine_xfer *x)
{
	struct file_batch *b;

	while ((b = x->bq) != NULL && b->written && (b->hashed || !x->hs_ok)) {
		if ((x->bq = b->next) == NULL)
			x->bq_tail = &x->bq;
		batch_put(x, b);
	}
}

/* A receiver's bytes: written, and hashed when the hash follows them. */
static void
advance(struct engine_xfer *x)
{
	x->bytes = x->hs_ok && x->hashed < x->written ? x->hashed : x->written;
}

static struct job *
job_new(struct engine_xfer *x, enum job_kind kind)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->x = x;
	j->kind = kind;
	j->gen = x->gen;
	j->fd = x->fd;
	j->req.data = j;
	j->path = x->path != NULL ? xstrdup(x->path) : NULL;
	j->part = x->part != NULL ? xstrdup(x->part) : NULL;
	j->id = xstrdup(x->id);
	j->size = x->size;
	memcpy(j->hash, x->hash, sizeof(j->hash));
	buf_init(&j->data);
	return j;
}

static void
job_start(struct job *j)
{
	struct engine_xfer *x = j->x;

	/* These close x's descriptor (and JOB_HASH opens another): it is the
	 * job's from now on. */
	if (j->kind == JOB_HASH || j->kind == JOB_FINISH || j->kind == JOB_REMOVE)
		x->fd = -1;
	if (j->kind == JOB_SYNC)
		x->syncing = 1;
	else if (j->kind == JOB_HASH_UPDATE)
		x->hashing = 1;
	else
		x->busy = 1;
	if (uv_queue_work(x->e->loop, &j->req, job_work, job_done) != 0) {
		job_work(&j->req); /* cannot happen with a valid loop; stay correct */
		job_done(&j->req, 0);
	}
}

static void
job_free(struct job *j)
{
	free(j->path);
	free(j->part);
	free(j->id);
	free(j->result);
	free(j->target);
	free(j->dest);
	free(j->name);
	buf_fini(&j->data);
	free(j);
}

/* What a sender's finished job means. */
static void
sender_done(struct engine_xfer *x, struct job *j)
{
	switch (j->kind) {
	case JOB_HASH:
		x->fd = j->fd;
		if (j->rc < 0) {
			stop(x, XFER_FAILED, j->err, 1);
			return;
		}
		if (x->checked &&
		    (j->st.size != x->size || j->st.mtime_ns != x->mtime_ns ||
		        sodium_memcmp(j->st.hash, x->hash, sizeof(x->hash)) != 0)) {
			stop(x, XFER_FAILED,
			    "the file changed since it was offered (size, time or content)", 1);
			return;
		}
		if (!x->checked) { /* the first hash, for the offer */
			x->size = j->st.size;
			x->mtime_ns = j->st.mtime_ns;
			memcpy(x->hash, j->st.hash, sizeof(x->hash));
			sodium_bin2hex(x->hash_hex, sizeof(x->hash_hex), x->hash, sizeof(x->hash));
			x->checked = 1;
			x->need_check = 0;
			set_state(x, XFER_OFFERED, NULL);
			if (x->e->net != NULL)
				p2p_net_dial(x->e->net, x->peer, 1);
			return;
		}
		x->need_check = 0;
		set_state(x, link_up(x) ? XFER_SENDING : XFER_PAUSED, NULL);
		return;
	case JOB_READ:
		if (j->rc < 0) {
			stop(x, XFER_FAILED, j->err, 1);
			return;
		}
		x->rspare = x->rbuf; /* swapped: no copy */
		x->rspare.len = 0;
		x->rbuf = j->data;
		buf_init(&j->data);
		x->rbuf_off = j->off;
		return;
	default: return;
	}
}

/* Acknowledges what came off the link while little waits for the disk. */
static void
ack(struct engine_xfer *x)
{
	if (x->expect > x->acked_out && x->expect - x->bytes <= FILE_RECV_QUEUE && link_up(x) &&
	    x->state == XFER_RECEIVING) {
		x->acked_out = x->expect;
		send_simple(x, FILE_ACK, x->expect, NULL);
	}
}

static void
receiver_done(struct engine_xfer *x, struct job *j)
{
	switch (j->kind) {
	case JOB_CREATE:
		if (j->rc < 0) {
			/* The offer stands: accept somewhere else, or reject. */
			event_error(&x->e->bus, "accept %s: %s", x->id, j->err);
			set_state(x, XFER_OFFERED, NULL);
			return;
		}
		x->fd = j->fd;
		free(x->part);
		x->part = j->result;
		j->result = NULL;
		free(x->path);
		x->path = j->target;
		j->target = NULL;
		x->bytes = x->synced = x->expect = x->written = x->hashed = 0;
		crypto_generichash_init(&x->hs, NULL, 0, FILE_IO_HASH_BYTES);
		x->hs_ok = 1;
		x->want_resume = 1;
		engine_file_save(x);
		return;
	case JOB_OPEN:
		if (j->rc < 0) {
			stop(x, XFER_FAILED, j->err, 1);
			return;
		}
		x->fd = j->fd;
		x->need_open = 0;
		x->bytes = x->synced = x->expect = x->written = x->hashed = j->off;
		x->hs_ok = 0; /* the hash of what an earlier run wrote is read back at the end */
		x->want_resume = 1;
		return;
	case JOB_WRITE:
		if (j->rc < 0) {
			stop(x, XFER_FAILED, j->err, 1);
			return;
		}
		x->written = j->end;
		j->batch->written = 1;
		batches_trim(x);
		advance(x);
		ack(x);
		progress(x);
		return;
	case JOB_FINISH:
		x->fd = -1;
		if (j->rc < 0) {
			stop(x, XFER_FAILED, j->err, 1);
			return;
		}
		free(x->path);
		x->path = j->result;
		j->result = NULL;
		send_simple(x, FILE_DONE, 0, NULL);
		set_state(x, XFER_DONE, NULL);
		return;
	default: return;
	}
}

static void
job_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct engine_xfer *x = j->x;

	if (j->kind == JOB_SYNC) {
		/* Synced and recorded, whatever became of the link. */
		x->syncing = 0;
		if (j->rc < 0 && !engine_file_terminal(x->state))
			stop(x, XFER_FAILED, j->err, 1);
		else if (j->rc == 0 && j->off > x->synced)
			x->synced = j->off;
		job_free(j);
		step(x);
		return;
	}
	if (j->kind == JOB_HASH_UPDATE) {
		/* Hashed, whatever became of the link (as a write). */
		x->hashing = 0;
		if (!engine_file_terminal(x->state)) {
			x->hashed = j->end;
			j->batch->hashed = 1;
			batches_trim(x);
			advance(x);
			ack(x);
			progress(x);
		}
		job_free(j);
		step(x);
		return;
	}
	x->busy = 0;
	if (j->kind != JOB_WRITE)
		j->end = j->off + j->data.len;
	if (j->kind == JOB_READ && x->rspare.data == NULL && !engine_file_terminal(x->state) &&
	    (j->gen != x->gen || j->rc < 0)) {
		x->rspare = j->data;
		x->rspare.len = 0;
		buf_init(&j->data);
	}
	/* A write happened, whatever became of the link: x must know it (its
	 * hash state has seen the bytes). Any other job that went stale is
	 * dropped, with what it opened. */
	if (j->kind != JOB_REMOVE && j->kind != JOB_FINISH &&
	    (j->kind != JOB_WRITE || engine_file_terminal(x->state)) &&
	    (j->gen != x->gen || engine_file_terminal(x->state))) {
		if (j->kind == JOB_HASH || j->kind == JOB_OPEN || j->kind == JOB_CREATE)
			close_later(x->e, j->fd);
		if (j->kind == JOB_CREATE && j->result != NULL) {
			free(x->part);
			x->part = j->result;
			j->result = NULL;
		}
		job_free(j);
		step(x);
		return;
	}
	if (status == 0) {
		if (x->out)
			sender_done(x, j);
		else
			receiver_done(x, j);
	}
	job_free(j);
	step(x);
}

/* The driver. */

static void
send_chunks(struct engine_xfer *x)
{
	while (
	    x->send_off < x->size && x->send_off - x->bytes < x->window && x->ring_n < FILE_RING) {
		size_t len;
		struct file_frame f = { .type = FILE_CHUNK };
		int rc;

		if (x->send_off < x->rbuf_off || x->send_off >= x->rbuf_off + x->rbuf.len) {
			struct job *j;
			uint64_t want = x->size - x->send_off;
			if (x->busy)
				return;
			j = job_new(x, JOB_READ);
			j->off = x->send_off;
			j->size = want < FILE_READ_BATCH ? want : FILE_READ_BATCH;
			j->data = x->rspare; /* reserved here: the worker allocates nothing */
			buf_init(&x->rspare);
			j->data.len = 0;
			buf_reserve(&j->data, FILE_READ_BATCH);
			job_start(j);
			return;
		}
		len = (size_t)(x->rbuf_off + x->rbuf.len - x->send_off);
		if (len > FILE_FRAME_CHUNK_MAX)
			len = FILE_FRAME_CHUNK_MAX;
		f.offset = x->send_off;
		f.data = (const uint8_t *)x->rbuf.data + (x->send_off - x->rbuf_off);
		f.data_len = len;
		memcpy(f.id, x->idb, sizeof(f.id));
		x->fbuf.len = 0;
		file_frame_put(&x->fbuf, &f);
		rc = p2p_net_send_bulk(
		    x->e->net, x->peer, (const uint8_t *)x->fbuf.data, x->fbuf.len);
		if (rc != 1)
			return; /* the link is gone or full: "down" follows */
		x->send_off += len;
		x->ring_end[(x->ring_head + x->ring_n) % FILE_RING] = x->send_off;
		x->ring_ms[(x->ring_head + x->ring_n) % FILE_RING] = hy_now_ms();
		x->ring_n++;
	}
}

/* The receiver acknowledged up to offset: the window follows the delay. */
static void
take_ack(struct engine_xfer *x, uint64_t offset)
{
	uint64_t sent_ms = 0;

	while (x->ring_n > 0 && x->ring_end[x->ring_head] <= offset) {
		sent_ms = x->ring_ms[x->ring_head];
		x->ring_head = (x->ring_head + 1) % FILE_RING;
		x->ring_n--;
	}
	if (sent_ms != 0) {
		uint64_t now = hy_now_ms();
		if (now - sent_ms <= FILE_DELAY_TARGET_MS) {
			if (x->window + FILE_FRAME_CHUNK_MAX <= FILE_WINDOW)
				x->window += FILE_FRAME_CHUNK_MAX;
		} else if (now - x->shrunk_ms >= FILE_DELAY_TARGET_MS) {
			/* Once a target: the chunks acked next were sent before. */
			x->shrunk_ms = now;
			x->window = x->window * 3 / 4 > FILE_WINDOW_MIN ? x->window * 3 / 4
			                                                : FILE_WINDOW_MIN;
		}
	}
	x->bytes = offset;
}

static void
step_sender(struct engine_xfer *x)
{
	struct engine *e = x->e;

	if (x->busy || e->stopping)
		return;
	if (x->need_check) {
		job_start(job_new(x, JOB_HASH));
		return;
	}
	if ((x->state == XFER_OFFERED || x->state == XFER_PAUSED) && !x->offer_sent && link_up(x)) {
		struct file_frame f = { .type = FILE_OFFER, .offset = x->size, .hash = x->hash };
		f.text = x->name;
		f.text_len = strlen(x->name);
		send_frame(x, &f);
		x->offer_sent = 1;
	}
	if (x->state == XFER_SENDING && link_up(x))
		send_chunks(x);
}

/* The lanes take their next batches, each lane one job at a time. */
static void
lanes_next(struct engine_xfer *x)
{
	struct file_batch *b;
	struct job *j;

	if (!x->hashing && (b = x->hnext) != NULL) {
		x->hnext = b->next;
		j = job_new(x, JOB_HASH_UPDATE);
		j->batch = b;
		j->off = b->off;
		j->end = b->off + b->data.len;
		j->hs = &x->hs;
		job_start(j);
	}
	if (!x->busy && !x->e->stopping && (b = x->wnext) != NULL) {
		x->wnext = b->next;
		j = job_new(x, JOB_WRITE);
		j->batch = b;
		j->off = b->off;
		j->end = b->off + b->data.len;
		job_start(j);
	}
}

/* Nothing received waits for the disk or the hash. */
static int
lanes_idle(const struct engine_xfer *x)
{
	return x->bq == NULL && (x->open == NULL || x->open->data.len == 0) && !x->busy &&
	    !x->hashing;
}

static void
step_receiver(struct engine_xfer *x)
{
	struct engine *e = x->e;
	struct job *j;

	if (!x->syncing && x->fd >= 0 && x->bytes > x->synced &&
	    (x->bytes - x->synced >= FILE_SYNC_EVERY || x->need_sync || e->stopping)) {
		j = job_new(x, JOB_SYNC);
		j->off = x->bytes;
		x->need_sync = 0;
		job_start(j);
	}
	/* A batch shorter than FILE_BATCH goes when both lanes are idle (no
	 * more comes for now, or it is the end). */
	if (x->open != NULL && x->wnext == NULL && x->hnext == NULL && !x->busy && !x->hashing)
		batch_close(x);
	if (x->fd >= 0)
		lanes_next(x);
	if (x->busy || e->stopping)
		return;
	if (x->state == XFER_ACCEPTED && x->fd < 0 && x->part == NULL && !x->need_open) {
		j = job_new(x, JOB_CREATE);
		j->dest = x->dest != NULL ? xstrdup(x->dest) : NULL;
		j->name = xstrdup(x->name);
		job_start(j);
		return;
	}
	if (x->need_open && x->fd < 0 && x->part != NULL) {
		if (!link_up(x))
			return; /* opened when the sender is there to resume */
		job_start(job_new(x, JOB_OPEN));
		return;
	}
	if (x->fd < 0)
		return;
	if (!lanes_idle(x))
		return; /* the end, or a resume, once the lanes have caught up */
	if (x->syncing)
		return; /* the end, or a resume, after the sync under way */
	if (x->state == XFER_RECEIVING && x->bytes == x->size && x->expect == x->size) {
		set_state(x, XFER_VERIFYING, NULL);
		j = job_new(x, JOB_FINISH);
		j->hs = x->hs_ok ? &x->hs : NULL;
		job_start(j);
		return;
	}
	if (x->want_resume && link_up(x)) {
		x->want_resume = 0;
		x->expect = x->q_off = x->acked_out = x->bytes;
		set_state(x, XFER_RECEIVING, NULL);
		send_simple(x, FILE_ACCEPT, x->bytes, NULL);
		if (x->bytes == x->size)
			step(x);
	}
}

static void
step(struct engine_xfer *x)
{
	if (engine_file_terminal(x->state)) {
		if (x->busy || x->syncing || x->hashing || x->cleaned)
			return;
		x->cleaned = 1;
		buf_fini(&x->rbuf);
		buf_fini(&x->rspare);
		batches_free(x);
		buf_fini(&x->fbuf);
		if (!x->out && x->state != XFER_DONE && (x->fd >= 0 || x->part != NULL)) {
			job_start(job_new(x, JOB_REMOVE));
			return;
		}
		close_later(x->e, x->fd);
		x->fd = -1;
		return;
	}
	if (x->out)
		step_sender(x);
	else
		step_receiver(x);
}

/* Lookups. */

static struct engine_xfer *
find_id(struct engine *e, const uint8_t id[FILE_FRAME_ID_BYTES])
{
	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		if (memcmp(x->idb, id, FILE_FRAME_ID_BYTES) == 0)
			return x;
	return NULL;
}

/* The transfer an id or a unique prefix of one names; an error event if
 * none or several. */
static struct engine_xfer *
find(struct engine *e, const char *id, const char *what)
{
	struct engine_xfer *found = NULL;
	size_t n = strlen(id);
	int count = 0;

	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next) {
		if (strcmp(x->id, id) == 0)
			return x;
		if (n >= ENGINE_FILE_ID_PREFIX && strncmp(x->id, id, n) == 0) {
			found = x;
			count++;
		}
	}
	if (count == 1)
		return found;
	event_error(&e->bus, "%s: %s transfer \"%.40s\": /transfers lists them", what,
	    count > 1 ? "more than one" : "no", id);
	return NULL;
}

static int
running(struct engine *e)
{
	int n = 0;

	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		n += !engine_file_terminal(x->state);
	return n;
}

struct engine_xfer *
engine_file_xfer_new(struct engine *e, const char *peer, int out)
{
	struct engine_xfer *x = xcalloc(1, sizeof(*x));

	x->e = e;
	x->fd = -1;
	x->window = FILE_WINDOW_START;
	x->out = out;
	snprintf(x->peer, sizeof(x->peer), "%s", peer);
	buf_init(&x->rbuf);
	x->bq_tail = &x->bq;
	x->next = e->xfers;
	e->xfers = x;
	return x;
}

void
engine_file_set_id(struct engine_xfer *x, const uint8_t id[FILE_FRAME_ID_BYTES])
{
	memcpy(x->idb, id, FILE_FRAME_ID_BYTES);
	sodium_bin2hex(x->id, sizeof(x->id), id, FILE_FRAME_ID_BYTES);
}

/* Commands. */

int
engine_sendfile(struct engine *e, const char *user, const char *path)
{
	const char *base = strrchr(path, '/'), *why;
	struct engine_xfer *x;
	uint8_t id[FILE_FRAME_ID_BYTES];
	long max = settings_get_int(e->settings, SETTING_MAX_TRANSFERS);

	base = base != NULL ? base + 1 : path;
	if (!hy_name_valid(user, strlen(user)) || strcmp(user, e->username) == 0) {
		event_error(&e->bus, "sendfile: \"%.40s\" is not another user", user);
		return -1;
	}
	if (file_name_check(base, strlen(base), &why) < 0) {
		event_error(&e->bus, "sendfile: %s: %s", path, why);
		return -1;
	}
	if (running(e) >= max) {
		event_error(&e->bus, "sendfile: %ld transfers are running (max-transfers)", max);
		return -1;
	}
	x = engine_file_xfer_new(e, user, 1);
	randombytes_buf(id, sizeof(id));
	engine_file_set_id(x, id);
	x->path = xstrdup(path);
	x->name = xstrdup(base);
	x->need_check = 1;
	x->state = XFER_VERIFYING;
	emit(x);
	step(x);
	return 0;
}

int
engine_file_accept(struct engine *e, const char *id, const char *path)
{
	struct engine_xfer *x = find(e, id, "accept");

	if (x == NULL)
		return -1;
	if (x->out || x->state != XFER_OFFERED) {
		event_error(&e->bus, "accept: %s is not an offer waiting for an answer", x->id);
		return -1;
	}
	if (running(e) > settings_get_int(e->settings, SETTING_MAX_TRANSFERS)) {
		event_error(&e->bus, "accept: too many transfers running (max-transfers)");
		return -1;
	}
	free(x->dest);
	x->dest = path != NULL ? xstrdup(path) : NULL;
	set_state(x, XFER_ACCEPTED, NULL);
	step(x);
	return 0;
}

int
engine_file_reject(struct engine *e, const char *id)
{
	struct engine_xfer *x = find(e, id, "reject");

	if (x == NULL)
		return -1;
	if (x->out || x->state != XFER_OFFERED) {
		event_error(&e->bus, "reject: %s is not an offer waiting for an answer", x->id);
		return -1;
	}
	stop(x, XFER_REJECTED, NULL, 1);
	return 0;
}

int
engine_file_cancel(struct engine *e, const char *id)
{
	struct engine_xfer *x = find(e, id, "cancel");

	if (x == NULL)
		return -1;
	if (engine_file_terminal(x->state)) {
		event_error(
		    &e->bus, "cancel: %s has ended (%s)", x->id, engine_file_state_names[x->state]);
		return -1;
	}
	stop(x, XFER_CANCELLED, NULL, 1);
	return 0;
}

int
engine_transfers(struct engine *e)
{
	struct json_object *ev = event_new(EVENT_TRANSFERS), *list = json_object_new_array();

	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		json_object_array_add(list, xfer_json(x, EVENT_COUNT));
	json_object_object_add(ev, "transfers", list);
	event_emit(&e->bus, ev);
	return 0;
}

/* Frames in. */

static void
refuse_offer(struct engine *e, const char *user, const struct file_frame *f, const char *why)
{
	struct file_frame r = { .type = FILE_REJECT, .text = why, .text_len = strlen(why) };
	struct buf b;

	memcpy(r.id, f->id, sizeof(r.id));
	buf_init(&b);
	if (file_frame_put(&b, &r) == 0 && p2p_net_send(e->net, user, b.data, b.len) == 1)
		engine_ordered(e);
	buf_fini(&b);
	event_system(&e->bus, "file offered by %s refused: %s", user, why);
}

static void
take_offer(struct engine *e, const char *user, const struct file_frame *f)
{
	struct engine_xfer *x = find_id(e, f->id);
	uint64_t max_offer = 0, auto_max = 0;
	const char *why;
	char reason[FILE_FRAME_REASON_MAX];

	if (x != NULL) {
		/* Offered again after a link came back: tell where it stands
		 * (an ACCEPT or DONE lost with the link). */
		if (x->out || strcmp(x->peer, user) != 0)
			return;
		if (x->state == XFER_DONE)
			send_simple(x, FILE_DONE, 0, NULL);
		else if (x->state == XFER_REJECTED)
			send_simple(x, FILE_REJECT, 0, "");
		else if (engine_file_terminal(x->state))
			send_simple(x, FILE_CANCEL, 0, x->error != NULL ? x->error : "");
		else if (x->state == XFER_PAUSED) {
			x->want_resume = 1;
			step(x);
		}
		return;
	}
	settings_parse_size(settings_get(e->settings, SETTING_MAX_OFFER), &max_offer);
	if (file_name_check(f->text, f->text_len, &why) < 0) {
		refuse_offer(e, user, f, why);
		return;
	}
	if (f->offset > max_offer) {
		snprintf(reason, sizeof(reason), "%" PRIu64 " bytes is over the limit of %s",
		    f->offset, settings_get(e->settings, SETTING_MAX_OFFER));
		refuse_offer(e, user, f, reason);
		return;
	}
	if (running(e) >= settings_get_int(e->settings, SETTING_MAX_TRANSFERS)) {
		refuse_offer(e, user, f, "too many transfers");
		return;
	}
	x = engine_file_xfer_new(e, user, 0);
	engine_file_set_id(x, f->id);
	x->name = xstrndup(f->text, f->text_len);
	x->size = f->offset;
	memcpy(x->hash, f->hash, sizeof(x->hash));
	sodium_bin2hex(x->hash_hex, sizeof(x->hash_hex), x->hash, sizeof(x->hash));
	x->state = XFER_OFFERED;
	engine_file_save(x);
	struct json_object *ev = event_new(EVENT_FILE_OFFER);
	event_add_str(ev, "id", x->id);
	event_add_str(ev, "from", user);
	event_add_str(ev, "name", x->name);
	event_add_int(ev, "size", (long long)x->size);
	event_add_str(ev, "hash", x->hash_hex);
	event_emit(&e->bus, ev);
	emit(x);
	if (settings_autoaccept(e->settings, &auto_max) && x->size <= auto_max &&
	    engine_contact_is(e, user))
		engine_file_accept(e, x->id, NULL);
}

static void
take_chunk(struct engine_xfer *x, const struct file_frame *f)
{
	if (x->state != XFER_RECEIVING || x->fd < 0)
		return; /* after a cancel, or before the resume is under way: dropped */
	if (f->offset + f->data_len > x->size || f->offset + f->data_len < f->offset) {
		stop(x, XFER_FAILED, "a chunk beyond the offered size", 1);
		return;
	}
	if (f->offset != x->expect) {
		stop(x, XFER_FAILED, "a chunk out of order", 1);
		return;
	}
	if (x->expect + f->data_len - x->acked_out > FILE_WINDOW + FILE_FRAME_CHUNK_MAX) {
		stop(x, XFER_FAILED, "a chunk beyond the window", 1);
		return;
	}
	if (x->open == NULL)
		x->open = batch_get(x);
	buf_append(&x->open->data, f->data, f->data_len);
	x->expect += f->data_len;
	if (x->open->data.len >= FILE_BATCH)
		batch_close(x);
	ack(x);
	step(x);
}

static void
take_accept(struct engine_xfer *x, const struct file_frame *f)
{
	if (engine_file_terminal(x->state) || f->offset > x->size) {
		if (!engine_file_terminal(x->state))
			stop(x, XFER_FAILED, "asked to resume beyond the file's end", 1);
		return;
	}
	x->gen++; /* reads under way are for the link before */
	buf_consume(&x->rbuf, x->rbuf.len);
	x->send_off = x->bytes = f->offset;
	x->ring_n = 0;
	/* Fresh from the offer in this run: the hash is known good. Any
	 * other time (a resume, a restart), the file is checked again. */
	if (x->state == XFER_OFFERED && x->checked && x->fd >= 0) {
		set_state(x, XFER_SENDING, NULL);
	} else {
		x->need_check = 1;
		set_state(x, XFER_VERIFYING, NULL);
	}
	step(x);
}

void
engine_file_frame(struct engine *e, const char *user, const uint8_t *data, size_t len)
{
	struct file_frame f;
	struct engine_xfer *x;
	const char *err;

	if (file_frame_parse(data, len, &f, &err) < 0) {
		log_warn("file frame from %s refused: %s", user, err);
		return;
	}
	if (engine_contact_blocked(e, user))
		return;
	if (f.type == FILE_OFFER) {
		take_offer(e, user, &f);
		return;
	}
	x = find_id(e, f.id);
	if (x == NULL || strcmp(x->peer, user) != 0) {
		log_warn("file frame (%s) from %s for no transfer of theirs: dropped",
		    file_frame_type_name(f.type), user);
		return;
	}
	switch (f.type) {
	case FILE_CHUNK:
		if (!x->out)
			take_chunk(x, &f);
		break;
	case FILE_ACK:
		if (x->out && f.offset <= x->send_off && f.offset >= x->bytes) {
			take_ack(x, f.offset);
			progress(x);
			step(x);
		}
		break;
	case FILE_ACCEPT:
		if (x->out)
			take_accept(x, &f);
		break;
	case FILE_REJECT:
		if (x->out) {
			char *why = xstrndup(f.text, f.text_len);
			stop(x, XFER_REJECTED, why[0] != '\0' ? why : NULL, 0);
			free(why);
		}
		break;
	case FILE_CANCEL: {
		char *why = xstrndup(f.text, f.text_len);
		struct buf b;
		buf_init(&b);
		if (why[0] != '\0')
			buf_printf(&b, "%s: %s", user, why);
		for (char *c = b.data; c != NULL && *c != '\0'; c++)
			if ((unsigned char)*c < 0x20)
				*c = '?';
		stop(x, why[0] != '\0' ? XFER_FAILED : XFER_CANCELLED, b.data, 0);
		buf_fini(&b);
		free(why);
		break;
	}
	case FILE_DONE:
		if (x->out && x->bytes == x->size)
			set_state(x, XFER_DONE, NULL);
		break;
	default: break;
	}
}

/* Links. */

void
engine_file_link(struct engine *e, const char *user, int up)
{
	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next) {
		if (strcmp(x->peer, user) != 0 || engine_file_terminal(x->state))
			continue;
		if (up) {
			x->offer_sent = 0;
			if (!x->out && x->state != XFER_OFFERED && x->state != XFER_ACCEPTED)
				x->want_resume = 1;
		} else if (!x->out || x->checked) { /* a first hash goes on */
			x->gen++;
			if (x->out && (x->state == XFER_SENDING || x->state == XFER_VERIFYING)) {
				buf_consume(&x->rbuf, x->rbuf.len);
				x->send_off = x->bytes;
				x->ring_n = 0;
				x->need_check = 0;
				set_state(x, XFER_PAUSED, NULL);
			} else if (!x->out && x->state == XFER_RECEIVING) {
				/* What went to the lanes stays; the rest comes again. */
				if (x->open != NULL)
					x->open->data.len = 0;
				x->expect = x->q_off;
				x->need_sync = 1;
				set_state(x, XFER_PAUSED, NULL);
			}
			if (e->net != NULL && !e->stopping)
				p2p_net_dial(e->net, user, 1);
		}
		step(x);
	}
}

void
engine_file_redial(struct engine *e)
{
	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		if (!engine_file_terminal(x->state) && e->net != NULL)
			p2p_net_dial(e->net, x->peer, 1);
}

void
engine_file_stop(struct engine *e)
{
	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		step(x);
}

/* Start and end. */

int
engine_file_init(struct engine *e, char **cause)
{
	return engine_file_load(e, cause);
}

void
engine_file_free(struct engine *e)
{
	while (e->xfers != NULL) {
		struct engine_xfer *x = e->xfers;
		e->xfers = x->next;
		if (x->fd >= 0)
			close(x->fd);
		free(x->name);
		free(x->path);
		free(x->part);
		free(x->dest);
		free(x->error);
		buf_fini(&x->rbuf);
		buf_fini(&x->rspare);
		batches_free(x);
		buf_fini(&x->fbuf);
		free(x);
	}
}
