/* test_tui_xfer.c — the texts of a file transfer in the terminal: sizes,
 * the time left, the bar, the line of each state, and the status bar's
 * summary of those under way. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tui/tui_internal.h"

#define MiB (1024ULL * 1024)

static int
setup_locale(void **state)
{
	(void)state;
	return setlocale(LC_CTYPE, "C.UTF-8") == NULL ? -1 : 0;
}

static void
test_sizes_read_as_people_do(void **state)
{
	char s[32];

	(void)state;
	tui_xfer_size(s, sizeof(s), 0);
	assert_string_equal(s, "0 B");
	tui_xfer_size(s, sizeof(s), 1023);
	assert_string_equal(s, "1023 B");
	tui_xfer_size(s, sizeof(s), 1536);
	assert_string_equal(s, "1.5 KiB");
	tui_xfer_size(s, sizeof(s), 200 * MiB);
	assert_string_equal(s, "200 MiB");
	tui_xfer_size(s, sizeof(s), 1024 * MiB);
	assert_string_equal(s, "1.0 GiB");
	tui_xfer_size(s, sizeof(s), UINT64_MAX);
	assert_string_equal(s, "16 EiB");
}

static void
test_time_left_from_the_rate(void **state)
{
	char s[16];

	(void)state;
	tui_xfer_eta(s, sizeof(s), 100 * MiB, 10.0 * MiB);
	assert_string_equal(s, "0:10");
	tui_xfer_eta(s, sizeof(s), 3723, 1);
	assert_string_equal(s, "1:02:03");
	tui_xfer_eta(s, sizeof(s), 5, 0); /* no rate yet */
	assert_string_equal(s, "--:--");
	tui_xfer_eta(s, sizeof(s), 0, 0);
	assert_string_equal(s, "0:00");
	tui_xfer_eta(s, sizeof(s), UINT64_MAX, 2);
	assert_string_equal(s, ">99h");
}

static void
test_percent_reaches_100_only_when_every_byte_is_in(void **state)
{
	(void)state;
	assert_int_equal(tui_xfer_percent(0, 100), 0);
	assert_int_equal(tui_xfer_percent(43, 100), 43);
	assert_int_equal(tui_xfer_percent(999999, 1000000), 99);
	assert_int_equal(tui_xfer_percent(100, 100), 100);
	assert_int_equal(tui_xfer_percent(200, 100), 100); /* never more */
	assert_int_equal(tui_xfer_percent(0, 0), 0); /* an empty file */
	assert_int_equal(tui_xfer_percent(UINT64_MAX - 1, UINT64_MAX), 99);
}

static void
test_the_bar_fills_in_proportion(void **state)
{
	char s[128];

	(void)state;
	tui_xfer_bar(s, sizeof(s), 0, 100, 4);
	assert_string_equal(s, "[░░░░]");
	tui_xfer_bar(s, sizeof(s), 50, 100, 4);
	assert_string_equal(s, "[██░░]");
	tui_xfer_bar(s, sizeof(s), 100, 100, 4);
	assert_string_equal(s, "[████]");
	tui_xfer_bar(s, sizeof(s), 500, 100, 4);
	assert_string_equal(s, "[████]");
	/* Too small a buffer: cut, terminated. */
	tui_xfer_bar(s, 4, 50, 100, 4);
	assert_int_equal(strlen(s), 3);
}

static struct tui_xfer
xfer(const char *state, int incoming, uint64_t bytes, uint64_t size, double rate)
{
	struct tui_xfer x;

	memset(&x, 0, sizeof(x));
	snprintf(x.id, sizeof(x.id), "7");
	snprintf(x.peer, sizeof(x.peer), "alice");
	snprintf(x.name, sizeof(x.name), "report.pdf");
	snprintf(x.state, sizeof(x.state), "%s", state);
	x.incoming = incoming;
	x.bytes = bytes;
	x.size = size;
	x.rate = rate;
	return x;
}

static void
test_each_state_has_its_line(void **state)
{
	char s[TUI_XFER_TEXT_MAX];
	struct tui_xfer x;

	(void)state;
	x = xfer("offered", 1, 0, 3 * MiB, 0);
	tui_xfer_text(&x, s, sizeof(s));
	assert_string_equal(
	    s, "← alice offers report.pdf (3.0 MiB): /accept 7 [PATH] or /reject 7");

	x = xfer("offered", 0, 0, 3 * MiB, 0);
	tui_xfer_text(&x, s, sizeof(s));
	assert_string_equal(s,
	    "→ report.pdf (3.0 MiB) to alice: offered, waiting for an answer "
	    "(/cancel 7)");

	x = xfer("active", 1, 43 * MiB, 100 * MiB, 1.0 * MiB);
	tui_xfer_text(&x, s, sizeof(s));
	assert_string_equal(s,
	    "← report.pdf from alice [████████░░░░░░░░░░░░]  43% 43 MiB of "
	    "100 MiB, 1.0 MiB/s, 0:57 left");

	x = xfer("paused", 0, 50, 100, 0);
	tui_xfer_text(&x, s, sizeof(s));
	assert_non_null(strstr(s, " 50% 50 B of 100 B, 0 B/s, --:-- left, paused"));

	x = xfer("done", 1, 100, 100, 0);
	snprintf(x.path, sizeof(x.path), "/home/bob/Downloads/hychat/report.pdf");
	tui_xfer_text(&x, s, sizeof(s));
	assert_string_equal(s,
	    "← report.pdf (100 B) from alice: done, 100%, in "
	    "/home/bob/Downloads/hychat/report.pdf");

	x = xfer("failed", 1, 30, 100, 0);
	snprintf(x.error, sizeof(x.error), "the file changed at the sender");
	tui_xfer_text(&x, s, sizeof(s));
	assert_string_equal(
	    s, "← report.pdf (100 B) from alice: failed: the file changed at the sender at 30%");
}

static void
test_a_long_name_is_cut_not_overflowed(void **state)
{
	char s[64];
	struct tui_xfer x = xfer("active", 1, 1, 2, 1);

	(void)state;
	memset(x.name, 'n', sizeof(x.name) - 1);
	tui_xfer_text(&x, s, sizeof(s));
	assert_int_equal(strlen(s), sizeof(s) - 1);
}

static void
test_the_summary_counts_those_under_way(void **state)
{
	char s[64];
	struct tui_xfer v[4];

	(void)state;
	v[0] = xfer("active", 1, 30, 100, 1);
	v[1] = xfer("sending", 0, 56, 100, 1);
	v[2] = xfer("done", 1, 100, 100, 0); /* ended: not counted */
	v[3] = xfer("offered", 1, 0, 1000, 0); /* not answered yet */
	tui_xfer_summary(v, 4, s, sizeof(s));
	assert_string_equal(s, "⇅ 2 files 43%");
	tui_xfer_summary(v, 1, s, sizeof(s));
	assert_string_equal(s, "⇅ 1 file 30%");
	tui_xfer_summary(v + 2, 2, s, sizeof(s));
	assert_string_equal(s, "");
	assert_true(tui_xfer_final("cancelled") && tui_xfer_final("rejected"));
	assert_false(tui_xfer_final("active"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_read_as_people_do),
		cmocka_unit_test(test_time_left_from_the_rate),
		cmocka_unit_test(test_percent_reaches_100_only_when_every_byte_is_in),
		cmocka_unit_test(test_the_bar_fills_in_proportion),
		cmocka_unit_test(test_each_state_has_its_line),
		cmocka_unit_test(test_a_long_name_is_cut_not_overflowed),
		cmocka_unit_test(test_the_summary_counts_those_under_way),
	};
	return cmocka_run_group_tests(tests, setup_locale, NULL);
}
