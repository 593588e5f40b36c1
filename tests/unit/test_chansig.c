/* test_chansig.c — channel message signatures: a round trip checked by
 * libsodium's own Ed25519 verification, and refusals of every field
 * altered, another sender's key, a signature moved to another message,
 * and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/chansig.h"

static const struct chansig_msg base = { "general", "00112233445566778899aabbccddeeff", "alice",
	"2026-12-01T22:00:00.000001", "hello, world", 0 };

static void
test_round_trip(void **state)
{
	uint8_t pk[32], sk[32], raw[CHANSIG_RAW_BYTES], x[32];
	char sig[CHANSIG_B64_MAX];
	size_t len;

	(void)state;
	for (int i = 0; i < 64; i++) {
		crypto_box_keypair(pk, sk);
		assert_int_equal(chansig_sign(sk, &base, sig), 0);
		assert_int_equal(strlen(sig), CHANSIG_B64_LEN);
		assert_int_equal(chansig_verify(pk, &base, sig), 0);
		/* The key carried is an Ed25519 key whose Montgomery form is pk. */
		assert_int_equal(sodium_base642bin(raw, sizeof(raw), sig, strlen(sig), NULL, &len,
		                     NULL, sodium_base64_VARIANT_ORIGINAL),
		    0);
		assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(x, raw), 0);
		assert_memory_equal(x, pk, 32);
	}
}

static void
test_refusals(void **state)
{
	uint8_t pk[32], sk[32], pk2[32], sk2[32];
	char sig[CHANSIG_B64_MAX], sig2[CHANSIG_B64_MAX];
	struct chansig_msg m;

	(void)state;
	crypto_box_keypair(pk, sk);
	crypto_box_keypair(pk2, sk2);
	assert_int_equal(chansig_sign(sk, &base, sig), 0);
	m = base;
	m.text = "hello, world!";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	m = base;
	m.channel = "random";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	m = base;
	m.id = "00112233445566778899aabbccddeef0";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	m = base;
	m.from = "mallory";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	m = base;
	m.time = "2026-12-01T22:00:00.000002";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	m = base;
	m.action = 1;
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	/* Field boundaries count: "ab"+"c" is not "a"+"bc". */
	m = base;
	m.channel = "generalx";
	m.id = "0112233445566778899aabbccddeeff";
	assert_int_equal(chansig_verify(pk, &m, sig), -1);
	/* Another key: the right message signed by someone else. */
	assert_int_equal(chansig_verify(pk2, &base, sig), -1);
	assert_int_equal(chansig_sign(sk2, &base, sig2), 0);
	assert_int_equal(chansig_verify(pk, &base, sig2), -1);
	/* Every single character of the signature changed. */
	for (size_t i = 0; i < CHANSIG_B64_LEN; i++) {
		char bad[CHANSIG_B64_MAX];
		memcpy(bad, sig, sizeof(bad));
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		assert_int_equal(chansig_verify(pk, &base, bad), -1);
	}
	assert_int_equal(chansig_verify(pk, &base, ""), -1);
	assert_int_equal(chansig_verify(pk, &base, NULL), -1);
	assert_int_equal(chansig_verify(pk, &base, "!!!!"), -1);
	m = base;
	m.text = NULL;
	assert_int_equal(chansig_sign(sk, &m, sig), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
