/* test_file_hash.c — file_hash is libsodium's BLAKE2b-256 (crypto_generichash
 * with 32 bytes, no key), for every length around the block size and
 * however the bytes are cut into updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/file_hash.h"

#define TEST_MAX 2100

static void
test_same_as_libsodium(void **state)
{
	uint8_t *in = malloc(TEST_MAX);
	uint8_t want[FILE_HASH_BYTES], got[FILE_HASH_BYTES];

	(void)state;
	randombytes_buf(in, TEST_MAX);
	for (size_t len = 0; len < TEST_MAX; len++) {
		crypto_generichash(want, sizeof(want), in, len, NULL, 0);
		/* Whole, halves, a byte then the rest, and 1..200-byte pieces. */
		for (size_t cut = 0; cut < 4; cut++) {
			struct file_hash s;
			size_t step = cut == 3 ? 1 + len % 200 : 0, at = 0;
			file_hash_init(&s);
			if (cut == 3) {
				for (; at < len; at += step)
					file_hash_update(
					    &s, in + at, len - at < step ? len - at : step);
			} else {
				size_t first = cut == 0 ? len : cut == 1 ? len / 2 : len > 0;
				file_hash_update(&s, in, first);
				file_hash_update(&s, in + first, len - first);
			}
			file_hash_final(&s, got);
			assert_memory_equal(got, want, sizeof(want));
		}
	}
	free(in);
}

static void
test_large_updates(void **state)
{
	size_t n = 3 * 1024 * 1024 + 77;
	uint8_t *in = malloc(n);
	uint8_t want[FILE_HASH_BYTES], got[FILE_HASH_BYTES];
	struct file_hash s;

	(void)state;
	randombytes_buf(in, n);
	crypto_generichash(want, sizeof(want), in, n, NULL, 0);
	file_hash_init(&s);
	for (size_t at = 0; at < n; at += 65536)
		file_hash_update(&s, in + at, n - at < 65536 ? n - at : 65536);
	file_hash_final(&s, got);
	assert_memory_equal(got, want, sizeof(want));
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_libsodium),
		cmocka_unit_test(test_large_updates),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
