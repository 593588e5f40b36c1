/* registry.h — the tracker's online state, in memory: peers, channels and
 * their members, bearer tokens.
 *
 * Users are keyed by name in a hash table (SipHash with a random key, so
 * chosen names cannot flood one chain); each channel keeps its members in
 * an array sorted by name, so a page of a large channel ("limit" members
 * after a name) is a binary search and a short walk. A peer is online
 * until its expiry; expired peers are invisible at once and reclaimed by
 * registry_sweep() a slice of the table at a time.
 *
 * A registry is not thread-safe: the caller serialises (the local store,
 * store_local.c, holds a read-write lock around every call). Times are monotonic milliseconds
 * passed in by the caller. Names handed to the registry must be valid
 * (hy_name_valid(), hy_channel_canon()).
 */
#ifndef HYCHAT_REGISTRY_H
#define HYCHAT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define REG_IP_MAX 45 /* longest IPv6 text form */
#define REG_PUBKEY_MAX 64 /* raw public key bytes */
#define REG_PUBKEY_TEXT_SIZE 89 /* its base64, NUL included */
#define REG_TOKEN_BYTES 32 /* random bytes per token (256 bits) */
#define REG_TOKEN_TEXT_SIZE 44 /* base64url of the token, NUL included */
#define REG_MAX_TOKENS 16 /* live tokens per user; more revoke the oldest */

struct registry;

/* One online peer, as the list functions show it. */
struct registry_peer {
	const char *name;
	const char *ip;
	unsigned port;
	uint32_t peer_id;
	const char *pubkey; /* base64; NULL when the user never sent one */
	const char *observed, *ip6; /* registry_peer_nat()'s; "" offline or none */
	int online; /* 0 only from registry_list_members() */
};

typedef void (*registry_peer_fn)(const struct registry_peer *p, void *arg);

struct registry *registry_new(void);
void registry_free(struct registry *r);

/* Peers. */

/* Registers or refreshes user's address, online until expires. Returns
 * the peer id, which stays the user's for the life of the process. */
uint32_t registry_peer_set(
    struct registry *r, const char *user, const char *ip, unsigned port, uint64_t expires);
/* Sets what reaches user behind NAT: the address its requests come from
 * and its IPv6 address beside the other ("" for none). */
void registry_peer_nat(struct registry *r, const char *user, const char *observed, const char *ip6);
/* Moves an online user's expiry to expires; -1 if the user is not online. */
int registry_peer_renew(struct registry *r, const char *user, uint64_t now, uint64_t expires);
/* Takes user offline; nothing if it was not online. */
void registry_peer_drop(struct registry *r, const char *user);
/* True if user is online at now. */
int registry_peer_online(const struct registry *r, const char *user, uint64_t now);
/* What the registry knows of one user, copied out: 1 online (address
 * filled in), 0 known but offline, -1 unknown to the registry. The key is
 * filled in either way ("" for none). */
struct registry_user_info {
	char ip[REG_IP_MAX + 1];
	unsigned port;
	char pubkey[REG_PUBKEY_TEXT_SIZE];
	char observed[REG_IP_MAX + 1], ip6[REG_IP_MAX + 1]; /* online: registry_peer_nat()'s */
};
int registry_user_info(
    const struct registry *r, const char *user, uint64_t now, struct registry_user_info *out);
/* Peers counted online (expired ones count until swept). */
size_t registry_online(const struct registry *r);

/* True if key differs from the public key known for user. */
int registry_pubkey_differs(
    const struct registry *r, const char *user, const uint8_t *key, size_t len);
/* Remembers user's public key (len <= REG_PUBKEY_MAX), kept as base64
 * text so that listings do not encode it again each time. */
void registry_pubkey_set(struct registry *r, const char *user, const uint8_t *key, size_t len);

/* Channels. */

/* Adds user to channel, creating the channel. Returns 1 if added, 0 if
 * already a member. Cheap when members arrive in name order (loading). */
int registry_join(struct registry *r, const char *channel, const char *user);
/* Removes user from channel, deleting the channel when it empties.
 * Returns 0, or -1 if user was not a member. */
int registry_leave(struct registry *r, const char *channel, const char *user);
int registry_is_member(const struct registry *r, const char *channel, const char *user);
size_t registry_channel_count(const struct registry *r);
/* How many channels user is a member of. */
size_t registry_user_channels(const struct registry *r, const char *user);
int registry_channel_exists(const struct registry *r, const char *channel);
/* Calls fn with at most limit channels and their member counts, in name
 * order, from the first name after `after` (NULL: from the start).
 * Returns how many; *more is set if further channels follow. */
size_t registry_channels(const struct registry *r, const char *after, size_t limit,
    void (*fn)(const char *name, size_t members, void *arg), void *arg, int *more);
/* Calls fn with the first limit member names of channel, in name order.
 * Returns the channel's member count, or -1 if there is no such channel. */
long registry_members(const struct registry *r, const char *channel, size_t limit,
    void (*fn)(const char *name, void *arg), void *arg);

/* Calls fn for at most limit peers online at now, in name order, from the
 * first name after `after` (NULL: from the start), in channel (NULL: all
 * peers that were ever online). Returns how many, or -1 if the channel
 * does not exist; *more is set if further online peers follow. */
long registry_list(const struct registry *r, const char *channel, const char *after, size_t limit,
    uint64_t now, registry_peer_fn fn, void *arg, int *more);
/* The same over every member of channel, online at now or not (online
 * tells which); an offline member's address is not given (ip "", port 0). */
long registry_list_members(const struct registry *r, const char *channel, const char *after,
    size_t limit, uint64_t now, registry_peer_fn fn, void *arg, int *more);

/* Tokens. */

/* Issues a random token for user, valid until expires, and writes its text
 * (base64url, no padding) to out. Revokes the user's oldest token when it
 * already holds REG_MAX_TOKENS. */
void registry_token_issue(
    struct registry *r, const char *user, uint64_t expires, char out[REG_TOKEN_TEXT_SIZE]);
/* Returns the user a token text stands for, or NULL if it is unknown or
 * expired at now. The comparison takes the same time wherever it differs. */
const char *registry_token_user(
    const struct registry *r, const char *text, size_t len, uint64_t now);
/* Revokes a token; returns 0, or -1 if it was not valid at now. */
int registry_token_revoke(struct registry *r, const char *text, size_t len, uint64_t now);
/* Live tokens (expired ones count until swept). */
size_t registry_token_count(const struct registry *r);

/* Visits up to slice hash buckets of users and of tokens, from where the
 * previous call stopped, taking expired peers offline and dropping
 * expired tokens. Returns how many it removed. */
size_t registry_sweep(struct registry *r, uint64_t now, size_t slice);

#endif
