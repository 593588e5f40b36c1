/* redis_uv.c — hiredis's event hooks on a uv_poll_t. A poll error
 * (libuv reports POLLERR as UV_EBADF and stops the handle) is handed to
 * hiredis as a read, or as the end of a connect, so that it sees the
 * socket's error and calls the disconnect or connect callback.
 *
 * Writes on a connected socket wait for the start of the loop's next
 * turn (a uv_idle_t, which also keeps the loop from blocking in the
 * meantime) rather than for the socket to say it is writable: the
 * commands of every request handled in a turn go in one write, and the
 * poll is not changed twice per command. Only what the socket did not
 * take waits for UV_WRITABLE. */
#include <stdlib.h>

#include "hychat/util.h"
#include "redis_uv.h"

struct redis_uv {
	redisAsyncContext *ac; /* NULL once hiredis let go */
	uv_poll_t poll;
	uv_idle_t flush; /* the write, at the start of the next turn */
	int events;
	int flushing; /* in on_flush: what is left waits for the poll */
	int open_handles; /* freed when both are closed */
};

static void
on_poll(uv_poll_t *handle, int status, int events)
{
	struct redis_uv *p = handle->data;

	if (p->ac != NULL && status < 0) {
		p->events = 0; /* libuv stopped the handle */
		if (p->ac->c.flags & REDIS_CONNECTED)
			redisAsyncHandleRead(p->ac);
		else
			redisAsyncHandleWrite(p->ac); /* finishes the connect, failed */
		return;
	}
	if (p->ac != NULL && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
	if (p->ac != NULL && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
}

/* Only a change reaches the poll: uv_poll_start() with the same events
 * still stops and starts the watcher, an epoll_ctl() or two for nothing
 * (hiredis asks for reads after every write). */
static void
poll_update(struct redis_uv *p, int add, int remove)
{
	int events = (p->events | add) & ~remove;

	if (events == p->events)
		return;
	p->events = events;
	if (p->events != 0)
		uv_poll_start(&p->poll, p->events, on_poll);
	else
		uv_poll_stop(&p->poll);
}

static void
add_read(void *arg)
{
	poll_update(arg, UV_READABLE, 0);
}

static void
del_read(void *arg)
{
	poll_update(arg, 0, UV_READABLE);
}

static void
on_flush(uv_idle_t *handle)
{
	struct redis_uv *p = handle->data;

	uv_idle_stop(&p->flush);
	if (p->ac == NULL)
		return;
	p->flushing = 1;
	redisAsyncHandleWrite(p->ac);
	p->flushing = 0;
}

static void
add_write(void *arg)
{
	struct redis_uv *p = arg;

	if (p->ac != NULL && (p->ac->c.flags & REDIS_CONNECTED) && !p->flushing &&
	    !(p->events & UV_WRITABLE))
		uv_idle_start(&p->flush, on_flush);
	else
		poll_update(p, UV_WRITABLE, 0);
}

static void
del_write(void *arg)
{
	struct redis_uv *p = arg;

	uv_idle_stop(&p->flush);
	poll_update(p, 0, UV_WRITABLE);
}

static void
handle_closed(uv_handle_t *h)
{
	struct redis_uv *p = h->data;

	if (--p->open_handles == 0)
		free(p);
}

static void
cleanup(void *arg)
{
	struct redis_uv *p = arg;

	p->ac = NULL;
	uv_close((uv_handle_t *)&p->poll, handle_closed);
	uv_close((uv_handle_t *)&p->flush, handle_closed);
}

int
redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	if (ac->ev.data != NULL)
		return -1;
	struct redis_uv *p = xcalloc(1, sizeof(*p));
	if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
		free(p);
		return -1;
	}
	uv_idle_init(loop, &p->flush);
	p->open_handles = 2;
	p->ac = ac;
	p->poll.data = p;
	p->flush.data = p;
	ac->ev.data = p;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	return 0;
}
