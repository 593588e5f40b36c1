/* test_walbuf.c — the WAL writer that gathers a commit's frames: what is
 * committed is in the file before anyone can see it, by another connection
 * or after the process dies without closing, through spills, rewrites in
 * place and WAL restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/peerdb.h"
#include "hychat/walbuf.h"

struct fixture {
	char dir[64], path[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_walbuf.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, PEERDB_FILE);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];

	unlink(f->path);
	snprintf(path, sizeof(path), "%s-wal", f->path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", f->path);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A connection of the default VFS, as another process would read. */
static sqlite3 *
reader(struct fixture *f)
{
	sqlite3 *r = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return r;
}

static int64_t
scalar(sqlite3 *c, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

static void
insert(struct peerdb *db, int n, int size)
{
	char *cause = NULL, sql[128];

	snprintf(sql, sizeof(sql), "INSERT INTO t (v) VALUES (randomblob(%d))", size);
	assert_int_equal(peerdb_write(db), 0);
	for (int i = 0; i < n; i++) {
		if (peerdb_exec(db, sql, &cause) < 0)
			fail_msg("insert %d: %s", i, cause);
	}
}

static int
integrity_ok(sqlite3 *c)
{
	sqlite3_stmt *q = NULL;
	int ok;

	assert_int_equal(sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
	ok = sqlite3_step(q) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0;
	sqlite3_finalize(q);
	return ok;
}

/* Each commit is read back by another connection right after it, with a
 * checkpoint and a WAL restart on the way. */
static void
test_each_commit_is_in_the_file_when_it_is_seen(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;
	struct peerdb *db = peerdb_open(f->path, NULL, &cause);
	sqlite3 *r;

	assert_non_null(db);
	assert_int_equal(
	    peerdb_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)", &cause), 0);
	r = reader(f);
	for (int turn = 1; turn <= 300; turn++) {
		insert(db, 3, 300);
		assert_int_equal(peerdb_commit(db, &cause), 0);
		assert_int_equal(scalar(r, "SELECT count(*) FROM t"), turn * 3);
		if (turn == 150) {
			/* Copied in full: the next write starts the WAL over. */
			assert_int_equal(sqlite3_wal_checkpoint_v2(peerdb_handle(db), NULL,
			                     SQLITE_CHECKPOINT_PASSIVE, NULL, NULL),
			    SQLITE_OK);
		}
	}
	assert_true(integrity_ok(r));
	sqlite3_close(r);
	peerdb_close(db);
}

/* A transaction larger than the page cache spills frames before its
 * commit and rewrites them in place when the same pages change again;
 * larger than WALBUF_MAX, it is written in pieces. */
static void
test_a_transaction_that_spills_and_rewrites_reads_back_whole(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;
	struct peerdb *db = peerdb_open(f->path, NULL, &cause);
	sqlite3 *r;

	assert_non_null(db);
	assert_int_equal(peerdb_exec(db,
	                     "PRAGMA cache_size = 8;"
	                     "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)",
	                     &cause),
	    0);
	insert(db, 2000, 500);
	assert_int_equal(peerdb_exec(db, "UPDATE t SET v = zeroblob(400)", &cause), 0);
	assert_int_equal(
	    peerdb_exec(db, "UPDATE t SET v = zeroblob(450) WHERE k % 2 = 0", &cause), 0);
	assert_int_equal(peerdb_commit(db, &cause), 0);
	r = reader(f);
	assert_int_equal(scalar(r, "SELECT count(*) FROM t"), 2000);
	assert_int_equal(scalar(r, "SELECT sum(length(v)) FROM t"), 1000 * 400 + 1000 * 450);
	assert_true(integrity_ok(r));
	sqlite3_close(r);
	peerdb_close(db);
}

/* A process that dies right after its commits, closing nothing (as kill -9
 * would leave it), has all of them in the file. */
static void
test_commits_survive_a_process_that_dies_without_closing(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;
	int status = -1;
	pid_t pid = fork();
	sqlite3 *r;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct peerdb *db = peerdb_open(f->path, NULL, &cause);
		if (db == NULL ||
		    peerdb_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)", &cause) < 0)
			_exit(2);
		for (int turn = 0; turn < 50; turn++) {
			insert(db, 4, 200);
			if (peerdb_commit(db, &cause) < 0)
				_exit(3);
		}
		insert(db, 7, 200); /* never committed: lost, as it should be */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	r = reader(f);
	assert_int_equal(scalar(r, "SELECT count(*) FROM t"), 200);
	assert_true(integrity_ok(r));
	sqlite3_close(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_each_commit_is_in_the_file_when_it_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_transaction_that_spills_and_rewrites_reads_back_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_commits_survive_a_process_that_dies_without_closing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
