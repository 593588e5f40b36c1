/* ratelimit.h — token buckets in a table of fixed size, keyed by bytes
 * (a client address, an account name, both).
 *
 * A bucket holds up to burst tokens and gains per_min of them a minute;
 * each attempt takes one. The table never grows: keys hash (SipHash with a
 * random key, so chosen keys cannot aim at one set) into sets of
 * RATELIMIT_WAYS slots, and a new key takes the slot in its set that
 * matters least: a full bucket with nothing in flight first (it is the
 * same as a fresh one), never a slot that holds another key's state while
 * a better one is there. A key is stored whole, so two keys that share a
 * hash never share or reset each other's bucket.
 *
 * Each slot also counts jobs in flight for its key (ratelimit_hold) and
 * carries a mark (ratelimit_mark), which the login guard uses for "this
 * address once logged in to this account".
 *
 * Thread-safe: one mutex per table. Times are monotonic milliseconds.
 */
#ifndef HYCHAT_RATELIMIT_H
#define HYCHAT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WAYS 8 /* slots per set */
#define RATELIMIT_KEY_MAX 56 /* bytes of a key; longer keys are cut */
#define RATELIMIT_ADDR_KEY_MAX 17 /* family tag + 16 address bytes */
#define RATELIMIT_IPV6_GROUP_BYTES 8 /* IPv6 addresses share a bucket per /64 */

struct ratelimit;

/* A table of about slots buckets (rounded up to a power of two sets),
 * each refilling per_min tokens a minute up to burst. burst 0 turns the
 * buckets off (ratelimit_take always succeeds); holds and marks work on. */
struct ratelimit *ratelimit_new(size_t slots, unsigned per_min, unsigned burst);
void ratelimit_free(struct ratelimit *rl);

/* Takes one token from key's bucket at now. Returns 0, or the whole
 * seconds (at least 1) until the bucket holds a token again. */
unsigned ratelimit_take(struct ratelimit *rl, const void *key, size_t len, uint64_t now);
/* Gives back one token taken for key (never above burst). */
void ratelimit_refund(struct ratelimit *rl, const void *key, size_t len, uint64_t now);

/* Counts one more job in flight for key; returns 0, or -1 (and counts
 * nothing) if max are already. */
int ratelimit_hold(struct ratelimit *rl, const void *key, size_t len, unsigned max);
/* Ends a job counted by ratelimit_hold (nothing if its slot was reused). */
void ratelimit_release(struct ratelimit *rl, const void *key, size_t len);

/* Marks key; ratelimit_marked() is true until its slot is reused. */
void ratelimit_mark(struct ratelimit *rl, const void *key, size_t len, uint64_t now);
int ratelimit_marked(struct ratelimit *rl, const void *key, size_t len);

/* Writes the bucket key of an address in text form: the IPv4 address
 * (also from an IPv4-mapped IPv6 one), or the /64 of an IPv6 address.
 * Text that is no address is its own key. Returns the key's length. */
size_t ratelimit_addr_key(const char *ip, uint8_t out[RATELIMIT_KEY_MAX]);

#endif
