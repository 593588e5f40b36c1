/* test_contacts.c — the contact list: flags set and cleared, a row that
 * is neither removed, kept sorted, and the same after reopening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/contacts.h"

static struct peerdb *
open_db(const char *path)
{
	char *cause = NULL;
	struct peerdb *db = peerdb_open(path, NULL, &cause);

	if (db == NULL)
		fail_msg("%s", cause);
	return db;
}

static void
test_flags_persist_and_sort(void **state)
{
	char dir[] = "/tmp/test_contacts_XXXXXX", path[256], *cause = NULL;
	struct peerdb *db;
	struct contacts *c;
	const struct contact *all;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/hychat.db", dir);
	db = open_db(path);
	assert_non_null(c = contacts_open(db, &cause));
	assert_int_equal(contacts_set(c, "carol", CONTACTS_CONTACT, 1), 1);
	assert_int_equal(contacts_set(c, "carol", CONTACTS_CONTACT, 1), 0);
	assert_int_equal(contacts_set(c, "bob", CONTACTS_CONTACT, 1), 1);
	assert_int_equal(contacts_set(c, "mallory", CONTACTS_BLOCKED, 1), 1);
	assert_int_equal(contacts_set(c, "bob", CONTACTS_BLOCKED, 1), 1);
	assert_int_equal(contacts_set(c, "nobody", CONTACTS_BLOCKED, 0), 0);
	assert_true(contacts_is_blocked(c, "mallory"));
	assert_false(contacts_is_blocked(c, "carol"));
	assert_null(contacts_get(c, "nobody"));
	all = contacts_list(c, &n);
	assert_int_equal(n, 3);
	assert_string_equal(all[0].user, "bob");
	assert_string_equal(all[1].user, "carol");
	assert_string_equal(all[2].user, "mallory");
	/* Neither contact nor blocked: gone. */
	assert_int_equal(contacts_set(c, "carol", CONTACTS_CONTACT, 0), 1);
	assert_null(contacts_get(c, "carol"));
	assert_int_equal(peerdb_commit(db, &cause), 0);
	contacts_free(c);
	peerdb_close(db);

	db = open_db(path);
	assert_non_null(c = contacts_open(db, &cause));
	all = contacts_list(c, &n);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].user, "bob");
	assert_true(all[0].contact && all[0].blocked);
	assert_string_equal(all[1].user, "mallory");
	assert_true(!all[1].contact && all[1].blocked);
	contacts_free(c);
	peerdb_close(db);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_persist_and_sort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
