/* tracker_nat.c — what the tracker does for peers behind NAT: the relays
 * it knows, the rendezvous tokens it signs for a pair, and the hints it
 * keeps for a peer until that peer asks for them (GET /hints, polled).
 * Each peer's observed address and IPv6 address are registered with its
 * presence in the shared state (store.h), so that every tracker gives
 * the same; so are the hints and each caller's rendezvous budget, where
 * the store keeps them (hint_add): a peer may poll another tracker than
 * the one its caller asked. Without (one tracker), they are kept here.
 *
 * The state here has its own lock, never held with the registry's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "tracker_internal.h"

#define NAT_BUCKETS 4096
#define NAT_HINTS_PER_USER STORE_HINTS_PER_USER /* pending; older ones are dropped */
#define NAT_HINT_TTL_MS (RELAY_TOKEN_TTL_S * 1000ULL)
#define NAT_USERS_MAX 200000 /* users with hints or a budget kept here */
#define NAT_RDV_BURST STORE_RDV_BURST
#define NAT_RDV_PER_S STORE_RDV_PER_S

struct nat_hint {
	char type[8]; /* "relay", "dial" or "punch" */
	char ip[TRACKER_NAT_IP_MAX]; /* punch: where to, and the port */
	unsigned port;
	int fresh; /* punch: port is the caller's fresh one, the caller dials */
	char peer[HY_NAME_MAX + 1];
	char relay[TRACKER_RELAY_MAX];
	char token[RELAY_TOKEN_LINE_MAX];
	uint64_t expires_ms;
};

struct nat_user {
	char name[HY_NAME_MAX + 1];
	struct nat_hint hints[NAT_HINTS_PER_USER];
	size_t nhints;
	uint64_t rdv_tokens_ms; /* its rendezvous budget, as the time it is full */
	struct nat_user *next;
};

struct tracker_nat {
	uv_mutex_t lock;
	struct nat_user *users[NAT_BUCKETS];
	size_t nusers;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

struct tracker_nat *
tracker_nat_new(void)
{
	struct tracker_nat *n = xcalloc(1, sizeof(*n));

	uv_mutex_init(&n->lock);
	randombytes_buf(n->hash_key, sizeof(n->hash_key));
	return n;
}

void
tracker_nat_free(struct tracker_nat *n)
{
	if (n == NULL)
		return;
	for (size_t b = 0; b < NAT_BUCKETS; b++) {
		while (n->users[b] != NULL) {
			struct nat_user *u = n->users[b];
			n->users[b] = u->next;
			sodium_memzero(u, sizeof(*u));
			free(u);
		}
	}
	uv_mutex_destroy(&n->lock);
	free(n);
}

/* Under the lock. NULL if absent and !create, or if full. */
static struct nat_user *
user_find(struct tracker_nat *n, const char *name, int create)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;
	struct nat_user *u;

	crypto_shorthash(h, (const unsigned char *)name, strlen(name), n->hash_key);
	memcpy(&v, h, sizeof(v));
	size_t b = (size_t)(v % NAT_BUCKETS);
	for (u = n->users[b]; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	if (!create || n->nusers >= NAT_USERS_MAX)
		return NULL;
	u = xcalloc(1, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->next = n->users[b];
	n->users[b] = u;
	n->nusers++;
	return u;
}

/* Under the lock: u's hints are gone (given, or for a session ended). */
static void
hints_clear(struct nat_user *u)
{
	if (u == NULL)
		return;
	sodium_memzero(u->hints, sizeof(u->hints));
	u->nhints = 0;
}

void
tracker_nat_forget(struct tracker_nat *n, const char *user)
{
	uv_mutex_lock(&n->lock);
	hints_clear(user_find(n, user, 0));
	uv_mutex_unlock(&n->lock);
}

/* Under the lock: queues h for u, the oldest dropped when full. */
static void
hint_push(struct nat_user *u, const struct nat_hint *h)
{
	if (u->nhints == NAT_HINTS_PER_USER) {
		memmove(&u->hints[0], &u->hints[1], sizeof(u->hints[0]) * (NAT_HINTS_PER_USER - 1));
		u->nhints--;
	}
	u->hints[u->nhints++] = *h;
}

/* Spends one of user's rendezvous: the budget is kept as the time at
 * which it would be full again (a GCRA), so it needs one number. */
static int
rendezvous_allowed(struct tracker *t, const char *user)
{
	const uint64_t step = 1000 / NAT_RDV_PER_S, burst = NAT_RDV_BURST * step;
	uint64_t now = hy_now_ms();
	int ok = 0;

	uv_mutex_lock(&t->nat->lock);
	struct nat_user *u = user_find(t->nat, user, 1);
	if (u != NULL) {
		uint64_t full = u->rdv_tokens_ms > now ? u->rdv_tokens_ms : now;
		if (full + step <= now + burst) {
			u->rdv_tokens_ms = full + step;
			ok = 1;
		}
	}
	uv_mutex_unlock(&t->nat->lock);
	return ok;
}

static struct json_object *
relay_list(const struct tracker *t)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < t->cfg.nrelays; i++)
		json_object_array_add(a, json_object_new_string(t->cfg.relays[i]));
	return a;
}

/* GET /whoami: the address this request came from, and the relays. */
static void
tracker_api_whoami_authed(
    struct tracker *t, struct http_request *req, struct http_response *res, const char *user)
{

	struct json_object *r = tracker_success();
	tracker_add_str(r, "observed_ip", req->conn != NULL ? http_conn_remote(req->conn) : "");
	json_object_object_add(r, "relays", relay_list(t));
	http_json_respond(res, 200, r);
}

void
tracker_api_whoami(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run_sync(ctx, req, res, tracker_api_whoami_authed);
}

/* A rendezvous on its way: the two peers' addresses come from the store. */
struct rendezvous {
	struct nat_hint h; /* h.peer: the caller; h.type: via */
	char peer[HY_NAME_MAX + 1];
	unsigned them_port;
	char them_observed[REG_IP_MAX + 1]; /* "" if none was registered */
	unsigned caller_port; /* punch: the fresh port the caller dials from, 0 if none */
	struct json_object *answer; /* the caller's, once the hint is queued */
	char line[STORE_HINT_MAX]; /* the hint as the store keeps it */
};

static void
rendezvous_free(void *arg)
{
	struct rendezvous *rv = arg;

	if (rv->answer != NULL)
		json_object_put(rv->answer);
	sodium_memzero(rv, sizeof(*rv));
	free(rv);
}

static void
rendezvous_too_many(struct http_response *res)
{
	http_response_header(res, "Retry-After", "1");
	http_json_error(res, 429, "Too many rendezvous: one a second after a burst of 20");
}

/* h as one line of fields separated by newlines (none holds one): what
 * the store keeps. -1 if it does not fit. */
static int
hint_format(const struct nat_hint *h, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s\n%s\n%s\n%u\n%d\n%s\n%s", h->type, h->peer, h->ip, h->port,
	    h->fresh, h->relay, h->token);

	return n > 0 && (size_t)n < outsz ? 0 : -1;
}

/* The next field of a hint line into out; *at moves past it. */
static void
hint_field(const char **at, char *out, size_t outsz)
{
	size_t len = strcspn(*at, "\n");

	snprintf(out, outsz, "%.*s", (int)len, *at);
	*at += len + ((*at)[len] == '\n');
}

static void
hint_parse(const char *line, struct nat_hint *h)
{
	char num[16];

	memset(h, 0, sizeof(*h));
	hint_field(&line, h->type, sizeof(h->type));
	hint_field(&line, h->peer, sizeof(h->peer));
	hint_field(&line, h->ip, sizeof(h->ip));
	hint_field(&line, num, sizeof(num));
	h->port = (unsigned)strtoul(num, NULL, 10);
	hint_field(&line, num, sizeof(num));
	h->fresh = num[0] == '1';
	hint_field(&line, h->relay, sizeof(h->relay));
	hint_field(&line, h->token, sizeof(h->token));
}

/* The store queued the hint, or refused: the caller's budget is spent. */
static void
rendezvous_queued(struct tracker_call *c)
{
	struct rendezvous *rv = c->data;

	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_RATED) {
		rendezvous_too_many(c->res);
	} else {
		http_json_respond(c->res, 200, rv->answer);
		rv->answer = NULL;
	}
	tracker_call_end(c);
}

/* Queues the hint for the peer and answers the caller: in the store, one
 * budget for every tracker; else here. */
static void
rendezvous_deliver(struct tracker_call *c, struct rendezvous *rv, struct json_object *r)
{
	struct tracker *t = c->t;

	rv->h.expires_ms = hy_now_ms() + NAT_HINT_TTL_MS;
	if (t->state->ops->hint_add != NULL) {
		if (hint_format(&rv->h, rv->line, sizeof(rv->line)) < 0) {
			json_object_put(r);
			http_json_error(c->res, 400, "Names a hint cannot carry");
			tracker_call_end(c);
			return;
		}
		rv->answer = r;
		snprintf(c->sc.user, sizeof(c->sc.user), "%s", rv->peer);
		snprintf(c->sc.sender, sizeof(c->sc.sender), "%s", c->user);
		c->sc.hint_in = rv->line;
		c->sc.ttl_ms = NAT_HINT_TTL_MS;
		tracker_call_store(c, t->state->ops->hint_add, rendezvous_queued);
		return;
	}
	if (!rendezvous_allowed(t, c->user)) {
		json_object_put(r);
		rendezvous_too_many(c->res);
		tracker_call_end(c);
		return;
	}
	uv_mutex_lock(&t->nat->lock);
	struct nat_user *u = user_find(t->nat, rv->peer, 1);
	if (u != NULL)
		hint_push(u, &rv->h);
	uv_mutex_unlock(&t->nat->lock);
	if (u == NULL) {
		json_object_put(r);
		http_json_error(c->res, 503, "Too many users");
	} else {
		http_json_respond(c->res, 200, r);
	}
	tracker_call_end(c);
}

/* Both are online: the tokens or the hint. my_observed: the caller's
 * observed address as registered ("" for none). */
static void
rendezvous_answer(
    struct tracker_call *c, struct rendezvous *rv, unsigned my_port, const char *my_observed)
{
	struct tracker *t = c->t;
	struct http_response *res = c->res;
	struct nat_hint *hp = &rv->h;
	const char *user = rv->h.peer;
	const char *peer_name = rv->peer;
	char mine[RELAY_TOKEN_LINE_MAX];
	char id[RELAY_TOKEN_ID_HEX + 1];

	struct json_object *r = tracker_success();
	if (strcmp(hp->type, "punch") == 0) {
		/* Each dials the other's observed address at its peer port:
		 * a port-preserving NAT maps the peer port to itself. */
		if (rv->them_observed[0] == '\0' || my_observed[0] == '\0') {
			json_object_put(r);
			http_json_error(res, 409, "No observed address yet: send /submit-info");
			tracker_call_end(c);
			return;
		}
		snprintf(hp->ip, sizeof(hp->ip), "%s", my_observed);
		/* Better, the caller dials from a fresh port of its own (a
		 * new 4-tuple each time, nothing left of an earlier one in
		 * the way) and runs the handshake as its dialer. */
		hp->port = rv->caller_port != 0 ? rv->caller_port : my_port;
		hp->fresh = rv->caller_port != 0;
		tracker_add_str(r, "ip", rv->them_observed);
		tracker_add_int(r, "port", (int64_t)rv->them_port);
		if (hp->fresh)
			json_object_object_add(r, "fresh", json_object_new_boolean(1));
	}
	if (strcmp(hp->type, "relay") == 0) {
		if (t->cfg.nrelays == 0 || !t->cfg.has_relay_key) {
			json_object_put(r);
			http_json_error(res, 503, "No relay (--relay and --relay-secret)");
			tracker_call_end(c);
			return;
		}
		uint64_t expiry = (uint64_t)time(NULL) + RELAY_TOKEN_TTL_S;
		relay_token_new_id(id);
		snprintf(hp->relay, sizeof(hp->relay), "%s",
		    t->cfg.relays[randombytes_uniform((uint32_t)t->cfg.nrelays)]);
		if (relay_token_sign(t->cfg.relay_key, id, expiry, user, peer_name, mine) < 0 ||
		    relay_token_sign(t->cfg.relay_key, id, expiry, peer_name, user, hp->token) <
		        0) {
			json_object_put(r);
			http_json_error(res, 400, "Names a token cannot carry");
			tracker_call_end(c);
			return;
		}
		tracker_add_str(r, "relay", hp->relay);
		tracker_add_str(r, "token", mine);
		tracker_add_int(r, "expires", (int64_t)expiry);
		sodium_memzero(mine, sizeof(mine));
	}
	tracker_add_str(r, "via", hp->type);
	rendezvous_deliver(c, rv, r);
}

/* The store said whether the caller is online (and at which port). */
static void
rendezvous_me(struct tracker_call *c)
{
	struct rendezvous *rv = c->data;

	if (tracker_call_failed(c))
		return;
	if (c->sc.result != STORE_DONE || !c->sc.online) {
		http_json_error(c->res, 404, "Not online (both must be registered)");
		tracker_call_end(c);
		return;
	}
	char mine[REG_IP_MAX + 1];
	snprintf(mine, sizeof(mine), "%s", c->sc.info.observed);
	rendezvous_answer(c, rv, c->sc.info.port, mine);
}

/* The store said whether the peer is online; then the caller. */
static void
rendezvous_them(struct tracker_call *c)
{
	struct rendezvous *rv = c->data;

	if (tracker_call_failed(c))
		return;
	if (c->sc.result != STORE_DONE || !c->sc.online) {
		http_json_error(c->res, 404, "Not online (both must be registered)");
		tracker_call_end(c);
		return;
	}
	rv->them_port = c->sc.info.port;
	snprintf(rv->them_observed, sizeof(rv->them_observed), "%s", c->sc.info.observed);
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
	tracker_call_store(c, c->t->state->ops->peer_info, rendezvous_me);
}

static void
rendezvous_authed(struct tracker_call *c)
{
	struct json_object *o;
	const char *peer, *via = "relay";
	size_t len;
	int64_t port = 0;

	if ((o = tracker_body_for(c->req, c->res, c->user)) == NULL) {
		tracker_call_end(c);
		return;
	}
	if (tracker_field_str(o, "peer", 1, &peer, &len, c->res) < 0 ||
	    tracker_field_str(o, "via", 0, &via, &len, c->res) < 0 ||
	    tracker_field_int(o, "port", 0, 1, 65535, &port, c->res) < 0) {
		json_object_put(o);
		tracker_call_end(c);
		return;
	}
	if (!hy_name_valid(peer, strlen(peer)) || strcmp(peer, c->user) == 0 ||
	    (strcmp(via, "relay") != 0 && strcmp(via, "dial") != 0 && strcmp(via, "punch") != 0)) {
		json_object_put(o);
		http_json_error(
		    c->res, 400, "Fields: peer (another user), via (relay, dial or punch)");
		tracker_call_end(c);
		return;
	}
	struct rendezvous *rv = xcalloc(1, sizeof(*rv));
	c->data = rv;
	c->data_free = rendezvous_free;
	snprintf(rv->h.peer, sizeof(rv->h.peer), "%s", c->user);
	snprintf(rv->h.type, sizeof(rv->h.type), "%s", via);
	snprintf(rv->peer, sizeof(rv->peer), "%s", peer);
	rv->caller_port = (unsigned)port;
	json_object_put(o); /* peer and via are gone with it */
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", rv->peer);
	c->sc.channel[0] = '\0';
	tracker_call_store(c, c->t->state->ops->peer_info, rendezvous_them);
}

/* POST /rendezvous {"peer":NAME,"via":"relay"|"dial"|"punch"[,"port":N]}:
 * via relay, both halves of a fresh token, ours in the answer and the
 * peer's in a hint; via dial, a hint asking the peer to dial us; via
 * punch, each one's observed address, the peer's hint with our port N
 * (then "fresh": we dial from N) or else our peer port. Both must be
 * online. */
void
tracker_api_rendezvous(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, rendezvous_authed);
}

static struct json_object *
hint_json(const struct nat_hint *h)
{
	struct json_object *o = json_object_new_object();

	tracker_add_str(o, "type", h->type);
	tracker_add_str(o, "peer", h->peer);
	if (h->ip[0] != '\0') {
		tracker_add_str(o, "ip", h->ip);
		tracker_add_int(o, "port", (int64_t)h->port);
		if (h->fresh)
			json_object_object_add(o, "fresh", json_object_new_boolean(1));
	}
	if (h->relay[0] != '\0') {
		tracker_add_str(o, "relay", h->relay);
		tracker_add_str(o, "token", h->token);
	}
	return o;
}

static void
hints_respond(struct http_response *res, struct json_object *a)
{
	struct json_object *r = tracker_success();

	json_object_object_add(r, "hints", a);
	http_json_respond(res, 200, r);
}

/* The store gave the hints (and forgot them). */
static void
hints_taken(struct tracker_call *c)
{
	struct json_object *a;

	if (tracker_call_failed(c))
		return;
	a = json_object_new_array();
	for (size_t i = 0; i < c->sc.n; i++) {
		struct nat_hint h;
		hint_parse(c->sc.hints[i], &h);
		json_object_array_add(a, hint_json(&h));
		sodium_memzero(&h, sizeof(h));
	}
	sodium_memzero(c->sc.hints, c->sc.n * sizeof(c->sc.hints[0]));
	hints_respond(c->res, a);
	tracker_call_end(c);
}

static void
hints_authed(struct tracker_call *c)
{
	struct tracker *t = c->t;
	struct json_object *a;
	uint64_t now = hy_now_ms();

	if (t->state->ops->hint_take != NULL) {
		snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
		tracker_call_store(c, t->state->ops->hint_take, hints_taken);
		return;
	}
	a = json_object_new_array();
	uv_mutex_lock(&t->nat->lock);
	struct nat_user *u = user_find(t->nat, c->user, 0);
	for (size_t i = 0; u != NULL && i < u->nhints; i++)
		if (u->hints[i].expires_ms >= now)
			json_object_array_add(a, hint_json(&u->hints[i]));
	hints_clear(u);
	uv_mutex_unlock(&t->nat->lock);
	hints_respond(c->res, a);
	tracker_call_end(c);
}

/* GET /hints: what others asked of us since the last call, once. */
void
tracker_api_hints(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, hints_authed);
}
