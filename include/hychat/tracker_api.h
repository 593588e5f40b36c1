/* tracker_api.h — the tracker's HTTP API: the route table, its handlers
 * and the state they share.
 *
 * Every worker loop serves the same struct tracker, whose state is a
 * store_state (store.h): in this process (the registry behind a lock,
 * SQLite underneath) or in Redis, shared with other trackers. Handlers
 * answer from the store's callbacks. Password hashing runs on libuv's thread pool, never on a
 * loop. Bodies are JSON; errors are {"status":"failed","message":...}
 * with the matching status (http_json_error). The endpoints and their
 * fields are listed in hychat-tracker(8).
 */
#ifndef HYCHAT_TRACKER_API_H
#define HYCHAT_TRACKER_API_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hychat/login_guard.h"
#include "hychat/router.h"
#include "hychat/store.h"
#include "hychat/tracker_mailbox.h"

#define TRACKER_DEFAULT_TTL_S 60 /* a peer's registration */
#define TRACKER_TOKEN_TTL_S (24 * 3600) /* a login token, from /login */
#define TRACKER_LIST_CAP 1000 /* peers, members or channels per answer, by default */
#define TRACKER_MAX_USER_CHANNELS 100 /* channels a user may be in, by default */
#define TRACKER_MAX_CHANNELS 10000 /* channels in all, by default */
#define TRACKER_MAX_BODY_BYTES (64 * 1024)
#define TRACKER_PASSWORD_MAX 1024 /* bytes */
#define TRACKER_MAX_CHANNELS_PER_CALL STORE_CHANNELS_PER_CALL /* in one /submit-info */
#define TRACKER_SWEEP_MS 100 /* the sweeper's tick */
#define TRACKER_MAX_RELAYS 16 /* --relay */
#define TRACKER_RELAY_MAX 280 /* "HOST:PORT" of one relay */

struct tracker_config {
	uint64_t ttl_ms; /* peer registrations */
	uint64_t token_ttl_ms; /* tokens */
	int no_register; /* /register answers 403 */
	struct login_guard_config guard; /* throttles /login and /register */
	/* Caps: joins past them answer 403 naming the cap; memberships
	 * already in the store are loaded whatever the caps. */
	size_t max_user_channels;
	size_t max_channels;
	size_t page_max; /* peers, members or channels per answer */
	/* /submit-info: loopback addresses are refused unless this is set
	 * (main sets it when the tracker listens on loopback); unspecified,
	 * multicast and reserved ones always are. */
	int allow_loopback_peers;
	int require_source_ip; /* the registered ip must be the request's source */
	struct tracker_mailbox_config mailbox; /* limits of the mailbox */
	/* Relays (hychat-relay(8)) and the secret shared with them, with
	 * which /rendezvous signs tokens. */
	char relays[TRACKER_MAX_RELAYS][TRACKER_RELAY_MAX];
	size_t nrelays;
	int has_relay_key;
	uint8_t relay_key[32]; /* RELAY_TOKEN_KEY_BYTES */
};

/* Fills cfg with the defaults above. */
void tracker_config_defaults(struct tracker_config *cfg);

struct tracker;

/* Makes the tracker on st (used, not owned) with the in-process state,
 * which loads the memberships and keys st holds. Returns NULL with *cause
 * (allocated) if the store fails. */
struct tracker *tracker_new(struct store *st, const struct tracker_config *cfg, char **cause);
/* Makes the tracker on a shared state (used, not owned). */
struct tracker *tracker_new_state(
    struct store_state *state, const struct tracker_config *cfg, char **cause);
void tracker_free(struct tracker *t);
/* The router to serve, with router_http_handler as the server's handler. */
struct router *tracker_router(struct tracker *t);
/* Cancels the password hashes queued from loop and not yet started: each
 * is answered 503 "Shutting down". Call from that loop when it stops, so
 * that a stop does not wait for a queue of Argon2id runs. */
void tracker_cancel_jobs(struct tracker *t, uv_loop_t *loop);
/* Runs one slice of the expiry sweep; call it every TRACKER_SWEEP_MS from
 * one loop. */
void tracker_sweep(struct tracker *t);
/* The same from a timer on loop, where a network store's sweep sends its
 * operations. */
void tracker_sweep_on(struct tracker *t, uv_loop_t *loop);
/* Hashes a password with Argon2id into out (STORE_HASH_MAX bytes): about
 * 100 ms and 64 MiB, so never on a loop. Returns 0, or -1 out of memory. */
int tracker_hash_password(const char *password, size_t len, char *out);
/* Hashes new passwords at Argon2id's minimum cost instead (for tests and
 * benchmarks that create thousands of accounts; never for real ones).
 * Verification always uses the cost stored in each hash. Call before
 * tracker_new(). */
void tracker_set_kdf_min(int on);

#endif
