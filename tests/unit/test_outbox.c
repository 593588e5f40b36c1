/* test_outbox.c — the outbox keeps unacknowledged messages in order per
 * peer across a restart; the seen set turns a resent id into a duplicate
 * and stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/outbox.h"
#include "hychat/util.h"

struct fixture {
	char dir[64];
	char path[128];
	struct peerdb *db;
	struct outbox *o;
};

static void
open_db(struct fixture *f)
{
	char *cause = NULL;

	f->db = peerdb_open(f->path, NULL, &cause);
	assert_non_null(f->db);
	f->o = outbox_new(f->db, &cause);
	assert_non_null(f->o);
}

static void
close_db(struct fixture *f)
{
	outbox_free(f->o);
	peerdb_close(f->db);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_outbox.XXXXXX");
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

struct walk {
	char ids[16][16];
	char payloads[16][32];
	int n, stop_after;
};

static int
collect(const struct outbox_entry *e, void *arg)
{
	struct walk *w = arg;

	snprintf(w->ids[w->n], sizeof(w->ids[0]), "%s", e->id);
	snprintf(w->payloads[w->n], sizeof(w->payloads[0]), "%s", e->payload);
	w->n++;
	return w->stop_after > 0 && w->n >= w->stop_after;
}

static int
put(struct outbox *o, const char *peer, const char *id, const char *payload, int channel)
{
	struct outbox_entry e = { .peer = peer, .id = id, .payload = payload, .channel = channel };

	return outbox_put(o, &e);
}

static void
test_entries_come_back_in_order_until_acked(void **state)
{
	struct fixture *f = *state;
	struct walk w = { 0 };

	assert_int_equal(put(f->o, "bob", "id1", "{\"n\":1}", 0), 0);
	assert_int_equal(put(f->o, "carol", "id2", "{\"n\":2}", 0), 0);
	assert_int_equal(put(f->o, "bob", "id3", "{\"n\":3}", 0), 0);
	assert_int_equal(put(f->o, "bob", "id4", "{\"n\":4}", 0), 0);
	/* The same id twice is one entry. */
	assert_int_equal(put(f->o, "bob", "id4", "{\"n\":4}", 0), 0);
	assert_int_equal(outbox_count(f->o, "bob"), 3);
	assert_int_equal(outbox_count(f->o, NULL), 4);
	assert_int_equal(outbox_each(f->o, "bob", collect, &w), 3);
	assert_string_equal(w.ids[0], "id1");
	assert_string_equal(w.ids[1], "id3");
	assert_string_equal(w.payloads[2], "{\"n\":4}");
	/* Pending is being there: per peer, gone with the ack. */
	assert_int_equal(outbox_has(f->o, "bob", "id3"), 1);
	assert_int_equal(outbox_has(f->o, "carol", "id3"), 0);
	assert_int_equal(outbox_ack(f->o, "bob", "id3", NULL), 1);
	assert_int_equal(outbox_has(f->o, "bob", "id3"), 0);
	assert_int_equal(outbox_ack(f->o, "bob", "id3", NULL), 0);
	/* An ack from the wrong peer removes nothing. */
	assert_int_equal(outbox_ack(f->o, "carol", "id1", NULL), 0);
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	assert_int_equal(outbox_each(f->o, "bob", collect, &w), 1);
	assert_string_equal(w.ids[0], "id1");
}

static void
count_peer(const char *peer, void *arg)
{
	(*(int *)arg)++;
}

static void
test_outbox_survives_a_restart(void **state)
{
	struct fixture *f = *state;
	struct walk w = { 0 };
	char *cause = NULL;
	int peers = 0;

	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(put(f->o, "bob", id, "{}", 0), 0);
	}
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	close_db(f);
	open_db(f);
	assert_int_equal(outbox_each(f->o, "bob", collect, &w), 5);
	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		assert_string_equal(w.ids[i], id);
	}
	assert_int_equal(outbox_peers(f->o, count_peer, &peers), 1);
	assert_int_equal(peers, 1);
}

/* A channel message waits on disk for its member list, across a restart,
 * until settled; it is not in any peer's outbox meanwhile. */
static void
test_channel_sends_wait_across_a_restart(void **state)
{
	struct fixture *f = *state;
	struct walk w = { 0 };
	char *cause = NULL;

	assert_int_equal(outbox_channel_put(f->o, "general", "c1", "{\"n\":1}"), 0);
	assert_int_equal(outbox_channel_put(f->o, "ops", "c2", "{\"n\":2}"), 0);
	assert_int_equal(outbox_channel_put(f->o, "general", "c2", "{\"n\":2}"), 0);
	assert_int_equal(outbox_count(f->o, NULL), 0);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	close_db(f);
	open_db(f);
	assert_int_equal(outbox_channel_each(f->o, collect, &w), 2);
	assert_string_equal(w.ids[0], "c1");
	assert_string_equal(w.payloads[1], "{\"n\":2}");
	assert_int_equal(outbox_channel_done(f->o, "c1"), 0);
	w.n = 0;
	assert_int_equal(outbox_channel_each(f->o, collect, &w), 1);
	assert_string_equal(w.ids[0], "c2");
}

static void
test_seen_ids_are_duplicates_per_sender(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;

	assert_int_equal(outbox_seen(f->o, "bob", "x"), 1);
	assert_int_equal(outbox_seen(f->o, "bob", "x"), 0);
	assert_int_equal(outbox_seen(f->o, "carol", "x"), 1);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	close_db(f);
	open_db(f);
	assert_int_equal(outbox_seen(f->o, "bob", "x"), 0);
}

static void
test_seen_set_stays_bounded(void **state)
{
	struct fixture *f = *state;
	char id[32];
	int total = OUTBOX_SEEN_PER_SENDER + 8192;

	for (int i = 0; i < total; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(outbox_seen(f->o, "bob", id), 1);
	}
	/* The oldest were forgotten, the newest are still known. */
	assert_int_equal(outbox_seen(f->o, "bob", "id0"), 1);
	snprintf(id, sizeof(id), "id%d", total - 1);
	assert_int_equal(outbox_seen(f->o, "bob", id), 0);
}

struct drops {
	int n;
	char first[32], last[32];
};

static void
count_drop(const char *peer, const char *id, void *arg)
{
	struct drops *d = arg;

	assert_string_equal(peer, "bob");
	if (d->n++ == 0)
		snprintf(d->first, sizeof(d->first), "%s", id);
	snprintf(d->last, sizeof(d->last), "%s", id);
}

/* The bound drops the oldest entries, and says which: a dropped entry is
 * not a delivered one (delivery.h). */
static void
test_entries_dropped_by_the_bound_are_told(void **state)
{
	struct fixture *f = *state;
	struct drops d = { 0 };
	char id[32];
	int total = OUTBOX_MAX_PER_PEER + 4096 * 2;

	outbox_on_drop(f->o, count_drop, &d);
	for (int i = 0; i < total; i++) {
		snprintf(id, sizeof(id), "id%06d", i);
		assert_int_equal(put(f->o, "bob", id, "{}", 0), 0);
	}
	assert_true(d.n > 0);
	assert_int_equal(outbox_count(f->o, "bob"), total - d.n);
	assert_string_equal(d.first, "id000000");
	snprintf(id, sizeof(id), "id%06d", d.n - 1);
	assert_string_equal(d.last, id);
	assert_int_equal(outbox_has(f->o, "bob", d.last), 0);
	snprintf(id, sizeof(id), "id%06d", d.n);
	assert_int_equal(outbox_has(f->o, "bob", id), 1);
}

/* An ack says whether the entry was a channel message's. */
static void
test_an_ack_tells_a_channel_entry_apart(void **state)
{
	struct fixture *f = *state;
	int channel = -1;

	assert_int_equal(put(f->o, "bob", "d1", "{}", 0), 0);
	assert_int_equal(put(f->o, "bob", "c1", "{}", 1), 0);
	assert_int_equal(outbox_ack(f->o, "bob", "c1", &channel), 1);
	assert_int_equal(channel, 1);
	assert_int_equal(outbox_ack(f->o, "bob", "d1", &channel), 1);
	assert_int_equal(channel, 0);
}

struct refs {
	int n;
	int64_t ref[4];
	char payload[4][32];
};

static int
collect_ref(const struct outbox_entry *e, void *arg)
{
	struct refs *r = arg;

	r->ref[r->n] = e->ref;
	snprintf(r->payload[r->n], sizeof(r->payload[0]), "%s", e->payload);
	r->n++;
	return 0;
}

/* An entry may name the history row that holds its message instead of a
 * copy of it; both kinds come back in order, across a restart. */
static void
test_an_entry_may_refer_to_the_history(void **state)
{
	struct fixture *f = *state;
	struct outbox_entry e = { .peer = "bob", .id = "r1", .payload = "{\"n\":1}", .ref = 42 };
	struct refs r = { 0 };
	char *cause = NULL;

	assert_int_equal(outbox_put(f->o, &e), 0);
	assert_int_equal(put(f->o, "bob", "w2", "{\"n\":2}", 0), 0);
	assert_int_equal(peerdb_commit(f->db, &cause), 0);
	close_db(f);
	open_db(f);
	assert_int_equal(outbox_each(f->o, "bob", collect_ref, &r), 2);
	assert_int_equal(r.ref[0], 42);
	assert_string_equal(r.payload[0], "");
	assert_int_equal(r.ref[1], 0);
	assert_string_equal(r.payload[1], "{\"n\":2}");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_entries_come_back_in_order_until_acked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_channel_sends_wait_across_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_seen_ids_are_duplicates_per_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_set_stays_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_entries_dropped_by_the_bound_are_told, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_ack_tells_a_channel_entry_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_an_entry_may_refer_to_the_history, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
