/* delivery.c — delivery states of sent direct messages in the peer
 * database (delivery.h). */
#include "hychat/delivery.h"

#include <stdlib.h>

#include "hychat/util.h"

static const char delivery_schema[] = "CREATE TABLE IF NOT EXISTS delivery ("
                                      "  seq INTEGER PRIMARY KEY,"
                                      "  msgid TEXT NOT NULL UNIQUE,"
                                      "  state INTEGER NOT NULL);";

/* Only forward: the conflict clause keeps the higher state. */
static const char delivery_set_sql[] = "INSERT INTO delivery (msgid, state) VALUES (?1, ?2)"
                                       " ON CONFLICT (msgid) DO UPDATE SET state = excluded.state"
                                       " WHERE excluded.state > delivery.state";
static const char delivery_get_sql[] = "SELECT state FROM delivery WHERE msgid = ?1";
static const char delivery_trim_sql[] =
    "DELETE FROM delivery WHERE seq <= (SELECT max(seq) FROM delivery) - ?1";

/* Trimming costs an index walk: once per this many writes. */
#define DELIVERY_TRIM_EVERY 4096

static const char *const delivery_names[DELIVERY_STATE_COUNT] = {
	[DELIVERY_PENDING] = "pending",
	[DELIVERY_STORED] = "stored",
	[DELIVERY_DELIVERED] = "delivered",
};

struct delivery {
	struct peerdb *db;
	sqlite3_stmt *set, *get, *trim;
	unsigned writes;
};

struct delivery *
delivery_new(struct peerdb *db, char **cause)
{
	struct delivery *d;

	if (peerdb_exec(db, delivery_schema, cause) < 0)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->db = db;
	if ((d->set = peerdb_prepare(db, delivery_set_sql, cause)) == NULL ||
	    (d->get = peerdb_prepare(db, delivery_get_sql, cause)) == NULL ||
	    (d->trim = peerdb_prepare(db, delivery_trim_sql, cause)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
delivery_free(struct delivery *d)
{
	free(d);
}

int
delivery_set(struct delivery *d, const char *id, enum delivery_state state)
{
	if (peerdb_write(d->db) < 0)
		return -1;
	sqlite3_reset(d->set);
	sqlite3_bind_text(d->set, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(d->set, 2, (int)state);
	int rc = sqlite3_step(d->set);
	sqlite3_reset(d->set);
	sqlite3_clear_bindings(d->set);
	if (rc != SQLITE_DONE)
		return -1;
	int changed = sqlite3_changes(peerdb_handle(d->db)) > 0;
	if (++d->writes % DELIVERY_TRIM_EVERY == 0) {
		sqlite3_reset(d->trim);
		sqlite3_bind_int(d->trim, 1, DELIVERY_KEEP);
		rc = sqlite3_step(d->trim);
		sqlite3_reset(d->trim);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return changed;
}

int
delivery_get(struct delivery *d, const char *id)
{
	int state = -1;

	sqlite3_reset(d->get);
	sqlite3_bind_text(d->get, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(d->get) == SQLITE_ROW)
		state = sqlite3_column_int(d->get, 0);
	sqlite3_reset(d->get);
	sqlite3_clear_bindings(d->get);
	return state;
}

const char *
delivery_name(enum delivery_state state)
{
	return (unsigned)state < DELIVERY_STATE_COUNT ? delivery_names[state] : "unknown";
}
