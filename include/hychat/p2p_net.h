/* p2p_net.h — the peer-to-peer network: the listener on the peer port, the
 * address book of remote users, one link per remote user, the checks a
 * handshake must pass, reconnection with backoff, and the shedding of
 * handshake floods (p2p_ratelimit.h).
 *
 * A link is up once its handshake is done and the remote user is proven:
 * on an encrypted link, its static key equals both the key the tracker
 * publishes for that user and the key seen before (known_peers, trust on
 * first use). A plaintext link (the original protocol, only with
 * allow_plaintext) is accepted or dialed only for a user the tracker has
 * just answered for as an account without a key, who is not pinned in
 * known_peers and was never seen with a key. A user the tracker did not
 * answer for is unknown, never keyless: its links are refused. When both ends dial at once, the link dialed by the
 * lexicographically smaller username is kept. Messages are JSON objects;
 * the owner hears of links and messages through struct p2p_net_ops, always
 * from the loop, never from inside a p2p_net_* call.
 */
#ifndef HYCHAT_P2P_NET_H
#define HYCHAT_P2P_NET_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <uv.h>

#define P2P_MAX_LINKS 4096 /* open sockets, handshakes included */
#define P2P_BACKOFF_MIN_MS 500
#define P2P_BACKOFF_MAX_MS 30000
#define P2P_BACKOFF_JITTER_PCT 20
#define P2P_KEY_MAX 64 /* bytes of a public key */
#define P2P_DIAL_BACK_MS 2000 /* asked a peer to dial us: then a relay */
#define P2P_V6_HEAD_START_MS 250 /* IPv6 first, then the other ways too */
#define P2P_UPGRADE_MIN_MS 2000 /* relayed: the first try at a direct link */
#define P2P_UPGRADE_MAX_MS 60000 /* relayed: tries at most this far apart */
#define P2P_UPGRADE_GRACE_MS 2000 /* a relayed link replaced: then closed */

struct identity;
struct known_peers;

struct p2p_net_config {
	const char *username;
	const char *host; /* to listen on */
	int port;
	const struct identity *id; /* used, not owned */
	struct known_peers *known; /* used, not owned */
	int allow_plaintext;
};

/* What the owner hears; arg is the one given to p2p_net_new(). */
struct p2p_net_ops {
	/* A link to user is up (encrypted: 0 for the original protocol). */
	void (*up)(void *arg, const char *user, int encrypted);
	/* user's link is gone. */
	void (*down)(void *arg, const char *user, const char *reason);
	/* A message from user; msg is borrowed. */
	void (*message)(void *arg, const char *user, int encrypted, struct json_object *msg);
	/* A binary frame (file_frame.h) from user over an encrypted link; data
	 * is borrowed. May be NULL. */
	void (*binary)(void *arg, const char *user, const uint8_t *data, size_t len);
	/* user's address or key is needed: ask the tracker about that user,
	 * answer with p2p_net_set_peer() (online) or p2p_net_set_offline()
	 * (an account that is offline), then p2p_net_lookup_done(). */
	void (*lookup)(void *arg, const char *user);
	/* A refused handshake or dial worth telling the user about. */
	void (*refused)(void *arg, const char *who, const char *reason);
	/* user cannot be dialed directly (behind another NAT, or a direct
	 * dial failed): ask the tracker's /rendezvous with via ("relay" or
	 * "dial" or "punch", then with port if not 0: the fresh port we
	 * punch from) and answer with p2p_net_relay() (as initiator),
	 * p2p_net_punch() or, for "dial" (the peer dials us), nothing;
	 * p2p_net_rendezvous_failed() if the tracker refuses. May be NULL:
	 * always dial directly. */
	void (*rendezvous)(void *arg, const char *user, const char *via, int port);
};

struct p2p_net;

/* Binds the peer port and accepts from it once the loop runs. Returns NULL
 * with *cause (allocated). */
struct p2p_net *p2p_net_new(uv_loop_t *loop, const struct p2p_net_config *cfg,
    const struct p2p_net_ops *ops, void *arg, char **cause);
/* Closes every link and the listener without calling ops; the memory goes
 * once the loop has closed the handles. Safe from an ops callback. */
void p2p_net_free(struct p2p_net *n);

/* Records what the tracker says of user: its address and its published
 * key (NULL: none, an original-protocol peer). A wanted user with a
 * changed address is dialed at once. */
void p2p_net_set_peer(struct p2p_net *n, const char *user, const char *ip, int port,
    const uint8_t *pubkey, size_t keylen);
/* Records that user has an account but is offline, with its published key
 * (NULL: none). */
void p2p_net_set_offline(struct p2p_net *n, const char *user, const uint8_t *pubkey, size_t keylen);
/* Ends a lookup of user (answered: the tracker answered, even "no such
 * user"). Links waiting for it are judged; a user still unknown is
 * refused. */
void p2p_net_lookup_done(struct p2p_net *n, const char *user, int answered);
/* 1 if a plaintext link with user would be allowed now (see above). */
int p2p_net_plaintext_ok(struct p2p_net *n, const char *user);
/* Dials user unless a link is up or on its way. want: keep dialing with
 * backoff until a link is up. Returns 0, or -1 if user is ourselves. */
int p2p_net_dial(struct p2p_net *n, const char *user, int want);
/* Dials user at ip:port now, closing a link that is up. */
int p2p_net_connect(struct p2p_net *n, const char *user, const char *ip, int port);
/* Sends a message (JSON text) to user. Returns 1 if it went to an up link,
 * 0 if no link is up (nothing sent), -1 if the link's queue is full. */
int p2p_net_send(struct p2p_net *n, const char *user, const char *json, size_t len);
/* Writes the messages p2p_net_send queued this turn (p2p_link_flush);
 * what a link queues by itself goes at its next turn. */
void p2p_net_flush(struct p2p_net *n);
/* The same for a bulk message (p2p_link_send_bulk): it waits behind
 * every message. Returns 1, 0 if no encrypted link is up, -1 if full. */
int p2p_net_send_bulk(struct p2p_net *n, const char *user, const uint8_t *data, size_t len);
/* Bytes queued on user's link (0 if none). */
size_t p2p_net_queued(struct p2p_net *n, const char *user);
/* 1 encrypted, 0 plaintext, -1 no link up. */
int p2p_net_link_state(struct p2p_net *n, const char *user);
/* The key the tracker publishes for user: 1 with key copied (out holds
 * P2P_KEY_MAX bytes), 0 unknown. */
int p2p_net_peer_key(struct p2p_net *n, const char *user, uint8_t *out, size_t *len);
/* The address book entry: 1 with ip/port, 0 unknown. */
int p2p_net_peer_addr(struct p2p_net *n, const char *user, const char **ip, int *port);

/* NAT traversal. A peer whose registered address differs from the one
 * the tracker sees it at (its observed address) is behind a NAT; unless we
 * are behind the same one (same observed address: the same site), it is
 * not dialed directly: the rendezvous op asks the tracker to have it dial
 * us (when our own addresses match: nothing in front of us), else for a
 * simultaneous open of both (hole punching), and after that fails to meet
 * at a relay. A direct dial that fails goes through a relay next, and a
 * relayed one that fails tries direct again. */

/* Our registered and observed addresses (NULL: unchanged). */
void p2p_net_set_self(struct p2p_net *n, const char *local_ip, const char *observed_ip);
/* Where the tracker sees user's requests come from. */
void p2p_net_set_observed(struct p2p_net *n, const char *user, const char *ip);
/* Meets user at relay ("IP:PORT") with our half of a token: as the
 * handshake's dialer if initiator (we asked), else as its listener (a
 * hint). Returns 0, or -1 if it cannot start. */
int p2p_net_relay(
    struct p2p_net *n, const char *user, const char *relay, const char *token, int initiator);
/* Who dials in a simultaneous open, and from where. */
enum p2p_punch_role {
	/* The tracker's answer to our punch rendezvous, which carried our
	 * fresh port: from it, as the handshake's dialer. */
	P2P_PUNCH_CALLER,
	/* A hint: user punches from a fresh port (port) as dialer; we from
	 * our peer port, as the handshake's listener. */
	P2P_PUNCH_ANSWER,
	/* No fresh port: both from their peer ports, the smaller name the
	 * handshake's dialer. */
	P2P_PUNCH_NAMES,
};
/* Both behind NATs: a simultaneous open with user at ip:port (its
 * observed address and the port it punches from) as role says. Our
 * open failing makes the next rendezvous a relay. Returns 0, or -1 if
 * it cannot start. */
int p2p_net_punch(
    struct p2p_net *n, const char *user, const char *ip, int port, enum p2p_punch_role role);
/* The tracker refused or failed a rendezvous with user: retry later;
 * the other way if way (the way asked cannot be had: no relay, say),
 * else the same (the peer is not online, the budget is spent, no
 * answer: nothing against the way). */
void p2p_net_rendezvous_failed(struct p2p_net *n, const char *user, int way);
/* A hint: user asks us to dial it (it is reachable, we may not be). */
void p2p_net_dial_back(struct p2p_net *n, const char *user);
/* Dual stack. With the peer port on 0.0.0.0 the net listens on [::] at
 * the same port too; a user with an IPv6 address (and us with one) is
 * dialed there first, the other ways P2P_V6_HEAD_START_MS later unless it
 * is up by then, or at once if it fails. A link that comes up while an
 * IPv6 dial is on its way is kept until that dial is up: then IPv6 is the
 * link (preferred). An IPv6 dial that fails is not tried again with that
 * user until its address changes or a link with it goes down. */

/* What the tracker says of user's IPv6 address ("": none). */
void p2p_net_set_ip6(struct p2p_net *n, const char *user, const char *ip6);
/* Our IPv6 address to register, "" if none (no IPv6 listener, or no
 * global or unique-local address): read from the interfaces, the best
 * by hy_ip6_rank(). */
const char *p2p_net_ip6(struct p2p_net *n);

/* Upgrade. While a link is relayed, the end with the smaller name tries
 * the direct ways again (IPv6, a direct dial, a dial back, a simultaneous
 * open; everything that failed before forgotten) P2P_UPGRADE_MIN_MS after
 * it came up, then at doubling intervals up to P2P_UPGRADE_MAX_MS; the
 * other end takes part when the tracker asks it to. A direct link beats a
 * relayed one at both ends, whichever was up first: once its handshake is
 * done it is the link (ops->up again, the outbox resends what was not
 * acknowledged), and the relayed one is kept P2P_UPGRADE_GRACE_MS, what
 * arrives over it delivered, then closed without ops->down. */

/* The path of user's up link: "direct", "punched" or "relayed" (*via: the relay's
 * HOST:PORT, else ""), NULL if no link is up. */
const char *p2p_net_link_path(struct p2p_net *n, const char *user, const char **via);

#endif
