/* tracker_api.c — the tracker's route table and the discovery half of the
 * API: peer registration and liveness, channels, listings, stats; and the
 * tracker's life (loading the store, the sweep).
 *
 * Each handler checks in this order: the bearer token (401), the body
 * (400), that the body's "username", if any, is the token's user (403),
 * then the fields (400), then acts under the registry lock. The store is
 * written before the registry, so a failed write leaves both as they were.
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

/* Peers. */

/* The fields of /submit-info, checked before anything changes. */
struct submit {
	const char *ip;
	int64_t port;
	size_t nchannels;
	char channels[TRACKER_MAX_CHANNELS_PER_CALL][HY_CHANNEL_MAX + 1];
	int has_pubkey;
	size_t pubkey_len;
	uint8_t pubkey[REG_PUBKEY_MAX];
};

static int
submit_fields(struct json_object *o, struct submit *s, struct http_response *res)
{
	struct json_object *chans;
	const char *key;
	size_t len;
	unsigned char addr[sizeof(struct in6_addr)];

	if (tracker_field_str(o, "ip", 1, &s->ip, &len, res) < 0 ||
	    tracker_field_int(o, "port", 1, 1, 65535, &s->port, res) < 0)
		return -1;
	if (len > REG_IP_MAX ||
	    (inet_pton(AF_INET, s->ip, addr) != 1 && inet_pton(AF_INET6, s->ip, addr) != 1)) {
		http_json_error(res, 400, "Field ip must be an IPv4 or IPv6 address");
		return -1;
	}
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
	if (rc == 1) {
		if (sodium_base642bin(s->pubkey, sizeof(s->pubkey), key, len, NULL, &s->pubkey_len,
		        NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    s->pubkey_len == 0) {
			http_json_error(res, 400, "Field pubkey must be 1 to 64 bytes in base64");
			return -1;
		}
		s->has_pubkey = 1;
	}
	return 0;
}

/* True if user may join channel (not yet a member) within the caps; else
 * writes the reason, naming the cap, to msg. Under the lock. */
static int
join_allowed(
    const struct tracker *t, const char *user, const char *channel, char *msg, size_t msgsz)
{
	if (registry_user_channels(t->reg, user) >= t->cfg.max_user_channels) {
		snprintf(msg, msgsz,
		    "Channel cap reached: a user may be in at most %zu channels "
		    "(--max-channels-per-user); leave one first",
		    t->cfg.max_user_channels);
		return 0;
	}
	if (!registry_channel_exists(t->reg, channel) &&
	    registry_channel_count(t->reg) >= t->cfg.max_channels) {
		snprintf(msg, msgsz,
		    "Channel cap reached: the tracker holds at most %zu channels (--max-channels)",
		    t->cfg.max_channels);
		return 0;
	}
	return 1;
}

static void
api_submit_info(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1];
	struct json_object *o;
	struct submit s = { 0 };
	char *cause = NULL, capped[160] = "";
	int rc = 0;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0 ||
	    (o = tracker_body_for(req, res, user)) == NULL)
		return;
	if (submit_fields(o, &s, res) < 0 ||
	    tracker_check_peer_ip(
	        t, s.ip, req->conn != NULL ? http_conn_remote(req->conn) : NULL, res) < 0) {
		json_object_put(o);
		return;
	}
	struct json_object *refused = json_object_new_array();
	tracker_wr_lock(t);
	if (s.has_pubkey && registry_pubkey_differs(t->reg, user, s.pubkey, s.pubkey_len)) {
		rc = t->store->ops->pubkey_set(t->store, user, s.pubkey, s.pubkey_len, &cause);
		if (rc == 0)
			registry_pubkey_set(t->reg, user, s.pubkey, s.pubkey_len);
	}
	/* Channels past a cap are left out, and said so, but the address is
	 * registered: a full tracker must not keep a peer offline. */
	for (size_t i = 0; rc == 0 && i < s.nchannels; i++) {
		if (registry_is_member(t->reg, s.channels[i], user))
			continue;
		if (!join_allowed(t, user, s.channels[i], capped, sizeof(capped))) {
			json_object_array_add(refused, json_object_new_string(s.channels[i]));
			continue;
		}
		rc = t->store->ops->join(t->store, s.channels[i], user, &cause);
		if (rc == 0)
			registry_join(t->reg, s.channels[i], user);
	}
	uint32_t id = 0;
	size_t total = 0;
	if (rc == 0) {
		id = registry_peer_set(
		    t->reg, user, s.ip, (unsigned)s.port, hy_now_ms() + t->cfg.ttl_ms);
		total = registry_online(t->reg);
	}
	tracker_unlock(t);
	json_object_put(o);
	if (rc < 0) {
		json_object_put(refused);
		tracker_store_failed(res, cause);
		return;
	}
	const char *observed = req->conn != NULL ? http_conn_remote(req->conn) : NULL;
	tracker_nat_observe(t, user, observed);
	struct json_object *r = tracker_success();
	if (observed != NULL)
		tracker_add_str(r, "observed_ip", observed);
	if (json_object_array_length(refused) > 0) {
		tracker_add_str(r, "message", capped);
		json_object_object_add(r, "refused_channels", refused);
	} else {
		json_object_put(refused);
	}
	tracker_add_int(r, "peer_id", id);
	tracker_add_int(r, "total_peers", (int64_t)total);
	tracker_add_int(r, "heartbeat_interval", heartbeat_interval_s(t));
	tracker_add_int(r, "ttl", (int64_t)(t->cfg.ttl_ms / 1000));
	tracker_mailbox_hint(t, user, r);
	http_json_respond(res, 200, r);
}

static void
api_heartbeat(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1];
	struct json_object *o;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0 ||
	    (o = tracker_body_for(req, res, user)) == NULL)
		return;
	json_object_put(o);
	tracker_wr_lock(t);
	uint64_t now = hy_now_ms();
	int rc = registry_peer_renew(t->reg, user, now, now + t->cfg.ttl_ms);
	tracker_unlock(t);
	if (rc < 0) {
		http_json_error(res, 404, "Not online: send /submit-info first");
		return;
	}
	struct json_object *r = tracker_success();
	tracker_add_int(r, "heartbeat_interval", heartbeat_interval_s(t));
	tracker_add_int(r, "ttl", (int64_t)(t->cfg.ttl_ms / 1000));
	tracker_mailbox_hint(t, user, r);
	http_json_respond(res, 200, r);
}

/* Channels. */

static void
add_member(const char *name, void *arg)
{
	json_object_array_add(arg, json_object_new_string(name));
}

static void
api_add_list(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1], channel[HY_CHANNEL_MAX + 1];
	struct json_object *o, *members = json_object_new_array();
	char *cause = NULL, capped[160];
	int rc = 0;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0 ||
	    (o = tracker_body_for(req, res, user)) == NULL) {
		json_object_put(members);
		return;
	}
	if (tracker_field_channel(o, channel, res) < 0) {
		json_object_put(o);
		json_object_put(members);
		return;
	}
	json_object_put(o);
	tracker_wr_lock(t);
	if (!registry_is_member(t->reg, channel, user) &&
	    !join_allowed(t, user, channel, capped, sizeof(capped))) {
		tracker_unlock(t);
		json_object_put(members);
		http_json_error(res, 403, capped);
		return;
	}
	if (!registry_is_member(t->reg, channel, user)) {
		rc = t->store->ops->join(t->store, channel, user, &cause);
		if (rc == 0)
			registry_join(t->reg, channel, user);
	}
	long count = 0;
	if (rc == 0)
		count = registry_members(t->reg, channel, t->cfg.page_max, add_member, members);
	tracker_unlock(t);
	if (rc < 0) {
		json_object_put(members);
		tracker_store_failed(res, cause);
		return;
	}
	struct json_object *r = tracker_success();
	tracker_add_str(r, "channel", channel);
	json_object_object_add(r, "members", members);
	tracker_add_int(r, "member_count", count);
	http_json_respond(res, 200, r);
}

static void
api_leave(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1], channel[HY_CHANNEL_MAX + 1];
	struct json_object *o;
	char *cause = NULL;
	int rc = -1, member;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0 ||
	    (o = tracker_body_for(req, res, user)) == NULL)
		return;
	rc = tracker_field_channel(o, channel, res);
	json_object_put(o);
	if (rc < 0)
		return;
	tracker_wr_lock(t);
	member = registry_is_member(t->reg, channel, user);
	if (member) {
		rc = t->store->ops->leave(t->store, channel, user, &cause);
		if (rc == 0)
			registry_leave(t->reg, channel, user);
	}
	tracker_unlock(t);
	if (!member) {
		http_json_error(res, 404, "Not a member of that channel");
	} else if (rc < 0) {
		tracker_store_failed(res, cause);
	} else {
		struct json_object *r = tracker_success();
		tracker_add_str(r, "channel", channel);
		http_json_respond(res, 200, r);
	}
}

static void
add_channel(const char *name, size_t members, void *arg)
{
	struct json_object *c = json_object_new_object();

	tracker_add_str(c, "name", name);
	tracker_add_int(c, "members", (int64_t)members);
	json_object_array_add(arg, c);
}

static int query_get(const struct http_request *req, const char *key, char *out, size_t outsz);
static int query_limit(const struct http_request *req, size_t *limit, struct http_response *res);

/* GET /channels[?after=NAME][&limit=N]: a page of channels in name order,
 * with "next" (the name to pass as after) when more follow. */
static void
api_channels(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1], after[TRACKER_QUERY_VALUE_MAX] = "";
	char canon[HY_CHANNEL_MAX + 1] = "";
	size_t limit;
	int more = 0;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0)
		return;
	if (query_get(req, "after", after, sizeof(after)) < 0) {
		http_json_error(res, 400, "Invalid query string");
		return;
	}
	limit = t->cfg.page_max;
	if (query_limit(req, &limit, res) < 0 ||
	    (after[0] != '\0' && tracker_check_channel(after, strlen(after), canon, res) < 0))
		return;
	struct json_object *list = json_object_new_array();
	tracker_rd_lock(t);
	size_t n =
	    registry_channels(t->reg, canon[0] ? canon : NULL, limit, add_channel, list, &more);
	size_t total = registry_channel_count(t->reg);
	tracker_unlock(t);
	struct json_object *r = tracker_success();
	tracker_add_int(r, "count", (int64_t)n);
	tracker_add_int(r, "total", (int64_t)total);
	json_object_object_add(r, "channels", list);
	if (more && n > 0) {
		struct json_object *last = json_object_array_get_idx(list, n - 1), *name;
		if (json_object_object_get_ex(last, "name", &name))
			tracker_add_str(r, "next", json_object_get_string(name));
	}
	http_json_respond(res, 200, r);
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
struct list_out {
	struct buf *b;
	size_t n;
	const char *last; /* valid under the lock only */
	struct tracker *t;
};

static void
add_peer(const struct registry_peer *p, void *arg)
{
	struct list_out *out = arg;
	struct buf *b = out->b;

	if (out->n++ > 0)
		buf_append_char(b, ',');
	buf_append_str(b, "{\"username\":\"");
	buf_append_str(b, p->name);
	if (p->online) {
		buf_append_str(b, "\",\"ip\":\"");
		buf_append_str(b, p->ip);
		buf_append_str(b, "\",\"port\":");
		buf_append_u64(b, p->port);
		char observed[TRACKER_NAT_IP_MAX];
		if (tracker_nat_observed(out->t, p->name, observed) &&
		    strcmp(observed, p->ip) != 0) {
			buf_append_str(b, ",\"observed_ip\":\"");
			buf_append_str(b, observed);
			buf_append_char(b, '"');
		}
	} else {
		/* No address: an offline member is named, not reachable. */
		buf_append_str(b, "\",\"online\":false");
	}
	if (p->pubkey != NULL) {
		buf_append_str(b, ",\"pubkey\":\"");
		buf_append_str(b, p->pubkey);
		buf_append_char(b, '"');
	}
	buf_append_str(b, tracker_profile_json(out->t, p->name));
	buf_append_char(b, '}');
	out->last = p->name;
}

static void
api_get_list(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1], next[HY_NAME_MAX + 1] = "";
	struct list_query lq = { .limit = t->cfg.page_max };
	struct list_out out = { .b = &res->body, .t = t };
	int more = 0;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0)
		return;
	if ((req->method == HTTP_POST ? list_from_body(req, &lq, res, user)
	                              : list_from_query(req, &lq, res)) < 0)
		return;
	res->status = 200;
	res->body.len = 0;
	buf_append_str(&res->body, "{\"status\":\"success\",\"peers\":[");
	tracker_rd_lock(t);
	long n = (lq.all ? registry_list_members : registry_list)(t->reg,
	    lq.channel[0] ? lq.channel : NULL, lq.after[0] ? lq.after : NULL, lq.limit, hy_now_ms(),
	    add_peer, &out, &more);
	if (more)
		snprintf(next, sizeof(next), "%s", out.last);
	tracker_unlock(t);
	if (n < 0) {
		http_json_error(res, 404, "No such channel");
		return;
	}
	buf_append_str(&res->body, "],\"count\":");
	buf_append_u64(&res->body, (uint64_t)n);
	if (lq.channel[0])
		buf_printf(&res->body, ",\"channel\":\"%s\"", lq.channel);
	if (more)
		buf_printf(&res->body, ",\"next\":\"%s\"", next);
	buf_append_char(&res->body, '}');
	http_response_header(res, "Content-Type", "application/json");
}

/* One user, online or not: the way to learn a key without scanning
 * /get-list, and with ?channel=NAME whether the user is a member of it
 * (online or not). 404 means there is no such account. */
static void
api_peer(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1], name[HY_NAME_MAX + 1], hash[STORE_HASH_MAX];
	char channel[TRACKER_QUERY_VALUE_MAX] = "", canon[HY_CHANNEL_MAX + 1];
	struct registry_user_info info;
	char *cause = NULL;
	size_t len;
	const char *param = http_request_param(req, "username", &len);
	int member = 0;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0)
		return;
	if (param == NULL || !hy_name_valid(param, len)) {
		http_json_error(res, 400, "Invalid username");
		return;
	}
	memcpy(name, param, len);
	name[len] = '\0';
	if (query_get(req, "channel", channel, sizeof(channel)) < 0) {
		http_json_error(res, 400, "Invalid query string");
		return;
	}
	if (channel[0] != '\0' && tracker_check_channel(channel, strlen(channel), canon, res) < 0)
		return;
	struct json_object *profile = json_object_new_object();
	tracker_rd_lock(t);
	int online = registry_user_info(t->reg, name, hy_now_ms(), &info);
	if (channel[0] != '\0')
		member = registry_is_member(t->reg, canon, name);
	tracker_profile_add(t, profile, name);
	tracker_unlock(t);
	if (online < 0) {
		/* The registry holds every user with a key or an address; the
		 * store says whether a keyless, never-seen account exists. */
		int found = t->store->ops->user_hash(t->store, name, hash, &cause);
		sodium_memzero(hash, sizeof(hash));
		if (found < 0) {
			json_object_put(profile);
			tracker_store_failed(res, cause);
			return;
		}
		if (found == 0) {
			json_object_put(profile);
			http_json_error(res, 404, "No such user");
			return;
		}
		online = 0;
	}
	struct json_object *r = tracker_success();
	json_object_object_add(r, "username", json_object_new_string(name));
	json_object_object_add(r, "online", json_object_new_boolean(online > 0));
	if (online > 0) {
		char observed[TRACKER_NAT_IP_MAX];
		json_object_object_add(r, "ip", json_object_new_string(info.ip));
		tracker_add_int(r, "port", (int64_t)info.port);
		if (tracker_nat_observed(t, name, observed) && strcmp(observed, info.ip) != 0)
			tracker_add_str(r, "observed_ip", observed);
	}
	if (info.pubkey[0] != '\0')
		json_object_object_add(r, "pubkey", json_object_new_string(info.pubkey));
	json_object_object_foreach(profile, key, val)
	    json_object_object_add(r, key, json_object_get(val));
	json_object_put(profile);
	if (channel[0] != '\0') {
		json_object_object_add(r, "channel", json_object_new_string(canon));
		json_object_object_add(r, "member", json_object_new_boolean(member));
	}
	http_json_respond(res, 200, r);
}

static void
api_stats(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1];
	uint64_t accounts = 0;
	char *cause = NULL;

	if (tracker_auth(t, req, res, user, NULL, NULL) < 0)
		return;
	if (t->store->ops->user_count(t->store, &accounts, &cause) < 0) {
		tracker_store_failed(res, cause);
		return;
	}
	tracker_rd_lock(t);
	size_t peers = registry_online(t->reg), channels = registry_channel_count(t->reg);
	size_t tokens = registry_token_count(t->reg);
	tracker_unlock(t);
	struct json_object *r = tracker_success();
	tracker_add_int(r, "peers", (int64_t)peers);
	tracker_add_int(r, "channels", (int64_t)channels);
	tracker_add_int(r, "accounts", (int64_t)accounts);
	tracker_add_int(r, "sessions", (int64_t)tokens);
	tracker_add_int(r, "requests", (int64_t)atomic_load(&t->requests));
	tracker_add_int(r, "uptime", (int64_t)((hy_now_ms() - t->start_ms) / 1000));
	http_json_respond(res, 200, r);
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

static void
load_member(const char *channel, const char *name, void *arg)
{
	char canon[HY_CHANNEL_MAX + 1];

	if (hy_name_valid(name, strlen(name)) &&
	    hy_channel_canon(channel, strlen(channel), canon) == 0)
		registry_join(arg, canon, name);
}

static void
load_pubkey(const char *name, const uint8_t *key, size_t len, void *arg)
{
	if (hy_name_valid(name, strlen(name)) && len <= REG_PUBKEY_MAX)
		registry_pubkey_set(arg, name, key, len);
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

struct tracker *
tracker_new(struct store *st, const struct tracker_config *cfg, char **cause)
{
	struct tracker *t = xcalloc(1, sizeof(*t));
	pthread_rwlockattr_t attr;

	t->store = st;
	t->cfg = *cfg;
	t->reg = registry_new();
	t->start_ms = hy_now_ms();
	atomic_init(&t->requests, 0);
	t->guard = login_guard_new(&cfg->guard);
	uv_mutex_init(&t->jobs_lock);
	if (st->ops->each_member(st, load_member, t->reg, cause) < 0 ||
	    st->ops->each_pubkey(st, load_pubkey, t->reg, cause) < 0 ||
	    tracker_profiles_load(t, cause) < 0) {
		tracker_profiles_free(t);
		registry_free(t->reg);
		login_guard_free(t->guard);
		uv_mutex_destroy(&t->jobs_lock);
		free(t);
		return NULL;
	}
	if (tracker_hash_password("hychat-dummy", strlen("hychat-dummy"), t->dummy_hash) != 0) {
		tracker_profiles_free(t);
		registry_free(t->reg);
		login_guard_free(t->guard);
		uv_mutex_destroy(&t->jobs_lock);
		free(t);
		*cause = xstrdup("cannot hash: out of memory");
		return NULL;
	}
	/* Writers first: a stream of listings must not starve heartbeats. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	t->nat = tracker_nat_new();
	t->router = router_new(t);
	router_add_table(t->router, tracker_routes);
	router_add_table(t->router, tracker_mailbox_routes);
	tracker_mailbox_init(t);
	router_set_logger(t->router, count_request);
	return t;
}

void
tracker_free(struct tracker *t)
{
	if (t == NULL)
		return;
	router_free(t->router);
	tracker_profiles_free(t);
	tracker_mailbox_fini(t);
	tracker_nat_free(t->nat);
	registry_free(t->reg);
	login_guard_free(t->guard);
	pthread_rwlock_destroy(&t->lock);
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
	tracker_wr_lock(t);
	registry_sweep(t->reg, hy_now_ms(), TRACKER_SWEEP_SLICE);
	tracker_unlock(t);
	tracker_mailbox_sweep(t);
}
