/* outbox.c — the outbox and the seen-id set in the peer database. */
#include "hychat/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"

static const char outbox_schema[] =
    "CREATE TABLE IF NOT EXISTS outbox ("
    "  seq INTEGER PRIMARY KEY,"
    "  peer TEXT NOT NULL,"
    "  msgid TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  UNIQUE (peer, msgid));"
    "CREATE INDEX IF NOT EXISTS outbox_by_peer ON outbox(peer, seq);"
    "CREATE TABLE IF NOT EXISTS seen ("
    "  seq INTEGER PRIMARY KEY,"
    "  sender TEXT NOT NULL,"
    "  msgid TEXT NOT NULL,"
    "  UNIQUE (sender, msgid));"
    "CREATE INDEX IF NOT EXISTS seen_by_sender ON seen(sender, seq);"
    "CREATE TABLE IF NOT EXISTS outbox_channel ("
    "  seq INTEGER PRIMARY KEY,"
    "  channel TEXT NOT NULL,"
    "  msgid TEXT NOT NULL UNIQUE,"
    "  payload TEXT NOT NULL);";

#define OUTBOX_STMTS(X) \
	X(PUT, "INSERT OR IGNORE INTO outbox (peer, msgid, payload) VALUES (?1, ?2, ?3)") \
	X(TRIM, \
	    "DELETE FROM outbox WHERE peer = ?1 AND seq <= (SELECT seq FROM outbox" \
	    " WHERE peer = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)") \
	X(ACK, "DELETE FROM outbox WHERE peer = ?1 AND msgid = ?2") \
	X(EACH, "SELECT seq, msgid, payload FROM outbox WHERE peer = ?1 ORDER BY seq") \
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
	    " WHERE sender = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)")

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
};

struct outbox *
outbox_new(struct peerdb *db, char **cause)
{
	struct outbox *o;

	if (peerdb_exec(db, outbox_schema, cause) < 0)
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

static int
trim(struct outbox *o, enum outbox_stmt id, const char *who, int keep)
{
	sqlite3_stmt *q = stmt(o, id);

	bind_text(q, 1, who);
	sqlite3_bind_int(q, 2, keep);
	return done(q);
}

int
outbox_put(struct outbox *o, const char *peer, const char *id, const char *payload)
{
	sqlite3_stmt *q;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_PUT);
	bind_text(q, 1, peer);
	bind_text(q, 2, id);
	bind_text(q, 3, payload);
	if (done(q) < 0)
		return -1;
	if (++o->puts % OUTBOX_TRIM_EVERY == 0)
		return trim(o, OS_TRIM, peer, OUTBOX_MAX_PER_PEER);
	return 0;
}

int
outbox_ack(struct outbox *o, const char *peer, const char *id)
{
	sqlite3_stmt *q;

	if (peerdb_write(o->db) < 0)
		return -1;
	q = stmt(o, OS_ACK);
	bind_text(q, 1, peer);
	bind_text(q, 2, id);
	if (done(q) < 0)
		return -1;
	return sqlite3_changes(peerdb_handle(o->db)) > 0;
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
	    trim(o, OS_SEEN_TRIM, sender, OUTBOX_SEEN_PER_SENDER) < 0)
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
		count++;
		if (fn(&e, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}
