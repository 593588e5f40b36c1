/* webbridge.h — the browser front end's server: the files of webui/ and
 * one WebSocket on one port, served by libwebsockets on the peer's own
 * libuv loop (LWS_SERVER_OPTION_LIBUV with a foreign loop).
 *
 * The session: at start the bridge makes a one-time random token and
 * prints a URL that holds it (the log, and the file WEBBRIDGE_URL_FILE of
 * mode 0600 in the data directory). Opening that URL exchanges the token
 * for a cookie (HttpOnly, SameSite=Strict, a random value of this run)
 * and spends the token. The page and /ws need that cookie: a request
 * without it, from any local process, gets a 403 that says where the URL
 * is, and no chat state.
 *
 * The same page and WebSocket are also served on the Unix socket
 * WEBBRIDGE_SOCKET_FILE of mode 0600 in the data directory, for the
 * user's own tools: there the file's mode is the authentication, so no
 * Host, Origin, cookie or secret is asked, and a WebSocket is greeted at
 * once.
 *
 * The page is index.html with the start configuration (username, ports,
 * a per-run secret) injected; it is served at "/" and at the original's
 * "/www/chat.html". A WebSocket speaks the command language in (one
 * message, one command line) and gets every engine event out (one
 * message, one JSON object), once it has presented the secret. Upgrades
 * whose Origin is not their own Host's are refused, and so is any request
 * whose Host is not the bridge's (DNS rebinding). The wire protocol is in
 * hychat(1), "Web bridge".
 */
#ifndef HYCHAT_WEBBRIDGE_H
#define HYCHAT_WEBBRIDGE_H

#include <uv.h>

#include "hychat/engine.h"

#define WEBBRIDGE_PORT_OFFSET 10000 /* default port: the peer port plus this */
#define WEBBRIDGE_DEFAULT_ADDR "127.0.0.1"
#define WEBBRIDGE_SECRET_BYTES 32 /* per run, for the WebSocket; hex on the wire */
#define WEBBRIDGE_SESSION_BYTES 32 /* the session cookie's value, hex */
#define WEBBRIDGE_TOKEN_BYTES 32 /* the one-time token of the login URL, hex */
#define WEBBRIDGE_URL_FILE "web-url" /* in the data directory: the login URL */
#define WEBBRIDGE_LOGIN_PATH "/login" /* also "/": where the token is exchanged */
#define WEBBRIDGE_SOCKET_FILE "web.sock" /* in the data directory: for local tools */
#define WEBBRIDGE_OUT_MAX (32 * 1024 * 1024) /* queued for one socket; more cuts it */
#define WEBBRIDGE_MAX_SOCKETS 64 /* open WebSockets at once */
#define WEBBRIDGE_AUTH_TIMEOUT_S 5 /* to present the secret, or be closed */
#define WEBBRIDGE_ASSET_MAX (4 * 1024 * 1024) /* bytes of one file of webui/ */
#define WEBBRIDGE_MAX_ASSETS 64
#define WEBBRIDGE_QUIT_FLUSH_MS 150 /* after "quit", for the tabs to hear it */
#define WEBBRIDGE_WS_PATH "/ws"
/* Files sent from the page: spooled in DATA_DIR/WEBBRIDGE_SPOOL_DIR, a
 * directory of mode 0700 per file, at most WEBBRIDGE_UPLOAD_MSG_MAX bytes
 * a binary message, the socket left unread while WEBBRIDGE_UPLOAD_BUFFER
 * bytes wait for the disk. */
#define WEBBRIDGE_SPOOL_DIR "uploads"
#define WEBBRIDGE_UPLOAD_MSG_MAX (256 * 1024)
#define WEBBRIDGE_UPLOAD_BUFFER (1024 * 1024)

struct webbridge_config {
	const char *addr; /* NULL: WEBBRIDGE_DEFAULT_ADDR */
	int port; /* 0: the peer port + WEBBRIDGE_PORT_OFFSET */
	int peer_port;
	const char *root; /* the webui/ directory; NULL: webbridge_default_root() */
};

struct webbridge;

/* Loads the files of the web root, binds the port and subscribes to e's
 * events; call before engine_start(). Returns NULL with *cause
 * (allocated) on a fatal start-up error. */
struct webbridge *webbridge_new(
    uv_loop_t *loop, struct engine *e, const struct webbridge_config *cfg, char **cause);
/* The page's address, e.g. "http://127.0.0.1:19101/". */
const char *webbridge_url(const struct webbridge *b);
/* The address to open once, with the one-time token: the one printed at
 * start while unused, else a new token (the file keeps the first). */
const char *webbridge_login_url(struct webbridge *b);
/* The file that holds the login URL printed at start. */
const char *webbridge_url_file(const struct webbridge *b);
/* The Unix socket's path, or NULL if there is none (a path too long). */
const char *webbridge_socket_path(const struct webbridge *b);
/* The installed webui/ directory if it holds index.html, else the one in
 * the source tree this binary was built from. */
const char *webbridge_default_root(void);
/* 1 if addr ("127.0.0.1", "::1", "localhost") only reaches this host. */
int webbridge_addr_is_loopback(const char *addr);
/* Finishes libwebsockets' teardown and frees b; after the loop has ended
 * (the bridge starts closing on "quit"). */
void webbridge_free(struct webbridge *b);

#endif
