/* engine_file.c — file transfer: the commands (sendfile, accept, reject,
 * cancel, transfers), each transfer's state and its "transfer" events.
 * (The interface for the front ends; the wire and the disk follow.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_internal.h"
#include "hychat/log.h"
#include "hychat/util.h"

#define XFER_STATES(X) \
	X(XFER_OFFERED, "offered") \
	X(XFER_ACCEPTED, "accepted") \
	X(XFER_SENDING, "sending") \
	X(XFER_RECEIVING, "receiving") \
	X(XFER_PAUSED, "paused") \
	X(XFER_VERIFYING, "verifying") \
	X(XFER_DONE, "done") \
	X(XFER_FAILED, "failed") \
	X(XFER_REJECTED, "rejected") \
	X(XFER_CANCELLED, "cancelled")

#define XFER_ENUM(e, name) e,
enum xfer_state {
	XFER_STATES(XFER_ENUM) XFER_STATE_COUNT
};
#undef XFER_ENUM

#define XFER_NAME(e, name) name,
static const char *const state_names[] = { XFER_STATES(XFER_NAME) };
#undef XFER_NAME

struct engine_xfer {
	char id[ENGINE_FILE_ID_HEX + 1];
	char peer[HY_NAME_MAX + 1];
	int out; /* we send */
	char *name, *path;
	uint64_t size, bytes;
	char hash[2 * crypto_generichash_BYTES + 1];
	enum xfer_state state;
	char *error;
	uint64_t last_emit_ms, rate_ms, rate_bytes;
	double rate;
	struct engine_xfer *next;
};

static int
terminal(enum xfer_state s)
{
	return s == XFER_DONE || s == XFER_FAILED || s == XFER_REJECTED || s == XFER_CANCELLED;
}

static struct json_object *
xfer_json(struct engine_xfer *x, enum event_type type)
{
	struct json_object *o = type == EVENT_COUNT ? json_object_new_object() : event_new(type);

	event_add_str(o, "id", x->id);
	event_add_str(o, "peer", x->peer);
	event_add_str(o, "name", x->name);
	event_add_str(o, "direction", x->out ? "out" : "in");
	event_add_str(o, "state", state_names[x->state]);
	event_add_int(o, "bytes", (long long)x->bytes);
	event_add_int(o, "size", (long long)x->size);
	event_add_int(o, "rate", (long long)x->rate);
	if (x->hash[0] != '\0')
		event_add_str(o, "hash", x->hash);
	if (x->path != NULL)
		event_add_str(o, "path", x->path);
	if (x->error != NULL)
		event_add_str(o, "error", x->error);
	return o;
}

static void
emit(struct engine *e, struct engine_xfer *x)
{
	x->last_emit_ms = hy_now_ms();
	event_emit(&e->bus, xfer_json(x, EVENT_TRANSFER));
}

static void
set_state(struct engine *e, struct engine_xfer *x, enum xfer_state s, const char *error)
{
	x->state = s;
	free(x->error);
	x->error = error != NULL ? xstrdup(error) : NULL;
	emit(e, x);
}

/* The transfer an id or a unique prefix of one names; an error event if
 * none or several. */
static struct engine_xfer *
find(struct engine *e, const char *id, const char *what)
{
	struct engine_xfer *found = NULL;
	size_t n = strlen(id);
	int count = 0;

	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next) {
		if (strcmp(x->id, id) == 0)
			return x;
		if (n >= ENGINE_FILE_ID_PREFIX && strncmp(x->id, id, n) == 0) {
			found = x;
			count++;
		}
	}
	if (count == 1)
		return found;
	event_error(&e->bus, "%s: %s transfer \"%.40s\": /transfers lists them", what,
	    count > 1 ? "more than one" : "no", id);
	return NULL;
}

int
engine_sendfile(struct engine *e, const char *user, const char *path)
{
	struct engine_xfer *x;
	uint8_t raw[ENGINE_FILE_ID_HEX / 2];
	const char *base = strrchr(path, '/');

	if (!hy_name_valid(user, strlen(user)) || strcmp(user, e->username) == 0) {
		event_error(&e->bus, "sendfile: \"%.40s\" is not another user", user);
		return -1;
	}
	x = xcalloc(1, sizeof(*x));
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(x->id, sizeof(x->id), raw, sizeof(raw));
	snprintf(x->peer, sizeof(x->peer), "%s", user);
	x->out = 1;
	x->path = xstrdup(path);
	x->name = xstrdup(base != NULL ? base + 1 : path);
	x->state = XFER_OFFERED;
	x->next = e->xfers;
	e->xfers = x;
	emit(e, x);
	return 0;
}

int
engine_file_accept(struct engine *e, const char *id, const char *path)
{
	struct engine_xfer *x = find(e, id, "accept");

	if (x == NULL)
		return -1;
	if (x->out || x->state != XFER_OFFERED) {
		event_error(&e->bus, "accept: %s is not an offer waiting for an answer", x->id);
		return -1;
	}
	set_state(e, x, XFER_ACCEPTED, NULL);
	return 0;
}

int
engine_file_reject(struct engine *e, const char *id)
{
	struct engine_xfer *x = find(e, id, "reject");

	if (x == NULL)
		return -1;
	if (x->out || x->state != XFER_OFFERED) {
		event_error(&e->bus, "reject: %s is not an offer waiting for an answer", x->id);
		return -1;
	}
	set_state(e, x, XFER_REJECTED, NULL);
	return 0;
}

int
engine_file_cancel(struct engine *e, const char *id)
{
	struct engine_xfer *x = find(e, id, "cancel");

	if (x == NULL)
		return -1;
	if (terminal(x->state)) {
		event_error(&e->bus, "cancel: %s has ended (%s)", x->id, state_names[x->state]);
		return -1;
	}
	set_state(e, x, XFER_CANCELLED, NULL);
	return 0;
}

int
engine_transfers(struct engine *e)
{
	struct json_object *ev = event_new(EVENT_TRANSFERS), *list = json_object_new_array();

	for (struct engine_xfer *x = e->xfers; x != NULL; x = x->next)
		json_object_array_add(list, xfer_json(x, EVENT_COUNT));
	json_object_object_add(ev, "transfers", list);
	event_emit(&e->bus, ev);
	return 0;
}

void
engine_file_free(struct engine *e)
{
	while (e->xfers != NULL) {
		struct engine_xfer *x = e->xfers;
		e->xfers = x->next;
		free(x->name);
		free(x->path);
		free(x->error);
		free(x);
	}
}
