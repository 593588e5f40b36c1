/* delivery.c — delivery states of sent direct messages in the peer
 * database (delivery.h). */
#include "hychat/delivery.h"

#include <stdint.h>
#include <stdlib.h>

#include "hychat/util.h"

static const char delivery_schema[] = "CREATE TABLE IF NOT EXISTS delivery ("
                                      "  seq INTEGER PRIMARY KEY,"
                                      "  msgid TEXT NOT NULL UNIQUE,"
                                      "  state INTEGER NOT NULL);"
                                      "CREATE TABLE IF NOT EXISTS delivery_since ("
                                      "  one INTEGER PRIMARY KEY CHECK (one = 1),"
                                      "  seq INTEGER NOT NULL);";

/* The first open by a version that derives "delivered" records where the
 * derivation begins; later opens keep it. */
static const char delivery_since_set_sql[] =
    "INSERT OR IGNORE INTO delivery_since (one, seq) VALUES (1, ?1)";
static const char delivery_since_get_sql[] = "SELECT seq FROM delivery_since WHERE one = 1";

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
	[DELIVERY_DROPPED] = "dropped",
};

struct delivery {
	struct peerdb *db;
	sqlite3_stmt *set, *get, *trim;
	unsigned writes;
	int64_t since;
};

/* Records newest as where the derivation begins unless a seq is recorded,
 * and reads back the one that is. */
static int
since(struct peerdb *db, int64_t newest, int64_t *out, char **cause)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(peerdb_handle(db), delivery_since_set_sql, -1, &q, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(q, 1, newest);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	q = NULL;
	if (rc != SQLITE_DONE ||
	    sqlite3_prepare_v2(peerdb_handle(db), delivery_since_get_sql, -1, &q, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW)
		goto fail;
	*out = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return 0;
fail:
	sqlite3_finalize(q);
	*cause = peerdb_cause(db, "delivery");
	return -1;
}

struct delivery *
delivery_new(struct peerdb *db, int64_t newest_seq, char **cause)
{
	struct delivery *d;
	int64_t from;

	if (peerdb_exec(db, delivery_schema, cause) < 0 || since(db, newest_seq, &from, cause) < 0)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->db = db;
	d->since = from;
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

int64_t
delivery_derived_after(struct delivery *d)
{
	return d->since;
}

const char *
delivery_name(enum delivery_state state)
{
	return (unsigned)state < DELIVERY_STATE_COUNT ? delivery_names[state] : "unknown";
}
