/* p2p_net.c — the set of links: the listener and its flood limits, the
 * address book, verification of who is on the other end, one link per
 * user, and dialing again with backoff. */
#include "hychat/p2p_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/p2p_link.h"
#include "hychat/p2p_ratelimit.h"
#include "hychat/util.h"

#define P2P_IP_MAX 64
#define P2P_BUCKETS 1024 /* address book hash */
#define P2P_LISTEN_BACKLOG 128

enum key_state {
	KEY_UNKNOWN, /* not asked, not answered, or no such account */
	KEY_NONE, /* the tracker answered for this user: no key (the original protocol) */
	KEY_SET,
};

struct peer {
	char name[HY_NAME_MAX + 1];
	char ip[P2P_IP_MAX];
	int port;
	enum key_state key_state;
	uint8_t key[P2P_KEY_MAX];
	size_t keylen;
	struct p2p_link *link; /* the one up link */
	struct p2p_link *dial; /* our dial on its way */
	int want; /* dial until up */
	int keyed; /* seen with a key: never plaintext again */
	int manual; /* the address was given by p2p_net_connect() */
	int lookup_need; /* ask the tracker about this user */
	int lookup_busy; /* asked, no answer yet */
	int lookup_failed; /* the last question did not reach the tracker */
	int lookup_wait; /* a dial waits for the address book */
	int told_offline; /* the owner heard that the user is not online */
	uint64_t backoff_ms;
	uv_timer_t *retry;
	struct p2p_net *net;
	struct peer *next;
	/* NAT traversal */
	char observed[P2P_IP_MAX]; /* where its requests reach the tracker from */
	int direct_failed; /* the last direct dial failed: the relay next */
	int rdv_busy; /* a rendezvous asked of the tracker, no link yet */
	int dialback_wait; /* asked it to dial us: the relay if it does not */
	int punch_failed; /* the last simultaneous open failed: the relay next */
	struct p2p_link *punch; /* our simultaneous open on its way */
	int punch_fd; /* our fresh port's socket, a punch rendezvous asked; -1 */
	/* Dual stack */
	char ip6[P2P_IP_MAX]; /* its IPv6 address, "" if none */
	struct p2p_link *dial6; /* our IPv6 dial on its way */
	int v6_failed; /* the last IPv6 dial failed: not again until it moves */
	int v6_head_start; /* the IPv6 dial's head start runs (the retry timer) */
	/* Moving a relayed link to a direct one */
	uv_timer_t *upgrade; /* the next try, or the retired link's grace */
	uint64_t upgrade_ms; /* the wait before the next try (backoff) */
	struct p2p_link *retired; /* the relayed link, replaced, closed soon */
};

/* What the net knows of a link; the link's data. */
struct link_info {
	struct p2p_net *net;
	struct p2p_link *link;
	struct peer *peer; /* once the remote's name is known */
	int verify_wait; /* verification waits for the address book */
	int asked; /* the address book was asked for this link once */
	int was_up;
	int detached; /* replaced by connect: no longer the peer's link */
	int relayed; /* through a hychat-relay */
	int punched; /* a simultaneous open */
	int superseded; /* a punch while another direct link came up */
	char expect[HY_NAME_MAX + 1]; /* a relayed listener: the user it must be */
	struct link_info *prev, *next;
	struct link_info *queued_next; /* in the net's queued list */
	int queued; /* in it: p2p_net_send queued a message this turn */
};

struct p2p_net {
	uv_loop_t *loop;
	char username[HY_NAME_MAX + 1];
	const struct identity *id;
	struct known_peers *known;
	int allow_plaintext;
	const struct p2p_net_ops *ops;
	void *arg;
	struct p2p_link_params params;
	uv_tcp_t listener;
	uv_tcp_t listener6; /* [::] beside a 0.0.0.0 listener (dual stack) */
	int listener6_init;
	char ip6[P2P_IP_MAX]; /* our IPv6 address, from p2p_net_ip6() */
	uv_timer_t resolve; /* work deferred out of p2p_net_* calls */
	int resolve_lookup, resolve_settle;
	int handles;
	int listener_init; /* the listener handle exists */
	int freeing;
	struct peer *book[P2P_BUCKETS];
	struct link_info *links;
	/* The links p2p_net_send queued messages on since the last flush: a
	 * turn's flush writes those, not every link of a full mesh. */
	struct link_info *queued;
	size_t nlinks;
	struct p2p_ratelimit *rate; /* handshakes per source */
	uint64_t shed, shed_logged_ms; /* connections shed since the last notice */
	char listen_host[P2P_IP_MAX];
	int listen_port;
	char local_ip[P2P_IP_MAX]; /* the address we register */
	char observed_ip[P2P_IP_MAX]; /* where the tracker sees us */
};

static const struct p2p_link_ops link_ops;

static unsigned
hash_name(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct peer *
peer_find(struct p2p_net *n, const char *name)
{
	for (struct peer *p = n->book[hash_name(name) % P2P_BUCKETS]; p != NULL; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static struct peer *
peer_get(struct p2p_net *n, const char *name)
{
	struct peer *p = peer_find(n, name);
	unsigned b;

	if (p != NULL)
		return p;
	p = xcalloc(1, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->net = n;
	p->backoff_ms = P2P_BACKOFF_MIN_MS;
	p->punch_fd = -1;
	b = hash_name(name) % P2P_BUCKETS;
	p->next = n->book[b];
	n->book[b] = p;
	return p;
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct p2p_net *n = h->data;

	n->handles--;
	if (n->freeing && n->handles == 0 && n->nlinks == 0)
		free(n);
}

static void
on_retry_closed(uv_handle_t *h)
{
	struct p2p_net *n = h->data;

	free(h);
	n->handles--;
	if (n->freeing && n->handles == 0 && n->nlinks == 0)
		free(n);
}

static void on_resolve(uv_timer_t *t);

/* Work that must not run inside a p2p_net_* call: asking for a lookup,
 * settling what waited for one. */
static void
schedule_resolve(struct p2p_net *n)
{
	if (!n->freeing && !uv_is_active((uv_handle_t *)&n->resolve))
		uv_timer_start(&n->resolve, on_resolve, 0, 0);
}

/* Asks the tracker about p once the current call has returned. */
static void
ask_about(struct p2p_net *n, struct peer *p)
{
	p->lookup_need = 1;
	n->resolve_lookup = 1;
	schedule_resolve(n);
}

static int
pinned(const struct p2p_net *n, const struct peer *p)
{
	uint8_t key[IDENTITY_PUBLIC_BYTES];

	return n->known != NULL && known_peers_lookup(n->known, p->name, key) == 1;
}

/* Why p may not have a plaintext link, or NULL if it may: only a user the
 * tracker vouches has no key, who never had one. */
static const char *
plaintext_refusal(const struct p2p_net *n, const struct peer *p)
{
	if (!n->allow_plaintext)
		return "plaintext link refused (no --allow-plaintext)";
	if (pinned(n, p))
		return "plaintext link refused: this user's key is pinned in known_peers";
	if (p->keyed || p->key_state == KEY_SET)
		return "plaintext link refused: this user has a key";
	if (p->key_state != KEY_NONE)
		return "plaintext link refused: the tracker does not know this user";
	return NULL;
}

static void
refuse(struct p2p_net *n, const char *user, const char *why)
{
	log_warn("link with %s refused: %s", user, why);
	n->ops->refused(n->arg, user, why);
}

/* Links. */

static struct link_info *
info_new(struct p2p_net *n, struct p2p_link *l)
{
	struct link_info *i = xcalloc(1, sizeof(*i));

	i->net = n;
	i->link = l;
	i->next = n->links;
	if (n->links != NULL)
		n->links->prev = i;
	n->links = i;
	n->nlinks++;
	p2p_link_set_data(l, i);
	return i;
}

/* What the tracker says of p's key; once keyed, a user stays keyed. */
static void
set_key(struct peer *p, const uint8_t *pubkey, size_t keylen)
{
	if (pubkey != NULL && keylen > 0) {
		memcpy(p->key, pubkey, keylen);
		p->keylen = keylen;
		p->key_state = KEY_SET;
		p->keyed = 1;
	} else {
		p->keylen = 0;
		p->key_state = KEY_NONE;
	}
}

static void retry_in(struct p2p_net *n, struct peer *p, uint64_t ms);

/* 1 if l goes through a relay. */
static int
relayed(const struct p2p_link *l)
{
	return l != NULL && p2p_link_via(l)[0] != '\0';
}

/* 1 if p's link is up through a relay: a direct one is worth trying. */
static int
upgradable(const struct peer *p)
{
	return p->link != NULL && relayed(p->link) && p2p_link_state(p->link) == P2P_LINK_UP;
}

/* 1 if p's registered address is worth dialing: it is the address its
 * requests come from (no NAT in front of it), or it is behind the same
 * NAT as we are (the same site, its local address), or nothing is known. */
static int
direct_ok(const struct p2p_net *n, const struct peer *p)
{
	if (p->observed[0] == '\0' || strcmp(p->observed, p->ip) == 0)
		return 1;
	return n->observed_ip[0] != '\0' && strcmp(p->observed, n->observed_ip) == 0;
}

static void
punch_unreserve(struct peer *p)
{
	if (p->punch_fd >= 0)
		close(p->punch_fd);
	p->punch_fd = -1;
}

/* Asks the tracker to bring us together with p by way of via; a punch
 * from a fresh port of ours (a 4-tuple nothing earlier left state on, in
 * our kernel, the NATs or the peer's: a late SYN, a TIME_WAIT, a
 * half-open on our listener), or if none can be had from our peer port. */
static void
rendezvous_ask(struct p2p_net *n, struct peer *p, const char *via)
{
	int port = 0;

	punch_unreserve(p);
	if (strcmp(via, "punch") == 0 &&
	    (p->punch_fd = p2p_link_punch_reserve(n->listen_host, &port)) < 0) {
		log_debug("punch with %s: no fresh port (%s): from the peer port", p->name,
		    strerror(errno));
		port = 0;
	}
	p->rdv_busy = 1;
	n->ops->rendezvous(n->arg, p->name, via, port);
}

/* How the tracker should bring us together with p: p dials us if we are
 * reachable (no NAT in front of us) and a direct dial has not failed
 * already, else both meet at a relay. */
static const char *
rendezvous_via(const struct p2p_net *n, const struct peer *p)
{
	if (!p->direct_failed && n->observed_ip[0] != '\0' &&
	    strcmp(n->observed_ip, n->local_ip) == 0)
		return "dial";
	if (!p->punch_failed && p->observed[0] != '\0')
		return "punch";
	return "relay";
}

/* Happy eyeballs: with an IPv6 address on both ends, p is dialed there
 * first (IPv6 has no NAT to go around), and the other ways start only
 * P2P_V6_HEAD_START_MS later, or at once if it fails. 1 while the IPv6
 * dial has its head start. */
static int
v6_first(struct p2p_net *n, struct peer *p)
{
	if (p->dial6 != NULL)
		return p->v6_head_start;
	if (p->ip6[0] == '\0' || n->ip6[0] == '\0' || p->v6_failed)
		return 0;
	struct p2p_link *l = p2p_link_dial(n->loop, p->ip6, p->port, p->name, 0, &n->params);
	if (l == NULL)
		return 0;
	struct link_info *i = info_new(n, l);
	i->peer = p;
	p->dial6 = l;
	p->v6_head_start = 1;
	retry_in(n, p, P2P_V6_HEAD_START_MS);
	return 1;
}

static void
start_dial(struct p2p_net *n, struct peer *p)
{
	struct p2p_link *l;
	int plaintext = p->key_state != KEY_SET;

	/* While relayed, a dial is a try at a direct link (the upgrade). */
	if ((p->link != NULL && !upgradable(p)) || p->dial != NULL || n->freeing)
		return;
	if (p->port == 0 || p->key_state == KEY_UNKNOWN) {
		p->lookup_wait = 1;
		ask_about(n, p);
		return;
	}
	if (plaintext) {
		const char *why = plaintext_refusal(n, p);
		if (why != NULL) {
			p->want = 0;
			refuse(n, p->name, why);
			return;
		}
	}
	if (n->nlinks >= P2P_MAX_LINKS)
		return;
	if (!plaintext && v6_first(n, p))
		return;
	if (!plaintext && n->ops->rendezvous != NULL && (p->direct_failed || !direct_ok(n, p))) {
		/* Behind another NAT: the tracker brings us together. */
		if (!p->rdv_busy) {
			const char *via = rendezvous_via(n, p);
			if (p->link != NULL && strcmp(via, "relay") == 0)
				return; /* relayed already */
			rendezvous_ask(n, p, via);
			if (strcmp(via, "dial") == 0) {
				p->dialback_wait = 1;
				retry_in(n, p, P2P_DIAL_BACK_MS);
			}
		}
		return;
	}
	l = p2p_link_dial(n->loop, p->ip, p->port, p->name, plaintext, &n->params);
	if (l == NULL)
		return;
	struct link_info *i = info_new(n, l);
	i->peer = p;
	p->dial = l;
}

/* The address may have changed while we waited: ask before dialing. */
static void
on_retry(uv_timer_t *t)
{
	struct peer *p = t->data;
	struct p2p_net *n = p->net;

	if (p->v6_head_start) {
		/* IPv6 is not up yet: the other ways too, now. */
		p->v6_head_start = 0;
		if ((p->link == NULL || upgradable(p)) && p->dial == NULL)
			start_dial(n, p);
		return;
	}
	if (p->dialback_wait) {
		/* It did not dial us in time: meet at a relay instead. */
		p->dialback_wait = 0;
		if (p->dial != NULL || (p->link != NULL && !upgradable(p)))
			return;
		p->rdv_busy = 0;
		p->direct_failed = 1;
		if (p->link != NULL)
			return; /* still relayed: the next try at a direct link */
	}
	if (p->want && p->link == NULL && p->dial == NULL) {
		p->lookup_wait = 1;
		ask_about(n, p);
	}
}

static void
retry_in(struct p2p_net *n, struct peer *p, uint64_t ms)
{
	if (p->retry == NULL) {
		p->retry = xmalloc(sizeof(*p->retry));
		uv_timer_init(n->loop, p->retry);
		p->retry->data = p;
		n->handles++;
	}
	uv_timer_start(p->retry, on_retry, ms, 0);
}

static void
retry_later(struct p2p_net *n, struct peer *p)
{
	uint64_t ms = p->backoff_ms;
	uint32_t jitter = randombytes_uniform(2 * P2P_BACKOFF_JITTER_PCT + 1);

	if (n->freeing || !p->want)
		return;
	ms = ms * (100 - P2P_BACKOFF_JITTER_PCT + jitter) / 100;
	p->backoff_ms =
	    p->backoff_ms * 2 > P2P_BACKOFF_MAX_MS ? P2P_BACKOFF_MAX_MS : p->backoff_ms * 2;
	retry_in(n, p, ms);
}

/* The checks on who the remote is; NULL if it passes. */
static const char *
check_identity(struct p2p_net *n, struct peer *p, const uint8_t *key, size_t keylen)
{
	if (keylen == 0)
		return plaintext_refusal(n, p);
	if (p->key_state == KEY_UNKNOWN)
		return "the tracker does not know this user";
	if (p->key_state != KEY_SET)
		return "the tracker publishes no key for this user";
	if (keylen != p->keylen || sodium_memcmp(key, p->key, keylen) != 0)
		return "key does not match the one the tracker publishes";
	switch (known_peers_check(n->known, p->name, key, keylen)) {
	case KNOWN_PEERS_MATCH:
	case KNOWN_PEERS_NEW: return NULL;
	case KNOWN_PEERS_CHANGED: return "key changed since first seen (see known_peers)";
	default: return "known_peers cannot be updated";
	}
}

static void
link_verify(void *owner, struct p2p_link *l, const char *user, const uint8_t *key, size_t keylen)
{
	struct p2p_net *n = owner;
	struct link_info *i = p2p_link_data(l);
	const char *why;

	if (!p2p_link_dialed(l)) {
		if (!hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0) {
			p2p_link_verified(l, "bad username");
			return;
		}
		if (i->expect[0] != '\0' && strcmp(user, i->expect) != 0) {
			p2p_link_verified(l, "not the user the relay was to join");
			return;
		}
		i->peer = peer_get(n, user);
	}
	/* What we know may predate the user's registration, or a new key
	 * they registered since: ask once before judging. A keyless link is
	 * always judged on a fresh answer about this very user. */
	if (!i->asked &&
	    (i->peer->key_state == KEY_UNKNOWN || keylen == 0 || i->peer->key_state != KEY_SET ||
	        keylen != i->peer->keylen || sodium_memcmp(key, i->peer->key, keylen) != 0)) {
		i->asked = 1;
		i->verify_wait = 1;
		ask_about(n, i->peer);
		return;
	}
	why = check_identity(n, i->peer, key, keylen);
	if (why != NULL) {
		/* Dialing again would meet the same key. */
		i->peer->want = 0;
		refuse(n, user, why);
	}
	p2p_link_verified(l, why);
}

static void
on_upgrade_closed(uv_handle_t *h)
{
	struct p2p_net *n = h->data;

	free(h);
	n->handles--;
	if (n->freeing && n->handles == 0 && n->nlinks == 0)
		free(n);
}

static void upgrade_in(struct p2p_net *n, struct peer *p, uint64_t ms);

static void
on_upgrade(uv_timer_t *t)
{
	struct peer *p = t->data;
	struct p2p_net *n = p->net;

	if (p->retired != NULL) {
		/* Its grace is over: what was on its way over it has arrived. */
		struct p2p_link *old = p->retired;
		p->retired = NULL;
		p2p_link_close(old, "moved to a direct link");
		if (upgradable(p)) /* relayed again meanwhile */
			upgrade_in(n, p, p->upgrade_ms);
		return;
	}
	if (!upgradable(p) || n->freeing)
		return;
	if (p->dial == NULL && p->dial6 == NULL && p->punch == NULL && !p->rdv_busy) {
		/* What failed before may work now: the NATs, the addresses and
		 * the firewalls on the way may have changed. */
		p->punch_failed = 0;
		p->direct_failed = 0;
		p->v6_failed = 0;
		start_dial(n, p);
	}
	p->upgrade_ms =
	    p->upgrade_ms * 2 > P2P_UPGRADE_MAX_MS ? P2P_UPGRADE_MAX_MS : p->upgrade_ms * 2;
	upgrade_in(n, p, p->upgrade_ms);
}

static void
upgrade_in(struct p2p_net *n, struct peer *p, uint64_t ms)
{
	if (p->upgrade == NULL) {
		p->upgrade = xmalloc(sizeof(*p->upgrade));
		uv_timer_init(n->loop, p->upgrade);
		p->upgrade->data = p;
		n->handles++;
	}
	uv_timer_start(p->upgrade, on_upgrade, ms, 0);
}

/* p's relayed link is replaced by a direct one: it stays open for
 * P2P_UPGRADE_GRACE_MS, what arrives over it delivered (the receiver
 * drops what it has seen), so that nothing the other end sent before it
 * moved is lost; then it is closed, without a "down". */
static void
retire(struct p2p_net *n, struct peer *p)
{
	if (p->retired != NULL)
		p2p_link_close(p->retired, "moved to a direct link");
	p->retired = p->link;
	p->link = NULL;
	upgrade_in(n, p, P2P_UPGRADE_GRACE_MS);
}

static void
link_up(void *owner, struct p2p_link *l)
{
	struct p2p_net *n = owner;
	struct link_info *i = p2p_link_data(l);
	struct peer *p = i->peer;

	if (p->dial == l)
		p->dial = NULL;
	int won6 = p->dial6 == l;
	if (won6)
		p->dial6 = NULL;
	if (p->link != NULL && p->link != l) {
		/* A direct link beats a relayed one (both ends judge alike);
		 * else both ends dialed: the smaller name's dial is the link. */
		int mine_wins = strcmp(n->username, p->name) < 0;
		int keep_new = relayed(l) != relayed(p->link)
		    ? !relayed(l)
		    : p2p_link_dialed(l) == p2p_link_dialed(p->link) ||
		        p2p_link_dialed(l) == mine_wins;
		if (!keep_new) {
			p2p_link_close(l, "duplicate link");
			return;
		}
		if (relayed(p->link) && !relayed(l))
			retire(n, p);
		else {
			struct link_info *old = p2p_link_data(p->link);
			old->was_up = 0;
			p2p_link_close(p->link, "duplicate link");
		}
	}
	if (won6 && p->dial != NULL && p2p_link_state(p->dial) != P2P_LINK_UP)
		p2p_link_close(p->dial, "IPv6 is up"); /* it won the race */
	if (!relayed(l) && p->punch != NULL && p->punch != l) {
		/* The peer's open (or a dial) is up first: ours may yet come up
		 * (the other end may have taken it; the duplicate rule settles
		 * it alike at both), and its timing out is no sign that
		 * punching fails. */
		struct link_info *mine = p2p_link_data(p->punch);
		mine->superseded = 1;
	}
	p->link = l;
	if (!relayed(l))
		p->punch_failed = 0; /* the way is open: the next link tries it first */
	p->want = 0;
	p->told_offline = 0;
	p->rdv_busy = 0;
	p->lookup_wait = 0;
	p->backoff_ms = P2P_BACKOFF_MIN_MS;
	if (p->retry != NULL)
		uv_timer_stop(p->retry);
	i->was_up = 1;
	if (relayed(l) && strcmp(n->username, p->name) < 0) {
		/* The smaller name tries a direct link now and then. */
		p->upgrade_ms = P2P_UPGRADE_MIN_MS;
		upgrade_in(n, p, p->upgrade_ms);
	}
	n->ops->up(n->arg, p->name, p2p_link_encrypted(l));
}

static void
link_message(void *owner, struct p2p_link *l, struct json_object *msg)
{
	struct p2p_net *n = owner;
	struct link_info *i = p2p_link_data(l);

	if (i->was_up && i->peer != NULL)
		n->ops->message(n->arg, i->peer->name, p2p_link_encrypted(l), msg);
}

static void
link_binary(void *owner, struct p2p_link *l, const uint8_t *data, size_t len)
{
	struct p2p_net *n = owner;
	struct link_info *i = p2p_link_data(l);

	if (i->was_up && i->peer != NULL && n->ops->binary != NULL)
		n->ops->binary(n->arg, i->peer->name, data, len);
}

static void
link_closed(void *owner, struct p2p_link *l, const char *reason)
{
	struct p2p_net *n = owner;
	struct link_info *i = p2p_link_data(l);
	struct peer *p = i->peer;
	struct peer *pp = p != NULL               ? p
	    : i->expect[0] != '\0' && !n->freeing ? peer_find(n, i->expect)
	                                          : NULL;

	if (pp != NULL && pp->punch == l) {
		pp->punch = NULL;
		if (!i->was_up && !i->superseded && (pp->link == NULL || relayed(pp->link))) {
			/* The NATs did not let it through (and no other open
			 * did, the peer's from its side): a relay next. */
			pp->punch_failed = 1;
			pp->rdv_busy = 0;
			if (p == NULL && pp->link == NULL && pp->dial == NULL)
				retry_later(n, pp);
		}
	}
	if (i->queued) {
		struct link_info **q = &n->queued;
		while (*q != i)
			q = &(*q)->queued_next;
		*q = i->queued_next;
	}
	if (i->prev != NULL)
		i->prev->next = i->next;
	else
		n->links = i->next;
	if (i->next != NULL)
		i->next->prev = i->prev;
	n->nlinks--;
	if (!n->freeing && p != NULL && p->retired == l)
		p->retired = NULL;
	if (!n->freeing && p != NULL && p->dial6 == l) {
		p->dial6 = NULL;
		p->v6_failed = 1;
		if (p->v6_head_start && (p->link == NULL || upgradable(p)) && p->dial == NULL) {
			/* It failed within its head start: the other ways now. */
			p->v6_head_start = 0;
			uv_timer_stop(p->retry);
			start_dial(n, p);
		}
	}
	if (!n->freeing && p != NULL) {
		if (p->dial == l) {
			p->dial = NULL;
			if (!i->was_up && p->link == NULL) {
				/* A direct dial that failed goes through a relay next;
				 * a relayed one that failed tries direct again. */
				p->direct_failed = !i->relayed;
				p->rdv_busy = 0;
			}
			if (p->link == NULL)
				retry_later(n, p);
		}
		if (p->link == l || i->detached) {
			if (p->link == l)
				p->link = NULL;
			if (i->was_up) {
				p->v6_failed = 0; /* the next dial tries IPv6 again */
				n->ops->down(n->arg, p->name, reason);
			}
		}
	}
	free(i);
	if (n->freeing && n->handles == 0 && n->nlinks == 0)
		free(n);
}

static const struct p2p_link_ops link_ops = {
	.verify = link_verify,
	.up = link_up,
	.message = link_message,
	.binary = link_binary,
	.closed = link_closed,
};

/* Deferred work. */

static int
answered(const struct peer *p)
{
	return !p->lookup_need && !p->lookup_busy;
}

/* After a lookup, what waited for it is settled with what is known now.
 * A user the tracker did not answer for is unknown, never keyless. */
static void
settle(struct p2p_net *n)
{
	for (struct link_info *i = n->links, *next; i != NULL; i = next) {
		next = i->next;
		if (!i->verify_wait || !answered(i->peer))
			continue;
		i->verify_wait = 0;
		size_t keylen = 0;
		const uint8_t *key = p2p_link_key(i->link, &keylen);
		const char *why = i->peer->key_state == KEY_UNKNOWN && i->peer->lookup_failed
		    ? "cannot check the key: the tracker is unreachable"
		    : check_identity(n, i->peer, key, keylen);
		if (why != NULL)
			refuse(n, i->peer->name, why);
		p2p_link_verified(i->link, why);
	}
	for (unsigned b = 0; b < P2P_BUCKETS; b++) {
		for (struct peer *p = n->book[b]; p != NULL; p = p->next) {
			if (!p->lookup_wait || !answered(p))
				continue;
			p->lookup_wait = 0;
			if (p->port != 0 && p->key_state != KEY_UNKNOWN) {
				start_dial(n, p);
				continue;
			}
			if (p->port == 0 && !p->lookup_failed && !p->told_offline) {
				p->told_offline = 1;
				n->ops->refused(
				    n->arg, p->name, "not online; messages wait until it is");
			}
			retry_later(n, p);
		}
	}
}

static void
on_resolve(uv_timer_t *t)
{
	struct p2p_net *n = t->data;

	if (n->resolve_settle) {
		n->resolve_settle = 0;
		settle(n);
	}
	if (!n->resolve_lookup)
		return;
	n->resolve_lookup = 0;
	for (unsigned b = 0; b < P2P_BUCKETS && !n->freeing; b++) {
		for (struct peer *p = n->book[b]; p != NULL; p = p->next) {
			if (!p->lookup_need || p->lookup_busy)
				continue;
			p->lookup_need = 0;
			p->lookup_busy = 1;
			n->ops->lookup(n->arg, p->name);
		}
	}
}

/* Listener. */

static void
on_connection(uv_stream_t *server, int status)
{
	struct p2p_net *n = server->data;
	struct p2p_link *l;

	if (status < 0) {
		log_warn("peer port: %s", uv_strerror(status));
		return;
	}
	l = p2p_link_accept(n->loop, server, n->allow_plaintext, &n->params);
	if (l == NULL)
		return;
	info_new(n, l);
	if (n->nlinks > P2P_MAX_LINKS) {
		p2p_link_close(l, "too many links");
		return;
	}
	if (!p2p_ratelimit_allow(n->rate, p2p_link_addr(l), hy_now_ms())) {
		/* One notice a second, however hard the flood. */
		uint64_t now = hy_now_ms();
		n->shed++;
		if (now - n->shed_logged_ms >= 1000) {
			log_warn("%s: too many handshakes: shed %llu connection(s)",
			    p2p_link_addr(l), (unsigned long long)n->shed);
			n->shed = 0;
			n->shed_logged_ms = now;
		}
		p2p_link_close(l, "too many handshakes from this address");
	}
}

/* 0 if nothing holds the address (a plain bind succeeds, IPv6 only if
 * v6only), else a libuv error. */
static int
port_free(const struct sockaddr_storage *sa, int v6only)
{
	int one = 1, rc = 0, fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return uv_translate_sys_error(errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (v6only && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)sa,
	        sa->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                 : sizeof(struct sockaddr_in6)) != 0)
		rc = uv_translate_sys_error(errno);
	close(fd);
	return rc;
}

/* Beside a listener on every IPv4 address, one on every IPv6 address, at
 * the same port (IPv6 only: the IPv4 one has the rest). Where there is
 * no IPv6, or the port is taken there, the peer is IPv4 only. */
static void
listen_on6(struct p2p_net *n, int port)
{
	struct sockaddr_in6 sa;
	uv_os_fd_t fd;
	int one = 1, rc;

	if (uv_ip6_addr("::", port, &sa) != 0 ||
	    port_free((struct sockaddr_storage *)&sa, 1) != 0 ||
	    uv_tcp_init_ex(n->loop, &n->listener6, AF_INET6) != 0)
		return;
	n->listener6_init = 1;
	n->handles++;
	if (uv_fileno((uv_handle_t *)&n->listener6, &fd) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    (rc = uv_tcp_bind(&n->listener6, (struct sockaddr *)&sa, UV_TCP_IPV6ONLY)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&n->listener6, P2P_LISTEN_BACKLOG, on_connection)) !=
	        0) {
		log_info("peer port: no IPv6 listener: IPv4 only");
		uv_close((uv_handle_t *)&n->listener6, on_handle_closed);
		n->listener6_init = 0;
	}
}

static int
listen_on(struct p2p_net *n, const char *host, int port, char **cause)
{
	struct sockaddr_storage sa;
	struct buf b;
	int rc;

	snprintf(n->listen_host, sizeof(n->listen_host), "%s", host);
	n->listen_port = port;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0) {
		rc = UV_EINVAL;
	} else if ((rc = port_free(&sa, 0)) == 0 &&
	    (rc = uv_tcp_init_ex(n->loop, &n->listener, sa.ss_family)) == 0) {
		/* SO_REUSEPORT lets a simultaneous open leave from this port
		 * (p2p_link_punch()); the probe above keeps a port another
		 * process holds a refusal. */
		uv_os_fd_t fd;
		int one = 1;
		n->listener_init = 1;
		if (uv_fileno((uv_handle_t *)&n->listener, &fd) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
			log_warn("peer port: no SO_REUSEPORT: no hole punching");
		if ((rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&sa, 0)) == 0)
			rc = uv_listen(
			    (uv_stream_t *)&n->listener, P2P_LISTEN_BACKLOG, on_connection);
	}
	if (rc == 0) {
		if (strcmp(host, "0.0.0.0") == 0)
			listen_on6(n, port);
		return 0;
	}
	buf_init(&b);
	buf_printf(&b, "peer port %s port %d: %s", host, port, uv_strerror(rc));
	*cause = b.data;
	return -1;
}

struct p2p_net *
p2p_net_new(uv_loop_t *loop, const struct p2p_net_config *cfg, const struct p2p_net_ops *ops,
    void *arg, char **cause)
{
	struct p2p_net *n = xcalloc(1, sizeof(*n));

	n->loop = loop;
	snprintf(n->username, sizeof(n->username), "%s", cfg->username);
	n->id = cfg->id;
	n->known = cfg->known;
	n->allow_plaintext = cfg->allow_plaintext;
	n->ops = ops;
	n->arg = arg;
	n->params.username = n->username;
	n->params.id = n->id;
	n->params.ops = &link_ops;
	n->params.owner = n;
	n->listener.data = n;
	n->listener6.data = n;
	uv_timer_init(loop, &n->resolve);
	n->resolve.data = n;
	n->handles = 2;
	n->rate = p2p_ratelimit_new();
	if (n->rate == NULL) {
		*cause = xstrdup("cannot start the handshake limiter");
		p2p_net_free(n);
		return NULL;
	}
	if (listen_on(n, cfg->host, cfg->port, cause) < 0) {
		p2p_net_free(n);
		return NULL;
	}
	return n;
}

void
p2p_net_free(struct p2p_net *n)
{
	if (n == NULL || n->freeing)
		return;
	n->freeing = 1;
	if (n->listener_init)
		uv_close((uv_handle_t *)&n->listener, on_handle_closed);
	else
		n->handles--;
	if (n->listener6_init)
		uv_close((uv_handle_t *)&n->listener6, on_handle_closed);
	p2p_ratelimit_free(n->rate); /* the listener accepts no more */
	n->rate = NULL;
	uv_timer_stop(&n->resolve);
	uv_close((uv_handle_t *)&n->resolve, on_handle_closed);
	for (unsigned b = 0; b < P2P_BUCKETS; b++) {
		while (n->book[b] != NULL) {
			struct peer *p = n->book[b];
			n->book[b] = p->next;
			if (p->retry != NULL) {
				uv_timer_stop(p->retry);
				p->retry->data = n;
				uv_close((uv_handle_t *)p->retry, on_retry_closed);
			}
			if (p->upgrade != NULL) {
				uv_timer_stop(p->upgrade);
				p->upgrade->data = n;
				uv_close((uv_handle_t *)p->upgrade, on_upgrade_closed);
			}
			punch_unreserve(p);
			free(p);
		}
	}
	for (struct link_info *i = n->links; i != NULL; i = i->next) {
		i->peer = NULL;
		p2p_link_close(i->link, "shutting down");
	}
}

void
p2p_net_set_peer(struct p2p_net *n, const char *user, const char *ip, int port,
    const uint8_t *pubkey, size_t keylen)
{
	struct peer *p;
	int moved;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0 ||
	    strlen(ip) >= P2P_IP_MAX || port < 1 || port > 65535 || keylen > P2P_KEY_MAX)
		return;
	p = peer_get(n, user);
	p->manual = 0;
	moved = p->port != port || strcmp(p->ip, ip) != 0;
	if (moved)
		p->v6_failed = 0;
	snprintf(p->ip, sizeof(p->ip), "%s", ip);
	p->port = port;
	set_key(p, pubkey, keylen);
	if (moved && p->want && p->link == NULL && p->dial == NULL && !p->lookup_wait) {
		p->backoff_ms = P2P_BACKOFF_MIN_MS;
		if (p->retry != NULL)
			uv_timer_stop(p->retry);
		start_dial(n, p);
	}
}

void
p2p_net_set_offline(struct p2p_net *n, const char *user, const uint8_t *pubkey, size_t keylen)
{
	struct peer *p;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0 ||
	    keylen > P2P_KEY_MAX)
		return;
	p = peer_get(n, user);
	if (!p->manual) {
		p->ip[0] = '\0';
		p->port = 0;
	}
	set_key(p, pubkey, keylen);
}

void
p2p_net_lookup_done(struct p2p_net *n, const char *user, int answered)
{
	struct peer *p;

	if (n->freeing || (p = peer_find(n, user)) == NULL)
		return;
	p->lookup_busy = 0;
	p->lookup_failed = !answered;
	n->resolve_settle = 1;
	/* Asked again meanwhile: that answer may predate what is asked. */
	if (p->lookup_need)
		n->resolve_lookup = 1;
	schedule_resolve(n);
}

int
p2p_net_plaintext_ok(struct p2p_net *n, const char *user)
{
	struct peer *p = peer_find(n, user);

	return p != NULL && plaintext_refusal(n, p) == NULL;
}

int
p2p_net_dial(struct p2p_net *n, const char *user, int want)
{
	struct peer *p;

	if (n->freeing || strcmp(user, n->username) == 0 || !hy_name_valid(user, strlen(user)))
		return -1;
	p = peer_get(n, user);
	if (want)
		p->want = 1;
	if (p->link != NULL || p->dial != NULL ||
	    (p->retry != NULL && uv_is_active((uv_handle_t *)p->retry)))
		return 0;
	start_dial(n, p);
	return 0;
}

int
p2p_net_connect(struct p2p_net *n, const char *user, const char *ip, int port)
{
	struct peer *p;

	if (n->freeing || strcmp(user, n->username) == 0 || !hy_name_valid(user, strlen(user)) ||
	    strlen(ip) >= P2P_IP_MAX)
		return -1;
	p = peer_get(n, user);
	snprintf(p->ip, sizeof(p->ip), "%s", ip);
	p->port = port;
	p->manual = 1;
	if (p->link != NULL) {
		struct link_info *old = p2p_link_data(p->link);
		old->detached = 1;
		p2p_link_close(p->link, "replaced by connect");
		p->link = NULL;
	}
	for (struct p2p_link **d = &p->dial; d != NULL; d = d == &p->dial ? &p->dial6 : NULL) {
		if (*d == NULL)
			continue;
		struct link_info *i = p2p_link_data(*d);
		i->peer = NULL;
		p2p_link_close(*d, "replaced by connect");
		*d = NULL;
	}
	p->v6_head_start = 0;
	if (p->retry != NULL)
		uv_timer_stop(p->retry);
	p->backoff_ms = P2P_BACKOFF_MIN_MS;
	p->want = 1;
	start_dial(n, p);
	return 0;
}

int
p2p_net_send(struct p2p_net *n, const char *user, const char *json, size_t len)
{
	struct peer *p = peer_find(n, user);

	if (p == NULL || p->link == NULL)
		return 0;
	struct link_info *i;

	if (p2p_link_send(p->link, json, len) < 0)
		return -1;
	if (!(i = p2p_link_data(p->link))->queued) {
		i->queued = 1;
		i->queued_next = n->queued;
		n->queued = i;
	}
	return 1;
}

void
p2p_net_flush(struct p2p_net *n)
{
	while (n->queued != NULL) {
		struct link_info *i = n->queued;
		n->queued = i->queued_next;
		i->queued = 0;
		p2p_link_flush(i->link);
	}
}

int
p2p_net_send_bulk(struct p2p_net *n, const char *user, const uint8_t *data, size_t len)
{
	struct peer *p = peer_find(n, user);

	if (p == NULL || p->link == NULL || !p2p_link_encrypted(p->link))
		return 0;
	return p2p_link_send_bulk(p->link, data, len) == 0 ? 1 : -1;
}

size_t
p2p_net_queued(struct p2p_net *n, const char *user)
{
	struct peer *p = peer_find(n, user);

	return p == NULL || p->link == NULL ? 0 : p2p_link_queued(p->link);
}

int
p2p_net_link_state(struct p2p_net *n, const char *user)
{
	struct peer *p = peer_find(n, user);

	if (p == NULL || p->link == NULL)
		return -1;
	return p2p_link_encrypted(p->link);
}

int
p2p_net_peer_key(struct p2p_net *n, const char *user, uint8_t *out, size_t *len)
{
	struct peer *p = peer_find(n, user);

	if (p == NULL || p->key_state != KEY_SET)
		return 0;
	memcpy(out, p->key, p->keylen);
	*len = p->keylen;
	return 1;
}

int
p2p_net_peer_addr(struct p2p_net *n, const char *user, const char **ip, int *port)
{
	struct peer *p = peer_find(n, user);

	if (p == NULL || p->port == 0)
		return 0;
	*ip = p->ip;
	*port = p->port;
	return 1;
}

void
p2p_net_set_self(struct p2p_net *n, const char *local_ip, const char *observed_ip)
{
	if (local_ip != NULL)
		snprintf(n->local_ip, sizeof(n->local_ip), "%s", local_ip);
	if (observed_ip != NULL)
		snprintf(n->observed_ip, sizeof(n->observed_ip), "%s", observed_ip);
}

void
p2p_net_set_observed(struct p2p_net *n, const char *user, const char *ip)
{
	struct peer *p;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0 ||
	    strlen(ip) >= P2P_IP_MAX)
		return;
	p = peer_get(n, user);
	snprintf(p->observed, sizeof(p->observed), "%s", ip);
}

int
p2p_net_relay(
    struct p2p_net *n, const char *user, const char *relay, const char *token, int initiator)
{
	struct peer *p;
	struct p2p_link *l;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0 ||
	    n->nlinks >= P2P_MAX_LINKS)
		return -1;
	p = peer_get(n, user);
	if (initiator)
		p->rdv_busy = 0;
	if (p->link != NULL && p2p_link_state(p->link) == P2P_LINK_UP)
		return 0;
	if (initiator && p->dial != NULL)
		return 0;
	l = p2p_link_relay(n->loop, relay, token, initiator, user, &n->params);
	if (l == NULL)
		return -1;
	struct link_info *i = info_new(n, l);
	i->relayed = 1;
	if (initiator) {
		i->peer = p;
		p->dial = l;
	} else {
		snprintf(i->expect, sizeof(i->expect), "%s", user);
	}
	return 0;
}

void
p2p_net_rendezvous_failed(struct p2p_net *n, const char *user, int way)
{
	struct peer *p = peer_find(n, user);

	if (n->freeing || p == NULL)
		return;
	p->rdv_busy = 0;
	p->dialback_wait = 0; /* nobody was asked to dial us */
	punch_unreserve(p);
	if (way)
		p->direct_failed = !p->direct_failed; /* the other way next time */
	if (p->link == NULL && p->dial == NULL)
		retry_later(n, p);
}

void
p2p_net_dial_back(struct p2p_net *n, const char *user)
{
	struct peer *p;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0)
		return;
	p = peer_get(n, user);
	if ((p->link != NULL && !upgradable(p)) || p->dial != NULL)
		return;
	/* Asked to dial: a direct dial, whatever the addresses say. */
	p->direct_failed = 0;
	if (p->port == 0 || p->key_state != KEY_SET) {
		p->lookup_wait = 1;
		ask_about(n, p);
		return;
	}
	struct p2p_link *l = p2p_link_dial(n->loop, p->ip, p->port, p->name, 0, &n->params);
	if (l == NULL)
		return;
	struct link_info *i = info_new(n, l);
	i->peer = p;
	p->dial = l;
}

const char *
p2p_net_link_path(struct p2p_net *n, const char *user, const char **via)
{
	struct peer *p = peer_find(n, user);

	*via = "";
	if (p == NULL || p->link == NULL)
		return NULL;
	*via = p2p_link_via(p->link);
	if (p2p_link_punched(p->link))
		return "punched";
	return (*via)[0] != '\0' ? "relayed" : "direct";
}

int
p2p_net_punch(
    struct p2p_net *n, const char *user, const char *ip, int port, enum p2p_punch_role role)
{
	struct peer *p;
	struct p2p_link *l;
	int initiator, fd;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0 ||
	    strlen(ip) >= P2P_IP_MAX || port < 1 || port > 65535 || n->nlinks >= P2P_MAX_LINKS)
		return -1;
	p = peer_get(n, user);
	if (role == P2P_PUNCH_CALLER) {
		p->rdv_busy = 0;
		fd = p->punch_fd;
		p->punch_fd = -1;
	} else {
		fd = -1;
		if (role == P2P_PUNCH_NAMES)
			p->rdv_busy = 0;
		/* The caller answered with no fresh port (an older tracker):
		 * our own fresh one is of no use. */
		if (role == P2P_PUNCH_NAMES && p->punch_fd >= 0)
			punch_unreserve(p);
	}
	if (p->link != NULL && p2p_link_state(p->link) == P2P_LINK_UP && !upgradable(p)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (role == P2P_PUNCH_ANSWER) {
		/* p dials our peer port from a fresh port of its own and runs
		 * the handshake as dialer: whether its SYN meets ours or our
		 * listener (we were late), the roles agree. That tuple is new:
		 * this open runs beside one of ours. */
		l = p2p_link_punch(
		    n->loop, n->listen_host, n->listen_port, -1, ip, port, 0, user, &n->params);
		if (l == NULL)
			return -1;
		struct link_info *i = info_new(n, l);
		i->punched = 1;
		snprintf(i->expect, sizeof(i->expect), "%s", user);
		return 0;
	}
	if (p->punch != NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (p->punch_failed && !upgradable(p)) {
		/* It failed with this peer before (a NAT that does not keep
		 * ports): do not hold a dial for it; a relay is asked for. */
		if (fd >= 0)
			close(fd);
		if (p->dial == NULL && p->link == NULL && !p->rdv_busy)
			rendezvous_ask(n, p, "relay");
		return 0;
	}
	/* From our fresh port we dial; else both ends dial from their peer
	 * ports and the smaller name runs the handshake as dialer. */
	initiator = fd >= 0 || strcmp(n->username, user) < 0;
	if (initiator && p->dial != NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	l = p2p_link_punch(
	    n->loop, n->listen_host, n->listen_port, fd, ip, port, initiator, user, &n->params);
	if (l == NULL)
		return -1;
	struct link_info *i = info_new(n, l);
	i->punched = 1;
	snprintf(i->expect, sizeof(i->expect), "%s", user);
	p->punch = l;
	if (initiator) {
		i->peer = p;
		p->dial = l;
	}
	return 0;
}

void
p2p_net_set_ip6(struct p2p_net *n, const char *user, const char *ip6)
{
	struct peer *p;

	if (n->freeing || !hy_name_valid(user, strlen(user)) || strcmp(user, n->username) == 0)
		return;
	if (ip6[0] != '\0' && (strlen(ip6) >= P2P_IP_MAX || hy_ip6_rank(ip6) == 0))
		return;
	p = peer_get(n, user);
	if (strcmp(p->ip6, ip6) != 0) {
		snprintf(p->ip6, sizeof(p->ip6), "%s", ip6);
		p->v6_failed = 0;
	}
}

const char *
p2p_net_ip6(struct p2p_net *n)
{
	uv_interface_address_t *ifs;
	int count, best = 0;

	n->ip6[0] = '\0';
	if (!n->listener6_init || uv_interface_addresses(&ifs, &count) != 0)
		return n->ip6;
	for (int k = 0; k < count; k++) {
		char name[P2P_IP_MAX];
		if (ifs[k].is_internal || ifs[k].address.address6.sin6_family != AF_INET6 ||
		    uv_ip6_name(&ifs[k].address.address6, name, sizeof(name)) != 0)
			continue;
		int rank = hy_ip6_rank(name);
		if (rank > best) {
			best = rank;
			snprintf(n->ip6, sizeof(n->ip6), "%s", name);
		}
	}
	uv_free_interface_addresses(ifs, count);
	return n->ip6;
}
