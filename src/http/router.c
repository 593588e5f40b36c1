/* router.c — method + path → handler, with ":name" parameters, 404, 405
 * and Allow. Patterns are split into segments once, when added. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/router.h"

#define ROUTER_MAX_SEGS 8

struct route_seg {
	const char *s;
	size_t len;
	int param;
};

struct route {
	enum http_method method;
	router_fn fn;
	size_t nsegs;
	struct route_seg segs[ROUTER_MAX_SEGS];
};

struct router {
	void *ctx;
	size_t n;
	struct route routes[ROUTER_MAX_ROUTES];
	router_fn fallback;
	void (*log)(const struct http_request *req, int status, void *ctx);
};

struct router *
router_new(void *ctx)
{
	struct router *r = xcalloc(1, sizeof(*r));
	r->ctx = ctx;
	return r;
}

void
router_free(struct router *r)
{
	free(r);
}

/* Splits "/a/:b/c" into segments; returns the count or -1 if too many. */
static int
split_path(const char *p, size_t len, struct route_seg *segs, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		while (i < len && p[i] == '/')
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && p[i] != '/')
			i++;
		if (n == max)
			return -1;
		segs[n].s = p + start;
		segs[n].len = i - start;
		segs[n].param = p[start] == ':';
		n++;
	}
	return (int)n;
}

void
router_add(struct router *r, enum http_method m, const char *pattern, router_fn fn)
{
	if (r->n == ROUTER_MAX_ROUTES)
		log_fatal(1, "router: more than %d routes", ROUTER_MAX_ROUTES);
	struct route *rt = &r->routes[r->n];
	int n = split_path(pattern, strlen(pattern), rt->segs, ROUTER_MAX_SEGS);
	if (n < 0 || pattern[0] != '/')
		log_fatal(1, "router: bad pattern %s", pattern);
	rt->nsegs = (size_t)n;
	rt->method = m;
	rt->fn = fn;
	r->n++;
}

void
router_add_table(struct router *r, const struct router_route *routes)
{
	for (; routes->pattern != NULL; routes++)
		router_add(r, routes->method, routes->pattern, routes->fn);
}

void
router_set_fallback(struct router *r, router_fn fn)
{
	r->fallback = fn;
}

void
router_set_logger(
    struct router *r, void (*log)(const struct http_request *req, int status, void *ctx))
{
	r->log = log;
}

static int
route_match(const struct route *rt, const struct route_seg *segs, size_t n)
{
	if (rt->nsegs != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (rt->segs[i].param)
			continue;
		if (rt->segs[i].len != segs[i].len ||
		    memcmp(rt->segs[i].s, segs[i].s, segs[i].len) != 0)
			return 0;
	}
	return 1;
}

static void
route_params(const struct route *rt, const struct route_seg *segs, struct http_request *req)
{
	req->num_params = 0;
	for (size_t i = 0; i < rt->nsegs && req->num_params < HY_ARRAY_LEN(req->params); i++) {
		if (!rt->segs[i].param)
			continue;
		req->params[req->num_params].name = rt->segs[i].s + 1;
		req->params[req->num_params].value = segs[i].s;
		req->params[req->num_params].value_len = segs[i].len;
		req->num_params++;
	}
}

void
router_dispatch(struct router *r, struct http_request *req, struct http_response *res)
{
	struct route_seg segs[ROUTER_MAX_SEGS];
	unsigned allowed = 0;
	int n = split_path(req->path, req->path_len, segs, ROUTER_MAX_SEGS);

	for (size_t i = 0; n >= 0 && i < r->n; i++) {
		const struct route *rt = &r->routes[i];
		if (!route_match(rt, segs, (size_t)n))
			continue;
		if (rt->method == req->method ||
		    (req->method == HTTP_HEAD && rt->method == HTTP_GET)) {
			route_params(rt, segs, req);
			rt->fn(req, res, r->ctx);
			return;
		}
		allowed |= 1u << rt->method;
	}
	if (allowed) {
		struct buf allow;
		buf_init(&allow);
		if (allowed & (1u << HTTP_GET))
			allowed |= 1u << HTTP_HEAD;
		for (int m = 0; m < HTTP_METHOD_COUNT; m++) {
			if (!(allowed & (1u << m)))
				continue;
			if (allow.len)
				buf_append_str(&allow, ", ");
			buf_append_str(&allow, http_method_name((enum http_method)m));
		}
		http_request_error(req, res, 405, NULL);
		http_response_header(res, "Allow", allow.data);
		buf_fini(&allow);
		return;
	}
	if (r->fallback != NULL)
		r->fallback(req, res, r->ctx);
	else
		http_request_error(req, res, 404, NULL);
}

/* One response per thread, reused: no allocation per request once warm. */
static pthread_key_t res_key;
static pthread_once_t res_once = PTHREAD_ONCE_INIT;

static void
res_free(void *p)
{
	http_response_fini(p);
	free(p);
}

static void
res_key_init(void)
{
	if (pthread_key_create(&res_key, res_free) != 0)
		log_fatal(1, "pthread_key_create failed");
}

static struct http_response *
thread_response(void)
{
	pthread_once(&res_once, res_key_init);
	struct http_response *res = pthread_getspecific(res_key);
	if (res == NULL) {
		res = xmalloc(sizeof(*res));
		http_response_init(res);
		pthread_setspecific(res_key, res);
	}
	http_response_reset(res);
	return res;
}

static void
router_on_request(struct http_conn *c, struct http_request *req)
{
	struct router *r = http_conn_ctx(c);
	struct http_response *res = thread_response();

	router_dispatch(r, req, res);
	if (r->log != NULL)
		r->log(req, res->deferred ? 0 : res->status, r->ctx);
	if (!res->deferred)
		http_conn_respond(c, res);
}

const struct http_handler router_http_handler = {
	.on_request = router_on_request,
};
