/* test_p2p_frame.c — frames are found however the bytes are cut, an
 * oversized length is refused from the header alone, a sealed frame that
 * is altered, replayed or reordered fails to open; the plaintext decoder
 * takes objects split at every byte, back to back, and refuses garbage
 * and objects over its limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/noise.h"
#include "hychat/p2p_frame.h"

static struct p2p_frame_state *
state(uint8_t a, uint8_t b)
{
	uint8_t tx[32], rx[32];

	memset(tx, a, sizeof(tx));
	memset(rx, b, sizeof(rx));
	return p2p_frame_state_new(tx, rx);
}

static void
test_frames_found_however_cut(void **state_)
{
	struct buf b;
	const uint8_t *f;
	size_t len, used;

	(void)state_;
	buf_init(&b);
	p2p_frame_put_header(&b, 3);
	buf_append(&b, "abc", 3);
	p2p_frame_put_header(&b, 0);
	for (size_t cut = 0; cut < 7; cut++)
		assert_int_equal(
		    p2p_frame_next((uint8_t *)b.data, cut, P2P_FRAME_MAX, &f, &len, &used), 0);
	assert_int_equal(
	    p2p_frame_next((uint8_t *)b.data, b.len, P2P_FRAME_MAX, &f, &len, &used), 1);
	assert_int_equal(len, 3);
	assert_int_equal(used, 7);
	assert_memory_equal(f, "abc", 3);
	assert_int_equal(
	    p2p_frame_next((uint8_t *)b.data + 7, 4, P2P_FRAME_MAX, &f, &len, &used), 1);
	assert_int_equal(len, 0);
	/* The first byte of any valid frame is 0, never '{'. */
	assert_int_equal(b.data[0], 0);
	/* Oversized: refused on the header, before the body. */
	const uint8_t big[4] = { 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(p2p_frame_next(big, 4, P2P_FRAME_MAX, &f, &len, &used), -1);
	b.len = 0;
	p2p_frame_put_header(&b, P2P_FRAME_MAX + 1);
	assert_int_equal(p2p_frame_next((uint8_t *)b.data, 4, P2P_FRAME_MAX, &f, &len, &used), -1);
	/* Before the handshake is done, the largest Noise message is the cap:
	 * a longer length is refused on its header, the cap itself waits. */
	b.len = 0;
	p2p_frame_put_header(&b, NOISE_MAX_MESSAGE + 1);
	assert_int_equal(
	    p2p_frame_next((uint8_t *)b.data, 4, NOISE_MAX_MESSAGE, &f, &len, &used), -1);
	b.len = 0;
	p2p_frame_put_header(&b, NOISE_MAX_MESSAGE);
	assert_int_equal(
	    p2p_frame_next((uint8_t *)b.data, 4, NOISE_MAX_MESSAGE, &f, &len, &used), 0);
	buf_fini(&b);
}

static void
test_sealed_frames_detect_tampering_and_order(void **state_)
{
	struct p2p_frame_state *a = state(1, 2), *b = state(2, 1);
	struct buf f1, f2, p;

	(void)state_;
	buf_init(&f1);
	buf_init(&f2);
	buf_init(&p);
	assert_int_equal(p2p_frame_seal(a, (const uint8_t *)"first", 5, &f1), 0);
	assert_int_equal(p2p_frame_seal(a, (const uint8_t *)"second", 6, &f2), 0);
	assert_int_equal(f1.len, 4 + 5 + 16);
	/* No plaintext on the wire. */
	assert_null(memmem(f1.data, f1.len, "first", 5));
	/* Out of order: the second cannot open first. */
	assert_int_equal(p2p_frame_open(b, (uint8_t *)f2.data + 4, f2.len - 4, &p), -1);
	/* Altered: any bit. */
	f1.data[6] ^= 1;
	assert_int_equal(p2p_frame_open(b, (uint8_t *)f1.data + 4, f1.len - 4, &p), -1);
	f1.data[6] ^= 1;
	assert_int_equal(p2p_frame_open(b, (uint8_t *)f1.data + 4, f1.len - 4, &p), 0);
	assert_string_equal(p.data, "first");
	/* Replayed. */
	assert_int_equal(p2p_frame_open(b, (uint8_t *)f1.data + 4, f1.len - 4, &p), -1);
	p.len = 0;
	assert_int_equal(p2p_frame_open(b, (uint8_t *)f2.data + 4, f2.len - 4, &p), 0);
	assert_string_equal(p.data, "second");
	/* Too short to hold a tag; too large to seal. */
	assert_int_equal(p2p_frame_open(b, (const uint8_t *)"x", 1, &p), -1);
	uint8_t *huge = calloc(1, P2P_FRAME_MAX_PLAIN + 1);
	assert_int_equal(p2p_frame_seal(a, huge, P2P_FRAME_MAX_PLAIN + 1, &f1), -1);
	free(huge);
	p2p_frame_state_free(a);
	p2p_frame_state_free(b);
	buf_fini(&f1);
	buf_fini(&f2);
	buf_fini(&p);
}

/* The EVP cipher is Noise's ChaChaPoly byte for byte: what it seals
 * libsodium's IETF ChaCha20-Poly1305 opens with the same key and nonce,
 * and the other way, for empty, small and chunk-sized bodies and for the
 * nonces after the first. */
static void
test_sealed_frames_are_libsodiums(void **state_)
{
	static const size_t sizes[] = { 0, 1, 5, 63, 64, 65, 1000, 65536 + 19 };
	uint8_t key1[P2P_FRAME_KEY_BYTES], key2[P2P_FRAME_KEY_BYTES], nonce[12];
	struct p2p_frame_state *a, *b;
	struct buf f, p;
	uint8_t *plain = malloc(65536 + 19), *c = malloc(65536 + 19 + 16),
	        *back = malloc(65536 + 19);
	unsigned long long n;

	(void)state_;
	memset(key1, 1, sizeof(key1));
	memset(key2, 2, sizeof(key2));
	a = p2p_frame_state_new(key1, key2);
	b = p2p_frame_state_new(key2, key1);
	buf_init(&f);
	buf_init(&p);
	randombytes_buf(plain, 65536 + 19);
	for (size_t i = 0; i < HY_ARRAY_LEN(sizes); i++) {
		/* Ours sealed (frame counter i), libsodium opens. */
		f.len = 0;
		assert_int_equal(p2p_frame_seal(a, plain, sizes[i], &f), 0);
		assert_int_equal(f.len, 4 + sizes[i] + 16);
		p2p_frame_nonce(nonce, i);
		assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(back, &n, NULL,
		                     (uint8_t *)f.data + 4, f.len - 4, NULL, 0, nonce, key1),
		    0);
		assert_int_equal(n, sizes[i]);
		if (sizes[i] > 0)
			assert_memory_equal(back, plain, sizes[i]);
		/* libsodium sealed, ours opens. */
		crypto_aead_chacha20poly1305_ietf_encrypt(
		    c, &n, plain, sizes[i], NULL, 0, NULL, nonce, key1);
		p.len = 0;
		assert_int_equal(p2p_frame_open(b, c, (size_t)n, &p), 0);
		assert_int_equal(p.len, sizes[i]);
		if (sizes[i] > 0)
			assert_memory_equal(p.data, plain, sizes[i]);
	}
	p2p_frame_state_free(a);
	p2p_frame_state_free(b);
	buf_fini(&f);
	buf_fini(&p);
	free(plain);
	free(c);
	free(back);
}

/* Feeds text to a decoder in pieces of n bytes; returns the objects' "n"
 * fields joined, or "ERR". */
static void
feed(const char *text, size_t n, size_t max, char *out, size_t outsz)
{
	struct p2p_json_stream *js = p2p_json_stream_new(max);
	struct json_object *o, *v;
	const char *err;
	struct buf in;
	size_t off = 0, len = strlen(text);
	int rc;

	buf_init(&in);
	out[0] = '\0';
	while (off < len) {
		size_t k = len - off < n ? len - off : n;
		buf_append(&in, text + off, k);
		off += k;
		while ((rc = p2p_json_stream_next(js, &in, &o, &err)) == 1) {
			if (json_object_object_get_ex(o, "n", &v))
				strncat(out, json_object_get_string(v), outsz - strlen(out) - 1);
			json_object_put(o);
		}
		if (rc < 0) {
			snprintf(out, outsz, "ERR");
			break;
		}
	}
	buf_fini(&in);
	p2p_json_stream_free(js);
}

static void
test_json_stream(void **state_)
{
	const char *two = "{\"n\":\"a\",\"s\":\"x}{\\\"y\"}\n {\"n\":\"b\",\"t\":[1,{\"z\":2}]}";
	char out[256];

	(void)state_;
	for (size_t n = 1; n <= strlen(two); n++) {
		feed(two, n, 1024, out, sizeof(out));
		assert_string_equal(out, "ab");
	}
	feed("{\"n\":\"a\"}garbage", 4, 1024, out, sizeof(out));
	assert_string_equal(out, "ERR");
	feed("[1,2]", 1, 1024, out, sizeof(out));
	assert_string_equal(out, "ERR");
	feed("{\"n\":\"a\",}", 1, 1024, out, sizeof(out));
	assert_string_equal(out, "ERR");
	/* The limit: an object of 40 bytes passes under 64 and fails under
	 * 32, whether it comes whole or byte by byte. */
	const char *forty = "{\"n\":\"c\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxx\"}";
	assert_int_equal(strlen(forty), 40);
	feed(forty, 40, 64, out, sizeof(out));
	assert_string_equal(out, "c");
	feed(forty, 40, 32, out, sizeof(out));
	assert_string_equal(out, "ERR");
	feed(forty, 1, 32, out, sizeof(out));
	assert_string_equal(out, "ERR");
}

/* Found by fuzz_p2p_frame: the whitespace after an object, which the
 * tokener eats with it, counted toward the object's size, so an object
 * under the limit was refused when blanks followed it in the same read,
 * and passed when they came in another. */
static void
test_json_stream_limit_ignores_blanks_after_an_object(void **state_)
{
	char text[256], out[64];

	(void)state_;
	snprintf(text, sizeof(text), "%s%40s\r\n{\"n\":\"d\"}",
	    "{\"n\":\"c\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxx\"}", "");
	for (size_t n = 1; n <= strlen(text); n++) {
		feed(text, n, 64, out, sizeof(out));
		assert_string_equal(out, "cd");
	}
}

static void
test_json_stream_64k_utf8(void **state_)
{
	const char *word = "Phát — 世界 🙂 ";
	struct buf msg, in;
	struct json_object *o, *v;
	struct p2p_json_stream *js = p2p_json_stream_new(256 * 1024);
	const char *err;
	int got = 0;

	(void)state_;
	buf_init(&msg);
	buf_init(&in);
	buf_append_str(&msg, "{\"n\":\"");
	while (msg.len < 64 * 1024)
		buf_append_str(&msg, word);
	buf_append_str(&msg, "\"}");
	/* In 1,000-byte pieces: cuts land inside multi-byte characters. */
	for (size_t off = 0; off < msg.len; off += 1000) {
		size_t k = msg.len - off < 1000 ? msg.len - off : 1000;
		buf_append(&in, msg.data + off, k);
		int rc = p2p_json_stream_next(js, &in, &o, &err);
		assert_true(rc >= 0);
		if (rc == 1) {
			assert_true(json_object_object_get_ex(o, "n", &v));
			assert_int_equal(json_object_get_string_len(v), msg.len - 8);
			assert_memory_equal(json_object_get_string(v), msg.data + 6, msg.len - 8);
			json_object_put(o);
			got++;
		}
	}
	assert_int_equal(got, 1);
	p2p_json_stream_free(js);
	buf_fini(&msg);
	buf_fini(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_found_however_cut),
		cmocka_unit_test(test_sealed_frames_detect_tampering_and_order),
		cmocka_unit_test(test_sealed_frames_are_libsodiums),
		cmocka_unit_test(test_json_stream),
		cmocka_unit_test(test_json_stream_limit_ignores_blanks_after_an_object),
		cmocka_unit_test(test_json_stream_64k_utf8),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
