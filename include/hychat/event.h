/* event.h — the peer engine's output: events, one JSON object each, fanned
 * out to every subscribed front end.
 *
 * An event is {"type": NAME, ...}. The engine builds it with event_new(),
 * adds fields with json-c, and hands it to event_emit(), which serializes
 * it once (one line, no newline, UTF-8 kept as is) and calls each
 * subscriber in the order they subscribed. Events go out in the order
 * they were emitted, nested ones included. The fields of each type are
 * listed in hychat(1), EVENTS.
 */
#ifndef HYCHAT_EVENT_H
#define HYCHAT_EVENT_H

#include <stddef.h>

#include <json-c/json.h>

#include "hychat/util.h"

/* Every event type, its name on the wire, and whether it is an answer to
 * a query (1) rather than a change of state (0). An answer emitted while
 * a front end's command runs goes to that front end only, with the
 * command's label; a change of state goes to every front end. */
#define EVENT_TYPES(X) \
	X(EVENT_LOGIN_RESULT, "login_result", 0) \
	X(EVENT_REGISTER_RESULT, "register_result", 0) \
	X(EVENT_TRACKER, "tracker", 0) \
	X(EVENT_PEER_LIST, "peer_list", 1) \
	X(EVENT_CHANNEL, "channel", 0) \
	X(EVENT_CHANNEL_LIST, "channel_list", 1) \
	X(EVENT_CONVERSATION_LIST, "conversation_list", 1) \
	X(EVENT_CHAT, "chat", 0) \
	X(EVENT_BROADCAST, "broadcast", 0) \
	X(EVENT_DELIVERED, "delivered", 0) \
	X(EVENT_DELIVERY, "delivery", 0) \
	X(EVENT_BACKLOG, "backlog", 0) \
	X(EVENT_HISTORY, "history", 1) \
	X(EVENT_SEARCH, "search", 1) \
	X(EVENT_LINK, "link", 0) \
	X(EVENT_FINGERPRINT, "fingerprint", 1) \
	X(EVENT_HELP, "help", 1) \
	X(EVENT_READ, "read", 0) \
	X(EVENT_PRESENCE, "presence", 0) \
	X(EVENT_SETTINGS, "settings", 1) \
	X(EVENT_SETTING, "setting", 0) \
	X(EVENT_TYPING, "typing", 0) \
	X(EVENT_CONTACTS, "contacts", 1) \
	X(EVENT_CONTACT, "contact", 0) \
	X(EVENT_WHOIS, "whois", 1) \
	X(EVENT_RECEIPT, "receipt", 0) \
	X(EVENT_FILE_OFFER, "file_offer", 0) \
	X(EVENT_TRANSFER, "transfer", 0) \
	X(EVENT_TRANSFERS, "transfers", 1) \
	X(EVENT_SYSTEM, "system", 0) \
	X(EVENT_ERROR, "error", 1) \
	X(EVENT_QUIT, "quit", 0)

#define EVENT_ENUM(e, name, reply) e,
enum event_type {
	EVENT_TYPES(EVENT_ENUM) EVENT_COUNT
};
#undef EVENT_ENUM

/* A label: what a front end wrote after "@label=" before a command. */
#define EVENT_LABEL_MAX 64
#define EVENT_LABEL_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-/+="

/* Who asked: the front end (its subscriber argument), the client inside
 * it (a browser tab; NULL for a front end with one), and the label of the
 * command ("" if none). owner NULL: no one, every event is broadcast. */
struct event_origin {
	const void *owner;
	const void *client;
	char label[EVENT_LABEL_MAX + 1];
};

#define EVENT_MAX_SUBSCRIBERS 64
#define EVENT_JSON_RESERVE 512 /* bytes an event_json starts with: a chat event fits */

/* What a subscriber receives; valid only during the call. */
struct event {
	enum event_type type;
	/* An answer: the client of the subscriber that asked for it (may be
	 * NULL); the subscriber alone receives it. NULL for a broadcast. */
	const void *client;
	int answer;
	/* The object; NULL for an event emitted as text (event_json_emit):
	 * event_object() gives both. */
	struct json_object *obj;
	const char *json; /* the event on one line, NUL-terminated */
	size_t len;
};

typedef void event_fn(const struct event *ev, void *arg);
typedef void event_flush_fn(void *arg);

struct event_subscriber {
	event_fn *fn;
	void *arg;
	event_flush_fn *flush; /* NULL: the subscriber writes when it likes */
};

/* An event emitted while another is being delivered, waiting its turn:
 * an object, or the text of one (event_json_emit). */
struct event_pending {
	struct event_pending *next;
	struct json_object *obj;
	enum event_type type;
	char *json;
	size_t len;
};

struct event_bus {
	struct event_subscriber subs[EVENT_MAX_SUBSCRIBERS];
	size_t nsubs;
	int depth; /* a delivery in progress: unsubscribing then only marks */
	struct event_pending *queue, **queue_tail; /* FIFO of nested emits */
	struct event_origin origin; /* the command running now came from */
};

void event_bus_init(struct event_bus *bus);
void event_bus_fini(struct event_bus *bus);
/* Adds a subscriber. Returns 0, or -1 when EVENT_MAX_SUBSCRIBERS are in. */
int event_subscribe(struct event_bus *bus, event_fn *fn, void *arg);
/* Removes it; safe from inside a subscriber. */
void event_unsubscribe(struct event_bus *bus, event_fn *fn, void *arg);
/* Gives the subscriber (fn, arg) a function that event_turn_end() calls. */
void event_on_turn_end(struct event_bus *bus, event_fn *fn, void *arg, event_flush_fn *flush);
/* The engine's turn of the loop is over and it is about to commit: each
 * subscriber with a flush function writes out what it gathered, so that
 * what is shown does not wait for the disk. */
void event_turn_end(struct event_bus *bus);

/* Who the events emitted from now on answer (NULL: no one). The engine
 * sets it while it runs a front end's command, and while it handles the
 * answer of a round trip that command started; callers save and restore
 * the previous value with event_origin_get(). */
void event_origin_set(struct event_bus *bus, const struct event_origin *o);
const struct event_origin *event_origin_get(const struct event_bus *bus);
/* 1 if type is an answer to a query. */
int event_type_is_answer(enum event_type type);

const char *event_type_name(enum event_type type);
/* Finds a type by name; -1 if unknown. */
int event_type_from_name(const char *name);
/* A new {"type": NAME} object to fill and emit. */
struct json_object *event_new(enum event_type type);
/* Sends obj to every subscriber and releases it. Subscribers may emit:
 * such an event is queued and delivered, in FIFO order, once the one in
 * progress has reached every subscriber, so events arrive in the order
 * they were emitted and an effect never precedes its cause.
 * An answer (see EVENT_TYPES) emitted while a front end's command runs
 * goes to that subscriber alone, with "label" added when the command had
 * one; it is delivered at once, even from inside another delivery, since
 * no one else sees it and the asker may be waiting for it in its call. */
void event_emit(struct event_bus *bus, struct json_object *obj);
/* {"type":"system","message":...}. */
void event_system(struct event_bus *bus, const char *fmt, ...) HY_PRINTF(2, 3);
/* {"type":"error","message":...}. */
void event_error(struct event_bus *bus, const char *fmt, ...) HY_PRINTF(2, 3);

/* The event's object: ev->obj, or for one emitted as text, the text
 * parsed on the first call (kept until the delivery ends). NULL only if
 * out of memory. */
struct json_object *event_object(const struct event *ev);

/* An event written as text, without a json-c tree: for the events every
 * message makes (chat, broadcast, delivery), where the tree's thirty-odd
 * allocations cost more than the rest of the event. Fields go in the order
 * they are added, each key once; strings are escaped as json-c escapes
 * them (JSON_C_TO_STRING_NOSLASHESCAPE), so the line is the same as the
 * object would give. */
struct event_json {
	enum event_type type;
	struct buf b;
};

void event_json_begin(struct event_json *j, enum event_type type);
/* A string field; value NULL writes null. key is written as is. */
void event_json_str(struct event_json *j, const char *key, const char *value);
void event_json_int(struct event_json *j, const char *key, long long value);
void event_json_bool(struct event_json *j, const char *key, int value);
/* Emits it as event_emit() does, and frees the text. */
void event_json_emit(struct event_bus *bus, struct event_json *j);
/* Appends s as a JSON string, quotes included, escaped as above. */
void event_json_escape(struct buf *b, const char *s);

/* Small builders for the fields of events. */
void event_add_str(struct json_object *o, const char *key, const char *value);
void event_add_int(struct json_object *o, const char *key, long long value);
void event_add_bool(struct json_object *o, const char *key, int value);

#endif
