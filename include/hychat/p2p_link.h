/* p2p_link.h — one TCP link to another peer: the handshake, then JSON
 * messages.
 *
 * Encrypted (hychat to hychat): a Noise XX handshake whose third message
 * carries the original's {"type":"handshake","username"} object, encrypted
 * (the first, in clear, carries nothing); the listener, once it has checked
 * who the dialer is, sends
 * {"type":"handshake_ack","username"} as its first encrypted frame, and the
 * link is up on both ends. Plaintext (the original protocol, only when
 * allowed): the same two objects in clear, then one JSON object per write,
 * however TCP splits or joins them on the way in.
 *
 * The owner hears of a link through struct p2p_link_ops, always from the
 * loop; "closed" comes last, from the handle's close callback, and the
 * link is freed when it returns. Output is queued in the link and written
 * once per turn of the loop (uv_try_write first, the rest when writable).
 *
 * A relayed or punched link that is up sends an empty frame (a keepalive,
 * skipped by the receiver) after P2P_LINK_KEEPALIVE_MS without output;
 * every link has TCP keepalives every P2P_LINK_TCP_KEEPALIVE_S.
 */
#ifndef HYCHAT_P2P_LINK_H
#define HYCHAT_P2P_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <uv.h>

#define P2P_LINK_OUT_MAX (8 * 1024 * 1024) /* queued bytes; more and the link is cut */
#define P2P_LINK_PLAIN_MAX (256 * 1024) /* one plaintext object */
#define P2P_LINK_READ_CHUNK (64 * 1024)
#define P2P_LINK_HANDSHAKE_MS 5000 /* from accept or dial to up, checks included */
/* An empty frame after this long without output on an encrypted link:
 * well within NAT mapping timeouts (often 60 s for idle state in carrier
 * NATs) and a relay's idle timeout. */
#define P2P_LINK_KEEPALIVE_MS 25000
#define P2P_LINK_TCP_KEEPALIVE_S 25 /* the kernel's probes, every link */
#define P2P_LINK_VIA_MAX 280 /* "HOST:PORT" of a relay */
#define P2P_LINK_PUNCH_MS 2000
/* Bulk messages go to the socket only while libuv holds less than this
 * unwritten: what a message queued behind them waits for. */
#define P2P_LINK_BULK_INFLIGHT (128 * 1024)
/* A frame whose plaintext starts with a byte from 1 to this is binary
 * (file_frame.h), not a JSON object. */
#define P2P_LINK_BINARY_LAST 0x08 /* a simultaneous open, to up: else the relay */

struct identity;
struct p2p_link;

enum p2p_link_state {
	P2P_LINK_CONNECTING, /* dialing */
	P2P_LINK_HANDSHAKE,
	P2P_LINK_VERIFY, /* waiting for p2p_link_verified() */
	P2P_LINK_READY, /* dialer: verified the listener, waiting for its handshake_ack */
	P2P_LINK_UP,
	P2P_LINK_CLOSING,
};

struct p2p_link_ops {
	/* The remote says it is user and proved it holds key (keylen 0 on a
	 * plaintext link): answer with p2p_link_verified(), now or later. */
	void (*verify)(
	    void *owner, struct p2p_link *l, const char *user, const uint8_t *key, size_t keylen);
	void (*up)(void *owner, struct p2p_link *l);
	/* msg is borrowed. */
	void (*message)(void *owner, struct p2p_link *l, struct json_object *msg);
	/* A binary frame of an encrypted link that is up; data is borrowed.
	 * May be NULL: such frames are skipped. */
	void (*binary)(void *owner, struct p2p_link *l, const uint8_t *data, size_t len);
	/* The last call: l is freed when it returns. */
	void (*closed)(void *owner, struct p2p_link *l, const char *reason);
};

struct p2p_link_params {
	const char *username; /* ours */
	const struct identity *id;
	const struct p2p_link_ops *ops;
	void *owner;
};

/* Accepts a connection from server. Returns NULL (and the connection is
 * dropped) if it cannot. */
struct p2p_link *p2p_link_accept(
    uv_loop_t *loop, uv_stream_t *server, int allow_plaintext, const struct p2p_link_params *p);
/* Dials ip:port expecting user; plaintext: the original protocol. */
struct p2p_link *p2p_link_dial(uv_loop_t *loop, const char *ip, int port, const char *user,
    int plaintext, const struct p2p_link_params *p);
/* Connects to relay ("HOST:PORT" as an IP address), sends token and a
 * newline, then runs the handshake through the relay with user: as the
 * dialer if initiator, else as the listener (the remote must still prove
 * it is user). NULL if relay or token is malformed. */
struct p2p_link *p2p_link_relay(uv_loop_t *loop, const char *relay, const char *token,
    int initiator, const char *user, const struct p2p_link_params *p);
/* A socket for a simultaneous open from a fresh port: bound to
 * bind_host and a port of the kernel's choosing, which *port gets.
 * Returns the descriptor, or -1 with errno. */
int p2p_link_punch_reserve(const char *bind_host, int *port);
/* TCP simultaneous open: connects to ip:port from fd if it is not -1 (a
 * socket from p2p_link_punch_reserve(), which the link takes, even if it
 * fails), else from bind_host:bind_port
 * (our listening address, SO_REUSEADDR and SO_REUSEPORT), the remote
 * doing the same toward us at about the same time, so that each NAT sees
 * an answer to what its side sent. The kernel repeats the SYN; the link
 * gives up after P2P_LINK_PUNCH_MS. Then the handshake as in
 * p2p_link_relay(). */
struct p2p_link *p2p_link_punch(uv_loop_t *loop, const char *bind_host, int bind_port, int fd,
    const char *ip, int port, int initiator, const char *user, const struct p2p_link_params *p);
/* 1 if the link was made by p2p_link_punch(). */
int p2p_link_punched(const struct p2p_link *l);
/* Accepts the remote's identity (refusal NULL) or closes the link with
 * refusal as the reason. */
void p2p_link_verified(struct p2p_link *l, const char *refusal);
/* Queues one message (JSON text). Returns 0, or -1 if the link is not up
 * or its queue overflowed (it is then closing). */
int p2p_link_send(struct p2p_link *l, const char *json, size_t len);
/* Queues a binary message (its first byte from 1 to P2P_LINK_BINARY_LAST)
 * behind every message p2p_link_send() queues, even later ones: it is
 * sealed and written when those are out and the socket keeps up. Returns
 * 0, or -1 if the link is not an encrypted one that is up, or its queue
 * overflowed (it is then closing). */
int p2p_link_send_bulk(struct p2p_link *l, const uint8_t *data, size_t len);
/* Writes what p2p_link_send() queued this turn now, rather than at the
 * start of the next turn: the owner calls it at the end of a turn. */
void p2p_link_flush(struct p2p_link *l);
/* Starts closing; "closed" follows from the loop. Idempotent. */
void p2p_link_close(struct p2p_link *l, const char *reason);

enum p2p_link_state p2p_link_state(const struct p2p_link *l);
/* The remote's username: claimed until verified; "" if not yet known. */
const char *p2p_link_user(const struct p2p_link *l);
/* The remote's IP address. */
const char *p2p_link_addr(const struct p2p_link *l);
int p2p_link_dialed(const struct p2p_link *l);
/* The relay the link goes through ("" if direct). */
const char *p2p_link_via(const struct p2p_link *l);
/* The remote's proven static key (*len 0 and NULL before the handshake
 * proves it, and on a plaintext link). */
const uint8_t *p2p_link_key(const struct p2p_link *l, size_t *len);
int p2p_link_encrypted(const struct p2p_link *l);
/* Bytes queued and not yet written. */
size_t p2p_link_queued(const struct p2p_link *l);
void p2p_link_set_data(struct p2p_link *l, void *data);
void *p2p_link_data(const struct p2p_link *l);

#endif
