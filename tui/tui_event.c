/* tui_event.c — the engine's events into the client's model: a table of
 * one handler per event type. Handlers change the model and ask for a
 * redraw; they never draw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_internal.h"

const char *
tui_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int
tui_label_is(struct json_object *o, const char *label)
{
	const char *l = tui_json_str(o, "label");

	return l != NULL && strcmp(l, label) == 0;
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
	const char *s = tui_json_str(o, key);

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
	if (t->mode == TUI_NORMAL && t->cfg.need_login && strcmp(t->tracker, "online") != 0)
		t->mode = reg ? TUI_REGISTER : TUI_LOGIN;
	tui_dirty(t);
}

static void
on_tracker(struct tui *t, struct json_object *o)
{
	const char *state = str_or(o, "state", "offline"), *msg = tui_json_str(o, "message");
	struct json_object *v;
	int was_online = strcmp(t->tracker, "online") == 0;

	snprintf(t->tracker, sizeof(t->tracker), "%s", state);
	t->tracker_tls = json_object_object_get_ex(o, "tls", &v) && json_object_get_boolean(v);
	t->tracker_loopback =
	    json_object_object_get_ex(o, "loopback", &v) && json_object_get_boolean(v);
	if (msg != NULL && strcmp(state, "online") != 0)
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
		    : tui_json_str(p, "username");
		if (u == NULL || strlen(u) > ENGINE_NAME_MAX)
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
	const char *path = tui_json_str(o, "path"), *via = tui_json_str(o, "via");

	snprintf(p->path, sizeof(p->path), "%s%s%s", path != NULL ? path : "",
	    path != NULL && via != NULL ? " via " : "", path != NULL && via != NULL ? via : "");
}

static void
on_peer_list(struct tui *t, struct json_object *o)
{
	const char *chan = tui_json_str(o, "channel");
	struct json_object *peers, *v;
	char conv[ENGINE_CHANNEL_MAX + 2];
	struct tui_conv *c;

	if (!json_object_object_get_ex(o, "peers", &peers) ||
	    !json_object_is_type(peers, json_type_array))
		return;
	if (chan == NULL)
		for (size_t i = 0; i < t->npeers; i++)
			t->peers[i].online = 0;
	for (size_t i = 0; i < json_object_array_length(peers); i++) {
		struct json_object *p = json_object_array_get_idx(peers, i);
		const char *u = tui_json_str(p, "username");
		struct tui_peer *peer = u != NULL ? tui_peer_get(t, u) : NULL;
		if (peer == NULL)
			continue;
		peer->online = 1;
		peer->link = strcmp(str_or(p, "link", "down"), "up") == 0;
		peer->encrypted =
		    json_object_object_get_ex(p, "encrypted", &v) && json_object_get_boolean(v);
		set_path(peer, p);
	}
	if (tui_label_is(o, TUI_LABEL_SHOW)) {
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
	const char *conv = tui_json_str(o, "conversation");
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
	if (t->pending_join != NULL && strcmp(t->pending_join, conv) == 0) {
		free(t->pending_join);
		t->pending_join = NULL;
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
	const char *conv = tui_json_str(o, "conversation");
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
		if (c != cur && (!c->channel || m->mention))
			tui_alert(t, c);
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
	const char *u = tui_json_str(o, "user"), *state = str_or(o, "state", "offline");
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

/* A conversation was read, here or in another front end. */
static void
on_read(struct tui *t, struct json_object *o)
{
	const char *conv = tui_json_str(o, "conversation");
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
	if (!tui_label_is(o, TUI_LABEL_FETCH))
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
	const char *u = tui_json_str(o, "peer");
	struct tui_peer *p = u != NULL ? tui_peer_get(t, u) : NULL;
	const char *reason = tui_json_str(o, "reason");

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
	const char *u = tui_json_str(o, "username"), *fp = tui_json_str(o, "fingerprint");
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
		const char *name = tui_json_str(e, "name");
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
	/* /help is answered by the client itself (tui_help): this is another
	 * front end's. */
	(void)t;
	(void)o;
}

static void
on_system(struct tui *t, struct json_object *o)
{
	const char *msg = str_or(o, "message", "");

	/* The engine's hint for headless users; the client has its prompt. */
	if (t->mode != TUI_NORMAL && strncmp(msg, "not logged in", 13) == 0)
		return;
	tui_line(t, TUI_MSG_SYSTEM, "%s", msg);
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

static void
on_quit(struct tui *t, struct json_object *o)
{
	(void)o;
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
	[EVENT_HISTORY] = on_history,
	[EVENT_SEARCH] = on_search,
	[EVENT_LINK] = on_link,
	[EVENT_FINGERPRINT] = on_fingerprint,
	[EVENT_HELP] = on_help,
	[EVENT_READ] = on_read,
	[EVENT_PRESENCE] = on_presence,
	[EVENT_SYSTEM] = on_system,
	[EVENT_ERROR] = on_error,
	[EVENT_QUIT] = on_quit,
};

void
tui_event(const struct event *ev, void *arg)
{
	struct tui *t = arg;

	if (t->closing || (unsigned)ev->type >= EVENT_COUNT || handlers[ev->type] == NULL)
		return;
	handlers[ev->type](t, ev->obj);
}
