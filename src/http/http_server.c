/* http_server.c — listeners, the connection cap, the timeout sweep, the
 * cached Date header, and N worker loops sharing a port with SO_REUSEPORT.
 *
 * Timeouts are enforced by one timer per server that sweeps its
 * connections a few times per shortest timeout, rather than by a timer per
 * connection: a connection then costs one handle, and the sweep of ten
 * thousand idle connections is a few microseconds.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http_internal.h"
#include "hychat/log.h"

#define HTTP_BACKLOG 511
#define HTTP_SWEEP_MIN_MS 50
#define HTTP_SWEEP_MAX_MS 1000

void
http_server_config_defaults(struct http_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = "0.0.0.0";
	cfg->port = 0;
	cfg->workers = 1;
	cfg->max_conns = HTTP_MAX_CONNS;
	cfg->max_header_bytes = HTTP_MAX_HEADER_BYTES;
	cfg->max_body_bytes = HTTP_MAX_BODY_BYTES;
	cfg->max_write_queue = HTTP_MAX_WRITE_QUEUE;
	cfg->header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
	cfg->body_timeout_ms = HTTP_BODY_TIMEOUT_MS;
	cfg->idle_timeout_ms = HTTP_IDLE_TIMEOUT_MS;
	cfg->write_timeout_ms = HTTP_WRITE_TIMEOUT_MS;
	cfg->handshake_timeout_ms = HTTP_TLS_HANDSHAKE_TIMEOUT_MS;
}

static void
server_update_date(struct http_server *s)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	s->now_ms = uv_now(s->loop);
}

static void
server_maybe_free(struct http_server *s)
{
	if (s->freeing && s->open_handles == 0 && s->nconns == 0)
		free(s);
}

static void
server_handle_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;

	s->open_handles--;
	server_maybe_free(s);
}

void
http_server_conn_gone(struct http_server *s, struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->nconns--;
	server_maybe_free(s);
}

static void
server_sweep(uv_timer_t *t)
{
	struct http_server *s = t->data;
	struct http_conn *c, *next;

	server_update_date(s);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		http_conn_sweep(c, s->now_ms);
	}
}

static void
server_accept(uv_stream_t *l, int status)
{
	struct http_server *s = l->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	struct http_conn *c = xcalloc(1, sizeof(*c));
	if (uv_tcp_init(s->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	c->srv = s;
	c->refs = 1;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
		c->closing = 1;
		uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->now_ms = uv_now(s->loop);
	http_conn_start(s, c, s->nconns > s->cfg.max_conns);
}

static int
resolve(const char *host, int port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE
	};
	struct addrinfo *res;
	char ps[8];

	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static uint64_t
sweep_interval(const struct http_server_config *cfg)
{
	uint64_t m = cfg->header_timeout_ms;
	if (cfg->body_timeout_ms < m)
		m = cfg->body_timeout_ms;
	if (cfg->idle_timeout_ms < m)
		m = cfg->idle_timeout_ms;
	if (cfg->tls != NULL && cfg->handshake_timeout_ms < m)
		m = cfg->handshake_timeout_ms;
	m /= 4;
	if (m < HTTP_SWEEP_MIN_MS)
		m = HTTP_SWEEP_MIN_MS;
	if (m > HTTP_SWEEP_MAX_MS)
		m = HTTP_SWEEP_MAX_MS;
	return m;
}

struct http_server *
http_server_new(uv_loop_t *loop, const struct http_server_config *cfg, const struct http_handler *h,
    void *ctx, const char **err)
{
	struct sockaddr_storage ss;
	int rc;

	if (resolve(cfg->host, cfg->port, &ss) < 0) {
		*err = "cannot resolve the listen address";
		return NULL;
	}
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->cfg = *cfg;
	s->h = h;
	s->ctx = ctx;
	server_update_date(s);

	uv_tcp_init_ex(loop, &s->listener, ss.ss_family);
	s->listener.data = s;
	s->open_handles++;
	if (cfg->workers > 1) {
		uv_os_fd_t fd;
		int one = 1;
		if (uv_fileno((uv_handle_t *)&s->listener, &fd) == 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, HTTP_BACKLOG, server_accept);
	if (rc < 0) {
		*err = uv_strerror(rc);
		s->freeing = 1;
		uv_close((uv_handle_t *)&s->listener, server_handle_closed);
		return NULL;
	}
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
	s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                            : ((struct sockaddr_in *)&bound)->sin_port);

	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	s->open_handles++;
	uint64_t iv = sweep_interval(cfg);
	uv_timer_start(&s->sweep, server_sweep, iv, iv);
	uv_check_init(loop, &s->batch);
	s->batch.data = s;
	s->open_handles++;
	return s;
}

int
http_server_port(const struct http_server *s)
{
	return s->port;
}

void
http_server_free(struct http_server *s)
{
	if (s == NULL || s->freeing)
		return;
	s->freeing = 1;
	http_conn_batch_flush(&s->batch);
	uv_close((uv_handle_t *)&s->listener, server_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, server_handle_closed);
	uv_close((uv_handle_t *)&s->batch, server_handle_closed);
	for (struct http_conn *c = s->conns; c != NULL; c = c->next)
		http_conn_close(c, 1);
}

/* Workers: one loop each, with a listening socket per address. */

struct worker {
	int idx;
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thread;
	struct http_server **srv; /* one per listener */
	size_t nsrv;
	struct run *run;
};

struct run {
	const struct http_server_config *cfg;
	void (*init)(int, uv_loop_t *, void *);
	void (*fini)(int, uv_loop_t *, void *);
	void *arg;
	const struct http_handler *h;
	void *ctx;
	int n;
	struct worker *w;
	uv_signal_t sigint, sigterm, sighup;
};

static void
worker_stop_cb(uv_async_t *a)
{
	struct worker *w = a->data;

	if (w->run->fini != NULL)
		w->run->fini(w->idx, &w->loop, w->run->arg);
	for (size_t i = 0; i < w->nsrv; i++) {
		http_server_free(w->srv[i]);
		w->srv[i] = NULL;
	}
	uv_close((uv_handle_t *)&w->stop, NULL);
}

static void
run_signal_cb(uv_signal_t *sig, int signum)
{
	struct run *run = sig->data;

	log_info("signal %d: stopping", signum);
	uv_close((uv_handle_t *)&run->sigint, NULL);
	uv_close((uv_handle_t *)&run->sigterm, NULL);
	uv_close((uv_handle_t *)&run->sighup, NULL);
	for (int i = 0; i < run->n; i++)
		uv_async_send(&run->w[i].stop);
}

static void
run_reload_one(struct http_tls *tls, const char *host, int port)
{
	const char *cause = NULL;

	if (tls == NULL)
		return;
	if (http_tls_reload(tls, &cause) < 0)
		log_error("SIGHUP: %s:%d keeps its old certificate: %s", host, port, cause);
	else
		log_info("SIGHUP: %s:%d certificate reloaded for new connections", host, port);
}

/* Reading two PEM files is quick enough to do on the loop; the contexts
 * are shared by every worker, so one reload serves them all. */
static void
run_sighup_cb(uv_signal_t *sig, int signum)
{
	struct run *run = sig->data;
	const struct http_server_config *cfg = run->cfg;

	(void)signum;
	run_reload_one(cfg->tls, cfg->host, cfg->port);
	for (size_t i = 0; i < cfg->nmore; i++) {
		const struct http_listen *l = &cfg->more[i];
		int seen = l->tls == cfg->tls;
		for (size_t j = 0; j < i && !seen; j++)
			seen = cfg->more[j].tls == l->tls;
		if (!seen)
			run_reload_one(l->tls, l->host, l->port);
	}
}

static int
run_has_tls(const struct http_server_config *cfg)
{
	int any = cfg->tls != NULL;
	for (size_t i = 0; i < cfg->nmore; i++)
		any |= cfg->more[i].tls != NULL;
	return any;
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
loop_finish(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop) == UV_EBUSY) {
		uv_walk(loop, close_walk_cb, NULL);
		uv_run(loop, UV_RUN_DEFAULT);
		uv_loop_close(loop);
	}
}

static void *
worker_main(void *p)
{
	loop_finish(&((struct worker *)p)->loop);
	return NULL;
}

/* Binds every listener of one worker; 0, or -1 with *err set. */
static int
worker_listen(struct worker *w, const struct http_server_config *cfg, const char **err)
{
	w->srv = xcalloc(cfg->nmore + 1, sizeof(*w->srv));
	for (size_t i = 0; i <= cfg->nmore; i++) {
		struct http_server_config one = *cfg;
		if (i > 0) {
			one.host = cfg->more[i - 1].host;
			one.port = cfg->more[i - 1].port;
			one.tls = cfg->more[i - 1].tls;
		}
		one.more = NULL;
		one.nmore = 0;
		w->srv[i] = http_server_new(&w->loop, &one, w->run->h, w->run->ctx, err);
		if (w->srv[i] == NULL)
			return -1;
		w->nsrv = i + 1;
	}
	return 0;
}

int
http_server_run(const struct http_server_config *cfg, const struct http_handler *h, void *ctx,
    void (*init)(int worker, uv_loop_t *loop, void *arg),
    void (*fini)(int worker, uv_loop_t *loop, void *arg), void *arg, const char **err)
{
	struct run run = { .cfg = cfg, .init = init, .fini = fini, .arg = arg, .h = h, .ctx = ctx };
	int n = cfg->workers < 1              ? 1
	    : cfg->workers > HTTP_MAX_WORKERS ? HTTP_MAX_WORKERS
	                                      : cfg->workers;

	signal(SIGPIPE, SIG_IGN);
	run.n = n;
	run.w = xcalloc((size_t)n, sizeof(*run.w));
	/* Bind every worker's sockets here, so a taken port fails the start. */
	for (int i = 0; i < n; i++) {
		struct worker *w = &run.w[i];
		w->idx = i;
		w->run = &run;
		uv_loop_init(&w->loop);
		if (worker_listen(w, cfg, err) < 0) {
			for (int j = 0; j <= i; j++) {
				for (size_t k = 0; k < run.w[j].nsrv; k++)
					http_server_free(run.w[j].srv[k]);
				loop_finish(&run.w[j].loop);
				free(run.w[j].srv);
			}
			free(run.w);
			return 1;
		}
		uv_async_init(&w->loop, &w->stop, worker_stop_cb);
		w->stop.data = w;
		if (init != NULL)
			init(i, &w->loop, arg);
	}
	uv_signal_init(&run.w[0].loop, &run.sigint);
	uv_signal_init(&run.w[0].loop, &run.sigterm);
	uv_signal_init(&run.w[0].loop, &run.sighup);
	run.sigint.data = run.sigterm.data = run.sighup.data = &run;
	uv_signal_start(&run.sigint, run_signal_cb, SIGINT);
	uv_signal_start(&run.sigterm, run_signal_cb, SIGTERM);
	if (run_has_tls(cfg))
		uv_signal_start(&run.sighup, run_sighup_cb, SIGHUP);

	for (int i = 1; i < n; i++) {
		if (pthread_create(&run.w[i].thread, NULL, worker_main, &run.w[i]) != 0)
			log_fatal(1, "cannot start worker thread: %s", strerror(errno));
	}
	loop_finish(&run.w[0].loop);
	for (int i = 1; i < n; i++)
		pthread_join(run.w[i].thread, NULL);
	for (int i = 0; i < n; i++)
		free(run.w[i].srv);
	free(run.w);
	return 0;
}
