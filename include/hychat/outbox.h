/* outbox.h — delivery state in the peer database: the sender's outbox of
 * messages not yet acknowledged, and the receiver's record of message ids
 * already seen, so that a message resent after a drop is shown once.
 *
 * An outbox entry is (peer, id, payload): the payload is the message's
 * JSON as it goes on the wire, or a reference to the history row it was
 * stored in (a channel message to fifty members is one copy, not fifty). Entries are kept in the order they were
 * put and removed by outbox_ack(): a direct message's entry gone by its
 * ack is what "delivered" is (delivery.h), so an entry dropped otherwise
 * is told (outbox_on_drop). The seen set keeps the last
 * OUTBOX_SEEN_PER_SENDER ids of each sender; both bounds are enforced every
 * few thousand inserts, so either may be passed by that much meanwhile.
 *
 * A channel message is kept apart, as (channel, id, payload), from the
 * moment it is sent until the tracker has named the channel's members and
 * it is in the outbox for each of them: stored in the same commit as the
 * sender's history, it survives a restart before the members are known.
 */
#ifndef HYCHAT_OUTBOX_H
#define HYCHAT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "hychat/peerdb.h"

#define OUTBOX_SEEN_PER_SENDER 4096
#define OUTBOX_MAX_PER_PEER 10000 /* oldest entries beyond this are dropped */

struct outbox_entry {
	int64_t seq;
	const char *peer;
	const char *id;
	/* The message's JSON as it goes on the wire; "" when ref names the
	 * history row that holds it. */
	const char *payload;
	int64_t ref; /* the history seq of the message, 0 if payload is whole */
	int channel; /* a channel message's entry (put only) */
};

/* Returns 0 to go on, non-zero to stop the walk. */
typedef int outbox_fn(const struct outbox_entry *e, void *arg);
/* Told of an entry dropped unacknowledged (past OUTBOX_MAX_PER_PEER). */
typedef void outbox_drop_fn(const char *peer, const char *id, void *arg);

struct outbox;

/* Creates the tables if needed in db (used, not owned). Returns NULL with
 * *cause (allocated). */
struct outbox *outbox_new(struct peerdb *db, char **cause);
void outbox_free(struct outbox *o);
/* Queues e->id for e->peer: with e->ref, a reference to the history row
 * (which must outlive the entry), else e->payload; e->channel: a channel
 * message (to one member). Returns 0 or -1. */
int outbox_put(struct outbox *o, const struct outbox_entry *e);
/* Removes peer's entry id. Returns 1 if it was there, with *channel (if
 * not NULL) as it was put; 0 if not; -1. */
int outbox_ack(struct outbox *o, const char *peer, const char *id, int *channel);
/* fn is told of every entry the bound drops, before the commit that drops
 * it. */
void outbox_on_drop(struct outbox *o, outbox_drop_fn *fn, void *arg);
/* 1 if peer's entry id is waiting, 0 if not, -1 on error. */
int outbox_has(struct outbox *o, const char *peer, const char *id);
/* Calls fn for peer's entries, oldest first. Returns the count, or -1. */
int outbox_each(struct outbox *o, const char *peer, outbox_fn *fn, void *arg);
/* The number of entries for peer (NULL: all peers), or -1. */
int64_t outbox_count(struct outbox *o, const char *peer);
/* Calls fn(peer) for each peer with entries waiting. Returns the count or -1. */
int outbox_peers(struct outbox *o, void (*fn)(const char *peer, void *arg), void *arg);
/* Keeps channel message id until outbox_channel_done(). Returns 0 or -1. */
int outbox_channel_put(struct outbox *o, const char *channel, const char *id, const char *payload);
/* The channel message id is in the outbox of each member. Returns 0 or -1. */
int outbox_channel_done(struct outbox *o, const char *id);
/* Calls fn for every channel message kept, oldest first; e->peer is the
 * channel. Returns the count, or -1. */
int outbox_channel_each(struct outbox *o, outbox_fn *fn, void *arg);
/* Records id from sender. Returns 1 if new, 0 if seen before, -1 on error. */
int outbox_seen(struct outbox *o, const char *sender, const char *id);

#endif
