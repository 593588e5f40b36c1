/* delivery.h — the delivery state of each direct message this user sent,
 * in the peer database: pending (in the outbox), stored (sealed in the
 * recipient's mailbox at the tracker), delivered (acknowledged by the
 * recipient). Kept so that front ends show it after a restart, and so that
 * an outbox entry already in the mailbox is not deposited again.
 *
 * Most states are not written but derived, so that a message costs no row
 * here: pending is its outbox entry waiting (outbox_has); delivered is the
 * entry gone, since only an ack removes a direct message's entry without
 * saying so. Rows are written for what cannot be derived: stored, and
 * dropped (an entry the outbox's bound removed unacknowledged: no mark).
 * Messages stored in the history up to delivery_derived_after() were sent
 * by a version that wrote a row for delivered, and keep what their rows
 * say. */
#ifndef HYCHAT_DELIVERY_H
#define HYCHAT_DELIVERY_H

#include <stdint.h>

#include "hychat/peerdb.h"

/* States kept: the oldest beyond are forgotten (shown without a mark),
 * enforced every few thousand writes. */
#define DELIVERY_KEEP 100000

enum delivery_state {
	DELIVERY_PENDING,
	DELIVERY_STORED,
	DELIVERY_DELIVERED,
	DELIVERY_DROPPED, /* recorded, never shown: the message has no mark */
	DELIVERY_STATE_COUNT
};

struct delivery;

/* Creates the tables if needed in db (used, not owned); newest_seq is the
 * history's newest message now, where the derivation begins if this is
 * the first open that derives (a new database: 0). Returns NULL with
 * *cause (allocated). */
struct delivery *delivery_new(struct peerdb *db, int64_t newest_seq, char **cause);
void delivery_free(struct delivery *d);
/* Records message id's state; a state never moves back (a late "stored"
 * after "delivered" changes nothing). Returns 1 if it changed, 0 if not,
 * -1 on error. */
int delivery_set(struct delivery *d, const char *id, enum delivery_state state);
/* id's state, or -1 if none is recorded (or on error). */
int delivery_get(struct delivery *d, const char *id);
/* The history seq after which delivered is derived, not recorded. */
int64_t delivery_derived_after(struct delivery *d);
/* "pending", "stored", "delivered", "dropped". */
const char *delivery_name(enum delivery_state state);

#endif
