/* engine_receipts.c — read receipts: when the user reads a direct
 * conversation (engine_read), the peer tells the other side which of its
 * messages was read last, {"type":"receipt","id":ID}, over an encrypted
 * link that is up; never queued, never dialing, none with the receipts
 * setting off (privacy) or to a blocked user. The other side emits a
 * "receipt" event (user, conversation, id) for its front ends to mark
 * their message seen. */
#include <string.h>

#include "engine_internal.h"
#include "hychat/settings.h"

#define RECEIPT_LOOK_BACK 50 /* messages searched for the newest incoming */

struct newest {
	char id[ENGINE_ID_MAX + 1];
};

static void
take(const struct history_msg *m, void *arg)
{
	struct newest *n = arg;

	/* Oldest first: the last incoming one with an id wins. */
	if (!m->outgoing && m->id != NULL && m->id[0] != '\0' && strlen(m->id) <= ENGINE_ID_MAX)
		snprintf(n->id, sizeof(n->id), "%s", m->id);
}

void
engine_receipt_send(struct engine *e, const char *conv, int64_t upto)
{
	struct newest n = { "" };
	struct json_object *m;
	const char *json;
	size_t len;

	if (conv[0] == '#' || !settings_get_int(e->settings, SETTING_RECEIPTS) || e->net == NULL ||
	    engine_contact_blocked(e, conv) || p2p_net_link_state(e->net, conv) != 1)
		return;
	if (history_last(e->hist, conv, upto + 1, RECEIPT_LOOK_BACK, take, &n) < 0 ||
	    n.id[0] == '\0')
		return;
	m = json_object_new_object();
	event_add_str(m, "type", "receipt");
	event_add_str(m, "id", n.id);
	json = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &len);
	p2p_net_send(e->net, conv, json, len);
	json_object_put(m);
}

void
engine_receipt_recv(struct engine *e, const char *user, int encrypted, struct json_object *m)
{
	struct json_object *v, *ev;
	const char *id;

	if (!encrypted || !json_object_object_get_ex(m, "id", &v) ||
	    !json_object_is_type(v, json_type_string))
		return;
	id = json_object_get_string(v);
	if (id[0] == '\0' || strlen(id) > ENGINE_ID_MAX)
		return;
	ev = event_new(EVENT_RECEIPT);
	event_add_str(ev, "user", user);
	event_add_str(ev, "conversation", user);
	event_add_str(ev, "id", id);
	event_emit(&e->bus, ev);
}
