/* delivery.h — the delivery state of each direct message this user sent,
 * in the peer database: pending (in the outbox), stored (sealed in the
 * recipient's mailbox at the tracker), delivered (acknowledged by the
 * recipient). Kept so that front ends show it after a restart, and so that
 * an outbox entry already in the mailbox is not deposited again. The
 * engine writes no row for pending: a message is pending while its outbox
 * entry waits (outbox_has), and gets a row here once stored or delivered. */
#ifndef HYCHAT_DELIVERY_H
#define HYCHAT_DELIVERY_H

#include "hychat/peerdb.h"

/* States kept: the oldest beyond are forgotten (shown without a mark),
 * enforced every few thousand writes. */
#define DELIVERY_KEEP 100000

enum delivery_state {
	DELIVERY_PENDING,
	DELIVERY_STORED,
	DELIVERY_DELIVERED,
	DELIVERY_STATE_COUNT
};

struct delivery;

/* Creates the table if needed in db (used, not owned). Returns NULL with
 * *cause (allocated). */
struct delivery *delivery_new(struct peerdb *db, char **cause);
void delivery_free(struct delivery *d);
/* Records message id's state; a state never moves back (a late "stored"
 * after "delivered" changes nothing). Returns 1 if it changed, 0 if not,
 * -1 on error. */
int delivery_set(struct delivery *d, const char *id, enum delivery_state state);
/* id's state, or -1 if none is recorded (or on error). */
int delivery_get(struct delivery *d, const char *id);
/* "pending", "stored", "delivered". */
const char *delivery_name(enum delivery_state state);

#endif
