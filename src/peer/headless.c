/* headless.c — the line-protocol front end: command lines in on fd 0,
 * events out on fd 1, one JSON object per line.
 *
 * Output is gathered during a turn of the loop and written at its end,
 * before the engine commits (event_turn_end), or at the start of the next
 * (an idle handle, for output made after that), first with uv_try_write,
 * the rest queued. */
#include "hychat/headless.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/command.h"
#include "hychat/log.h"
#include "hychat/util.h"

#define HEADLESS_DRAIN_MS 2000 /* at exit, for a slow reader */

union stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_pipe_t pipe;
	uv_tty_t tty;
	uv_tcp_t tcp;
};

struct out_write {
	uv_write_t req;
	struct headless *h;
	struct buf data; /* the buffer handed over, with its capacity */
	size_t len; /* bytes of it in flight */
};

/* The output buffer a finished write hands back is kept for the next one,
 * unless a burst made it larger than this. */
#define HEADLESS_SPARE_MAX (4 * 1024 * 1024)

struct headless {
	uv_loop_t *loop;
	struct engine *e;
	int handles; /* open handles, freed memory waits for none */

	/* Input: a stream, or a file read through the thread pool. */
	int in_is_file;
	union stream in;
	int in_open;
	uv_fs_t in_req;
	int in_req_busy;
	int in_ended; /* end of input seen */
	int in_paused; /* output too far behind: no more commands for now */
	char *chunk;
	struct buf line;
	struct buf held; /* input read but not yet taken: output was behind */
	int discarding; /* the rest of an over-long line */

	/* Output: a stream written without blocking, or a file. */
	int out_is_file;
	int out_fd;
	union stream out;
	int out_open;
	struct buf pending;
	struct buf spare; /* empty, kept for its capacity */
	size_t in_flight;
	uv_idle_t flush;
	uv_timer_t drain;
	int closing;
};

static void flush_out(struct headless *h);
static void begin_close(struct headless *h);
static void on_event(const struct event *ev, void *arg);

static void
on_closed(uv_handle_t *handle)
{
	struct headless *h = handle->data;

	h->handles--;
}

static void
close_handle(struct headless *h, uv_handle_t *handle)
{
	handle->data = h;
	uv_close(handle, on_closed);
}

/* Input. */

static void
run_line(struct headless *h, char *s, size_t len)
{
	if (len > 0 && s[len - 1] == '\r')
		len--;
	s[len] = '\0';
	command_run(h->e, s, NULL, h, NULL);
}

/* Runs the command lines in data, keeping a partial last line for later.
 * Returns the bytes taken: fewer than len when the output fell too far
 * behind midway (one chunk of short commands can ask for megabytes). */
static size_t
take_input(struct headless *h, const char *data, size_t len)
{
	size_t total = len;

	while (len > 0 && !h->closing && !h->in_paused) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - data) : len;

		if (!h->discarding)
			buf_append(&h->line, data, n);
		if (h->line.len > COMMAND_LINE_MAX) {
			h->discarding = 1;
			buf_consume(&h->line, h->line.len);
		}
		if (nl == NULL) {
			len = 0; /* the partial line is kept in h->line */
			break;
		}
		if (h->discarding)
			event_error(engine_events(h->e), "line too long: at most %d bytes",
			    COMMAND_LINE_MAX);
		else
			run_line(h, h->line.data, h->line.len);
		h->discarding = 0;
		buf_consume(&h->line, h->line.len);
		data = nl + 1;
		len -= n + 1;
	}
	return total - len;
}

/* Takes a chunk just read; what pacing leaves is held for later. */
static void
take_chunk(struct headless *h, const char *data, size_t len)
{
	size_t took = take_input(h, data, len);

	if (took < len && !h->closing)
		buf_append(&h->held, data + took, len - took);
}

static void
input_ended(struct headless *h)
{
	h->in_ended = 1;
	if (h->line.len > 0 && !h->discarding && !h->closing)
		run_line(h, h->line.data, h->line.len);
	buf_consume(&h->line, h->line.len);
	if (!h->closing)
		engine_stop(h->e);
}

static void
on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
	struct headless *h = handle->data;

	(void)suggested;
	b->base = h->chunk;
	b->len = HEADLESS_READ_CHUNK;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct headless *h = s->data;

	if (n > 0) {
		take_chunk(h, b->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	if (n != UV_EOF)
		log_error("standard input: %s", uv_strerror((int)n));
	uv_read_stop(s);
	input_ended(h);
}

static void read_file(struct headless *h);

static void
on_file_read(uv_fs_t *req)
{
	struct headless *h = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	h->in_req_busy = 0;
	if (h->closing)
		return;
	if (n > 0) {
		take_chunk(h, h->chunk, (size_t)n);
		if (!h->in_paused)
			read_file(h);
		return;
	}
	if (n < 0)
		log_error("standard input: %s", uv_strerror((int)n));
	input_ended(h);
}

static void
read_file(struct headless *h)
{
	uv_buf_t b = uv_buf_init(h->chunk, HEADLESS_READ_CHUNK);

	if (h->closing)
		return;
	h->in_req.data = h;
	if (uv_fs_read(h->loop, &h->in_req, 0, &b, 1, -1, on_file_read) == 0)
		h->in_req_busy = 1;
	else
		input_ended(h);
}

/* Opens fd as a loop stream. Returns 0, or -1 if it is not a stream. */
static int
open_stream(struct headless *h, union stream *s, int fd, int readable)
{
	int rc;

	switch (uv_guess_handle(fd)) {
	case UV_TTY: rc = uv_tty_init(h->loop, &s->tty, fd, readable); break;
	case UV_NAMED_PIPE:
		if ((rc = uv_pipe_init(h->loop, &s->pipe, 0)) == 0 &&
		    (rc = uv_pipe_open(&s->pipe, fd)) != 0)
			close_handle(h, &s->handle);
		break;
	case UV_TCP:
		if ((rc = uv_tcp_init(h->loop, &s->tcp)) == 0 &&
		    (rc = uv_tcp_open(&s->tcp, fd)) != 0)
			close_handle(h, &s->handle);
		break;
	default: return -1;
	}
	if (rc != 0)
		return -1;
	s->handle.data = h;
	h->handles++;
	return 0;
}

/* Commands make output: while the reader of standard output is far
 * behind, no more commands are read, and the writer of standard input
 * waits on a full pipe instead of the output growing without end. */
static void
pace_input(struct headless *h)
{
	size_t behind = h->pending.len + h->in_flight;

	if (!h->in_open || h->in_ended || h->closing)
		return;
	if (!h->in_paused && behind > HEADLESS_OUT_HIGH) {
		h->in_paused = 1;
		if (!h->in_is_file)
			uv_read_stop(&h->in.stream);
	} else if (h->in_paused && behind <= HEADLESS_OUT_LOW) {
		h->in_paused = 0;
		if (h->held.len > 0) {
			buf_consume(&h->held, take_input(h, h->held.data, h->held.len));
			if (h->in_paused || h->closing)
				return;
		}
		if (h->in_is_file) {
			if (!h->in_req_busy)
				read_file(h);
		} else if (uv_read_start(&h->in.stream, on_alloc, on_read) != 0) {
			input_ended(h);
		}
	}
}

/* Output. */

static void
on_written(uv_write_t *req, int status)
{
	struct out_write *w = req->data;
	struct headless *h = w->h;

	h->in_flight -= w->len;
	if (h->spare.data == NULL && w->data.cap <= HEADLESS_SPARE_MAX) {
		h->spare = w->data;
		h->spare.len = 0;
	} else {
		buf_fini(&w->data);
	}
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		log_error("standard output: %s", uv_strerror(status));
		buf_consume(&h->pending, h->pending.len);
		begin_close(h);
		engine_stop(h->e);
		return;
	}
	flush_out(h);
}

static void
close_output(struct headless *h)
{
	if (!h->out_open)
		return;
	h->out_open = 0;
	uv_timer_stop(&h->drain);
	close_handle(h, (uv_handle_t *)&h->drain);
	if (!h->out_is_file)
		close_handle(h, &h->out.handle);
	else if (h->out_fd != STDOUT_FILENO)
		close(h->out_fd);
}

static void
write_file(struct headless *h)
{
	while (h->pending.len > 0) {
		ssize_t n = write(h->out_fd, h->pending.data, h->pending.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("standard output: %s", strerror(errno));
			buf_consume(&h->pending, h->pending.len);
			if (!h->closing)
				engine_stop(h->e);
			return;
		}
		buf_consume(&h->pending, (size_t)n);
	}
}

static void
flush_out(struct headless *h)
{
	if (!h->out_open)
		return;
	if (h->out_is_file) {
		write_file(h);
	} else if (h->in_flight == 0 && h->pending.len > 0) {
		uv_buf_t b = uv_buf_init(h->pending.data, (unsigned)h->pending.len);
		int n = uv_try_write(&h->out.stream, &b, 1);
		size_t off = n > 0 ? (size_t)n : 0;

		if (n < 0 && n != UV_EAGAIN) {
			log_error("standard output: %s", uv_strerror(n));
			buf_consume(&h->pending, h->pending.len);
			if (!h->closing)
				engine_stop(h->e);
		} else if (off == h->pending.len) {
			buf_consume(&h->pending, off);
		} else {
			/* The rest goes to libuv in the buffer it is in: no copy and
			 * no memmove of what may be megabytes behind a slow reader.
			 * New output goes to the spare buffer meanwhile; the two
			 * swap, so a steady stream allocates nothing. */
			struct out_write *w = xcalloc(1, sizeof(*w));
			w->h = h;
			w->len = h->pending.len - off;
			w->data = h->pending;
			h->pending = h->spare;
			buf_init(&h->spare);
			b = uv_buf_init(w->data.data + off, (unsigned)w->len);
			w->req.data = w;
			if (uv_write(&w->req, &h->out.stream, &b, 1, on_written) != 0) {
				buf_fini(&w->data);
				free(w);
			} else {
				h->in_flight += w->len;
			}
		}
	}
	if (h->closing && h->pending.len == 0 && h->in_flight == 0)
		close_output(h);
	else
		pace_input(h);
}

static void
on_flush(uv_idle_t *i)
{
	uv_idle_stop(i);
	flush_out(i->data);
}

static void
on_turn_end(void *arg)
{
	struct headless *h = arg;

	if (h->closing || h->pending.len == 0)
		return;
	uv_idle_stop(&h->flush);
	flush_out(h);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct headless *h = t->data;

	log_warn("standard output: reader too slow, %zu bytes dropped at exit",
	    h->pending.len + h->in_flight);
	buf_consume(&h->pending, h->pending.len);
	close_output(h);
}

static void
begin_close(struct headless *h)
{
	if (h->closing)
		return;
	h->closing = 1;
	event_unsubscribe(engine_events(h->e), on_event, h);
	if (h->in_open) {
		h->in_open = 0;
		if (!h->in_is_file)
			close_handle(h, &h->in.handle);
		else if (h->in_req_busy)
			uv_cancel((uv_req_t *)&h->in_req);
	}
	uv_idle_stop(&h->flush);
	close_handle(h, (uv_handle_t *)&h->flush);
	if (h->out_open) {
		h->drain.data = h;
		uv_timer_start(&h->drain, on_drain_timeout, HEADLESS_DRAIN_MS, 0);
	}
	flush_out(h);
}

static void
on_event(const struct event *ev, void *arg)
{
	struct headless *h = arg;

	if (!h->out_open || h->closing)
		return;
	if (h->pending.len + h->in_flight + ev->len > HEADLESS_OUT_MAX) {
		log_error("standard output: reader more than %d bytes behind, stopping",
		    HEADLESS_OUT_MAX);
		buf_consume(&h->pending, h->pending.len);
		engine_stop(h->e);
		return;
	}
	buf_append(&h->pending, ev->json, ev->len);
	buf_append_char(&h->pending, '\n');
	uv_idle_start(&h->flush, on_flush);
	pace_input(h);
	if (ev->type == EVENT_QUIT)
		begin_close(h);
}

/* A pipe's file description may be shared with standard error, and the
 * loop makes what it writes to non-blocking: write through a description
 * of our own. */
static int
private_stdout(void)
{
	int fd = open("/proc/self/fd/1", O_WRONLY | O_CLOEXEC);

	return fd >= 0 ? fd : STDOUT_FILENO;
}

static int
open_output(struct headless *h, char **cause)
{
	uv_handle_type t = uv_guess_handle(STDOUT_FILENO);

	h->out_fd = STDOUT_FILENO;
	if (t == UV_NAMED_PIPE)
		h->out_fd = private_stdout();
	if (t == UV_FILE || t == UV_UNKNOWN_HANDLE || open_stream(h, &h->out, h->out_fd, 0) < 0) {
		if (fcntl(STDOUT_FILENO, F_GETFL) < 0) {
			*cause = xstrdup("standard output: not open");
			return -1;
		}
		if (h->out_fd != STDOUT_FILENO)
			close(h->out_fd);
		h->out_fd = STDOUT_FILENO;
		h->out_is_file = 1;
	}
	h->out_open = 1;
	return 0;
}

struct headless *
headless_new(uv_loop_t *loop, struct engine *e, char **cause)
{
	struct headless *h = xcalloc(1, sizeof(*h));

	h->loop = loop;
	h->e = e;
	h->chunk = xmalloc(HEADLESS_READ_CHUNK);
	buf_init(&h->line);
	buf_init(&h->pending);
	buf_init(&h->spare);
	buf_init(&h->held);
	if (open_output(h, cause) < 0) {
		free(h->chunk);
		free(h);
		return NULL;
	}
	uv_timer_init(loop, &h->drain);
	h->drain.data = h;
	h->handles++;
	uv_idle_init(loop, &h->flush);
	h->flush.data = h;
	h->handles++;
	h->in_open = 1;
	if (open_stream(h, &h->in, STDIN_FILENO, 1) == 0) {
		uv_read_start(&h->in.stream, on_alloc, on_read);
	} else {
		h->in_is_file = 1;
		read_file(h);
	}
	event_subscribe(engine_events(e), on_event, h);
	event_on_turn_end(engine_events(e), on_event, h, on_turn_end);
	return h;
}

void
headless_free(struct headless *h)
{
	if (h == NULL)
		return;
	if (h->handles != 0 || h->in_req_busy)
		log_error("headless: freed with %d handles open", h->handles);
	buf_fini(&h->line);
	buf_fini(&h->pending);
	buf_fini(&h->spare);
	buf_fini(&h->held);
	free(h->chunk);
	free(h);
}
