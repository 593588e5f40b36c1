/* event.c — the event bus: builds event objects, serializes each once and
 * hands it to every front end that subscribed. */
#include "hychat/event.h"

#include <stdarg.h>
#include <stdio.h>
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
		free(p->json);
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
 * to the asker (to->owner) when it is an answer. ev holds an object, or
 * the text of one (ev->obj NULL, parsed only if a subscriber asks). */
static void
deliver(struct event_bus *bus, struct event *ev, const struct event_origin *to)
{
	size_t n;

	ev->answer = to->owner != NULL;
	ev->client = to->client;
	if (ev->obj != NULL) {
		ev->type = type_of(ev->obj);
		if (ev->answer && to->label[0] != '\0')
			event_add_str(ev->obj, "label", to->label);
		ev->json = json_object_to_json_string_length(
		    ev->obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &ev->len);
	}
	/* Subscribers added during the delivery wait for the next event. */
	n = bus->nsubs;
	for (size_t i = 0; i < n; i++)
		if (bus->subs[i].fn != NULL && (!ev->answer || bus->subs[i].arg == to->owner))
			bus->subs[i].fn(ev, bus->subs[i].arg);
	json_object_put(ev->obj);
}

struct json_object *
event_object(const struct event *ev)
{
	struct event *e = (struct event *)ev; /* deliver()'s, never const */

	if (e->obj == NULL)
		e->obj = json_tokener_parse(e->json);
	return e->obj;
}

/* Delivers ev at once, or queues it when emitted by a subscriber: it goes
 * out after the one being delivered, so no one sees an effect before its
 * cause. text is ev's text to free once delivered (an event_json's), or
 * NULL. */
static void
emit(struct event_bus *bus, struct event *ev, const struct event_origin *to, char *text)
{
	static const struct event_origin everyone;
	struct event_pending *p;

	if (to == NULL)
		to = &everyone;
	if (bus->depth > 0 && to == &everyone) {
		p = xcalloc(1, sizeof(*p));
		p->obj = ev->obj;
		p->type = ev->type;
		p->json = text;
		p->len = ev->len;
		*bus->queue_tail = p;
		bus->queue_tail = &p->next;
		return;
	}
	bus->depth++;
	deliver(bus, ev, to);
	free(text);
	if (bus->depth == 1)
		while ((p = bus->queue) != NULL) {
			struct event q = {
				.type = p->type, .obj = p->obj, .json = p->json, .len = p->len
			};
			bus->queue = p->next;
			if (bus->queue == NULL)
				bus->queue_tail = &bus->queue;
			deliver(bus, &q, &everyone);
			free(p->json);
			free(p);
		}
	bus->depth--;
	if (bus->depth == 0)
		compact(bus);
}

void
event_emit(struct event_bus *bus, struct json_object *obj)
{
	struct event ev = { .obj = obj };

	emit(bus, &ev,
	    bus->origin.owner != NULL && event_type_is_answer(type_of(obj)) ? &bus->origin : NULL,
	    NULL);
}

/* As json-c writes a string: these escaped by name, the other control
 * characters as \u00XX (lowercase hex), every other byte as it is. */
void
event_json_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	buf_append_char(b, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		const char *esc = NULL;
		char u[6];

		switch (c) {
		case '\b': esc = "\\b"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\f': esc = "\\f"; break;
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		default:
			if (c >= 0x20)
				continue;
		}
		buf_append(b, run, (size_t)(s - run));
		if (esc != NULL) {
			buf_append(b, esc, 2);
		} else {
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 0xf];
			buf_append(b, u, sizeof(u));
		}
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run));
	buf_append_char(b, '"');
}

static void
json_key(struct event_json *j, const char *key)
{
	buf_append_str(&j->b, ",\"");
	buf_append_str(&j->b, key);
	buf_append_str(&j->b, "\":");
}

void
event_json_begin(struct event_json *j, enum event_type type)
{
	j->type = type;
	buf_init(&j->b);
	buf_reserve(&j->b, EVENT_JSON_RESERVE);
	buf_append_str(&j->b, "{\"type\":\"");
	buf_append_str(&j->b, event_type_name(type));
	buf_append_char(&j->b, '"');
}

void
event_json_str(struct event_json *j, const char *key, const char *value)
{
	json_key(j, key);
	if (value != NULL)
		event_json_escape(&j->b, value);
	else
		buf_append_str(&j->b, "null");
}

void
event_json_int(struct event_json *j, const char *key, long long value)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", value);

	json_key(j, key);
	buf_append(&j->b, num, (size_t)n);
}

void
event_json_bool(struct event_json *j, const char *key, int value)
{
	json_key(j, key);
	buf_append_str(&j->b, value ? "true" : "false");
}

void
event_json_emit(struct event_bus *bus, struct event_json *j)
{
	struct event ev = { .type = j->type };
	char *text;

	buf_append_char(&j->b, '}');
	if (bus->origin.owner != NULL && event_type_is_answer(j->type)) {
		/* An answer takes the asker's label: the object's way. */
		struct json_object *obj = json_tokener_parse(j->b.data);
		buf_fini(&j->b);
		if (obj != NULL)
			event_emit(bus, obj);
		return;
	}
	text = j->b.data;
	ev.json = text;
	ev.len = j->b.len;
	buf_init(&j->b); /* the text is emit()'s now */
	emit(bus, &ev, NULL, text);
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
