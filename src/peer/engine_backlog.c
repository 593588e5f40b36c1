/* engine_backlog.c — what was said in a channel while we were away, asked
 * of the members who were there.
 *
 * Asking: when an encrypted link with a member of a channel comes up (and
 * when a channel's member list comes with links already up), that member
 * is asked once for the channel's messages since the newest one we hold,
 * bounded by the backlog-days and backlog-messages settings. The answer
 * comes in pages (backlog_frame.h), each page asked for after the one
 * before, so that an answer never fills a link's queue.
 *
 * Taking in: every message carries its original sender's signature
 * (chansig.h), checked against the key pinned in known_peers (a sender
 * never met is asked of the tracker and pinned, as the mailbox does). One
 * that does not verify is dropped and reported: a member relaying history
 * can neither forge nor alter it. Once every member asked has answered
 * (or gone quiet, or its link gone), the messages are taken in once each,
 * by id against the seen set the links use, in the order of their
 * original time; a `backlog` event then tells the front ends where the
 * backlog begins.
 *
 * Answering: a member of the channel by our list gets the signed messages
 * we hold of it, a page per request.
 */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hychat/backlog_frame.h"
#include "hychat/chansig.h"
#include "hychat/http_json.h"
#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/ratelimit.h"
#include "hychat/settings.h"
#include "hychat/util.h"

#define BACKLOG_WAIT_MS 10000 /* a member's silence before we go on without it */
#define BACKLOG_TICK_MS 1000
#define BACKLOG_SECONDS_A_DAY 86400
#define BACKLOG_WAITING_MAX 64 /* requests held for the tracker's word on their sender */
/* Pages answered per member: a request of 100 bytes costs a page of up
 * to 192 KB, so a member asking in a loop is held to a steady rate. */
#define BACKLOG_ANSWERS_BURST 200
#define BACKLOG_ANSWERS_PER_MIN 1200
#define BACKLOG_ANSWERS_SLOTS 256

/* A member asked for a channel's backlog while its link is up. */
struct bk_ask {
	char user[HY_NAME_MAX + 1];
	int64_t got; /* messages it sent */
	uint64_t sent_ms; /* the last request */
	int done;
	struct bk_ask *next;
};

/* A message of the backlog, waiting for the others. */
struct bk_item {
	struct json_object *msg; /* as a link would carry it */
	char relay[HY_NAME_MAX + 1]; /* who gave it to us */
	int verified;
};

struct bk_chan {
	char name[HY_CHANNEL_MAX + 1];
	char since[BACKLOG_TIME_MAX];
	int64_t limit;
	struct bk_ask *asks;
	struct bk_item *items;
	size_t nitems, cap;
	struct bk_chan *next;
};

/* A sender whose key is being asked of the tracker. */
struct bk_lookup {
	char user[HY_NAME_MAX + 1];
	struct bk_lookup *next;
};

/* A request from a user our member list does not name (yet): it waits for
 * the tracker's word (engine_check_member). */
struct bk_waiting {
	char user[HY_NAME_MAX + 1];
	struct backlog_request r;
	struct bk_waiting *next;
};

struct engine_backlog {
	struct engine *e;
	uv_timer_t timer;
	int timer_open;
	struct bk_chan *chans;
	struct bk_lookup *lookups;
	struct bk_waiting *waiting;
	size_t nwaiting;
	struct ratelimit *answers; /* pages answered, per member */
};

static struct bk_chan *
chan_find(struct engine_backlog *bl, const char *name, int add)
{
	struct bk_chan *ch;

	for (ch = bl->chans; ch != NULL; ch = ch->next)
		if (strcmp(ch->name, name) == 0)
			return ch;
	if (!add)
		return NULL;
	ch = xcalloc(1, sizeof(*ch));
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	ch->next = bl->chans;
	bl->chans = ch;
	return ch;
}

static struct bk_ask *
ask_find(struct bk_chan *ch, const char *user)
{
	for (struct bk_ask *a = ch->asks; a != NULL; a = a->next)
		if (strcmp(a->user, user) == 0)
			return a;
	return NULL;
}

static void
ask_remove(struct bk_chan *ch, const char *user)
{
	for (struct bk_ask **pp = &ch->asks; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->user, user) == 0) {
			struct bk_ask *a = *pp;
			*pp = a->next;
			free(a);
			return;
		}
	}
}

static void
items_clear(struct bk_chan *ch)
{
	for (size_t i = 0; i < ch->nitems; i++)
		json_object_put(ch->items[i].msg);
	free(ch->items);
	ch->items = NULL;
	ch->nitems = ch->cap = 0;
}

static void
item_drop(struct bk_chan *ch, size_t i)
{
	json_object_put(ch->items[i].msg);
	memmove(&ch->items[i], &ch->items[i + 1], (ch->nitems - i - 1) * sizeof(*ch->items));
	ch->nitems--;
}

static int
busy(const struct bk_chan *ch)
{
	for (const struct bk_ask *a = ch->asks; a != NULL; a = a->next)
		if (!a->done)
			return 1;
	for (size_t i = 0; i < ch->nitems; i++)
		if (!ch->items[i].verified)
			return 1;
	return 0;
}

static void
send_json(struct engine *e, const char *user, struct json_object *m)
{
	size_t len;
	const char *json = json_object_to_json_string_length(
	    m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	p2p_net_send(e->net, user, json, len);
}

/* Local time, days ago, in the form messages carry. */
static void
days_ago(char *out, size_t outsz, int64_t days)
{
	time_t t = time(NULL) - (time_t)(days * BACKLOG_SECONDS_A_DAY);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%S", &tm);
}

static void on_tick(uv_timer_t *t);

static void
arm(struct engine_backlog *bl)
{
	if (bl->timer_open && !uv_is_active((uv_handle_t *)&bl->timer))
		uv_timer_start(&bl->timer, on_tick, BACKLOG_TICK_MS, BACKLOG_TICK_MS);
}

/* Taking in. */

static int
by_time(const void *pa, const void *pb)
{
	const struct bk_item *a = pa, *b = pb;
	int c = strcmp(http_json_str(a->msg, "time"), http_json_str(b->msg, "time"));

	return c != 0 ? c : strcmp(http_json_str(a->msg, "id"), http_json_str(b->msg, "id"));
}

/* Every member asked has answered and every message is verified: each
 * new one is taken in, in the order of its original time. */
static void
flush(struct engine *e, struct bk_chan *ch)
{
	char conv[HY_CHANNEL_MAX + 2];
	const char *first = NULL;
	int64_t first_seq = 0, count = 0;

	if (busy(ch) || ch->nitems == 0)
		return;
	snprintf(conv, sizeof(conv), "#%s", ch->name);
	qsort(ch->items, ch->nitems, sizeof(*ch->items), by_time);
	for (size_t i = 0; i < ch->nitems; i++) {
		struct json_object *m = ch->items[i].msg;
		int64_t seq;
		/* Unstored, it may come again: better twice than lost. */
		if (engine_channel_find(e, ch->name) == NULL ||
		    outbox_seen(e->outbox, http_json_str(m, "from"), http_json_str(m, "id")) == 0)
			continue;
		seq = engine_record_channel(e, conv, m);
		if (count++ == 0) {
			first = http_json_str(m, "time");
			first_seq = seq;
		}
	}
	if (count > 0) {
		struct json_object *ev = event_new(EVENT_BACKLOG);
		event_add_str(ev, "channel", ch->name);
		event_add_str(ev, "conversation", conv);
		event_add_str(ev, "since", first);
		event_add_int(ev, "seq", first_seq);
		event_add_int(ev, "count", count);
		event_emit(&e->bus, ev);
		log_info("backlog: %lld message(s) of #%s taken in", (long long)count, ch->name);
	}
	items_clear(ch);
}

static void
report_forged(struct engine *e, const struct bk_chan *ch, const struct bk_item *it)
{
	event_error(&e->bus,
	    "backlog: a message of #%s said to be from %s, relayed by %s, does not carry %s's "
	    "signature (forged or altered): dropped",
	    ch->name, http_json_str(it->msg, "from"), it->relay, http_json_str(it->msg, "from"));
}

/* Checks item i against the sender's pinned key: 1 kept, 0 dropped, -1
 * no key pinned yet. */
static int
verify_item(struct engine *e, struct bk_chan *ch, size_t i)
{
	struct json_object *m = ch->items[i].msg;
	uint8_t pk[IDENTITY_PUBLIC_BYTES];
	struct chansig_msg s = {
		.channel = ch->name,
		.id = http_json_str(m, "id"),
		.from = http_json_str(m, "from"),
		.time = http_json_str(m, "time"),
		.text = http_json_str(m, "message"),
		.action = json_object_get_boolean(json_object_object_get(m, "action")),
	};

	if (!known_peers_lookup(e->known, s.from, pk))
		return -1;
	if (chansig_verify(pk, &s, http_json_str(m, "sig")) < 0) {
		report_forged(e, ch, &ch->items[i]);
		item_drop(ch, i);
		return 0;
	}
	ch->items[i].verified = 1;
	return 1;
}

static void
sender_looked_up(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct engine_backlog *bl = e->backlog;
	struct tracker_peer p;
	int pinned = 0;

	(void)err;
	if (bl == NULL)
		return;
	for (struct bk_lookup **pp = &bl->lookups; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->user, user) == 0) {
			struct bk_lookup *l = *pp;
			*pp = l->next;
			free(l);
			break;
		}
	}
	if (status == 200 && tracker_client_parse_peer(body, &p) == 0 &&
	    p.keylen == IDENTITY_PUBLIC_BYTES) {
		switch (known_peers_check(e->known, user, p.key, p.keylen)) {
		case KNOWN_PEERS_MATCH:
		case KNOWN_PEERS_NEW: pinned = 1; break;
		case KNOWN_PEERS_CHANGED:
			event_error(&e->bus,
			    "backlog: %s's key at the tracker changed since first seen (see "
			    "known_peers)",
			    user);
			break;
		default: break;
		}
	}
	for (struct bk_chan *ch = bl->chans; ch != NULL; ch = ch->next) {
		size_t i = 0;
		while (i < ch->nitems) {
			struct bk_item *it = &ch->items[i];
			int rc;
			if (it->verified || strcmp(http_json_str(it->msg, "from"), user) != 0) {
				i++;
				continue;
			}
			rc = pinned ? verify_item(e, ch, i) : -1;
			if (rc == 1)
				i++;
			if (rc < 0) {
				log_warn("backlog: %s's key is unknown: its message in #%s dropped",
				    user, ch->name);
				item_drop(ch, i);
			}
		}
		flush(e, ch);
	}
}

static void
look_up(struct engine *e, const char *user)
{
	struct engine_backlog *bl = e->backlog;
	char path[sizeof("/peers/") + HY_NAME_MAX];
	struct bk_lookup *l;

	for (l = bl->lookups; l != NULL; l = l->next)
		if (strcmp(l->user, user) == 0)
			return;
	l = xcalloc(1, sizeof(*l));
	snprintf(l->user, sizeof(l->user), "%s", user);
	l->next = bl->lookups;
	bl->lookups = l;
	if (e->tc == NULL) { /* no tracker to ask: unverifiable, dropped */
		sender_looked_up(e, 0, NULL, NULL, user);
		return;
	}
	snprintf(path, sizeof(path), "/peers/%s", user);
	engine_tracker_call(e, TRACKER_GET, path, NULL, sender_looked_up, user);
}

static void
take_entry(struct engine *e, struct bk_chan *ch, const char *relay, const struct backlog_entry *en)
{
	struct json_object *m;
	struct bk_item *it;

	if (strcmp(en->from, e->username) == 0 || engine_contact_blocked(e, en->from))
		return;
	for (size_t i = 0; i < ch->nitems; i++)
		if (strcmp(http_json_str(ch->items[i].msg, "id"), en->id) == 0 &&
		    strcmp(http_json_str(ch->items[i].msg, "from"), en->from) == 0)
			return; /* another member gave it too */
	if (ch->nitems >= (size_t)ch->limit + BACKLOG_PAGE_MAX) {
		log_warn("backlog: #%s: more messages than asked for, from %s: dropped", ch->name,
		    relay);
		return;
	}
	m = json_object_new_object();
	event_add_str(m, "type", "broadcast");
	event_add_str(m, "id", en->id);
	event_add_str(m, "from", en->from);
	event_add_str(m, "channel", ch->name);
	event_add_str(m, "message", en->text);
	event_add_str(m, "time", en->time);
	if (en->action)
		event_add_bool(m, "action", 1);
	event_add_str(m, "sig", en->sig);
	if (ch->nitems == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 64;
		ch->items = xrealloc(ch->items, ch->cap * sizeof(*ch->items));
	}
	it = &ch->items[ch->nitems++];
	memset(it, 0, sizeof(*it));
	it->msg = m;
	snprintf(it->relay, sizeof(it->relay), "%s", relay);
	if (verify_item(e, ch, ch->nitems - 1) < 0)
		look_up(e, en->from);
}

void
engine_backlog_page(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	struct engine_backlog *bl = e->backlog;
	char name[HY_CHANNEL_MAX + 1];
	struct json_object *entries;
	struct backlog_entry en;
	struct bk_chan *ch;
	struct bk_ask *a;
	int64_t next;
	size_t n;

	if (!encrypted || bl == NULL)
		return;
	if (backlog_page_parse(m, name, &entries, &next) < 0) {
		log_warn("%s: malformed backlog page dropped", user);
		return;
	}
	if ((ch = chan_find(bl, name, 0)) == NULL || (a = ask_find(ch, user)) == NULL || a->done) {
		log_warn("%s: backlog page of #%s not asked for: dropped", user, name);
		return;
	}
	n = json_object_array_length(entries);
	for (size_t i = 0; i < n; i++) {
		if (backlog_entry_parse(entries, i, &en) < 0) {
			log_warn("%s: malformed backlog entry of #%s dropped", user, name);
			continue;
		}
		take_entry(e, ch, user, &en);
	}
	a->got += (int64_t)n;
	if (next > 0 && n > 0 && a->got < ch->limit) {
		struct backlog_request r = { .after = next, .limit = ch->limit - a->got };
		struct json_object *q;
		snprintf(r.channel, sizeof(r.channel), "%s", ch->name);
		snprintf(r.since, sizeof(r.since), "%s", ch->since);
		q = backlog_request_new(&r);
		send_json(e, user, q);
		json_object_put(q);
		a->sent_ms = hy_now_ms();
		return;
	}
	a->done = 1;
	flush(e, ch);
}

/* Asking. */

static void
ask(struct engine *e, struct engine_channel *c, const char *user)
{
	struct engine_backlog *bl = e->backlog;
	int64_t days = settings_get_int(e->settings, SETTING_BACKLOG_DAYS);
	int64_t limit = settings_get_int(e->settings, SETTING_BACKLOG_MESSAGES);
	char conv[HY_CHANNEL_MAX + 2], oldest[BACKLOG_TIME_MAX];
	struct backlog_request r = { 0 };
	struct json_object *q;
	struct bk_chan *ch;
	struct bk_ask *a;

	if (bl == NULL || e->net == NULL || days <= 0 || limit <= 0 ||
	    strcmp(c->name, ENGINE_BROADCAST) == 0 || strcmp(user, e->username) == 0 ||
	    p2p_net_link_state(e->net, user) != 1)
		return;
	ch = chan_find(bl, c->name, 1);
	if (ask_find(ch, user) != NULL)
		return;
	if (!busy(ch)) {
		/* A new round: since the newest message held, or since we joined
		 * (what was said before is not ours), within the days. A channel
		 * we hold nothing of, from a run before joins were timed: now. */
		snprintf(conv, sizeof(conv), "#%s", c->name);
		days_ago(oldest, sizeof(oldest), days);
		if (history_newest_time(e->hist, conv, ch->since, sizeof(ch->since)) != 1) {
			history_mark_joined(e->hist, conv);
			if (history_newest_time(e->hist, conv, ch->since, sizeof(ch->since)) != 1)
				snprintf(ch->since, sizeof(ch->since), "%s", oldest);
		}
		if (strcmp(ch->since, oldest) < 0)
			snprintf(ch->since, sizeof(ch->since), "%s", oldest);
		ch->limit = limit;
	}
	snprintf(r.channel, sizeof(r.channel), "%s", c->name);
	snprintf(r.since, sizeof(r.since), "%s", ch->since);
	r.limit = ch->limit;
	q = backlog_request_new(&r);
	send_json(e, user, q);
	json_object_put(q);
	a = xcalloc(1, sizeof(*a));
	snprintf(a->user, sizeof(a->user), "%s", user);
	a->sent_ms = hy_now_ms();
	a->next = ch->asks;
	ch->asks = a;
	arm(bl);
}

void
engine_backlog_link(struct engine *e, const char *user, int up)
{
	struct engine_backlog *bl = e->backlog;

	if (bl == NULL)
		return;
	/* A link that comes back is asked again; one that went is not waited for. */
	for (struct bk_chan *ch = bl->chans; ch != NULL; ch = ch->next) {
		ask_remove(ch, user);
		flush(e, ch);
	}
	if (!up)
		return;
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		if (engine_is_member(c, user))
			ask(e, c, user);
}

void
engine_backlog_members(struct engine *e, struct engine_channel *c)
{
	for (size_t i = 0; i < c->nmembers; i++)
		ask(e, c, c->members[i]);
}

static void
on_tick(uv_timer_t *t)
{
	struct engine_backlog *bl = t->data;
	uint64_t now = hy_now_ms();
	int active = 0;

	for (struct bk_chan *ch = bl->chans; ch != NULL; ch = ch->next) {
		for (struct bk_ask *a = ch->asks; a != NULL; a = a->next) {
			if (!a->done && now - a->sent_ms >= BACKLOG_WAIT_MS) {
				log_info("backlog: %s did not answer for #%s", a->user, ch->name);
				a->done = 1;
			}
		}
		flush(bl->e, ch);
		active |= busy(ch);
	}
	if (!active)
		uv_timer_stop(t);
}

/* Answering. */

struct answer {
	struct json_object *page;
	size_t used;
	int count, full;
	int64_t last_seq;
};

static void
add_one(const struct history_msg *h, void *arg)
{
	struct answer *an = arg;
	struct backlog_entry en = {
		.id = h->id,
		.from = h->from,
		.time = h->time,
		.text = h->text,
		.sig = h->sig,
		.action = h->kind == HISTORY_ACTION,
	};

	if (an->full || h->id == NULL || h->sig == NULL)
		return;
	if (!backlog_page_add(an->page, &en, &an->used)) {
		an->full = 1;
		return;
	}
	an->count++;
	an->last_seq = h->seq;
}

static void
answer(
    struct engine *e, struct engine_channel *c, const char *user, const struct backlog_request *r)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct answer an = { 0 };
	int n = r->limit < BACKLOG_PAGE_MAX ? (int)r->limit : BACKLOG_PAGE_MAX;

	snprintf(conv, sizeof(conv), "#%s", c->name);
	an.page = backlog_page_new(c->name);
	if (history_signed_since(e->hist, conv, r->since, r->after, r->limit, n, add_one, &an) < 0)
		log_error("history: cannot read #%s for %s's backlog", c->name, user);
	/* More may follow a page that is full, by count or by bytes. */
	if ((an.full || an.count == n) && an.count > 0 && an.count < r->limit)
		backlog_page_set_next(an.page, an.last_seq);
	send_json(e, user, an.page);
	json_object_put(an.page);
}

void
engine_backlog_request(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	struct engine_backlog *bl = e->backlog;
	struct backlog_request r;
	struct engine_channel *c;
	struct bk_waiting *w;

	if (!encrypted || e->net == NULL || bl == NULL)
		return;
	if (backlog_request_parse(m, &r) < 0) {
		log_warn("%s: malformed backlog request dropped", user);
		return;
	}
	c = engine_channel_find(e, r.channel);
	if (c == NULL || strcmp(c->name, ENGINE_BROADCAST) == 0) {
		log_warn("%s: backlog of #%s refused: not a channel of ours", user, r.channel);
		return;
	}
	if (ratelimit_take(bl->answers, user, strlen(user), hy_now_ms()) != 0) {
		log_warn("%s: backlog of #%s refused: asked too often", user, r.channel);
		return;
	}
	if (engine_is_member(c, user)) {
		answer(e, c, user, &r);
		return;
	}
	/* Perhaps a member who joined since our list came: the tracker says. */
	for (w = bl->waiting; w != NULL; w = w->next)
		if (strcmp(w->user, user) == 0 && strcmp(w->r.channel, r.channel) == 0)
			break;
	if (w != NULL || bl->nwaiting >= BACKLOG_WAITING_MAX) {
		log_warn("%s: backlog of #%s refused: not a member we know of", user, r.channel);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	snprintf(w->user, sizeof(w->user), "%s", user);
	w->r = r;
	w->next = bl->waiting;
	bl->waiting = w;
	bl->nwaiting++;
	engine_check_member(e, c, user);
}

void
engine_backlog_verdict(struct engine *e, struct engine_channel *c, const char *user, int verdict)
{
	struct engine_backlog *bl = e->backlog;

	if (bl == NULL)
		return;
	for (struct bk_waiting **pp = &bl->waiting; *pp != NULL;) {
		struct bk_waiting *w = *pp;
		if (strcmp(w->user, user) != 0 || strcmp(w->r.channel, c->name) != 0) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		bl->nwaiting--;
		if (verdict == 1 && e->net != NULL && p2p_net_link_state(e->net, user) == 1)
			answer(e, c, user, &w->r);
		else
			log_warn("%s: backlog of #%s refused: not a member by the tracker", user,
			    c->name);
		free(w);
	}
}

/* Life. */

static void
on_closed(uv_handle_t *h)
{
	struct engine_backlog *bl = h->data;

	bl->e->handles--;
}

void
engine_backlog_init(struct engine *e)
{
	struct engine_backlog *bl = xcalloc(1, sizeof(*bl));

	bl->e = e;
	bl->answers =
	    ratelimit_new(BACKLOG_ANSWERS_SLOTS, BACKLOG_ANSWERS_PER_MIN, BACKLOG_ANSWERS_BURST);
	uv_timer_init(e->loop, &bl->timer);
	bl->timer.data = bl;
	bl->timer_open = 1;
	e->handles++;
	e->backlog = bl;
}

void
engine_backlog_stop(struct engine *e)
{
	struct engine_backlog *bl = e->backlog;

	if (bl == NULL || !bl->timer_open)
		return;
	bl->timer_open = 0;
	uv_timer_stop(&bl->timer);
	uv_close((uv_handle_t *)&bl->timer, on_closed);
}

void
engine_backlog_free(struct engine *e)
{
	struct engine_backlog *bl = e->backlog;

	if (bl == NULL)
		return;
	while (bl->chans != NULL) {
		struct bk_chan *ch = bl->chans;
		bl->chans = ch->next;
		while (ch->asks != NULL)
			ask_remove(ch, ch->asks->user);
		items_clear(ch);
		free(ch);
	}
	while (bl->lookups != NULL) {
		struct bk_lookup *l = bl->lookups;
		bl->lookups = l->next;
		free(l);
	}
	while (bl->waiting != NULL) {
		struct bk_waiting *w = bl->waiting;
		bl->waiting = w->next;
		free(w);
	}
	ratelimit_free(bl->answers);
	free(bl);
	e->backlog = NULL;
}
