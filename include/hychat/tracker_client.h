/* tracker_client.h — JSON requests to the tracker over HTTP/1.1, with
 * libcurl's multi-socket interface driven by the libuv loop: nothing here
 * ever blocks.
 *
 * Each request ends in exactly one call of its callback, from the loop,
 * never from inside tracker_client_request(): with the HTTP status and the
 * JSON body (NULL if the body was not JSON), or with status 0 and a
 * transport error (refused, timed out, cancelled). The bearer token set
 * with tracker_client_set_token() goes on every later request.
 *
 * An https:// tracker is verified against the system's CAs, or the CA
 * file given, or by the pinned public key alone, or both; a certificate
 * or a key that fails is a transport error whose text names it, and
 * tracker_client_tls_error() tells it apart. A plain http:// tracker that
 * is not on this machine is refused at tracker_client_new() unless the
 * configuration allows it: the password and the token would cross the
 * network readable by anyone on the path.
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
#define TRACKER_CLIENT_PIN_PREFIX "sha256//"
#define TRACKER_CLIENT_ERROR_MAX 512 /* bytes of a transport error's text */
#define TRACKER_CLIENT_RETRY_AFTER_MAX 3600 /* seconds: a longer Retry-After is cut */

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

struct tracker_client_config {
	/* "https://host:port" or "http://...", no trailing path; or several
	 * trackers sharing one store, comma-separated: each request goes to
	 * the first one, in the order given, that is not in a backoff, and is
	 * sent again to the next when it gets no answer or 502, 503 or 504
	 * (the token stays: it is valid on every tracker of one store). */
	const char *base_url;
	const char *ca_file; /* PEM CAs that vouch for an https tracker; NULL: the system's */
	/* "sha256//BASE64[;sha256//BASE64...]": the tracker's public key must
	 * be one of these. Alone, it is the whole check (a self-signed
	 * certificate is fine); with ca_file, both must hold. */
	const char *pin;
	int allow_insecure; /* plain http:// to a host that is not loopback */
};

/* A client for cfg's tracker. Returns NULL with *cause (allocated) if the
 * URL is not http:// or https://, if it is plain http:// to a host other
 * than loopback (127.0.0.0/8, ::1, localhost) without allow_insecure, if
 * a CA file or a pin is given for plain http://, if the pin is malformed,
 * or if libcurl cannot start. No connection is made here. */
struct tracker_client *tracker_client_new(
    uv_loop_t *loop, const struct tracker_client_config *cfg, char **cause);
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
/* True if the tracker is reached over TLS (an https:// URL). */
int tracker_client_is_tls(const struct tracker_client *tc);
/* True if the tracker's host is this machine (plain http:// is fine there). */
int tracker_client_is_loopback(const struct tracker_client *tc);
/* The text of the last finished request's certificate or pin failure, or
 * NULL if it had none: what an error event should say. */
const char *tracker_client_tls_error(const struct tracker_client *tc);
/* Within a request's callback: the seconds its answer's Retry-After asked
 * for (a 429 or a 503), at most TRACKER_CLIENT_RETRY_AFTER_MAX; 0 if it
 * had none. */
long tracker_client_retry_after(const struct tracker_client *tc);

#endif
