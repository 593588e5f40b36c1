/* event.c — the event bus: builds event objects, serializes each once and
 * hands it to every front end that subscribed. */
#include "hychat/event.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_NAME(e, name, reply) name,
static const char *const event_names[EVENT_COUNT] = { EVENT_TYPES(EVENT_NAME) };
#undef EVENT_NAME
#define EVENT_REPLY(e, name, reply) reply,
static const unsigned char event_answers[EVENT_COUNT] = { EVENT_TYPES(EVENT_REPLY) };
#undef EVENT_REPLY

void
event_bus_init(struct event_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	bus->queue_tail = &bus->queue;
}

void
event_bus_fini(struct event_bus *bus)
{
	while (bus->queue != NULL) {
		struct event_pending *p = bus->queue;
		bus->queue = p->next;
		json_object_put(p->obj);
		free(p);
	}
	event_bus_init(bus);
}

int
event_subscribe(struct event_bus *bus, event_fn *fn, void *arg)
{
	if (bus->nsubs == EVENT_MAX_SUBSCRIBERS)
		return -1;
	bus->subs[bus->nsubs].fn = fn;
	bus->subs[bus->nsubs].arg = arg;
	bus->subs[bus->nsubs].flush = NULL;
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

void
event_on_turn_end(struct event_bus *bus, event_fn *fn, void *arg, event_flush_fn *flush)
{
	for (size_t i = 0; i < bus->nsubs; i++)
		if (bus->subs[i].fn == fn && bus->subs[i].arg == arg)
			bus->subs[i].flush = flush;
}

void
event_turn_end(struct event_bus *bus)
{
	/* A flush may unsubscribe or emit (a front end closing): the
	 * entries may move under the walk, so one may wait for the next
	 * turn, never be called twice or after it left. */
	for (size_t i = 0; i < bus->nsubs; i++)
		if (bus->subs[i].fn != NULL && bus->subs[i].flush != NULL)
			bus->subs[i].flush(bus->subs[i].arg);
}

void
event_origin_set(struct event_bus *bus, const struct event_origin *o)
{
	if (o != NULL)
		bus->origin = *o;
	else
		memset(&bus->origin, 0, sizeof(bus->origin));
}

const struct event_origin *
event_origin_get(const struct event_bus *bus)
{
	return &bus->origin;
}

int
event_type_is_answer(enum event_type type)
{
	return (unsigned)type < EVENT_COUNT && event_answers[type];
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

static enum event_type
type_of(struct json_object *obj)
{
	struct json_object *t;
	int type;

	if (json_object_object_get_ex(obj, "type", &t) &&
	    (type = event_type_from_name(json_object_get_string(t))) >= 0)
		return (enum event_type)type;
	return EVENT_SYSTEM;
}

/* Hands one event to every subscriber present when it goes out, or only
 * to the asker (to->owner) when it is an answer. */
static void
deliver(struct event_bus *bus, struct json_object *obj, const struct event_origin *to)
{
	struct event ev;
	size_t n;

	ev.obj = obj;
	ev.type = type_of(obj);
	ev.answer = to->owner != NULL;
	ev.client = to->client;
	if (ev.answer && to->label[0] != '\0')
		event_add_str(obj, "label", to->label);
	ev.json = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &ev.len);
	/* Subscribers added during the delivery wait for the next event. */
	n = bus->nsubs;
	for (size_t i = 0; i < n; i++)
		if (bus->subs[i].fn != NULL && (!ev.answer || bus->subs[i].arg == to->owner))
			bus->subs[i].fn(&ev, bus->subs[i].arg);
	json_object_put(obj);
}

void
event_emit(struct event_bus *bus, struct json_object *obj)
{
	static const struct event_origin everyone;
	const struct event_origin *to = &everyone;
	struct event_pending *p;

	if (bus->origin.owner != NULL && event_type_is_answer(type_of(obj)))
		to = &bus->origin;
	if (bus->depth > 0 && to == &everyone) {
		/* Emitted by a subscriber: it goes out after the one being
		 * delivered, so no one sees an effect before its cause. */
		p = xcalloc(1, sizeof(*p));
		p->obj = obj;
		*bus->queue_tail = p;
		bus->queue_tail = &p->next;
		return;
	}
	bus->depth++;
	deliver(bus, obj, to);
	if (bus->depth == 1)
		while ((p = bus->queue) != NULL) {
			bus->queue = p->next;
			if (bus->queue == NULL)
				bus->queue_tail = &bus->queue;
			deliver(bus, p->obj, &everyone);
			free(p);
		}
	bus->depth--;
	if (bus->depth == 0)
		compact(bus);
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
