/* fuzz_tracker_answer.c — libFuzzer target for what the peer reads of
 * the tracker's answers about other peers, tracker_client_parse_peer():
 * the answer of /peers/USER, and each entry of a /get-list page. The
 * tracker is trusted to say who has which key, but its bytes are network
 * input all the same.
 *
 * The input is parsed as JSON as the tracker client parses a body; the
 * object itself, and every element of its "peers" array, go through the
 * parser.
 *
 * Checks, besides the sanitizers: a peer read as online has an IP and a
 * port of 1-65535; a key is at most TRACKER_PEER_KEY_MAX bytes; the
 * strings it hands back are the object's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/tracker_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(struct json_object *o)
{
	struct tracker_peer p;
	struct json_object *u;

	if (tracker_client_parse_peer(o, &p) < 0)
		return;
	if (!json_object_object_get_ex(o, "username", &u) ||
	    p.username != json_object_get_string(u))
		abort();
	if (p.keylen > TRACKER_PEER_KEY_MAX)
		abort();
	if (p.online && (p.ip == NULL || p.port < 1 || p.port > 65535))
		abort();
	if (!p.online && (p.ip != NULL || p.port != 0))
		abort();
	(void)strlen(p.username);
	if (p.ip != NULL)
		(void)strlen(p.ip);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *peers;

	if (size > (size_t)INT32_MAX)
		return 0;
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (o == NULL)
		return 0;
	check(o);
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "peers", &peers) &&
	    json_object_is_type(peers, json_type_array))
		for (size_t i = 0; i < json_object_array_length(peers); i++)
			check(json_object_array_get_idx(peers, i));
	json_object_put(o);
	return 0;
}
