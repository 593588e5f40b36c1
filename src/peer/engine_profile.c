/* engine_profile.c — profiles: the user's display name and status line
 * (the settings "name" and "status") sent to the tracker with POST
 * /profile at each login and when they change; /whois USER asks the
 * tracker for someone's, with their presence as the engine knows it. The
 * tracker hands profiles out in its lists too, so member lists (peer_list
 * events) carry "display_name" and "status_line" as it gives them. */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "hychat/settings.h"

static void
profile_sent(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	(void)arg;
	if (status != 200)
		event_error(&e->bus, "profile: %s", engine_tracker_message(body, err, status));
}

void
engine_profile_push(struct engine *e, int always)
{
	const char *name = settings_get(e->settings, SETTING_NAME);
	const char *status = settings_get(e->settings, SETTING_STATUS);
	struct json_object *body;

	if (e->ts != ENGINE_ONLINE || (!always && name[0] == '\0' && status[0] == '\0'))
		return;
	body = json_object_new_object();
	event_add_str(body, "display_name", name);
	event_add_str(body, "status_line", status);
	engine_tracker_call(e, TRACKER_POST, "/profile", body, profile_sent, NULL);
}

static void
whois_answer(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct json_object *ev, *v;
	const char *message = "";

	if (status != 200) {
		event_error(&e->bus, "whois %s: %s", user,
		    status == 404 ? "no such user" : engine_tracker_message(body, err, status));
		return;
	}
	engine_learn_peer(e, body);
	ev = event_new(EVENT_WHOIS);
	event_add_str(ev, "user", user);
	event_add_bool(ev, "online",
	    json_object_object_get_ex(body, "online", &v) && json_object_get_boolean(v));
	event_add_str(ev, "display_name",
	    json_object_object_get_ex(body, "display_name", &v) ? json_object_get_string(v) : "");
	event_add_str(ev, "status_line",
	    json_object_object_get_ex(body, "status_line", &v) ? json_object_get_string(v) : "");
	event_add_str(ev, "state", engine_presence_state(e, user, &message));
	event_add_str(ev, "message", message);
	event_add_bool(ev, "contact", engine_contact_is(e, user));
	event_add_bool(ev, "blocked", engine_contact_blocked(e, user));
	event_emit(&e->bus, ev);
}

int
engine_whois(struct engine *e, const char *user)
{
	char path[sizeof("/peers/") + HY_NAME_MAX];

	if (!hy_name_valid(user, strlen(user))) {
		event_error(&e->bus, "whois: invalid username \"%.64s\"", user);
		return -1;
	}
	snprintf(path, sizeof(path), "/peers/%s", user);
	engine_tracker_call(e, TRACKER_GET, path, NULL, whois_answer, user);
	return 0;
}
