/* test_relay_token.c — the rendezvous token: what the tracker signs the
 * relay accepts, once parsed wherever the line is cut; a changed byte, a
 * wrong key, an expired token, a line too long, and lines that are not
 * tokens are refused; the parser never reads past what it is given (the
 * line ends at a PROT_NONE guard page). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/relay_token.h"

#define NOW 1800000000ULL

static uint8_t key[RELAY_TOKEN_KEY_BYTES];
static const char *id = "00112233445566778899aabbccddeeff";

static int
parse_check(const char *line, size_t len, struct relay_token *t, const uint8_t *k, uint64_t now,
    const char **why)
{
	size_t used = 0;
	int rc = relay_token_parse(line, len, t, &used, why);

	if (rc <= 0)
		return rc;
	*why = relay_token_check(t, line, k, now);
	return *why == NULL ? 1 : -2;
}

static void
test_roundtrip(void **state)
{
	char line[RELAY_TOKEN_LINE_MAX + 1];
	struct relay_token t;
	const char *why;
	size_t used;

	(void)state;
	assert_int_equal(relay_token_sign(key, id, NOW + 60, "alice", "bob", line), 0);
	strcat(line, "\nNOISE");
	size_t len = strlen(line);
	/* Every cut before the newline needs more; at or after it parses. */
	for (size_t cut = 0; cut < len; cut++) {
		int rc = relay_token_parse(line, cut, &t, &used, &why);
		assert_int_equal(rc, cut < len - 5 ? 0 : 1);
	}
	assert_int_equal(relay_token_parse(line, len, &t, &used, &why), 1);
	assert_int_equal(used, len - 5);
	assert_string_equal(t.id, id);
	assert_string_equal(t.from, "alice");
	assert_string_equal(t.to, "bob");
	assert_int_equal(t.expiry, NOW + 60);
	assert_null(relay_token_check(&t, line, key, NOW));
	assert_string_equal(relay_token_check(&t, line, key, NOW + 61), "token expired");
}

static void
test_tampered(void **state)
{
	char line[RELAY_TOKEN_LINE_MAX + 1], bad[RELAY_TOKEN_LINE_MAX + 1];
	uint8_t other[RELAY_TOKEN_KEY_BYTES];
	struct relay_token t;
	const char *why;

	(void)state;
	assert_int_equal(relay_token_sign(key, id, NOW + 60, "alice", "bob", line), 0);
	strcat(line, "\n");
	memset(other, 7, sizeof(other));
	assert_int_equal(parse_check(line, strlen(line), &t, other, NOW, &why), -2);
	assert_string_equal(why, "bad token signature");
	/* Any byte changed to another valid one fails, at the parser or at
	 * the signature. */
	for (size_t i = 0; i + 1 < strlen(line); i++) {
		strcpy(bad, line);
		bad[i] = bad[i] == 'a' ? 'b' : (bad[i] == '1' ? '2' : 'a');
		int rc = parse_check(bad, strlen(bad), &t, key, NOW, &why);
		assert_true(rc < 0);
	}
	/* Names swapped: the other half, not this one. */
	snprintf(bad, sizeof(bad), "HYRELAY1 %s %llu bob alice %s\n", id,
	    (unsigned long long)(NOW + 60), strrchr(line, ' ') + 1);
	bad[strlen(bad) - 1] = '\0';
	strcat(bad, "\n");
	assert_int_equal(parse_check(bad, strlen(bad), &t, key, NOW, &why), -2);
}

static void
test_refused_lines(void **state)
{
	static const char *const lines[] = {
		"GET / HTTP/1.1\r\n",
		"HYRELAY1\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 1800000060 alice bob\n",
		"HYRELAY1 00112233445566778899AABBCCDDEEFF 1800000060 alice bob "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 01800000060 alice bob "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 1800000060 alice alice "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 1800000060 al/ce bob "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"HYRELAY1  00112233445566778899aabbccddeeff 1800000060 alice bob "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 1800000060 alice bob "
		"0000000000000000000000000000000000000000000000000000000000000000 x\n",
		"HYRELAY1 00112233445566778899aabbccddeeff 99999999999999 alice bob "
		"0000000000000000000000000000000000000000000000000000000000000000\n",
	};
	struct relay_token t;
	const char *why;
	size_t used;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(
		    relay_token_parse(lines[i], strlen(lines[i]), &t, &used, &why), -1);
		assert_non_null(why);
	}
	char big[RELAY_TOKEN_LINE_MAX + 8];
	memset(big, 'A', sizeof(big));
	assert_int_equal(relay_token_parse(big, RELAY_TOKEN_LINE_MAX - 1, &t, &used, &why), 0);
	assert_int_equal(relay_token_parse(big, RELAY_TOKEN_LINE_MAX, &t, &used, &why), -1);
	assert_int_equal(relay_token_parse(big, sizeof(big), &t, &used, &why), -1);
	char out[RELAY_TOKEN_LINE_MAX];
	assert_int_equal(relay_token_sign(key, id, NOW, "alice", "alice", out), -1);
	assert_int_equal(relay_token_sign(key, "xyz", NOW, "alice", "bob", out), -1);
	assert_int_equal(relay_token_sign(key, id, NOW, "a b", "bob", out), -1);
}

/* Every prefix of a token, and the token, ending at a guard page. */
static void
test_guard_page(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	char *mem = mmap(
	    NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[RELAY_TOKEN_LINE_MAX + 1];
	struct relay_token t;
	const char *why;
	size_t used;

	(void)state;
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
	assert_int_equal(relay_token_sign(key, id, NOW + 60, "alice", "bob", line), 0);
	strcat(line, "\n");
	size_t len = strlen(line);
	for (size_t cut = 0; cut <= len; cut++) {
		char *at = mem + page - cut;
		memcpy(at, line, cut);
		int rc = relay_token_parse(at, cut, &t, &used, &why);
		assert_int_equal(rc, cut == len ? 1 : 0);
	}
	munmap(mem, (size_t)page * 2);
}

static void
test_new_id(void **state)
{
	char a[RELAY_TOKEN_ID_HEX + 1], b[RELAY_TOKEN_ID_HEX + 1];

	(void)state;
	relay_token_new_id(a);
	relay_token_new_id(b);
	assert_int_equal(strlen(a), RELAY_TOKEN_ID_HEX);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_refused_lines),
		cmocka_unit_test(test_guard_page),
		cmocka_unit_test(test_new_id),
	};

	if (sodium_init() < 0)
		return 1;
	memset(key, 42, sizeof(key));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
