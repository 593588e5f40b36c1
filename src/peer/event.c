/* event.c — the event bus: builds event objects, serializes each once and
 * hands it to every front end that subscribed. */
#include "hychat/event.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_NAME(e, name) name,
static const char *const event_names[EVENT_COUNT] = { EVENT_TYPES(EVENT_NAME) };
#undef EVENT_NAME

void
event_bus_init(struct event_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

void
event_bus_fini(struct event_bus *bus)
{
	event_bus_init(bus);
}

int
event_subscribe(struct event_bus *bus, event_fn *fn, void *arg)
{
	if (bus->nsubs == EVENT_MAX_SUBSCRIBERS)
		return -1;
	bus->subs[bus->nsubs].fn = fn;
	bus->subs[bus->nsubs].arg = arg;
	bus->nsubs++;
	return 0;
}

/* Drops the entries marked during an emit, keeping the order. */
static void
compact(struct event_bus *bus)
{
	size_t j = 0;

	for (size_t i = 0; i < bus->nsubs; i++)
		if (bus->subs[i].fn != NULL)
			bus->subs[j++] = bus->subs[i];
	bus->nsubs = j;
}

void
event_unsubscribe(struct event_bus *bus, event_fn *fn, void *arg)
{
	for (size_t i = 0; i < bus->nsubs; i++)
		if (bus->subs[i].fn == fn && bus->subs[i].arg == arg)
			bus->subs[i].fn = NULL;
	if (bus->depth == 0)
		compact(bus);
}

const char *
event_type_name(enum event_type type)
{
	return (unsigned)type < EVENT_COUNT ? event_names[type] : "unknown";
}

int
event_type_from_name(const char *name)
{
	for (int i = 0; i < EVENT_COUNT; i++)
		if (strcmp(event_names[i], name) == 0)
			return i;
	return -1;
}

struct json_object *
event_new(enum event_type type)
{
	struct json_object *o = json_object_new_object();

	event_add_str(o, "type", event_type_name(type));
	return o;
}

void
event_emit(struct event_bus *bus, struct json_object *obj)
{
	struct json_object *t;
	struct event ev;
	size_t n;

	ev.obj = obj;
	ev.type = EVENT_SYSTEM;
	if (json_object_object_get_ex(obj, "type", &t)) {
		int type = event_type_from_name(json_object_get_string(t));
		if (type >= 0)
			ev.type = (enum event_type)type;
	}
	ev.json = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &ev.len);
	bus->depth++;
	/* Subscribers added during the emit wait for the next event. */
	n = bus->nsubs;
	for (size_t i = 0; i < n; i++)
		if (bus->subs[i].fn != NULL)
			bus->subs[i].fn(&ev, bus->subs[i].arg);
	bus->depth--;
	if (bus->depth == 0)
		compact(bus);
	json_object_put(obj);
}

static void emit_text(struct event_bus *bus, enum event_type type, const char *fmt, va_list ap)
    HY_PRINTF(3, 0);

static void
emit_text(struct event_bus *bus, enum event_type type, const char *fmt, va_list ap)
{
	struct json_object *o = event_new(type);
	struct buf b;

	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	event_add_str(o, "message", b.data != NULL ? b.data : "");
	buf_fini(&b);
	event_emit(bus, o);
}

void
event_system(struct event_bus *bus, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_text(bus, EVENT_SYSTEM, fmt, ap);
	va_end(ap);
}

void
event_error(struct event_bus *bus, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_text(bus, EVENT_ERROR, fmt, ap);
	va_end(ap);
}

void
event_add_str(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value != NULL ? json_object_new_string(value) : NULL);
}

void
event_add_int(struct json_object *o, const char *key, long long value)
{
	json_object_object_add(o, key, json_object_new_int64(value));
}

void
event_add_bool(struct json_object *o, const char *key, int value)
{
	json_object_object_add(o, key, json_object_new_boolean(value != 0));
}
