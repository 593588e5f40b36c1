/* webbridge_http.c — the web bridge's HTTP side: the files of webui/
 * read into memory at start, one table of routes, the one-time token
 * exchanged for the session cookie, the 403 page for a request without
 * it, and the page with the start configuration injected. Every answer carries headers that keep the page to
 * itself (a Content-Security-Policy without inline script, no framing,
 * no caching of the page that holds the secret). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <sodium.h>

#include "hychat/http_static.h"
#include "hychat/log.h"
#include "webbridge_internal.h"

#define HTTP_HEADERS_MAX 2048
#define BEARER "Bearer "

/* Sent with every answer. */
static const struct {
	const char *name, *value;
} security_headers[] = {
	{ "content-security-policy:",
	    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
	    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'" },
	{ "x-content-type-options:", "nosniff" },
	{ "x-frame-options:", "DENY" },
	{ "referrer-policy:", "no-referrer" },
	{ "cache-control:", "no-store" },
};

/* The files of webui/ served: those the HTTP library has a type for. */
static const char *
mime_of(const char *name)
{
	const char *m = http_static_mime(name);

	return strcmp(m, HTTP_MIME_UNKNOWN) != 0 ? m : NULL;
}

/* Files. */

static int
read_file(const char *path, char **data, size_t *len, char **cause)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (f == NULL) {
		hy_cause(cause, "web bridge: %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > WEBBRIDGE_ASSET_MAX) {
		hy_cause(cause, "web bridge: %s: larger than %d bytes", path, WEBBRIDGE_ASSET_MAX);
		fclose(f);
		return -1;
	}
	*len = (size_t)st.st_size;
	*data = xmalloc(*len + 1);
	if (fread(*data, 1, *len, f) != *len) {
		hy_cause(cause, "web bridge: %s: short read", path);
		fclose(f);
		free(*data);
		*data = NULL;
		return -1;
	}
	(*data)[*len] = '\0';
	fclose(f);
	return 0;
}

static int
add_asset(struct webbridge *b, const char *root, const char *name, char **cause)
{
	struct webbridge_asset *a;
	char path[4096];

	if (b->nassets == WEBBRIDGE_MAX_ASSETS) {
		hy_cause(cause, "web bridge: %s: more than %d files", root, WEBBRIDGE_MAX_ASSETS);
		return -1;
	}
	a = &b->assets[b->nassets];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (read_file(path, &a->data, &a->len, cause) < 0)
		return -1;
	a->name = xstrdup(name);
	a->mime = mime_of(name);
	b->nassets++;
	return 0;
}

int
webbridge_assets_load(struct webbridge *b, const char *root, char **cause)
{
	DIR *d = opendir(root);
	struct dirent *de;
	char *mark;

	if (d == NULL) {
		hy_cause(cause, "web bridge: %s: %s", root, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || mime_of(de->d_name) == NULL)
			continue;
		if (add_asset(b, root, de->d_name, cause) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	for (size_t i = 0; i < b->nassets; i++)
		if (strcmp(b->assets[i].name, "index.html") == 0)
			b->page = &b->assets[i];
	if (b->page == NULL) {
		hy_cause(cause, "web bridge: %s/index.html: missing", root);
		return -1;
	}
	if ((mark = strstr(b->page->data, WEBBRIDGE_CONFIG_MARK)) == NULL) {
		hy_cause(cause, "web bridge: %s/index.html: no %s to put the configuration", root,
		    WEBBRIDGE_CONFIG_MARK);
		return -1;
	}
	b->page_mark = (size_t)(mark - b->page->data);
	return 0;
}

void
webbridge_assets_free(struct webbridge *b)
{
	for (size_t i = 0; i < b->nassets; i++) {
		free(b->assets[i].name);
		free(b->assets[i].data);
	}
	b->nassets = 0;
	b->page = NULL;
}

/* Requests. */

int
webbridge_header(struct lws *wsi, enum lws_token_indexes h, char *out)
{
	int n = lws_hdr_total_length(wsi, h);

	if (n <= 0 || n >= WEBBRIDGE_HEADER_MAX)
		return -1;
	if (lws_hdr_copy(wsi, out, WEBBRIDGE_HEADER_MAX, h) != n)
		return -1;
	return n;
}

int
webbridge_host_ok(struct webbridge *b, struct lws *wsi)
{
	char host[WEBBRIDGE_HEADER_MAX];
	int n = webbridge_header(wsi, WSI_TOKEN_HOST, host);

	return n > 0 && webpolicy_host_ok(&b->policy, host, (size_t)n);
}

int
webbridge_has_session(struct webbridge *b, struct lws *wsi)
{
	char cookie[WEBBRIDGE_HEADER_MAX];
	int n = webbridge_header(wsi, WSI_TOKEN_HTTP_COOKIE, cookie);

	return n > 0 && webpolicy_session_ok(cookie, (size_t)n, b->cookie_name, b->session);
}

struct header {
	const char *name, *value;
};

/* Writes the status and headers, and queues the body (body_owned: ours
 * to free). Returns what the lws callback returns. */
static int
respond(struct webbridge_conn *c, struct lws *wsi, unsigned status, const char *mime, char *body,
    size_t len, int owned, const struct header *extra, size_t nextra)
{
	unsigned char buf[LWS_PRE + HTTP_HEADERS_MAX];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;

	webbridge_http_done(c);
	c->http.body = body;
	c->http.len = len;
	c->http.off = 0;
	c->http.owned = owned;
	if (lws_add_http_common_headers(wsi, status, mime, len, &p, end))
		return -1;
	for (size_t i = 0; i < HY_ARRAY_LEN(security_headers); i++)
		if (lws_add_http_header_by_name(wsi,
		        (const unsigned char *)security_headers[i].name,
		        (const unsigned char *)security_headers[i].value,
		        (int)strlen(security_headers[i].value), &p, end))
			return -1;
	for (size_t i = 0; i < nextra; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)extra[i].name,
		        (const unsigned char *)extra[i].value, (int)strlen(extra[i].value), &p,
		        end))
			return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len == 0) {
		webbridge_http_done(c);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

static int
respond_text(struct webbridge_conn *c, struct lws *wsi, unsigned status, const char *text)
{
	return respond(
	    c, wsi, status, "text/plain; charset=utf-8", (char *)text, strlen(text), 0, NULL, 0);
}

static int
respond_json(struct webbridge_conn *c, struct lws *wsi, unsigned status, struct json_object *o,
    const struct header *extra, size_t nextra)
{
	char *body = xstrdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return respond(c, wsi, status, "application/json", body, strlen(body), 1, extra, nextra);
}

static int
serve_page(struct webbridge_conn *c, struct lws *wsi)
{
	struct webbridge *b = c->b;
	struct json_object *cfg = json_object_new_object();
	struct buf page;
	const char *json;

	json_object_object_add(cfg, "username", json_object_new_string(engine_username(b->e)));
	json_object_object_add(cfg, "peer_port", json_object_new_int(b->peer_port));
	json_object_object_add(cfg, "web_port", json_object_new_int(b->web_port));
	json_object_object_add(cfg, "secret", json_object_new_string(b->secret));
	json_object_object_add(cfg, "ws_path", json_object_new_string(WEBBRIDGE_WS_PATH));
	json_object_object_add(cfg, "logged_in", json_object_new_boolean(webbridge_logged_in(b)));
	json_object_object_add(cfg, "session",
	    json_object_new_boolean(webbridge_logged_in(b) && webbridge_has_session(b, wsi)));
	json_object_object_add(cfg, "version", json_object_new_string(HYCHAT_VERSION));
	json = json_object_to_json_string_ext(
	    cfg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	/* Into an attribute value: escaped as HTML, read back by the page
	 * with JSON.parse, no inline script for the policy to allow. */
	buf_init(&page);
	buf_append(&page, b->page->data, b->page_mark);
	buf_append_html(&page, json, strlen(json));
	buf_append_str(&page, b->page->data + b->page_mark + strlen(WEBBRIDGE_CONFIG_MARK));
	json_object_put(cfg);
	return respond(c, wsi, HTTP_STATUS_OK, b->page->mime, page.data, page.len, 1, NULL, 0);
}

/* The original's GET /confirm-login: after a successful login the page
 * asks for the session cookie, proving it is the page with the secret. */
static int
serve_confirm_login(struct webbridge_conn *c, struct lws *wsi)
{
	struct webbridge *b = c->b;
	char auth[WEBBRIDGE_HEADER_MAX], cookie[256];
	struct json_object *o = json_object_new_object();
	size_t blen = strlen(BEARER), slen = strlen(b->secret);
	int n = webbridge_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth);
	struct header set;

	if (n < 0 || (size_t)n != blen + slen || memcmp(auth, BEARER, blen) != 0 ||
	    !hy_memeq_ct(auth + blen, b->secret, slen)) {
		json_object_object_add(o, "status", json_object_new_string("failed"));
		json_object_object_add(
		    o, "message", json_object_new_string("the secret is missing or wrong"));
		return respond_json(c, wsi, HTTP_STATUS_FORBIDDEN, o, NULL, 0);
	}
	if (!webbridge_logged_in(b)) {
		json_object_object_add(o, "status", json_object_new_string("failed"));
		json_object_object_add(o, "message", json_object_new_string("not logged in"));
		return respond_json(c, wsi, HTTP_STATUS_CONFLICT, o, NULL, 0);
	}
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict", b->cookie_name,
	    b->session);
	set.name = "set-cookie:";
	set.value = cookie;
	json_object_object_add(o, "status", json_object_new_string("success"));
	json_object_object_add(o, "username", json_object_new_string(engine_username(b->e)));
	return respond_json(c, wsi, HTTP_STATUS_OK, o, &set, 1);
}

/* Without the session: a 403 that says how to get one, and nothing of
 * the chat. */
static int
serve_refused(struct webbridge_conn *c, struct lws *wsi, const char *why)
{
	struct webbridge *b = c->b;
	const char *file = b->url_file[0] != '\0' ? b->url_file : WEBBRIDGE_URL_FILE;
	struct buf page;

	buf_init(&page);
	buf_append_str(&page,
	    "<!doctype html>\n<meta charset=\"utf-8\">\n<title>hychat: open the link "
	    "hychat printed</title>\n<h1>Open the link hychat printed</h1>\n<p>");
	buf_append_html(&page, why, strlen(why));
	buf_append_str(&page,
	    "</p>\n<p>This page needs the address with a one-time token that hychat printed "
	    "when it started. It is also in the file <code>");
	buf_append_html(&page, file, strlen(file));
	buf_append_str(&page,
	    "</code> (readable by its user only), and <code>/web</code> in the terminal "
	    "client shows a new one. Each address works once; a browser that opened it "
	    "keeps a cookie until hychat stops.</p>\n");
	return respond(c, wsi, HTTP_STATUS_FORBIDDEN, "text/html; charset=utf-8", page.data,
	    page.len, 1, NULL, 0);
}

/* GET /?token=T or /login?token=T: the one-time token for this run's
 * cookie, then to the page without the token in its address. */
static int
serve_login(struct webbridge_conn *c, struct lws *wsi, const char *query, int qlen)
{
	struct webbridge *b = c->b;
	char cookie[256];
	struct header h[2];

	if (qlen <= 0 || !webpolicy_token_ok(query, (size_t)qlen, b->token)) {
		/* The user's own browser opening the address again: let it
		 * through to the page it already has. */
		if (webbridge_has_session(b, wsi)) {
			h[0].name = "location:";
			h[0].value = "/";
			return respond(c, wsi, HTTP_STATUS_SEE_OTHER, "text/plain; charset=utf-8",
			    NULL, 0, 0, h, 1);
		}
		log_warn("web bridge: a wrong or spent token was presented");
		return serve_refused(c, wsi, "This address is wrong or was used already.");
	}
	sodium_memzero(b->token, sizeof(b->token));
	log_info("web bridge: the one-time token was used: a browser has the session");
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict", b->cookie_name,
	    b->session);
	h[0].name = "set-cookie:";
	h[0].value = cookie;
	h[1].name = "location:";
	h[1].value = "/";
	return respond(c, wsi, HTTP_STATUS_SEE_OTHER, "text/plain; charset=utf-8", NULL, 0, 0, h,
	    HY_ARRAY_LEN(h));
}

struct route {
	const char *path;
	int need_session; /* reveals the chat, or acts in it */
	int (*serve)(struct webbridge_conn *c, struct lws *wsi);
};

static const struct route routes[] = {
	{ "/", 1, serve_page },
	{ "/index.html", 1, serve_page },
	{ "/www/chat.html", 1, serve_page }, /* the original's address */
	{ "/confirm-login", 1, serve_confirm_login },
};

int
webbridge_http_request(struct webbridge_conn *c, struct lws *wsi, const char *uri)
{
	struct webbridge *b = c->b;
	char query[WEBBRIDGE_HEADER_MAX];
	int qlen;

	int local = webbridge_is_local(b, wsi);

	if (!local && !webbridge_host_ok(b, wsi))
		return respond_text(c, wsi, HTTP_STATUS_FORBIDDEN, "unknown Host\n");
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return respond_text(c, wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "GET only\n");
	qlen = webbridge_header(wsi, WSI_TOKEN_HTTP_URI_ARGS, query);
	if (strcmp(uri, WEBBRIDGE_LOGIN_PATH) == 0 || (strcmp(uri, "/") == 0 && qlen > 0))
		return serve_login(c, wsi, query, qlen);
	for (size_t i = 0; i < HY_ARRAY_LEN(routes); i++) {
		if (strcmp(uri, routes[i].path) != 0)
			continue;
		if (routes[i].need_session && !local && !webbridge_has_session(b, wsi))
			return serve_refused(c, wsi, "This browser has no session with hychat.");
		return routes[i].serve(c, wsi);
	}
	if (uri[0] == '/' && strchr(uri + 1, '/') == NULL)
		for (size_t i = 0; i < b->nassets; i++)
			if (&b->assets[i] != b->page && strcmp(uri + 1, b->assets[i].name) == 0)
				return respond(c, wsi, HTTP_STATUS_OK, b->assets[i].mime,
				    b->assets[i].data, b->assets[i].len, 0, NULL, 0);
	return respond_text(c, wsi, HTTP_STATUS_NOT_FOUND, "not found\n");
}

int
webbridge_http_writeable(struct webbridge_conn *c, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + WEBBRIDGE_HTTP_CHUNK];
	size_t n;
	int last;

	if (c == NULL || c->http.body == NULL)
		return 0;
	n = c->http.len - c->http.off;
	if (n > WEBBRIDGE_HTTP_CHUNK)
		n = WEBBRIDGE_HTTP_CHUNK;
	last = c->http.off + n == c->http.len;
	memcpy(buf + LWS_PRE, c->http.body + c->http.off, n);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
	    (int)n)
		return -1;
	c->http.off += n;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	webbridge_http_done(c);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void
webbridge_http_done(struct webbridge_conn *c)
{
	if (c->http.owned)
		free(c->http.body);
	c->http.body = NULL;
	c->http.owned = 0;
	c->http.len = c->http.off = 0;
}
