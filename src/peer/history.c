/* history.c — conversations and messages in the peer database. */
#include "hychat/history.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"

static const char history_schema[] =
    "CREATE TABLE IF NOT EXISTS conversations ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT UNIQUE NOT NULL,"
    "  unread INTEGER NOT NULL DEFAULT 0,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  joined INTEGER NOT NULL DEFAULT 0,"
    "  joined_at TEXT);"
    "CREATE TABLE IF NOT EXISTS messages ("
    "  seq INTEGER PRIMARY KEY,"
    "  conv INTEGER NOT NULL REFERENCES conversations(id),"
    "  msgid TEXT,"
    "  sender TEXT NOT NULL,"
    "  text TEXT NOT NULL,"
    "  time TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  outgoing INTEGER NOT NULL,"
    "  encrypted INTEGER NOT NULL,"
    "  sig TEXT);"
    "CREATE INDEX IF NOT EXISTS messages_by_conv ON messages(conv, seq);";

/* A database made before channel messages were signed gains the columns
 * of the backlog: each message's signature, and when we joined a channel. */
static const struct {
	const char *table, *column, *sql;
} history_added[] = {
	{ "messages", "sig", "ALTER TABLE messages ADD COLUMN sig TEXT" },
	{ "conversations", "joined_at", "ALTER TABLE conversations ADD COLUMN joined_at TEXT" },
};

/* Local time as messages carry it (to the millisecond). */
#define HISTORY_NOW "strftime('%Y-%m-%dT%H:%M:%f', 'now', 'localtime')"

#define HISTORY_STMTS(X) \
	X(CONV_ID, "SELECT id FROM conversations WHERE name = ?1") \
	X(CONV_ADD, "INSERT INTO conversations (name) VALUES (?1)") \
	X(MSG_ADD, \
	    "INSERT INTO messages (conv, msgid, sender, text, time, kind, outgoing," \
	    " encrypted, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)") \
	X(CONV_BUMP, "UPDATE conversations SET unread = unread + ?2, last_seq = ?3 WHERE id = ?1") \
	X(CONV_UNREAD, "SELECT unread FROM conversations WHERE id = ?1") \
	X(LAST, \
	    "SELECT seq, msgid, sender, text, time, kind, outgoing, encrypted, sig FROM" \
	    " (SELECT * FROM messages WHERE conv = (SELECT id FROM conversations" \
	    " WHERE name = ?1) AND seq < ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq") \
	X(AFTER, \
	    "SELECT seq, msgid, sender, text, time, kind, outgoing, encrypted, sig FROM messages" \
	    " WHERE conv = (SELECT id FROM conversations WHERE name = ?1) AND seq > ?2" \
	    " ORDER BY seq LIMIT ?3") \
	X(SEARCH, \
	    "SELECT seq, msgid, sender, text, time, kind, outgoing, encrypted, sig FROM messages" \
	    " WHERE conv = (SELECT id FROM conversations WHERE name = ?1) AND seq < ?2" \
	    " AND text LIKE ?3 ESCAPE '\\' ORDER BY seq DESC LIMIT ?4") \
	X(MARK_READ, \
	    "UPDATE conversations SET unread = min(unread, (SELECT count(*) FROM messages" \
	    " WHERE conv = conversations.id AND seq > ?2 AND outgoing = 0 AND kind != ?3))" \
	    " WHERE name = ?1") \
	X(CONVS, "SELECT name, unread, last_seq FROM conversations ORDER BY last_seq DESC, name") \
	X(UNREAD, "SELECT unread FROM conversations WHERE name = ?1") \
	X(LAST_SEQ, "SELECT last_seq FROM conversations WHERE name = ?1") \
	X(SET_JOINED, \
	    "UPDATE conversations SET joined_at = CASE WHEN ?2 = 1 AND (joined = 0 OR" \
	    " joined_at IS NULL) THEN " HISTORY_NOW " ELSE joined_at END, joined = ?2" \
	    " WHERE name = ?1") \
	X(JOINED, "SELECT name FROM conversations WHERE joined = 1 ORDER BY id") \
	X(SIGNED_AFTER, \
	    "SELECT seq, msgid, sender, text, time, kind, outgoing, encrypted, sig FROM messages" \
	    " WHERE conv = (SELECT id FROM conversations WHERE name = ?1) AND seq > ?2" \
	    " AND time >= ?3 AND sig IS NOT NULL ORDER BY seq LIMIT ?4") \
	X(SIGNED_START, \
	    "SELECT seq FROM messages WHERE conv = (SELECT id FROM conversations" \
	    " WHERE name = ?1) AND time >= ?2 AND sig IS NOT NULL ORDER BY seq DESC" \
	    " LIMIT 1 OFFSET ?3") \
	X(NEWEST_TIME, \
	    "SELECT max(coalesce((SELECT max(time) FROM messages WHERE conv = c.id AND" \
	    " kind != ?2), ''), coalesce(c.joined_at, '')) FROM conversations c WHERE" \
	    " c.name = ?1") \
	X(NEWEST_SEQ, "SELECT coalesce(max(seq), 0) FROM messages") \
	X(GET, \
	    "SELECT m.seq, m.msgid, m.sender, m.text, m.time, m.kind, m.outgoing, m.encrypted," \
	    " m.sig, c.name FROM messages m JOIN conversations c ON c.id = m.conv" \
	    " WHERE m.seq = ?1") \
	X(MARK_JOINED, \
	    "UPDATE conversations SET joined_at = " HISTORY_NOW " WHERE name = ?1 AND" \
	    " joined_at IS NULL")

enum history_stmt {
#define HISTORY_STMT_ENUM(id, sql) HS_##id,
	HISTORY_STMTS(HISTORY_STMT_ENUM)
#undef HISTORY_STMT_ENUM
	HS_COUNT
};

static const char *const history_sql[HS_COUNT] = {
#define HISTORY_STMT_SQL(id, sql) sql,
	HISTORY_STMTS(HISTORY_STMT_SQL)
#undef HISTORY_STMT_SQL
};

struct history {
	struct peerdb *db;
	sqlite3_stmt *st[HS_COUNT];
	/* The last conversation written to: a burst goes to one. */
	char *last_name;
	int64_t last_id;
};

static int
add_columns(struct peerdb *db, char **cause)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(history_added); i++) {
		sqlite3_stmt *q = NULL;
		int rc;
		if (sqlite3_prepare_v2(peerdb_handle(db),
		        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &q,
		        NULL) != SQLITE_OK) {
			*cause = peerdb_cause(db, "history");
			return -1;
		}
		sqlite3_bind_text(q, 1, history_added[i].table, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, history_added[i].column, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_finalize(q);
		if (rc != SQLITE_ROW && peerdb_exec(db, history_added[i].sql, cause) < 0)
			return -1;
	}
	return 0;
}

struct history *
history_new(struct peerdb *db, char **cause)
{
	struct history *h;

	if (peerdb_exec(db, history_schema, cause) < 0 || add_columns(db, cause) < 0)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->db = db;
	for (int i = 0; i < HS_COUNT; i++) {
		if ((h->st[i] = peerdb_prepare(db, history_sql[i], cause)) == NULL) {
			free(h);
			return NULL;
		}
	}
	return h;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	free(h->last_name);
	free(h);
}

static sqlite3_stmt *
stmt(struct history *h, enum history_stmt id)
{
	sqlite3_reset(h->st[id]);
	sqlite3_clear_bindings(h->st[id]);
	return h->st[id];
}

static void
bind_text(sqlite3_stmt *q, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static int
done(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The conversation's row, made on first use. A look-up first: an upsert
 * costs a statement journal on every message. */
static int64_t
conv_id(struct history *h, const char *conv)
{
	sqlite3_stmt *q;
	int64_t id = -1;
	int rc;

	if (h->last_name != NULL && strcmp(h->last_name, conv) == 0)
		return h->last_id;
	q = stmt(h, HS_CONV_ID);
	bind_text(q, 1, conv);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE) {
		q = stmt(h, HS_CONV_ADD);
		bind_text(q, 1, conv);
		if (done(q) < 0)
			return -1;
		id = sqlite3_last_insert_rowid(peerdb_handle(h->db));
	}
	if (id >= 0) {
		free(h->last_name);
		h->last_name = xstrdup(conv);
		h->last_id = id;
	}
	return id;
}

int
history_add(struct history *h, struct history_msg *m)
{
	sqlite3_stmt *q;
	int64_t conv;

	if (peerdb_write(h->db) < 0 || (conv = conv_id(h, m->conversation)) < 0)
		return -1;
	q = stmt(h, HS_MSG_ADD);
	sqlite3_bind_int64(q, 1, conv);
	bind_text(q, 2, m->id);
	bind_text(q, 3, m->from);
	bind_text(q, 4, m->text);
	bind_text(q, 5, m->time);
	sqlite3_bind_int(q, 6, (int)m->kind);
	sqlite3_bind_int(q, 7, m->outgoing != 0);
	sqlite3_bind_int(q, 8, m->encrypted != 0);
	bind_text(q, 9, m->sig);
	if (done(q) < 0)
		return -1;
	m->seq = sqlite3_last_insert_rowid(peerdb_handle(h->db));
	q = stmt(h, HS_CONV_BUMP);
	sqlite3_bind_int64(q, 1, conv);
	sqlite3_bind_int(q, 2, !m->outgoing && m->kind != HISTORY_SYSTEM);
	sqlite3_bind_int64(q, 3, m->seq);
	if (done(q) < 0)
		return -1;
	/* A look-up by rowid, not the bump's RETURNING: SQLite gathers what
	 * RETURNING returns in an ephemeral table, a B-tree and a pager of
	 * its own opened and closed at each run (about 40 us a run here
	 * against 1 for the two statements). */
	q = stmt(h, HS_CONV_UNREAD);
	sqlite3_bind_int64(q, 1, conv);
	m->unread = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_reset(q);
	return 0;
}

/* The nine message columns of q's current row (seq, msgid, sender, text,
 * time, kind, outgoing, encrypted, sig), valid until q moves on. */
static void
msg_read(sqlite3_stmt *q, struct history_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->seq = sqlite3_column_int64(q, 0);
	m->id = (const char *)sqlite3_column_text(q, 1);
	m->from = (const char *)sqlite3_column_text(q, 2);
	m->text = (const char *)sqlite3_column_text(q, 3);
	m->time = (const char *)sqlite3_column_text(q, 4);
	m->kind = (enum history_kind)sqlite3_column_int(q, 5);
	m->outgoing = sqlite3_column_int(q, 6);
	m->encrypted = sqlite3_column_int(q, 7);
	m->sig = (const char *)sqlite3_column_text(q, 8);
}

/* Steps q, a query of the nine message columns, calling fn per row. */
static int
each_msg(sqlite3_stmt *q, const char *conv, history_msg_fn *fn, void *arg)
{
	struct history_msg m;
	int count = 0, rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		msg_read(q, &m);
		m.conversation = conv;
		fn(&m, arg);
		count++;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}

int
history_last(
    struct history *h, const char *conv, int64_t before, int n, history_msg_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_LAST);

	bind_text(q, 1, conv);
	sqlite3_bind_int64(q, 2, before > 0 ? before : INT64_MAX);
	sqlite3_bind_int(q, 3, n);
	return each_msg(q, conv, fn, arg);
}

int
history_after(
    struct history *h, const char *conv, int64_t after, int n, history_msg_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_AFTER);

	bind_text(q, 1, conv);
	sqlite3_bind_int64(q, 2, after);
	sqlite3_bind_int(q, 3, n);
	return each_msg(q, conv, fn, arg);
}

/* LIKE, not instr(lower()): no copy of each row, a third faster on a
 * long conversation; its wildcards in text are escaped. */
int
history_search(struct history *h, const char *conv, const char *text, int64_t before, int n,
    history_msg_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_SEARCH);
	struct buf pattern;
	int rc;

	buf_init(&pattern);
	buf_append_char(&pattern, '%');
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_append_char(&pattern, '\\');
		buf_append_char(&pattern, *p);
	}
	buf_append_char(&pattern, '%');
	bind_text(q, 1, conv);
	sqlite3_bind_int64(q, 2, before > 0 ? before : INT64_MAX);
	bind_text(q, 3, pattern.data);
	sqlite3_bind_int(q, 4, n);
	rc = each_msg(q, conv, fn, arg);
	buf_fini(&pattern);
	return rc;
}

int
history_mark_read(struct history *h, const char *conv, int64_t upto)
{
	sqlite3_stmt *q;

	if (peerdb_write(h->db) < 0)
		return -1;
	q = stmt(h, HS_MARK_READ);
	bind_text(q, 1, conv);
	sqlite3_bind_int64(q, 2, upto > 0 ? upto : INT64_MAX);
	sqlite3_bind_int(q, 3, HISTORY_SYSTEM);
	return done(q);
}

int
history_touch(struct history *h, const char *conv)
{
	if (peerdb_write(h->db) < 0)
		return -1;
	return conv_id(h, conv) < 0 ? -1 : 0;
}

int
history_set_joined(struct history *h, const char *conv, int joined)
{
	sqlite3_stmt *q;

	if (history_touch(h, conv) < 0)
		return -1;
	q = stmt(h, HS_SET_JOINED);
	bind_text(q, 1, conv);
	sqlite3_bind_int(q, 2, joined != 0);
	return done(q);
}

int
history_joined(struct history *h, void (*fn)(const char *conv, void *arg), void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_JOINED);
	int count = 0, rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		fn((const char *)sqlite3_column_text(q, 0), arg);
		count++;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}

int
history_conversations(struct history *h, history_conv_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_CONVS);
	struct history_conv c;
	int count = 0, rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		c.name = (const char *)sqlite3_column_text(q, 0);
		c.unread = sqlite3_column_int64(q, 1);
		c.last_seq = sqlite3_column_int64(q, 2);
		fn(&c, arg);
		count++;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? count : -1;
}

/* The one integer column that query `which` selects of conv. */
static int64_t
conv_column(struct history *h, enum history_stmt which, const char *conv)
{
	sqlite3_stmt *q = stmt(h, which);
	int64_t n = 0;
	int rc;

	bind_text(q, 1, conv);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

int64_t
history_unread(struct history *h, const char *conv)
{
	return conv_column(h, HS_UNREAD, conv);
}

int64_t
history_last_seq(struct history *h, const char *conv)
{
	return conv_column(h, HS_LAST_SEQ, conv);
}

int
history_get(struct history *h, int64_t seq, history_msg_fn *fn, void *arg)
{
	sqlite3_stmt *q = stmt(h, HS_GET);
	struct history_msg m;
	int rc;

	sqlite3_bind_int64(q, 1, seq);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		msg_read(q, &m);
		m.conversation = (const char *)sqlite3_column_text(q, 9);
		fn(&m, arg);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int64_t
history_newest_seq(struct history *h)
{
	sqlite3_stmt *q = stmt(h, HS_NEWEST_SEQ);
	int64_t n = -1;

	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return n;
}

int
history_signed_since(struct history *h, const char *conv, const char *since, int64_t after,
    int64_t last, int n, history_msg_fn *fn, void *arg)
{
	sqlite3_stmt *q;

	if (after == 0 && last > 0) {
		/* From the start: only the last n are owed. */
		int rc;
		q = stmt(h, HS_SIGNED_START);
		bind_text(q, 1, conv);
		bind_text(q, 2, since);
		sqlite3_bind_int64(q, 3, last);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW)
			after = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
	}
	q = stmt(h, HS_SIGNED_AFTER);
	bind_text(q, 1, conv);
	sqlite3_bind_int64(q, 2, after);
	bind_text(q, 3, since);
	sqlite3_bind_int(q, 4, n);
	return each_msg(q, conv, fn, arg);
}

int
history_mark_joined(struct history *h, const char *conv)
{
	sqlite3_stmt *q;

	if (history_touch(h, conv) < 0)
		return -1;
	q = stmt(h, HS_MARK_JOINED);
	bind_text(q, 1, conv);
	return done(q);
}

int
history_newest_time(struct history *h, const char *conv, char *out, size_t outsz)
{
	sqlite3_stmt *q = stmt(h, HS_NEWEST_TIME);
	const char *t;
	int rc, found = 0;

	bind_text(q, 1, conv);
	sqlite3_bind_int(q, 2, HISTORY_SYSTEM);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && (t = (const char *)sqlite3_column_text(q, 0)) != NULL &&
	    t[0] != '\0' && strlen(t) < outsz) {
		memcpy(out, t, strlen(t) + 1);
		found = 1;
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}
