/* engine_contacts.c — /contacts, /add, /remove, /block, /unblock. The
 * list lives in contacts.c; here are the commands, their events, and what
 * blocking does: a blocked user's messages, typing notices and presence
 * are dropped as they arrive (engine_msg.c, engine_presence.c), before
 * anything is stored or shown. Their messages are still acknowledged, as
 * blocking clients do: the sender's outbox empties and they learn
 * nothing. */
#include <string.h>

#include "engine_internal.h"
#include "hychat/contacts.h"
#include "hychat/util.h"

int
engine_contact_blocked(const struct engine *e, const char *user)
{
	return contacts_is_blocked(e->contacts, user);
}

int
engine_contact_is(const struct engine *e, const char *user)
{
	const struct contact *k = contacts_get(e->contacts, user);

	return k != NULL && k->contact && !k->blocked;
}

static void
add_fields(struct engine *e, struct json_object *o, const char *user)
{
	const struct contact *k = contacts_get(e->contacts, user);
	const char *message = "";

	event_add_str(o, "user", user);
	event_add_bool(o, "contact", k != NULL && k->contact);
	event_add_bool(o, "blocked", k != NULL && k->blocked);
	event_add_str(o, "state", engine_presence_state(e, user, &message));
	event_add_str(o, "message", message);
}

int
engine_contacts(struct engine *e)
{
	struct json_object *ev = event_new(EVENT_CONTACTS), *list = json_object_new_array();
	const struct contact *all;
	size_t n;

	all = contacts_list(e->contacts, &n);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		add_fields(e, o, all[i].user);
		json_object_array_add(list, o);
	}
	json_object_object_add(ev, "contacts", list);
	event_emit(&e->bus, ev);
	return 0;
}

/* The four changes, one table: the command's name, the flag and its new
 * value, and what is said when it was so already. */
static const struct {
	const char *name;
	enum contacts_flag flag;
	int on;
	const char *already;
} changes[] = {
	[ENGINE_CONTACT_ADD] = { "add", CONTACTS_CONTACT, 1, "is a contact already" },
	[ENGINE_CONTACT_REMOVE] = { "remove", CONTACTS_CONTACT, 0, "is not a contact" },
	[ENGINE_CONTACT_BLOCK] = { "block", CONTACTS_BLOCKED, 1, "is blocked already" },
	[ENGINE_CONTACT_UNBLOCK] = { "unblock", CONTACTS_BLOCKED, 0, "is not blocked" },
};

int
engine_contact(struct engine *e, enum engine_contact_op op, const char *user)
{
	struct json_object *ev;
	int rc;

	if ((unsigned)op >= HY_ARRAY_LEN(changes))
		return -1;
	if (!hy_name_valid(user, strlen(user))) {
		event_error(&e->bus, "%s: invalid username \"%.64s\"", changes[op].name, user);
		return -1;
	}
	if (strcmp(user, e->username) == 0) {
		event_error(&e->bus, "%s: %s is you", changes[op].name, user);
		return -1;
	}
	if (op == ENGINE_CONTACT_BLOCK)
		engine_presence_forget(e, user); /* shown offline, then never again */
	rc = contacts_set(e->contacts, user, changes[op].flag, changes[op].on);
	if (rc < 0) {
		event_error(&e->bus, "%s: cannot store it (%d users at most)", changes[op].name,
		    CONTACTS_MAX);
		return -1;
	}
	if (rc == 0) {
		event_system(&e->bus, "%s: %s %s", changes[op].name, user, changes[op].already);
		return 0;
	}
	ev = event_new(EVENT_CONTACT);
	add_fields(e, ev, user);
	event_emit(&e->bus, ev);
	/* A new contact or one unblocked: where are they now? */
	if ((op == ENGINE_CONTACT_ADD || op == ENGINE_CONTACT_UNBLOCK) && e->ts == ENGINE_ONLINE &&
	    !engine_contact_blocked(e, user))
		engine_lookup(e, user);
	return 0;
}
