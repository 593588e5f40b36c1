/* tracker_api.c — the tracker's route table and the discovery half of the
 * API: peer registration and liveness, channels, listings, stats; and the
 * tracker's life (loading the store, the sweep).
 *
 * Each handler checks in this order: the bearer token (401, resolved by
 * the store), the body (400), that the body's "username", if any, is the
 * token's user (403), then the fields (400), then makes one store
 * operation and answers from its callback (tracker_call.c): at once on
 * the local store, later on a network one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracker_internal.h"

#define TRACKER_QUERY_VALUE_MAX 256

static int64_t
heartbeat_interval_s(const struct tracker *t)
{
	int64_t s = (int64_t)(t->cfg.ttl_ms / 2000);

	return s > 0 ? s : 1;
}

/* The caps' wording, by store_cap. */
static void
cap_message(const struct tracker *t, enum store_cap cap, char *msg, size_t msgsz)
{
	if (cap == STORE_CAP_USER)
		snprintf(msg, msgsz,
		    "Channel cap reached: a user may be in at most %zu channels "
		    "(--max-channels-per-user); leave one first",
		    t->cfg.max_user_channels);
	else
		snprintf(msg, msgsz,
		    "Channel cap reached: the tracker holds at most %zu channels (--max-channels)",
		    t->cfg.max_channels);
}

/* The inputs every store operation may read from the configuration. */
static void
call_config(struct tracker_call *c)
{
	c->sc.max_user_channels = c->t->cfg.max_user_channels;
	c->sc.max_channels = c->t->cfg.max_channels;
	c->sc.ttl_ms = c->t->cfg.ttl_ms;
	c->sc.limit = c->t->cfg.page_max;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
}

/* Peers. */

/* The fields of /submit-info, checked into the call before anything
 * changes. */
static int
submit_fields(struct json_object *o, struct store_call *s, struct http_response *res)
{
	struct json_object *chans;
	const char *key, *ip;
	size_t len;
	int64_t port;
	unsigned char addr[sizeof(struct in6_addr)];

	if (tracker_field_str(o, "ip", 1, &ip, &len, res) < 0 ||
	    tracker_field_int(o, "port", 1, 1, 65535, &port, res) < 0)
		return -1;
	if (len > REG_IP_MAX ||
	    (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
		http_json_error(res, 400, "Field ip must be an IPv4 or IPv6 address");
		return -1;
	}
	memcpy(s->ip, ip, len + 1);
	s->port = (unsigned)port;
	if (json_object_object_get_ex(o, "channels", &chans)) {
		if (!json_object_is_type(chans, json_type_array) ||
		    json_object_array_length(chans) > TRACKER_MAX_CHANNELS_PER_CALL) {
			http_json_error(
			    res, 400, "Field channels must be an array of at most 64 names");
			return -1;
		}
		for (size_t i = 0; i < json_object_array_length(chans); i++) {
			struct json_object *c = json_object_array_get_idx(chans, i);
			if (!json_object_is_type(c, json_type_string)) {
				http_json_error(res, 400, "Field channels must hold strings");
				return -1;
			}
			if (tracker_check_channel(json_object_get_string(c),
			        (size_t)json_object_get_string_len(c), s->channels[s->nchannels],
			        res) < 0)
				return -1;
			s->nchannels++;
		}
	}
	int rc = tracker_field_str(o, "pubkey", 0, &key, &len, res);
	if (rc < 0)
		return -1;
	if (rc == 1 &&
	    (sodium_base642bin(s->pubkey, sizeof(s->pubkey), key, len, NULL, &s->pubkey_len, NULL,
	         sodium_base64_VARIANT_ORIGINAL) != 0 ||
	        s->pubkey_len == 0)) {
		http_json_error(res, 400, "Field pubkey must be 1 to 64 bytes in base64");
		return -1;
	}
	return 0;
}

static void
submit_done(struct tracker_call *c)
{
	struct tracker *t = c->t;
	char capped[160];

	if (tracker_call_failed(c))
		return;
	const char *observed = c->req->conn != NULL ? http_conn_remote(c->req->conn) : NULL;
	struct json_object *r = tracker_success();
	if (observed != NULL)
		tracker_add_str(r, "observed_ip", observed);
	if (c->data != NULL && ((const char *)c->data)[0] != '\0')
		tracker_add_str(r, "ip6", c->data);
	if (c->sc.cap != 0) {
		/* Channels past a cap are left out, and said so, but the
		 * address is registered: a full tracker must not keep a peer
		 * offline. */
		struct json_object *refused = json_object_new_array();
		for (size_t i = 0; i < c->sc.nchannels; i++)
			if (c->sc.refused[i])
				json_object_array_add(
				    refused, json_object_new_string(c->sc.channels[i]));
		cap_message(t, c->sc.cap, capped, sizeof(capped));
		tracker_add_str(r, "message", capped);
		json_object_object_add(r, "refused_channels", refused);
	}
	tracker_add_int(r, "peer_id", c->sc.peer_id);
	tracker_add_int(r, "total_peers", (int64_t)c->sc.total);
	tracker_add_int(r, "heartbeat_interval", heartbeat_interval_s(t));
	tracker_add_int(r, "ttl", (int64_t)(t->cfg.ttl_ms / 1000));
	tracker_mailbox_hint(t, c->user, &c->sc, r);
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

static void
submit_authed(struct tracker_call *c)
{
	struct json_object *o = tracker_body_for(c->req, c->res, c->user);

	if (o == NULL) {
		tracker_call_end(c);
		return;
	}
	call_config(c);
	const char *source = c->req->conn != NULL ? http_conn_remote(c->req->conn) : NULL;
	char ip6[TRACKER_NAT_IP_MAX];
	int rc = submit_fields(o, &c->sc, c->res);
	if (rc == 0)
		rc = tracker_field_ip6(c->t, o, source, ip6, c->res);
	json_object_put(o);
	if (rc == 0) {
		c->data = xstrdup(ip6);
		c->data_free = free;
		/* Registered with the address, for every tracker to give. */
		snprintf(c->sc.observed, sizeof(c->sc.observed), "%.*s",
		    (int)sizeof(c->sc.observed) - 1, source != NULL ? source : "");
		snprintf(c->sc.ip6, sizeof(c->sc.ip6), "%.*s", (int)sizeof(c->sc.ip6) - 1, ip6);
	}
	if (rc < 0 || tracker_check_peer_ip(c->t, c->sc.ip, source, c->res) < 0) {
		tracker_call_end(c);
		return;
	}
	tracker_call_store(c, c->t->state->ops->peer_submit, submit_done);
}

static void
api_submit_info(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, submit_authed);
}

static void
heartbeat_done(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_MISSING) {
		http_json_error(c->res, 404, "Not online: send /submit-info first");
	} else {
		struct json_object *r = tracker_success();
		tracker_add_int(r, "heartbeat_interval", heartbeat_interval_s(c->t));
		tracker_add_int(r, "ttl", (int64_t)(c->t->cfg.ttl_ms / 1000));
		tracker_mailbox_hint(c->t, c->sc.user[0] != '\0' ? c->sc.user : c->user, &c->sc, r);
		http_json_respond(c->res, 200, r);
	}
	tracker_call_end(c);
}

static void
heartbeat_authed(struct tracker_call *c)
{
	struct json_object *o = tracker_body_for(c->req, c->res, c->user);

	if (o == NULL) {
		tracker_call_end(c);
		return;
	}
	json_object_put(o);
	call_config(c);
	tracker_call_store(c, c->t->state->ops->peer_renew, heartbeat_done);
}

/* The heartbeat is the hot path: when the body is plain ({} or a
 * "username" of the right shape), the token and the renewal are one store
 * operation, one round trip. Any other body takes the usual way, so that
 * its errors come in the usual order. */
static void
heartbeat_beaten(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_BAD_TOKEN) {
		tracker_call_bad_token(c);
		return;
	}
	if (c->sc.result == STORE_NOT_YOURS) {
		http_json_error(c->res, 403, "This token does not act for that user");
		tracker_call_end(c);
		return;
	}
	heartbeat_done(c);
}

static void
heartbeat_beat(struct tracker_call *c)
{
	c->sc.ttl_ms = c->t->cfg.ttl_ms;
	tracker_call_store(c, c->t->state->ops->peer_beat, heartbeat_beaten);
}

/* The name a plain heartbeat body claims into out ("" for none); -1 if
 * the body is not plain. */
static int
heartbeat_claim(const struct http_request *req, char out[HY_NAME_MAX + 1])
{
	struct http_response scratch;
	struct json_object *v;
	int rc = -1;

	/* What a peer sends: no parser needed (json-c's costs a locale). */
	if (req->body_len == 0 || (req->body_len == 2 && memcmp(req->body, "{}", 2) == 0)) {
		out[0] = '\0';
		return 0;
	}
	http_response_init(&scratch);
	struct json_object *o = http_json_body(req, &scratch);
	http_response_fini(&scratch);
	if (o == NULL)
		return -1;
	if (!json_object_object_get_ex(o, "username", &v)) {
		out[0] = '\0';
		rc = 0;
	} else if (json_object_is_type(v, json_type_string) &&
	    hy_name_valid(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
		snprintf(out, HY_NAME_MAX + 1, "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

static void
api_heartbeat(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char claim[HY_NAME_MAX + 1];

	if (t->state->ops->peer_beat == NULL || heartbeat_claim(req, claim) < 0) {
		tracker_call_run(ctx, req, res, heartbeat_authed);
		return;
	}
	tracker_call_run_token(t, req, res, claim, heartbeat_beat);
}

/* Channels. */

static void
add_list_done(struct tracker_call *c)
{
	char capped[160];

	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_CAPPED) {
		cap_message(c->t, c->sc.cap, capped, sizeof(capped));
		http_json_error(c->res, 403, capped);
		tracker_call_end(c);
		return;
	}
	struct json_object *members = json_object_new_array();
	for (size_t i = 0; i < c->sc.n; i++)
		json_object_array_add(members, json_object_new_string(c->sc.names[i]));
	struct json_object *r = tracker_success();
	tracker_add_str(r, "channel", c->sc.channel);
	json_object_object_add(r, "members", members);
	tracker_add_int(r, "member_count", (int64_t)c->sc.total);
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

/* Reads the body's "channel" into the call; -1 after answering. */
static int
channel_from_body(struct tracker_call *c)
{
	struct json_object *o = tracker_body_for(c->req, c->res, c->user);

	if (o == NULL) {
		tracker_call_end(c);
		return -1;
	}
	call_config(c);
	int rc = tracker_field_channel(o, c->sc.channel, c->res);
	json_object_put(o);
	if (rc < 0)
		tracker_call_end(c);
	return rc;
}

static void
add_list_authed(struct tracker_call *c)
{
	if (channel_from_body(c) == 0)
		tracker_call_store(c, c->t->state->ops->channel_join, add_list_done);
}

static void
api_add_list(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, add_list_authed);
}

static void
leave_done(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_MISSING) {
		http_json_error(c->res, 404, "Not a member of that channel");
	} else {
		struct json_object *r = tracker_success();
		tracker_add_str(r, "channel", c->sc.channel);
		http_json_respond(c->res, 200, r);
	}
	tracker_call_end(c);
}

static void
leave_authed(struct tracker_call *c)
{
	if (channel_from_body(c) == 0)
		tracker_call_store(c, c->t->state->ops->channel_leave, leave_done);
}

static void
api_leave(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, leave_authed);
}

static int query_get(const struct http_request *req, const char *key, char *out, size_t outsz);
static int query_limit(const struct http_request *req, size_t *limit, struct http_response *res);

static void
channels_done(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; i < c->sc.n; i++) {
		struct json_object *o = json_object_new_object();
		tracker_add_str(o, "name", c->sc.chans[i].name);
		tracker_add_int(o, "members", (int64_t)c->sc.chans[i].members);
		json_object_array_add(list, o);
	}
	struct json_object *r = tracker_success();
	tracker_add_int(r, "count", (int64_t)c->sc.n);
	tracker_add_int(r, "total", (int64_t)c->sc.channel_count);
	json_object_object_add(r, "channels", list);
	if (c->sc.more && c->sc.n > 0)
		tracker_add_str(r, "next", c->sc.chans[c->sc.n - 1].name);
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

/* GET /channels[?after=NAME][&limit=N]: a page of channels in name order,
 * with "next" (the name to pass as after) when more follow. */
static void
channels_authed(struct tracker_call *c)
{
	char after[TRACKER_QUERY_VALUE_MAX] = "";

	call_config(c);
	if (query_get(c->req, "after", after, sizeof(after)) < 0) {
		http_json_error(c->res, 400, "Invalid query string");
		tracker_call_end(c);
		return;
	}
	if (query_limit(c->req, &c->sc.limit, c->res) < 0 ||
	    (after[0] != '\0' &&
	        tracker_check_channel(after, strlen(after), c->sc.after, c->res) < 0)) {
		tracker_call_end(c);
		return;
	}
	tracker_call_store(c, c->t->state->ops->channel_list, channels_done);
}

static void
api_channels(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, channels_authed);
}

/* Listings. */

struct list_query {
	char channel[HY_CHANNEL_MAX + 1]; /* "" for every peer */
	char after[HY_NAME_MAX + 1]; /* "" for the start */
	size_t limit; /* the page size, then the one asked for if lower */
	int all; /* members=all: a channel's offline members too */
};

/* Finds key in the query string: 1 with the decoded value in out, 0 if
 * absent, -1 if malformed or too long. */
static int
query_get(const struct http_request *req, const char *key, char *out, size_t outsz)
{
	const char *q = req->head.query, *end;
	size_t klen = strlen(key);

	if (q == NULL)
		return 0; /* and no arithmetic on NULL, undefined even with 0 */
	end = q + req->head.query_len;
	if (http_form_get(q, req->head.query_len, key, out, outsz) >= 0)
		return 1;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp != NULL ? amp : end;
		if ((size_t)(stop - q) >= klen && memcmp(q, key, klen) == 0 &&
		    (q + klen == stop || q[klen] == '='))
			return -1;
		q = stop + (amp != NULL);
	}
	return 0;
}

/* Lowers *limit (the page size, on entry) to the one asked for, if any. */
static int
list_limit(int64_t v, int present, size_t *limit, struct http_response *res)
{
	if (!present)
		return 0;
	if (v < 1) {
		http_json_error(res, 400, "Invalid limit: a positive integer");
		return -1;
	}
	if ((uint64_t)v < *limit)
		*limit = (size_t)v;
	return 0;
}

/* The query's "limit", as list_limit. */
static int
query_limit(const struct http_request *req, size_t *limit, struct http_response *res)
{
	char text[TRACKER_QUERY_VALUE_MAX];
	int64_t v = 0;
	int rc = query_get(req, "limit", text, sizeof(text));

	if (rc < 0) {
		http_json_error(res, 400, "Invalid query string");
		return -1;
	}
	if (rc == 1) {
		char *end;
		errno = 0;
		long long n = strtoll(text, &end, 10);
		v = text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 ? n : -1;
	}
	return list_limit(v, rc == 1, limit, res);
}

static int
list_names(const char *channel, size_t chlen, const char *after, size_t aflen,
    struct list_query *lq, struct http_response *res)
{
	if (chlen > 0 && tracker_check_channel(channel, chlen, lq->channel, res) < 0)
		return -1;
	if (aflen > 0) {
		if (!hy_name_valid(after, aflen)) {
			http_json_error(res, 400, "Invalid after: a username");
			return -1;
		}
		memcpy(lq->after, after, aflen);
	}
	return 0;
}

static int
list_from_query(const struct http_request *req, struct list_query *lq, struct http_response *res)
{
	char channel[TRACKER_QUERY_VALUE_MAX] = "", after[TRACKER_QUERY_VALUE_MAX] = "";
	char members[TRACKER_QUERY_VALUE_MAX];
	int has_members;

	if (query_get(req, "channel", channel, sizeof(channel)) < 0 ||
	    query_get(req, "after", after, sizeof(after)) < 0 ||
	    (has_members = query_get(req, "members", members, sizeof(members))) < 0) {
		http_json_error(res, 400, "Invalid query string");
		return -1;
	}
	if (has_members == 1 && (strcmp(members, "all") != 0 || channel[0] == '\0')) {
		http_json_error(res, 400, "Invalid members: \"all\", with a channel");
		return -1;
	}
	lq->all = has_members == 1;
	if (query_limit(req, &lq->limit, res) < 0)
		return -1;
	return list_names(channel, strlen(channel), after, strlen(after), lq, res);
}

static int
list_from_body(const struct http_request *req, struct list_query *lq, struct http_response *res,
    const char *user)
{
	struct json_object *o = tracker_body_for(req, res, user);
	const char *channel = "", *after = "";
	size_t chlen = 0, aflen = 0;
	int64_t v = 0;
	int rc = -1, has_limit;

	if (o == NULL)
		return -1;
	if (tracker_field_str(o, "channel", 0, &channel, &chlen, res) >= 0 &&
	    tracker_field_str(o, "after", 0, &after, &aflen, res) >= 0 &&
	    (has_limit = tracker_field_int(o, "limit", 0, 1, INT64_MAX, &v, res)) >= 0 &&
	    list_limit(v, has_limit, &lq->limit, res) == 0)
		rc = list_names(channel, chlen, after, aflen, lq, res);
	json_object_put(o);
	return rc;
}

/* The listing is the hot path: written straight into the body, which is
 * safe because every string in it was validated to need no escaping. */
static void
get_list_done(struct tracker_call *c)
{
	struct http_response *res = c->res;
	struct buf *b = &res->body;

	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_MISSING) {
		http_json_error(res, 404, "No such channel");
		tracker_call_end(c);
		return;
	}
	res->status = 200;
	b->len = 0;
	buf_append_str(b, "{\"status\":\"success\",\"peers\":[");
	for (size_t i = 0; i < c->sc.n; i++) {
		const struct store_peer *p = &c->sc.peers[i];
		if (i > 0)
			buf_append_char(b, ',');
		buf_append_str(b, "{\"username\":\"");
		buf_append_str(b, p->name);
		if (p->online) {
			buf_append_str(b, "\",\"ip\":\"");
			buf_append_str(b, p->ip);
			buf_append_str(b, "\",\"port\":");
			buf_append_u64(b, p->port);
			/* A connection's address and an address inet_pton()
			 * passed: no escaping needed. */
			if (p->observed[0] != '\0' && strcmp(p->observed, p->ip) != 0) {
				buf_append_str(b, ",\"observed_ip\":\"");
				buf_append_str(b, p->observed);
				buf_append_char(b, '"');
			}
			if (p->ip6[0] != '\0' && strcmp(p->ip6, p->ip) != 0) {
				buf_append_str(b, ",\"ip6\":\"");
				buf_append_str(b, p->ip6);
				buf_append_char(b, '"');
			}
		} else {
			/* No address: an offline member is named, not reachable. */
			buf_append_str(b, "\",\"online\":false");
		}
		if (p->pubkey[0] != '\0') {
			buf_append_str(b, ",\"pubkey\":\"");
			buf_append_str(b, p->pubkey);
			buf_append_char(b, '"');
		}
		tracker_profile_append(b, p);
		buf_append_char(b, '}');
	}
	buf_append_str(b, "],\"count\":");
	buf_append_u64(b, (uint64_t)c->sc.n);
	if (c->sc.channel[0])
		buf_printf(b, ",\"channel\":\"%s\"", c->sc.channel);
	if (c->sc.more && c->sc.n > 0)
		buf_printf(b, ",\"next\":\"%s\"", c->sc.peers[c->sc.n - 1].name);
	buf_append_char(b, '}');
	http_response_header(res, "Content-Type", "application/json");
	tracker_call_end(c);
}

static void
get_list_authed(struct tracker_call *c)
{
	struct list_query lq = { .limit = c->t->cfg.page_max };

	if ((c->req->method == HTTP_POST ? list_from_body(c->req, &lq, c->res, c->user)
	                                 : list_from_query(c->req, &lq, c->res)) < 0) {
		tracker_call_end(c);
		return;
	}
	call_config(c);
	c->sc.limit = lq.limit;
	c->sc.all = lq.all;
	memcpy(c->sc.channel, lq.channel, sizeof(lq.channel));
	memcpy(c->sc.after, lq.after, sizeof(lq.after));
	tracker_call_store(c, c->t->state->ops->peer_list, get_list_done);
}

/* The listing with its token checked in the same store operation (one
 * round trip): the store named the token's user. */
static void
get_list_checked(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_BAD_TOKEN) {
		tracker_call_bad_token(c);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", c->sc.user);
	get_list_done(c);
}

static void
get_list_with_token(struct tracker_call *c)
{
	struct list_query lq = { .limit = c->t->cfg.page_max };

	(void)list_from_query(c->req, &lq, c->res); /* api_get_list() found it valid */
	call_config(c);
	c->sc.limit = lq.limit;
	c->sc.all = lq.all;
	c->sc.with_token = 1;
	memcpy(c->sc.channel, lq.channel, sizeof(lq.channel));
	memcpy(c->sc.after, lq.after, sizeof(lq.after));
	tracker_call_store(c, c->t->state->ops->peer_list, get_list_checked);
}

/* A GET with a valid query takes one store operation, the token checked
 * with the listing; anything else the usual way, so that its errors come
 * in the usual order (401 before 400). */
static void
api_get_list(struct http_request *req, struct http_response *res, void *ctx)
{
	struct list_query lq = { .limit = ((struct tracker *)ctx)->cfg.page_max };
	struct http_response scratch;
	int valid = 0;

	if (req->method == HTTP_GET) {
		http_response_init(&scratch);
		valid = list_from_query(req, &lq, &scratch) == 0;
		http_response_fini(&scratch);
	}
	if (valid)
		tracker_call_run_token(ctx, req, res, "", get_list_with_token);
	else
		tracker_call_run(ctx, req, res, get_list_authed);
}

static void
peer_done(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_MISSING) {
		http_json_error(c->res, 404, "No such user");
		tracker_call_end(c);
		return;
	}
	struct json_object *r = tracker_success();
	json_object_object_add(r, "username", json_object_new_string(c->sc.user));
	json_object_object_add(r, "online", json_object_new_boolean(c->sc.online));
	if (c->sc.online) {
		const struct store_peer *p = &c->sc.info;
		json_object_object_add(r, "ip", json_object_new_string(p->ip));
		tracker_add_int(r, "port", (int64_t)p->port);
		if (p->observed[0] != '\0' && strcmp(p->observed, p->ip) != 0)
			tracker_add_str(r, "observed_ip", p->observed);
		if (p->ip6[0] != '\0' && strcmp(p->ip6, p->ip) != 0)
			tracker_add_str(r, "ip6", p->ip6);
	}
	if (c->sc.info.pubkey[0] != '\0')
		json_object_object_add(r, "pubkey", json_object_new_string(c->sc.info.pubkey));
	tracker_profile_add(r, &c->sc.info);
	if (c->sc.channel[0] != '\0') {
		json_object_object_add(r, "channel", json_object_new_string(c->sc.channel));
		json_object_object_add(r, "member", json_object_new_boolean(c->sc.member));
	}
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

/* One user, online or not: the way to learn a key without scanning
 * /get-list, and with ?channel=NAME whether the user is a member of it
 * (online or not). 404 means there is no such account. */
static void
peer_authed(struct tracker_call *c)
{
	char channel[TRACKER_QUERY_VALUE_MAX] = "";
	size_t len;
	const char *param = http_request_param(c->req, "username", &len);

	call_config(c);
	if (param == NULL || !hy_name_valid(param, len)) {
		http_json_error(c->res, 400, "Invalid username");
		tracker_call_end(c);
		return;
	}
	memcpy(c->sc.user, param, len);
	c->sc.user[len] = '\0';
	if (query_get(c->req, "channel", channel, sizeof(channel)) < 0) {
		http_json_error(c->res, 400, "Invalid query string");
		tracker_call_end(c);
		return;
	}
	if (channel[0] != '\0' &&
	    tracker_check_channel(channel, strlen(channel), c->sc.channel, c->res) < 0) {
		tracker_call_end(c);
		return;
	}
	tracker_call_store(c, c->t->state->ops->peer_info, peer_done);
}

static void
api_peer(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, peer_authed);
}

static void
stats_done(struct tracker_call *c)
{
	struct tracker *t = c->t;

	if (tracker_call_failed(c))
		return;
	struct json_object *r = tracker_success();
	tracker_add_int(r, "peers", (int64_t)c->sc.total);
	tracker_add_int(r, "channels", (int64_t)c->sc.channel_count);
	tracker_add_int(r, "accounts", (int64_t)c->sc.accounts);
	tracker_add_int(r, "sessions", (int64_t)c->sc.sessions);
	tracker_add_int(r, "requests", (int64_t)atomic_load(&t->requests));
	tracker_add_int(r, "uptime", (int64_t)((hy_now_ms() - t->start_ms) / 1000));
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

static void
stats_authed(struct tracker_call *c)
{
	tracker_call_store(c, c->t->state->ops->stats, stats_done);
}

static void
api_stats(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, stats_authed);
}

static const struct router_route tracker_routes[] = {
	{ HTTP_POST, "/register", tracker_api_register },
	{ HTTP_POST, "/login", tracker_api_login },
	{ HTTP_POST, "/logout", tracker_api_logout },
	{ HTTP_POST, "/submit-info", api_submit_info },
	{ HTTP_POST, "/heartbeat", api_heartbeat },
	{ HTTP_POST, "/add-list", api_add_list },
	{ HTTP_POST, "/leave", api_leave },
	{ HTTP_GET, "/get-list", api_get_list },
	{ HTTP_POST, "/get-list", api_get_list },
	{ HTTP_GET, "/peers/:username", api_peer },
	{ HTTP_POST, "/profile", tracker_api_profile },
	{ HTTP_GET, "/channels", api_channels },
	{ HTTP_GET, "/stats", api_stats },
	/* NAT traversal: tracker_nat.c */
	{ HTTP_GET, "/whoami", tracker_api_whoami },
	{ HTTP_POST, "/rendezvous", tracker_api_rendezvous },
	{ HTTP_GET, "/hints", tracker_api_hints },
	{ HTTP_GET, NULL, NULL },
};

static void
count_request(const struct http_request *req, int status, void *ctx)
{
	struct tracker *t = ctx;

	(void)req;
	(void)status;
	atomic_fetch_add(&t->requests, 1);
}

void
tracker_config_defaults(struct tracker_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ttl_ms = TRACKER_DEFAULT_TTL_S * 1000ULL;
	cfg->token_ttl_ms = TRACKER_TOKEN_TTL_S * 1000ULL;
	login_guard_defaults(&cfg->guard);
	cfg->max_user_channels = TRACKER_MAX_USER_CHANNELS;
	cfg->max_channels = TRACKER_MAX_CHANNELS;
	cfg->page_max = TRACKER_LIST_CAP;
	tracker_mailbox_defaults(&cfg->mailbox);
}

/* A tracker on state, with st (NULL for none) keeping what the shared
 * state does not: the mailbox. */
static struct tracker *
tracker_make(
    struct store_state *state, struct store *st, const struct tracker_config *cfg, char **cause)
{
	struct tracker *t = xcalloc(1, sizeof(*t));

	t->state = state;
	t->store = st;
	t->cfg = *cfg;
	t->start_ms = hy_now_ms();
	atomic_init(&t->requests, 0);
	uv_mutex_init(&t->jobs_lock);
	if (tracker_hash_password("hychat-dummy", strlen("hychat-dummy"), t->dummy_hash) != 0) {
		uv_mutex_destroy(&t->jobs_lock);
		free(t);
		*cause = xstrdup("cannot hash: out of memory");
		return NULL;
	}
	t->guard = login_guard_new(&cfg->guard);
	t->nat = tracker_nat_new();
	t->router = router_new(t);
	router_add_table(t->router, tracker_routes);
	router_add_table(t->router, tracker_mailbox_routes);
	tracker_mailbox_init(t);
	router_set_logger(t->router, count_request);
	return t;
}

struct tracker *
tracker_new_state(struct store_state *state, const struct tracker_config *cfg, char **cause)
{
	return tracker_make(state, NULL, cfg, cause);
}

struct tracker *
tracker_new(struct store *st, const struct tracker_config *cfg, char **cause)
{
	struct store_state *state = store_state_local_new(st, cause);

	if (state == NULL)
		return NULL;
	struct tracker *t = tracker_make(state, st, cfg, cause);
	if (t == NULL) {
		state->ops->close(state);
		return NULL;
	}
	t->own_state = 1;
	return t;
}

void
tracker_free(struct tracker *t)
{
	if (t == NULL)
		return;
	router_free(t->router);
	tracker_nat_free(t->nat);
	if (t->own_state)
		t->state->ops->close(t->state);
	login_guard_free(t->guard);
	uv_mutex_destroy(&t->jobs_lock);
	free(t);
}

struct router *
tracker_router(struct tracker *t)
{
	return t->router;
}

void
tracker_sweep(struct tracker *t)
{
	tracker_sweep_on(t, NULL);
}

void
tracker_sweep_on(struct tracker *t, uv_loop_t *loop)
{
	if (t->state->ops->sweep != NULL)
		t->state->ops->sweep(t->state);
	tracker_mailbox_sweep(t, loop);
}
