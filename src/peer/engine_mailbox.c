/* engine_mailbox.c — direct messages to users who are offline, through
 * the tracker's mailbox, and the delivery marks of every direct message.
 *
 * Depositing: a direct message goes through the outbox as always. When no
 * encrypted link to its recipient is up, the tracker is asked whether the
 * recipient is online: if not (or if no link comes after a short wait
 * although it is), and at login for what a previous run left, each
 * outbox entry not yet stored is
 * sealed (mailbox_seal.h) to the recipient's pinned key, or the key the
 * tracker publishes, pinned on first use, and deposited, one at a time
 * and in order. The entry stays in the outbox, marked stored, until an
 * ack comes over a link: the recipient drops the resend as a duplicate.
 * An entry written for a plaintext conversation, or for a user with no
 * key, is never deposited.
 *
 * Fetching: at login and whenever the tracker's answers say there is
 * mail, the pages are fetched, every blob opened and verified against
 * the sender's pinned key (an unknown sender's is asked of the tracker and
 * pinned), and the messages taken in, duplicates dropped by id, in the
 * order of their original time; then, once that is committed, deleted at
 * the tracker. A blob that fails is reported and deleted too.
 */
#include "engine_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/delivery.h"
#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/mailbox_seal.h"
#include "hychat/util.h"

#define MAILBOX_WAIT_MS 3000 /* for a link, before a message goes to the mailbox */
#define MAILBOX_RETRY_MS 30000 /* after a failed deposit, unless told */
#define MAILBOX_ACK_CHUNK 1000 /* ids per /mailbox/ack, the tracker's cap */
#define MAILBOX_PATH_MAX 96

/* A recipient with outbox entries that may have to be deposited. */
struct mb_user {
	char name[HY_NAME_MAX + 1];
	int due; /* look at its outbox when the timer fires */
	int busy; /* a lookup or a deposit is in flight */
	/* ids the tracker refused for themselves (too large), NUL-separated:
	 * skipped so that they do not hold up the ones after them */
	struct buf refused;
	struct mb_user *next;
};

/* A message taken out of the mailbox, waiting for the last page. */
struct mb_item {
	struct json_object *msg; /* as it would have come over a link */
	const char *time;
	uint64_t seq; /* the tracker's id: the order among equal times */
};

struct engine_mailbox {
	struct engine *e;
	struct delivery *delivery;
	uv_timer_t timer;
	int timer_open;
	struct mb_user *users;
	/* the fetch */
	int fetching, again;
	struct json_object *page; /* the messages of the page being read */
	uint64_t next; /* the page after it, 0 if none */
	int lookups; /* senders being asked for */
	struct mb_item *items;
	size_t nitems, cap;
	struct json_object *acks; /* the tracker ids to delete */
	size_t acks_left; /* /mailbox/ack calls in flight */
};

static void emit_delivery(struct engine *e, const char *user, const char *id, int state);

static const char *
str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Delivery marks. */

static void
set_state(struct engine *e, const char *user, const char *id, enum delivery_state state)
{
	struct engine_mailbox *mb = e->mailbox;
	int rc = mb != NULL ? delivery_set(mb->delivery, id, state) : -1;

	if (rc < 0)
		log_error("delivery: cannot record the state of %s", id);
	if (rc != 0)
		emit_delivery(e, user, id, (int)state);
}

static void
emit_delivery(struct engine *e, const char *user, const char *id, int state)
{
	struct event_json ev;

	event_json_begin(&ev, EVENT_DELIVERY);
	event_json_str(&ev, "id", id);
	event_json_str(&ev, "conversation", user);
	event_json_str(&ev, "state", delivery_name((enum delivery_state)state));
	event_json_emit(&e->bus, &ev);
}

/* The mark of one of our direct messages in conv (delivery.h), or -1 for
 * none. */
static int
mark_of(struct engine *e, const char *conv, struct json_object *m)
{
	struct json_object *v;
	const char *id = str_of(m, "id");
	int state;
	int64_t seq;

	if (id == NULL || !json_object_object_get_ex(m, "outgoing", &v) ||
	    !json_object_get_boolean(v))
		return -1;
	state = delivery_get(e->mailbox->delivery, id);
	if (outbox_has(e->outbox, conv, id) == 1)
		return state == DELIVERY_STORED ? DELIVERY_STORED : DELIVERY_PENDING;
	if (state == DELIVERY_DROPPED)
		return -1;
	/* Out of the outbox: acknowledged, if it ever went through it (a
	 * message written in clear did not, or was sent unacknowledged). */
	seq = json_object_object_get_ex(m, "seq", &v) ? json_object_get_int64(v) : 0;
	if (seq > delivery_derived_after(e->mailbox->delivery) &&
	    json_object_object_get_ex(m, "encrypted", &v) && json_object_get_boolean(v))
		return DELIVERY_DELIVERED;
	return state;
}

void
engine_mailbox_annotate(struct engine *e, const char *conv, struct json_object *list)
{
	if (e->mailbox == NULL || conv[0] == '#')
		return;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *m = json_object_array_get_idx(list, i);
		int state = mark_of(e, conv, m);
		if (state >= 0)
			event_add_str(m, "delivery", delivery_name((enum delivery_state)state));
	}
}

/* Delivered is derived (the outbox entry is gone): said, not written. */
void
engine_mailbox_acked(struct engine *e, const char *user, const char *id)
{
	emit_delivery(e, user, id, DELIVERY_DELIVERED);
}

void
engine_mailbox_dropped(const char *user, const char *id, void *arg)
{
	struct engine *e = arg;

	if (e->mailbox != NULL && delivery_set(e->mailbox->delivery, id, DELIVERY_DROPPED) < 0)
		log_error("delivery: cannot record the state of %s", id);
}

/* Depositing. */

static struct mb_user *
user_find(struct engine_mailbox *mb, const char *name, int add)
{
	struct mb_user *u;

	for (u = mb->users; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	if (!add)
		return NULL;
	u = xcalloc(1, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	buf_init(&u->refused);
	u->next = mb->users;
	mb->users = u;
	return u;
}

static void on_timer(uv_timer_t *t);

static void
arm_in(struct engine_mailbox *mb, uint64_t ms)
{
	if (!mb->timer_open || mb->e->stopping)
		return;
	if (uv_is_active((uv_handle_t *)&mb->timer) && uv_timer_get_due_in(&mb->timer) <= ms)
		return;
	uv_timer_start(&mb->timer, on_timer, ms, 0);
}

static void user_checked(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user);

/* The tracker is asked at once whether user is online: if not, the
 * messages go to the mailbox now; if so, a link gets MAILBOX_WAIT_MS. */
void
engine_mailbox_kick(struct engine *e, const char *user)
{
	struct engine_mailbox *mb = e->mailbox;
	char path[MAILBOX_PATH_MAX];
	struct mb_user *u;

	if (mb == NULL || e->stopping || !hy_name_valid(user, strlen(user)) ||
	    strcmp(user, e->username) == 0)
		return;
	u = user_find(mb, user, 1);
	if (e->ts != ENGINE_ONLINE || u->busy) {
		u->due = 1;
		arm_in(mb, MAILBOX_WAIT_MS);
		return;
	}
	snprintf(path, sizeof(path), "/peers/%s", user);
	u->busy = 1;
	engine_tracker_call(e, TRACKER_GET, path, NULL, user_checked, user);
}

/* A message id is new: pending is said, not written. The outbox entry
 * stored in the same commit is what makes it pending (annotate), and a
 * row is written only when it is stored or delivered: one row less per
 * message sent. */
void
engine_mailbox_sent(struct engine *e, const char *user, const char *id)
{
	emit_delivery(e, user, id, DELIVERY_PENDING);
	if (e->net == NULL || p2p_net_link_state(e->net, user) != 1)
		engine_mailbox_kick(e, user);
}

static void
kick_peer(const char *peer, void *arg)
{
	engine_mailbox_kick(arg, peer);
}

void
engine_mailbox_online(struct engine *e)
{
	if (outbox_peers(e->outbox, kick_peer, e) < 0)
		log_error("outbox: cannot list the peers with messages waiting");
}

/* The first outbox entry for a user that the mailbox should take. */
struct first_due {
	struct engine *e;
	const struct buf *refused;
	struct json_object *msg;
	int plain; /* entries skipped for a plaintext conversation */
};

static int
find_due(const struct outbox_entry *en, void *arg)
{
	struct first_due *f = arg;
	struct json_object *m, *v;

	if (delivery_get(f->e->mailbox->delivery, en->id) >= DELIVERY_STORED)
		return 0;
	for (size_t off = 0; off < f->refused->len; off += strlen(f->refused->data + off) + 1)
		if (strcmp(f->refused->data + off, en->id) == 0)
			return 0;
	m = engine_outbox_msg(f->e, en);
	if (m == NULL || str_of(m, "id") == NULL || str_of(m, "message") == NULL) {
		json_object_put(m);
		return 0;
	}
	/* Direct messages only: a channel message waiting in a member's
	 * outbox goes over a link (the mailbox would file it as a direct
	 * one, in the sender's conversation). */
	const char *type = str_of(m, "type");
	if (type == NULL || strcmp(type, "chat") != 0) {
		json_object_put(m);
		return 0;
	}
	if (json_object_object_get_ex(m, ENGINE_PLAIN_FIELD, &v) && json_object_get_boolean(v)) {
		f->plain++;
		json_object_put(m);
		return 0;
	}
	f->msg = m;
	return 1;
}

/* The inner message: what the recipient needs, its sender aside. */
static char *
inner_json(struct json_object *m, size_t *len)
{
	struct json_object *in = json_object_new_object(), *v;
	const char *s;

	event_add_str(in, "id", str_of(m, "id"));
	event_add_str(in, "time", (s = str_of(m, "time")) != NULL ? s : "");
	event_add_str(in, "message", str_of(m, "message"));
	if (json_object_object_get_ex(m, "action", &v) && json_object_get_boolean(v))
		event_add_bool(in, "action", 1);
	s = json_object_to_json_string_length(
	    in, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
	char *out = xstrdup(s);
	json_object_put(in);
	return out;
}

static void deposit_next(struct engine *e, struct mb_user *u, const uint8_t *pk);

static void
deposited(struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct engine_mailbox *mb = e->mailbox;
	const char *sp = strchr(arg, ' ');
	char name[HY_NAME_MAX + 1];
	struct mb_user *u;
	uint8_t pk[IDENTITY_PUBLIC_BYTES];

	if (mb == NULL || sp == NULL || (size_t)(sp - arg) > HY_NAME_MAX)
		return;
	memcpy(name, arg, (size_t)(sp - arg));
	name[sp - arg] = '\0';
	if ((u = user_find(mb, name, 0)) == NULL)
		return;
	u->busy = 0;
	if (status == 201) {
		/* An ack that came first has made it delivered already. */
		if (outbox_has(e->outbox, name, sp + 1) == 1)
			set_state(e, name, sp + 1, DELIVERY_STORED);
		if (!e->stopping && known_peers_lookup(e->known, name, pk))
			deposit_next(e, u, pk);
		return;
	}
	if (status == 429) {
		long after = tracker_client_retry_after(e->tc);
		u->due = 1;
		arm_in(mb, after > 0 ? (uint64_t)after * 1000 : MAILBOX_RETRY_MS);
		return;
	}
	/* 507 "bob's mailbox is full", 413, 404: the sender is told, and the
	 * message waits in the outbox for a link (or the next login). One
	 * too large for the mailbox does not hold up the next. */
	event_error(&e->bus, "mailbox: a message to %s is not stored: %s", name,
	    engine_tracker_message(body, err, status));
	if (status == 413 && !e->stopping && known_peers_lookup(e->known, name, pk)) {
		buf_append(&u->refused, sp + 1, strlen(sp + 1) + 1);
		deposit_next(e, u, pk);
	}
}

/* Deposits u's first entry not yet stored; the next goes when it is. */
static void
deposit_next(struct engine *e, struct mb_user *u, const uint8_t *pk)
{
	struct first_due f = { .e = e, .refused = &u->refused };
	char path[MAILBOX_PATH_MAX], arg[HY_NAME_MAX + ENGINE_ID_MAX + 2];
	size_t len, blen;

	if (e->net != NULL && p2p_net_link_state(e->net, u->name) == 1)
		return; /* a link: the outbox goes over it */
	if (outbox_each(e->outbox, u->name, find_due, &f) < 0 || f.msg == NULL)
		return;
	char *inner = inner_json(f.msg, &len);
	uint8_t *blob = mailbox_seal(
	    e->username, identity_secret_key(e->id), pk, (const uint8_t *)inner, len, &blen);
	sodium_memzero(inner, len);
	free(inner);
	if (blob == NULL) {
		json_object_put(f.msg);
		return;
	}
	size_t b64len = sodium_base64_encoded_len(blen, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(b64len);
	sodium_bin2base64(b64, b64len, blob, blen, sodium_base64_VARIANT_ORIGINAL);
	free(blob);
	snprintf(path, sizeof(path), "/mailbox/%s", u->name);
	snprintf(arg, sizeof(arg), "%s %s", u->name, str_of(f.msg, "id"));
	json_object_put(f.msg);
	u->busy = 1;
	engine_tracker_call(e, TRACKER_POST, path, json_object_new_string(b64), deposited, arg);
	free(b64);
}

static void
key_looked_up(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct engine_mailbox *mb = e->mailbox;
	struct tracker_peer p;
	struct mb_user *u;

	if (mb == NULL || (u = user_find(mb, user, 0)) == NULL)
		return;
	u->busy = 0;
	if (status == 404) {
		event_error(&e->bus, "mailbox: no user %s at the tracker", user);
		return;
	}
	if (status != 200 || tracker_client_parse_peer(body, &p) < 0) {
		(void)err;
		u->due = 1;
		arm_in(mb, MAILBOX_RETRY_MS);
		return;
	}
	if (p.keylen != IDENTITY_PUBLIC_BYTES) {
		log_info("mailbox: %s publishes no key: its messages wait for a link", user);
		return;
	}
	switch (known_peers_check(e->known, user, p.key, p.keylen)) {
	case KNOWN_PEERS_MATCH:
	case KNOWN_PEERS_NEW: deposit_next(e, u, p.key); break;
	case KNOWN_PEERS_CHANGED:
		event_error(&e->bus,
		    "mailbox: %s's key at the tracker changed since first seen (see known_peers): "
		    "messages to %s wait for a link",
		    user, user);
		break;
	default: event_error(&e->bus, "mailbox: known_peers cannot be updated"); break;
	}
}

/* The answer to a kick: offline, deposited now; online, a link is given
 * its chance first. The key is pinned as by key_looked_up(). */
static void
user_checked(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct engine_mailbox *mb = e->mailbox;
	struct tracker_peer p;
	struct mb_user *u;

	if (mb == NULL || (u = user_find(mb, user, 0)) == NULL)
		return;
	if (status == 200 && tracker_client_parse_peer(body, &p) == 0 && p.online && !e->stopping) {
		u->busy = 0;
		u->due = 1;
		arm_in(mb, MAILBOX_WAIT_MS);
		return;
	}
	key_looked_up(e, status, body, err, user);
}

static void
deposit_user(struct engine *e, struct mb_user *u)
{
	uint8_t pk[IDENTITY_PUBLIC_BYTES];
	char path[MAILBOX_PATH_MAX];

	if (e->net != NULL && p2p_net_link_state(e->net, u->name) == 1)
		return;
	if (known_peers_lookup(e->known, u->name, pk)) {
		deposit_next(e, u, pk);
		return;
	}
	snprintf(path, sizeof(path), "/peers/%s", u->name);
	u->busy = 1;
	engine_tracker_call(e, TRACKER_GET, path, NULL, key_looked_up, u->name);
}

static void
on_timer(uv_timer_t *t)
{
	struct engine_mailbox *mb = t->data;
	struct engine *e = mb->e;

	if (e->ts != ENGINE_ONLINE || e->stopping)
		return; /* login kicks every recipient again */
	for (struct mb_user *u = mb->users; u != NULL; u = u->next) {
		if (!u->due || u->busy)
			continue;
		u->due = 0;
		deposit_user(e, u);
	}
}

/* Fetching. */

static void fetch_page(struct engine *e, uint64_t after);
static void read_page(struct engine *e);

static void
acked(struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct engine_mailbox *mb = e->mailbox;

	(void)body;
	(void)arg;
	if (mb == NULL)
		return;
	if (status != 200)
		log_warn("mailbox: the tracker did not delete fetched messages: %s",
		    engine_tracker_message(body, err, status));
	if (mb->acks_left > 0 && --mb->acks_left > 0)
		return;
	mb->fetching = 0;
	if (mb->again) {
		mb->again = 0;
		engine_mailbox_fetch(e);
	}
}

static int
item_order(const void *a, const void *b)
{
	const struct mb_item *x = a, *y = b;
	int c = strcmp(x->time, y->time);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every page is read: the messages go in, in order, and are committed
 * before the tracker deletes them. */
static void
fetch_done(struct engine *e)
{
	struct engine_mailbox *mb = e->mailbox;
	char *cause = NULL;
	size_t n = json_object_array_length(mb->acks);

	if (mb->nitems > 1)
		qsort(mb->items, mb->nitems, sizeof(*mb->items), item_order);
	for (size_t i = 0; i < mb->nitems; i++) {
		struct json_object *m = mb->items[i].msg;
		engine_take_direct(e, str_of(m, "from"), m);
		json_object_put(m);
	}
	mb->nitems = 0;
	if (peerdb_commit(e->db, &cause) < 0) {
		log_error("%s: fetched mail left at the tracker", cause);
		free(cause);
		n = 0;
	}
	mb->acks_left = (n + MAILBOX_ACK_CHUNK - 1) / MAILBOX_ACK_CHUNK;
	for (size_t off = 0; off < n; off += MAILBOX_ACK_CHUNK) {
		struct json_object *body = json_object_new_object(), *ids = json_object_new_array();
		for (size_t i = off; i < n && i < off + MAILBOX_ACK_CHUNK; i++)
			json_object_array_add(
			    ids, json_object_get(json_object_array_get_idx(mb->acks, i)));
		json_object_object_add(body, "ids", ids);
		engine_tracker_call(e, TRACKER_POST, "/mailbox/ack", body, acked, NULL);
	}
	json_object_put(mb->acks);
	mb->acks = NULL;
	if (n == 0)
		acked(e, 200, NULL, NULL, NULL);
}

/* Opens one blob: the message as a link would carry it, or NULL after an
 * error event. */
static struct json_object *
open_blob(struct engine *e, const char *b64, uint64_t seq)
{
	struct mailbox_opened o;
	uint8_t pk[IDENTITY_PUBLIC_BYTES];
	size_t b64len = strlen(b64), len = 0, mlen = 0;
	uint8_t *blob = xmalloc(b64len / 4 * 3 + 3);
	struct json_object *in = NULL, *m = NULL, *v;

	if (sodium_base642bin(blob, b64len / 4 * 3 + 3, b64, b64len, NULL, &len, NULL,
	        sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    mailbox_open_outer(
	        identity_public_key(e->id), identity_secret_key(e->id), blob, len, &o) < 0) {
		free(blob);
		event_error(&e->bus,
		    "mailbox: message %" PRIu64 " does not open (altered, or not for this key): "
		    "dropped",
		    seq);
		return NULL;
	}
	free(blob);
	if (!hy_name_valid(o.sender, strlen(o.sender))) {
		event_error(
		    &e->bus, "mailbox: message %" PRIu64 " names no valid sender: dropped", seq);
		mailbox_opened_fini(&o);
		return NULL;
	}
	if (!known_peers_lookup(e->known, o.sender, pk)) {
		event_error(&e->bus,
		    "mailbox: message %" PRIu64 " from %s: no key known for %s: dropped", seq,
		    o.sender, o.sender);
		mailbox_opened_fini(&o);
		return NULL;
	}
	char *text = mailbox_open_inner(&o, pk, identity_secret_key(e->id), &mlen);
	if (text == NULL) {
		event_error(&e->bus,
		    "mailbox: a message claiming to be from %s does not verify against %s's pinned "
		    "key (forged, or the key changed: see known_peers): dropped",
		    o.sender, o.sender);
		mailbox_opened_fini(&o);
		return NULL;
	}
	in = json_tokener_parse(text);
	sodium_memzero(text, mlen);
	free(text);
	if (in == NULL || !json_object_is_type(in, json_type_object) || str_of(in, "id") == NULL ||
	    str_of(in, "message") == NULL) {
		event_error(&e->bus, "mailbox: a message from %s is malformed: dropped", o.sender);
		json_object_put(in);
		mailbox_opened_fini(&o);
		return NULL;
	}
	m = json_object_new_object();
	event_add_str(m, "type", "chat");
	event_add_str(m, "id", str_of(in, "id"));
	event_add_str(m, "from", o.sender);
	event_add_str(m, "channel", "direct");
	event_add_str(m, "message", str_of(in, "message"));
	if (str_of(in, "time") != NULL && str_of(in, "time")[0] != '\0')
		event_add_str(m, "time", str_of(in, "time"));
	if (json_object_object_get_ex(in, "action", &v) && json_object_get_boolean(v))
		event_add_bool(m, "action", 1);
	json_object_put(in);
	mailbox_opened_fini(&o);
	return m;
}

static void
add_item(struct engine_mailbox *mb, struct json_object *m, uint64_t seq)
{
	if (mb->nitems == mb->cap) {
		mb->cap = mb->cap ? mb->cap * 2 : 16;
		mb->items = xrealloc(mb->items, mb->cap * sizeof(*mb->items));
	}
	mb->items[mb->nitems].msg = m;
	mb->items[mb->nitems].time = str_of(m, "time") != NULL ? str_of(m, "time") : "";
	mb->items[mb->nitems].seq = seq;
	mb->nitems++;
}

static void
read_page(struct engine *e)
{
	struct engine_mailbox *mb = e->mailbox;
	size_t n = json_object_array_length(mb->page);

	for (size_t i = 0; i < n; i++) {
		struct json_object *msg = json_object_array_get_idx(mb->page, i), *id, *blob;
		if (!json_object_object_get_ex(msg, "id", &id) ||
		    !json_object_is_type(id, json_type_int))
			continue;
		json_object_array_add(mb->acks, json_object_get(id));
		if (!json_object_object_get_ex(msg, "blob", &blob) ||
		    !json_object_is_type(blob, json_type_string))
			continue;
		struct json_object *m =
		    open_blob(e, json_object_get_string(blob), (uint64_t)json_object_get_int64(id));
		if (m != NULL)
			add_item(mb, m, (uint64_t)json_object_get_int64(id));
	}
	json_object_put(mb->page);
	mb->page = NULL;
	if (mb->next != 0 && !e->stopping)
		fetch_page(e, mb->next);
	else
		fetch_done(e);
}

static void
sender_looked_up(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct engine_mailbox *mb = e->mailbox;
	struct tracker_peer p;

	(void)err;
	if (mb == NULL)
		return;
	if (status == 200 && tracker_client_parse_peer(body, &p) == 0 &&
	    p.keylen == IDENTITY_PUBLIC_BYTES &&
	    known_peers_check(e->known, user, p.key, p.keylen) == KNOWN_PEERS_CHANGED)
		event_error(
		    &e->bus, "mailbox: %s's key changed since first seen (see known_peers)", user);
	if (--mb->lookups == 0)
		read_page(e);
}

/* Asks the tracker for the keys of the page's senders not pinned yet; the
 * page is read once every answer is in. */
static void
page_fetched(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct engine_mailbox *mb = e->mailbox;
	struct json_object *msgs, *next;
	char asked[ENGINE_ACK_MAX_IDS / 8][HY_NAME_MAX + 1];
	size_t nasked = 0;

	(void)arg;
	if (mb == NULL)
		return;
	if (status != 200 || !json_object_object_get_ex(body, "messages", &msgs) ||
	    !json_object_is_type(msgs, json_type_array)) {
		if (status != 0)
			log_warn(
			    "mailbox: cannot fetch: %s", engine_tracker_message(body, err, status));
		fetch_done(e);
		return;
	}
	mb->page = json_object_get(msgs);
	mb->next = json_object_object_get_ex(body, "next", &next) &&
	        json_object_is_type(next, json_type_int) && json_object_get_int64(next) > 0
	    ? (uint64_t)json_object_get_int64(next)
	    : 0;
	mb->lookups = 1; /* held until every lookup is asked */
	for (size_t i = 0; i < json_object_array_length(msgs); i++) {
		struct json_object *blob;
		struct mailbox_opened o;
		uint8_t pk[IDENTITY_PUBLIC_BYTES], *bin;
		size_t len = 0, k;
		if (!json_object_object_get_ex(json_object_array_get_idx(msgs, i), "blob", &blob) ||
		    !json_object_is_type(blob, json_type_string))
			continue;
		const char *b64 = json_object_get_string(blob);
		size_t b64len = strlen(b64);
		bin = xmalloc(b64len / 4 * 3 + 3);
		int ok = sodium_base642bin(bin, b64len / 4 * 3 + 3, b64, b64len, NULL, &len, NULL,
		             sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    mailbox_open_outer(
		        identity_public_key(e->id), identity_secret_key(e->id), bin, len, &o) == 0;
		free(bin);
		if (!ok)
			continue;
		for (k = 0; k < nasked && strcmp(asked[k], o.sender) != 0; k++)
			;
		if (k == nasked && nasked < HY_ARRAY_LEN(asked) &&
		    hy_name_valid(o.sender, strlen(o.sender)) &&
		    !known_peers_lookup(e->known, o.sender, pk)) {
			char path[MAILBOX_PATH_MAX];
			snprintf(asked[nasked++], sizeof(asked[0]), "%s", o.sender);
			snprintf(path, sizeof(path), "/peers/%s", o.sender);
			mb->lookups++;
			engine_tracker_call(e, TRACKER_GET, path, NULL, sender_looked_up, o.sender);
		}
		mailbox_opened_fini(&o);
	}
	if (--mb->lookups == 0)
		read_page(e);
}

static void
fetch_page(struct engine *e, uint64_t after)
{
	char path[MAILBOX_PATH_MAX];

	snprintf(path, sizeof(path), "/mailbox?after=%" PRIu64, after);
	engine_tracker_call(e, TRACKER_GET, path, NULL, page_fetched, NULL);
}

void
engine_mailbox_fetch(struct engine *e)
{
	struct engine_mailbox *mb = e->mailbox;

	if (mb == NULL || e->stopping)
		return;
	if (mb->fetching) {
		mb->again = 1;
		return;
	}
	mb->fetching = 1;
	mb->acks = json_object_new_array();
	fetch_page(e, 0);
}

void
engine_mailbox_hint(struct engine *e, struct json_object *answer)
{
	struct json_object *v;

	if (answer != NULL && json_object_object_get_ex(answer, "mail", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
		engine_mailbox_fetch(e);
}

/* Life. */

static void
on_closed(uv_handle_t *h)
{
	struct engine_mailbox *mb = h->data;

	mb->e->handles--;
}

int
engine_mailbox_init(struct engine *e, char **cause)
{
	struct engine_mailbox *mb = xcalloc(1, sizeof(*mb));

	int64_t newest = history_newest_seq(e->hist);

	mb->e = e;
	if (newest < 0)
		*cause = peerdb_cause(e->db, "history");
	if (newest < 0 || (mb->delivery = delivery_new(e->db, newest, cause)) == NULL) {
		free(mb);
		return -1;
	}
	outbox_on_drop(e->outbox, engine_mailbox_dropped, e);
	uv_timer_init(e->loop, &mb->timer);
	mb->timer.data = mb;
	mb->timer_open = 1;
	e->handles++;
	e->mailbox = mb;
	return 0;
}

void
engine_mailbox_stop(struct engine *e)
{
	struct engine_mailbox *mb = e->mailbox;

	if (mb == NULL || !mb->timer_open)
		return;
	mb->timer_open = 0;
	uv_timer_stop(&mb->timer);
	uv_close((uv_handle_t *)&mb->timer, on_closed);
}

void
engine_mailbox_free(struct engine *e)
{
	struct engine_mailbox *mb = e->mailbox;

	if (mb == NULL)
		return;
	while (mb->users != NULL) {
		struct mb_user *u = mb->users;
		mb->users = u->next;
		buf_fini(&u->refused);
		free(u);
	}
	for (size_t i = 0; i < mb->nitems; i++)
		json_object_put(mb->items[i].msg);
	free(mb->items);
	json_object_put(mb->page);
	json_object_put(mb->acks);
	delivery_free(mb->delivery);
	free(mb);
	e->mailbox = NULL;
}
