/* test_settings.c — hychat.conf: a file as a user writes it, every kind
 * of bad line reported with its number and skipped, values checked by
 * kind, and the atomic save read back, mode 0600, no temporary left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/settings.h"

struct warnings {
	size_t n;
	size_t lines[16];
	char last[SETTINGS_ERR_MAX];
};

static void
collect(void *arg, size_t line, const char *message)
{
	struct warnings *w = arg;

	if (w->n < 16)
		w->lines[w->n] = line;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", message);
}

static void
test_file_as_written(void **state)
{
	static const char text[] = "# mine\n"
	                           "\n"
	                           "tracker = https://chat.example.org:8443\n"
	                           "  username=alice  \r\n"
	                           "peer-port = 9105\n"
	                           "notify = desktop\n"
	                           "highlight = hychat   release\n"
	                           "typing = no\n"
	                           "auto-away = 15"; /* no final newline */
	struct settings *s = settings_new();
	struct warnings w = { 0 };

	(void)state;
	assert_int_equal(settings_parse(s, text, strlen(text), collect, &w), 0);
	assert_string_equal(settings_get(s, SETTING_TRACKER), "https://chat.example.org:8443");
	assert_string_equal(settings_get(s, SETTING_USERNAME), "alice");
	assert_int_equal(settings_get_int(s, SETTING_PEER_PORT), 9105);
	assert_string_equal(settings_get(s, SETTING_NOTIFY), "desktop");
	assert_string_equal(settings_get(s, SETTING_HIGHLIGHT), "hychat   release");
	assert_string_equal(settings_get(s, SETTING_TYPING), "off");
	assert_int_equal(settings_get_int(s, SETTING_TYPING), 0);
	assert_int_equal(settings_get_int(s, SETTING_AUTO_AWAY), 15);
	assert_true(settings_is_set(s, SETTING_NOTIFY));
	assert_false(settings_is_set(s, SETTING_COLOR));
	settings_free(s);
}

static void
test_bad_lines_named_and_skipped(void **state)
{
	static const char text[] = "notify = loud\n" /* 1: not a choice */
	                           "peer-port = 70000\n" /* 2: out of range */
	                           "colour = on\n" /* 3: unknown */
	                           "just words\n" /* 4: no '=' */
	                           "notify = off\n" /* 5: good */
	                           "username = al ice\n" /* 6: not a name */
	                           "tracker = ftp://x\n" /* 7: not http */
	                           "highlight = a\x01b\n" /* 8: control byte */
	                           "highlight = \xff\xfe\n" /* 9: not UTF-8 */
	                           "auto-away = -1\n" /* 10: not a number */
	                           "typing = maybe\n"; /* 11: not a switch */
	struct settings *s = settings_new();
	struct warnings w = { 0 };

	(void)state;
	assert_int_equal(settings_parse(s, text, strlen(text), collect, &w), 10);
	assert_int_equal(w.n, 10);
	assert_int_equal(w.lines[0], 1);
	assert_int_equal(w.lines[3], 4);
	assert_int_equal(w.lines[4], 6);
	assert_int_equal(w.lines[9], 11);
	assert_non_null(strstr(w.last, "on or off"));
	assert_string_equal(settings_get(s, SETTING_NOTIFY), "off");
	assert_int_equal(settings_get_int(s, SETTING_PEER_PORT), 0);
	assert_string_equal(settings_get(s, SETTING_HIGHLIGHT), "");
	settings_free(s);
}

static void
test_set_checks_and_names(void **state)
{
	struct settings *s = settings_new();
	char err[SETTINGS_ERR_MAX];
	char big[SETTINGS_VALUE_MAX + 2];

	(void)state;
	assert_int_equal(settings_find("notify"), SETTING_NOTIFY);
	assert_int_equal(settings_find("nope"), -1);
	assert_int_equal(settings_set(s, SETTING_NOTIFY, "bell", err), 0);
	assert_int_equal(settings_set(s, SETTING_NOTIFY, "Bell", err), -1);
	assert_non_null(strstr(err, "desktop, bell, off"));
	assert_int_equal(settings_set(s, SETTING_COLOR, "false", err), 0);
	assert_string_equal(settings_get(s, SETTING_COLOR), "off");
	assert_int_equal(settings_set(s, SETTING_PEER_PORT, "007", err), 0);
	assert_string_equal(settings_get(s, SETTING_PEER_PORT), "7");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(settings_set(s, SETTING_HIGHLIGHT, big, err), -1);
	assert_int_equal(settings_set(s, SETTING_HIGHLIGHT, "Phát 世界", err), 0);
	assert_string_equal(settings_get(s, SETTING_HIGHLIGHT), "Phát 世界");
	settings_free(s);
}

static void
test_save_is_atomic_and_private(void **state)
{
	char dir[] = "/tmp/test_settings_XXXXXX", path[256], listing[512];
	struct settings *s = settings_new(), *t = settings_new();
	char err[SETTINGS_ERR_MAX], *cause = NULL;
	struct stat st;
	FILE *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/hychat.conf", dir);
	assert_int_equal(settings_load(t, path, NULL, NULL, &cause), 0); /* missing: fine */
	assert_int_equal(settings_set(s, SETTING_HIGHLIGHT, "urgent deploy", err), 0);
	assert_int_equal(settings_set(s, SETTING_AUTO_AWAY, "5", err), 0);
	assert_int_equal(settings_save(s, path, &cause), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(settings_load(t, path, NULL, NULL, &cause), 0);
	assert_string_equal(settings_get(t, SETTING_HIGHLIGHT), "urgent deploy");
	assert_int_equal(settings_get_int(t, SETTING_AUTO_AWAY), 5);
	/* Saved twice: one file, no temporary left beside it. */
	assert_int_equal(settings_save(s, path, &cause), 0);
	snprintf(listing, sizeof(listing), "ls -A %s/sub", dir);
	p = popen(listing, "r");
	assert_non_null(p);
	assert_non_null(fgets(listing, sizeof(listing), p));
	assert_string_equal(listing, "hychat.conf\n");
	assert_null(fgets(listing, sizeof(listing), p));
	pclose(p);
	/* A directory in the way: an error with its reason, not a crash. */
	snprintf(path, sizeof(path), "%s/sub/hychat.conf/x", dir);
	assert_int_equal(settings_save(s, path, &cause), -1);
	assert_non_null(cause);
	free(cause);
	snprintf(listing, sizeof(listing), "rm -rf %s", dir);
	assert_int_equal(system(listing), 0);
	settings_free(s);
	settings_free(t);
}

/* The file's bytes end right before a PROT_NONE page: any over-read
 * faults. */
static void
test_no_overread(void **state)
{
	static const char *const texts[] = { "notify", "notify =", "#", "tracker = http://x\r",
		"highlight = \xe4\xb8", "=", "a" };
	long page = sysconf(_SC_PAGESIZE);
	char *m = mmap(
	    NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t n = strlen(texts[i]);
		struct settings *s = settings_new();
		memcpy(m + page - n, texts[i], n);
		settings_parse(s, m + page - n, n, NULL, NULL);
		settings_free(s);
	}
	munmap(m, (size_t)page * 2);
}

static void
test_sizes_and_autoaccept(void **state)
{
	struct settings *s = settings_new();
	char err[SETTINGS_ERR_MAX];
	uint64_t v = 0;

	(void)state;
	assert_int_equal(settings_parse_size("100", &v), 0);
	assert_true(v == 100);
	assert_int_equal(settings_parse_size(" 4G ", &v), 0);
	assert_true(v == UINT64_C(4) << 30);
	assert_int_equal(settings_parse_size("500m", &v), 0);
	assert_true(v == UINT64_C(500) << 20);
	assert_int_equal(settings_parse_size("1T", &v), 0);
	assert_true(v == UINT64_C(1) << 40);
	assert_int_equal(settings_parse_size("", &v), -1);
	assert_int_equal(settings_parse_size("G", &v), -1);
	assert_int_equal(settings_parse_size("-1", &v), -1);
	assert_int_equal(settings_parse_size("10X", &v), -1);
	assert_int_equal(settings_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(settings_parse_size("2048T", &v), -1);
	/* The defaults: autoaccept off, offers up to 4G, 4 at once. */
	assert_int_equal(settings_autoaccept(s, &v), 0);
	assert_string_equal(settings_get(s, SETTING_MAX_OFFER), "4G");
	assert_int_equal(settings_get_int(s, SETTING_MAX_TRANSFERS), 4);
	assert_int_equal(settings_set(s, SETTING_AUTOACCEPT, "contacts 10M", err), 0);
	assert_int_equal(settings_autoaccept(s, &v), 1);
	assert_true(v == UINT64_C(10) << 20);
	assert_int_equal(settings_set(s, SETTING_AUTOACCEPT, "everyone 10M", err), -1);
	assert_int_equal(settings_set(s, SETTING_AUTOACCEPT, "contacts", err), -1);
	assert_int_equal(settings_set(s, SETTING_AUTOACCEPT, "on", err), -1);
	assert_int_equal(settings_set(s, SETTING_AUTOACCEPT, "off", err), 0);
	assert_int_equal(settings_autoaccept(s, &v), 0);
	assert_int_equal(settings_set(s, SETTING_MAX_OFFER, "1.5G", err), -1);
	assert_int_equal(settings_set(s, SETTING_MAX_TRANSFERS, "0", err), -1);
	assert_int_equal(settings_set(s, SETTING_MAX_TRANSFERS, "65", err), -1);
	settings_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_as_written),
		cmocka_unit_test(test_bad_lines_named_and_skipped),
		cmocka_unit_test(test_set_checks_and_names),
		cmocka_unit_test(test_save_is_atomic_and_private),
		cmocka_unit_test(test_no_overread),
		cmocka_unit_test(test_sizes_and_autoaccept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
