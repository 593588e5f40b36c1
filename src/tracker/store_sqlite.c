/* store_sqlite.c — the store on SQLite: one connection, WAL mode, every
 * statement prepared once at open, the schema versioned by user_version.
 *
 * One mutex serialises the connection: a statement object cannot be
 * shared between threads, and every operation is a few microseconds, so
 * the workers gain nothing from a connection each.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/store.h"
#include "hychat/util.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_FILE_MODE 0600

/* Each migration takes the schema from its index to index + 1. */
static const char *const store_migrations[] = {
	"CREATE TABLE users ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  pubkey BLOB,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE channels ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE members ("
	"  channel TEXT NOT NULL REFERENCES channels(name) ON DELETE CASCADE,"
	"  name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  PRIMARY KEY (channel, name)) WITHOUT ROWID;"
	"CREATE INDEX members_by_name ON members(name);",
	/* 1 -> 2: profiles. */
	"CREATE TABLE profiles ("
	"  name TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  display TEXT NOT NULL,"
	"  status TEXT NOT NULL) WITHOUT ROWID;",
	/* 2 -> 3: the mailbox; no sender column, by design */
	"CREATE TABLE mailbox ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  recipient TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
	"  size INTEGER NOT NULL,"
	"  deposited INTEGER NOT NULL,"
	"  blob BLOB NOT NULL);"
	"CREATE INDEX mailbox_by_recipient ON mailbox(recipient, id);"
	"CREATE INDEX mailbox_by_time ON mailbox(deposited);",
};

#define STORE_NOW "CAST(strftime('%s', 'now') AS INTEGER)"

#define STORE_STMTS(X) \
	X(BEGIN, "BEGIN IMMEDIATE") \
	X(COMMIT, "COMMIT") \
	X(ROLLBACK, "ROLLBACK") \
	X(USER_ADD, "INSERT INTO users (name, hash, created) VALUES (?1, ?2, " STORE_NOW ")") \
	X(USER_SET_HASH, \
	    "INSERT INTO users (name, hash, created) VALUES (?1, ?2, " STORE_NOW ")" \
	    " ON CONFLICT (name) DO UPDATE SET hash = excluded.hash") \
	X(USER_HASH, "SELECT hash FROM users WHERE name = ?1") \
	X(USER_COUNT, "SELECT count(*) FROM users") \
	X(PUBKEY_SET, "UPDATE users SET pubkey = ?2 WHERE name = ?1") \
	X(CHANNEL_ADD, \
	    "INSERT OR IGNORE INTO channels (name, created) VALUES (?1, " STORE_NOW ")") \
	X(MEMBER_ADD, "INSERT OR IGNORE INTO members (channel, name) VALUES (?1, ?2)") \
	X(MEMBER_DEL, "DELETE FROM members WHERE channel = ?1 AND name = ?2") \
	X(CHANNEL_DEL_EMPTY, \
	    "DELETE FROM channels WHERE name = ?1" \
	    " AND NOT EXISTS (SELECT 1 FROM members WHERE channel = ?1)") \
	X(MEMBERS_ALL, "SELECT channel, name FROM members ORDER BY channel, name") \
	X(PUBKEYS_ALL, "SELECT name, pubkey FROM users WHERE pubkey IS NOT NULL") \
	X(USERS_ALL, "SELECT name, hash FROM users ORDER BY name") \
	X(PROFILE_SET, \
	    "INSERT INTO profiles (name, display, status) VALUES (?1, ?2, ?3)" \
	    " ON CONFLICT (name) DO UPDATE SET display = ?2, status = ?3") \
	X(PROFILES_ALL, "SELECT name, display, status FROM profiles") \
	X(MAIL_COUNT, "SELECT count(*), total(size) FROM mailbox WHERE recipient = ?1") \
	X(MAIL_ADD, \
	    "INSERT INTO mailbox (recipient, size, deposited, blob) VALUES (?1, ?2, ?3, ?4)") \
	X(MAIL_LIST, \
	    "SELECT id, deposited, blob FROM mailbox WHERE recipient = ?1 AND id > ?2" \
	    " ORDER BY id LIMIT ?3") \
	X(MAIL_DEL, "DELETE FROM mailbox WHERE recipient = ?1 AND id = ?2") \
	X(MAIL_EXPIRE, "DELETE FROM mailbox WHERE deposited < ?1")

enum store_stmt {
#define STORE_STMT_ENUM(id, sql) ST_##id,
	STORE_STMTS(STORE_STMT_ENUM)
#undef STORE_STMT_ENUM
	ST_COUNT
};

static const char *const store_sql[] = {
#define STORE_STMT_SQL(id, sql) sql,
	STORE_STMTS(STORE_STMT_SQL)
#undef STORE_STMT_SQL
};

struct store_sqlite {
	struct store base; /* must stay first */
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *st[ST_COUNT];
};

static char *
store_cause(sqlite3 *db, const char *what)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s: %s", what, db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return b.data;
}

/* Returns the statement reset and bound to nothing, ready for binding. */
static sqlite3_stmt *
stmt(struct store_sqlite *s, enum store_stmt id)
{
	sqlite3_reset(s->st[id]);
	sqlite3_clear_bindings(s->st[id]);
	return s->st[id];
}

static int
bind_text(sqlite3_stmt *q, int i, const char *v)
{
	return sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static int
exec_stmt(sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
tx(struct store_sqlite *s, enum store_stmt id)
{
	return exec_stmt(stmt(s, id));
}

static void
store_close(struct store *base)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int
user_write(struct store *base, enum store_stmt id, const char *name, const char *hash, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, id);
	bind_text(q, 1, name);
	bind_text(q, 2, hash);
	rc = exec_stmt(q);
	if (rc == SQLITE_CONSTRAINT && id == ST_USER_ADD) {
		pthread_mutex_unlock(&s->lock);
		return STORE_EXISTS;
	}
	if (rc != SQLITE_OK)
		*cause = store_cause(s->db, "saving an account");
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
store_user_add(struct store *base, const char *name, const char *hash, char **cause)
{
	return user_write(base, ST_USER_ADD, name, hash, cause);
}

static int
store_user_set_hash(struct store *base, const char *name, const char *hash, char **cause)
{
	return user_write(base, ST_USER_SET_HASH, name, hash, cause);
}

static int
store_user_hash(struct store *base, const char *name, char *out, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int found = 0;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_USER_HASH);
	bind_text(q, 1, name);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(q, 0);
		size_t len = h != NULL ? strlen(h) : 0;
		if (len > 0 && len < STORE_HASH_MAX) {
			memcpy(out, h, len + 1);
			found = 1;
		}
	} else if (rc != SQLITE_DONE) {
		*cause = store_cause(s->db, "reading an account");
		found = -1;
	}
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return found;
}

static int
store_user_count(struct store *base, uint64_t *n, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_USER_COUNT);
	if (sqlite3_step(q) == SQLITE_ROW) {
		*n = (uint64_t)sqlite3_column_int64(q, 0);
	} else {
		*cause = store_cause(s->db, "counting accounts");
		ret = -1;
	}
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int
store_pubkey_set(struct store *base, const char *name, const uint8_t *key, size_t len, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_PUBKEY_SET);
	bind_text(q, 1, name);
	sqlite3_bind_blob(q, 2, key, (int)len, SQLITE_STATIC);
	int rc = exec_stmt(q);
	if (rc != SQLITE_OK)
		*cause = store_cause(s->db, "saving a public key");
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Runs two statements, each bound to (a, b), in one transaction. */
static int
store_pair(struct store_sqlite *s, enum store_stmt first, enum store_stmt second, const char *a,
    const char *b, const char *what, char **cause)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = tx(s, ST_BEGIN);
	if (rc == SQLITE_OK) {
		sqlite3_stmt *q = stmt(s, first);
		bind_text(q, 1, a);
		bind_text(q, 2, b);
		rc = exec_stmt(q);
	}
	if (rc == SQLITE_OK) {
		sqlite3_stmt *q = stmt(s, second);
		bind_text(q, 1, a);
		bind_text(q, 2, b);
		rc = exec_stmt(q);
	}
	if (rc == SQLITE_OK)
		rc = tx(s, ST_COMMIT);
	if (rc != SQLITE_OK) {
		*cause = store_cause(s->db, what);
		tx(s, ST_ROLLBACK);
	}
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
store_join(struct store *base, const char *channel, const char *name, char **cause)
{
	return store_pair((struct store_sqlite *)base, ST_CHANNEL_ADD, ST_MEMBER_ADD, channel, name,
	    "joining a channel", cause);
}

static int
store_leave(struct store *base, const char *channel, const char *name, char **cause)
{
	return store_pair((struct store_sqlite *)base, ST_MEMBER_DEL, ST_CHANNEL_DEL_EMPTY, channel,
	    name, "leaving a channel", cause);
}

static int
store_each_member(struct store *base, void (*fn)(const char *channel, const char *name, void *arg),
    void *arg, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_MEMBERS_ALL);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
		    arg);
	if (rc != SQLITE_DONE)
		*cause = store_cause(s->db, "reading memberships");
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_each_pubkey(struct store *base,
    void (*fn)(const char *name, const uint8_t *key, size_t len, void *arg), void *arg,
    char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_PUBKEYS_ALL);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const void *key = sqlite3_column_blob(q, 1);
		int len = sqlite3_column_bytes(q, 1);
		if (key != NULL && len > 0)
			fn((const char *)sqlite3_column_text(q, 0), key, (size_t)len, arg);
	}
	if (rc != SQLITE_DONE)
		*cause = store_cause(s->db, "reading public keys");
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_each_user(struct store *base, void (*fn)(const char *name, const char *hash, void *arg),
    void *arg, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_USERS_ALL);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
		    arg);
	if (rc != SQLITE_DONE)
		*cause = store_cause(s->db, "reading accounts");
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_profile_set(
    struct store *base, const char *name, const char *display, const char *status, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_PROFILE_SET);
	bind_text(q, 1, name);
	bind_text(q, 2, display);
	bind_text(q, 3, status);
	int rc = exec_stmt(q);
	if (rc != SQLITE_OK)
		*cause = store_cause(s->db, "saving a profile");
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
store_each_profile(struct store *base,
    void (*fn)(const char *name, const char *display, const char *status, void *arg), void *arg,
    char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int rc;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_PROFILES_ALL);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
		    (const char *)sqlite3_column_text(q, 2), arg);
	if (rc != SQLITE_DONE)
		*cause = store_cause(s->db, "reading profiles");
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The mailbox. */

static int
mail_count_locked(struct store_sqlite *s, const char *name, uint64_t *msgs, uint64_t *bytes)
{
	sqlite3_stmt *q = stmt(s, ST_MAIL_COUNT);
	bind_text(q, 1, name);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*msgs = (uint64_t)sqlite3_column_int64(q, 0);
		*bytes = (uint64_t)sqlite3_column_double(q, 1);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int
store_mail_count(
    struct store *base, const char *name, uint64_t *msgs, uint64_t *bytes, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	pthread_mutex_lock(&s->lock);
	int rc = mail_count_locked(s, name, msgs, bytes);
	if (rc != SQLITE_OK)
		*cause = store_cause(s->db, "counting mail");
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The count and the insert in one transaction, so that two deposits
 * cannot both pass the quota's last place. */
static int
store_mail_add(struct store *base, const char *name, const uint8_t *blob, size_t len,
    uint64_t now_ms, uint64_t max_msgs, uint64_t max_bytes, uint64_t *id, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	uint64_t msgs = 0, bytes = 0;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	int rc = tx(s, ST_BEGIN);
	if (rc == SQLITE_OK)
		rc = mail_count_locked(s, name, &msgs, &bytes);
	if (rc == SQLITE_OK && (msgs + 1 > max_msgs || bytes + len > max_bytes)) {
		tx(s, ST_ROLLBACK);
		pthread_mutex_unlock(&s->lock);
		return STORE_FULL;
	}
	if (rc == SQLITE_OK) {
		sqlite3_stmt *q = stmt(s, ST_MAIL_ADD);
		bind_text(q, 1, name);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)len);
		sqlite3_bind_int64(q, 3, (sqlite3_int64)now_ms);
		sqlite3_bind_blob(q, 4, blob, (int)len, SQLITE_STATIC);
		rc = exec_stmt(q);
		*id = (uint64_t)sqlite3_last_insert_rowid(s->db);
	}
	if (rc == SQLITE_OK)
		rc = tx(s, ST_COMMIT);
	if (rc != SQLITE_OK) {
		*cause = store_cause(s->db, "saving mail");
		tx(s, ST_ROLLBACK);
		ret = -1;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int
store_mail_list(struct store *base, const char *name, uint64_t after, size_t limit,
    size_t max_bytes,
    void (*fn)(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg),
    void *arg, int *more, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	size_t n = 0, bytes = 0;
	int rc;

	*more = 0;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_MAIL_LIST);
	bind_text(q, 1, name);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)(after > INT64_MAX ? INT64_MAX : after));
	sqlite3_bind_int64(q, 3, (sqlite3_int64)limit + 1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const uint8_t *blob = sqlite3_column_blob(q, 2);
		size_t len = (size_t)sqlite3_column_bytes(q, 2);
		if (n == limit || (n > 0 && bytes + len > max_bytes)) {
			*more = 1;
			rc = SQLITE_DONE;
			break;
		}
		fn((uint64_t)sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1), blob,
		    len, arg);
		bytes += len;
		n++;
	}
	if (rc != SQLITE_DONE)
		*cause = store_cause(s->db, "reading mail");
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? (int)n : -1;
}

static int
store_mail_delete(struct store *base, const char *name, const uint64_t *ids, size_t n, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	int deleted = 0;

	pthread_mutex_lock(&s->lock);
	int rc = tx(s, ST_BEGIN);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		sqlite3_stmt *q = stmt(s, ST_MAIL_DEL);
		bind_text(q, 1, name);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)(ids[i] > INT64_MAX ? 0 : ids[i]));
		rc = exec_stmt(q);
		deleted += sqlite3_changes(s->db);
	}
	if (rc == SQLITE_OK)
		rc = tx(s, ST_COMMIT);
	if (rc != SQLITE_OK) {
		*cause = store_cause(s->db, "deleting mail");
		tx(s, ST_ROLLBACK);
	}
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_OK ? deleted : -1;
}

static int
store_mail_expire(struct store *base, uint64_t before_ms, char **cause)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *q = stmt(s, ST_MAIL_EXPIRE);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)(before_ms > INT64_MAX ? INT64_MAX : before_ms));
	int rc = exec_stmt(q);
	int n = rc == SQLITE_OK ? sqlite3_changes(s->db) : -1;
	if (rc != SQLITE_OK)
		*cause = store_cause(s->db, "expiring mail");
	pthread_mutex_unlock(&s->lock);
	return n;
}

static const struct store_ops store_sqlite_ops = {
	.close = store_close,
	.user_add = store_user_add,
	.user_set_hash = store_user_set_hash,
	.user_hash = store_user_hash,
	.user_count = store_user_count,
	.pubkey_set = store_pubkey_set,
	.join = store_join,
	.leave = store_leave,
	.each_member = store_each_member,
	.each_pubkey = store_each_pubkey,
	.each_user = store_each_user,
	.profile_set = store_profile_set,
	.each_profile = store_each_profile,
	.mail_add = store_mail_add,
	.mail_count = store_mail_count,
	.mail_list = store_mail_list,
	.mail_delete = store_mail_delete,
	.mail_expire = store_mail_expire,
};

static int
pragma_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int
migrate(sqlite3 *db, char **cause)
{
	int version = 0;
	int latest = (int)HY_ARRAY_LEN(store_migrations);

	if (pragma_int(db, "PRAGMA user_version", &version) != SQLITE_OK) {
		*cause = store_cause(db, "reading the schema version");
		return -1;
	}
	if (version > latest) {
		struct buf b;
		buf_init(&b);
		buf_printf(
		    &b, "schema version %d is newer than this tracker's (%d)", version, latest);
		*cause = b.data;
		return -1;
	}
	for (; version < latest; version++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, store_migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			*cause = store_cause(db, "upgrading the schema");
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

/* Creates the file readable by its owner only: it holds password hashes.
 * SQLite gives the -wal and -shm files the same mode. */
static int
create_private(const char *path, char **cause)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, STORE_FILE_MODE);

	if (fd < 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s", strerror(errno));
		*cause = b.data;
		return -1;
	}
	close(fd);
	return 0;
}

struct store *
store_sqlite_open(const char *path, char **cause)
{
	struct store_sqlite *s;
	sqlite3 *db = NULL;
	char *mode = NULL;

	if (create_private(path, cause) < 0)
		return NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		*cause = store_cause(db, "opening");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", NULL, NULL,
	        NULL) != SQLITE_OK) {
		*cause = store_cause(db, "setting up");
		sqlite3_close(db);
		return NULL;
	}
	{
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &q, NULL) ==
		    SQLITE_OK) {
			if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL)
				mode = xstrdup((const char *)sqlite3_column_text(q, 0));
			sqlite3_finalize(q);
		}
	}
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		*cause = mode == NULL ? store_cause(db, "not a database")
		                      : xstrdup("cannot switch to WAL mode");
		free(mode);
		sqlite3_close(db);
		return NULL;
	}
	free(mode);
	if (migrate(db, cause) < 0) {
		sqlite3_close(db);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &store_sqlite_ops;
	s->db = db;
	pthread_mutex_init(&s->lock, NULL);
	for (size_t i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
		        NULL) != SQLITE_OK) {
			*cause = store_cause(db, "preparing statements");
			store_close(&s->base);
			return NULL;
		}
	}
	return &s->base;
}
