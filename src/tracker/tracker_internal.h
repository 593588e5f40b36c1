/* tracker_internal.h — what the tracker's handler files share: the state
 * behind the API (tracker_api.c), the request checks and JSON answers
 * (tracker_fields.c), the account handlers (tracker_accounts.c). Not an
 * interface outside src/tracker.
 *
 * Every check returns -1 (or NULL) after filling res with its error.
 */
#ifndef HYCHAT_TRACKER_INTERNAL_H
#define HYCHAT_TRACKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "hychat/http_json.h"
#include "hychat/registry.h"
#include "hychat/relay_token.h"
#include "hychat/tracker_api.h"

#define TRACKER_NAT_IP_MAX 64 /* an address as http_conn_remote() writes it */

struct tracker {
	struct store_state *state;
	int own_state; /* made by tracker_new() on a struct store: closed with it */
	/* What only a local store keeps (the mailbox's expiry, the hint);
	 * NULL on another store. */
	struct store *store;
	struct router *router;
	struct tracker_config cfg;
	uint64_t start_ms;
	atomic_uint_fast64_t requests;
	struct login_guard *guard; /* admits every password hash */
	uv_mutex_t jobs_lock;
	struct hash_job *jobs; /* those queued, under jobs_lock: cancelled at a stop */
	/* verified against when the user does not exist, so that a wrong name
	 * takes as long as a wrong password */
	char dummy_hash[STORE_HASH_MAX];
	atomic_uint_fast64_t mail_swept_ms; /* the mailbox's last expiry pass */
	struct tracker_nat *nat; /* hints, where the store keeps none (tracker_nat.c) */
};

/* The local store's registry (tests); NULL on another store. */
static inline struct registry *
tracker_registry(struct tracker *t)
{
	return store_state_local_registry(t->state);
}

/* One request on its way through the store (tracker_call.c). A handler
 * calls tracker_call_run(), which resolves the bearer token (401 if it
 * is missing or invalid, 503 while the store is unreachable) and then
 * calls authed with c->user set. Each stage either answers, writing to
 * c->res and calling tracker_call_end(), or starts one store operation
 * with tracker_call_store(), whose `then` runs when it is done. c->req
 * stays valid until the end. */
/* A handler's work once the token is resolved, all of it on the loop
 * with no store operation: it answers in res (the call ends after it). */
typedef void tracker_sync_fn(
    struct tracker *t, struct http_request *req, struct http_response *res, const char *user);

struct tracker_call {
	struct store_call sc; /* the store operation under way, reused */
	struct tracker *t;
	struct http_request *req;
	struct http_response *res; /* where the answer is written */
	char user[HY_NAME_MAX + 1]; /* the token's */
	void *data; /* the handler's, freed with data_free */
	void (*data_free)(void *data);
	/* private */
	struct http_conn *conn; /* held once the answer is deferred */
	struct http_response own;
	int in_handler, answered;
	void (*authed)(struct tracker_call *c);
	void (*then)(struct tracker_call *c);
	tracker_sync_fn *sync;
};

void tracker_call_run(struct tracker *t, struct http_request *req, struct http_response *res,
    void (*authed)(struct tracker_call *c));
/* For an operation that resolves the token itself, in the same round
 * trip: first runs with c->sc.token_in set (401 if there is none) and
 * c->sc.user set to claim, and answers a STORE_BAD_TOKEN with
 * tracker_call_bad_token(). */
void tracker_call_run_token(struct tracker *t, struct http_request *req, struct http_response *res,
    const char *claim, void (*first)(struct tracker_call *c));
/* tracker_call_run() for a handler whose work after the token is fn. */
void tracker_call_run_sync(
    struct tracker *t, struct http_request *req, struct http_response *res, tracker_sync_fn *fn);
/* Answers 401 for an unknown or expired token and ends c. */
void tracker_call_bad_token(struct tracker_call *c);
/* For the handlers without a token (/register, /login): a call whose
 * first stage is first; tracker_call_start() runs it. */
struct tracker_call *tracker_call_new(
    struct tracker *t, struct http_request *req, struct http_response *res);
void tracker_call_start(struct tracker_call *c, void (*first)(struct tracker_call *c));
void tracker_call_store(struct tracker_call *c,
    void (*op)(struct store_state *s, struct store_call *sc), void (*then)(struct tracker_call *c));
/* Sends (or leaves for the handler) the answer in c->res and frees c. */
void tracker_call_end(struct tracker_call *c);
/* If the last operation failed (store down: 503 with Retry-After; any
 * other failure: logged, 500), answers, ends c and returns 1. */
int tracker_call_failed(struct tracker_call *c);

/* Answers. */

/* A new {"status":"success"} to add members to. */
struct json_object *tracker_success(void);
void tracker_add_int(struct json_object *o, const char *key, int64_t v);
void tracker_add_str(struct json_object *o, const char *key, const char *v);
/* Logs the store's reason, frees it, and answers 500. */
void tracker_store_failed(struct http_response *res, char *cause);

/* Checks. */

/* Parses the body as a JSON object whose "username", if present, is user
 * (else 403). */
struct json_object *tracker_body_for(
    const struct http_request *req, struct http_response *res, const char *user);
/* A string member: 1 with *out (and *len) set, 0 if absent and optional. */
int tracker_field_str(struct json_object *o, const char *key, int required, const char **out,
    size_t *len, struct http_response *res);
/* An integer member in [min, max]; returns like tracker_field_str. */
int tracker_field_int(struct json_object *o, const char *key, int required, int64_t min,
    int64_t max, int64_t *out, struct http_response *res);
/* The required "username", a valid name. */
int tracker_field_username(struct json_object *o, const char **out, struct http_response *res);
/* The required "password", 1 to TRACKER_PASSWORD_MAX bytes. */
int tracker_field_password(
    struct json_object *o, const char **out, size_t *len, struct http_response *res);
/* Canonicalises a channel name into out. */
int tracker_check_channel(
    const char *s, size_t len, char out[HY_CHANNEL_MAX + 1], struct http_response *res);
/* Refuses (403) a peer address ip (checked text) that others must not be
 * sent to dial: unspecified, multicast or reserved, loopback unless
 * cfg.allow_loopback_peers, and with cfg.require_source_ip any address
 * but source (the request's, NULL if unknown). IPv4-mapped, -compatible
 * and NAT64 (64:ff9b::/96) forms are judged by their IPv4 address. */
int tracker_check_peer_ip(
    const struct tracker *t, const char *ip, const char *source, struct http_response *res);
/* The optional "ip6" of /submit-info, a dual-stack peer's IPv6 address:
 * 0 with out "" (absent, or with cfg.require_source_ip not the request's
 * source: it is ignored) or the address; -1 (answered) if it is not an
 * IPv6 literal that tracker_check_peer_ip() passes, or is link-local. */
int tracker_field_ip6(const struct tracker *t, struct json_object *o, const char *source,
    char out[TRACKER_NAT_IP_MAX], struct http_response *res);
/* The required "channel", canonicalised into out. */
int tracker_field_channel(
    struct json_object *o, char out[HY_CHANNEL_MAX + 1], struct http_response *res);

/* Profiles (tracker_profile.c). */
/* The profile the store gave with p, as a JSON fragment appended to an
 * object being written (",\"display_name\":...,\"status_line\":..."),
 * nothing without one; or added to o. */
void tracker_profile_append(struct buf *b, const struct store_peer *p);
void tracker_profile_add(struct json_object *o, const struct store_peer *p);
void tracker_api_profile(struct http_request *req, struct http_response *res, void *ctx);

/* Account handlers, for the route table. */
void tracker_api_register(struct http_request *req, struct http_response *res, void *ctx);
void tracker_api_login(struct http_request *req, struct http_response *res, void *ctx);
void tracker_api_logout(struct http_request *req, struct http_response *res, void *ctx);

/* The mailbox (tracker_mailbox.c). */

/* Its routes, for the route table; ended by a NULL pattern. */
extern const struct router_route tracker_mailbox_routes[];
/* Makes ready what the mailbox adds to t (the sweep's clock). */
void tracker_mailbox_init(struct tracker *t);
/* Deletes expired messages, at most once every MAILBOX_SWEEP_MS. */
void tracker_mailbox_sweep(struct tracker *t, uv_loop_t *loop);
/* Adds "mail", the count of messages waiting for user, to an answer
 * (nothing if the store fails: it is a hint): the persistent store's, or
 * what the shared state told with the operation sc just did. */
void tracker_mailbox_hint(
    struct tracker *t, const char *user, const struct store_call *sc, struct json_object *answer);
/* NAT traversal (tracker_nat.c): its own lock, never under the registry's. */
struct tracker_nat *tracker_nat_new(void);
void tracker_nat_free(struct tracker_nat *n);
/* user logged out: the hints waiting for it were for the session that
 * ended, and are dropped (its rendezvous budget is kept). */
void tracker_nat_forget(struct tracker_nat *n, const char *user);
void tracker_api_whoami(struct http_request *req, struct http_response *res, void *ctx);
void tracker_api_rendezvous(struct http_request *req, struct http_response *res, void *ctx);
void tracker_api_hints(struct http_request *req, struct http_response *res, void *ctx);

#endif
