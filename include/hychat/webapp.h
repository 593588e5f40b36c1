/* webapp.h — hychat-httpd's cookie-session site: a login form, POST
 * /login and /logout, and every page but the public ones guarded by a
 * session cookie. Static pages come from a root directory. Each POST
 * /login passes the login guard before its hash: 429 (the login form with
 * the reason) when the client's buckets are empty, 503 when the queue of
 * hashes is full, both with Retry-After.
 */
#ifndef HYCHAT_WEBAPP_H
#define HYCHAT_WEBAPP_H

#include "hychat/http_static.h"
#include "hychat/login_guard.h"
#include "hychat/router.h"
#include "hychat/session.h"
#include "hychat/users.h"

#define WEBAPP_COOKIE "hychat_session"
#define WEBAPP_SESSION_TTL_S 3600
#define WEBAPP_LOGIN_PAGE "/login.html"
#define WEBAPP_ERROR_MARK "<!--error-->"

struct webapp {
	struct http_static *files;
	struct users *users;
	struct sessions *sessions;
	unsigned ttl_s;
	struct login_guard *guard; /* admits each POST /login's hash */
	struct router *router;
};

/* Sets up the routes on a new router; the caller owns files, users,
 * sessions and guard, and frees the router with router_free(). */
void webapp_init(struct webapp *app, struct http_static *files, struct users *users,
    struct sessions *sessions, struct login_guard *guard, unsigned ttl_s);

#endif
