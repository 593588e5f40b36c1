/* webbridge_internal.h — what the web bridge's files share: its state,
 * one connection's state, and the calls between webbridge.c (the
 * libwebsockets context on the loop, the callback, events out),
 * webbridge_http.c (files, the injected page, the token and the session
 * cookie) and
 * webbridge_ws.c (one WebSocket: the secret, commands in, its queue) and
 * webbridge_upload.c (a file the page sends, spooled, then offered). Not
 * part of any interface: the peer uses webbridge.h. */
#ifndef HYCHAT_WEBBRIDGE_INTERNAL_H
#define HYCHAT_WEBBRIDGE_INTERNAL_H

#include <libwebsockets.h>

#include "hychat/engine.h"
#include "hychat/util.h"
#include "hychat/webbridge.h"
#include "hychat/webpolicy.h"

#define WEBBRIDGE_URL_MAX 128
#define WEBBRIDGE_LOGIN_URL_MAX 256
#define WEBBRIDGE_PATH_MAX 4096
#define WEBBRIDGE_SUN_PATH_MAX 108 /* sockaddr_un's sun_path on Linux */
#define WEBBRIDGE_COOKIE_MAX 32
#define WEBBRIDGE_HEADER_MAX 1024 /* one request header we read */
#define WEBBRIDGE_HTTP_CHUNK 16384 /* body bytes written per writable turn */
#define WEBBRIDGE_CONFIG_MARK "@HYCHAT_CONFIG@" /* in index.html, where the config goes */

/* One file of webui/, in memory. */
struct webbridge_asset {
	char *name; /* "app.js": served at "/app.js" */
	const char *mime;
	char *data;
	size_t len;
};

/* A message waiting for a WebSocket, with the headroom lws_write wants. */
struct webbridge_msg {
	struct webbridge_msg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE bytes, then len bytes */
};

/* One connection: lws's per-session data, zeroed by lws. HTTP requests
 * use the http part, WebSockets the ws part. */
struct webbridge_conn {
	struct webbridge *b;
	struct lws *wsi;
	struct {
		char *body; /* owned when body_owned */
		size_t len, off;
		int owned;
	} http;
	struct {
		int open; /* established and in b->conns */
		int authed; /* presented the secret */
		int cut; /* fell too far behind, or broke the rules: close */
		const char *cut_reason;
		struct buf in; /* a message arriving in fragments */
		int in_discard; /* the rest of an over-long message */
		struct webbridge_msg *head, *tail;
		size_t queued;
		char ctx[HY_CHANNEL_MAX + 2]; /* the conversation shown, for "me" */
		struct webbridge_upload *up; /* the file arriving, or NULL */
		struct webbridge_conn *next, *prev;
	} ws;
};

struct webbridge {
	uv_loop_t *loop;
	struct engine *e;
	struct lws_context *ctx; /* NULL once lws has finished closing */
	struct webpolicy policy;
	char url[WEBBRIDGE_URL_MAX];
	char secret[WEBBRIDGE_SECRET_BYTES * 2 + 1];
	char session[WEBBRIDGE_SESSION_BYTES * 2 + 1];
	char token[WEBBRIDGE_TOKEN_BYTES * 2 + 1]; /* "" once spent */
	char login_url[WEBBRIDGE_LOGIN_URL_MAX];
	char url_file[WEBBRIDGE_PATH_MAX]; /* "" if it could not be written */
	struct lws_vhost *unix_vhost; /* the Unix socket's, or NULL */
	char sock_path[WEBBRIDGE_SUN_PATH_MAX]; /* "" without one */
	char cookie_name[WEBBRIDGE_COOKIE_MAX];
	int peer_port, web_port;

	struct webbridge_asset assets[WEBBRIDGE_MAX_ASSETS];
	size_t nassets;
	struct webbridge_asset *page; /* index.html, split at the config mark */
	size_t page_mark;

	char spool[WEBBRIDGE_PATH_MAX]; /* uploads' root, real path; "" if none */
	int sweep_running; /* the start's sweep of the spool, on the thread pool */
	int sweeping; /* asking the engine which uploads it still needs */

	struct webbridge_conn *conns; /* open WebSockets */
	int nconns;
	uv_timer_t quit_timer;
	int quit_timer_open;
	int stopping;
};

/* webbridge.c */
/* 1 if wsi came through the Unix socket, whose mode 0600 is its
 * authentication. */
int webbridge_is_local(const struct webbridge *b, struct lws *wsi);

/* webbridge_http.c */
int webbridge_assets_load(struct webbridge *b, const char *root, char **cause);
void webbridge_assets_free(struct webbridge *b);
/* LWS_CALLBACK_HTTP: answers the request for uri. Returns what the lws
 * callback returns. */
int webbridge_http_request(struct webbridge_conn *c, struct lws *wsi, const char *uri);
int webbridge_http_writeable(struct webbridge_conn *c, struct lws *wsi);
/* The request is over, or the connection: frees its body. */
void webbridge_http_done(struct webbridge_conn *c);
/* Copies header h of wsi into out (size WEBBRIDGE_HEADER_MAX); returns
 * its length, or -1 if absent or too long. */
int webbridge_header(struct lws *wsi, enum lws_token_indexes h, char *out);
/* 1 if the request's Host names this bridge (webpolicy.h). */
int webbridge_host_ok(struct webbridge *b, struct lws *wsi);
/* 1 if the request carries this run's session cookie. */
int webbridge_has_session(struct webbridge *b, struct lws *wsi);

/* webbridge_ws.c */
/* Registers the bridge's own commands (auth, focus) with the engine. */
void webbridge_ws_commands(struct webbridge *b);
/* The engine holds a tracker session: the page may start. */
int webbridge_logged_in(const struct webbridge *b);
/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: 0 to accept the upgrade. */
int webbridge_ws_filter(struct webbridge *b, struct lws *wsi);
void webbridge_ws_open(struct webbridge_conn *c, struct webbridge *b, struct lws *wsi);
int webbridge_ws_receive(struct webbridge_conn *c, const void *in, size_t len);
int webbridge_ws_writeable(struct webbridge_conn *c);
void webbridge_ws_closed(struct webbridge_conn *c);
/* Queues one text message for c (if authenticated). */
void webbridge_ws_send(struct webbridge_conn *c, const char *text, size_t len);
/* The open socket client is (a command's client), or NULL. */
struct webbridge_conn *webbridge_ws_conn(struct webbridge *b, const void *client);

/* webbridge_upload.c */
struct webbridge_upload;
/* Makes the spool's root (DATA_DIR/WEBBRIDGE_SPOOL_DIR, 0700); without
 * it, uploads are refused. */
void webbridge_upload_init(struct webbridge *b);
/* Once subscribed: removes every spooled upload no transfer under way
 * names (cut short by a crash, or ended while the peer was down). */
void webbridge_upload_sweep(struct webbridge *b);
/* The "upload USER SIZE NAME" command of a tab (command.h). */
int webbridge_upload_run(void *arg, const void *client, const char *ctx, int argc, char **argv);
/* "upload_cancel": the socket's upload ends, answered "cancelled", and its
 * directory goes; an error if it has none (it may have been offered:
 * then "cancel ID" stops the transfer). */
int webbridge_upload_cancel(void *arg, const void *client, const char *ctx, int argc, char **argv);
/* Bytes of a binary message for c's upload (final: the message's last).
 * NULL, or why c has none or broke its rules: the upload has ended,
 * close c with that reason. */
const char *webbridge_upload_data(struct webbridge_conn *c, const void *in, size_t len, int final);
/* c is closing: its upload, if any, ends and its directory goes. */
void webbridge_upload_closed(struct webbridge_conn *c);
/* An engine event: a spooled file whose transfer ended is removed. */
void webbridge_upload_event(struct webbridge *b, const struct event *ev);

#endif
