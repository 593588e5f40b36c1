/* webbridge_upload.c — a file sent from the page: the tab announces it
 * ("upload USER SIZE NAME"), streams its bytes as binary messages, and the
 * bridge spools them into a directory of its own (mode 0700) under
 * DATA_DIR/WEBBRIDGE_SPOOL_DIR, then offers the file with the engine's
 * sendfile. The bytes are network input: the name is made a plain name
 * (webpolicy.h), the size is at most the max-offer setting and the room on
 * the disk, a message at most WEBBRIDGE_UPLOAD_MSG_MAX, the total exactly
 * the size announced; anything else ends the upload, removes its
 * directory, and closes the socket. The room on the disk is looked at,
 * the directory made and the file opened on libuv's thread pool, and so
 * are the writes (never on the loop); bytes that come before the file is
 * open wait with the others. While WEBBRIDGE_UPLOAD_BUFFER bytes wait for the
 * disk the socket is not read (back-pressure to the browser), and each
 * write done is acknowledged to the tab, which sends no more than a
 * window ahead. The spooled file stays while the engine needs it (a
 * transfer resumes from it, after a restart too) and goes when its
 * transfer ends; at start, every other one goes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <json-c/json.h>

#include "hychat/command.h"
#include "hychat/http_json.h"
#include "hychat/log.h"
#include "hychat/settings.h"
#include "webbridge_internal.h"

#define INCOMING ".incoming" /* the file while its bytes arrive */

enum up_state {
	UP_RECEIVING,
	UP_DONE, /* every byte written: offered */
	UP_FAILED,
};

struct webbridge_upload {
	struct webbridge *b;
	struct webbridge_conn *c; /* NULL once its socket closed */
	enum up_state state;
	char user[HY_NAME_MAX + 1];
	char name[WEBPOLICY_UPLOAD_NAME_MAX + 1];
	char dir[WEBBRIDGE_PATH_MAX + 16];
	int fd;
	uint64_t size, received, written;
	size_t msg; /* bytes of the binary message arriving */
	/* Two buffers that trade places: what arrives, and what is being
	 * written; no allocation per write. */
	struct buf pending; /* received, not yet handed to a write */
	struct buf wbuf; /* the write in flight's bytes */
	int opening; /* the directory and the file being made: an open_job holds u */
	int writing; /* a write or a name_job holds u */
	int paused; /* the socket is not read */
	uv_fs_t req;
};

/* The spool's root, made private. */

static void
remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[WEBBRIDGE_PATH_MAX + 512];

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			(void)unlink(path);
		}
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		log_warn("web bridge: %s: %s", dir, strerror(errno));
}

/* A descriptor closed and a directory removed on the thread pool: both
 * may wait for the disk, and the loop must not. */
struct spool_job {
	uv_work_t req;
	int fd; /* -1: none */
	char dir[WEBBRIDGE_PATH_MAX + 16]; /* "": none */
};

static void
spool_job_work(uv_work_t *req)
{
	struct spool_job *j = req->data;

	if (j->fd >= 0)
		close(j->fd);
	if (j->dir[0] != '\0')
		remove_dir(j->dir);
}

static void
spool_job_done(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

static void
spool_drop_later(struct webbridge *b, int fd, const char *dir)
{
	struct spool_job *j;

	if (fd < 0 && (dir == NULL || dir[0] == '\0'))
		return;
	j = xcalloc(1, sizeof(*j));
	j->req.data = j;
	j->fd = fd;
	snprintf(j->dir, sizeof(j->dir), "%s", dir != NULL ? dir : "");
	if (uv_queue_work(b->loop, &j->req, spool_job_work, spool_job_done) != 0) {
		spool_job_work(&j->req); /* cannot happen with a valid loop */
		free(j);
	}
}

void
webbridge_upload_init(struct webbridge *b)
{
	char dir[WEBBRIDGE_PATH_MAX];
	struct stat st;

	b->spool[0] = '\0';
	if (snprintf(dir, sizeof(dir), "%s/%s", engine_data_dir(b->e), WEBBRIDGE_SPOOL_DIR) >=
	    (int)sizeof(dir))
		return;
	if (mkdir(dir, S_IRWXU) < 0 && errno != EEXIST) {
		log_warn("web bridge: %s: %s: no uploads from the page", dir, strerror(errno));
		return;
	}
	/* Never through a link, never shared. */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    chmod(dir, S_IRWXU) < 0 || realpath(dir, b->spool) == NULL) {
		log_warn("web bridge: %s: not a private directory: no uploads from the page", dir);
		b->spool[0] = '\0';
		return;
	}
	/* What the engine no longer needs goes: webbridge_upload_sweep(). */
}

/* Messages to the tab that uploads: {"type":"upload", ...}. */
static void
tell(struct webbridge_upload *u, const char *state, const char *error)
{
	struct json_object *o;
	const char *s;

	if (u->c == NULL)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("upload"));
	json_object_object_add(o, "state", json_object_new_string(state));
	json_object_object_add(o, "user", json_object_new_string(u->user));
	json_object_object_add(o, "name", json_object_new_string(u->name));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)u->written));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)u->size));
	if (error != NULL)
		json_object_object_add(o, "error", json_object_new_string(error));
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	webbridge_ws_send(u->c, s, strlen(s));
	json_object_put(o);
}

static void
resume_reading(struct webbridge_upload *u)
{
	if (u->paused && u->c != NULL) {
		lws_rx_flow_control(u->c->wsi, 1);
		u->paused = 0;
	}
}

/* The one end of an upload: freed once no write is in flight. */
static void
finish(struct webbridge_upload *u)
{
	if (u->c != NULL) {
		resume_reading(u);
		u->c->ws.up = NULL;
		u->c = NULL;
	}
	if (u->writing || u->opening)
		return; /* on_write, on_named or on_opened frees it */
	spool_drop_later(u->b, u->fd, u->state != UP_DONE ? u->dir : NULL);
	u->fd = -1;
	buf_fini(&u->pending);
	buf_fini(&u->wbuf);
	free(u);
}

static void
fail(struct webbridge_upload *u, const char *why)
{
	if (u->state == UP_FAILED)
		return;
	u->state = UP_FAILED;
	log_warn("web bridge: an upload of %s to %s failed: %s", u->name, u->user, why);
	tell(u, "failed", why);
	finish(u);
}

/* Every byte is on disk: the file takes its name (close and rename on the
 * thread pool, u->writing meanwhile, so that u stays), then is offered. */
struct name_job {
	uv_work_t req;
	struct webbridge_upload *u;
	int fd, rc;
	char from[WEBBRIDGE_PATH_MAX + 32];
	char to[WEBBRIDGE_PATH_MAX + WEBPOLICY_UPLOAD_NAME_MAX + 32];
};

static void
name_work(uv_work_t *req)
{
	struct name_job *j = req->data;

	close(j->fd);
	j->rc = rename(j->from, j->to);
}

static void
on_named(uv_work_t *req, int status)
{
	struct name_job *j = req->data;
	struct webbridge_upload *u = j->u;
	struct buf line;
	int rc;

	u->writing = 0;
	if (u->state == UP_FAILED || u->c == NULL) { /* cancelled, or its tab gone */
		u->state = UP_FAILED;
		finish(u);
	} else if (status != 0 || j->rc < 0) {
		fail(u, "the spooled file could not be named");
	} else {
		buf_init(&line);
		buf_printf(&line, "sendfile %s %s", u->user, j->to);
		rc = command_run(u->b->e, line.data, NULL, u->b, u->c);
		buf_fini(&line);
		if (rc < 0) {
			fail(u, "sendfile refused it");
		} else {
			u->state = UP_DONE;
			tell(u, "sent", NULL);
			finish(u);
		}
	}
	free(j);
}

static void
offer(struct webbridge_upload *u)
{
	struct name_job *j = xcalloc(1, sizeof(*j));

	j->req.data = j;
	j->u = u;
	j->fd = u->fd;
	u->fd = -1;
	snprintf(j->from, sizeof(j->from), "%s/" INCOMING, u->dir);
	snprintf(j->to, sizeof(j->to), "%s/%s", u->dir, u->name);
	u->writing = 1;
	if (uv_queue_work(u->b->loop, &j->req, name_work, on_named) != 0) {
		name_work(&j->req); /* cannot happen with a valid loop */
		on_named(&j->req, 0);
	}
}

static void write_some(struct webbridge_upload *u);

static void
on_write(uv_fs_t *req)
{
	struct webbridge_upload *u = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	u->writing = 0;
	if (u->state == UP_FAILED || u->c == NULL) {
		u->state = UP_FAILED;
		finish(u);
		return;
	}
	if (n < 0 || (size_t)n != u->wbuf.len) {
		fail(u, n < 0 ? uv_strerror((int)n) : "a short write");
		return;
	}
	u->written += (uint64_t)n;
	tell(u, "receiving", NULL);
	if (u->pending.len < WEBBRIDGE_UPLOAD_BUFFER / 2)
		resume_reading(u);
	if (u->written == u->size)
		offer(u);
	else
		write_some(u);
}

static void
write_some(struct webbridge_upload *u)
{
	struct buf done = u->wbuf;
	uv_buf_t vb;
	int rc;

	if (u->writing || u->opening || u->pending.len == 0)
		return;
	u->wbuf = u->pending;
	u->pending = done;
	buf_consume(&u->pending, u->pending.len);
	vb = uv_buf_init(u->wbuf.data, (unsigned)u->wbuf.len);
	u->req.data = u;
	rc = uv_fs_write(u->b->loop, &u->req, u->fd, &vb, 1, (int64_t)u->written, on_write);
	if (rc < 0) {
		fail(u, uv_strerror(rc));
		return;
	}
	u->writing = 1;
}

/* The spool's directory of this upload and its file, made on the thread
 * pool: statvfs, mkdir and open may each wait for the disk. */
struct open_job {
	uv_work_t req;
	struct webbridge_upload *u;
	uint64_t size;
	int fd;
	char dir[WEBBRIDGE_PATH_MAX + 16]; /* "" unless made */
	char err[160];
};

static void
open_work(uv_work_t *req)
{
	struct open_job *j = req->data;
	char path[WEBBRIDGE_PATH_MAX + 32];
	struct statvfs vfs;
	uint64_t room;

	if (statvfs(j->dir, &vfs) == 0) {
		room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		if (j->size > room || room - j->size < WEBBRIDGE_UPLOAD_BUFFER) {
			snprintf(j->err, sizeof(j->err),
			    "no room on the disk for %" PRIu64 " bytes", j->size);
			j->dir[0] = '\0';
			return;
		}
	}
	/* A directory of its own (mkdtemp: 0700, a name no one chose). */
	if (strlen(j->dir) + sizeof("/XXXXXX") > sizeof(j->dir)) {
		snprintf(j->err, sizeof(j->err), "the spool's path is too long");
		j->dir[0] = '\0';
		return;
	}
	strcat(j->dir, "/XXXXXX");
	if (mkdtemp(j->dir) == NULL) {
		snprintf(j->err, sizeof(j->err), "%s", strerror(errno));
		j->dir[0] = '\0';
		return;
	}
	snprintf(path, sizeof(path), "%s/" INCOMING, j->dir);
	j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (j->fd < 0) {
		snprintf(j->err, sizeof(j->err), "%s", strerror(errno));
		(void)rmdir(j->dir);
		j->dir[0] = '\0';
	}
}

/* The spool is made (or not). Whatever happened to the upload meanwhile
 * (its tab gone, a cancel, bytes over the limits) happened on the loop
 * with u->opening set, which kept u: it ends here, with what was made. */
static void
on_opened(uv_work_t *req, int status)
{
	struct open_job *j = req->data;
	struct webbridge_upload *u = j->u;

	u->opening = 0;
	u->fd = j->fd;
	snprintf(u->dir, sizeof(u->dir), "%s", j->dir);
	if (u->state == UP_FAILED || u->c == NULL) {
		u->state = UP_FAILED;
		finish(u);
	} else if (status != 0 || u->fd < 0) {
		fail(u, j->err[0] != '\0' ? j->err : "the spool could not be made");
	} else {
		tell(u, "ready", NULL);
		if (u->size == 0)
			offer(u);
		else
			write_some(u);
	}
	free(j);
}

int
webbridge_upload_run(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct webbridge *b = arg;
	struct webbridge_conn *c = webbridge_ws_conn(b, client);
	struct webbridge_upload *u;
	struct open_job *j;
	uint64_t max, size;

	if (c == NULL)
		return -1;
	if (b->spool[0] == '\0') {
		event_error(engine_events(b->e), "upload: no spool directory (see the log)");
		return -1;
	}
	if (c->ws.up != NULL) {
		event_error(engine_events(b->e), "upload: one at a time on a socket");
		return -1;
	}
	if (b->sweep_running) {
		event_error(engine_events(b->e),
		    "upload: the spool is being cleaned after the start: try again in a moment");
		return -1;
	}
	if (!hy_name_valid(argv[0], strlen(argv[0])) ||
	    strcmp(argv[0], engine_username(b->e)) == 0) {
		event_error(engine_events(b->e), "upload: \"%.40s\" is not another user", argv[0]);
		return -1;
	}
	if (settings_parse_size(engine_setting(b->e, SETTING_MAX_OFFER), &max) < 0)
		max = 0;
	if (webpolicy_upload_size(argv[1], max, &size) < 0) {
		event_error(engine_events(b->e),
		    "upload: the size must be a number up to %s bytes "
		    "(max-offer)",
		    engine_setting(b->e, SETTING_MAX_OFFER));
		return -1;
	}
	u = xcalloc(1, sizeof(*u));
	u->b = b;
	u->c = c;
	u->fd = -1;
	u->size = size;
	buf_init(&u->pending);
	buf_init(&u->wbuf);
	snprintf(u->user, sizeof(u->user), "%s", argv[0]);
	webpolicy_upload_name(argv[2], strlen(argv[2]), u->name);
	/* The socket's upload from now on: its bytes may come before the
	 * spool is made, and wait in pending (the socket paused past
	 * WEBBRIDGE_UPLOAD_BUFFER, as for a slow disk). */
	c->ws.up = u;
	j = xcalloc(1, sizeof(*j));
	j->req.data = j;
	j->u = u;
	j->size = size;
	j->fd = -1;
	snprintf(j->dir, sizeof(j->dir), "%s", b->spool);
	u->opening = 1;
	if (uv_queue_work(b->loop, &j->req, open_work, on_opened) != 0) {
		open_work(&j->req); /* cannot happen with a valid loop */
		on_opened(&j->req, 0);
	}
	return 0;
}

int
webbridge_upload_cancel(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct webbridge *b = arg;
	struct webbridge_conn *c = webbridge_ws_conn(b, client);
	struct webbridge_upload *u = c != NULL ? c->ws.up : NULL;

	(void)ctx;
	(void)argc;
	(void)argv;
	if (u == NULL || u->state != UP_RECEIVING) {
		event_error(engine_events(b->e),
		    "upload_cancel: no upload in progress on this socket (a file already offered "
		    "is stopped with cancel ID)");
		return -1;
	}
	u->state = UP_FAILED; /* a write in flight ends it: on_write */
	log_info("web bridge: the upload of %s to %s cancelled by its tab at %" PRIu64
	         " of %" PRIu64 " bytes",
	    u->name, u->user, u->received, u->size);
	tell(u, "cancelled", NULL);
	finish(u);
	return 0;
}

const char *
webbridge_upload_data(struct webbridge_conn *c, const void *in, size_t len, int final)
{
	struct webbridge_upload *u = c->ws.up;

	if (u == NULL || u->state != UP_RECEIVING)
		return "no upload in progress";
	u->msg += len;
	if (u->msg > WEBBRIDGE_UPLOAD_MSG_MAX) {
		fail(u, "a message over the limit");
		return "a message over the limit";
	}
	if (final)
		u->msg = 0;
	if (len > u->size - u->received) {
		fail(u, "more bytes than announced");
		return "more bytes than announced";
	}
	/* lws may hand over what it had read after the socket was paused:
	 * bounded by its receive buffer, so this is a bug's guard. */
	if (u->pending.len + len > 2 * WEBBRIDGE_UPLOAD_BUFFER) {
		fail(u, "the disk cannot keep up");
		return "the disk cannot keep up";
	}
	u->received += len;
	buf_append(&u->pending, in, len);
	if (u->pending.len >= WEBBRIDGE_UPLOAD_BUFFER && !u->paused) {
		lws_rx_flow_control(c->wsi, 0);
		u->paused = 1;
	}
	write_some(u);
	return NULL;
}

void
webbridge_upload_closed(struct webbridge_conn *c)
{
	struct webbridge_upload *u = c->ws.up;

	if (u == NULL)
		return;
	u->c = NULL; /* no more telling, no more flow control */
	c->ws.up = NULL;
	u->state = UP_FAILED;
	log_warn("web bridge: an upload of %s to %s stopped with its tab", u->name, u->user);
	finish(u);
}

static int
final_state(const char *state)
{
	static const char *const finals[] = { "done", "failed", "rejected", "cancelled" };

	for (size_t i = 0; i < HY_ARRAY_LEN(finals); i++)
		if (strcmp(state, finals[i]) == 0)
			return 1;
	return 0;
}

/* A transfer event: a file spooled here whose transfer ended goes. */
static void
transfer_ended(struct webbridge *b, struct json_object *o)
{
	const char *path = http_json_str(o, "path"), *state = http_json_str(o, "state");
	const char *dir = http_json_str(o, "direction");
	size_t n = strlen(b->spool);
	char own[WEBBRIDGE_PATH_MAX];
	const char *rest, *slash;

	if (path == NULL || state == NULL || dir == NULL || strcmp(dir, "out") != 0 ||
	    b->spool[0] == '\0')
		return;
	if (!final_state(state))
		return;
	/* SPOOL/XXXXXX/NAME exactly: nothing else is ever removed. */
	if (strncmp(path, b->spool, n) != 0 || path[n] != '/')
		return;
	rest = path + n + 1;
	slash = strchr(rest, '/');
	if (slash == NULL || slash == rest || strchr(slash + 1, '/') != NULL || slash[1] == '\0' ||
	    slash[1] == '.' || (size_t)(slash - path) >= sizeof(own) ||
	    (slash - rest == 2 && rest[0] == '.' && rest[1] == '.'))
		return;
	memcpy(own, path, (size_t)(slash - path));
	own[slash - path] = '\0';
	spool_drop_later(b, -1, own);
}

/* At start: every upload directory that no transfer under way names goes
 * (one cut short by a crash, one whose transfer ended while the peer was
 * down); those the engine will resume from stay. The spool is read on the
 * thread pool; uploads wait until it is done (b->sweep_running), so that
 * none is swept as it starts. */
struct sweep_job {
	uv_work_t req;
	struct webbridge *b;
	char spool[WEBBRIDGE_PATH_MAX];
	char **keep; /* the paths of outgoing transfers under way */
	size_t nkeep;
};

static void
sweep_work(uv_work_t *req)
{
	struct sweep_job *j = req->data;
	char dir[WEBBRIDGE_PATH_MAX + 512];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(j->spool)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int needed = 0;
		size_t n;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = (size_t)snprintf(dir, sizeof(dir), "%s/%s/", j->spool, de->d_name);
		for (size_t i = 0; !needed && i < j->nkeep; i++)
			needed = strncmp(j->keep[i], dir, n) == 0;
		if (!needed) {
			dir[n - 1] = '\0';
			remove_dir(dir);
		}
	}
	closedir(d);
}

static void
sweep_done(uv_work_t *req, int status)
{
	struct sweep_job *j = req->data;

	(void)status;
	j->b->sweep_running = 0;
	for (size_t i = 0; i < j->nkeep; i++)
		free(j->keep[i]);
	free(j->keep);
	free(j);
}

static void
sweep(struct webbridge *b, struct json_object *list)
{
	struct sweep_job *j = xcalloc(1, sizeof(*j));
	size_t n = json_object_array_length(list);

	j->req.data = j;
	j->b = b;
	snprintf(j->spool, sizeof(j->spool), "%s", b->spool);
	j->keep = xcalloc(n > 0 ? n : 1, sizeof(*j->keep));
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(list, i);
		const char *path = http_json_str(o, "path"), *state = http_json_str(o, "state");
		const char *way = http_json_str(o, "direction");
		if (path != NULL && state != NULL && way != NULL && strcmp(way, "out") == 0 &&
		    !final_state(state))
			j->keep[j->nkeep++] = xstrdup(path);
	}
	b->sweep_running = 1;
	if (uv_queue_work(b->loop, &j->req, sweep_work, sweep_done) != 0) {
		sweep_work(&j->req); /* cannot happen with a valid loop */
		sweep_done(&j->req, 0);
	}
}

void
webbridge_upload_sweep(struct webbridge *b)
{
	struct event_bus *bus = engine_events(b->e);
	struct event_origin saved = *event_origin_get(bus), me = { .owner = b };

	if (b->spool[0] == '\0')
		return;
	/* The list is the answer to this bridge alone, with no client: no tab
	 * and no other front end sees it. */
	b->sweeping = 1;
	event_origin_set(bus, &me);
	engine_transfers(b->e);
	event_origin_set(bus, &saved);
	b->sweeping = 0;
}

void
webbridge_upload_event(struct webbridge *b, const struct event *ev)
{
	struct json_object *list;

	if (ev->type == EVENT_TRANSFERS && b->sweeping) {
		if (json_object_object_get_ex(ev->obj, "transfers", &list) &&
		    json_object_is_type(list, json_type_array))
			sweep(b, list);
		return;
	}
	if (ev->type == EVENT_TRANSFER) {
		transfer_ended(b, ev->obj);
	} else if (ev->type == EVENT_TRANSFERS &&
	    json_object_object_get_ex(ev->obj, "transfers", &list) &&
	    json_object_is_type(list, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(list); i++)
			transfer_ended(b, json_object_array_get_idx(list, i));
	}
}
