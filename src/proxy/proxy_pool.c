/* proxy_pool.c — what the proxy's workers share and keep: the
 * configuration in force (refcounted, so that a reload leaves requests in
 * flight on theirs), the health of each backend and the choice among
 * them, and each worker's pool of idle kept-alive backend connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "proxy_internal.h"

static struct conf_ref *
conf_ref_new(struct proxy_conf *c)
{
	struct conf_ref *r = xcalloc(1, sizeof(*r));
	r->c = c;
	atomic_init(&r->refs, 1);
	r->health = xcalloc(c->nvhosts, sizeof(*r->health));
	r->rr = xcalloc(c->nvhosts, sizeof(*r->rr));
	for (size_t i = 0; i < c->nvhosts; i++)
		r->health[i] = xcalloc(c->vhosts[i].nbackends, sizeof(**r->health));
	r->server_tls = xcalloc(c->nvhosts, sizeof(*r->server_tls));
	r->client_tls = xcalloc(c->nvhosts, sizeof(*r->client_tls));
	return r;
}

void
proxy_conf_ref_put(struct conf_ref *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	for (size_t i = 0; i < r->c->nvhosts; i++)
		free(r->health[i]);
	free(r->health);
	free(r->rr);
	free(r->server_tls);
	free(r->client_tls);
	proxy_conf_free(r->c);
	free(r);
}

/* The SNI callback, on any worker: the certificate of the host block
 * that name picks in the configuration now in force. The contexts outlive
 * every configuration (proxy_tls.h), so the pointer may leave the lock. */
static struct http_tls *
proxy_sni_pick(const char *name, void *arg)
{
	struct proxy *p = arg;
	struct http_tls *t = NULL;

	pthread_mutex_lock(&p->lock);
	const struct proxy_conf *c = p->cur->c;
	const struct proxy_vhost *v = proxy_conf_match_sni(c, name);
	if (v != NULL)
		t = p->cur->server_tls[v - c->vhosts];
	pthread_mutex_unlock(&p->lock);
	return t;
}

/* A configuration with its TLS contexts; NULL with err set. */
static struct conf_ref *
conf_ref_load(struct proxy *p, struct proxy_conf *conf, int reload, char *err, size_t errsz)
{
	struct conf_ref *r = conf_ref_new(conf);

	if (proxy_tls_resolve(p->tls, conf, reload, r->server_tls, r->client_tls, err, errsz) < 0) {
		proxy_conf_ref_put(r);
		return NULL;
	}
	return r;
}

struct proxy *
proxy_new(struct proxy_conf *conf, int access_log, char *err, size_t errsz)
{
	struct proxy *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->tls = proxy_tls_new(proxy_sni_pick, p);
	p->access_log = access_log;
	p->cur = conf_ref_load(p, conf, 0, err, errsz);
	if (p->cur == NULL) {
		proxy_free(p);
		return NULL;
	}
	return p;
}

struct http_tls *
proxy_listener_tls(struct proxy *p)
{
	return proxy_sni_pick(NULL, p);
}

void
proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	proxy_conf_ref_put(p->cur);
	for (size_t i = 0; i < p->nworkers; i++)
		free(p->workers[i]);
	proxy_tls_free(p->tls);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int
proxy_reload(struct proxy *p, struct proxy_conf *conf, char *err, size_t errsz)
{
	struct conf_ref *r = conf_ref_load(p, conf, 1, err, errsz), *old;

	if (r == NULL)
		return -1;
	pthread_mutex_lock(&p->lock);
	old = p->cur;
	p->cur = r;
	pthread_mutex_unlock(&p->lock);
	proxy_conf_ref_put(old);
	return 0;
}

void
proxy_worker_init(struct proxy *p, uv_loop_t *loop)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->p = p;
	w->loop = loop;
	loop->data = w;
	uv_check_init(loop, &w->flush);
	w->flush.data = w;
	pthread_mutex_lock(&p->lock);
	if (p->nworkers < HTTP_MAX_WORKERS)
		p->workers[p->nworkers++] = w;
	pthread_mutex_unlock(&p->lock);
}

void
proxy_worker_fini(uv_loop_t *loop)
{
	struct worker *w = loop->data;

	while (w->idle != NULL) {
		struct upstream *up = w->idle;
		w->idle = up->next;
		up->next = NULL;
		proxy_up_close(up);
	}
	uv_close((uv_handle_t *)&w->flush, NULL);
	/* w stays until proxy_free(): connections closing after this still
	 * finish their exchanges through it */
}

struct conf_ref *
proxy_conf_ref_get(struct proxy *p)
{
	pthread_mutex_lock(&p->lock);
	struct conf_ref *cr = p->cur;
	atomic_fetch_add(&cr->refs, 1);
	pthread_mutex_unlock(&p->lock);
	return cr;
}

/* Backend choice and health, under the proxy's lock. */

int
proxy_backend_pick(struct worker *w, struct conf_ref *cr, size_t vh, unsigned *tries)
{
	const struct proxy_vhost *v = &cr->c->vhosts[vh];
	struct be_state *h = cr->health[vh];
	uint64_t now = uv_now(w->loop);
	int best = -1;
	size_t n = v->nbackends;

	pthread_mutex_lock(&w->p->lock);
	for (int pass = 0; pass < 2 && best < 0; pass++) {
		/* pass 0 skips backends marked down; pass 1 tries them anyway */
		size_t start = v->policy == PROXY_RANDOM ? (size_t)rand() % n
		                                         : atomic_fetch_add(&cr->rr[vh], 1) % n;
		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % n;
			if (*tries & (1u << (i % 32)))
				continue;
			if (pass == 0 && h[i].down_until > now)
				continue;
			if (v->policy == PROXY_LEAST_CONN) {
				if (best < 0 || h[i].active < h[best].active)
					best = (int)i;
			} else {
				best = (int)i;
				break;
			}
		}
	}
	if (best >= 0) {
		h[best].active++;
		*tries |= 1u << (best % 32);
	}
	pthread_mutex_unlock(&w->p->lock);
	return best;
}

void
proxy_backend_done(struct worker *w, struct conf_ref *cr, size_t vh, int be, int failed)
{
	const struct proxy_vhost *v = &cr->c->vhosts[vh];
	struct be_state *h = &cr->health[vh][be];

	pthread_mutex_lock(&w->p->lock);
	if (h->active > 0)
		h->active--;
	if (failed) {
		if (++h->fails >= v->max_fails) {
			h->down_until = uv_now(w->loop) + v->fail_timeout_ms;
			h->fails = 0;
			log_warn("backend %s marked down for %llums", v->backends[be].name,
			    (unsigned long long)v->fail_timeout_ms);
		}
	} else {
		h->fails = 0;
	}
	pthread_mutex_unlock(&w->p->lock);
}

/* The pools. */

void
proxy_pool_remove(struct worker *w, struct upstream *up)
{
	for (struct upstream **pp = &w->idle; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == up) {
			*pp = up->next;
			up->next = NULL;
			w->nidle--;
			return;
		}
	}
}

static void
idle_timeout_cb(uv_timer_t *t)
{
	struct upstream *up = t->data;
	proxy_pool_remove(up->w, up);
	proxy_up_close(up);
}

struct upstream *
proxy_pool_take(struct worker *w, const char *be_name, const struct http_tls *tls_ctx)
{
	for (struct upstream **pp = &w->idle; *pp != NULL; pp = &(*pp)->next) {
		struct upstream *up = *pp;
		if (strcmp(up->be_name, be_name) != 0 || up->tls_ctx != tls_ctx || up->closing)
			continue;
		*pp = up->next;
		up->next = NULL;
		w->nidle--;
		uv_timer_stop(&up->timer);
		return up;
	}
	return NULL;
}

void
proxy_pool_put(struct upstream *up)
{
	struct worker *w = up->w;

	uv_timer_stop(&up->timer);
	if (!up->keepalive || up->closing || up->state != UP_BODY ||
	    w->nidle >= PROXY_MAX_IDLE_PER_BACKEND * 4 || up->in.len != 0) {
		proxy_up_close(up);
		return;
	}
	up->state = UP_IDLE;
	up->next = w->idle;
	w->idle = up;
	w->nidle++;
	proxy_up_read_start(up); /* to see the backend close it */
	uv_timer_start(&up->timer, idle_timeout_cb, PROXY_IDLE_TIMEOUT_MS, 0);
}
