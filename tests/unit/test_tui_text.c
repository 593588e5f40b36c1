/* test_tui_text.c — UTF-8 in terminal cells: widths of wide and combining
 * characters, what replaces control bytes, and word wrap on those widths. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tui/tui_internal.h"

#define VIETNAMESE "Xin chào, tôi là Phát — thế giới!"

static int
setup_locale(void **state)
{
	(void)state;
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		return -1;
	return 0;
}

static void
test_widths_count_cells_not_bytes(void **state)
{
	(void)state;
	assert_int_equal(tui_text_width("abc", 3), 3);
	/* Precomposed Vietnamese: one cell a character. */
	assert_int_equal(tui_text_width(VIETNAMESE, strlen(VIETNAMESE)), 33);
	/* CJK and emoji: two cells each. */
	assert_int_equal(tui_text_width("你好", strlen("你好")), 4);
	assert_int_equal(tui_text_width("🎉", strlen("🎉")), 2);
	/* A combining acute accent adds no cell. */
	assert_int_equal(tui_text_width("e\xcc\x81", 3), 1);
}

static void
test_control_and_invalid_bytes_become_one_cell(void **state)
{
	wchar_t wc;
	int w;

	(void)state;
	assert_int_equal(tui_text_next("\x1b[2J", 4, &wc, &w), 1);
	assert_int_equal(wc, 0xFFFD);
	assert_int_equal(w, 1);
	assert_int_equal(tui_text_next("\xff", 1, &wc, &w), 1);
	assert_int_equal(wc, 0xFFFD);
	assert_int_equal(tui_text_next("\t", 1, &wc, &w), 1);
	assert_int_equal(wc, L' ');
}

static void
test_wrap_breaks_after_a_blank(void **state)
{
	struct tui_span s[8];
	const char *text = "the quick brown fox";

	(void)state;
	assert_int_equal(tui_text_wrap(text, 10, s, 8), 2);
	assert_int_equal(s[0].off, 0);
	assert_memory_equal(text + s[0].off, "the quick ", s[0].len);
	assert_memory_equal(text + s[1].off, "brown fox", s[1].len);
	/* Counting only. */
	assert_int_equal(tui_text_wrap(text, 10, NULL, 0), 2);
}

static void
test_wrap_cuts_a_word_longer_than_the_line(void **state)
{
	struct tui_span s[8];

	(void)state;
	assert_int_equal(tui_text_wrap("abcdefghij", 4, s, 8), 3);
	assert_int_equal(s[0].len, 4);
	assert_int_equal(s[2].len, 2);
}

static void
test_wrap_never_splits_a_wide_character_over_the_edge(void **state)
{
	struct tui_span s[8];
	const char *text = "a你好";

	(void)state;
	/* 5 cells in lines of 2: "a", "你", "好". */
	assert_int_equal(tui_text_wrap(text, 2, s, 8), 3);
	for (int i = 0; i < 3; i++)
		assert_true(tui_text_width(text + s[i].off, s[i].len) <= 2);
}

static void
test_wrap_keeps_vietnamese_intact(void **state)
{
	struct tui_span s[8];
	char joined[128] = "";
	int n;

	(void)state;
	n = tui_text_wrap(VIETNAMESE, 12, s, 8);
	assert_true(n >= 3);
	for (int i = 0; i < n; i++) {
		assert_true(tui_text_width(VIETNAMESE + s[i].off, s[i].len) <= 12);
		strncat(joined, VIETNAMESE + s[i].off, s[i].len);
	}
	assert_string_equal(joined, VIETNAMESE);
}

static void
test_wrap_breaks_at_newlines(void **state)
{
	struct tui_span s[8];
	const char *text = "one\ntwo\n\nfour";

	(void)state;
	assert_int_equal(tui_text_wrap(text, 80, s, 8), 4);
	assert_memory_equal(text + s[1].off, "two", 3);
	assert_int_equal(s[2].len, 0);
	assert_memory_equal(text + s[3].off, "four", 4);
	assert_int_equal(tui_text_wrap("", 80, s, 8), 1);
}

static void
test_wide_text_comes_back_as_the_same_utf8(void **state)
{
	const wchar_t w[] = L"Phát 你好 🎉";
	char *s;

	(void)state;
	s = tui_text_utf8(w, wcslen(w));
	assert_string_equal(s, "Phát 你好 🎉");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_widths_count_cells_not_bytes),
		cmocka_unit_test(test_control_and_invalid_bytes_become_one_cell),
		cmocka_unit_test(test_wrap_breaks_after_a_blank),
		cmocka_unit_test(test_wrap_cuts_a_word_longer_than_the_line),
		cmocka_unit_test(test_wrap_never_splits_a_wide_character_over_the_edge),
		cmocka_unit_test(test_wrap_keeps_vietnamese_intact),
		cmocka_unit_test(test_wrap_breaks_at_newlines),
		cmocka_unit_test(test_wide_text_comes_back_as_the_same_utf8),
	};
	return cmocka_run_group_tests(tests, setup_locale, NULL);
}
