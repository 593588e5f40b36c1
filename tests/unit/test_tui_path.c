/* test_tui_path.c — Tab completion of paths: "~" expanded, the directory
 * split from the start of the name, directories with a trailing "/",
 * dot files only after a dot, sorted, the common start never half a
 * character; and the same on a real directory. */
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

#include "../../tui/tui_internal.h"

static void
free_all(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

static void
test_tilde_is_home_and_nothing_else_is_touched(void **state)
{
	char *s;

	(void)state;
	assert_string_equal(s = tui_path_expand("~", "/home/alice"), "/home/alice/");
	free(s);
	assert_string_equal(s = tui_path_expand("~/Doc", "/home/alice"), "/home/alice/Doc");
	free(s);
	assert_string_equal(s = tui_path_expand("~/x", "/"), "/x");
	free(s);
	/* Another user's home, a tilde inside, no home: as typed. */
	assert_string_equal(s = tui_path_expand("~bob/x", "/home/alice"), "~bob/x");
	free(s);
	assert_string_equal(s = tui_path_expand("a/~/b", "/home/alice"), "a/~/b");
	free(s);
	assert_string_equal(s = tui_path_expand("~/x", NULL), "~/x");
	free(s);
}

static void
test_the_directory_part_ends_at_the_last_slash(void **state)
{
	(void)state;
	assert_int_equal(tui_path_dir_len("/home/alice/Doc"), strlen("/home/alice/"));
	assert_int_equal(tui_path_dir_len("/"), 1);
	assert_int_equal(tui_path_dir_len("notes.txt"), 0);
	assert_int_equal(tui_path_dir_len("dir/"), 4);
}

static const struct tui_path_entry home[] = {
	{ ".", 1 },
	{ "..", 1 },
	{ "Downloads", 1 },
	{ ".bashrc", 0 },
	{ "Documents", 1 },
	{ "doc.txt", 0 },
	{ "Desktop", 1 },
	{ "Dockerfile", 0 },
};

static void
test_directories_get_a_slash_and_names_come_sorted(void **state)
{
	char *v[16];
	size_t n;

	(void)state;
	n = tui_path_match("/home/alice/Do", home, HY_ARRAY_LEN(home), v, 16);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "/home/alice/Dockerfile");
	assert_string_equal(v[1], "/home/alice/Documents/");
	assert_string_equal(v[2], "/home/alice/Downloads/");
	assert_int_equal(tui_path_common(v, n), strlen("/home/alice/Do"));
	free_all(v, n);

	n = tui_path_match("/home/alice/Docu", home, HY_ARRAY_LEN(home), v, 16);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "/home/alice/Documents/");
	assert_int_equal(tui_path_common(v, n), strlen(v[0]));
	free_all(v, n);
}

static void
test_dot_files_only_after_a_dot_and_never_dot_or_dotdot(void **state)
{
	char *v[16];
	size_t n;

	(void)state;
	n = tui_path_match("/home/alice/", home, HY_ARRAY_LEN(home), v, 16);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_true(strstr(v[i], "/.") == NULL);
	free_all(v, n);
	n = tui_path_match("/home/alice/.", home, HY_ARRAY_LEN(home), v, 16);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "/home/alice/.bashrc");
	free_all(v, n);
}

static void
test_no_directory_part_completes_in_place_and_max_is_kept(void **state)
{
	char *v[2];
	size_t n;

	(void)state;
	n = tui_path_match("D", home, HY_ARRAY_LEN(home), v, 2);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i][0] == 'D' && strchr(v[i], '/') == v[i] + strlen(v[i]) - 1);
	free_all(v, n);
	assert_int_equal(tui_path_match("zzz", home, HY_ARRAY_LEN(home), v, 2), 0);
}

static void
test_the_common_start_never_cuts_a_character(void **state)
{
	/* "é" is c3 a9, "è" is c3 a8: they agree on one byte only. */
	char a[] = "caf\xc3\xa9", b[] = "caf\xc3\xa8";
	char *v[] = { a, b };

	(void)state;
	assert_int_equal(tui_path_common(v, 2), 3);
	assert_int_equal(tui_path_common(v, 0), 0);
}

static void
test_a_real_directory_is_listed(void **state)
{
	char dir[] = "/tmp/hychat-tui-path-XXXXXX", p[256], *v[8], *word;
	size_t n;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/photos", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/photo.jpg", dir);
	assert_non_null(f = fopen(p, "w"));
	fclose(f);
	snprintf(p, sizeof(p), "%s/link", dir);
	assert_int_equal(symlink("photos", p), 0);

	/* "~" is the directory given as home. */
	n = tui_path_complete("~/pho", dir, v, 8);
	assert_int_equal(n, 2);
	snprintf(p, sizeof(p), "%s/photo.jpg", dir);
	assert_string_equal(v[0], p);
	snprintf(p, sizeof(p), "%s/photos/", dir);
	assert_string_equal(v[1], p);
	free_all(v, n);
	/* A link to a directory is a directory. */
	n = tui_path_complete("~/li", dir, v, 8);
	assert_int_equal(n, 1);
	snprintf(p, sizeof(p), "%s/link/", dir);
	assert_string_equal(v[0], p);
	free_all(v, n);
	/* A directory that is not there: nothing, and no crash. */
	word = "~/nothing/here";
	assert_int_equal(tui_path_complete(word, dir, v, 8), 0);

	snprintf(p, sizeof(p), "%s/link", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/photo.jpg", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/photos", dir);
	rmdir(p);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tilde_is_home_and_nothing_else_is_touched),
		cmocka_unit_test(test_the_directory_part_ends_at_the_last_slash),
		cmocka_unit_test(test_directories_get_a_slash_and_names_come_sorted),
		cmocka_unit_test(test_dot_files_only_after_a_dot_and_never_dot_or_dotdot),
		cmocka_unit_test(test_no_directory_part_completes_in_place_and_max_is_kept),
		cmocka_unit_test(test_the_common_start_never_cuts_a_character),
		cmocka_unit_test(test_a_real_directory_is_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
