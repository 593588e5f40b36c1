/* engine_settings.c — /set: the user's settings listed, changed at run
 * time and saved to hychat.conf, and what a change does at once (the
 * auto-away clock). Other modules read a setting when they need it. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "hychat/log.h"
#include "hychat/settings.h"
#include "hychat/util.h"

void
engine_settings_init(struct engine *e, const struct engine_config *cfg)
{
	e->settings = cfg->settings;
	if (e->settings == NULL) {
		e->settings = settings_new();
		e->own_settings = 1;
	}
	if (cfg->settings_path != NULL)
		e->settings_path = xstrdup(cfg->settings_path);
}

void
engine_settings_free(struct engine *e)
{
	if (e->own_settings)
		settings_free(e->settings);
	e->settings = NULL;
	free(e->settings_path);
	e->settings_path = NULL;
}

const char *
engine_setting(const struct engine *e, int id)
{
	if (id < 0 || id >= SETTING_COUNT)
		return "";
	return settings_get(e->settings, id);
}

static void
add_setting(struct json_object *list, const struct settings *s, enum setting_id id)
{
	struct json_object *o = json_object_new_object();

	event_add_str(o, "name", settings_name(id));
	event_add_str(o, "value", settings_get(s, id));
	event_add_str(o, "help", settings_help(id));
	json_object_array_add(list, o);
}

static void
emit_settings(struct engine *e, int only)
{
	struct json_object *ev = event_new(EVENT_SETTINGS), *list = json_object_new_array();

	for (int i = 0; i < SETTING_COUNT; i++)
		if (only < 0 || only == i)
			add_setting(list, e->settings, i);
	json_object_object_add(ev, "settings", list);
	if (e->settings_path != NULL)
		event_add_str(ev, "file", e->settings_path);
	event_emit(&e->bus, ev);
}

/* What a change does now; the others are read where they are used. */
static void
apply(struct engine *e, enum setting_id id)
{
	if (id == SETTING_AUTO_AWAY)
		e->auto_away_ms = (uint64_t)settings_get_int(e->settings, id) * 60000;
	else if (id == SETTING_NAME || id == SETTING_STATUS)
		engine_profile_push(e, 1);
}

int
engine_set(struct engine *e, const char *name, const char *value)
{
	char err[SETTINGS_ERR_MAX];
	struct json_object *ev;
	char *cause = NULL;
	int id;

	if (name == NULL) {
		emit_settings(e, -1);
		return 0;
	}
	if ((id = settings_find(name)) < 0) {
		event_error(&e->bus, "set: unknown setting \"%.32s\": /set lists them", name);
		return -1;
	}
	if (value == NULL) {
		emit_settings(e, id);
		return 0;
	}
	/* "" is the empty value: a bare word cannot say it. */
	if (strcmp(value, "\"\"") == 0)
		value = "";
	if (settings_set(e->settings, id, value, err) < 0) {
		event_error(&e->bus, "set: %s", err);
		return -1;
	}
	apply(e, id);
	if (e->settings_path != NULL && settings_save(e->settings, e->settings_path, &cause) < 0) {
		event_error(&e->bus, "set: %s changed for this run, not saved: %s", name, cause);
		free(cause);
	}
	ev = event_new(EVENT_SETTING);
	event_add_str(ev, "name", settings_name(id));
	event_add_str(ev, "value", settings_get(e->settings, id));
	event_emit(&e->bus, ev);
	return 0;
}
