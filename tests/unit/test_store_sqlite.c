/* test_store_sqlite.c — the SQLite store: schema and WAL, accounts,
 * memberships and keys across a reopen, refusals of foreign files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "hychat/store.h"

struct dir {
	char path[64];
	char db[96];
};

static int
setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/hychat-store-XXXXXX");
	if (mkdtemp(d->path) == NULL)
		return -1;
	snprintf(d->db, sizeof(d->db), "%s/t.db", d->path);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct dir *d = *state;
	char p[128];

	for (const char *const *sfx = (const char *const[]){ "", "-wal", "-shm", NULL }; *sfx;
	     sfx++) {
		snprintf(p, sizeof(p), "%s%s", d->db, *sfx);
		unlink(p);
	}
	rmdir(d->path);
	free(d);
	return 0;
}

static struct store *
open_ok(const char *path)
{
	char *cause = NULL;
	struct store *st = store_sqlite_open(path, &cause);

	if (st == NULL)
		fail_msg("open: %s", cause);
	return st;
}

static int
query_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	int v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void
test_new_database_is_private_versioned_and_in_wal_mode(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	struct stat sb;

	assert_int_equal(stat(d->db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(query_int(d->db, "PRAGMA user_version"), 3);
	st->ops->close(st);
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(d->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void
test_account_names_are_unique(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	char hash[STORE_HASH_MAX], *cause = NULL;
	uint64_t n = 99;

	assert_int_equal(st->ops->user_add(st, "alice", "$argon2id$one", &cause), 0);
	assert_int_equal(st->ops->user_add(st, "alice", "$argon2id$two", &cause), STORE_EXISTS);
	assert_int_equal(st->ops->user_add(st, "bob", "$argon2id$three", &cause), 0);
	assert_int_equal(st->ops->user_hash(st, "alice", hash, &cause), 1);
	assert_string_equal(hash, "$argon2id$one");
	assert_int_equal(st->ops->user_hash(st, "carol", hash, &cause), 0);
	assert_int_equal(st->ops->user_set_hash(st, "alice", "$argon2id$new", &cause), 0);
	assert_int_equal(st->ops->user_set_hash(st, "carol", "$argon2id$c", &cause), 0);
	assert_int_equal(st->ops->user_hash(st, "alice", hash, &cause), 1);
	assert_string_equal(hash, "$argon2id$new");
	assert_int_equal(st->ops->user_count(st, &n, &cause), 0);
	assert_int_equal(n, 3);
	assert_null(cause);
	st->ops->close(st);
}

struct rows {
	int n;
	char text[16][80];
};

static void
member_row(const char *channel, const char *name, void *arg)
{
	struct rows *r = arg;

	snprintf(r->text[r->n++], sizeof(r->text[0]), "%s/%s", channel, name);
}

static void
key_row(const char *name, const uint8_t *key, size_t len, void *arg)
{
	struct rows *r = arg;

	snprintf(r->text[r->n++], sizeof(r->text[0]), "%s:%zu:%02x", name, len, key[0]);
}

static void
test_memberships_and_keys_survive_a_reopen(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	struct rows rows = { 0 };
	char *cause = NULL;
	uint8_t key[32];

	memset(key, 0xab, sizeof(key));
	st->ops->user_add(st, "bob", "h", &cause);
	st->ops->user_add(st, "alice", "h", &cause);
	assert_int_equal(st->ops->join(st, "general", "bob", &cause), 0);
	assert_int_equal(st->ops->join(st, "general", "alice", &cause), 0);
	assert_int_equal(st->ops->join(st, "general", "alice", &cause), 0);
	assert_int_equal(st->ops->join(st, "dev", "bob", &cause), 0);
	assert_int_equal(st->ops->join(st, "tmp", "bob", &cause), 0);
	assert_int_equal(st->ops->pubkey_set(st, "alice", key, sizeof(key), &cause), 0);
	st->ops->close(st);

	st = open_ok(d->db);
	assert_int_equal(st->ops->leave(st, "tmp", "bob", &cause), 0);
	assert_int_equal(st->ops->each_member(st, member_row, &rows, &cause), 0);
	assert_int_equal(rows.n, 3);
	assert_string_equal(rows.text[0], "dev/bob");
	assert_string_equal(rows.text[1], "general/alice");
	assert_string_equal(rows.text[2], "general/bob");
	rows.n = 0;
	assert_int_equal(st->ops->each_pubkey(st, key_row, &rows, &cause), 0);
	assert_int_equal(rows.n, 1);
	assert_string_equal(rows.text[0], "alice:32:ab");
	st->ops->close(st);
	/* the channel went with its last member */
	assert_int_equal(query_int(d->db, "SELECT count(*) FROM channels"), 2);
}

static void
profile_row(const char *name, const char *display, const char *status, void *arg)
{
	struct rows *r = arg;

	snprintf(r->text[r->n++], sizeof(r->text[0]), "%s|%s|%s", name, display, status);
}

static void
test_profiles_survive_a_reopen(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	struct rows rows = { 0 };
	char *cause = NULL;

	st->ops->user_add(st, "alice", "h", &cause);
	assert_int_equal(st->ops->profile_set(st, "alice", "Alice", "away", &cause), 0);
	assert_int_equal(st->ops->profile_set(st, "alice", "Alice L.", "", &cause), 0);
	/* No account, no profile. */
	assert_int_equal(st->ops->profile_set(st, "nobody", "N", "", &cause), -1);
	free(cause);
	st->ops->close(st);
	st = open_ok(d->db);
	assert_int_equal(st->ops->each_profile(st, profile_row, &rows, &cause), 0);
	assert_int_equal(rows.n, 1);
	assert_string_equal(rows.text[0], "alice|Alice L.|");
	st->ops->close(st);
}

static void
test_a_member_must_have_an_account(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	char *cause = NULL;

	assert_int_equal(st->ops->join(st, "general", "ghost", &cause), -1);
	assert_non_null(cause);
	free(cause);
	assert_int_equal(query_int(d->db, "SELECT count(*) FROM channels"), 0);
	st->ops->close(st);
}

static void
test_newer_schema_is_refused(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	char *cause = NULL;
	sqlite3 *db;

	st->ops->close(st);
	assert_int_equal(sqlite3_open(d->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_sqlite_open(d->db, &cause));
	assert_non_null(strstr(cause, "99"));
	free(cause);
}

static void
test_a_foreign_file_is_refused(void **state)
{
	struct dir *d = *state;
	char *cause = NULL;
	FILE *f = fopen(d->db, "w");

	assert_non_null(f);
	for (int i = 0; i < 100; i++)
		fputs("this is not a database\n", f);
	fclose(f);
	assert_null(store_sqlite_open(d->db, &cause));
	assert_non_null(cause);
	free(cause);
	cause = NULL;
	assert_null(store_sqlite_open("/nonexistent/dir/t.db", &cause));
	assert_non_null(cause);
	free(cause);
}

struct mail_rows {
	int n;
	uint64_t id[8];
	char blob[8][16];
};

static void
mail_row(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg)
{
	struct mail_rows *r = arg;

	assert_true(time_ms >= 1000);
	r->id[r->n] = id;
	snprintf(r->blob[r->n++], sizeof(r->blob[0]), "%.*s", (int)len, (const char *)blob);
}

static void
test_mailbox_quota_pages_acks_and_expiry(void **state)
{
	struct dir *d = *state;
	struct store *st = open_ok(d->db);
	char *cause = NULL;
	uint64_t id[4], msgs = 0, bytes = 0;
	struct mail_rows r = { 0 };
	int more = 0;

	assert_int_equal(st->ops->user_add(st, "bob", "$argon2id$b", &cause), 0);
	assert_int_equal(st->ops->user_add(st, "carol", "$argon2id$c", &cause), 0);
	/* quota: 3 messages, 10 bytes */
	assert_int_equal(
	    st->ops->mail_add(st, "bob", (const uint8_t *)"aaa", 3, 1000, 3, 10, &id[0], &cause),
	    0);
	assert_int_equal(
	    st->ops->mail_add(st, "bob", (const uint8_t *)"bbbb", 4, 2000, 3, 10, &id[1], &cause),
	    0);
	assert_int_equal(
	    st->ops->mail_add(st, "bob", (const uint8_t *)"cccc", 4, 3000, 3, 10, &id[2], &cause),
	    STORE_FULL); /* 11 bytes */
	assert_int_equal(
	    st->ops->mail_add(st, "bob", (const uint8_t *)"ccc", 3, 3000, 3, 10, &id[2], &cause),
	    0);
	assert_int_equal(
	    st->ops->mail_add(st, "bob", (const uint8_t *)"d", 1, 4000, 3, 10, &id[3], &cause),
	    STORE_FULL); /* 4 messages */
	assert_int_equal(
	    st->ops->mail_add(st, "nobody", (const uint8_t *)"d", 1, 4000, 3, 10, &id[3], &cause),
	    -1); /* no such account */
	free(cause);
	cause = NULL;
	assert_true(id[0] < id[1] && id[1] < id[2]);
	assert_int_equal(st->ops->mail_count(st, "bob", &msgs, &bytes, &cause), 0);
	assert_int_equal(msgs, 3);
	assert_int_equal(bytes, 10);
	assert_int_equal(
	    st->ops->mail_list(st, "bob", 0, 2, 1 << 20, mail_row, &r, &more, &cause), 2);
	assert_true(more);
	assert_string_equal(r.blob[0], "aaa");
	assert_string_equal(r.blob[1], "bbbb");
	assert_int_equal(
	    st->ops->mail_list(st, "bob", id[1], 2, 1 << 20, mail_row, &r, &more, &cause), 1);
	assert_false(more);
	assert_string_equal(r.blob[2], "ccc");
	/* the byte cap ends a page, but never before its first message */
	r.n = 0;
	assert_int_equal(st->ops->mail_list(st, "bob", 0, 10, 1, mail_row, &r, &more, &cause), 1);
	assert_true(more);
	assert_int_equal(st->ops->mail_list(st, "carol", 0, 10, 1, mail_row, &r, &more, &cause), 0);
	/* only the recipient's own are deleted */
	assert_int_equal(st->ops->mail_delete(st, "carol", id, 3, &cause), 0);
	assert_int_equal(st->ops->mail_delete(st, "bob", id, 1, &cause), 1);
	assert_int_equal(st->ops->mail_expire(st, 2500, &cause), 1); /* bbbb, at 2000 */
	assert_int_equal(st->ops->mail_count(st, "bob", &msgs, &bytes, &cause), 0);
	assert_int_equal(msgs, 1);
	assert_null(cause);
	st->ops->close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_new_database_is_private_versioned_and_in_wal_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_names_are_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_memberships_and_keys_survive_a_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_member_must_have_an_account, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_survive_a_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_foreign_file_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_mailbox_quota_pages_acks_and_expiry, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
