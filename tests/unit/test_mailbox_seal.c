/* test_mailbox_seal.c — the mailbox envelope: a round trip, the wrong
 * recipient, a forged sender, every single-bit alteration, and names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/mailbox_seal.h"

struct kp {
	uint8_t pk[32], sk[32];
};

static void
keypair(struct kp *k)
{
	crypto_box_keypair(k->pk, k->sk);
}

static const char msg[] = "{\"id\":\"abc\",\"time\":\"t\",\"message\":\"hi\"}";

static void
test_round_trip(void **state)
{
	struct kp alice, bob;
	struct mailbox_opened o;
	size_t len, mlen;

	(void)state;
	keypair(&alice);
	keypair(&bob);
	uint8_t *blob =
	    mailbox_seal("alice", alice.sk, bob.pk, (const uint8_t *)msg, strlen(msg), &len);
	assert_non_null(blob);
	assert_int_equal(len, strlen(msg) + MAILBOX_SEAL_OVERHEAD - MAILBOX_SEAL_NAME_MAX + 5);
	assert_null(memmem(blob, len, "alice", 5)); /* the sender is sealed too */
	assert_int_equal(mailbox_open_outer(bob.pk, bob.sk, blob, len, &o), 0);
	assert_string_equal(o.sender, "alice");
	char *text = mailbox_open_inner(&o, alice.pk, bob.sk, &mlen);
	assert_non_null(text);
	assert_int_equal(mlen, strlen(msg));
	assert_string_equal(text, msg);
	free(text);
	mailbox_opened_fini(&o);
	free(blob);
}

static void
test_wrong_recipient_and_forged_sender(void **state)
{
	struct kp alice, bob, carol;
	struct mailbox_opened o;
	size_t len, mlen;

	(void)state;
	keypair(&alice);
	keypair(&bob);
	keypair(&carol);
	uint8_t *blob =
	    mailbox_seal("alice", alice.sk, bob.pk, (const uint8_t *)msg, strlen(msg), &len);
	assert_int_equal(mailbox_open_outer(carol.pk, carol.sk, blob, len, &o), -1);
	free(blob);
	/* carol names alice: the outer seal opens, the inner box does not
	 * verify against alice's key */
	blob = mailbox_seal("alice", carol.sk, bob.pk, (const uint8_t *)msg, strlen(msg), &len);
	assert_int_equal(mailbox_open_outer(bob.pk, bob.sk, blob, len, &o), 0);
	assert_string_equal(o.sender, "alice");
	assert_null(mailbox_open_inner(&o, alice.pk, bob.sk, &mlen));
	mailbox_opened_fini(&o);
	free(blob);
}

static void
test_every_bit_flip_is_refused(void **state)
{
	struct kp alice, bob;
	struct mailbox_opened o;
	size_t len;

	(void)state;
	keypair(&alice);
	keypair(&bob);
	uint8_t *blob =
	    mailbox_seal("alice", alice.sk, bob.pk, (const uint8_t *)msg, strlen(msg), &len);
	for (size_t i = 0; i < len * 8; i++) {
		blob[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(mailbox_open_outer(bob.pk, bob.sk, blob, len, &o), -1);
		blob[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t n = 0; n < len; n++) /* and every truncation */
		assert_int_equal(mailbox_open_outer(bob.pk, bob.sk, blob, n, &o), -1);
	free(blob);
}

static void
test_names(void **state)
{
	struct kp alice, bob;
	size_t len;
	char name[MAILBOX_SEAL_NAME_MAX + 2];

	(void)state;
	keypair(&alice);
	keypair(&bob);
	assert_null(mailbox_seal("", alice.sk, bob.pk, (const uint8_t *)"x", 1, &len));
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_null(mailbox_seal(name, alice.sk, bob.pk, (const uint8_t *)"x", 1, &len));
	name[MAILBOX_SEAL_NAME_MAX] = '\0';
	uint8_t *blob = mailbox_seal(name, alice.sk, bob.pk, (const uint8_t *)"x", 1, &len);
	assert_non_null(blob);
	assert_int_equal(len, 1 + MAILBOX_SEAL_OVERHEAD);
	free(blob);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_recipient_and_forged_sender),
		cmocka_unit_test(test_every_bit_flip_is_refused),
		cmocka_unit_test(test_names),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
