/* webbridge.c — the web bridge's life: a libwebsockets context on the
 * peer's loop, the one protocol callback that hands each reason to the
 * HTTP or the WebSocket side, the engine's events out to every
 * authenticated socket, and the close on "quit". */
#include "hychat/webbridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hychat/command.h"
#include "hychat/log.h"
#include "webbridge_internal.h"

#define WEBBRIDGE_PROTOCOL "hychat"
#define WEBBRIDGE_RX_BUFFER 65536 /* lws's receive buffer; messages may be longer */

static const char *installed_root = HYCHAT_WEBUI_DIR;
static const char *source_root = HYCHAT_WEBUI_SOURCE_DIR;

const char *
webbridge_default_root(void)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/index.html", installed_root);
	return stat(path, &st) == 0 ? installed_root : source_root;
}

int
webbridge_addr_is_loopback(const char *addr)
{
	return webpolicy_is_loopback(addr);
}

const char *
webbridge_url(const struct webbridge *b)
{
	return b->url;
}

const char *
webbridge_url_file(const struct webbridge *b)
{
	return b->url_file;
}

const char *
webbridge_socket_path(const struct webbridge *b)
{
	return b->unix_vhost != NULL ? b->sock_path : NULL;
}

int
webbridge_is_local(const struct webbridge *b, struct lws *wsi)
{
	return b->unix_vhost != NULL && lws_get_vhost(wsi) == b->unix_vhost;
}

static int
on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct lws_context *lctx = lws_get_context(wsi);
	struct webbridge *b = lctx != NULL ? lws_context_user(lctx) : NULL;
	struct webbridge_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP: c->b = b; return webbridge_http_request(c, wsi, in);
	case LWS_CALLBACK_HTTP_WRITEABLE: return webbridge_http_writeable(c, wsi);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (c != NULL)
			webbridge_http_done(c);
		break;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return webbridge_ws_filter(b, wsi);
	case LWS_CALLBACK_ESTABLISHED: webbridge_ws_open(c, b, wsi); return 0;
	case LWS_CALLBACK_RECEIVE: return webbridge_ws_receive(c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE: return webbridge_ws_writeable(c);
	case LWS_CALLBACK_CLOSED: webbridge_ws_closed(c); return 0;
	default: break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ WEBBRIDGE_PROTOCOL, on_lws, sizeof(struct webbridge_conn), WEBBRIDGE_RX_BUFFER, 0, NULL,
	    0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void on_quit_timer(uv_timer_t *t);

/* Events out: every one to every socket that presented the secret. */
static void
on_event(const struct event *ev, void *arg)
{
	struct webbridge *b = arg;

	/* An answer goes to the tab that asked alone, a change to every tab. */
	for (struct webbridge_conn *c = b->conns; c != NULL; c = c->ws.next)
		if (!ev->answer || ev->client == c)
			webbridge_ws_send(c, ev->json, ev->len);
	webbridge_upload_event(b, ev);
	if (ev->type == EVENT_QUIT && !b->stopping) {
		/* The event may come from inside an lws callback (a tab sent
		 * "quit"): destroy the context from a turn of our own. */
		b->stopping = 1;
		event_unsubscribe(engine_events(b->e), on_event, b);
		uv_timer_start(&b->quit_timer, on_quit_timer, WEBBRIDGE_QUIT_FLUSH_MS, 0);
	}
}

static void
on_quit_timer_closed(uv_handle_t *h)
{
	struct webbridge *b = h->data;

	b->quit_timer_open = 0;
}

static void
on_quit_timer(uv_timer_t *t)
{
	struct webbridge *b = t->data;

	/* lws closes its handles on the loop and sets b->ctx to NULL when
	 * done (pcontext); the loop ends after that. */
	if (b->ctx != NULL)
		lws_context_destroy(b->ctx);
	uv_close((uv_handle_t *)t, on_quit_timer_closed);
}

static void
on_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level & LLL_ERR ? LOG_ERROR : LOG_WARN, "web bridge: libwebsockets: %.*s", (int)n,
	    line);
}

static void
random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];

	randombytes_buf(raw, nbytes);
	sodium_bin2hex(out, nbytes * 2 + 1, raw, nbytes);
	sodium_memzero(raw, sizeof(raw));
}

static void
make_url(struct webbridge *b, const char *addr)
{
	const char *host = addr;

	/* Every address reaches a wildcard listener: show the loopback one. */
	if (b->policy.wildcard)
		host = strchr(addr, ':') != NULL ? "::1" : "127.0.0.1";
	if (strchr(host, ':') != NULL)
		snprintf(b->url, sizeof(b->url), "http://[%s]:%d/", host, b->web_port);
	else
		snprintf(b->url, sizeof(b->url), "http://%s:%d/", host, b->web_port);
}

static void
make_login_url(struct webbridge *b)
{
	snprintf(b->login_url, sizeof(b->login_url), "%s?%s=%s", b->url, WEBPOLICY_TOKEN_PARAM,
	    b->token);
}

const char *
webbridge_login_url(struct webbridge *b)
{
	if (b->token[0] == '\0') {
		random_hex(b->token, WEBBRIDGE_TOKEN_BYTES);
		make_login_url(b);
	}
	return b->login_url;
}

/* Writes the login URL to DATA_DIR/WEBBRIDGE_URL_FILE, mode 0600, through
 * a new file renamed over the old: whatever was there (another mode, a
 * link) is replaced, never written through. At start, before the loop. */
static int
write_url_file(struct webbridge *b, const char *dir, char **cause)
{
	char tmp[WEBBRIDGE_PATH_MAX + 8];
	size_t len = strlen(b->login_url);
	int fd;

	if (snprintf(b->url_file, sizeof(b->url_file), "%s/%s", dir, WEBBRIDGE_URL_FILE) >=
	        (int)sizeof(b->url_file) ||
	    snprintf(tmp, sizeof(tmp), "%s.new", b->url_file) >= (int)sizeof(tmp)) {
		hy_cause(cause, "web bridge: %s: path too long", dir);
		return -1;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd < 0 || fchmod(fd, S_IRUSR | S_IWUSR) < 0 ||
	    write(fd, b->login_url, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0) {
		hy_cause(cause, "web bridge: %s: %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			(void)unlink(tmp);
		}
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, b->url_file) < 0) {
		hy_cause(cause, "web bridge: %s: %s", b->url_file, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* libwebsockets 4.1 logs a port it cannot bind but still makes the
 * context, and a context on a foreign loop cannot be taken down before
 * the loop runs: so try the address first, and fail at start cleanly. */
static int
probe_bind(struct webbridge *b, const char *addr, char **cause)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1, rc;

	memset(&ss, 0, sizeof(ss));
	if (b->policy.wildcard || strchr(addr, ':') == NULL) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)b->web_port);
		if (!b->policy.wildcard || strchr(addr, ':') == NULL)
			inet_pton(AF_INET, addr, &in->sin_addr);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)b->web_port);
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		len = sizeof(*in6);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		hy_cause(cause, "web bridge: socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	rc = bind(fd, (struct sockaddr *)&ss, len);
	if (rc < 0)
		hy_cause(cause, "web bridge: %s port %d: %s", addr, b->web_port, strerror(errno));
	close(fd);
	return rc < 0 ? -1 : 0;
}

static int
start_lws(struct webbridge *b, const char *addr, char **cause)
{
	struct lws_context_creation_info info;
	void *loops[1] = { b->loop };

	memset(&info, 0, sizeof(info));
	info.port = b->web_port;
	info.iface = b->policy.wildcard ? NULL : addr;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	if (strchr(addr, ':') == NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.foreign_loops = loops;
	info.pcontext = &b->ctx;
	info.user = b;
	info.server_string = "hychat";
	info.vhost_name = "hychat";
	if (probe_bind(b, addr, cause) < 0)
		return -1;
	b->ctx = lws_create_context(&info);
	if (b->ctx == NULL || lws_get_vhost_by_name(b->ctx, info.vhost_name) == NULL) {
		hy_cause(cause, "web bridge: cannot listen on %s port %d", addr, b->web_port);
		return -1;
	}
	return 0;
}

/* The Unix socket for the user's own tools, mode 0600 from the start (a
 * umask around the bind, then a chmod in case lws changed it). It is an
 * extra: any failure (a path too long for sun_path, a file in the way)
 * only loses it, with a warning, since the context cannot be taken down
 * before the loop runs. */
static void
start_unix(struct webbridge *b, const char *dir)
{
	struct lws_context_creation_info info;
	struct stat st;
	mode_t old;

	if (snprintf(b->sock_path, sizeof(b->sock_path), "%s/%s", dir, WEBBRIDGE_SOCKET_FILE) >=
	    (int)sizeof(b->sock_path)) {
		log_warn("web bridge: %s/%s: path too long for a Unix socket: none", dir,
		    WEBBRIDGE_SOCKET_FILE);
		b->sock_path[0] = '\0';
		return;
	}
	/* One left by a run that crashed; never anything else. */
	if (lstat(b->sock_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warn("web bridge: %s: exists and is not a socket: none", b->sock_path);
			return;
		}
		(void)unlink(b->sock_path);
	}
	memset(&info, 0, sizeof(info));
	info.iface = b->sock_path;
	info.options = LWS_SERVER_OPTION_UNIX_SOCK;
	info.protocols = protocols;
	info.vhost_name = "hychat-unix";
	old = umask(S_IRWXG | S_IRWXO);
	b->unix_vhost = lws_create_vhost(b->ctx, &info);
	umask(old);
	if (b->unix_vhost == NULL) {
		log_warn("web bridge: cannot listen on %s: none", b->sock_path);
		return;
	}
	if (chmod(b->sock_path, S_IRUSR | S_IWUSR) < 0) {
		/* lws has no call to close one vhost's listener: keep it
		 * unreachable instead. */
		log_warn("web bridge: %s: %s: removed", b->sock_path, strerror(errno));
		(void)unlink(b->sock_path);
		b->unix_vhost = NULL;
	}
}

struct webbridge *
webbridge_new(uv_loop_t *loop, struct engine *e, const struct webbridge_config *cfg, char **cause)
{
	struct webbridge *b = xcalloc(1, sizeof(*b));
	const char *addr = cfg->addr != NULL ? cfg->addr : WEBBRIDGE_DEFAULT_ADDR;

	b->loop = loop;
	b->e = e;
	b->peer_port = cfg->peer_port;
	b->web_port = cfg->port != 0 ? cfg->port : cfg->peer_port + WEBBRIDGE_PORT_OFFSET;
	if (b->web_port < 1 || b->web_port > 65535) {
		hy_cause(cause, "web bridge: port %d out of range: give --web PORT", b->web_port);
		free(b);
		return NULL;
	}
	if (webpolicy_init(&b->policy, addr, b->web_port) < 0) {
		hy_cause(cause, "web bridge: %s: not an IP address", addr);
		free(b);
		return NULL;
	}
	snprintf(b->cookie_name, sizeof(b->cookie_name), "hychat_session_%d", b->web_port);
	random_hex(b->secret, WEBBRIDGE_SECRET_BYTES);
	random_hex(b->session, WEBBRIDGE_SESSION_BYTES);
	random_hex(b->token, WEBBRIDGE_TOKEN_BYTES);
	make_url(b, addr);
	make_login_url(b);
	if (webbridge_assets_load(
	        b, cfg->root != NULL ? cfg->root : webbridge_default_root(), cause) < 0 ||
	    write_url_file(b, engine_data_dir(e), cause) < 0) {
		webbridge_assets_free(b);
		free(b);
		return NULL;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
	if (start_lws(b, addr, cause) < 0) {
		(void)unlink(b->url_file);
		webbridge_assets_free(b);
		free(b);
		return NULL;
	}
	start_unix(b, engine_data_dir(e));
	webbridge_upload_init(b);
	uv_timer_init(loop, &b->quit_timer);
	b->quit_timer.data = b;
	b->quit_timer_open = 1;
	event_subscribe(engine_events(e), on_event, b);
	webbridge_ws_commands(b);
	webbridge_upload_sweep(b);
	return b;
}

void
webbridge_free(struct webbridge *b)
{
	if (b == NULL)
		return;
	/* On a foreign loop lws closes its handles during the loop but
	 * leaves the last step of the teardown to a second call, once they
	 * are all closed; it needs no more turns of the loop. */
	if (b->ctx != NULL)
		lws_context_destroy(b->ctx);
	if (b->ctx != NULL || b->quit_timer_open)
		log_error("web bridge: freed before it closed");
	command_unregister(b->e, b);
	webbridge_assets_free(b);
	/* The URL is of this run only: leave no stale one behind. */
	if (b->url_file[0] != '\0')
		(void)unlink(b->url_file);
	if (b->unix_vhost != NULL)
		(void)unlink(b->sock_path);
	sodium_memzero(b->token, sizeof(b->token));
	sodium_memzero(b->session, sizeof(b->session));
	free(b);
}
