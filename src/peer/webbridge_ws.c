/* webbridge_ws.c — one WebSocket of the web bridge: the upgrade allowed
 * only with this run's session cookie and from its own Host's Origin,
 * nothing accepted before the per-run secret (on the Unix socket of mode
 * 0600, neither: it is greeted at once), then one message is one command line for the engine, and the
 * engine's events go out through a queue bounded per socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hychat/command.h"
#include "hychat/log.h"
#include "webbridge_internal.h"

#define WS_REASON_MAX 123 /* a close frame's reason, RFC 6455 5.5 */

static void
cut(struct webbridge_conn *c, const char *reason)
{
	struct webbridge_msg *m;

	if (c->ws.cut)
		return;
	c->ws.cut = 1;
	c->ws.cut_reason = reason;
	while ((m = c->ws.head) != NULL) {
		c->ws.head = m->next;
		free(m);
	}
	c->ws.tail = NULL;
	c->ws.queued = 0;
	lws_callback_on_writable(c->wsi);
}

/* Closes c with its reason: returns what the lws callback returns. */
static int
close_cut(struct webbridge_conn *c)
{
	char r[WS_REASON_MAX + 1];

	snprintf(r, sizeof(r), "%s", c->ws.cut_reason);
	lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)r, strlen(r));
	return -1;
}

int
webbridge_ws_filter(struct webbridge *b, struct lws *wsi)
{
	char origin[WEBBRIDGE_HEADER_MAX], host[WEBBRIDGE_HEADER_MAX], uri[WEBBRIDGE_HEADER_MAX];
	int n, hn;

	if (webbridge_header(wsi, WSI_TOKEN_GET_URI, uri) < 0 ||
	    strcmp(uri, WEBBRIDGE_WS_PATH) != 0) {
		log_warn("web bridge: WebSocket refused: path is not %s", WEBBRIDGE_WS_PATH);
		return -1;
	}
	if (b->nconns >= WEBBRIDGE_MAX_SOCKETS) {
		log_warn("web bridge: WebSocket refused: %d already open", WEBBRIDGE_MAX_SOCKETS);
		return -1;
	}
	if (webbridge_is_local(b, wsi))
		return 0; /* the Unix socket: its mode is the check */
	if (!webbridge_host_ok(b, wsi)) {
		log_warn("web bridge: WebSocket refused: unknown Host");
		return -1;
	}
	n = webbridge_header(wsi, WSI_TOKEN_ORIGIN, origin);
	hn = webbridge_header(wsi, WSI_TOKEN_HOST, host);
	if (n < 0 || hn < 0 ||
	    !webpolicy_origin_ok(&b->policy, origin, (size_t)n, host, (size_t)hn)) {
		log_warn("web bridge: WebSocket refused: Origin %s is not its Host's",
		    n < 0 ? "(none)" : origin);
		return -1;
	}
	if (!webbridge_has_session(b, wsi)) {
		log_warn("web bridge: WebSocket refused: no session cookie (open the URL in %s)",
		    b->url_file[0] != '\0' ? b->url_file : WEBBRIDGE_URL_FILE);
		return -1;
	}
	return 0;
}

static void send_hello(struct webbridge_conn *c);

void
webbridge_ws_open(struct webbridge_conn *c, struct webbridge *b, struct lws *wsi)
{
	c->b = b;
	c->wsi = wsi;
	c->ws.open = 1;
	buf_init(&c->ws.in);
	c->ws.next = b->conns;
	if (b->conns != NULL)
		b->conns->ws.prev = c;
	b->conns = c;
	b->nconns++;
	if (webbridge_is_local(b, wsi)) {
		c->ws.authed = 1;
		send_hello(c);
		return;
	}
	/* A socket that never authenticates would hold one of the
	 * WEBBRIDGE_MAX_SOCKETS places for ever. */
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WEBBRIDGE_AUTH_TIMEOUT_S);
}

static void
enqueue(struct webbridge_conn *c, const char *text, size_t len)
{
	struct webbridge_msg *m;

	if (c->ws.cut)
		return;
	if (c->ws.queued + len > WEBBRIDGE_OUT_MAX) {
		log_warn("web bridge: a tab is more than %d bytes behind: closing it",
		    WEBBRIDGE_OUT_MAX);
		cut(c, "too far behind");
		return;
	}
	m = xmalloc(sizeof(*m) + LWS_PRE + len);
	m->next = NULL;
	m->len = len;
	memcpy(m->data + LWS_PRE, text, len);
	if (c->ws.tail != NULL)
		c->ws.tail->next = m;
	else
		c->ws.head = m;
	c->ws.tail = m;
	c->ws.queued += len;
	lws_callback_on_writable(c->wsi);
}

void
webbridge_ws_send(struct webbridge_conn *c, const char *text, size_t len)
{
	if (c->ws.authed)
		enqueue(c, text, len);
}

/* What the bridge itself answers, before the engine. */

static void
send_hello(struct webbridge_conn *c)
{
	struct webbridge *b = c->b;
	struct json_object *o = json_object_new_object();
	const char *s;

	json_object_object_add(o, "type", json_object_new_string("hello"));
	json_object_object_add(o, "username", json_object_new_string(engine_username(b->e)));
	json_object_object_add(o, "logged_in", json_object_new_boolean(webbridge_logged_in(b)));
	json_object_object_add(o, "peer_port", json_object_new_int(b->peer_port));
	json_object_object_add(o, "web_port", json_object_new_int(b->web_port));
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	enqueue(c, s, strlen(s));
	json_object_put(o);
}

int
webbridge_logged_in(const struct webbridge *b)
{
	return engine_tracker_state(b->e) == ENGINE_ONLINE;
}

struct webbridge_conn *
webbridge_ws_conn(struct webbridge *b, const void *client)
{
	for (struct webbridge_conn *c = b->conns; c != NULL; c = c->ws.next)
		if (c == client)
			return c;
	return NULL;
}

static int
run_auth(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct webbridge_conn *c = webbridge_ws_conn(arg, client);
	const char *secret = argc > 0 ? argv[0] : "";
	size_t n;

	if (c == NULL)
		return -1;
	n = strlen(c->b->secret);
	if (webbridge_is_local(c->b, c->wsi)) { /* greeted already; once more */
		send_hello(c);
		return 0;
	}
	if (strlen(secret) != n || !hy_memeq_ct(secret, c->b->secret, n)) {
		log_warn("web bridge: a WebSocket presented a wrong secret: closing it");
		cut(c, "wrong secret");
		return -1;
	}
	c->ws.authed = 1;
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	send_hello(c);
	return 0;
}

static int
run_focus(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct webbridge_conn *c = webbridge_ws_conn(arg, client);

	if (c == NULL)
		return -1;
	snprintf(c->ws.ctx, sizeof(c->ws.ctx), "%s", argc > 0 ? argv[0] : "");
	return 0;
}

/* The bridge's own commands, in the engine's command layer. auth is the
 * only one a socket may send before it has presented the secret. */
static const struct command_front ws_commands[] = {
	{ { "auth", 0, 1, COMMAND_REST, NULL, "SECRET",
	      "the first message of every socket: the per-run secret" },
	    run_auth },
	{ { "focus", 0, 1, COMMAND_REST, NULL, "[CONVERSATION]",
	      "the conversation the tab shows, the default of /me, /part, /history" },
	    run_focus },
	{ { "upload", 3, 3, COMMAND_REST, NULL, "USER SIZE NAME",
	      "a file from the page: SIZE bytes follow as binary messages, then the file is "
	      "offered to USER" },
	    webbridge_upload_run },
	{ { "upload_cancel", 0, 0, 0, NULL, "",
	      "stops this socket's upload mid-send: what was spooled goes, nothing is offered" },
	    webbridge_upload_cancel },
};

void
webbridge_ws_commands(struct webbridge *b)
{
	if (command_register(b->e, b, ws_commands, HY_ARRAY_LEN(ws_commands), b) < 0)
		log_error("web bridge: its commands clash with the engine's");
}

static void
run_message(struct webbridge_conn *c, char *line, size_t len)
{
	struct webbridge *b = c->b;

	if (!c->ws.authed && command_of(b->e, b, line) != &ws_commands[0].cmd) {
		log_warn("web bridge: a WebSocket sent a command before the secret: closing it");
		cut(c, "authenticate first");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		event_error(engine_events(b->e), "a command cannot hold a NUL character");
		return;
	}
	command_run(b->e, line, c->ws.ctx[0] != '\0' ? c->ws.ctx : NULL, b, c);
}

int
webbridge_ws_receive(struct webbridge_conn *c, const void *in, size_t len)
{
	const char *why;

	if (c->ws.cut)
		return close_cut(c);
	if (lws_frame_is_binary(c->wsi)) {
		/* A file's bytes, announced by "upload"; nothing else. */
		int final =
		    lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0;
		if (c->ws.up == NULL) {
			cut(c, "text messages only");
			return close_cut(c);
		}
		if ((why = webbridge_upload_data(c, in, len, final)) != NULL) {
			cut(c, why);
			return close_cut(c);
		}
		return 0;
	}
	if (!c->ws.in_discard)
		buf_append(&c->ws.in, in, len);
	if (c->ws.in.len > COMMAND_LINE_MAX) {
		c->ws.in_discard = 1;
		buf_consume(&c->ws.in, c->ws.in.len);
	}
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi) > 0)
		return 0;
	if (c->ws.in_discard) {
		if (c->ws.authed)
			event_error(engine_events(c->b->e), "line too long: at most %d bytes",
			    COMMAND_LINE_MAX);
		else
			cut(c, "authenticate first");
	} else {
		buf_append(&c->ws.in, "", 0);
		run_message(c, c->ws.in.data != NULL ? c->ws.in.data : (char *)"", c->ws.in.len);
	}
	c->ws.in_discard = 0;
	buf_consume(&c->ws.in, c->ws.in.len);
	return c->ws.cut ? close_cut(c) : 0;
}

int
webbridge_ws_writeable(struct webbridge_conn *c)
{
	struct webbridge_msg *m = c->ws.head;

	if (c->ws.cut)
		return close_cut(c);
	if (m == NULL)
		return 0;
	if (lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
		return -1;
	c->ws.head = m->next;
	if (c->ws.head == NULL)
		c->ws.tail = NULL;
	c->ws.queued -= m->len;
	free(m);
	if (c->ws.head != NULL)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void
webbridge_ws_closed(struct webbridge_conn *c)
{
	struct webbridge *b = c->b;
	struct webbridge_msg *m;

	if (!c->ws.open)
		return;
	c->ws.open = 0;
	webbridge_upload_closed(c);
	if (c->ws.prev != NULL)
		c->ws.prev->ws.next = c->ws.next;
	else
		b->conns = c->ws.next;
	if (c->ws.next != NULL)
		c->ws.next->ws.prev = c->ws.prev;
	b->nconns--;
	while ((m = c->ws.head) != NULL) {
		c->ws.head = m->next;
		free(m);
	}
	buf_fini(&c->ws.in);
}
