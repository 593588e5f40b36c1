/* test_identity.c — the key file is made once (0600) and read back to the
 * same key, refused when others can read it or when it is not a key;
 * known_peers pins a user's first key, refuses another, and remembers
 * across a reopen. */
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
#include <sodium.h>

#include "hychat/identity.h"

struct fixture {
	char dir[64];
	char key[128];
	char known[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hychat-test-identity-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->key, sizeof(f->key), "%s/%s", f->dir, IDENTITY_FILE);
	snprintf(f->known, sizeof(f->known), "%s/%s", f->dir, KNOWN_PEERS_FILE);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->key);
	unlink(f->known);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_key_made_once_and_kept(void **state)
{
	struct fixture *f = *state;
	struct identity *a, *b;
	char *cause = NULL;
	uint8_t pk[32];
	struct stat st;
	char fp[IDENTITY_FINGERPRINT_MAX];

	a = identity_load(f->key, &cause);
	assert_non_null(a);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	memcpy(pk, identity_public_key(a), 32);
	crypto_scalarmult_base(pk, identity_secret_key(a));
	assert_memory_equal(pk, identity_public_key(a), 32);
	b = identity_load(f->key, &cause);
	assert_non_null(b);
	assert_memory_equal(identity_public_key(b), identity_public_key(a), 32);
	identity_fingerprint(identity_public_key(a), fp);
	assert_int_equal(strncmp(fp, "BLAKE2b:", 8), 0);
	assert_int_equal(strlen(fp), 8 + 43);
	identity_free(a);
	identity_free(b);

	/* Readable by others: refused, as ssh refuses it. */
	chmod(f->key, 0644);
	assert_null(identity_load(f->key, &cause));
	assert_non_null(strstr(cause, "chmod 600"));
	free(cause);
	/* Not a key. */
	FILE *w = fopen(f->key, "w");
	fputs("not base64 at all\n", w);
	fclose(w);
	chmod(f->key, 0600);
	cause = NULL;
	assert_null(identity_load(f->key, &cause));
	assert_non_null(strstr(cause, "bad key file"));
	free(cause);
}

static void
test_known_peers_pin_on_first_use(void **state)
{
	struct fixture *f = *state;
	struct known_peers *k;
	uint8_t k1[32], k2[32], out[32];
	char *cause = NULL;

	memset(k1, 1, 32);
	memset(k2, 2, 32);
	k = known_peers_open(f->known, &cause);
	assert_non_null(k);
	assert_int_equal(known_peers_lookup(k, "bob", out), 0);
	assert_int_equal(known_peers_check(k, "bob", k1, 32), KNOWN_PEERS_NEW);
	assert_int_equal(known_peers_check(k, "bob", k1, 32), KNOWN_PEERS_MATCH);
	assert_int_equal(known_peers_check(k, "bob", k2, 32), KNOWN_PEERS_CHANGED);
	assert_int_equal(known_peers_check(k, "bo b", k2, 32), KNOWN_PEERS_ERROR);
	assert_int_equal(known_peers_check(k, "carol", k2, 31), KNOWN_PEERS_ERROR);
	known_peers_close(k);

	/* Reopened: bob's first key is still the one. A comment and a bad
	 * line in the file are skipped. */
	FILE *w = fopen(f->known, "a");
	fputs("# a comment\nmallory !!!notbase64\n", w);
	fclose(w);
	k = known_peers_open(f->known, &cause);
	assert_non_null(k);
	assert_int_equal(known_peers_lookup(k, "bob", out), 1);
	assert_memory_equal(out, k1, 32);
	assert_int_equal(known_peers_check(k, "bob", k2, 32), KNOWN_PEERS_CHANGED);
	assert_int_equal(known_peers_lookup(k, "mallory", out), 0);
	known_peers_close(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_made_once_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_peers_pin_on_first_use, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
