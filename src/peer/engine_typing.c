/* engine_typing.c — typing notices: the front ends call "typing CONV" on
 * keystrokes; at most one {"type":"typing"} a conversation goes every
 * ENGINE_TYPING_SEND_MS over the encrypted links that are up (the user
 * of a direct conversation, the members of a channel), none when the
 * typing setting is off. A notice received makes a "typing" event,
 * "active", then "stopped" ENGINE_TYPING_IDLE_MS after the last one, or
 * at once when that user's message arrives. Notices are never stored,
 * never queued and never dial: a peer without a link simply sees none. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "hychat/settings.h"
#include "hychat/util.h"

/* Someone typing in a conversation, as their notices say. */
struct engine_typing {
	char user[HY_NAME_MAX + 1];
	char conv[HY_CHANNEL_MAX + 2];
	uint64_t last_ms; /* received: the last notice; sent: the last sent */
	struct engine_typing *next;
};

static struct engine_typing *
find(struct engine_typing *list, const char *user, const char *conv)
{
	for (struct engine_typing *t = list; t != NULL; t = t->next)
		if (strcmp(t->user, user) == 0 && strcmp(t->conv, conv) == 0)
			return t;
	return NULL;
}

static size_t
count(const struct engine_typing *list)
{
	size_t n = 0;

	for (; list != NULL; list = list->next)
		n++;
	return n;
}

static void
emit(struct engine *e, const char *user, const char *conv, const char *state)
{
	struct json_object *ev = event_new(EVENT_TYPING);

	event_add_str(ev, "user", user);
	event_add_str(ev, "conversation", conv);
	event_add_str(ev, "state", state);
	event_emit(&e->bus, ev);
}

static void
send_to(struct engine *e, const char *user, const char *json, size_t len)
{
	/* Encrypted links only: the original protocol knows no typing. */
	if (strcmp(user, e->username) != 0 && !engine_contact_blocked(e, user) &&
	    p2p_net_link_state(e->net, user) == 1)
		p2p_net_send(e->net, user, json, len);
}

int
engine_typing(struct engine *e, const char *conversation)
{
	struct engine_channel *c = NULL;
	struct engine_typing *t;
	struct json_object *m;
	const char *json;
	uint64_t now = hy_now_ms();
	size_t len;

	if (conversation[0] == '#') {
		if ((c = engine_channel_find(e, conversation + 1)) == NULL) {
			event_error(&e->bus, "typing: not in %.65s", conversation);
			return -1;
		}
	} else if (!hy_name_valid(conversation, strlen(conversation))) {
		event_error(&e->bus, "typing: invalid conversation \"%.64s\"", conversation);
		return -1;
	}
	if (!settings_get_int(e->settings, SETTING_TYPING) || e->net == NULL)
		return 0;
	if ((t = find(e->typing_sent, "", conversation)) == NULL) {
		if (count(e->typing_sent) >= ENGINE_TYPING_MAX)
			return 0;
		t = xcalloc(1, sizeof(*t));
		snprintf(t->conv, sizeof(t->conv), "%s", conversation);
		t->next = e->typing_sent;
		e->typing_sent = t;
	} else if (t->last_ms != 0 && now - t->last_ms < ENGINE_TYPING_SEND_MS) {
		return 0;
	}
	t->last_ms = now;
	m = json_object_new_object();
	event_add_str(m, "type", "typing");
	if (c != NULL)
		event_add_str(m, "channel", c->name);
	json = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &len);
	if (c == NULL)
		send_to(e, conversation, json, len);
	else
		for (size_t i = 0; i < c->nmembers; i++)
			send_to(e, c->members[i], json, len);
	json_object_put(m);
	return 0;
}

static void
on_tick(uv_timer_t *timer)
{
	struct engine *e = timer->data;
	struct engine_typing **pp = &e->typing, *t;
	uint64_t now = hy_now_ms();

	while ((t = *pp) != NULL) {
		if (now - t->last_ms < ENGINE_TYPING_IDLE_MS) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		emit(e, t->user, t->conv, "stopped");
		free(t);
	}
	if (e->typing == NULL)
		uv_timer_stop(timer);
}

void
engine_typing_recv(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct engine_channel *c;
	struct engine_typing *t;
	struct json_object *v;

	if (!encrypted || e->stopping)
		return;
	if (json_object_object_get_ex(m, "channel", &v)) {
		const char *name = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) ||
		    (c = engine_channel_find(e, name[0] == '#' ? name + 1 : name)) == NULL ||
		    !engine_is_member(c, user))
			return;
		snprintf(conv, sizeof(conv), "#%s", c->name);
	} else {
		snprintf(conv, sizeof(conv), "%s", user);
	}
	if ((t = find(e->typing, user, conv)) != NULL) {
		t->last_ms = hy_now_ms();
		return;
	}
	if (count(e->typing) >= ENGINE_TYPING_MAX)
		return;
	t = xcalloc(1, sizeof(*t));
	snprintf(t->user, sizeof(t->user), "%s", user);
	snprintf(t->conv, sizeof(t->conv), "%s", conv);
	t->last_ms = hy_now_ms();
	t->next = e->typing;
	e->typing = t;
	emit(e, user, conv, "active");
	if (!uv_is_active((uv_handle_t *)&e->typing_timer))
		uv_timer_start(
		    &e->typing_timer, on_tick, ENGINE_TYPING_TICK_MS, ENGINE_TYPING_TICK_MS);
}

void
engine_typing_message(struct engine *e, const char *user, struct json_object *m)
{
	struct json_object *type, *channel;
	char conv[HY_CHANNEL_MAX + 2];
	struct engine_typing **pp, *t;

	if (e->typing == NULL || !json_object_object_get_ex(m, "type", &type))
		return;
	if (strcmp(json_object_get_string(type), "chat") == 0) {
		snprintf(conv, sizeof(conv), "%s", user);
	} else if (strcmp(json_object_get_string(type), "broadcast") == 0 &&
	    json_object_object_get_ex(m, "channel", &channel) &&
	    json_object_is_type(channel, json_type_string)) {
		const char *name = json_object_get_string(channel);
		snprintf(conv, sizeof(conv), "#%.64s", name[0] == '#' ? name + 1 : name);
	} else {
		return;
	}
	for (pp = &e->typing; (t = *pp) != NULL; pp = &t->next) {
		if (strcmp(t->user, user) == 0 && strcmp(t->conv, conv) == 0) {
			*pp = t->next;
			emit(e, user, conv, "stopped");
			free(t);
			return;
		}
	}
}

void
engine_typing_sent(struct engine *e, const char *conv)
{
	struct engine_typing *t = find(e->typing_sent, "", conv);

	if (t != NULL)
		t->last_ms = 0;
}

void
engine_typing_free(struct engine *e)
{
	struct engine_typing *lists[] = { e->typing, e->typing_sent };

	for (size_t i = 0; i < HY_ARRAY_LEN(lists); i++) {
		while (lists[i] != NULL) {
			struct engine_typing *t = lists[i];
			lists[i] = t->next;
			free(t);
		}
	}
	e->typing = e->typing_sent = NULL;
}
