/* tracker_mailbox.c — the mailbox's routes: deposits of sealed blobs for
 * a recipient, the recipient's pages of them, its acknowledgements, the
 * expiry of old ones, and the "mail" hint in other answers.
 *
 * The sender is known here only as the bearer of a token, for its rate:
 * nothing about it is stored with the message.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hychat/log.h"
#include "tracker_internal.h"

#define MAILBOX_NUM_MAX 32 /* digits of a query number, with room */

static const struct {
	const char *flag;
	size_t offset;
	uint64_t def, min, max;
	const char *range;
} mailbox_options[] = {
#define MAILBOX_ENTRY(field, flag, def, min, max, help) \
	{ flag, offsetof(struct tracker_mailbox_config, field), def, min, max, \
		"expected a number from " #min " to " #max },
	MAILBOX_OPTIONS(MAILBOX_ENTRY)
#undef MAILBOX_ENTRY
};

void
tracker_mailbox_defaults(struct tracker_mailbox_config *cfg)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(mailbox_options); i++)
		*(uint64_t *)(void *)((char *)cfg + mailbox_options[i].offset) =
		    mailbox_options[i].def;
}

int
tracker_mailbox_option(
    struct tracker_mailbox_config *cfg, const char *flag, const char *value, const char **err)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(mailbox_options); i++) {
		if (strcmp(flag, mailbox_options[i].flag) != 0)
			continue;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
		    v < mailbox_options[i].min || v > mailbox_options[i].max) {
			*err = mailbox_options[i].range;
			return -1;
		}
		*(uint64_t *)(void *)((char *)cfg + mailbox_options[i].offset) = v;
		return 1;
	}
	return 0;
}

/* Wall-clock milliseconds: deposit times outlive the process. */
static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Messages deposited before it have outlived the TTL. */
static uint64_t
mailbox_cutoff(const struct tracker *t, uint64_t wall)
{
	uint64_t ttl = t->cfg.mailbox.ttl_s * 1000;

	return wall > ttl ? wall - ttl : 0;
}

void
tracker_mailbox_init(struct tracker *t)
{
	atomic_init(&t->mail_swept_ms, 0);
}

/* A store without the mailbox's operations (a backend that has not got
 * them yet) leaves the routes answering 501 and the rest as it was. The
 * routes go through the shared state; the "mail" hint and the expiry
 * sweep, through the persistent store where it has them. */
static int
mailbox_ready(const struct tracker *t, struct http_response *res)
{
	const struct store_state_ops *ops = t->state->ops;

	if (ops->mail_add != NULL && ops->mail_list != NULL && ops->mail_delete != NULL)
		return 1;
	if (res != NULL)
		http_json_error(res, 501, "This tracker's store has no mailbox");
	return 0;
}

static int
mailbox_sync_ready(const struct tracker *t)
{
	const struct store_ops *ops = t->store != NULL ? t->store->ops : NULL;

	return ops != NULL && ops->mail_count != NULL && ops->mail_expire != NULL;
}

void
tracker_mailbox_hint(
    struct tracker *t, const char *user, const struct store_call *sc, struct json_object *answer)
{
	uint64_t msgs = 0, bytes = 0;
	char *cause = NULL;

	if (!mailbox_sync_ready(t)) {
		if (sc->mail_known)
			tracker_add_int(answer, "mail", (int64_t)sc->mail);
		return;
	}
	if (t->store->ops->mail_count(t->store, user, &msgs, &bytes, &cause) < 0) {
		free(cause);
		return;
	}
	tracker_add_int(answer, "mail", (int64_t)msgs);
}

static void
log_expired(int n)
{
	if (n > 0)
		log_info("mailbox sweep: %d expired message%s deleted", n, n == 1 ? "" : "s");
}

static void
sweep_done(struct store_call *c)
{
	if (c->result == STORE_DONE)
		log_expired((int)c->deleted);
	else if (c->result == STORE_FAILED)
		log_warn("mailbox sweep: %s", c->cause != NULL ? c->cause : "failed");
	store_call_fini(c);
	free(c);
}

/* A shared state's expiry, on loop (where its connection is). */
static void
sweep_shared(struct tracker *t, uv_loop_t *loop)
{
	struct store_call *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->done = sweep_done;
	c->before_ms = mailbox_cutoff(t, wall_ms());
	t->state->ops->mail_expire(t->state, c);
}

void
tracker_mailbox_sweep(struct tracker *t, uv_loop_t *loop)
{
	uint64_t now = hy_now_ms(), last = atomic_load(&t->mail_swept_ms);
	char *cause = NULL;

	if (last != 0 && now - last < MAILBOX_SWEEP_MS)
		return;
	if (!mailbox_sync_ready(t)) {
		if (loop != NULL && t->state->ops->mail_expire != NULL) {
			atomic_store(&t->mail_swept_ms, now);
			sweep_shared(t, loop);
		}
		return;
	}
	atomic_store(&t->mail_swept_ms, now);
	int n = t->store->ops->mail_expire(t->store, mailbox_cutoff(t, wall_ms()), &cause);
	if (n < 0) {
		log_warn("mailbox sweep: %s", cause);
		free(cause);
	} else {
		log_expired(n);
	}
}

static int deposit_decode(
    const char *b, size_t n, size_t max, struct http_response *res, uint8_t **blob, size_t *len);

/* Decodes the body, base64 (bare with white space after it, or as a JSON
 * string), into a new buffer; -1 after the answer. */
static int
deposit_blob(const struct tracker *t, const struct http_request *req, struct http_response *res,
    uint8_t **blob, size_t *len)
{
	const char *b = req->body;
	size_t n = req->body_len, max = (size_t)t->cfg.mailbox.message_max;
	struct json_object *str = NULL;

	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
		n--;
	if (n > 0 && b[0] == '"') {
		/* the same, as one JSON string (what a JSON client sends) */
		struct json_tokener *tok = json_tokener_new();
		str = json_tokener_parse_ex(tok, b, (int)n);
		int whole = json_tokener_get_error(tok) == json_tokener_success &&
		    json_tokener_get_parse_end(tok) == n;
		json_tokener_free(tok);
		if (!whole || !json_object_is_type(str, json_type_string)) {
			json_object_put(str);
			http_json_error(res, 400, "The body must be the message in base64");
			return -1;
		}
		b = json_object_get_string(str);
		n = (size_t)json_object_get_string_len(str);
	}
	int rc = deposit_decode(b, n, max, res, blob, len);
	json_object_put(str);
	return rc;
}

static int
deposit_decode(
    const char *b, size_t n, size_t max, struct http_response *res, uint8_t **blob, size_t *len)
{
	if (n == 0) {
		http_json_error(res, 400, "The body must be the message in base64");
		return -1;
	}
	if (n / 4 * 3 > max + 2) {
		char msg[128];
		snprintf(msg, sizeof(msg),
		    "Message too large: at most %zu bytes (--mailbox-message-max)", max);
		http_json_error(res, 413, msg);
		return -1;
	}
	*blob = xmalloc(n / 4 * 3 + 3);
	if (sodium_base642bin(
	        *blob, n / 4 * 3 + 3, b, n, NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    *len == 0) {
		free(*blob);
		http_json_error(res, 400, "The body must be the message in base64");
		return -1;
	}
	if (*len > max) {
		char msg[128];
		free(*blob);
		snprintf(msg, sizeof(msg),
		    "Message too large: at most %zu bytes (--mailbox-message-max)", max);
		http_json_error(res, 413, msg);
		return -1;
	}
	return 0;
}

/* A deposit on its way: the decoded blob. */
struct deposit {
	uint8_t *blob;
	size_t len;
};

static void
deposit_free(void *data)
{
	struct deposit *d = data;

	free(d->blob);
	free(d);
}

static void
deposit_stored(struct tracker_call *c)
{
	char msg[160];

	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_RATED) {
		unsigned retry = c->sc.retry_s > 0 ? c->sc.retry_s : 1;
		snprintf(msg, sizeof(msg),
		    "Too many messages deposited: try again in %u s (--mailbox-rate)", retry);
		http_json_error(c->res, 429, msg);
		http_response_headerf(c->res, "Retry-After", "%u", retry);
		tracker_call_end(c);
		return;
	}
	if (c->sc.result == STORE_QUOTA) {
		snprintf(msg, sizeof(msg), "%s's mailbox is full", c->sc.user);
		http_json_error(c->res, 507, msg);
		tracker_call_end(c);
		return;
	}
	struct json_object *r = tracker_success();
	tracker_add_int(r, "id", (int64_t)c->sc.mail_id);
	http_json_respond(c->res, 201, r);
	tracker_call_end(c);
}

/* The recipient exists (or not): the deposit, where the store counts the
 * sender's rate (shared by every tracker on it) and the quota. */
static void
deposit_found(struct tracker_call *c)
{
	struct tracker *t = c->t;
	const struct deposit *d = c->data;

	sodium_memzero(c->sc.hash, sizeof(c->sc.hash));
	if (tracker_call_failed(c))
		return;
	if (c->sc.result != STORE_DONE) {
		http_json_error(c->res, 404, "No such user");
		tracker_call_end(c);
		return;
	}
	snprintf(c->sc.sender, sizeof(c->sc.sender), "%s", c->user);
	c->sc.rate_per_min = (unsigned)t->cfg.mailbox.rate;
	c->sc.blob = d->blob;
	c->sc.blob_len = d->len;
	c->sc.now_ms = wall_ms();
	c->sc.max_msgs = t->cfg.mailbox.max_messages;
	c->sc.max_bytes = t->cfg.mailbox.max_bytes;
	c->sc.before_ms = mailbox_cutoff(t, c->sc.now_ms);
	tracker_call_store(c, t->state->ops->mail_add, deposit_stored);
}

static void
deposit(struct tracker_call *c, const char *to, size_t to_len)
{
	struct deposit *d;

	if (!mailbox_ready(c->t, c->res)) {
		tracker_call_end(c);
		return;
	}
	if (!hy_name_valid(to, to_len)) {
		http_json_error(c->res, 400, "Invalid username");
		tracker_call_end(c);
		return;
	}
	memcpy(c->sc.user, to, to_len);
	c->sc.user[to_len] = '\0';
	d = xcalloc(1, sizeof(*d));
	if (deposit_blob(c->t, c->req, c->res, &d->blob, &d->len) < 0) {
		free(d);
		tracker_call_end(c);
		return;
	}
	c->data = d;
	c->data_free = deposit_free;
	tracker_call_store(c, c->t->state->ops->account_hash, deposit_found);
}

/* POST /mailbox/:username */
static void
mailbox_deposit_authed(struct tracker_call *c)
{
	size_t len;
	const char *to = http_request_param(c->req, "username", &len);

	if (to == NULL) {
		http_json_error(c->res, 400, "Invalid username");
		tracker_call_end(c);
		return;
	}
	deposit(c, to, len);
}

static void
mailbox_deposit(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, mailbox_deposit_authed);
}

static int
query_u64(const struct http_request *req, const char *key, uint64_t *out)
{
	char text[MAILBOX_NUM_MAX];

	if (req->head.query == NULL ||
	    http_form_get(req->head.query, req->head.query_len, key, text, sizeof(text)) < 0)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 1;
}

static void
add_message(struct json_object *list, const struct store_mail *m)
{
	struct json_object *o = json_object_new_object();
	size_t b64len = sodium_base64_encoded_len(m->len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(b64len);

	sodium_bin2base64(b64, b64len, m->blob, m->len, sodium_base64_VARIANT_ORIGINAL);
	tracker_add_int(o, "id", (int64_t)m->id);
	tracker_add_int(o, "time", (int64_t)m->time_ms);
	tracker_add_int(o, "size", (int64_t)m->len);
	json_object_object_add(o, "blob", json_object_new_string_len(b64, (int)b64len - 1));
	free(b64);
	json_object_array_add(list, o);
}

static void
mailbox_listed(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; i < c->sc.n; i++)
		add_message(list, &c->sc.mails[i]);
	struct json_object *r = tracker_success();
	tracker_add_int(r, "count", (int64_t)c->sc.n);
	if (c->sc.more && c->sc.n > 0)
		tracker_add_int(r, "next", (int64_t)c->sc.mails[c->sc.n - 1].id);
	json_object_object_add(r, "messages", list);
	http_json_respond(c->res, 200, r);
	http_response_header(c->res, "Cache-Control", "no-store");
	tracker_call_end(c);
}

/* GET /mailbox[?after=ID][&limit=N]: a page of the caller's messages, with
 * "next" (the after of the next page) when more follow. */
static void
mailbox_list_authed(struct tracker_call *c)
{
	uint64_t after = 0, limit = MAILBOX_PAGE_MAX;

	if (!mailbox_ready(c->t, c->res)) {
		tracker_call_end(c);
		return;
	}
	if (query_u64(c->req, "after", &after) < 0 || query_u64(c->req, "limit", &limit) < 0 ||
	    limit == 0) {
		http_json_error(c->res, 400, "Invalid query: after=ID, limit=N (positive)");
		tracker_call_end(c);
		return;
	}
	if (limit > MAILBOX_PAGE_MAX)
		limit = MAILBOX_PAGE_MAX;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
	c->sc.after_id = after;
	c->sc.limit = (size_t)limit;
	c->sc.max_page_bytes = MAILBOX_PAGE_BYTES;
	c->sc.before_ms = mailbox_cutoff(c->t, wall_ms());
	c->sc.more = 0;
	tracker_call_store(c, c->t->state->ops->mail_list, mailbox_listed);
}

static void
mailbox_list(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, mailbox_list_authed);
}

/* The "ids" of an ack, into ids (MAILBOX_ACK_MAX); -1 after a 400. */
static int
ack_ids(struct json_object *o, uint64_t *ids, size_t *n, struct http_response *res)
{
	struct json_object *arr;

	if (!json_object_object_get_ex(o, "ids", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) > MAILBOX_ACK_MAX) {
		http_json_error(res, 400, "Field ids must be an array of at most 1000 message ids");
		return -1;
	}
	*n = json_object_array_length(arr);
	for (size_t i = 0; i < *n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
			http_json_error(res, 400, "Field ids must hold positive integers");
			return -1;
		}
		ids[i] = (uint64_t)json_object_get_int64(v);
	}
	return 0;
}

static void
mailbox_acked(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	struct json_object *r = tracker_success();
	tracker_add_int(r, "deleted", (int64_t)c->sc.deleted);
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

/* POST /mailbox/ack {"ids":[...]}. It shares its path with a deposit for
 * an account named "ack": a base64 body never starts with '{', so such a
 * body is a deposit. */
static void
mailbox_ack_authed(struct tracker_call *c)
{
	const struct http_request *req = c->req;
	size_t n = 0, i = 0;

	while (i < req->body_len &&
	    (req->body[i] == ' ' || req->body[i] == '\n' || req->body[i] == '\r' ||
	        req->body[i] == '\t'))
		i++;
	if (i < req->body_len && req->body[i] != '{') {
		deposit(c, "ack", strlen("ack"));
		return;
	}
	struct json_object *o;
	if (!mailbox_ready(c->t, c->res) ||
	    (o = tracker_body_for(c->req, c->res, c->user)) == NULL) {
		tracker_call_end(c);
		return;
	}
	uint64_t *ids = xmalloc(MAILBOX_ACK_MAX * sizeof(*ids));
	int rc = ack_ids(o, ids, &n, c->res);
	json_object_put(o);
	if (rc < 0) {
		free(ids);
		tracker_call_end(c);
		return;
	}
	c->data = ids;
	c->data_free = free;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
	c->sc.ids = ids;
	c->sc.nids = n;
	tracker_call_store(c, c->t->state->ops->mail_delete, mailbox_acked);
}

static void
mailbox_ack(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, mailbox_ack_authed);
}

const struct router_route tracker_mailbox_routes[] = {
	{ HTTP_GET, "/mailbox", mailbox_list },
	{ HTTP_POST, "/mailbox/ack", mailbox_ack },
	{ HTTP_POST, "/mailbox/:username", mailbox_deposit },
	{ HTTP_GET, NULL, NULL },
};
