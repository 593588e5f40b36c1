/* test_history.c — conversations and messages in the peer database:
 * listings oldest first, paging back, unread counts, joined channels, and
 * all of it still there after the database is opened again; checkpoints
 * on the loop's thread pool that let the WAL start over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "hychat/history.h"
#include "hychat/util.h"

struct fixture {
	char dir[64];
	char path[128];
	struct peerdb *db;
	struct history *h;
};

/* With loop, the database checkpoints on that loop's pool, as the
 * engine's does; without, never. */
static void
open_db_on(struct fixture *f, uv_loop_t *loop)
{
	char *cause = NULL;

	f->db = peerdb_open(f->path, loop, &cause);
	assert_non_null(f->db);
	f->h = history_new(f->db, &cause);
	assert_non_null(f->h);
}

static void
open_db(struct fixture *f)
{
	open_db_on(f, NULL);
}

static void
close_db(struct fixture *f)
{
	history_free(f->h);
	peerdb_close(f->db);
	f->h = NULL; /* a test failing before open_db() frees nothing twice */
	f->db = NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_history.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, PEERDB_FILE);
	open_db(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];

	close_db(f);
	unlink(f->path);
	snprintf(path, sizeof(path), "%s-wal", f->path);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", f->path);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t
add(struct history *h, const char *conv, const char *from, const char *text, int outgoing)
{
	struct history_msg m = { 0 };

	m.conversation = conv;
	m.id = "0123456789abcdef0123456789abcdef";
	m.from = from;
	m.text = text;
	m.time = "2026-11-24T10:00:00.000001";
	m.kind = HISTORY_CHAT;
	m.outgoing = outgoing;
	m.encrypted = 1;
	assert_int_equal(history_add(h, &m), 0);
	assert_true(m.seq > 0);
	return m.seq;
}

struct texts {
	char text[16][32];
	int64_t seq[16];
	int n;
};

static void
collect(const struct history_msg *m, void *arg)
{
	struct texts *t = arg;

	snprintf(t->text[t->n], sizeof(t->text[0]), "%s", m->text);
	t->seq[t->n++] = m->seq;
}

static void
test_last_messages_come_oldest_first(void **state)
{
	struct fixture *f = *state;
	struct texts t = { 0 };
	char text[16];

	for (int i = 0; i < 10; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		add(f->h, "#general", "bob", text, 0);
		add(f->h, "carol", "carol", "other", 0);
	}
	assert_int_equal(history_last(f->h, "#general", 0, 3, collect, &t), 3);
	assert_string_equal(t.text[0], "m7");
	assert_string_equal(t.text[2], "m9");
	/* Paging back from the oldest shown. */
	int64_t before = t.seq[0];
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_last(f->h, "#general", before, 2, collect, &t), 2);
	assert_string_equal(t.text[0], "m5");
	assert_string_equal(t.text[1], "m6");
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_last(f->h, "nobody", 0, 5, collect, &t), 0);
}

static void
test_unread_counts_incoming_only_until_read(void **state)
{
	struct fixture *f = *state;
	struct history_msg m = { 0 };

	add(f->h, "bob", "bob", "hi", 0);
	add(f->h, "bob", "bob", "there", 0);
	add(f->h, "bob", "alice", "hello", 1);
	assert_int_equal(history_unread(f->h, "bob"), 2);
	/* history_add tells the count after the message, as unread says. */
	m.conversation = "bob";
	m.from = "bob";
	m.text = "third";
	m.time = "2026-11-24T10:00:01.000001";
	m.kind = HISTORY_CHAT;
	assert_int_equal(history_add(f->h, &m), 0);
	assert_int_equal(m.unread, 3);
	m.outgoing = 1;
	assert_int_equal(history_add(f->h, &m), 0);
	assert_int_equal(m.unread, 3);
	assert_int_equal(history_unread(f->h, "bob"), 3);
	assert_int_equal(history_mark_read(f->h, "bob", 0), 0);
	assert_int_equal(history_unread(f->h, "bob"), 0);
	/* Up to a message: those after it stay unread; a marker never goes
	 * back. */
	int64_t first = add(f->h, "bob", "bob", "one", 0);
	add(f->h, "bob", "bob", "two", 0);
	add(f->h, "bob", "bob", "three", 0);
	assert_int_equal(history_unread(f->h, "bob"), 3);
	assert_int_equal(history_mark_read(f->h, "bob", first + 1), 0);
	assert_int_equal(history_unread(f->h, "bob"), 1);
	assert_int_equal(history_mark_read(f->h, "bob", first), 0);
	assert_int_equal(history_unread(f->h, "bob"), 1);
	assert_int_equal(history_unread(f->h, "unknown"), 0);
}

struct convs {
	char name[8][32];
	int64_t unread[8];
	int n;
};

static void
collect_conv(const struct history_conv *c, void *arg)
{
	struct convs *v = arg;

	snprintf(v->name[v->n], sizeof(v->name[0]), "%s", c->name);
	v->unread[v->n++] = c->unread;
}

static void
test_conversations_most_recent_first(void **state)
{
	struct fixture *f = *state;
	struct convs v = { 0 };

	assert_int_equal(history_touch(f->h, "#empty"), 0);
	add(f->h, "#general", "bob", "a", 0);
	add(f->h, "carol", "carol", "b", 0);
	add(f->h, "#general", "bob", "c", 0);
	assert_int_equal(history_conversations(f->h, collect_conv, &v), 3);
	assert_string_equal(v.name[0], "#general");
	assert_int_equal(v.unread[0], 2);
	assert_string_equal(v.name[1], "carol");
	assert_string_equal(v.name[2], "#empty");
	assert_int_equal(v.unread[2], 0);
}

static void
collect_joined(const char *conv, void *arg)
{
	struct convs *v = arg;

	snprintf(v->name[v->n++], sizeof(v->name[0]), "%s", conv);
}

static void
test_everything_survives_a_restart(void **state)
{
	struct fixture *f = *state;
	struct texts t = { 0 };
	struct convs v = { 0 };
	char *cause = NULL;

	add(f->h, "bob", "bob", "Xin chào, tôi là Phát", 0);
	assert_int_equal(history_set_joined(f->h, "#test", 1), 0);
	assert_int_equal(history_set_joined(f->h, "#gone", 1), 0);
	assert_int_equal(history_set_joined(f->h, "#gone", 0), 0);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	close_db(f);
	open_db(f);
	assert_int_equal(history_last(f->h, "bob", 0, 10, collect, &t), 1);
	assert_string_equal(t.text[0], "Xin chào, tôi là Phát");
	assert_int_equal(history_unread(f->h, "bob"), 1);
	assert_int_equal(history_joined(f->h, collect_joined, &v), 1);
	assert_string_equal(v.name[0], "#test");
}

static void
test_pages_after_a_seq_come_oldest_first(void **state)
{
	struct fixture *f = *state;
	struct texts t = { 0 };
	char text[16];

	for (int i = 0; i < 10; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		add(f->h, "#general", "bob", text, 0);
		add(f->h, "carol", "carol", "other", 0);
	}
	assert_int_equal(history_after(f->h, "#general", 0, 3, collect, &t), 3);
	assert_string_equal(t.text[0], "m0");
	assert_string_equal(t.text[2], "m2");
	/* Paging forward from the newest shown, to the end. */
	int64_t after = t.seq[2];
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_after(f->h, "#general", after, 100, collect, &t), 7);
	assert_string_equal(t.text[0], "m3");
	assert_string_equal(t.text[6], "m9");
}

static void
test_search_finds_the_newest_match_first_without_case(void **state)
{
	struct fixture *f = *state;
	struct texts t = { 0 };

	add(f->h, "#general", "bob", "the Quick fox", 0);
	add(f->h, "#general", "bob", "nothing here", 0);
	add(f->h, "carol", "carol", "quick but elsewhere", 0);
	add(f->h, "#general", "alice", "quick again, Phát", 1);
	assert_int_equal(history_search(f->h, "#general", "QUICK", 0, 10, collect, &t), 2);
	assert_string_equal(t.text[0], "quick again, Phát");
	assert_string_equal(t.text[1], "the Quick fox");
	/* The next older match, from the one found. */
	int64_t before = t.seq[0];
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "quick", before, 1, collect, &t), 1);
	assert_string_equal(t.text[0], "the Quick fox");
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "Phát", 0, 10, collect, &t), 1);
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "absent", 0, 10, collect, &t), 0);
	/* LIKE's wildcards are text like any other. */
	add(f->h, "#general", "bob", "100% sure_thing", 0);
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "0%", 0, 10, collect, &t), 1);
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "e_t", 0, 10, collect, &t), 1);
	memset(&t, 0, sizeof(t));
	assert_int_equal(history_search(f->h, "#general", "q_ick", 0, 10, collect, &t), 0);
}

/* Rows committed one loop turn at a time until the WAL passes the
 * checkpoint threshold, then the loop runs the thread pool's checkpoints
 * to the end; after a pause (a turn with nothing to commit, past
 * PEERDB_IDLE_CHECKPOINT_MS) the next commit starts the WAL over. A
 * checkpoint that never ran (a fresh connection that has not read the
 * database does nothing) leaves every frame in it. */
/* n incoming messages of 600 bytes from bob: whole pages of WAL each
 * few. */
static void
add_long(struct history *h, int n)
{
	char text[600];

	memset(text, 'w', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < n; i++) {
		struct history_msg m = { .conversation = "bob",
			.from = "bob",
			.text = text,
			.time = "2026-11-25T10:00:00" };
		assert_int_equal(history_add(h, &m), 0);
	}
}

static void
test_checkpoints_let_the_wal_start_over(void **state)
{
	struct fixture *f = *state;
	uv_loop_t loop;
	char *cause = NULL;
	int log = -1, done = -1;

	close_db(f);
	assert_int_equal(uv_loop_init(&loop), 0);
	open_db_on(f, &loop);
	for (int turn = 0; turn < 300; turn++) {
		add_long(f->h, 20);
		assert_int_equal(peerdb_commit(f->db, &cause), 0);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	uv_run(&loop, UV_RUN_DEFAULT); /* the checkpoints in flight, to the end */
	/* A pause: a turn with nothing to commit copies what is left. */
	usleep((PEERDB_IDLE_CHECKPOINT_MS + 50) * 1000);
	uv_update_time(&loop);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	struct history_msg m = {
		.conversation = "bob", .from = "bob", .text = "after", .time = "2026-11-25T10:00:01"
	};
	assert_int_equal(history_add(f->h, &m), 0);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sqlite3_wal_checkpoint_v2(
	                     peerdb_handle(f->db), NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done),
	    SQLITE_OK);
	assert_true(log >= 0);
	assert_true(log < PEERDB_CHECKPOINT_PAGES);
	close_db(f);
	assert_int_equal(uv_loop_close(&loop), 0);
	open_db(f);
}

/* What is written but not committed when the database is closed is
 * committed by the close, after the loop has ended (as at the peer's
 * exit): past PEERDB_WRITEBACK_PAGES and PEERDB_CHECKPOINT_PAGES frames,
 * it starts no job on the pool, which would write into the freed
 * database (seen at a quit, by ASan: a use after free on a pool thread). */
static void
test_the_last_commit_at_close_starts_no_job(void **state)
{
	struct fixture *f = *state;
	uv_loop_t loop;

	close_db(f);
	assert_int_equal(uv_loop_init(&loop), 0);
	open_db_on(f, &loop);
	add_long(f->h, 8000); /* about 5 MB: over 1,000 frames */
	close_db(f);
	assert_int_equal(uv_loop_alive(&loop), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	open_db(f); /* and what it committed is there */
	assert_int_equal(history_unread(f->h, "bob"), 8000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_last_messages_come_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unread_counts_incoming_only_until_read, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_conversations_most_recent_first, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_everything_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pages_after_a_seq_come_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_search_finds_the_newest_match_first_without_case, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_checkpoints_let_the_wal_start_over, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_the_last_commit_at_close_starts_no_job, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
