/* test_delivery.c — delivery states only move forward, survive a reopen,
 * and stay bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/delivery.h"

static void
test_states_move_forward_and_survive_a_reopen(void **state)
{
	char dir[] = "/tmp/test_delivery.XXXXXX", path[128], *cause = NULL;
	struct peerdb *db;
	struct delivery *d;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, PEERDB_FILE);
	assert_non_null(db = peerdb_open(path, NULL, &cause));
	assert_non_null(d = delivery_new(db, 7, &cause));
	/* the first open records where delivered begins to be derived */
	assert_int_equal(delivery_derived_after(d), 7);
	assert_int_equal(delivery_get(d, "a"), -1);
	assert_int_equal(delivery_set(d, "a", DELIVERY_PENDING), 1);
	assert_int_equal(delivery_set(d, "a", DELIVERY_PENDING), 0);
	assert_int_equal(delivery_set(d, "a", DELIVERY_STORED), 1);
	assert_int_equal(delivery_set(d, "a", DELIVERY_DELIVERED), 1);
	/* a late "stored" (a deposit answered after the ack) changes nothing */
	assert_int_equal(delivery_set(d, "a", DELIVERY_STORED), 0);
	assert_int_equal(delivery_get(d, "a"), DELIVERY_DELIVERED);
	/* delivered before any other state was recorded (sent by an older run) */
	assert_int_equal(delivery_set(d, "b", DELIVERY_DELIVERED), 1);
	assert_string_equal(delivery_name(DELIVERY_STORED), "stored");
	/* dropped (by the outbox's bound) is final too */
	assert_int_equal(delivery_set(d, "c", DELIVERY_DROPPED), 1);
	assert_int_equal(delivery_get(d, "c"), DELIVERY_DROPPED);
	assert_int_equal(peerdb_commit(db, &cause), 0);
	delivery_free(d);
	peerdb_close(db);
	assert_non_null(db = peerdb_open(path, NULL, &cause));
	assert_non_null(d = delivery_new(db, 42, &cause));
	/* and later opens keep it */
	assert_int_equal(delivery_derived_after(d), 7);
	assert_int_equal(delivery_get(d, "a"), DELIVERY_DELIVERED);
	assert_int_equal(delivery_get(d, "b"), DELIVERY_DELIVERED);
	delivery_free(d);
	peerdb_close(db);
	unlink(path);
	char side[160];
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states_move_forward_and_survive_a_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
