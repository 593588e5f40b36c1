/* redis_uv.h — hiredis's asynchronous context on a libuv loop (in place
 * of hiredis 0.14's adapters/libuv.h, which ignores a poll error, so that
 * a refused connect or a reset connection is never noticed). Not an
 * interface outside src/tracker. */
#ifndef HYCHAT_REDIS_UV_H
#define HYCHAT_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Watches ac's socket on loop; hiredis closes the watch when it frees
 * ac. Returns 0, or -1 if it cannot. */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
