/* test_session.c — session tokens, expiry, logout; users file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/session.h"
#include "hychat/users.h"
#include "hychat/util.h"

static void
test_tokens_are_random_and_map_to_their_user(void **state)
{
	struct sessions *s = sessions_new(1000);
	char t1[SESSION_TOKEN_CHARS + 1], t2[SESSION_TOKEN_CHARS + 1], user[SESSION_MAX_USER + 1];

	sessions_create(s, "alice", 0, t1);
	sessions_create(s, "bob", 0, t2);
	assert_int_equal(strlen(t1), SESSION_TOKEN_CHARS);
	assert_string_not_equal(t1, t2);
	assert_int_equal(sessions_check(s, t1, 10, user), 0);
	assert_string_equal(user, "alice");
	assert_int_equal(sessions_check(s, t2, 10, user), 0);
	assert_string_equal(user, "bob");
	t1[5] ^= 1;
	assert_int_equal(sessions_check(s, t1, 10, user), -1);
	assert_int_equal(sessions_check(s, "short", 10, user), -1);
	assert_int_equal(sessions_check(s, "", 10, user), -1);
	sessions_free(s);
}

static void
test_sessions_expire_and_end(void **state)
{
	struct sessions *s = sessions_new(1000);
	char t[SESSION_TOKEN_CHARS + 1], user[SESSION_MAX_USER + 1];

	sessions_create(s, "alice", 0, t);
	assert_int_equal(sessions_check(s, t, 999, user), 0);
	assert_int_equal(sessions_check(s, t, 1000, user), -1);
	assert_int_equal(sessions_count(s), 0);
	sessions_create(s, "alice", 0, t);
	assert_int_equal(sessions_end(s, t), 0);
	assert_int_equal(sessions_end(s, t), -1);
	for (int i = 0; i < 100; i++)
		sessions_create(s, "x", (uint64_t)i, t);
	assert_int_equal(sessions_sweep(s, 1050), 51);
	assert_int_equal(sessions_count(s), 49);
	sessions_free(s);
}

static void
test_users_file_roundtrip_and_bad_lines(void **state)
{
	char path[] = "/tmp/hychat-users-XXXXXX";
	char *err = NULL;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char junk[] = "# comment\n\nnot a line\nbad name!:$argon2id$x\n\xff\xfe:zz\n";
	assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	close(fd);

	struct users *u = users_load(path, &err);
	assert_non_null(u);
	assert_int_equal(users_count(u), 0);
	assert_int_equal(users_set(u, path, "alice", "correct horse", &err), 0);
	assert_int_equal(users_set(u, path, "bad name", "x", &err), -1);
	assert_non_null(err);
	free(err);
	users_free(u);

	u = users_load(path, &err);
	assert_int_equal(users_count(u), 1);
	assert_true(users_verify(u, "alice", "correct horse"));
	assert_false(users_verify(u, "alice", "wrong"));
	assert_false(users_verify(u, "nobody", "correct horse"));
	users_free(u);

	FILE *f = fopen(path, "r");
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL)
		assert_null(strstr(line, "correct horse"));
	fclose(f);
	unlink(path);
}

static void
test_user_names_are_checked(void **state)
{
	assert_true(hy_name_valid("a", strlen("a")));
	assert_true(hy_name_valid("Alice_01.x-y", strlen("Alice_01.x-y")));
	assert_false(hy_name_valid("", strlen("")));
	assert_false(hy_name_valid("a b", strlen("a b")));
	assert_false(hy_name_valid("a/b", strlen("a/b")));
	assert_false(hy_name_valid(
	    "123456789012345678901234567890123", strlen("123456789012345678901234567890123")));
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens_are_random_and_map_to_their_user),
		cmocka_unit_test(test_sessions_expire_and_end),
		cmocka_unit_test(test_users_file_roundtrip_and_bad_lines),
		cmocka_unit_test(test_user_names_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
