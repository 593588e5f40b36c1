/* tracker_call.c — one request's trip through the shared state: the
 * bearer token resolved by the store, then the handler's own operation,
 * each answered in a callback that may come before the handler returns
 * (the in-process store) or later on the connection's loop (a network
 * store). The answer is written to the handler's response while the
 * handler runs, else to the call's own, sent with http_conn_respond(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "tracker_internal.h"

#define TRACKER_REALM "hychat-tracker"
#define TRACKER_RETRY_AFTER_S 1 /* what a 503 for an unreachable store says */

static void
call_free(struct tracker_call *c)
{
	store_call_fini(&c->sc);
	if (c->data_free != NULL)
		c->data_free(c->data);
	free(c);
}

void
tracker_call_end(struct tracker_call *c)
{
	c->answered = 1;
	if (c->in_handler)
		return; /* tracker_call_run() delivers and frees */
	http_conn_respond(c->conn, &c->own);
	http_response_fini(&c->own);
	http_conn_unref(c->conn);
	call_free(c);
}

static void
call_stage_done(struct store_call *sc)
{
	struct tracker_call *c = sc->arg;

	c->then(c);
}

void
tracker_call_store(struct tracker_call *c, void (*op)(struct store_state *s, struct store_call *sc),
    void (*then)(struct tracker_call *c))
{
	store_call_fini(&c->sc);
	c->sc.result = STORE_DONE;
	c->sc.cap = 0;
	c->sc.mail_known = 0;
	c->then = then;
	op(c->t->state, &c->sc);
}

int
tracker_call_failed(struct tracker_call *c)
{
	switch (c->sc.result) {
	case STORE_DOWN:
		http_json_error(c->res, 503, "The tracker's store is unreachable; retry");
		http_response_headerf(c->res, "Retry-After", "%d", TRACKER_RETRY_AFTER_S);
		break;
	case STORE_FAILED:
		log_error("store: %s", c->sc.cause != NULL ? c->sc.cause : "unknown error");
		http_json_error(c->res, 500, "Storage error");
		break;
	default: return 0;
	}
	tracker_call_end(c);
	return 1;
}

void
tracker_call_bad_token(struct tracker_call *c)
{
	http_json_error(c->res, 401, "Invalid or expired token");
	http_response_header(c->res, "WWW-Authenticate",
	    "Bearer realm=\"" TRACKER_REALM "\", error=\"invalid_token\"");
	tracker_call_end(c);
}

static void
call_authed(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result != STORE_DONE) {
		tracker_call_bad_token(c);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", c->sc.user);
	c->authed(c);
}

/* The token text of "Authorization: Bearer"; -1 after a 401. */
static int
call_bearer(const struct http_request *req, struct http_response *res, const char **token,
    size_t *token_len)
{
	static const char scheme[] = "Bearer ";
	size_t len;
	const char *v = http_request_header(req, "Authorization", &len);

	if (v == NULL || len < sizeof(scheme) - 1 || !hy_strieq(v, sizeof(scheme) - 1, scheme)) {
		http_json_error(res, 401, "Missing bearer token");
		http_response_header(res, "WWW-Authenticate", "Bearer realm=\"" TRACKER_REALM "\"");
		return -1;
	}
	v += sizeof(scheme) - 1;
	len -= sizeof(scheme) - 1;
	while (len > 0 && *v == ' ') {
		v++;
		len--;
	}
	*token = v;
	*token_len = len;
	return 0;
}

struct tracker_call *
tracker_call_new(struct tracker *t, struct http_request *req, struct http_response *res)
{
	struct tracker_call *c = xcalloc(1, sizeof(*c));

	c->t = t;
	c->req = req;
	c->res = res;
	c->in_handler = 1;
	c->sc.arg = c;
	c->sc.done = call_stage_done;
	c->sc.loop = req->conn != NULL ? http_conn_loop(req->conn) : NULL;
	return c;
}

void
tracker_call_start(struct tracker_call *c, void (*first)(struct tracker_call *c))
{
	struct http_response *res = c->res;

	first(c);
	c->in_handler = 0;
	if (c->answered) {
		call_free(c);
		return;
	}
	/* Not answered yet: a store or the thread pool will; until then the
	 * connection (and the request) stay ours. */
	http_response_init(&c->own);
	c->res = &c->own;
	c->conn = http_conn_ref(c->req->conn);
	res->deferred = 1;
}

static void
call_auth(struct tracker_call *c)
{
	tracker_call_store(c, c->t->state->ops->token_user, call_authed);
}

void
tracker_call_run(struct tracker *t, struct http_request *req, struct http_response *res,
    void (*authed)(struct tracker_call *c))
{
	const char *token;
	size_t len;

	if (call_bearer(req, res, &token, &len) < 0)
		return;
	struct tracker_call *c = tracker_call_new(t, req, res);
	c->authed = authed;
	c->sc.token_in = token;
	c->sc.token_len = len;
	tracker_call_start(c, call_auth);
}

void
tracker_call_run_token(struct tracker *t, struct http_request *req, struct http_response *res,
    const char *claim, void (*first)(struct tracker_call *c))
{
	const char *token;
	size_t len;

	if (call_bearer(req, res, &token, &len) < 0)
		return;
	struct tracker_call *c = tracker_call_new(t, req, res);
	c->sc.token_in = token;
	c->sc.token_len = len;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", claim);
	tracker_call_start(c, first);
}

static void
call_sync(struct tracker_call *c)
{
	c->sync(c->t, c->req, c->res, c->user);
	tracker_call_end(c);
}

void
tracker_call_run_sync(
    struct tracker *t, struct http_request *req, struct http_response *res, tracker_sync_fn *fn)
{
	const char *token;
	size_t len;

	if (call_bearer(req, res, &token, &len) < 0)
		return;
	struct tracker_call *c = tracker_call_new(t, req, res);
	c->authed = call_sync;
	c->sync = fn;
	c->sc.token_in = token;
	c->sc.token_len = len;
	tracker_call_start(c, call_auth);
}
