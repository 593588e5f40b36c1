/* contacts.h — the user's contacts and blocked users, in the peer
 * database (table "contacts": user, contact, blocked), kept in memory too
 * so that the check made on every incoming message costs no query.
 *
 * A user may be a contact, blocked, or both; a row that is neither is
 * removed. Writes go in the database's grouped transaction (peerdb.h).
 */
#ifndef HYCHAT_CONTACTS_H
#define HYCHAT_CONTACTS_H

#include "hychat/peerdb.h"

#define CONTACTS_MAX 10000 /* users in the list at once */
#define CONTACTS_NAME_MAX 64

struct contact {
	const char *user;
	int contact, blocked;
};

enum contacts_flag {
	CONTACTS_CONTACT,
	CONTACTS_BLOCKED
};

struct contacts;

/* Creates the table if needed in db (used, not owned) and loads it.
 * Returns NULL with *cause (allocated). */
struct contacts *contacts_open(struct peerdb *db, char **cause);
void contacts_free(struct contacts *c);
/* Sets user's contact flag (what: CONTACTS_CONTACT) or blocked flag
 * (CONTACTS_BLOCKED) to on. Returns 1 if it changed, 0 if it was so, or
 * -1: the database failed, or the list is full (CONTACTS_MAX). */
int contacts_set(struct contacts *c, const char *user, enum contacts_flag what, int on);
/* user's entry, or NULL if neither contact nor blocked. */
const struct contact *contacts_get(const struct contacts *c, const char *user);
int contacts_is_blocked(const struct contacts *c, const char *user);
/* Every entry, sorted by user. */
const struct contact *contacts_list(const struct contacts *c, size_t *n);

#endif
