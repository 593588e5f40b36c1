/* p2p_ratelimit.h — the budget of handshakes per source: a token bucket
 * for each, a burst of P2P_RATE_BURST and then P2P_RATE_PER_S a second.
 *
 * A source is an IPv4 address, or the /64 prefix of an IPv6 address (the
 * size of a subnet: whoever holds one address of it usually holds all of
 * them); an IPv4-mapped IPv6 address is its IPv4 address.
 *
 * The buckets are a fixed table of P2P_RATE_ADDRS, P2P_RATE_WAYS to a set,
 * under a hash keyed at random, so nobody can aim sources at one set.
 * Another source never resets a bucket: a new source takes a free slot of
 * its set or, if none, the slot whose bucket holds the most tokens (a full
 * bucket is as good as none), so a drained source stays drained however
 * many others come by. A pure function of the addresses and the times it
 * is given. */
#ifndef HYCHAT_P2P_RATELIMIT_H
#define HYCHAT_P2P_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define P2P_RATE_BURST 64 /* handshakes from one source at once */
#define P2P_RATE_PER_S 20 /* then this many a second */
#define P2P_RATE_ADDRS 4096 /* sources remembered */
#define P2P_RATE_WAYS 8 /* slots a source may take */
#define P2P_RATE_IPV6_PREFIX 8 /* bytes of an IPv6 address that name its source: /64 */
#define P2P_RATE_SOURCE_BYTES 17 /* a family byte and up to 16 of address */

struct p2p_ratelimit;

struct p2p_ratelimit *p2p_ratelimit_new(void);
void p2p_ratelimit_free(struct p2p_ratelimit *rl);
/* 1 if a handshake from addr (an IPv4 or IPv6 address as text) may go on
 * at now_ms (a monotonic clock), taking a token; 0 if it must be shed. */
int p2p_ratelimit_allow(struct p2p_ratelimit *rl, const char *addr, uint64_t now_ms);
/* The source addr counts as, in src: the same bytes for two addresses of
 * one source. Text that is no address is one source of its own ("?"). */
void p2p_ratelimit_source(const char *addr, uint8_t src[P2P_RATE_SOURCE_BYTES]);

#endif
