/* event.h — the peer engine's output: events, one JSON object each, fanned
 * out to every subscribed front end.
 *
 * An event is {"type": NAME, ...}. The engine builds it with event_new(),
 * adds fields with json-c, and hands it to event_emit(), which serializes
 * it once (one line, no newline, UTF-8 kept as is) and calls each
 * subscriber in the order they subscribed. The fields of each type are
 * listed in hychat(1), EVENTS.
 */
#ifndef HYCHAT_EVENT_H
#define HYCHAT_EVENT_H

#include <stddef.h>

#include <json-c/json.h>

#include "hychat/util.h"

/* Every event type and its name on the wire. */
#define EVENT_TYPES(X) \
	X(EVENT_LOGIN_RESULT, "login_result") \
	X(EVENT_REGISTER_RESULT, "register_result") \
	X(EVENT_TRACKER, "tracker") \
	X(EVENT_PEER_LIST, "peer_list") \
	X(EVENT_CHANNEL, "channel") \
	X(EVENT_CHANNEL_LIST, "channel_list") \
	X(EVENT_CONVERSATION_LIST, "conversation_list") \
	X(EVENT_CHAT, "chat") \
	X(EVENT_BROADCAST, "broadcast") \
	X(EVENT_DELIVERED, "delivered") \
	X(EVENT_HISTORY, "history") \
	X(EVENT_SEARCH, "search") \
	X(EVENT_LINK, "link") \
	X(EVENT_FINGERPRINT, "fingerprint") \
	X(EVENT_HELP, "help") \
	X(EVENT_SYSTEM, "system") \
	X(EVENT_ERROR, "error") \
	X(EVENT_QUIT, "quit")

#define EVENT_ENUM(e, name) e,
enum event_type {
	EVENT_TYPES(EVENT_ENUM) EVENT_COUNT
};
#undef EVENT_ENUM

#define EVENT_MAX_SUBSCRIBERS 64

/* What a subscriber receives; valid only during the call. */
struct event {
	enum event_type type;
	struct json_object *obj;
	const char *json; /* obj serialized on one line, NUL-terminated */
	size_t len;
};

typedef void event_fn(const struct event *ev, void *arg);

struct event_subscriber {
	event_fn *fn;
	void *arg;
};

struct event_bus {
	struct event_subscriber subs[EVENT_MAX_SUBSCRIBERS];
	size_t nsubs;
	int depth; /* emits in progress: unsubscribing then only marks */
};

void event_bus_init(struct event_bus *bus);
void event_bus_fini(struct event_bus *bus);
/* Adds a subscriber. Returns 0, or -1 when EVENT_MAX_SUBSCRIBERS are in. */
int event_subscribe(struct event_bus *bus, event_fn *fn, void *arg);
/* Removes it; safe from inside a subscriber. */
void event_unsubscribe(struct event_bus *bus, event_fn *fn, void *arg);

const char *event_type_name(enum event_type type);
/* Finds a type by name; -1 if unknown. */
int event_type_from_name(const char *name);
/* A new {"type": NAME} object to fill and emit. */
struct json_object *event_new(enum event_type type);
/* Sends obj to every subscriber and releases it. Subscribers may emit. */
void event_emit(struct event_bus *bus, struct json_object *obj);
/* {"type":"system","message":...}. */
void event_system(struct event_bus *bus, const char *fmt, ...) HY_PRINTF(2, 3);
/* {"type":"error","message":...}. */
void event_error(struct event_bus *bus, const char *fmt, ...) HY_PRINTF(2, 3);

/* Small builders for the fields of events. */
void event_add_str(struct json_object *o, const char *key, const char *value);
void event_add_int(struct json_object *o, const char *key, long long value);
void event_add_bool(struct json_object *o, const char *key, int value);

#endif
