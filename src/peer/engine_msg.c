/* engine_msg.c — messages: building and sending them (to a user, or to
 * each member of a channel), taking them in from links (a table of message
 * types), acknowledgements, and the outbox sent again when a link is back.
 *
 * Every message goes through the outbox before it goes on a link and
 * leaves it when acknowledged, so a drop at any point means a resend, and
 * the receiver's seen-ids turn resends into nothing. A link of the
 * original protocol knows no ids and no acks: it gets the original fields,
 * once. */
#include "engine_internal.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hychat/chansig.h"
#include "hychat/http_json.h"
#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/sendlog.h"
#include "hychat/util.h"

static int
check_text(struct engine *e, const char *text, const char *what)
{
	size_t n = strlen(text);

	if (n == 0) {
		event_error(&e->bus, "%s: empty message", what);
		return -1;
	}
	if (n > ENGINE_TEXT_MAX) {
		event_error(
		    &e->bus, "%s: message too long: at most %d bytes", what, ENGINE_TEXT_MAX);
		return -1;
	}
	if (!hy_utf8_valid(text, n)) {
		event_error(&e->bus, "%s: message is not valid UTF-8", what);
		return -1;
	}
	return 0;
}

/* An id is the time in milliseconds, big-endian, then random bits, in
 * hex: ids sort by time, so the unique indexes they key (outbox, seen,
 * delivery) grow at their right edge and a burst of messages dirties a
 * few B-tree pages instead of one random page each. The 80 random bits
 * keep ids unique within a millisecond and across a clock set back. The
 * random part comes from a pool refilled a page at a time: one
 * getrandom(2) per message would be a system call per message. */
static void
make_id(char *out)
{
	static unsigned char pool[ENGINE_ID_POOL];
	static size_t left;
	unsigned char raw[ENGINE_ID_BYTES];
	struct timespec ts;
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = ENGINE_ID_TIME_BYTES - 1; i >= 0; i--, ms >>= 8)
		raw[i] = (unsigned char)ms;
	if (left < ENGINE_ID_RANDOM_BYTES) {
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	left -= ENGINE_ID_RANDOM_BYTES;
	memcpy(raw + ENGINE_ID_TIME_BYTES, pool + left, ENGINE_ID_RANDOM_BYTES);
	sodium_memzero(pool + left, ENGINE_ID_RANDOM_BYTES);
	sodium_bin2hex(out, ENGINE_ID_BYTES * 2 + 1, raw, ENGINE_ID_BYTES);
}

/* Local time as Python's datetime.now().isoformat() writes it. */
static void
now_iso(char *out, size_t outsz)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(out, outsz, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, outsz - n, ".%06ld", ts.tv_nsec / 1000);
}

static int
bool_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v);
}

/* The message as it goes on an encrypted link, from its fields, in the
 * order they have always gone in. */
static struct json_object *
wire(const char *type, const char *id, const char *from, const char *channel, const char *text,
    const char *time, int action, const char *sig)
{
	struct json_object *m = json_object_new_object();

	event_add_str(m, "type", type);
	event_add_str(m, "id", id);
	event_add_str(m, "from", from);
	event_add_str(m, "channel", channel);
	event_add_str(m, "message", text);
	event_add_str(m, "time", time);
	if (action)
		event_add_bool(m, "action", 1);
	if (sig != NULL)
		event_add_str(m, "sig", sig);
	return m;
}

/* A new message, as it goes on an encrypted link. */
static struct json_object *
build(struct engine *e, const char *type, const char *channel, const char *text, int action)
{
	char id[ENGINE_ID_BYTES * 2 + 1], t[ENGINE_TIME_MAX], sig[CHANSIG_B64_MAX];
	const char *signature = NULL;

	make_id(id);
	now_iso(t, sizeof(t));
	if (strcmp(type, "broadcast") == 0) {
		/* Signed, so that a member who relays it cannot alter it. */
		struct chansig_msg s = { channel, id, e->username, t, text, action };
		if (chansig_sign(identity_secret_key(e->id), &s, sig) == 0)
			signature = sig;
	}
	return wire(type, id, e->username, channel, text, t, action, signature);
}

static void
from_row(const struct history_msg *h, void *arg)
{
	int channel = h->conversation[0] == '#';

	*(struct json_object **)arg = wire(channel ? "broadcast" : "chat", h->id, h->from,
	    channel ? h->conversation + 1 : "direct", h->text, h->time, h->kind == HISTORY_ACTION,
	    channel ? h->sig : NULL);
}

struct json_object *
engine_outbox_msg(struct engine *e, const struct outbox_entry *en)
{
	struct json_object *m = NULL;

	if (en->ref <= 0)
		m = json_tokener_parse(en->payload);
	else if (history_get(e->hist, en->ref, from_row, &m) != 1)
		log_error("outbox: message %s is not in the history", en->id);
	if (m != NULL && !json_object_is_type(m, json_type_object)) {
		json_object_put(m);
		m = NULL;
	}
	return m;
}

/* The same message in the original protocol's fields; an action becomes
 * text, as it knows no actions. */
static struct json_object *
plain_form(struct json_object *m)
{
	struct json_object *p = json_object_new_object();
	const char *from = http_json_str(m, "from"), *text = http_json_str(m, "message");

	event_add_str(p, "type", http_json_str(m, "type"));
	event_add_str(p, "from", from);
	event_add_str(p, "channel", http_json_str(m, "channel"));
	if (bool_field(m, "action")) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "* %s %s", from, text);
		event_add_str(p, "message", b.data);
		buf_fini(&b);
	} else {
		event_add_str(p, "message", text);
	}
	event_add_str(p, "time", http_json_str(m, "time"));
	return p;
}

static void
send_plain(struct engine *e, const char *user, struct json_object *m)
{
	struct json_object *p = plain_form(m);
	size_t len;
	const char *json = json_object_to_json_string_length(
	    p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (p2p_net_send(e->net, user, json, len) == 1)
		engine_ordered(e); /* in the history alone: no outbox, no journal */
	json_object_put(p);
}

/* True if a message to user is written in a plaintext conversation: a
 * plaintext link is up, or none is and the user is one the tracker
 * vouches has no key (p2p_net_plaintext_ok). Anything else waits for an
 * encrypted link. */
static int
plain_conversation(struct engine *e, const char *user)
{
	int state;

	if (e->net == NULL)
		return 0;
	state = p2p_net_link_state(e->net, user);
	return state == 0 || (state < 0 && p2p_net_plaintext_ok(e->net, user));
}

/* Sends m to user through the outbox; seq is its history row (0: none,
 * the outbox keeps a copy). Returns 1 if the sending journal took it. */
static int
deliver(struct engine *e, const char *user, struct json_object *m, const char *json, size_t len,
    int64_t seq)
{
	struct outbox_entry en = { .peer = user, .id = http_json_str(m, "id") };
	int state, rc, sent;

	if (e->net == NULL)
		return 0;
	state = p2p_net_link_state(e->net, user);
	if (state == 0) {
		send_plain(e, user, m);
		return 0;
	}
	en.channel = strcmp(http_json_str(m, "type"), "broadcast") == 0;
	if (state < 0 && p2p_net_plaintext_ok(e->net, user)) {
		/* The outbox remembers that this one may go in clear: a copy. */
		struct buf b;
		buf_init(&b);
		buf_append(&b, json, len - 1);
		buf_append_str(&b, ",\"" ENGINE_PLAIN_FIELD "\":true}");
		en.payload = b.data;
		rc = outbox_put(e->outbox, &en);
		buf_fini(&b);
	} else {
		en.payload = json;
		en.ref = seq;
		rc = outbox_put(e->outbox, &en);
	}
	if (rc < 0)
		log_error("outbox: cannot store a message for %s", user);
	sent = state < 0 ? 0 : p2p_net_send(e->net, user, json, len);
	if (sent == 0) {
		p2p_net_dial(e->net, user, 1);
	} else if (sent > 0) {
		e->turn_sent++;
		/* A direct message, whole in its history row: journaled, it may
		 * leave before the commit (engine.c, links_first). */
		if (!en.channel && en.ref > 0 && sendlog_add(e->sendlog, seq, user, json, len) == 0)
			return 1;
		engine_ordered(e);
	}
	return 0;
}

static const char *
serialize(struct json_object *m, size_t *len)
{
	return json_object_to_json_string_length(
	    m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

/* Stores m in conv and shows it to the front ends; returns its seq. */
static int64_t
record(struct engine *e, const char *conv, struct json_object *m, int outgoing, int encrypted,
    const char *to)
{
	struct history_msg h = { 0 };
	struct event_json ev;
	int channel = conv[0] == '#';

	h.conversation = conv;
	h.id = http_json_str(m, "id");
	h.from = http_json_str(m, "from");
	h.text = http_json_str(m, "message");
	h.time = http_json_str(m, "time");
	h.kind = bool_field(m, "action") ? HISTORY_ACTION : HISTORY_CHAT;
	h.outgoing = outgoing;
	h.encrypted = encrypted;
	h.sig = channel ? http_json_str(m, "sig") : NULL;
	if (history_add(e->hist, &h) < 0)
		log_error("history: cannot store a message in %s", conv);
	event_json_begin(&ev, channel ? EVENT_BROADCAST : EVENT_CHAT);
	if (h.id != NULL)
		event_json_str(&ev, "id", h.id);
	event_json_str(&ev, "from", h.from);
	if (!channel)
		event_json_str(&ev, "to", to);
	event_json_str(&ev, "channel", channel ? conv + 1 : "direct");
	event_json_str(&ev, "message", h.text);
	event_json_str(&ev, "time", h.time);
	event_json_str(&ev, "conversation", conv);
	event_json_bool(&ev, "action", h.kind == HISTORY_ACTION);
	event_json_bool(&ev, "outgoing", outgoing);
	event_json_bool(&ev, "encrypted", encrypted);
	event_json_int(&ev, "seq", h.seq);
	event_json_int(&ev, "unread", h.unread >= 0 ? h.unread : history_unread(e->hist, conv));
	event_json_emit(&e->bus, &ev);
	return h.seq;
}

int64_t
engine_record_channel(struct engine *e, const char *conv, struct json_object *m)
{
	return record(e, conv, m, 0, 1, NULL);
}

/* Sending. */

int
engine_send_direct(struct engine *e, const char *user, const char *text, int action)
{
	const char *what = action ? "me" : "send";
	struct json_object *m;
	const char *json;
	size_t len;

	if (!hy_name_valid(user, strlen(user))) {
		event_error(&e->bus, "%s: invalid username \"%.64s\"", what, user);
		return -1;
	}
	if (strcmp(user, e->username) == 0) {
		event_error(&e->bus, "%s: %s is you", what, user);
		return -1;
	}
	if (check_text(e, text, what) < 0)
		return -1;
	m = build(e, "chat", "direct", text, action);
	engine_set_last(e, user);
	engine_typing_sent(e, user);
	/* Stored as deferrable: a message the sending journal takes may wait
	 * for a later commit (engine.c, links_first); one it does not take
	 * makes the transaction urgent, for the turn's commit. */
	if (e->db != NULL)
		peerdb_defer(e->db, 1);
	int64_t seq = record(e, user, m, 1, !plain_conversation(e, user), user);
	json = serialize(m, &len);
	int plain_link = e->net != NULL && p2p_net_link_state(e->net, user) == 0;
	int journaled = deliver(e, user, m, json, len, seq);
	if (!plain_link) /* in the outbox: pending, and the mailbox's if need be */
		engine_mailbox_sent(e, user, http_json_str(m, "id"));
	if (e->db != NULL) {
		peerdb_defer(e->db, 0);
		if (!journaled)
			peerdb_urge(e->db);
	}
	json_object_put(m);
	return 0;
}

/* The journal's record of a message: is its history row there? */
struct journaled {
	const char *id;
	int stored;
};

static void
same_id(const struct history_msg *h, void *arg)
{
	struct journaled *j = arg;

	j->stored = h->id != NULL && strcmp(h->id, j->id) == 0;
}

/* A message the journal holds: it went on a link, and its turn may have
 * ended before its commit. Stored again if its history row is not there,
 * with its outbox entry: the outbox sends it again, and its recipient,
 * who may have it, drops the copy by its id. */
static int
replay_one(const struct sendlog_record *r, void *arg)
{
	struct engine *e = arg;
	struct json_object *m = json_tokener_parse(r->json);
	struct journaled j = { http_json_str(m, "id"), 0 };
	const char *type = http_json_str(m, "type"), *from = http_json_str(m, "from");

	if (j.id == NULL || type == NULL || strcmp(type, "chat") != 0 || from == NULL ||
	    strcmp(from, e->username) != 0 || http_json_str(m, "message") == NULL ||
	    http_json_str(m, "time") == NULL || strcmp(r->user, e->username) == 0) {
		log_error("sending journal: an unreadable message to %s left out", r->user);
	} else if (history_get(e->hist, r->seq, same_id, &j) < 0) {
		log_error("sending journal: cannot read the history");
	} else if (!j.stored) {
		struct outbox_entry en = { .peer = r->user, .id = j.id, .payload = r->json };

		en.ref = record(e, r->user, m, 1, 1, r->user);
		if (outbox_put(e->outbox, &en) < 0)
			log_error("outbox: cannot store a message for %s", r->user);
		log_info("message %s to %s, sent before the last stop and not stored: stored now",
		    j.id, r->user);
	}
	json_object_put(m);
	return 0;
}

void
engine_replay_sent(struct engine *e)
{
	char *cause = NULL;

	if (sendlog_replay(e->sendlog, replay_one, e, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
		cause = NULL;
	}
	if (peerdb_commit(e->db, &cause) < 0) {
		log_error("%s", cause); /* the journal is kept for the next start */
		free(cause);
		return;
	}
	if (sendlog_clear(e->sendlog, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
	}
}

static void
fanout(struct engine *e, struct engine_channel *c, struct engine_pending *p)
{
	size_t len;
	const char *json = serialize(p->msg, &len);

	for (size_t i = 0; i < c->nmembers; i++)
		if (strcmp(c->members[i], e->username) != 0)
			deliver(e, c->members[i], p->msg, json, len, p->seq);
}

static int
listed_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

static void
free_recent(struct engine_channel *c)
{
	while (c->recent != NULL) {
		struct engine_pending *p = c->recent;
		c->recent = p->next;
		json_object_put(p->msg);
		free(p);
	}
	c->recent_tail = &c->recent;
	for (size_t i = 0; i < c->nsent_to; i++)
		free(c->sent_to[i]);
	free(c->sent_to);
	c->sent_to = NULL;
	c->nsent_to = 0;
}

/* The message is in the outbox of every member the tracker named: it no
 * longer needs its own row. */
static void
settle(struct engine *e, struct json_object *m)
{
	if (outbox_channel_done(e->outbox, http_json_str(m, "id")) < 0)
		log_error("outbox: cannot settle a channel message");
}

/* The tracker's answer has come: whoever joined since the recent messages
 * went out gets them now, in order. A member who left meanwhile had them
 * and drops them (a peer keeps no messages of a channel it is not in). If
 * the list did not change, there is no one new. Called only with an
 * answer: a failed one leaves the messages waiting for the next. */
static void
reconcile(struct engine *e, struct engine_channel *c)
{
	for (struct engine_pending *p = c->recent; p != NULL; p = p->next) {
		size_t len;
		const char *json = serialize(p->msg, &len);

		for (size_t i = 0; c->sent_to != NULL && i < c->nmembers; i++)
			if (strcmp(c->members[i], e->username) != 0 &&
			    !listed_in(c->sent_to, c->nsent_to, c->members[i]))
				deliver(e, c->members[i], p->msg, json, len, p->seq);
		settle(e, p->msg);
	}
	free_recent(c);
}

/* Messages go at once to the members we know, while the tracker is asked
 * who they are now; a channel whose members were never known (a fresh
 * start) waits for the answer, the messages safe on disk meanwhile. */
void
engine_flush_channel(struct engine *e, struct engine_channel *c, int fresh)
{
	uint64_t now = hy_now_ms();
	int remember = 0;

	if (fresh)
		reconcile(e, c);
	if (c->queue == NULL)
		return;
	if (!fresh &&
	    (c->fetched_ms == 0 || c->stale || now - c->fetched_ms > ENGINE_MEMBERS_FRESH_MS)) {
		if (c->fetching)
			c->again = 1; /* the answer under way may be older than a join */
		engine_fetch_members(e, c);
		if (c->fetched_ms == 0)
			return;
		remember = c->fetching;
	}
	while (c->queue != NULL) {
		struct engine_pending *p = c->queue;
		c->queue = p->next;
		fanout(e, c, p);
		if (remember) {
			/* Kept for the answer: the same entry moves to the recent list. */
			p->next = NULL;
			*c->recent_tail = p;
			c->recent_tail = &p->next;
		} else {
			settle(e, p->msg);
			json_object_put(p->msg);
			free(p);
		}
	}
	c->queue_tail = &c->queue;
}

static void
enqueue(struct engine_channel *c, struct json_object *m, int64_t seq)
{
	struct engine_pending *p = xcalloc(1, sizeof(*p));

	p->msg = m;
	p->seq = seq;
	*c->queue_tail = p;
	c->queue_tail = &p->next;
}

static int
resume_one(const struct outbox_entry *en, void *arg)
{
	struct engine *e = arg;
	struct engine_channel *c = engine_channel_find(e, en->peer);
	struct json_object *m;

	if (c == NULL) {
		log_warn("#%.64s: not joined: message %s left unsent", en->peer, en->id);
		return 0;
	}
	if ((m = json_tokener_parse(en->payload)) == NULL ||
	    !json_object_is_type(m, json_type_object)) {
		json_object_put(m);
		log_error("outbox: unreadable channel message %s", en->id);
		return 0;
	}
	enqueue(c, m, 0); /* its history row unknown: the outboxes keep copies */
	return 0;
}

void
engine_resume_channels(struct engine *e)
{
	if (outbox_channel_each(e->outbox, resume_one, e) < 0)
		log_error("outbox: cannot read the channel messages waiting");
}

static void
free_list(struct engine_pending **head, struct engine_pending ***tail)
{
	while (*head != NULL) {
		struct engine_pending *p = *head;
		*head = p->next;
		json_object_put(p->msg);
		free(p);
	}
	*tail = head;
}

void
engine_free_pending(struct engine_channel *c)
{
	free_list(&c->queue, &c->queue_tail);
	free_list(&c->held, &c->held_tail);
	c->nheld = 0;
	free_recent(c);
}

int
engine_send_channel(struct engine *e, const char *channel, const char *text, int action)
{
	const char *what = action ? "me" : "sendchannel";
	char name[HY_CHANNEL_MAX + 1], conv[HY_CHANNEL_MAX + 2];
	struct engine_channel *c;
	struct json_object *m;
	const char *json;
	size_t len;

	if (engine_channel_name(e, channel, name, what) < 0)
		return -1;
	if ((c = engine_channel_find(e, name)) == NULL) {
		event_error(&e->bus, "%s: not in #%s: join it first", what, name);
		return -1;
	}
	if (check_text(e, text, what) < 0)
		return -1;
	snprintf(conv, sizeof(conv), "#%s", name);
	m = build(e, "broadcast", name, text, action);
	engine_set_last(e, conv);
	/* Durable first: the history row and this one go in the same commit. */
	engine_typing_sent(e, conv);
	int64_t seq = record(e, conv, m, 1, 1, NULL);
	json = serialize(m, &len);
	if (outbox_channel_put(e->outbox, name, http_json_str(m, "id"), json) < 0)
		log_error("outbox: cannot store a message for #%s", name);
	enqueue(c, m, seq);
	engine_flush_channel(e, c, 0);
	return 0;
}

int
engine_send(struct engine *e, const char *conversation, const char *text, int action)
{
	if (conversation[0] == '#')
		return engine_send_channel(e, conversation, text, action);
	return engine_send_direct(e, conversation, text, action);
}

int
engine_connect(struct engine *e, const char *user, const char *ip, const char *port)
{
	long long p;
	unsigned char addr[16];

	if (!hy_name_valid(user, strlen(user)) || strcmp(user, e->username) == 0) {
		event_error(&e->bus, "connect: invalid username \"%.64s\"", user);
		return -1;
	}
	if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1) {
		event_error(&e->bus, "connect: invalid IP address \"%.64s\"", ip);
		return -1;
	}
	if (hy_parse_number(port, 1, 65535, &p) < 0) {
		event_error(&e->bus, "connect: invalid port \"%.16s\": 1 to 65535", port);
		return -1;
	}
	if (e->net == NULL || p2p_net_connect(e->net, user, ip, (int)p) < 0) {
		event_error(&e->bus, "connect: cannot connect to %s", user);
		return -1;
	}
	event_system(&e->bus, "connecting to %s at %s port %lld", user, ip, p);
	return 0;
}

/* Receiving. */

/* Acknowledgements wait for the commit of what they acknowledge (the
 * turn's, or a later one: engine.c), and go as one message per sender:
 * {"type":"ack","ids":[...]}. A burst of messages costs one ack. */
struct engine_acks {
	char user[HY_NAME_MAX + 1];
	struct json_object *ids;
	size_t applied; /* received: the ids before this one are applied */
	struct engine_acks *next;
};

static void
send_ack(struct engine *e, const char *user, const char *id)
{
	struct engine_acks *a;

	for (a = e->acks; a != NULL; a = a->next)
		if (strcmp(a->user, user) == 0)
			break;
	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		snprintf(a->user, sizeof(a->user), "%s", user);
		a->ids = json_object_new_array();
		a->next = e->acks;
		e->acks = a;
	}
	json_object_array_add(a->ids, json_object_new_string(id));
	e->nacks++;
}

void
engine_flush_acks(struct engine *e)
{
	e->nacks = 0;
	if (e->net == NULL) {
		engine_free_acks(e);
		return;
	}
	while (e->acks != NULL) {
		struct engine_acks *a = e->acks;
		size_t n = json_object_array_length(a->ids);

		for (size_t off = 0; off < n; off += ENGINE_ACK_MAX_IDS) {
			struct json_object *m = json_object_new_object(),
			                   *ids = json_object_new_array();
			const char *json;
			size_t len;

			for (size_t i = off; i < n && i < off + ENGINE_ACK_MAX_IDS; i++)
				json_object_array_add(
				    ids, json_object_get(json_object_array_get_idx(a->ids, i)));
			event_add_str(m, "type", "ack");
			json_object_object_add(m, "ids", ids);
			json = serialize(m, &len);
			p2p_net_send(e->net, a->user, json, len);
			json_object_put(m);
		}
		e->acks = a->next;
		json_object_put(a->ids);
		free(a);
	}
}

static void
free_acks(struct engine_acks *a)
{
	while (a != NULL) {
		struct engine_acks *next = a->next;
		json_object_put(a->ids);
		free(a);
		a = next;
	}
}

void
engine_free_acks(struct engine *e)
{
	free_acks(e->acks);
	e->acks = NULL;
	e->nacks = 0;
	free_acks(e->acked);
	e->acked = NULL;
	e->acked_tail = &e->acked;
	e->nacked = 0;
}

/* Checks the fields every text message has; fills in a missing time. */
static int
check_incoming(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	const char *id = http_json_str(m, "id"), *from = http_json_str(m, "from");
	const char *text = http_json_str(m, "message"), *t = http_json_str(m, "time");
	struct json_object *v;

	if (encrypted && (id == NULL || strlen(id) == 0 || strlen(id) > ENGINE_ID_MAX))
		return -1;
	if ((from != NULL && strcmp(from, user) != 0) || text == NULL ||
	    (size_t)(json_object_object_get_ex(m, "message", &v) ? json_object_get_string_len(v)
	                                                         : 0) > ENGINE_TEXT_MAX ||
	    !hy_utf8_valid(text, strlen(text)))
		return -1;
	if (from == NULL)
		event_add_str(m, "from", user);
	if (t == NULL || strlen(t) >= ENGINE_TIME_MAX) {
		char now[ENGINE_TIME_MAX];
		now_iso(now, sizeof(now));
		event_add_str(m, "time", now);
	}
	if (!encrypted)
		json_object_object_del(m, "action");
	return 0;
}

/* Acknowledges m and tells whether it is new. */
static int
first_time(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	const char *id = http_json_str(m, "id");
	int fresh;

	if (!encrypted)
		return 1;
	fresh = outbox_seen(e->outbox, user, id);
	/* Unstored, it would come again: better twice than lost. */
	if (fresh < 0)
		return 1;
	send_ack(e, user, id);
	return fresh;
}

static void
recv_chat(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	if (check_incoming(e, user, encrypted, m) < 0) {
		log_warn("%s: malformed chat message dropped", user);
		return;
	}
	if (!encrypted)
		json_object_object_del(m, "id");
	if (first_time(e, user, encrypted, m))
		record(e, user, m, 0, encrypted, e->username);
}

int
engine_take_direct(struct engine *e, const char *user, struct json_object *m)
{
	int fresh;

	if (check_incoming(e, user, 1, m) < 0)
		return -1;
	fresh = outbox_seen(e->outbox, user, http_json_str(m, "id"));
	if (fresh == 0)
		return 0;
	record(e, user, m, 0, 1, e->username);
	return 1;
}

static void hold(struct engine *e, struct engine_channel *c, const char *user, int encrypted,
    struct json_object *m);

/* A channel message keeps its signature, to be relayed with it
 * (engine_backlog.c), if it has the signature's form. It is not verified
 * here: it came from its sender over an authenticated link, and a
 * verification costs several times what the rest of the message does;
 * whoever is given it in a backlog verifies it. */
static void
check_sig(struct json_object *m)
{
	const char *sig = http_json_str(m, "sig");

	if (sig != NULL && strlen(sig) != CHANSIG_B64_LEN)
		json_object_object_del(m, "sig");
}

static void
recv_broadcast(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	const char *channel = http_json_str(m, "channel");
	char conv[HY_CHANNEL_MAX + 2];
	struct engine_channel *c;

	if (check_incoming(e, user, encrypted, m) < 0 || channel == NULL) {
		log_warn("%s: malformed channel message dropped", user);
		return;
	}
	if (!encrypted)
		json_object_object_del(m, "id");
	if (channel[0] == '#')
		channel++;
	check_sig(m);
	c = engine_channel_find(e, channel);
	if (c == NULL) {
		if (first_time(e, user, encrypted, m))
			log_info("%s: message for #%.64s dropped: we are not in it", user, channel);
		return;
	}
	c->stale = 1;
	if (!engine_is_member(c, user)) {
		hold(e, c, user, encrypted, m);
		return;
	}
	if (!first_time(e, user, encrypted, m))
		return;
	snprintf(conv, sizeof(conv), "#%s", c->name);
	record(e, conv, m, 0, encrypted, NULL);
}

/* A channel message whose sender is not in the member list we hold waits,
 * unacknowledged, while the tracker is asked whether the sender is a
 * member of the channel (online or not: a tracker that has just restarted
 * knows its memberships before the peers register again). A member is
 * added to the list and its messages are taken in; a non-member's are
 * dropped unacknowledged, and so is one still unproven after
 * ENGINE_HELD_MS or past the bound: an honest sender's outbox sends it
 * again on the next link, so a member loses nothing and a non-member is
 * never shown. */
static void
hold(struct engine *e, struct engine_channel *c, const char *user, int encrypted,
    struct json_object *m)
{
	struct engine_pending *p;
	int asking = 0;

	if (c->nheld >= ENGINE_HELD_MAX) {
		log_warn("%s: message for #%s dropped: too many waiting for the member check", user,
		    c->name);
		return;
	}
	for (p = c->held; p != NULL && !asking; p = p->next)
		asking = p->asked && strcmp(p->from, user) == 0;
	p = xcalloc(1, sizeof(*p));
	p->msg = json_object_get(m);
	snprintf(p->from, sizeof(p->from), "%s", user);
	p->encrypted = encrypted;
	p->held_ms = hy_now_ms();
	p->asked = 1;
	*c->held_tail = p;
	c->held_tail = &p->next;
	c->nheld++;
	if (!asking)
		engine_check_member(e, c, user);
}

/* A member the tracker vouched for on its own (a message held, a backlog
 * asked) joins the list at once. Messages that went out on the list
 * before, and wait for the next answer to settle them, did not reach
 * them: the list they went to is kept first (engine_set_members keeps it
 * too), so that the settling sends them what they are owed. */
static void
add_member(struct engine_channel *c, const char *user)
{
	size_t i = 0;

	if (engine_is_member(c, user))
		return;
	if (c->recent != NULL && c->sent_to == NULL) {
		c->sent_to = xcalloc(c->nmembers + 1, sizeof(*c->sent_to));
		for (size_t k = 0; k < c->nmembers; k++)
			c->sent_to[k] = xstrdup(c->members[k]);
		c->nsent_to = c->nmembers;
		log_info("#%s: %s is a member by the tracker: the sends waiting go to them too",
		    c->name, user);
	}
	while (i < c->nmembers && strcmp(c->members[i], user) < 0)
		i++;
	c->members = xrealloc(c->members, (c->nmembers + 2) * sizeof(*c->members));
	memmove(&c->members[i + 1], &c->members[i], (c->nmembers - i) * sizeof(*c->members));
	c->members[i] = xstrdup(user);
	c->nmembers++;
	c->members[c->nmembers] = NULL;
}

void
engine_settle_held(struct engine *e, struct engine_channel *c, const char *user, int verdict)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct engine_pending *p, **pp = &c->held;
	uint64_t now = hy_now_ms();

	if (user != NULL && verdict == 1)
		add_member(c, user);
	snprintf(conv, sizeof(conv), "#%s", c->name);
	while ((p = *pp) != NULL) {
		int mine = user != NULL && strcmp(p->from, user) == 0;
		int member = engine_is_member(c, p->from);
		if (mine)
			p->asked = 0;
		if (!member && !(mine && verdict == 0) && now - p->held_ms < ENGINE_HELD_MS) {
			if (user == NULL && !p->asked) {
				/* The periodic pass asks again what failed. */
				p->asked = 1;
				engine_check_member(e, c, p->from);
			}
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		c->nheld--;
		if (member) {
			if (first_time(e, p->from, p->encrypted, p->msg))
				record(e, conv, p->msg, 0, p->encrypted, NULL);
		} else {
			log_warn("%s: message for #%s dropped: not a member by the tracker",
			    p->from, c->name);
		}
		json_object_put(p->msg);
		free(p);
	}
	c->held_tail = pp;
}

static void
ack_one(struct engine *e, const char *user, const char *id)
{
	struct event_json ev;
	int channel = 0;

	if (id == NULL || outbox_ack(e->outbox, user, id, &channel) != 1)
		return;
	event_json_begin(&ev, EVENT_DELIVERED);
	event_json_str(&ev, "id", id);
	event_json_str(&ev, "to", user);
	event_json_emit(&e->bus, &ev);
	if (!channel) /* a channel message has no delivery mark */
		engine_mailbox_acked(e, user, id);
}

/* Applies at most n of the acknowledgements received, oldest first. An
 * entry they remove from the outbox may wait for a later commit: lost in
 * a crash, it is sent again, and the receiver, who has it, acknowledges
 * it again. */
static void
apply_acks(struct engine *e, size_t n)
{
	if (e->db != NULL)
		peerdb_defer(e->db, 1);
	while (e->acked != NULL && n > 0) {
		struct engine_acks *a = e->acked;
		size_t len = json_object_array_length(a->ids);

		for (; a->applied < len && n > 0; n--, e->nacked--) {
			struct json_object *v = json_object_array_get_idx(a->ids, a->applied++);
			if (json_object_is_type(v, json_type_string))
				ack_one(e, a->user, json_object_get_string(v));
		}
		if (a->applied < len)
			break;
		if ((e->acked = a->next) == NULL)
			e->acked_tail = &e->acked;
		json_object_put(a->ids);
		free(a);
	}
	if (e->db != NULL)
		peerdb_defer(e->db, 0);
}

void
engine_apply_acks(struct engine *e)
{
	apply_acks(e, e->nacked);
	uv_idle_stop(&e->ack_drain);
}

static void
on_ack_drain(uv_idle_t *i)
{
	struct engine *e = i->data;

	apply_acks(e, ENGINE_ACK_SLICE);
	if (e->acked == NULL)
		uv_idle_stop(i);
}

/* {"type":"ack","ids":[...]}, or one "id": queued, applied a slice a turn
 * (ENGINE_ACK_SLICE). */
static void
recv_ack(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	struct json_object *ids;
	struct engine_acks *a;
	const char *id;

	(void)encrypted;
	if (json_object_object_get_ex(m, "ids", &ids) &&
	    json_object_is_type(ids, json_type_array)) {
		if (json_object_array_length(ids) == 0)
			return;
		json_object_get(ids);
	} else if ((id = http_json_str(m, "id")) != NULL) {
		ids = json_object_new_array();
		json_object_array_add(ids, json_object_new_string(id));
	} else {
		return;
	}
	a = xcalloc(1, sizeof(*a));
	snprintf(a->user, sizeof(a->user), "%s", user);
	a->ids = ids;
	*e->acked_tail = a;
	e->acked_tail = &a->next;
	e->nacked += json_object_array_length(ids);
	if (e->nacked > ENGINE_ACK_MAX_IDS)
		apply_acks(e, e->nacked - ENGINE_ACK_MAX_IDS);
	if (e->acked != NULL && !e->stopping)
		uv_idle_start(&e->ack_drain, on_ack_drain);
}

static const struct {
	const char *type;
	void (*fn)(struct engine *e, const char *user, int encrypted, struct json_object *m);
	int deferrable; /* its writes may wait for a later commit */
} receivers[] = {
	{ "chat", recv_chat, 1 },
	{ "broadcast", recv_broadcast, 1 },
	{ "ack", recv_ack, 0 },
	{ "presence", engine_presence_recv, 0 },
	{ "typing", engine_typing_recv, 0 },
	{ "receipt", engine_receipt_recv, 0 },
	{ "backlog", engine_backlog_request, 0 },
	{ "backlog_page", engine_backlog_page, 0 },
};

static void
net_message(void *arg, const char *user, int encrypted, struct json_object *m)
{
	struct engine *e = arg;
	const char *type = http_json_str(m, "type");

	if (type == NULL)
		return;
	if (engine_contact_blocked(e, user)) {
		/* Acknowledged, so that their outbox empties; nothing else. */
		const char *id = http_json_str(m, "id");
		if (encrypted && id != NULL && strlen(id) > 0 && strlen(id) <= ENGINE_ID_MAX &&
		    (strcmp(type, "chat") == 0 || strcmp(type, "broadcast") == 0))
			send_ack(e, user, id);
		return;
	}
	engine_typing_message(e, user, m);
	for (size_t i = 0; i < HY_ARRAY_LEN(receivers); i++) {
		if (strcmp(receivers[i].type, type) == 0) {
			/* What a message received writes (its seen id, its history
			 * row) may wait for a later commit: only its ack depends
			 * on it, and the ack waits for that commit. A plaintext
			 * link's messages have no ack to wait: they are stored in
			 * the turn's commit. */
			if (e->db != NULL)
				peerdb_defer(e->db, receivers[i].deferrable && encrypted);
			receivers[i].fn(e, user, encrypted, m);
			if (e->db != NULL)
				peerdb_defer(e->db, 0);
			return;
		}
	}
}

/* Links. */

struct resend {
	struct engine *e;
	const char *user;
	int plain;
	struct buf sent; /* ids sent on a plaintext link, NUL-separated */
	size_t held; /* written for an encrypted conversation: not sent in clear */
};

static int
resend_one(const struct outbox_entry *en, void *arg)
{
	struct resend *r = arg;

	if (r->plain) {
		struct json_object *m = en->ref > 0 ? NULL : json_tokener_parse(en->payload);
		if (m != NULL && bool_field(m, ENGINE_PLAIN_FIELD)) {
			send_plain(r->e, r->user, m);
			buf_append(&r->sent, en->id, strlen(en->id) + 1);
		} else {
			r->held++;
		}
		json_object_put(m);
		return 0;
	}
	if (en->ref > 0) {
		struct json_object *m = engine_outbox_msg(r->e, en);
		size_t len;
		int rc;
		if (m == NULL)
			return 0; /* unreadable: left for the ack that never comes */
		const char *json = serialize(m, &len);
		rc = p2p_net_send(r->e->net, r->user, json, len);
		json_object_put(m);
		return rc == 1 ? 0 : 1;
	}
	return p2p_net_send(r->e->net, r->user, en->payload, strlen(en->payload)) == 1 ? 0 : 1;
}

static void
emit_link(struct engine *e, const char *user, const char *state, int encrypted, const char *reason)
{
	struct json_object *ev = event_new(EVENT_LINK);

	event_add_str(ev, "peer", user);
	event_add_str(ev, "state", state);
	if (encrypted >= 0)
		event_add_bool(ev, "encrypted", encrypted);
	if (strcmp(state, "up") == 0)
		engine_nat_add_path(e, ev, user);
	if (reason != NULL)
		event_add_str(ev, "reason", reason);
	event_emit(&e->bus, ev);
}

static void
net_up(void *arg, const char *user, int encrypted)
{
	struct engine *e = arg;
	struct resend r = { .e = e, .user = user, .plain = !encrypted };

	emit_link(e, user, "up", encrypted, NULL);
	engine_presence_link(e, user, 1);
	if (encrypted)
		engine_backlog_link(e, user, 1);
	engine_file_link(e, user, 1);
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		c->stale = 1;
	buf_init(&r.sent);
	if (outbox_each(e->outbox, user, resend_one, &r) < 0)
		log_error("outbox: cannot read the messages for %s", user);
	for (size_t off = 0; off < r.sent.len; off += strlen(r.sent.data + off) + 1)
		outbox_ack(e->outbox, user, r.sent.data + off, NULL);
	buf_fini(&r.sent);
	if (r.held > 0)
		event_error(&e->bus,
		    "%zu message(s) to %s were written for an encrypted conversation: "
		    "they wait for an encrypted link, not this plaintext one",
		    r.held, user);
}

static void
net_down(void *arg, const char *user, const char *reason)
{
	struct engine *e = arg;

	emit_link(e, user, "down", -1, reason);
	engine_presence_link(e, user, 0);
	engine_backlog_link(e, user, 0);
	engine_file_link(e, user, 0);
	if (e->net != NULL && outbox_count(e->outbox, user) > 0) {
		p2p_net_dial(e->net, user, 1);
		engine_mailbox_kick(e, user);
	}
}

static void
net_lookup(void *arg, const char *user)
{
	struct engine *e = arg;

	engine_lookup(e, user);
}

static void
net_refused(void *arg, const char *who, const char *reason)
{
	struct engine *e = arg;

	event_error(&e->bus, "link with %s refused: %s", who, reason);
}

static void
net_binary(void *arg, const char *user, const uint8_t *data, size_t len)
{
	engine_file_frame(arg, user, data, len);
}

const struct p2p_net_ops engine_net_ops = {
	.up = net_up,
	.down = net_down,
	.message = net_message,
	.binary = net_binary,
	.lookup = net_lookup,
	.refused = net_refused,
	.rendezvous = engine_nat_rendezvous,
};

static void
redial(const char *user, void *arg)
{
	struct engine *e = arg;

	if (e->net != NULL)
		p2p_net_dial(e->net, user, 1);
}

void
engine_redial_pending(struct engine *e)
{
	if (outbox_peers(e->outbox, redial, e) < 0)
		log_error("outbox: cannot list the peers with messages waiting");
	engine_file_redial(e);
}
