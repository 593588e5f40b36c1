/* engine_nat.c — the engine's side of NAT traversal: what the tracker
 * says of addresses (ours as it sees it, each peer's), the rendezvous
 * the network asks for, and the hints polled from the tracker while we
 * are behind a NAT (GET /hints every ENGINE_HINTS_POLL_MS), each handed
 * to the network: meet a peer at a relay, or dial it. */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "hychat/log.h"
#include "hychat/util.h"

static const char *
http_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int
int_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	int64_t n = json_object_get_int64(v);
	return n >= 1 && n <= 65535 ? (int)n : 0;
}

static int
bool_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o != NULL && json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

void
engine_nat_learn_peer(struct engine *e, struct json_object *peer)
{
	const char *user = http_json_str(peer, "username"),
	           *ip = http_json_str(peer, "observed_ip");
	const char *ip6 = http_json_str(peer, "ip6");

	if (e->net == NULL || user == NULL)
		return;
	if (ip != NULL)
		p2p_net_set_observed(e->net, user, ip);
	p2p_net_set_ip6(e->net, user, ip6 != NULL ? ip6 : "");
}

/* Hints. */

static void
take_hint(struct engine *e, struct json_object *h)
{
	const char *type = http_json_str(h, "type"), *peer = http_json_str(h, "peer");
	const char *relay = http_json_str(h, "relay"), *token = http_json_str(h, "token");

	if (type == NULL || peer == NULL || !hy_name_valid(peer, strlen(peer)) || e->net == NULL)
		return;
	if (strcmp(type, "relay") == 0 && relay != NULL && token != NULL) {
		log_info("%s meets us at relay %s", peer, relay);
		if (p2p_net_relay(e->net, peer, relay, token, 0) < 0)
			log_warn("relay hint from %s: cannot use %s", peer, relay);
	} else if (strcmp(type, "dial") == 0) {
		p2p_net_dial_back(e->net, peer);
	} else if (strcmp(type, "punch") == 0 && http_json_str(h, "ip") != NULL) {
		p2p_net_punch(e->net, peer, http_json_str(h, "ip"), int_field(h, "port"),
		    bool_field(h, "fresh") ? P2P_PUNCH_ANSWER : P2P_PUNCH_NAMES);
	}
}

static void
hints_got(struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct json_object *a;

	(void)err;
	(void)arg;
	e->hints_busy = 0;
	if (status != 200 || !json_object_object_get_ex(body, "hints", &a) ||
	    !json_object_is_type(a, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(a); i++)
		take_hint(e, json_object_array_get_idx(a, i));
}

static void
hints_poll(struct engine *e)
{
	if (e->ts != ENGINE_ONLINE || e->hints_busy || e->stopping)
		return;
	e->hints_busy = 1;
	engine_tracker_call(e, TRACKER_GET, "/hints", NULL, hints_got, NULL);
}

static void
on_hints(uv_timer_t *t)
{
	hints_poll(t->data);
}

void
engine_nat_registered(struct engine *e, struct json_object *answer, const char *local_ip)
{
	const char *observed = http_json_str(answer, "observed_ip");

	if (e->net == NULL || e->stopping)
		return;
	p2p_net_set_self(e->net, local_ip, observed != NULL ? observed : "");
	/* Behind a NAT nobody can dial us: others reach us through hints. */
	if (observed != NULL && strcmp(observed, local_ip) != 0) {
		if (!uv_is_active((uv_handle_t *)&e->hints))
			uv_timer_start(&e->hints, on_hints, 0, ENGINE_HINTS_POLL_MS);
	} else {
		uv_timer_stop(&e->hints);
	}
}

/* Rendezvous. */

static void
rendezvous_got(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	const char *relay = http_json_str(body, "relay"), *token = http_json_str(body, "token");
	const char *via = http_json_str(body, "via");

	if (e->net == NULL)
		return;
	if (status != 200 || via == NULL) {
		log_warn("rendezvous with %s: %s", user, engine_tracker_message(body, err, status));
		/* The way asked cannot be had (no relay, no address of ours
		 * yet, names it cannot carry): the other way next. The peer
		 * gone offline meanwhile (404), the budget spent (429), no
		 * answer: the same way, later. Taking the other way then
		 * would have a peer we could have dialed back punch to us. */
		p2p_net_rendezvous_failed(
		    e->net, user, status == 400 || status == 409 || status == 503);
		return;
	}
	log_info("rendezvous with %s: %s%s%s", user, via, relay != NULL ? " at " : "",
	    relay != NULL ? relay : "");
	if (strcmp(via, "punch") == 0) {
		const char *ip = http_json_str(body, "ip");
		if (ip == NULL ||
		    p2p_net_punch(e->net, user, ip, int_field(body, "port"),
		        bool_field(body, "fresh") ? P2P_PUNCH_CALLER : P2P_PUNCH_NAMES) < 0)
			p2p_net_rendezvous_failed(e->net, user, 1);
		/* A peer that wants us too has likely asked already: its open
		 * is answered now rather than at the next poll. */
		else if (uv_is_active((uv_handle_t *)&e->hints))
			hints_poll(e);
		return;
	}
	if (strcmp(via, "relay") != 0)
		return; /* "dial": the peer dials us */
	if (relay == NULL || token == NULL || p2p_net_relay(e->net, user, relay, token, 1) < 0)
		p2p_net_rendezvous_failed(e->net, user, 1);
}

void
engine_nat_rendezvous(void *arg, const char *user, const char *via, int port)
{
	struct engine *e = arg;
	struct json_object *body = json_object_new_object();

	event_add_str(body, "peer", user);
	event_add_str(body, "via", via);
	if (port > 0)
		json_object_object_add(body, "port", json_object_new_int(port));
	engine_tracker_call(e, TRACKER_POST, "/rendezvous", body, rendezvous_got, user);
}

void
engine_nat_add_path(struct engine *e, struct json_object *o, const char *user)
{
	const char *via, *path = e->net != NULL ? p2p_net_link_path(e->net, user, &via) : NULL;

	if (path == NULL)
		return;
	event_add_str(o, "path", path);
	if (via[0] != '\0')
		event_add_str(o, "via", via);
}
