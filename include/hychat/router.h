/* router.h — method + path → handler ("WeApRous" of the original design).
 *
 * Routes are patterns of literal segments and ":name" parameters
 * ("/users/:name"). A request that matches a pattern but not its method
 * gets 405 with an Allow header; one that matches nothing goes to the
 * fallback handler, or gets 404. Handlers run on the loop and answer
 * synchronously by filling res, which the router sends.
 */
#ifndef HYCHAT_ROUTER_H
#define HYCHAT_ROUTER_H

#include "hychat/http_server.h"

#define ROUTER_MAX_ROUTES 64

typedef void (*router_fn)(struct http_request *req, struct http_response *res, void *ctx);

struct router_route {
	enum http_method method;
	const char *pattern;
	router_fn fn;
};

struct router;

/* ctx is passed to every handler. */
struct router *router_new(void *ctx);
void router_free(struct router *r);
/* Adds a route; aborts at start if the table is full or the pattern bad. */
void router_add(struct router *r, enum http_method m, const char *pattern, router_fn fn);
/* Adds a static table of routes, ended by an entry with pattern NULL. */
void router_add_table(struct router *r, const struct router_route *routes);
/* Handles what no route matches (e.g. static files); NULL for 404. */
void router_set_fallback(struct router *r, router_fn fn);
/* Called after each response with the request and status (access log). */
void router_set_logger(
    struct router *r, void (*log)(const struct http_request *req, int status, void *ctx));

/* The struct http_handler to pass to http_server_new() together with the
 * router itself as the server's ctx. */
extern const struct http_handler router_http_handler;

/* Dispatches one request (what router_http_handler does). */
void router_dispatch(struct router *r, struct http_request *req, struct http_response *res);

#endif
