/* webpolicy.h — who may talk to the web bridge: pure checks of the Host,
 * Origin and Cookie headers a browser sends, and of the listening
 * address, apart from any socket so that they can be tested alone.
 *
 * Any page the user visits can make the browser open a WebSocket to
 * 127.0.0.1, and a name the attacker controls can be made to resolve to
 * 127.0.0.1 (DNS rebinding). So a Host must be "localhost", a loopback
 * address, or the address the bridge listens on (any IP literal when it
 * listens on every address), with the bridge's port; never another name.
 * An Origin must be "http://" and the very Host of its request.
 *
 * A local process is not a browser: it can send any Host and any Origin.
 * What keeps it out is the session cookie, which only the holder of the
 * one-time token the peer printed at start can obtain (webbridge.h); the
 * token and the cookie are checked here too, in constant time.
 */
#ifndef HYCHAT_WEBPOLICY_H
#define HYCHAT_WEBPOLICY_H

#include <stddef.h>
#include <stdint.h>

#define WEBPOLICY_ADDR_MAX 64
#define WEBPOLICY_HOST_MAX 256
#define WEBPOLICY_TOKEN_MAX 128 /* longest token or session value compared */
#define WEBPOLICY_TOKEN_PARAM "token"
#define WEBPOLICY_UPLOAD_NAME_MAX 200 /* bytes of a file's name a page uploads */
#define WEBPOLICY_UPLOAD_NAME_DEFAULT "file" /* for a name with nothing left */

struct webpolicy {
	char addr[WEBPOLICY_ADDR_MAX]; /* as listened on, without brackets */
	int port;
	int wildcard; /* 0.0.0.0 or :: */
};

/* Returns 0, or -1 if addr is not an IP literal. */
int webpolicy_init(struct webpolicy *p, const char *addr, int port);
/* 1 if addr is "localhost" or a loopback literal (127/8, ::1). */
int webpolicy_is_loopback(const char *addr);
/* 1 if a Host header value ("127.0.0.1:19101", "[::1]:19101") names
 * this bridge. */
int webpolicy_host_ok(const struct webpolicy *p, const char *host, size_t len);
/* 1 if an Origin header value is "http://" and the request's own Host
 * (same address, same port), and that Host names this bridge. */
int webpolicy_origin_ok(
    const struct webpolicy *p, const char *origin, size_t olen, const char *host, size_t hlen);
/* 1 if a Cookie header value holds cookie name with exactly the value
 * session (NUL-terminated); never for an empty session. */
int webpolicy_session_ok(const char *header, size_t len, const char *name, const char *session);
/* 1 if a query string ("token=HEX", '&'-separated, percent-encoded) holds
 * "token" equal to token (NUL-terminated); never for an empty token (one
 * that was spent). */
int webpolicy_token_ok(const char *query, size_t len, const char *token);
/* A page's upload (webbridge.h): the name the browser gave the file made
 * a plain file name, whatever its bytes: "/", "\\", control characters and
 * invalid UTF-8 become "_", leading dots and blanks and trailing blanks go, cut to
 * WEBPOLICY_UPLOAD_NAME_MAX bytes on a character's boundary, and
 * WEBPOLICY_UPLOAD_NAME_DEFAULT if nothing is left. out holds at least
 * WEBPOLICY_UPLOAD_NAME_MAX + 1 bytes. */
void webpolicy_upload_name(const char *in, size_t len, char *out);
/* The size announced for an upload: decimal digits only, at most max.
 * Returns 0 with *out, or -1. */
int webpolicy_upload_size(const char *s, uint64_t max, uint64_t *out);

#endif
