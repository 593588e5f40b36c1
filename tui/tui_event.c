/* tui_event.c — the engine's events into the client's model: a table of
 * one handler per event type. Handlers change the model and ask for a
 * redraw; they never draw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/settings.h"
#include "tui_internal.h"

#include "hychat/delivery.h"
int
tui_label_is(struct json_object *o, const char *label)
{
	const char *l = http_json_str(o, "label");

	return l != NULL && strcmp(l, label) == 0;
}

int
tui_label_user(struct json_object *o)
{
	const char *l = http_json_str(o, "label");

	return l != NULL && strcmp(l, TUI_LABEL_FETCH) != 0 && strcmp(l, TUI_LABEL_QUIET) != 0 &&
	    strcmp(l, TUI_LABEL_SEARCH) != 0;
}

static int
get_bool(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static const char *
str_or(struct json_object *o, const char *key, const char *dflt)
{
	const char *s = http_json_str(o, key);

	return s != NULL ? s : dflt;
}

static void
on_login(struct tui *t, struct json_object *o)
{
	const char *status = str_or(o, "status", "failed"),
	           *type = json_object_get_string(json_object_object_get(o, "type"));
	int reg = strcmp(type, "register_result") == 0;

	if (strcmp(status, "success") == 0) {
		if (t->mode == TUI_LOGIN || t->mode == TUI_REGISTER ||
		    t->mode == TUI_REGISTER_AGAIN)
			t->mode = TUI_NORMAL;
		tui_line(t, TUI_MSG_SYSTEM, "%s as %s",
		    reg ? "registered and logged in" : "logged in", str_or(o, "username", "?"));
		return;
	}
	tui_line(t, TUI_MSG_ERROR, "%s failed: %s", reg ? "registration" : "login",
	    str_or(o, "message", "no reason given"));
	if (t->mode == TUI_NORMAL && t->cfg.need_login &&
	    engine_tracker_state(t->e) != ENGINE_ONLINE)
		t->mode = reg ? TUI_REGISTER : TUI_LOGIN;
	tui_dirty(t);
}

static void
on_tracker(struct tui *t, struct json_object *o)
{
	const char *state = str_or(o, "state", "offline"), *msg = http_json_str(o, "message");
	struct json_object *v;
	int was_online = strcmp(t->tracker, "online") == 0;

	snprintf(t->tracker, sizeof(t->tracker), "%s", state);
	t->tracker_tls = json_object_object_get_ex(o, "tls", &v) && json_object_get_boolean(v);
	t->tracker_loopback =
	    json_object_object_get_ex(o, "loopback", &v) && json_object_get_boolean(v);
	/* Offline, not logged in, at the password prompt: the prompt says so. */
	if (msg != NULL && strcmp(state, "online") != 0 &&
	    !(t->mode != TUI_NORMAL && strcmp(state, "offline") == 0))
		tui_notice(t, 1, "tracker %s: %s", state, msg);
	if (!was_online && strcmp(state, "online") == 0)
		tui_conv_refresh_peers(t);
	tui_dirty(t);
}

static void
set_members(struct tui_conv *c, struct json_object *peers, const char *self)
{
	size_t n = json_object_array_length(peers), k = 0;

	free(c->members);
	c->members = xcalloc(n + 1, sizeof(*c->members));
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, i);
		const char *u = json_object_is_type(p, json_type_string)
		    ? json_object_get_string(p)
		    : http_json_str(p, "username");
		if (u == NULL || strlen(u) > HY_NAME_MAX)
			continue;
		snprintf(c->members[k++], sizeof(c->members[0]), "%s", u);
	}
	c->nmembers = k;
	c->listed = 1;
	(void)self;
}

/* The link's path from a link event or a /who entry ("" if none). */
static void
set_path(struct tui_peer *p, struct json_object *o)
{
	const char *path = http_json_str(o, "path"), *via = http_json_str(o, "via");

	snprintf(p->path, sizeof(p->path), "%s%s%s", path != NULL ? path : "",
	    path != NULL && via != NULL ? " via " : "", path != NULL && via != NULL ? via : "");
}

static void
on_peer_list(struct tui *t, struct json_object *o)
{
	const char *chan = http_json_str(o, "channel");
	struct json_object *peers, *v;
	char conv[HY_CHANNEL_MAX + 2];
	struct tui_conv *c;

	if (!json_object_object_get_ex(o, "peers", &peers) ||
	    !json_object_is_type(peers, json_type_array))
		return;
	if (chan == NULL)
		for (size_t i = 0; i < t->npeers; i++)
			t->peers[i].online = 0;
	for (size_t i = 0; i < json_object_array_length(peers); i++) {
		struct json_object *p = json_object_array_get_idx(peers, i);
		const char *u = http_json_str(p, "username");
		struct tui_peer *peer = u != NULL ? tui_peer_get(t, u) : NULL;
		if (peer == NULL)
			continue;
		peer->online = 1;
		peer->link = strcmp(str_or(p, "link", "down"), "up") == 0;
		peer->encrypted =
		    json_object_object_get_ex(p, "encrypted", &v) && json_object_get_boolean(v);
		snprintf(peer->display, sizeof(peer->display), "%s", str_or(p, "display_name", ""));
		set_path(peer, p);
	}
	if (tui_label_user(o)) {
		struct buf b;
		buf_init(&b);
		for (size_t i = 0; i < json_object_array_length(peers); i++) {
			struct json_object *p = json_object_array_get_idx(peers, i);
			buf_printf(&b, "%s%s%s", i > 0 ? ", " : "", str_or(p, "username", "?"),
			    strcmp(str_or(p, "link", "down"), "up") == 0
			        ? (get_bool(p, "encrypted") ? " (linked, encrypted)"
			                                    : " (linked, plaintext)")
			        : "");
		}
		tui_line(t, TUI_MSG_SYSTEM, "online%s%s: %s", chan != NULL ? " in #" : "",
		    chan != NULL ? chan : "", b.data != NULL ? b.data : "nobody");
		buf_fini(&b);
	}
	snprintf(conv, sizeof(conv), "#%s", chan != NULL ? chan : ENGINE_BROADCAST);
	if ((c = tui_conv_find(t, conv)) != NULL)
		set_members(c, peers, engine_username(t->e));
	tui_dirty(t);
}

static void
on_channel(struct tui *t, struct json_object *o)
{
	const char *conv = http_json_str(o, "conversation");
	struct json_object *members;
	struct tui_conv *c;

	if (conv == NULL)
		return;
	if (!get_bool(o, "joined")) {
		if ((c = tui_conv_find(t, conv)) != NULL)
			tui_conv_close(t, c);
		tui_line(t, TUI_MSG_SYSTEM, "left %s", conv);
		return;
	}
	if ((c = tui_conv_get(t, conv)) == NULL)
		return;
	if (json_object_object_get_ex(o, "members", &members) &&
	    json_object_is_type(members, json_type_array))
		set_members(c, members, engine_username(t->e));
	/* The answer to this terminal's /join: the engine runs it on behalf
	 * of its origin (event.h). Show the channel. */
	if (event_origin_get(engine_events(t->e))->owner == t) {
		for (size_t i = 0; i < t->nconvs; i++)
			if (t->convs[i] == c)
				tui_conv_select(t, i);
		tui_line(t, TUI_MSG_SYSTEM, "joined %s", conv);
	}
	tui_dirty(t);
}

static void
on_message(struct tui *t, struct json_object *o)
{
	const char *conv = http_json_str(o, "conversation");
	struct tui_conv *c, *cur = tui_conv_current(t);
	struct json_object *v;
	struct tui_msg *m;

	if (conv == NULL || (c = tui_conv_get(t, conv)) == NULL)
		return;
	if ((m = tui_msg_from_json(t, o, conv)) == NULL)
		return;
	/* The engine counts what was not read (shown, but counted unread
	 * until the client marks it read on leaving). */
	if (json_object_object_get_ex(o, "unread", &v))
		c->unread = json_object_get_int64(v);
	if (!m->outgoing) {
		if (c != cur) {
			c->activity = 1;
			c->mention |= m->mention;
		}
		if (c != cur && (!c->channel || m->mention)) {
			tui_alert(t, c);
			if (strcmp(engine_setting(t->e, SETTING_NOTIFY), "desktop") == 0)
				tui_notify_desktop(t, c->name, m->from, m->text);
		}
	}
	if (c->channel && c == cur && !m->outgoing) {
		/* A sender the peer pane does not list joined since the last list. */
		size_t i;
		for (i = 0; i < c->nmembers && strcmp(c->members[i], m->from) != 0; i++)
			;
		if (i == c->nmembers)
			tui_refresh_soon(t);
	}
	tui_conv_add(t, c, m);
	if (cur == NULL)
		tui_conv_select(t, 0);
}

/* Someone's presence changed, as the engine saw it (pushed, never asked). */
static void
on_presence(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "user"), *state = str_or(o, "state", "offline");
	const char *msg = str_or(o, "message", "");
	struct tui_peer *p;

	if (u == NULL)
		return;
	if (strcmp(u, engine_username(t->e)) == 0) {
		if (strcmp(state, "away") == 0)
			tui_line(t, TUI_MSG_SYSTEM, "you are away%s%s", msg[0] ? ": " : "", msg);
		else
			tui_line(t, TUI_MSG_SYSTEM, "you are back");
		return;
	}
	if ((p = tui_peer_get(t, u)) == NULL)
		return;
	p->online = strcmp(state, "offline") != 0;
	p->away = strcmp(state, "away") == 0;
	snprintf(p->away_message, sizeof(p->away_message), "%s", p->away ? msg : "");
	/* Someone came or went: the channel's member list changed with them. */
	tui_refresh_soon(t);
	tui_dirty(t);
}

/* Keeps user in the sorted contact list (in) or out of it. */
static void
set_contact(struct tui *t, const char *user, int in)
{
	size_t i = 0;

	while (i < t->ncontacts && strcmp(t->contacts[i], user) < 0)
		i++;
	if (i < t->ncontacts && strcmp(t->contacts[i], user) == 0) {
		if (!in)
			memmove(&t->contacts[i], &t->contacts[i + 1],
			    (--t->ncontacts - i) * sizeof(t->contacts[0]));
		return;
	}
	if (!in || strlen(user) > HY_NAME_MAX)
		return;
	t->contacts = xrealloc(t->contacts, (t->ncontacts + 1) * sizeof(t->contacts[0]));
	memmove(&t->contacts[i + 1], &t->contacts[i], (t->ncontacts - i) * sizeof(t->contacts[0]));
	snprintf(t->contacts[i], sizeof(t->contacts[0]), "%s", user);
	t->ncontacts++;
}

/* One contact's entry: in the list, and their presence as we know it. */
static void
take_contact(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "user"), *state = str_or(o, "state", "offline");
	struct json_object *v;
	struct tui_peer *p;
	int contact = json_object_object_get_ex(o, "contact", &v) && json_object_get_boolean(v);
	int blocked = json_object_object_get_ex(o, "blocked", &v) && json_object_get_boolean(v);

	if (u == NULL)
		return;
	set_contact(t, u, contact && !blocked);
	if (contact && !blocked && (p = tui_peer_get(t, u)) != NULL) {
		p->online = strcmp(state, "offline") != 0;
		p->away = strcmp(state, "away") == 0;
		snprintf(p->away_message, sizeof(p->away_message), "%s",
		    p->away ? str_or(o, "message", "") : "");
	}
}

static void
on_contacts(struct tui *t, struct json_object *o)
{
	struct json_object *list;

	t->ncontacts = 0;
	if (json_object_object_get_ex(o, "contacts", &list) &&
	    json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			take_contact(t, json_object_array_get_idx(list, i));
	tui_dirty(t);
}

static void
on_contact(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "user");
	struct json_object *v;

	take_contact(t, o);
	if (u != NULL)
		tui_line(t, TUI_MSG_SYSTEM, "%s: %s", u,
		    json_object_object_get_ex(o, "blocked", &v) && json_object_get_boolean(v)
		        ? "blocked"
		        : json_object_object_get_ex(o, "contact", &v) && json_object_get_boolean(v)
		        ? "a contact"
		        : "not a contact");
	tui_dirty(t);
}

/* The answer to /set, and a setting changed here or in another window. */
static void
on_settings(struct tui *t, struct json_object *o)
{
	struct json_object *list;

	if (!json_object_object_get_ex(o, "settings", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *s = json_object_array_get_idx(list, i);
		tui_line(t, TUI_MSG_SYSTEM, "%s = %s  (%s)", str_or(s, "name", "?"),
		    str_or(s, "value", ""), str_or(s, "help", ""));
	}
	tui_dirty(t);
}

static void
on_setting(struct tui *t, struct json_object *o)
{
	tui_line(t, TUI_MSG_SYSTEM, "%s = %s", str_or(o, "name", "?"), str_or(o, "value", ""));
	tui_dirty(t);
}

/* The answer to /whois. */
static void
on_whois(struct tui *t, struct json_object *o)
{
	const char *u = str_or(o, "user", "?"), *name = str_or(o, "display_name", "");
	const char *status = str_or(o, "status_line", ""), *state = str_or(o, "state", "offline");
	const char *msg = str_or(o, "message", "");

	tui_line(t, TUI_MSG_SYSTEM, "%s%s%s%s: %s%s%s", u, name[0] ? " (" : "", name,
	    name[0] ? ")" : "", state, msg[0] ? ", " : "", msg);
	if (status[0] != '\0')
		tui_line(t, TUI_MSG_SYSTEM, "%s: %s", u, status);
	tui_dirty(t);
}

/* Someone started or stopped typing in a conversation. */
static void
on_typing(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "user"), *conv = http_json_str(o, "conversation");
	struct tui_conv *c = conv != NULL ? tui_conv_find(t, conv) : NULL;
	int active = strcmp(str_or(o, "state", ""), "active") == 0;
	size_t i;

	if (c == NULL || u == NULL)
		return;
	for (i = 0; i < c->ntyping && strcmp(c->typing[i], u) != 0; i++)
		;
	if (active && i == c->ntyping && c->ntyping < TUI_TYPING_MAX)
		snprintf(c->typing[c->ntyping++], sizeof(c->typing[0]), "%s", u);
	else if (!active && i < c->ntyping)
		memmove(
		    &c->typing[i], &c->typing[i + 1], (--c->ntyping - i) * sizeof(c->typing[0]));
	tui_dirty(t);
}

void
tui_typing_key(struct tui *t)
{
	struct tui_conv *c = t->nconvs > 0 ? tui_conv_current(t) : NULL;

	if (c != NULL && t->mode == TUI_NORMAL && t->input.len > 0 && t->input.buf[0] != L'/')
		engine_typing(t->e, c->name);
}

/* A conversation was read, here or in another front end. */
static void
on_read(struct tui *t, struct json_object *o)
{
	const char *conv = http_json_str(o, "conversation");
	struct tui_conv *c = conv != NULL ? tui_conv_find(t, conv) : NULL;
	struct json_object *v;

	if (c == NULL)
		return;
	c->unread = json_object_object_get_ex(o, "unread", &v) ? json_object_get_int64(v) : 0;
	if (c->unread == 0) {
		c->activity = 0;
		c->mention = 0;
		/* The marker of the open conversation shows where this visit
		 * began; another one's goes with its mark. */
		if (c != tui_conv_current(t))
			c->marker_seq = 0;
	}
	tui_title(t);
	tui_dirty(t);
}

static void
on_history(struct tui *t, struct json_object *o)
{
	if (tui_label_is(o, TUI_LABEL_FETCH) && t->fetch != TUI_FETCH_NONE) {
		tui_conv_history(t, o);
		return;
	}
	/* Only the terminal's own requests come here; the user's /history is
	 * answered by the scrollback. */
	if (tui_label_user(o))
		tui_line(t, TUI_MSG_SYSTEM, "history of %s: open it and scroll with PgUp",
		    str_or(o, "conversation", "?"));
}

static void
on_search(struct tui *t, struct json_object *o)
{
	tui_conv_search_result(t, o);
}

static void
on_link(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "peer");
	struct tui_peer *p = u != NULL ? tui_peer_get(t, u) : NULL;
	const char *reason = http_json_str(o, "reason");

	if (p == NULL)
		return;
	p->link = strcmp(str_or(o, "state", "down"), "up") == 0;
	p->encrypted = get_bool(o, "encrypted");
	set_path(p, o);
	if (p->link)
		p->online = 1;
	if (!p->link && reason != NULL) {
		struct tui_conv *c = tui_conv_current(t);
		if (c != NULL && strcmp(c->name, u) == 0)
			tui_line(t, TUI_MSG_SYSTEM, "link with %s down: %s", u, reason);
	}
	tui_refresh_soon(t);
	tui_dirty(t);
}

static void
on_fingerprint(struct tui *t, struct json_object *o)
{
	const char *u = http_json_str(o, "username"), *fp = http_json_str(o, "fingerprint");
	struct tui_conv *c = u != NULL ? tui_conv_find(t, u) : NULL;

	if (c != NULL && !c->channel) {
		snprintf(c->fingerprint, sizeof(c->fingerprint), "%s", fp != NULL ? fp : "none");
		snprintf(c->fp_source, sizeof(c->fp_source), "%s", str_or(o, "source", "?"));
		if (tui_label_is(o, TUI_LABEL_QUIET)) {
			tui_dirty(t);
			return;
		}
	}
	tui_line(t, TUI_MSG_SYSTEM, "key of %s: %s (%s)", u != NULL ? u : "?",
	    fp != NULL ? fp : "none", str_or(o, "source", "?"));
}

static void
on_channel_list(struct tui *t, struct json_object *o)
{
	struct json_object *list, *v;

	if (!json_object_object_get_ex(o, "channels", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	/* one event a page of the tracker's list; the title once */
	if (!json_object_object_get_ex(o, "page", &v) || json_object_get_int64(v) <= 1)
		tui_line(t, TUI_MSG_SYSTEM, "channels on the tracker:");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *c = json_object_array_get_idx(list, i);
		long long members = json_object_object_get_ex(c, "members", &v)
		    ? (long long)json_object_get_int64(v)
		    : 0;
		tui_line(t, TUI_MSG_SYSTEM, "  #%-20s %3lld member%s%s", str_or(c, "name", "?"),
		    members, members == 1 ? "" : "s", get_bool(c, "joined") ? ", joined" : "");
	}
}

static void
on_conversation_list(struct tui *t, struct json_object *o)
{
	struct json_object *list, *v;

	if (!json_object_object_get_ex(o, "conversations", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		const char *name = http_json_str(e, "name");
		struct tui_conv *c = name != NULL ? tui_conv_get(t, name) : NULL;
		/* The one shown keeps its own count (it is being read); at start
		 * nothing is shown yet, whichever conversation sits first. */
		if (c == NULL || (c == tui_conv_current(t) && c->loaded))
			continue;
		if (json_object_object_get_ex(e, "unread", &v)) {
			c->unread = json_object_get_int64(v);
			c->activity = c->unread > 0;
		}
	}
	/* At start, the first in the pane: #general. */
	if (tui_conv_current(t) == NULL || !tui_conv_current(t)->loaded)
		tui_conv_select(t, 0);
	tui_dirty(t);
}

static void
on_help(struct tui *t, struct json_object *o)
{
	tui_help(t, o);
}

static void
on_system(struct tui *t, struct json_object *o)
{
	tui_line(t, TUI_MSG_SYSTEM, "%s", str_or(o, "message", ""));
}

static void
on_error(struct tui *t, struct json_object *o)
{
	tui_line(t, TUI_MSG_ERROR, "%s", str_or(o, "message", ""));
}

static void
on_delivered(struct tui *t, struct json_object *o)
{
	(void)t;
	(void)o;
}

/* An own direct message moved: pending, stored at the tracker, delivered. */
static void
on_delivery(struct tui *t, struct json_object *o)
{
	const char *conv = http_json_str(o, "conversation"), *id = http_json_str(o, "id");
	const char *state = str_or(o, "state", "");
	struct tui_conv *c;

	if (conv == NULL || id == NULL || (c = tui_conv_find(t, conv)) == NULL)
		return;
	for (size_t i = c->n; i-- > 0;) {
		struct tui_msg *m = c->msgs[i];
		if (m->id == NULL || strcmp(m->id, id) != 0)
			continue;
		for (int k = 0; k < DELIVERY_STATE_COUNT; k++)
			if (strcmp(state, delivery_name((enum delivery_state)k)) == 0 &&
			    k > m->delivery)
				m->delivery = k;
		m->wrap_width = 0; /* the prefix grew: wrap again */
		tui_dirty(t);
		return;
	}
}

/* What was said while we were away came from the channel's members: a
 * marker line above its first message. */
static void
on_backlog(struct tui *t, struct json_object *o)
{
	const char *conv = http_json_str(o, "conversation"), *since = str_or(o, "since", "");
	struct json_object *seq;
	struct tui_conv *c;

	if (conv == NULL || !json_object_object_get_ex(o, "seq", &seq) ||
	    (c = tui_conv_find(t, conv)) == NULL)
		return;
	c->backlog_seq = json_object_get_int64(seq);
	/* "YYYY-MM-DDTHH:MM...": the HH:MM */
	snprintf(c->backlog_since, sizeof(c->backlog_since), "%.5s",
	    strlen(since) >= 16 ? since + 11 : "?");
	for (size_t i = 0; i < c->n; i++)
		c->msgs[i]->wrap_width = 0; /* a line more above one of them */
	tui_dirty(t);
}

/* Someone offers a file: its line in their conversation says how to
 * answer; shown elsewhere, the status bar says so too. */
static void
on_file_offer(struct tui *t, struct json_object *o)
{
	struct tui_xfer *x = tui_xfer_take(t, o, 1);
	struct tui_conv *c, *cur = tui_conv_current(t);
	char size[32];

	if (x == NULL)
		return;
	tui_xfer_show(t, x);
	if ((c = tui_conv_find(t, x->peer)) != NULL && c != cur) {
		c->activity = 1;
		tui_alert(t, c);
		tui_xfer_size(size, sizeof(size), x->size);
		tui_notice(t, 0, "%s offers %s (%s): /accept %.*s or /reject %.*s", x->peer,
		    x->name, size, TUI_XFER_SHORT_ID, x->id, TUI_XFER_SHORT_ID, x->id);
	}
}

static void
on_transfer(struct tui *t, struct json_object *o)
{
	const char *id = http_json_str(o, "id");
	int known = id != NULL && tui_xfer_find(t, id) != NULL;
	struct tui_xfer *x = tui_xfer_take(t, o, 0);

	if (x == NULL)
		return;
	/* This terminal's /sendfile: the conversation with its line. */
	if (!known && !x->incoming && event_origin_get(engine_events(t->e))->owner == t) {
		struct tui_conv *c = tui_conv_get(t, x->peer);
		for (size_t i = 0; c != NULL && i < t->nconvs; i++)
			if (t->convs[i] == c && i != t->cur)
				tui_conv_select(t, i);
	}
	tui_xfer_show(t, x);
}

/* The answer to /transfers: one line each; asked by the client at start,
 * only the model. */
static void
on_transfers(struct tui *t, struct json_object *o)
{
	struct json_object *list;
	size_t n;

	if (!json_object_object_get_ex(o, "transfers", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	n = json_object_array_length(list);
	if (tui_label_user(o))
		tui_line(t, TUI_MSG_SYSTEM, n == 0 ? "no file transfers" : "file transfers:");
	for (size_t i = 0; i < n; i++) {
		struct tui_xfer *x = tui_xfer_take(t, json_object_array_get_idx(list, i), 0);
		char size[32];
		if (x == NULL)
			continue;
		if (!tui_label_user(o)) {
			tui_xfer_show(t, x);
			continue;
		}
		tui_xfer_size(size, sizeof(size), x->size);
		tui_line(t, TUI_MSG_SYSTEM, "  %.*s %s %s %s %s: %s, %d%% of %s%s%s",
		    TUI_XFER_SHORT_ID, x->id, x->incoming ? "\u2190" : "\u2192", x->name,
		    x->incoming ? "from" : "to", x->peer, x->state,
		    tui_xfer_percent(x->bytes, x->size), size, x->error[0] ? ": " : "", x->error);
	}
	tui_dirty(t);
}

static void
on_quit(struct tui *t, struct json_object *o)
{
	(void)o;
	/* /quit, from any front end: what was shown has been seen. */
	tui_conv_mark_all(t);
	tui_close(t);
}

typedef void handler_fn(struct tui *t, struct json_object *o);

static handler_fn *const handlers[EVENT_COUNT] = {
	[EVENT_LOGIN_RESULT] = on_login,
	[EVENT_REGISTER_RESULT] = on_login,
	[EVENT_TRACKER] = on_tracker,
	[EVENT_PEER_LIST] = on_peer_list,
	[EVENT_CHANNEL] = on_channel,
	[EVENT_CHANNEL_LIST] = on_channel_list,
	[EVENT_CONVERSATION_LIST] = on_conversation_list,
	[EVENT_CHAT] = on_message,
	[EVENT_BROADCAST] = on_message,
	[EVENT_DELIVERED] = on_delivered,
	[EVENT_DELIVERY] = on_delivery,
	[EVENT_BACKLOG] = on_backlog,
	[EVENT_HISTORY] = on_history,
	[EVENT_SEARCH] = on_search,
	[EVENT_LINK] = on_link,
	[EVENT_FINGERPRINT] = on_fingerprint,
	[EVENT_HELP] = on_help,
	[EVENT_READ] = on_read,
	[EVENT_PRESENCE] = on_presence,
	[EVENT_TYPING] = on_typing,
	[EVENT_CONTACTS] = on_contacts,
	[EVENT_CONTACT] = on_contact,
	[EVENT_WHOIS] = on_whois,
	[EVENT_SETTINGS] = on_settings,
	[EVENT_SETTING] = on_setting,
	[EVENT_FILE_OFFER] = on_file_offer,
	[EVENT_TRANSFER] = on_transfer,
	[EVENT_TRANSFERS] = on_transfers,
	[EVENT_SYSTEM] = on_system,
	[EVENT_ERROR] = on_error,
	[EVENT_QUIT] = on_quit,
};

void
tui_event(const struct event *ev, void *arg)
{
	struct tui *t = arg;
	struct json_object *obj;

	if (t->closing || (unsigned)ev->type >= EVENT_COUNT || handlers[ev->type] == NULL)
		return;
	if ((obj = event_object(ev)) != NULL)
		handlers[ev->type](t, obj);
}
