/* outbox.c — the outbox and the seen-id set in the peer database.
 *
 * Each table has one index, its unique key: a second one, by (peer, seq),
 * cost every message a B-tree page more in each commit that put or
 * removed it, and served only the walks in order (a link coming up, the
 * trims every few thousand inserts), which sort one peer's rows instead.
 * Databases made with it drop it. */
#include "hychat/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"

static const char outbox_schema[] = "CREATE TABLE IF NOT EXISTS outbox ("
                                    "  seq INTEGER PRIMARY KEY,"
                                    "  peer TEXT NOT NULL,"
                                    "  msgid TEXT NOT NULL,"
                                    "  payload TEXT NOT NULL,"
                                    "  channel INTEGER NOT NULL DEFAULT 0,"
                                    "  UNIQUE (peer, msgid));"
                                    "DROP INDEX IF EXISTS outbox_by_peer;"
                                    "CREATE TABLE IF NOT EXISTS seen ("
                                    "  seq INTEGER PRIMARY KEY,"
                                    "  sender TEXT NOT NULL,"
                                    "  msgid TEXT NOT NULL,"
                                    "  UNIQUE (sender, msgid));"
                                    "DROP INDEX IF EXISTS seen_by_sender;"
                                    "CREATE TABLE IF NOT EXISTS outbox_channel ("
                                    "  seq INTEGER PRIMARY KEY,"
                                    "  channel TEXT NOT NULL,"
                                    "  msgid TEXT NOT NULL UNIQUE,"
                                    "  payload TEXT NOT NULL);";

#define OUTBOX_STMTS(X) \
	X(PUT, \
	    "INSERT OR IGNORE INTO outbox (peer, msgid, payload, channel, ref)" \
	    " VALUES (?1, ?2, ?3, ?4, ?5)") \
	X(TRIM, \
	    "DELETE FROM outbox WHERE peer = ?1 AND seq <= (SELECT seq FROM outbox" \
	    " WHERE peer = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2) RETURNING msgid") \
	X(ACK_FIND, "SELECT seq, channel FROM outbox WHERE peer = ?1 AND msgid = ?2") \
	X(ACK, "DELETE FROM outbox WHERE seq = ?1") \
	X(EACH, "SELECT seq, msgid, payload, ref FROM outbox WHERE peer = ?1 ORDER BY seq") \
	X(HAS, "SELECT 1 FROM outbox WHERE peer = ?1 AND msgid = ?2") \
	X(COUNT_PEER, "SELECT count(*) FROM outbox WHERE peer = ?1") \
	X(COUNT_ALL, "SELECT count(*) FROM outbox") \
	X(PEERS, "SELECT DISTINCT peer FROM outbox ORDER BY peer") \
	X(CHAN_PUT, \
	    "INSERT OR IGNORE INTO outbox_channel (channel, msgid, payload)" \
	    " VALUES (?1, ?2, ?3)") \
	X(CHAN_DONE, "DELETE FROM outbox_channel WHERE msgid = ?1") \
	X(CHAN_EACH, "SELECT seq, channel, msgid, payload FROM outbox_channel ORDER BY seq") \
	X(SEEN_ADD, "INSERT OR IGNORE INTO seen (sender, msgid) VALUES (?1, ?2)") \
	X(SEEN_TRIM, \
	    "DELETE FROM seen WHERE sender = ?1 AND seq <= (SELECT seq FROM seen" \
	    " WHERE sender = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2) RETURNING msgid")

enum outbox_stmt {
#define OUTBOX_STMT_ENUM(id, sql) OS_##id,
	OUTBOX_STMTS(OUTBOX_STMT_ENUM)
#undef OUTBOX_STMT_ENUM
	OS_COUNT
};

static const char *const outbox_sql[OS_COUNT] = {
#define OUTBOX_STMT_SQL(id, sql) sql,
	OUTBOX_STMTS(OUTBOX_STMT_SQL)
#undef OUTBOX_STMT_SQL
};

/* Trimming costs an index walk: do it once per this many inserts. */
#define OUTBOX_TRIM_EVERY 4096

struct outbox {
	struct peerdb *db;
	sqlite3_stmt *st[OS_COUNT];
	unsigned puts, seens;
	outbox_drop_fn *on_drop;
	void *drop_arg;
};

/* Columns a database made before them gains: whether an entry is a
 * channel message's (the entries already there count as direct), and the
 * history row that holds its message (none: the payload is whole). */
static const struct {
	const char *column, *sql;
} outbox_added[] = {
	{ "channel", "ALTER TABLE outbox ADD COLUMN channel INTEGER NOT NULL DEFAULT 0" },
	{ "ref", "ALTER TABLE outbox ADD COLUMN ref INTEGER" },
};

static int
add_columns(struct peerdb *db, char **cause)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(outbox_added); i++) {
		sqlite3_stmt *q = NULL;
		int rc;
		if (sqlite3_prepare_v2(peerdb_handle(db),
		        "SELECT 1 FROM pragma_table_info('outbox') WHERE name = ?1", -1, &q,
		        NULL) != SQLITE_OK) {
			*cause = peerdb_cause(db, "outbox");
			return -1;
		}
		sqlite3_bind_text(q, 1, outbox_added[i].column, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_finalize(q);
		if (rc != SQLITE_ROW && peerdb_exec(db, outbox_added[i].sql, cause) < 0)
			return -1;
	}
	return 0;
}

struct outbox *
outbox_new(struct peerdb *db, char **cause)
{
	struct outbox *o;

	if (peerdb_exec(db, outbox_schema, cause) < 0 || add_columns(db, cause) < 0)
		return NULL;
	o = xcalloc(1, sizeof(*o));
	o->db = db;
	for (int i = 0; i < OS_COUNT; i++) {
		if ((o->st[i] = peerdb_prepare(db, outbox_sql[i], cause)) == NULL) {
			free(o);
			return NULL;
		}
	}
	return o;
}

void
outbox_free(struct outbox *o)
{
	free(o);
}

static sqlite3_stmt *
stmt(struct outbox *o, enum outbox_stmt id)
{
	sqlite3_reset(o->st[id]);
	sqlite3_clear_bindings(o->st[id]);
	return o->st[id];
}

static void
bind_text(sqlite3_stmt *q, int i, const char *v)
{
	sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
}

static int
done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Keeps who's newest `keep` rows; with fn, each row dropped is told. */
static int
trim(
    struct outbox *o, enum outbox_stmt id, const char *who, int keep, outbox_drop_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(o, id);
	int rc;

	bind_text(q, 1, who);
	sqlite3_bind_int(q, 2, keep);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		if (fn != NULL)
			fn(who, (const char *)sqlite3_column_text(q, 0), arg);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

void
outbox_on_drop(struct outbox *o, outbox_drop_fn *fn, void *arg)
{
	o->on_drop = fn;
	o->drop_arg = arg;
}

int
outbox_put(struct outbox *o, const struct outbox_entry *e)
{
	sqlite3_stmt *q;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_PUT);
	bind_text(q, 1, e->peer);
	bind_text(q, 2, e->id);
	bind_text(q, 3, e->ref > 0 ? "" : e->payload);
	sqlite3_bind_int(q, 4, e->channel != 0);
	if (e->ref > 0)
		sqlite3_bind_int64(q, 5, e->ref);
	if (done(q) < 0)
		return -1;
	if (++o->puts % OUTBOX_TRIM_EVERY == 0)
		return trim(o, OS_TRIM, e->peer, OUTBOX_MAX_PER_PEER, o->on_drop, o->drop_arg);
	return 0;
}

int
outbox_ack(struct outbox *o, const char *peer, const char *id, int *channel)
{
	sqlite3_stmt *q;
	sqlite3_int64 seq;
	int rc;

	if (peerdb_write(o->db) < 0)
		return -1;
	/* Found, then deleted by rowid: a DELETE ... RETURNING gathers its
	 * rows in an ephemeral table, a B-tree and a pager opened and closed
	 * at each run, and a channel message's sender runs this once per
	 * member. */
	q = stmt(o, OS_ACK_FIND);
	bind_text(q, 1, peer);
	bind_text(q, 2, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		seq = sqlite3_column_int64(q, 0);
		if (channel != NULL)
			*channel = sqlite3_column_int(q, 1);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	q = stmt(o, OS_ACK);
	sqlite3_bind_int64(q, 1, seq);
	return done(q) < 0 ? -1 : 1;
}

int
outbox_has(struct outbox *o, const char *peer, const char *id)
{
	sqlite3_stmt *q = stmt(o, OS_HAS);
	int rc;

	bind_text(q, 1, peer);
	bind_text(q, 2, id);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
outbox_each(struct outbox *o, const char *peer, outbox_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(o, OS_EACH);
	struct outbox_entry e;
	int count = 0, rc;

	bind_text(q, 1, peer);
	e.peer = peer;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		e.seq = sqlite3_column_int64(q, 0);
		e.id = (const char *)sqlite3_column_text(q, 1);
		e.payload = (const char *)sqlite3_column_text(q, 2);
		e.ref = sqlite3_column_int64(q, 3);
		e.channel = 0; /* not read: no walk needs it */
		count++;
		if (fn(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}

int64_t
outbox_count(struct outbox *o, const char *peer)
{
	sqlite3_stmt *q = stmt(o, peer != NULL ? OS_COUNT_PEER : OS_COUNT_ALL);
	int64_t n = -1;

	if (peer != NULL)
		bind_text(q, 1, peer);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return n;
}

int
outbox_peers(struct outbox *o, void (*fn)(const char *peer, void *arg), void *arg)
{
	sqlite3_stmt *q = stmt(o, OS_PEERS);
	int count = 0, rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		fn((const char *)sqlite3_column_text(q, 0), arg);
		count++;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}

int
outbox_seen(struct outbox *o, const char *sender, const char *id)
{
	sqlite3_stmt *q;
	int fresh;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_SEEN_ADD);
	bind_text(q, 1, sender);
	bind_text(q, 2, id);
	if (done(q) < 0)
		return -1;
	fresh = sqlite3_changes(peerdb_handle(o->db)) > 0;
	if (fresh && ++o->seens % OUTBOX_TRIM_EVERY == 0 &&
	    trim(o, OS_SEEN_TRIM, sender, OUTBOX_SEEN_PER_SENDER, NULL, NULL) < 0)
		return -1;
	return fresh;
}

int
outbox_channel_put(struct outbox *o, const char *channel, const char *id, const char *payload)
{
	sqlite3_stmt *q;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_CHAN_PUT);
	bind_text(q, 1, channel);
	bind_text(q, 2, id);
	bind_text(q, 3, payload);
	return done(q);
}

int
outbox_channel_done(struct outbox *o, const char *id)
{
	sqlite3_stmt *q;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_CHAN_DONE);
	bind_text(q, 1, id);
	return done(q);
}

int
outbox_channel_each(struct outbox *o, outbox_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(o, OS_CHAN_EACH);
	struct outbox_entry e;
	int count = 0, rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		e.seq = sqlite3_column_int64(q, 0);
		e.peer = (const char *)sqlite3_column_text(q, 1);
		e.id = (const char *)sqlite3_column_text(q, 2);
		e.payload = (const char *)sqlite3_column_text(q, 3);
		e.ref = 0;
		e.channel = 1;
		count++;
		if (fn(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}
