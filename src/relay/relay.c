/* relay.c — hychat-relay's connections: the token line, the wait for the
 * partner, the splice with its backpressure and per-user limits, and the
 * sweep that enforces every timeout.
 *
 * Teardown has one path per connection: conn_close() (now) or
 * conn_finish() (after what is queued toward it is written); the close
 * callback frees it. */
#include "hychat/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hychat/log.h"
#include "hychat/util.h"

#define RELAY_IP_MAX 64
#define RELAY_LISTEN_BACKLOG 512
#define RELAY_FINISH_MS 5000 /* a closing side's queue gets this long to drain */
#define RELAY_USED_MAX 65536 /* token halves remembered until they expire */

enum conn_state {
	C_TOKEN, /* reading the token line */
	C_WAIT, /* verified, waiting for the partner, not read */
	C_SPLICED,
	C_FINISHING, /* shut down after its queue, then closed */
	C_CLOSING,
};

struct ruser {
	char name[RELAY_TOKEN_NAME_MAX + 1];
	size_t conns;
	int64_t tokens; /* bytes it may still send this second */
	struct ruser *next;
};

struct conn {
	uv_tcp_t tcp;
	uv_shutdown_t shut; /* conn_finish() only */
	struct relay *r;
	enum conn_state state;
	char ip[RELAY_IP_MAX];
	char line[RELAY_TOKEN_LINE_MAX];
	size_t linelen, lineused;
	struct relay_token tok;
	struct ruser *user;
	struct conn *partner;
	uint64_t deadline; /* token, pairing or finishing */
	uint64_t last_ms; /* last byte either way */
	int reading;
	int throttled; /* its user's bytes are spent */
	int blocked; /* its partner's queue is full */
	struct conn *prev, *next;
};

struct used {
	char id[RELAY_TOKEN_ID_HEX + 1];
	char from[RELAY_TOKEN_NAME_MAX + 1];
	uint64_t expiry;
};

struct relay {
	uv_loop_t *loop;
	struct relay_config cfg;
	uv_tcp_t listener;
	uv_timer_t sweep;
	int handles;
	int freeing;
	struct conn *conns;
	struct ruser *users;
	struct used *used;
	size_t nused;
	uint64_t last_refill;
	struct relay_stats st;
};

struct wreq {
	uv_write_t req;
	struct conn *from; /* whose bytes: resumed when the queue drains */
	char data[];
};

static char chunk[RELAY_READ_CHUNK];

static void conn_close(struct conn *c, const char *why);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

static void
maybe_free(struct relay *r)
{
	if (r->freeing && r->handles == 0 && r->conns == NULL) {
		free(r->used);
		while (r->users != NULL) {
			struct ruser *u = r->users;
			r->users = u->next;
			free(u);
		}
		free(r);
	}
}

/* Users. */

static struct ruser *
user_get(struct relay *r, const char *name)
{
	struct ruser *u;

	for (u = r->users; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	u = xcalloc(1, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->tokens = (int64_t)r->cfg.user_rate;
	u->next = r->users;
	r->users = u;
	return u;
}

static void
user_put(struct relay *r, struct ruser *u)
{
	if (--u->conns > 0)
		return;
	for (struct ruser **pp = &r->users; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			free(u);
			return;
		}
	}
}

/* Token halves already taken. */

static int
used_take(struct relay *r, const struct relay_token *t)
{
	for (size_t i = 0; i < r->nused; i++)
		if (strcmp(r->used[i].id, t->id) == 0 && strcmp(r->used[i].from, t->from) == 0)
			return -1;
	if (r->nused >= RELAY_USED_MAX)
		return -1; /* full of live tokens: refuse rather than forget */
	struct used *u = &r->used[r->nused++];
	snprintf(u->id, sizeof(u->id), "%s", t->id);
	snprintf(u->from, sizeof(u->from), "%s", t->from);
	u->expiry = t->expiry;
	return 0;
}

static void
used_prune(struct relay *r, uint64_t now_s)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nused; i++)
		if (r->used[i].expiry >= now_s)
			r->used[k++] = r->used[i];
	r->nused = k;
}

/* Teardown. */

static void
on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct relay *r = c->r;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	r->st.conns--;
	free(c);
	maybe_free(r);
}

static void
detach(struct conn *c)
{
	if (c->user != NULL) {
		user_put(c->r, c->user);
		c->user = NULL;
	}
	if (c->state == C_WAIT)
		c->r->st.waiting--;
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	(void)status;
	if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
		c->state = C_CLOSING;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

/* Closes c once the bytes queued toward it are written (its partner is
 * gone). */
static void
conn_finish(struct conn *c)
{
	if (c->state == C_FINISHING || c->state == C_CLOSING)
		return;
	detach(c);
	c->partner = NULL;
	c->state = C_FINISHING;
	c->deadline = hy_now_ms() + RELAY_FINISH_MS;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
		c->state = C_CLOSING;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

static void
conn_close(struct conn *c, const char *why)
{
	struct conn *p = c->partner;

	if (c->state == C_CLOSING)
		return;
	if (why != NULL)
		log_debug(
		    "relay %s%s%s: closed: %s", c->ip, c->tok.from[0] ? " " : "", c->tok.from, why);
	if (c->state != C_FINISHING)
		detach(c);
	c->state = C_CLOSING;
	c->partner = NULL;
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	if (p != NULL)
		conn_finish(p);
}

/* Refuses c with one line saying why (best effort), then closes it. */
static void
conn_refuse(struct conn *c, const char *why)
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "ERR %s\n", why);
	uv_buf_t b = uv_buf_init(msg, (unsigned)n);

	c->r->st.refused++;
	log_info("relay %s%s%s: refused: %s", c->ip, c->tok.from[0] ? " " : "", c->tok.from, why);
	(void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	conn_close(c, NULL);
}

/* Reading, with the reasons not to. */

static void
update_reading(struct conn *c)
{
	/* A waiting half is read into what is left of its line buffer, so
	 * that its hanging up is seen; no further. */
	int want = c->state == C_TOKEN || (c->state == C_WAIT && c->linelen < sizeof(c->line)) ||
	    (c->state == C_SPLICED && !c->throttled && !c->blocked);

	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = 1;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = 0;
	}
}

/* The splice. */

static void
on_written(uv_write_t *req, int status)
{
	struct wreq *w = req->data;
	struct conn *to = (struct conn *)req->handle->data, *from = w->from;

	free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			conn_close(to, uv_strerror(status));
		return;
	}
	if (from != NULL && to->partner == from && from->blocked &&
	    to->tcp.write_queue_size <= RELAY_BUF_MAX / 2) {
		from->blocked = 0;
		update_reading(from);
	}
}

/* Sends bytes from "from" to "to": now if the socket takes them, the rest
 * queued; a full queue stops reading "from". */
static void
forward(struct conn *from, struct conn *to, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int n = 0;

	if (len == 0)
		return;
	if (to->tcp.write_queue_size == 0) {
		n = uv_try_write((uv_stream_t *)&to->tcp, &b, 1);
		if (n == UV_EAGAIN)
			n = 0;
		if (n < 0) {
			conn_close(to, uv_strerror(n));
			return;
		}
		if ((size_t)n == len)
			return;
	}
	struct wreq *w = xmalloc(sizeof(*w) + len - (size_t)n);
	memcpy(w->data, data + n, len - (size_t)n);
	w->from = from;
	w->req.data = w;
	b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
	if (uv_write(&w->req, (uv_stream_t *)&to->tcp, &b, 1, on_written) != 0) {
		free(w);
		conn_close(to, "write failed");
		return;
	}
	if (to->tcp.write_queue_size > RELAY_BUF_MAX) {
		from->blocked = 1;
		update_reading(from);
	}
}

static void
pair_up(struct conn *a, struct conn *b)
{
	struct relay *r = a->r;
	uint64_t now = hy_now_ms();

	r->st.waiting--; /* a waited */
	a->partner = b;
	b->partner = a;
	a->state = b->state = C_SPLICED;
	a->last_ms = b->last_ms = now;
	r->st.spliced++;
	log_info("relay: %s (%s) and %s (%s) spliced", a->tok.from, a->ip, b->tok.from, b->ip);
	/* What each sent after its line goes first. */
	forward(a, b, a->line + a->lineused, a->linelen - a->lineused);
	if (a->state == C_SPLICED && b->state == C_SPLICED)
		forward(b, a, b->line + b->lineused, b->linelen - b->lineused);
	if (a->state == C_SPLICED)
		update_reading(a);
	if (b->state == C_SPLICED)
		update_reading(b);
}

static struct conn *
find_partner(struct relay *r, const struct conn *c)
{
	for (struct conn *o = r->conns; o != NULL; o = o->next)
		if (o->state == C_WAIT && strcmp(o->tok.id, c->tok.id) == 0 &&
		    strcmp(o->tok.from, c->tok.to) == 0 && strcmp(o->tok.to, c->tok.from) == 0)
			return o;
	return NULL;
}

static void
take_token(struct conn *c)
{
	struct relay *r = c->r;
	const char *why = NULL;
	size_t used = 0;
	int rc = relay_token_parse(c->line, c->linelen, &c->tok, &used, &why);

	if (rc == 0)
		return;
	if (rc < 0) {
		memset(&c->tok, 0, sizeof(c->tok));
		conn_refuse(c, why);
		return;
	}
	c->lineused = used;
	why = relay_token_check(&c->tok, c->line, r->cfg.key, (uint64_t)time(NULL));
	if (why != NULL) {
		conn_refuse(c, why);
		return;
	}
	struct ruser *u = user_get(r, c->tok.from);
	u->conns++;
	c->user = u;
	if (u->conns > r->cfg.user_conns) {
		conn_refuse(c, "too many relayed connections for this user");
		return;
	}
	if (used_take(r, &c->tok) < 0) {
		conn_refuse(c, "token already used");
		return;
	}
	struct conn *p = find_partner(r, c);
	if (p != NULL) {
		pair_up(p, c);
		return;
	}
	c->state = C_WAIT;
	r->st.waiting++;
	c->deadline = hy_now_ms() + RELAY_PAIR_MS;
	update_reading(c);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->state == C_TOKEN || c->state == C_WAIT) {
		b->base = c->line + c->linelen;
		b->len = sizeof(c->line) - c->linelen;
	} else {
		b->base = chunk;
		b->len = sizeof(chunk);
	}
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data, *p;

	if (n == 0)
		return;
	if (n < 0) {
		/* The partner gets what is queued toward it, then its end. */
		conn_close(c, n == UV_EOF ? "closed by the peer" : uv_strerror((int)n));
		return;
	}
	if (c->state == C_TOKEN) {
		c->linelen += (size_t)n;
		take_token(c);
		return;
	}
	if (c->state == C_WAIT) {
		c->linelen += (size_t)n;
		update_reading(c);
		return;
	}
	if (c->state != C_SPLICED)
		return;
	p = c->partner;
	c->last_ms = p->last_ms = hy_now_ms();
	c->r->st.bytes += (uint64_t)n;
	c->user->tokens -= n;
	forward(c, p, b->base, (size_t)n);
	if (c->state == C_SPLICED && c->user->tokens <= 0) {
		c->throttled = 1;
		update_reading(c);
	}
}

/* The sweep: timeouts, and bytes per second given back. */

static void
refill(struct relay *r, uint64_t now)
{
	uint64_t dt = now - r->last_refill;
	int64_t add = (int64_t)(r->cfg.user_rate * dt / 1000);

	if (add <= 0)
		return;
	r->last_refill = now;
	for (struct ruser *u = r->users; u != NULL; u = u->next) {
		u->tokens += add;
		if (u->tokens > (int64_t)r->cfg.user_rate)
			u->tokens = (int64_t)r->cfg.user_rate;
	}
}

static void
on_sweep(uv_timer_t *t)
{
	struct relay *r = t->data;
	uint64_t now = hy_now_ms();

	refill(r, now);
	used_prune(r, (uint64_t)time(NULL));
	for (struct conn *c = r->conns, *next; c != NULL; c = next) {
		next = c->next;
		/* A partner closed here is later in the list or already
		 * handled: conn_close() never frees before the callback. */
		switch (c->state) {
		case C_TOKEN:
			if (now >= c->deadline)
				conn_refuse(c, "no token in time");
			break;
		case C_WAIT:
			if (now >= c->deadline)
				conn_refuse(c, "the other side never came");
			break;
		case C_SPLICED:
			if (now - c->last_ms >= r->cfg.idle_ms) {
				conn_close(c, "idle");
				break;
			}
			if (c->throttled && c->user->tokens > 0) {
				c->throttled = 0;
				update_reading(c);
			}
			break;
		case C_FINISHING:
			if (now >= c->deadline)
				conn_close(c, "its queue did not drain");
			break;
		case C_CLOSING: break;
		}
	}
}

/* The listener. */

static size_t
early_from(const struct relay *r, const char *ip)
{
	size_t n = 0;

	for (const struct conn *c = r->conns; c != NULL; c = c->next)
		if (c->state == C_TOKEN && strcmp(c->ip, ip) == 0)
			n++;
	return n;
}

static void
read_ip(struct conn *c)
{
	struct sockaddr_storage sa;
	int len = sizeof(sa);

	snprintf(c->ip, sizeof(c->ip), "?");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
		return;
	if (sa.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&sa, c->ip, sizeof(c->ip));
	else if (sa.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&sa, c->ip, sizeof(c->ip));
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct relay *r = server->data;
	struct conn *c;

	if (status < 0) {
		log_warn("relay port: %s", uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->r = r;
	c->state = C_TOKEN;
	uv_tcp_init(r->loop, &c->tcp);
	c->tcp.data = c;
	c->next = r->conns;
	if (r->conns != NULL)
		r->conns->prev = c;
	r->conns = c;
	r->st.conns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c, "accept failed");
		return;
	}
	r->st.accepted++;
	read_ip(c);
	if (r->st.conns > r->cfg.max_conns) {
		conn_refuse(c, "relay full");
		return;
	}
	if (early_from(r, c->ip) >= RELAY_IP_EARLY_MAX) {
		conn_refuse(c, "too many connections from this address");
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 30);
	c->deadline = hy_now_ms() + RELAY_TOKEN_MS;
	update_reading(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct relay *r = h->data;

	r->handles--;
	maybe_free(r);
}

void
relay_config_defaults(struct relay_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = "0.0.0.0";
	cfg->max_conns = RELAY_MAX_CONNS_DEFAULT;
	cfg->user_conns = RELAY_USER_CONNS_DEFAULT;
	cfg->user_rate = RELAY_USER_RATE_DEFAULT;
	cfg->idle_ms = RELAY_IDLE_MS_DEFAULT;
}

struct relay *
relay_new(uv_loop_t *loop, const struct relay_config *cfg, char **cause)
{
	struct relay *r = xcalloc(1, sizeof(*r));
	struct sockaddr_storage sa;
	int rc;

	r->loop = loop;
	r->cfg = *cfg;
	r->used = xcalloc(RELAY_USED_MAX, sizeof(*r->used));
	r->last_refill = hy_now_ms();
	uv_tcp_init(loop, &r->listener);
	r->listener.data = r;
	uv_timer_init(loop, &r->sweep);
	r->sweep.data = r;
	r->handles = 2;
	if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&sa) != 0)
		rc = UV_EINVAL;
	else if ((rc = uv_tcp_bind(&r->listener, (struct sockaddr *)&sa, 0)) == 0)
		rc = uv_listen((uv_stream_t *)&r->listener, RELAY_LISTEN_BACKLOG, on_connection);
	if (rc != 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "listen on %s port %d: %s", cfg->host, cfg->port, uv_strerror(rc));
		*cause = b.data;
		relay_free(r);
		return NULL;
	}
	uv_timer_start(&r->sweep, on_sweep, RELAY_SWEEP_MS, RELAY_SWEEP_MS);
	return r;
}

void
relay_free(struct relay *r)
{
	if (r == NULL || r->freeing)
		return;
	r->freeing = 1;
	uv_timer_stop(&r->sweep);
	uv_close((uv_handle_t *)&r->listener, on_handle_closed);
	uv_close((uv_handle_t *)&r->sweep, on_handle_closed);
	for (struct conn *c = r->conns; c != NULL; c = c->next) {
		c->partner = NULL;
		conn_close(c, NULL);
	}
}

void
relay_get_stats(const struct relay *r, struct relay_stats *out)
{
	*out = r->st;
}

int
relay_port(const struct relay *r)
{
	struct sockaddr_storage sa;
	int len = sizeof(sa);

	if (uv_tcp_getsockname(&r->listener, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	if (sa.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&sa)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
}
