/* tracker_client.h — JSON requests to the tracker over HTTP/1.1, with
 * libcurl's multi-socket interface driven by the libuv loop: nothing here
 * ever blocks.
 *
 * Each request ends in exactly one call of its callback, from the loop,
 * never from inside tracker_client_request(): with the HTTP status and the
 * JSON body (NULL if the body was not JSON), or with status 0 and a
 * transport error (refused, timed out, cancelled). The bearer token set
 * with tracker_client_set_token() goes on every later request.
 */
#ifndef HYCHAT_TRACKER_CLIENT_H
#define HYCHAT_TRACKER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <uv.h>

#define TRACKER_CLIENT_TIMEOUT_MS 10000 /* one request, connect included */
#define TRACKER_CLIENT_CONNECT_TIMEOUT_MS 3000
#define TRACKER_CLIENT_MAX_BODY (4 * 1024 * 1024) /* an answer larger is an error */
#define TRACKER_CLIENT_IP_MAX 64
#define TRACKER_PEER_KEY_MAX 64 /* bytes of a published key */
#define TRACKER_CLIENT_MAX_URLS 16 /* trackers one client fails over between */
#define TRACKER_CLIENT_BACKOFF_MIN_MS 500 /* a failed tracker is skipped this long, */
#define TRACKER_CLIENT_BACKOFF_MAX_MS 30000 /* doubling per failure up to this */

enum tracker_method {
	TRACKER_GET,
	TRACKER_POST
};

/* One peer as the tracker describes it: an entry of /get-list's "peers",
 * or the answer of /peers/USER (which says "online"). Strings are
 * borrowed from the JSON object. */
struct tracker_peer {
	const char *username;
	int online;
	const char *ip; /* and port: set while online */
	int port;
	uint8_t key[TRACKER_PEER_KEY_MAX];
	size_t keylen; /* 0: no key published */
};

/* Reads o into p. Returns 0, or -1 if o is not a well-formed peer: not an
 * object, no username, or online without an IP and a port of 1-65535. An
 * unreadable key counts as none. */
int tracker_client_parse_peer(struct json_object *o, struct tracker_peer *p);

/* status: the HTTP status, or 0 with err set; body: borrowed, may be NULL. */
typedef void tracker_client_fn(int status, struct json_object *body, const char *err, void *arg);

struct tracker_client;

/* A client for base_url ("http://host:port", no trailing path), or for
 * several trackers sharing one store, comma-separated: each request goes
 * to the first one, in the order given, that is not in a backoff, and
 * is sent again to the next when it gets no answer or 502, 503 or 504
 * (the token stays: it is valid on every tracker of one store). Returns
 * NULL with *cause (allocated) if libcurl cannot start. */
struct tracker_client *tracker_client_new(uv_loop_t *loop, const char *base_url, char **cause);
/* Drops what is running without calling its callbacks, closes the loop
 * handles and frees the client once they are closed (the loop must run
 * on). Safe from inside a callback. */
void tracker_client_free(struct tracker_client *tc);
/* NULL to clear. */
void tracker_client_set_token(struct tracker_client *tc, const char *token);
/* Starts method path with body (borrowed, may be NULL) and a timeout in ms
 * (0: TRACKER_CLIENT_TIMEOUT_MS). Returns 0 (done will be called) or -1 if
 * the request could not be started (done will not be called). */
int tracker_client_request(struct tracker_client *tc, enum tracker_method method, const char *path,
    struct json_object *body, long timeout_ms, tracker_client_fn *done, void *arg);
/* The number of requests running. */
unsigned tracker_client_pending(struct tracker_client *tc);
/* The local address of the last connection that reached the tracker ("" if
 * none yet): the address other peers most likely reach us at. */
const char *tracker_client_local_ip(const struct tracker_client *tc);

#endif
