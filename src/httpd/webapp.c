/* webapp.c — the handlers of hychat-httpd.
 *
 * The original design's test: GET / without a cookie is 401; the login
 * form is public; POST /login with the right form answers index.html with
 * a session cookie; GET / with it is 200. Beyond it: the cookie is a
 * random token looked up server-side, never "auth=true", and the password
 * check (Argon2id, ~100 ms) runs on libuv's thread pool.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/webapp.h"

#define WEBAPP_IP_TEXT 64 /* an address as http_conn_remote() writes it */

/* Paths anyone may fetch; every other page needs a session. */
static const char *const public_paths[] = {
	WEBAPP_LOGIN_PAGE,
	"/style.css",
	"/favicon.ico",
};

static int
is_public(const char *path)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(public_paths); i++) {
		if (strcmp(path, public_paths[i]) == 0)
			return 1;
	}
	return strncmp(path, "/public/", 8) == 0;
}

static int
session_user(struct webapp *app, const struct http_request *req, char *user)
{
	char token[SESSION_TOKEN_CHARS + 1];

	if (http_request_cookie(req, WEBAPP_COOKIE, token, sizeof(token)) != SESSION_TOKEN_CHARS)
		return -1;
	return sessions_check(app->sessions, token, hy_now_ms(), user);
}

static void
unauthorized(struct http_response *res)
{
	static const char page[] =
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>401 Unauthorized</title>"
	    "<link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><main>"
	    "<h1>401 Unauthorized</h1>\n<p>You need to log in to see this page.</p>\n"
	    "<p><a href=\"" WEBAPP_LOGIN_PAGE "\">Log in</a></p></main></body></html>\n";
	res->headers.len = 0;
	http_response_text(res, 401, "text/html; charset=utf-8", page, sizeof(page) - 1);
	http_response_header(res, "Cache-Control", "no-store");
}

/* The fallback: static files, guarded unless public. */
static void
serve_page(struct http_request *req, struct http_response *res, void *ctx)
{
	struct webapp *app = ctx;
	char user[SESSION_MAX_USER + 1];

	if (!is_public(req->path) && session_user(app, req, user) < 0) {
		unauthorized(res);
		return;
	}
	http_static_serve(app->files, req, NULL, res);
	if (!is_public(req->path) && !res->deferred)
		http_response_header(res, "Cache-Control", "private, no-cache");
}

/* The login form, with an error message where the page has a marker. */
static void
login_form(struct webapp *app, struct http_request *req, struct http_response *res, int status,
    const char *error)
{
	enum http_method m = req->method;

	req->method = HTTP_GET;
	http_static_serve(app->files, req, WEBAPP_LOGIN_PAGE, res);
	req->method = m;
	if (res->deferred || res->status != 200)
		return;
	res->status = status;
	if (res->body_ref != NULL) {
		/* a large login page came by reference: the error needs a copy */
		buf_append(&res->body, res->body_ref, res->body_ref_len);
		http_response_release_body(res);
	}
	char *mark = error != NULL && res->body.data != NULL
	    ? strstr(res->body.data, WEBAPP_ERROR_MARK)
	    : NULL;
	if (mark != NULL) {
		struct buf b;
		buf_init(&b);
		buf_append(&b, res->body.data, (size_t)(mark - res->body.data));
		buf_append_str(&b, "<p class=\"error\" role=\"alert\">");
		buf_append_html(&b, error, strlen(error));
		buf_append_str(&b, "</p>");
		buf_append_str(&b, mark + strlen(WEBAPP_ERROR_MARK));
		buf_fini(&res->body);
		res->body = b;
	}
	/* the validators describe the file, not this page */
	res->headers.len = 0;
	http_response_header(res, "Content-Type", "text/html; charset=utf-8");
	http_response_header(res, "Cache-Control", "no-store");
}

struct login_job {
	uv_work_t work;
	struct webapp *app;
	struct http_conn *conn;
	char user[HY_NAME_MAX + 1];
	char ip[WEBAPP_IP_TEXT];
	char password[USERS_MAX_PASSWORD + 1];
	int ok;
};

static void
login_work(uv_work_t *w)
{
	struct login_job *j = w->data;
	j->ok = users_verify(j->app->users, j->user, j->password);
	sodium_memzero(j->password, sizeof(j->password));
}

static void
login_done(uv_work_t *w, int status)
{
	struct login_job *j = w->data;
	struct http_conn *c = j->conn;
	struct http_request *req = http_conn_request(c);
	struct http_response res;

	login_guard_end(j->app->guard, j->ip, j->user,
	    status != 0 ? LOGIN_GUARD_VOID
	        : j->ok ? LOGIN_GUARD_SUCCESS
	                : LOGIN_GUARD_FAILURE,
	    hy_now_ms());
	http_response_init(&res);
	if (req == NULL || http_conn_closed(c)) {
		/* the client left while we hashed */
	} else if (status != 0 || !j->ok) {
		log_info("login failed for %s from %s", j->user, http_conn_remote(c));
		login_form(j->app, req, &res, 401, "Invalid username or password.");
		http_conn_respond(c, &res);
	} else {
		char token[SESSION_TOKEN_CHARS + 1];
		sessions_create(j->app->sessions, j->user, hy_now_ms(), token);
		log_info("login of %s from %s", j->user, http_conn_remote(c));
		/* the original answered the page itself, with 200 */
		enum http_method m = req->method;
		req->method = HTTP_GET;
		http_static_serve(j->app->files, req, "/index.html", &res);
		req->method = m;
		http_response_headerf(&res, "Set-Cookie",
		    WEBAPP_COOKIE "=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict%s", token,
		    j->app->ttl_s, http_conn_is_tls(c) ? "; Secure" : "");
		http_response_header(&res, "Cache-Control", "no-store");
		if (!res.deferred)
			http_conn_respond(c, &res);
	}
	http_response_fini(&res);
	http_conn_unref(c);
	free(j);
}

/* Passes the attempt through the guard; -1 (job freed) after the login
 * form with 429, or 503, and Retry-After. */
static int
login_admit(
    struct webapp *app, struct http_request *req, struct http_response *res, struct login_job *j)
{
	unsigned retry = 0;
	char msg[128];

	enum login_guard_verdict v =
	    login_guard_begin(app->guard, j->ip, j->user, hy_now_ms(), &retry);
	if (v == LOGIN_GUARD_OK)
		return 0;
	sodium_memzero(j, sizeof(*j));
	free(j);
	if (v == LOGIN_GUARD_BUSY)
		snprintf(msg, sizeof(msg), "The server is busy; try again in a moment.");
	else
		snprintf(msg, sizeof(msg), "Too many attempts; try again in %u seconds.", retry);
	login_form(app, req, res, (int)v, msg);
	if (res->deferred)
		return -1; /* a login page too large to read on the loop: as it is */
	if (res->status != (int)v)
		http_request_error(req, res, (int)v, msg);
	http_response_headerf(res, "Retry-After", "%u", retry);
	return -1;
}

static void
post_login(struct http_request *req, struct http_response *res, void *ctx)
{
	struct webapp *app = ctx;
	struct login_job *j;
	char user[HY_NAME_MAX + 1];
	size_t tlen;
	const char *type = http_request_header(req, "Content-Type", &tlen);

	if (type == NULL || tlen < 33 ||
	    !hy_strieq(type, 33, "application/x-www-form-urlencoded")) {
		http_request_error(
		    req, res, 415, "Send the login form as application/x-www-form-urlencoded.");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (http_form_get(req->body, req->body_len, "username", user, sizeof(user)) < 0 ||
	    http_form_get(req->body, req->body_len, "password", j->password, sizeof(j->password)) <
	        0 ||
	    !hy_name_valid(user, strlen(user))) {
		free(j);
		login_form(app, req, res, 401, "Invalid username or password.");
		return;
	}
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->ip, sizeof(j->ip), "%s", http_conn_remote(req->conn));
	if (login_admit(app, req, res, j) < 0)
		return;
	j->app = app;
	j->conn = http_conn_ref(req->conn);
	j->work.data = j;
	if (uv_queue_work(http_conn_loop(req->conn), &j->work, login_work, login_done) != 0) {
		login_guard_end(app->guard, j->ip, j->user, LOGIN_GUARD_VOID, hy_now_ms());
		http_conn_unref(j->conn);
		sodium_memzero(j, sizeof(*j));
		free(j);
		http_request_error(req, res, 503, NULL);
		return;
	}
	res->deferred = 1;
}

static void
post_logout(struct http_request *req, struct http_response *res, void *ctx)
{
	struct webapp *app = ctx;
	char token[SESSION_TOKEN_CHARS + 1];

	if (http_request_cookie(req, WEBAPP_COOKIE, token, sizeof(token)) == SESSION_TOKEN_CHARS)
		sessions_end(app->sessions, token);
	res->status = 303;
	http_response_header(res, "Location", WEBAPP_LOGIN_PAGE);
	http_response_headerf(res, "Set-Cookie",
	    WEBAPP_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
	    http_conn_is_tls(req->conn) ? "; Secure" : "");
	http_response_header(res, "Cache-Control", "no-store");
}

static const struct router_route webapp_routes[] = {
	{ HTTP_POST, "/login", post_login },
	{ HTTP_POST, "/logout", post_logout },
	{ 0, NULL, NULL },
};

void
webapp_init(struct webapp *app, struct http_static *files, struct users *users,
    struct sessions *sessions, struct login_guard *guard, unsigned ttl_s)
{
	app->guard = guard;
	app->files = files;
	app->users = users;
	app->sessions = sessions;
	app->ttl_s = ttl_s;
	app->router = router_new(app);
	router_add_table(app->router, webapp_routes);
	router_set_fallback(app->router, serve_page);
}
