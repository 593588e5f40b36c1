/* test_noise.c — the XX handshake: the messages, handshake hash and
 * transport keys match an independent implementation (the pure-Python one
 * in tests/integration/peer_noise.py, built on hashlib's HMAC and BLAKE2b)
 * for fixed keys; both sides agree on keys and learn each other's identity;
 * a tampered message, a message out of turn and a low-order point fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/noise.h"
#include "hychat/p2p_frame.h"

static const char M1[] = "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59"
                         "68656c6c6f";
static const char M2[] =
    "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b8001b4ce4bb2746a6bd693"
    "c4d0a900d849389237f160d22856081e810110e3590085bdeb40a24f2b9d8040ef3ea5e134f864a7cf3de0"
    "3df94bddb1b1b5801c292cf63f8b82";
static const char M3[] =
    "ef85c6b0379016c6845ae99f75be21275605d8f34ef8dbd5a2653aa4ef7b87c5c33d30fac31195cfab3152"
    "a08f9cb435b4d52e2e0d4544c2efe0cae186b96b7d7c";
static const char H[] =
    "3effb658956a48fa3857a8d2157cc2ca2429c5c4e64e55f662e304337fed07816d40f6400876c40081735d"
    "ff98b37ced63dafade078acc58437b015ae13032e3";
static const char K1[] = "2ac103aadab7d92510c1c0db4d38fcfd40743e091b2fe6e942c9c17453a344db";
static const char K2[] = "952b6158c67c2a6bb3db55632b71af46fb3fed00ca142e1d3270f6c99bf3fcb7";

/* The prologue the vectors were made with (not NOISE_PROLOGUE: any works). */
static const uint8_t PROLOGUE[] = "hychat/1";

static void
key_of(uint8_t k[32], uint8_t b)
{
	memset(k, b, 32);
}

static void
assert_hex(const void *p, size_t len, const char *hex)
{
	char got[1024];

	assert_true(len * 2 + 1 <= sizeof(got));
	sodium_bin2hex(got, sizeof(got), p, len);
	assert_string_equal(got, hex);
}

/* Initiator static 0x01.., ephemeral 0x02..; responder 0x03.., 0x04... */
static void
pair(struct noise_handshake **i, struct noise_handshake **r)
{
	uint8_t is[32], ie[32], rs[32], re[32];

	key_of(is, 1);
	key_of(ie, 2);
	key_of(rs, 3);
	key_of(re, 4);
	*i = noise_handshake_new_keys(is, ie, 1, PROLOGUE, sizeof(PROLOGUE) - 1);
	*r = noise_handshake_new_keys(rs, re, 0, PROLOGUE, sizeof(PROLOGUE) - 1);
	assert_non_null(*i);
	assert_non_null(*r);
}

static void
test_known_answer(void **state)
{
	struct noise_handshake *i, *r;
	struct buf m, p;
	uint8_t k1[32], k2[32], rk[32], pub[32], sk[32];

	(void)state;
	pair(&i, &r);
	buf_init(&m);
	buf_init(&p);
	assert_int_equal(noise_handshake_write_raw(i, (const uint8_t *)"hello", 5, &m), 0);
	assert_hex(m.data, m.len, M1);
	assert_int_equal(noise_handshake_read(r, (uint8_t *)m.data, m.len, &p), 0);
	assert_string_equal(p.data, "hello");

	m.len = p.len = 0;
	assert_int_equal(noise_handshake_write_raw(r, (const uint8_t *)"world", 5, &m), 0);
	assert_hex(m.data, m.len, M2);
	assert_int_equal(noise_handshake_read(i, (uint8_t *)m.data, m.len, &p), 0);
	assert_string_equal(p.data, "world");
	/* The initiator now knows the responder's identity. */
	key_of(sk, 3);
	crypto_scalarmult_base(pub, sk);
	assert_int_equal(noise_handshake_remote_key(i, rk), 0);
	assert_memory_equal(rk, pub, 32);
	assert_int_equal(noise_handshake_remote_key(r, rk), -1);

	m.len = p.len = 0;
	assert_int_equal(noise_handshake_write_raw(i, (const uint8_t *)"!", 1, &m), 0);
	assert_hex(m.data, m.len, M3);
	assert_int_equal(noise_handshake_read(r, (uint8_t *)m.data, m.len, &p), 0);
	assert_string_equal(p.data, "!");
	key_of(sk, 1);
	crypto_scalarmult_base(pub, sk);
	assert_int_equal(noise_handshake_remote_key(r, rk), 0);
	assert_memory_equal(rk, pub, 32);

	assert_true(noise_handshake_done(i) && noise_handshake_done(r));
	assert_hex(noise_handshake_hash(i), NOISE_HASH_BYTES, H);
	assert_hex(noise_handshake_hash(r), NOISE_HASH_BYTES, H);
	assert_int_equal(noise_handshake_split_keys(i, k1, k2), 0);
	assert_hex(k1, 32, K1);
	assert_hex(k2, 32, K2);
	assert_int_equal(noise_handshake_split_keys(r, k1, k2), 0);
	assert_hex(k1, 32, K1);
	assert_hex(k2, 32, K2);
	buf_fini(&m);
	buf_fini(&p);
	noise_handshake_free(i);
	noise_handshake_free(r);
}

/* Runs a framed handshake with fresh ephemerals; the transports talk. */
static void
test_framed_handshake_and_transport(void **state)
{
	struct noise_handshake *i, *r;
	struct p2p_frame_state *fi, *fr;
	uint8_t is[32], rs[32];
	const uint8_t *body;
	size_t len, used;
	struct buf m, p, c;

	(void)state;
	randombytes_buf(is, sizeof(is));
	randombytes_buf(rs, sizeof(rs));
	i = noise_handshake_new_keys(is, NULL, 1, PROLOGUE, 8);
	r = noise_handshake_new_keys(rs, NULL, 0, PROLOGUE, 8);
	buf_init(&m);
	buf_init(&p);
	buf_init(&c);
	for (int step = 0; step < 3; step++) {
		struct noise_handshake *w = step == 1 ? r : i, *rd = step == 1 ? i : r;
		m.len = p.len = 0;
		assert_int_equal(noise_handshake_write(w, NULL, 0, &m), 0);
		/* Not the writer's turn again, nor the reader's to write. */
		assert_int_equal(noise_handshake_write(rd, NULL, 0, &c), -1);
		assert_int_equal(
		    p2p_frame_next((uint8_t *)m.data, m.len, P2P_FRAME_MAX, &body, &len, &used), 1);
		assert_int_equal(used, m.len);
		assert_int_equal(noise_handshake_read(rd, body, len, &p), 0);
		assert_int_equal(p.len, 0);
	}
	{
		/* Split before the end is refused. */
		struct noise_handshake *fresh = noise_handshake_new_keys(is, NULL, 1, PROLOGUE, 8);
		assert_null(noise_handshake_split(fresh));
		noise_handshake_free(fresh);
	}
	fi = noise_handshake_split(i);
	fr = noise_handshake_split(r);
	assert_non_null(fi);
	assert_non_null(fr);
	for (int n = 0; n < 3; n++) {
		c.len = p.len = 0;
		assert_int_equal(p2p_frame_seal(fi, (const uint8_t *)"{\"a\":1}", 7, &c), 0);
		assert_int_equal(
		    p2p_frame_next((uint8_t *)c.data, c.len, P2P_FRAME_MAX, &body, &len, &used), 1);
		assert_int_equal(p2p_frame_open(fr, body, len, &p), 0);
		assert_string_equal(p.data, "{\"a\":1}");
		c.len = p.len = 0;
		assert_int_equal(p2p_frame_seal(fr, (const uint8_t *)"back", 4, &c), 0);
		assert_int_equal(p2p_frame_open(fi, (uint8_t *)c.data + 4, c.len - 4, &p), 0);
		assert_string_equal(p.data, "back");
	}
	p2p_frame_state_free(fi);
	p2p_frame_state_free(fr);
	noise_handshake_free(i);
	noise_handshake_free(r);
	buf_fini(&m);
	buf_fini(&p);
	buf_fini(&c);
}

static void
test_tampered_messages_fail(void **state)
{
	struct noise_handshake *i, *r;
	struct buf m, p;

	(void)state;
	buf_init(&m);
	buf_init(&p);
	/* Every byte of message 2 (the encrypted identity and payload) is
	 * covered: flipping any one fails the read. */
	for (size_t at = 0; at < 96; at += 7) {
		pair(&i, &r);
		m.len = p.len = 0;
		assert_int_equal(noise_handshake_write_raw(i, NULL, 0, &m), 0);
		assert_int_equal(noise_handshake_read(r, (uint8_t *)m.data, m.len, &p), 0);
		m.len = 0;
		assert_int_equal(noise_handshake_write_raw(r, NULL, 0, &m), 0);
		assert_int_equal(m.len, 96);
		m.data[at] ^= 0x20;
		assert_int_equal(noise_handshake_read(i, (uint8_t *)m.data, m.len, &p), -1);
		/* A failed handshake stays failed. */
		m.data[at] ^= 0x20;
		assert_int_equal(noise_handshake_read(i, (uint8_t *)m.data, m.len, &p), -1);
		assert_int_equal(noise_handshake_write_raw(i, NULL, 0, &m), -1);
		noise_handshake_free(i);
		noise_handshake_free(r);
	}
	/* Too short, and a low-order point for the ephemeral key. */
	pair(&i, &r);
	assert_int_equal(noise_handshake_read(r, (const uint8_t *)"short", 5, &p), -1);
	noise_handshake_free(r);
	pair(&i, &r);
	m.len = 0;
	assert_int_equal(noise_handshake_write_raw(i, NULL, 0, &m), 0);
	uint8_t zero[32] = { 0 };
	assert_int_equal(noise_handshake_read(r, zero, 32, &p), 0);
	m.len = 0;
	assert_int_equal(noise_handshake_write_raw(r, NULL, 0, &m), -1);
	assert_int_equal(noise_handshake_read(i, zero, sizeof(zero), &p), -1);
	noise_handshake_free(i);
	noise_handshake_free(r);
	buf_fini(&m);
	buf_fini(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_framed_handshake_and_transport),
		cmocka_unit_test(test_tampered_messages_fail),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
