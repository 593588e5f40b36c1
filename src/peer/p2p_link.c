/* p2p_link.c — one link: the socket, its bounded output, the handshake
 * state machine, and the messages in and out, encrypted (the crypto
 * modules' Noise XX and frames) or in the original plaintext protocol.
 *
 * Teardown has one path: p2p_link_close() closes the three handles, and the
 * last close callback tells the owner and frees the link. */
#include "hychat/p2p_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/noise.h"
#include "hychat/p2p_frame.h"
#include "hychat/util.h"

#define P2P_LINK_IP_MAX 64
#define P2P_LINK_REASON_MAX 128
#define P2P_LINK_HANDLES 3 /* the socket, the timer (handshake, then keepalive), the flush idle */
/* Before a link is up no frame or object is larger than a Noise message,
 * and nothing legitimate waits unparsed beyond one of them: 40 sockets of
 * a flood hold 2.6 MB at most, not the 20 MB of frames of an up link. */
#define P2P_LINK_EARLY_FRAME NOISE_MAX_MESSAGE
#define P2P_LINK_EARLY_MAX (P2P_FRAME_HEADER + P2P_LINK_EARLY_FRAME)

struct out_write {
	uv_write_t req;
	struct p2p_link *l;
	char *data;
	size_t len;
};

/* A bulk message (a file chunk) waiting its turn, not yet sealed: it is
 * sealed when it goes to the socket, so that the messages queued after it
 * can still go first. */
struct bulk {
	struct bulk *next;
	size_t len;
	uint8_t data[];
};

struct p2p_link {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_idle_t flush;
	uv_connect_t connect;
	int open_handles;
	const struct p2p_link_params *p;
	void *data;

	enum p2p_link_state state;
	int dialed;
	int plaintext; /* the original protocol */
	int sniffed; /* a listener has seen the first byte */
	int parsing; /* handle_input() is on the stack */
	int allow_plaintext;
	char user[HY_NAME_MAX + 1];
	char ip[P2P_LINK_IP_MAX];
	char reason[P2P_LINK_REASON_MAX];

	struct buf in; /* bytes read and not yet parsed */
	/* A frame sealed, and one opened: kept for their capacity, since a
	 * buffer of 128 KiB or more allocated and freed per frame is an mmap
	 * and a munmap each (a file chunk is 64 KiB). */
	struct buf sealed, plain;
	struct buf out; /* bytes not yet handed to libuv */
	size_t in_flight;
	struct bulk *bulk, **bulk_tail; /* behind out, sent while in_flight is low */
	size_t bulk_bytes;

	struct noise_handshake *hs;
	struct p2p_frame_state *fs; /* after the handshake */
	struct p2p_json_stream *js; /* the plaintext decoder */
	struct json_tokener *tok; /* for decrypted frames */
	uint8_t remote_key[IDENTITY_PUBLIC_BYTES];
	int has_key;

	/* Through a hychat-relay: its HOST:PORT, and the token line sent first. */
	char via[P2P_LINK_VIA_MAX];
	char *token;
	int punched; /* a simultaneous open from our listening port */
	uint64_t last_out_ms; /* the last frame sent, for keepalives */
};

/* One read buffer for every link: the loop reads one socket at a time, and
 * what a read leaves unparsed is copied into the link. */
static char read_chunk[P2P_LINK_READ_CHUNK];

static void handle_input(struct p2p_link *l);
static void parse_input(struct p2p_link *l);
static void on_keepalive(uv_timer_t *t);
static void on_flush(uv_idle_t *i);
static int send_frame(struct p2p_link *l, const char *json, size_t len, int now);

/* Teardown. */

static void
on_closed(uv_handle_t *h)
{
	struct p2p_link *l = h->data;

	if (--l->open_handles > 0)
		return;
	l->p->ops->closed(l->p->owner, l, l->reason);
	noise_handshake_free(l->hs);
	p2p_frame_state_free(l->fs);
	p2p_json_stream_free(l->js);
	if (l->tok != NULL)
		json_tokener_free(l->tok);
	buf_fini(&l->in);
	buf_fini(&l->out);
	buf_fini(&l->sealed);
	buf_fini(&l->plain);
	while (l->bulk != NULL) {
		struct bulk *b = l->bulk;
		l->bulk = b->next;
		free(b);
	}
	if (l->token != NULL) {
		sodium_memzero(l->token, strlen(l->token));
		free(l->token);
	}
	free(l);
}

void
p2p_link_close(struct p2p_link *l, const char *reason)
{
	if (l->state == P2P_LINK_CLOSING)
		return;
	if (l->state == P2P_LINK_UP || l->user[0] != '\0')
		log_info("link %s (%s): closed: %s", l->user[0] ? l->user : "?", l->ip, reason);
	else
		log_debug("link from %s: closed: %s", l->ip, reason);
	l->state = P2P_LINK_CLOSING;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
	uv_read_stop((uv_stream_t *)&l->tcp);
	uv_timer_stop(&l->timer);
	uv_idle_stop(&l->flush);
	uv_close((uv_handle_t *)&l->tcp, on_closed);
	uv_close((uv_handle_t *)&l->timer, on_closed);
	uv_close((uv_handle_t *)&l->flush, on_closed);
}

/* Output. */

static void
on_written(uv_write_t *req, int status)
{
	struct out_write *w = req->data;
	struct p2p_link *l = w->l;

	l->in_flight -= w->len;
	free(w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		p2p_link_close(l, uv_strerror(status));
	else if (l->bulk != NULL && l->state != P2P_LINK_CLOSING)
		uv_idle_start(&l->flush, on_flush);
}

/* Writes buf now if the socket takes it, queues the rest. */
static void
write_now(struct p2p_link *l, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int n = 0;

	if (l->state == P2P_LINK_CLOSING || len == 0)
		return;
	if (l->in_flight == 0) {
		n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
		if (n == UV_EAGAIN)
			n = 0;
		if (n < 0) {
			p2p_link_close(l, uv_strerror(n));
			return;
		}
		if ((size_t)n == len)
			return;
	}
	struct out_write *w = xcalloc(1, sizeof(*w));
	w->l = l;
	w->len = len - (size_t)n;
	w->data = xmalloc(w->len);
	memcpy(w->data, data + n, w->len);
	w->req.data = w;
	b = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_written) != 0) {
		free(w->data);
		free(w);
		p2p_link_close(l, "write failed");
		return;
	}
	l->in_flight += w->len;
}

/* Bulk messages go once the messages queued before the turn are out, and
 * only while libuv holds less than P2P_LINK_BULK_INFLIGHT: a message
 * queued meanwhile waits behind that much at most, not the whole file. */
static void
pump_bulk(struct p2p_link *l)
{
	while (l->bulk != NULL && l->out.len == 0 && l->in_flight < P2P_LINK_BULK_INFLIGHT &&
	    l->state == P2P_LINK_UP) {
		struct bulk *b = l->bulk;
		if ((l->bulk = b->next) == NULL)
			l->bulk_tail = &l->bulk;
		l->bulk_bytes -= b->len;
		send_frame(l, (const char *)b->data, b->len, 1);
		free(b);
	}
}

static void
on_flush(uv_idle_t *i)
{
	struct p2p_link *l = i->data;

	uv_idle_stop(i);
	if (l->out.len > 0) {
		write_now(l, l->out.data, l->out.len);
		buf_consume(&l->out, l->out.len);
	}
	pump_bulk(l);
}

void
p2p_link_flush(struct p2p_link *l)
{
	if (l->state == P2P_LINK_CLOSING || l->out.len == 0)
		return;
	write_now(l, l->out.data, l->out.len);
	buf_consume(&l->out, l->out.len);
	if (l->bulk == NULL && l->state != P2P_LINK_CLOSING)
		uv_idle_stop(&l->flush);
}

/* Queues bytes for the end of the turn (p2p_link_flush) or the next turn
 * of the loop, so that a burst of messages costs one write. */
static int
queue_out(struct p2p_link *l, const char *data, size_t len)
{
	if (l->out.len + l->bulk_bytes + l->in_flight + len > P2P_LINK_OUT_MAX) {
		p2p_link_close(l, "peer too slow: output queue full");
		return -1;
	}
	buf_append(&l->out, data, len);
	uv_idle_start(&l->flush, on_flush);
	return 0;
}

/* Encrypted frames and plaintext objects. */

static int
send_frame(struct p2p_link *l, const char *json, size_t len, int now)
{
	struct buf *f = &l->sealed;
	int rc = 0;

	f->len = 0;
	if (p2p_frame_seal(l->fs, (const uint8_t *)json, len, f) < 0) {
		p2p_link_close(l, "cannot encrypt");
		return -1;
	}
	if (now)
		write_now(l, f->data, f->len);
	else
		rc = queue_out(l, f->data, f->len);
	l->last_out_ms = hy_now_ms();
	return rc;
}

/* The original reads each segment as one object: one write each, now. */
static int
send_plain(struct p2p_link *l, const char *json, size_t len)
{
	if (l->in_flight + len > P2P_LINK_OUT_MAX) {
		p2p_link_close(l, "peer too slow: output queue full");
		return -1;
	}
	write_now(l, json, len);
	return 0;
}

/* Our {"type":type,"username"} object, owned by the caller. */
static struct json_object *
hello_new(struct p2p_link *l, const char *type)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "username", json_object_new_string(l->p->username));
	return o;
}

static void
send_hello(struct p2p_link *l, const char *type, int now)
{
	struct json_object *o = hello_new(l, type);
	size_t len;
	const char *json = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);

	if (l->plaintext)
		send_plain(l, json, len);
	else
		send_frame(l, json, len, now);
	json_object_put(o);
}

static void
go_up(struct p2p_link *l)
{
	l->state = P2P_LINK_UP;
	if (l->js != NULL)
		p2p_json_stream_raise_max(l->js, P2P_LINK_PLAIN_MAX);
	uv_timer_stop(&l->timer);
	/* Only where both ends are sure to skip it: a relayed or punched
	 * link needs this version at both ends; an older hychat/2 peer would
	 * close a direct link on an empty frame. TCP keepalives serve those. */
	if (!l->plaintext && (l->via[0] != '\0' || l->punched))
		uv_timer_start(
		    &l->timer, on_keepalive, P2P_LINK_KEEPALIVE_MS, P2P_LINK_KEEPALIVE_MS);
	l->p->ops->up(l->p->owner, l);
}

/* The "username" of a handshake object, checked; NULL if absent or bad. */
static const char *
hello_user(struct json_object *o, const char *type)
{
	struct json_object *t, *u;
	const char *s;

	if (!json_object_object_get_ex(o, "type", &t) ||
	    !json_object_is_type(t, json_type_string) ||
	    strcmp(json_object_get_string(t), type) != 0 ||
	    !json_object_object_get_ex(o, "username", &u) ||
	    !json_object_is_type(u, json_type_string))
		return NULL;
	s = json_object_get_string(u);
	if (!hy_name_valid(s, strlen(s)))
		return NULL;
	return s;
}

/* A message once the handshake is over; during it, the handshake objects. */
static void
take_object(struct p2p_link *l, struct json_object *o)
{
	const char *user;

	switch (l->state) {
	case P2P_LINK_UP: l->p->ops->message(l->p->owner, l, o); return;
	case P2P_LINK_HANDSHAKE:
		/* Plaintext only: the listener hears "handshake", the dialer
		 * "handshake_ack". */
		user = hello_user(o, l->dialed ? "handshake_ack" : "handshake");
		if (user == NULL) {
			p2p_link_close(l, "expected a handshake");
			return;
		}
		if (!l->dialed)
			snprintf(l->user, sizeof(l->user), "%s", user);
		else if (strcmp(user, l->user) != 0)
			log_warn("%s answers as %s: keeping %s", l->ip, user, l->user);
		l->state = P2P_LINK_VERIFY;
		l->p->ops->verify(l->p->owner, l, l->user, NULL, 0);
		return;
	case P2P_LINK_READY:
		user = hello_user(o, "handshake_ack");
		if (user == NULL || strcmp(user, l->user) != 0) {
			p2p_link_close(l, "expected handshake_ack from the dialed user");
			return;
		}
		go_up(l);
		return;
	default: p2p_link_close(l, "unexpected message during the handshake");
	}
}

static void
take_plain(struct p2p_link *l)
{
	struct json_object *o;
	const char *err = NULL;
	int rc;

	while (l->state != P2P_LINK_CLOSING && l->state != P2P_LINK_VERIFY &&
	    (rc = p2p_json_stream_next(l->js, &l->in, &o, &err)) != 0) {
		if (rc < 0) {
			p2p_link_close(l, err != NULL ? err : "malformed JSON");
			return;
		}
		take_object(l, o);
		json_object_put(o);
	}
}

/* The dialer's handshake object, the payload of the third message (so
 * that it travels encrypted): the listener's claimed user, or -1. */
static int
take_dialer_hello(struct p2p_link *l, const struct buf *payload)
{
	struct json_object *o = payload->len > 0 ? json_tokener_parse(payload->data) : NULL;
	const char *user = o != NULL ? hello_user(o, "handshake") : NULL;

	if (user != NULL)
		snprintf(l->user, sizeof(l->user), "%s", user);
	json_object_put(o);
	return user != NULL ? 0 : -1;
}

/* The listener's answer to the first message: the second, without a
 * payload. An older hychat put its name in the first, in clear; its
 * prologue differs too, so it could not go on anyway. NULL, or why the
 * link must close. */
static const char *
answer_first(struct p2p_link *l, struct buf *payload)
{
	if (payload->len > 0) {
		log_info("link from %s: refused: it speaks a protocol older than %s", l->ip,
		    NOISE_PROLOGUE);
		return "the dialer speaks an older hychat protocol (upgrade it)";
	}
	if (noise_handshake_write(l->hs, NULL, 0, payload) < 0)
		return "handshake failed";
	write_now(l, payload->data, payload->len);
	return NULL;
}

/* The Noise handshake: the first message carries nothing but the dialer's
 * ephemeral key; the dialer checks the listener's key after the second;
 * the third carries the dialer's key and its handshake object, both
 * encrypted, and the listener checks them. Nobody watching the wire learns
 * who dials whom. */
static void
take_handshake(struct p2p_link *l, const uint8_t *msg, size_t len)
{
	int first = !l->dialed && l->hs == NULL;
	struct buf payload;
	const char *why = NULL;

	if (first && (l->hs = noise_handshake_new(l->p->id, 0)) == NULL) {
		p2p_link_close(l, "cannot start a handshake");
		return;
	}
	buf_init(&payload);
	if (noise_handshake_read(l->hs, msg, len, &payload) < 0)
		why = "handshake failed";
	else if (first)
		why = answer_first(l, &payload);
	else if (!l->dialed && take_dialer_hello(l, &payload) < 0)
		why = "expected a handshake";
	else if (noise_handshake_remote_key(l->hs, l->remote_key) < 0)
		why = "handshake failed";
	buf_fini(&payload);
	if (why != NULL) {
		p2p_link_close(l, why);
		return;
	}
	if (first)
		return;
	l->has_key = 1;
	l->state = P2P_LINK_VERIFY;
	l->p->ops->verify(l->p->owner, l, l->user, l->remote_key, sizeof(l->remote_key));
}

/* A decrypted frame holds exactly one JSON object. */
static struct json_object *
parse_frame(struct p2p_link *l, const struct buf *plain)
{
	struct json_object *o;

	if (l->tok == NULL)
		l->tok = json_tokener_new();
	json_tokener_reset(l->tok);
	o = json_tokener_parse_ex(l->tok, plain->data, (int)plain->len);
	if (json_tokener_get_error(l->tok) != json_tokener_success ||
	    json_tokener_get_parse_end(l->tok) != plain->len ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void
take_frames(struct p2p_link *l)
{
	const uint8_t *frame;
	size_t len, used, off = 0;
	struct buf *plain = &l->plain;
	int rc;

	/* Frames are consumed by offset, and the buffer moved once at the end. */
	while (l->state != P2P_LINK_CLOSING && l->state != P2P_LINK_VERIFY) {
		rc = p2p_frame_next((const uint8_t *)l->in.data + off, l->in.len - off,
		    l->state == P2P_LINK_UP ? P2P_FRAME_MAX : P2P_LINK_EARLY_FRAME, &frame, &len,
		    &used);
		if (rc == 0)
			break;
		if (rc < 0) {
			p2p_link_close(l, "bad frame (too large or malformed)");
			break;
		}
		off += used;
		if (l->state == P2P_LINK_HANDSHAKE) {
			take_handshake(l, frame, len);
			continue;
		}
		plain->len = 0;
		if (p2p_frame_open(l->fs, frame, len, plain) < 0) {
			p2p_link_close(l, "frame failed authentication");
			break;
		}
		if (plain->len == 0 && l->state == P2P_LINK_UP)
			continue; /* a keepalive */
		if (l->state == P2P_LINK_UP && (uint8_t)plain->data[0] >= 1 &&
		    (uint8_t)plain->data[0] <= P2P_LINK_BINARY_LAST) {
			if (l->p->ops->binary != NULL)
				l->p->ops->binary(
				    l->p->owner, l, (const uint8_t *)plain->data, plain->len);
			continue;
		}
		struct json_object *o = parse_frame(l, plain);
		if (o == NULL) {
			p2p_link_close(l, "a frame is not one JSON object");
			break;
		}
		take_object(l, o);
		json_object_put(o);
	}
	if (l->state != P2P_LINK_CLOSING)
		buf_consume(&l->in, off);
}

static void
handle_input(struct p2p_link *l)
{
	l->parsing = 1;
	parse_input(l);
	l->parsing = 0;
}

static void
parse_input(struct p2p_link *l)
{
	if (!l->dialed && !l->sniffed && l->in.len > 0) {
		/* An original peer opens with a JSON object; a hychat peer with a
		 * frame, whose first byte is never '{'. */
		size_t i = strspn(l->in.data, " \t\r\n");
		if (i == l->in.len)
			return;
		l->sniffed = 1;
		if (l->in.data[i] == '{') {
			if (!l->allow_plaintext) {
				p2p_link_close(l, "plaintext peer refused (no --allow-plaintext)");
				return;
			}
			l->plaintext = 1;
			l->js = p2p_json_stream_new(P2P_LINK_EARLY_FRAME);
		}
	}
	if (l->plaintext)
		take_plain(l);
	else
		take_frames(l);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	b->base = read_chunk;
	b->len = sizeof(read_chunk);
}

/* What a link that is not up may leave unparsed: input while it is being
 * checked, a listener's whitespace before the first byte. On an encrypted
 * link the remote has nothing to say then; on a plaintext one the original
 * may write on without waiting for handshake_ack (and a listener we dialed
 * may flush its outbox after its own). */
static size_t
early_max(const struct p2p_link *l)
{
	if (!l->plaintext || l->state != P2P_LINK_VERIFY)
		return P2P_LINK_EARLY_MAX;
	return l->dialed ? P2P_LINK_OUT_MAX : P2P_LINK_PLAIN_MAX;
}

/* Why the remote hung up: during our dial's handshake it refused it, or
 * it speaks an older protocol (which closes on our first message). */
static const char *
early_eof(const struct p2p_link *l)
{
	if (l->dialed && !l->plaintext && l->state == P2P_LINK_HANDSHAKE)
		return "closed by the peer during the handshake (refused, or a hychat older "
		       "than protocol " NOISE_PROLOGUE ")";
	return "closed by the peer";
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct p2p_link *l = s->data;

	if (n < 0) {
		p2p_link_close(l, n != UV_EOF ? uv_strerror((int)n) : early_eof(l));
		return;
	}
	if (n == 0)
		return;
	buf_append(&l->in, b->base, (size_t)n);
	handle_input(l);
	if (l->state != P2P_LINK_UP && l->state != P2P_LINK_CLOSING && l->in.len > early_max(l))
		p2p_link_close(l, "too much input before the handshake is done");
}

static void
on_timeout(uv_timer_t *t)
{
	p2p_link_close(t->data, "handshake timed out");
}

/* An empty frame when nothing went out for a while: NAT mappings and a
 * relay's idle timer see traffic, and a dead path shows as a failed
 * write instead of silence. */
static void
on_keepalive(uv_timer_t *t)
{
	struct p2p_link *l = t->data;

	if (l->state == P2P_LINK_UP && hy_now_ms() - l->last_out_ms >= P2P_LINK_KEEPALIVE_MS / 2)
		send_frame(l, "", 0, 0);
}

/* Life. */

static struct p2p_link *
link_new(uv_loop_t *loop, const struct p2p_link_params *p)
{
	struct p2p_link *l = xcalloc(1, sizeof(*l));

	l->p = p;
	buf_init(&l->in);
	buf_init(&l->out);
	buf_init(&l->sealed);
	buf_init(&l->plain);
	l->bulk_tail = &l->bulk;
	uv_tcp_init(loop, &l->tcp);
	uv_timer_init(loop, &l->timer);
	uv_idle_init(loop, &l->flush);
	l->tcp.data = l->timer.data = l->flush.data = l;
	l->open_handles = P2P_LINK_HANDLES;
	l->state = P2P_LINK_HANDSHAKE;
	uv_timer_start(&l->timer, on_timeout, P2P_LINK_HANDSHAKE_MS, 0);
	return l;
}

static void
read_peer_ip(struct p2p_link *l)
{
	struct sockaddr_storage sa;
	int len = sizeof(sa);

	snprintf(l->ip, sizeof(l->ip), "?");
	if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&sa, &len) != 0)
		return;
	if (sa.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&sa, l->ip, sizeof(l->ip));
	else if (sa.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&sa, l->ip, sizeof(l->ip));
}

struct p2p_link *
p2p_link_accept(
    uv_loop_t *loop, uv_stream_t *server, int allow_plaintext, const struct p2p_link_params *p)
{
	struct p2p_link *l = link_new(loop, p);

	l->allow_plaintext = allow_plaintext;
	if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
		p2p_link_close(l, "accept failed");
		return l;
	}
	read_peer_ip(l);
	uv_tcp_nodelay(&l->tcp, 1);
	uv_tcp_keepalive(&l->tcp, 1, P2P_LINK_TCP_KEEPALIVE_S);
	/* The handshake state (a key pair to make) waits for the first frame,
	 * so a connection shed by the owner at once costs no crypto. */
	uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
	return l;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct p2p_link *l = req->data;
	struct buf msg;

	if (l->state == P2P_LINK_CLOSING)
		return;
	if (status < 0) {
		p2p_link_close(l, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&l->tcp, 1);
	uv_tcp_keepalive(&l->tcp, 1, P2P_LINK_TCP_KEEPALIVE_S);
	if (l->token != NULL) {
		/* The relay reads our half of the token first; then, as if we
		 * had dialed or been dialed, the handshake through it. */
		write_now(l, l->token, strlen(l->token));
		write_now(l, "\n", 1);
	}
	if (!l->dialed) {
		/* Relayed or punched, the listener's side of the handshake. */
		uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
		return;
	}
	uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
	if (l->plaintext) {
		send_hello(l, "handshake", 1);
		return;
	}
	/* Nothing but our ephemeral key: who we are goes in the third. */
	buf_init(&msg);
	if (noise_handshake_write(l->hs, NULL, 0, &msg) < 0)
		p2p_link_close(l, "handshake failed");
	else
		write_now(l, msg.data, msg.len);
	buf_fini(&msg);
}

struct p2p_link *
p2p_link_dial(uv_loop_t *loop, const char *ip, int port, const char *user, int plaintext,
    const struct p2p_link_params *p)
{
	struct p2p_link *l = link_new(loop, p);
	struct sockaddr_storage sa;
	int rc;

	l->dialed = 1;
	l->plaintext = plaintext;
	l->state = P2P_LINK_CONNECTING;
	snprintf(l->user, sizeof(l->user), "%s", user);
	snprintf(l->ip, sizeof(l->ip), "%s", ip);
	if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&sa) != 0) {
		p2p_link_close(l, "bad address");
		return l;
	}
	if (plaintext)
		l->js = p2p_json_stream_new(P2P_LINK_EARLY_FRAME);
	else if ((l->hs = noise_handshake_new(p->id, 1)) == NULL) {
		p2p_link_close(l, "cannot start a handshake");
		return l;
	}
	l->connect.data = l;
	rc = uv_tcp_connect(&l->connect, &l->tcp, (struct sockaddr *)&sa, on_connect);
	if (rc != 0) {
		p2p_link_close(l, uv_strerror(rc));
		return l;
	}
	l->state = P2P_LINK_HANDSHAKE;
	return l;
}

struct p2p_link *
p2p_link_relay(uv_loop_t *loop, const char *relay, const char *token, int initiator,
    const char *user, const struct p2p_link_params *p)
{
	char host[P2P_LINK_IP_MAX];
	const char *why;
	int port;
	struct p2p_link *l;

	if (hy_parse_hostport(relay, host, sizeof(host), &port, &why) < 0 || port == 0 ||
	    strlen(relay) >= P2P_LINK_VIA_MAX || strchr(token, '\n') != NULL)
		return NULL;
	l = p2p_link_dial(loop, host, port, user, 0, p);
	snprintf(l->via, sizeof(l->via), "%s", relay);
	l->token = xstrdup(token);
	if (!initiator) {
		/* The listener's side of the handshake: the first frame makes
		 * its state. */
		noise_handshake_free(l->hs);
		l->hs = NULL;
		l->dialed = 0;
		l->sniffed = 1;
	}
	return l;
}

/* A socket bound to our listening address and port, so that the NAT maps
 * it as it maps what the listener sends: SO_REUSEPORT (the listener has
 * it too) and SO_REUSEADDR. -1 with errno. */
static int
punch_socket(const char *bind_host, int bind_port, int family)
{
	struct sockaddr_storage sa;
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	if (family == AF_INET6 && strchr(bind_host, ':') == NULL)
		bind_host = "::";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    (family == AF_INET
	            ? uv_ip4_addr(bind_host, bind_port, (struct sockaddr_in *)&sa)
	            : uv_ip6_addr(bind_host, bind_port, (struct sockaddr_in6 *)&sa)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa,
	        family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) !=
	        0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
p2p_link_punch_reserve(const char *bind_host, int *port)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int fd = punch_socket(bind_host, 0, strchr(bind_host, ':') != NULL ? AF_INET6 : AF_INET);

	if (fd < 0)
		return -1;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
	                                      : ((struct sockaddr_in6 *)&sa)->sin6_port);
	return fd;
}

struct p2p_link *
p2p_link_punch(uv_loop_t *loop, const char *bind_host, int bind_port, int fd, const char *ip,
    int port, int initiator, const char *user, const struct p2p_link_params *p)
{
	struct p2p_link *l = link_new(loop, p);
	struct sockaddr_storage sa;
	int rc;

	l->dialed = 1;
	l->punched = 1;
	l->state = P2P_LINK_CONNECTING;
	snprintf(l->user, sizeof(l->user), "%s", user);
	snprintf(l->ip, sizeof(l->ip), "%s", ip);
	uv_timer_start(&l->timer, on_timeout, P2P_LINK_PUNCH_MS, 0);
	if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&sa) != 0) {
		if (fd >= 0)
			close(fd);
		p2p_link_close(l, "bad address");
		return l;
	}
	if (fd < 0 && (fd = punch_socket(bind_host, bind_port, sa.ss_family)) < 0) {
		p2p_link_close(l, strerror(errno));
		return l;
	}
	if ((rc = uv_tcp_open(&l->tcp, fd)) != 0) {
		close(fd);
		p2p_link_close(l, uv_strerror(rc));
		return l;
	}
	if (initiator) {
		if ((l->hs = noise_handshake_new(p->id, 1)) == NULL) {
			p2p_link_close(l, "cannot start a handshake");
			return l;
		}
	} else {
		l->dialed = 0;
		l->sniffed = 1;
	}
	l->connect.data = l;
	rc = uv_tcp_connect(&l->connect, &l->tcp, (struct sockaddr *)&sa, on_connect);
	if (rc != 0) {
		p2p_link_close(l, uv_strerror(rc));
		return l;
	}
	l->state = P2P_LINK_HANDSHAKE;
	return l;
}

int
p2p_link_punched(const struct p2p_link *l)
{
	return l->punched;
}

void
p2p_link_verified(struct p2p_link *l, const char *refusal)
{
	struct buf msg;

	if (l->state != P2P_LINK_VERIFY)
		return;
	if (refusal != NULL) {
		p2p_link_close(l, refusal);
		return;
	}
	if (l->plaintext) {
		if (!l->dialed)
			send_hello(l, "handshake_ack", 1);
		go_up(l);
	} else if (l->dialed) {
		/* The third message proves who we are and says our name, both
		 * encrypted; the listener answers with handshake_ack once it has
		 * checked. */
		struct json_object *o = hello_new(l, "handshake");
		size_t len;
		const char *json =
		    json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
		buf_init(&msg);
		if (noise_handshake_write(l->hs, (const uint8_t *)json, len, &msg) < 0 ||
		    (l->fs = noise_handshake_split(l->hs)) == NULL) {
			json_object_put(o);
			buf_fini(&msg);
			p2p_link_close(l, "handshake failed");
			return;
		}
		json_object_put(o);
		write_now(l, msg.data, msg.len);
		buf_fini(&msg);
		l->state = P2P_LINK_READY;
	} else {
		if ((l->fs = noise_handshake_split(l->hs)) == NULL) {
			p2p_link_close(l, "handshake failed");
			return;
		}
		send_hello(l, "handshake_ack", 1);
		go_up(l);
	}
	noise_handshake_free(l->hs);
	l->hs = NULL;
	/* Input that came while we were checking waits in the buffer; if the
	 * check was answered at once, the parser on the stack goes on. */
	if (l->state != P2P_LINK_CLOSING && l->in.len > 0 && !l->parsing)
		handle_input(l);
}

int
p2p_link_send(struct p2p_link *l, const char *json, size_t len)
{
	if (l->state != P2P_LINK_UP)
		return -1;
	return l->plaintext ? send_plain(l, json, len) : send_frame(l, json, len, 0);
}

int
p2p_link_send_bulk(struct p2p_link *l, const uint8_t *data, size_t len)
{
	struct bulk *b;

	if (l->state != P2P_LINK_UP || l->plaintext)
		return -1;
	if (l->out.len + l->bulk_bytes + l->in_flight + len > P2P_LINK_OUT_MAX) {
		p2p_link_close(l, "peer too slow: output queue full");
		return -1;
	}
	b = xmalloc(sizeof(*b) + len);
	b->next = NULL;
	b->len = len;
	memcpy(b->data, data, len);
	*l->bulk_tail = b;
	l->bulk_tail = &b->next;
	l->bulk_bytes += len;
	uv_idle_start(&l->flush, on_flush);
	return 0;
}

enum p2p_link_state
p2p_link_state(const struct p2p_link *l)
{
	return l->state;
}

const char *
p2p_link_user(const struct p2p_link *l)
{
	return l->user;
}

const char *
p2p_link_addr(const struct p2p_link *l)
{
	return l->ip;
}

const char *
p2p_link_via(const struct p2p_link *l)
{
	return l->via;
}

int
p2p_link_dialed(const struct p2p_link *l)
{
	return l->dialed;
}

int
p2p_link_encrypted(const struct p2p_link *l)
{
	return !l->plaintext;
}

const uint8_t *
p2p_link_key(const struct p2p_link *l, size_t *len)
{
	if (len != NULL)
		*len = l->has_key ? sizeof(l->remote_key) : 0;
	return l->has_key ? l->remote_key : NULL;
}

size_t
p2p_link_queued(const struct p2p_link *l)
{
	return l->out.len + l->bulk_bytes + l->in_flight;
}

void
p2p_link_set_data(struct p2p_link *l, void *data)
{
	l->data = data;
}

void *
p2p_link_data(const struct p2p_link *l)
{
	return l->data;
}
