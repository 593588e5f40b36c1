/* engine_presence.c — who is online, away or offline, pushed to the front
 * ends as "presence" events: from the links (a link up: online), the
 * tracker (listed: online; not found: offline), and the "presence"
 * messages linked peers send over their encrypted links when they go away
 * or come back. The user's own away state, set by /away and /back or
 * after --auto-away minutes without input, goes out the same way. No
 * front end polls: the engine asks the tracker on its own refresh timer
 * about the users it believes online without a link. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#include "hychat/http_json.h"
#include "hychat/util.h"

#define PRESENCE_MESSAGE_MAX 256 /* bytes of an away message kept */

#define PRESENCE_STATES(X) \
	X(PRESENCE_OFFLINE, "offline") \
	X(PRESENCE_ONLINE, "online") \
	X(PRESENCE_AWAY, "away")

#define PRESENCE_ENUM(e, name) e,
enum presence_state {
	PRESENCE_STATES(PRESENCE_ENUM)
};
#undef PRESENCE_ENUM
#define PRESENCE_NAME(e, name) name,
static const char *const presence_names[] = { PRESENCE_STATES(PRESENCE_NAME) };
#undef PRESENCE_NAME

struct engine_presence {
	char user[HY_NAME_MAX + 1];
	enum presence_state state;
	char *message; /* away's, or NULL */
	struct engine_presence *next;
};

/* A copy of message cut to PRESENCE_MESSAGE_MAX bytes, on a UTF-8
 * character boundary (a tab may not be sent half a character). */
static char *
copy_message(const char *message)
{
	size_t n = strnlen(message, PRESENCE_MESSAGE_MAX + 1);

	if (n > PRESENCE_MESSAGE_MAX) {
		n = PRESENCE_MESSAGE_MAX;
		while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
			n--;
	}
	return xstrndup(message, n);
}

static struct engine_presence *
find(struct engine *e, const char *user)
{
	for (struct engine_presence *p = e->presence; p != NULL; p = p->next)
		if (strcmp(p->user, user) == 0)
			return p;
	return NULL;
}

/* True if we share a conversation with user: a direct one, or a channel
 * we are in whose member list holds them. */
static int
shares(struct engine *e, const char *user)
{
	if (history_last_seq(e->hist, user) > 0 || engine_contact_is(e, user))
		return 1;
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		if (engine_is_member(c, user))
			return 1;
	return 0;
}

static void
emit(struct engine *e, const char *user, enum presence_state state, const char *message)
{
	struct json_object *ev = event_new(EVENT_PRESENCE);

	event_add_str(ev, "user", user);
	event_add_str(ev, "state", presence_names[state]);
	event_add_str(ev, "message", message != NULL ? message : "");
	event_emit(&e->bus, ev);
}

/* Records user's state and tells the front ends if it changed. */
static void
set(struct engine *e, const char *user, enum presence_state state, const char *message)
{
	struct engine_presence *p = find(e, user);
	char *copy;

	if (engine_contact_blocked(e, user))
		return;
	if (p == NULL) {
		if (state == PRESENCE_OFFLINE || !hy_name_valid(user, strlen(user)))
			return;
		p = xcalloc(1, sizeof(*p));
		snprintf(p->user, sizeof(p->user), "%s", user);
		p->state = PRESENCE_OFFLINE;
		p->next = e->presence;
		e->presence = p;
	}
	copy = state == PRESENCE_AWAY && message != NULL ? copy_message(message) : NULL;
	if (p->state == state &&
	    strcmp(p->message != NULL ? p->message : "", copy != NULL ? copy : "") == 0) {
		free(copy);
		return;
	}
	p->state = state;
	free(p->message);
	p->message = copy;
	emit(e, user, state, p->message);
}

/* Our own state as a message: {"type":"presence","state":...,"message":...}. */
static struct json_object *
own_message(struct engine *e)
{
	struct json_object *m = json_object_new_object();

	event_add_str(m, "type", "presence");
	event_add_str(m, "state", e->away ? "away" : "online");
	event_add_str(m, "message", e->away_message != NULL ? e->away_message : "");
	return m;
}

static void
send_own(struct engine *e, const char *user)
{
	struct json_object *m = own_message(e);
	size_t len;
	const char *json = json_object_to_json_string_length(
	    m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	/* Encrypted links only: the original protocol knows no presence. */
	if (p2p_net_link_state(e->net, user) == 1)
		p2p_net_send(e->net, user, json, len);
	json_object_put(m);
}

void
engine_presence_link(struct engine *e, const char *user, int up)
{
	struct engine_presence *p = find(e, user);

	if (up) {
		if (e->away)
			send_own(e, user);
		if (p == NULL || p->state == PRESENCE_OFFLINE)
			set(e, user, PRESENCE_ONLINE, NULL);
		return;
	}
	/* A link may drop while its peer stays online: ask the tracker. */
	if (p != NULL && p->state != PRESENCE_OFFLINE && e->ts == ENGINE_ONLINE)
		engine_lookup(e, user);
}

void
engine_presence_tracker(struct engine *e, const char *user, int online)
{
	struct engine_presence *p = find(e, user);

	if (strcmp(user, e->username) == 0)
		return;
	if (!online) {
		if (p != NULL && (e->net == NULL || p2p_net_link_state(e->net, user) < 0))
			set(e, user, PRESENCE_OFFLINE, NULL);
		return;
	}
	if ((p == NULL || p->state == PRESENCE_OFFLINE) && shares(e, user))
		set(e, user, PRESENCE_ONLINE, NULL);
}

void
engine_presence_recv(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	const char *state, *message;

	if (!encrypted)
		return;
	state = http_json_str(m, "state");
	message = http_json_str(m, "message");
	if (state == NULL)
		return;
	if (strcmp(state, "away") == 0)
		set(e, user, PRESENCE_AWAY, message);
	else if (strcmp(state, "online") == 0)
		set(e, user, PRESENCE_ONLINE, NULL);
}

/* Our state changed: every encrypted link and every front end hear it. */
static void
announce(struct engine *e)
{
	for (struct engine_presence *p = e->presence; p != NULL; p = p->next)
		if (p->state != PRESENCE_OFFLINE)
			send_own(e, p->user);
	emit(e, e->username, e->away ? PRESENCE_AWAY : PRESENCE_ONLINE, e->away_message);
}

int
engine_away(struct engine *e, const char *message)
{
	e->away = 1;
	e->auto_away = 0;
	free(e->away_message);
	e->away_message = message != NULL ? copy_message(message) : NULL;
	announce(e);
	return 0;
}

int
engine_back(struct engine *e)
{
	if (!e->away) {
		event_system(&e->bus, "back: you were not away");
		return 0;
	}
	e->away = 0;
	e->auto_away = 0;
	free(e->away_message);
	e->away_message = NULL;
	announce(e);
	return 0;
}

void
engine_input(struct engine *e)
{
	e->input_ms = hy_now_ms();
	if (e->away && e->auto_away)
		engine_back(e);
}

void
engine_presence_tick(struct engine *e)
{
	if (e->auto_away_ms > 0 && !e->away && hy_now_ms() - e->input_ms >= e->auto_away_ms) {
		engine_away(e, "auto-away");
		e->auto_away = 1;
	}
	/* Online without a link: the tracker's TTL says when they leave. */
	if (e->ts != ENGINE_ONLINE || e->net == NULL)
		return;
	for (struct engine_presence *p = e->presence; p != NULL; p = p->next)
		if (p->state != PRESENCE_OFFLINE && p2p_net_link_state(e->net, p->user) < 0)
			engine_lookup(e, p->user);
}

const char *
engine_presence_state(const struct engine *e, const char *user, const char **message)
{
	const struct engine_presence *p = find((struct engine *)e, user);

	*message = p != NULL && p->message != NULL ? p->message : "";
	return presence_names[p != NULL ? p->state : PRESENCE_OFFLINE];
}

void
engine_presence_forget(struct engine *e, const char *user)
{
	struct engine_presence **pp, *p;

	for (pp = &e->presence; (p = *pp) != NULL; pp = &p->next) {
		if (strcmp(p->user, user) != 0)
			continue;
		*pp = p->next;
		if (p->state != PRESENCE_OFFLINE)
			emit(e, user, PRESENCE_OFFLINE, NULL);
		free(p->message);
		free(p);
		return;
	}
}

void
engine_presence_free(struct engine *e)
{
	while (e->presence != NULL) {
		struct engine_presence *p = e->presence;
		e->presence = p->next;
		free(p->message);
		free(p);
	}
	free(e->away_message);
	e->away_message = NULL;
}
