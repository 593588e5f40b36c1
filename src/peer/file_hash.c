/* file_hash.c — BLAKE2b-256 (RFC 7693): the compression function with its
 * twelve rounds unrolled, the message words in registers. Messages of
 * more than 2^64 bytes are out of scope (the counter's high word stays
 * zero). */
#include "hychat/file_hash.h"

#include <string.h>

static const uint64_t iv[8] = { 0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
	0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL,
	0x5be0cd19137e2179ULL };

static const uint8_t sigma[12][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define G(r, i, a, b, c, d) \
	do { \
		a = a + b + m[sigma[r][2 * (i)]]; \
		d = ROTR(d ^ a, 32); \
		c = c + d; \
		b = ROTR(b ^ c, 24); \
		a = a + b + m[sigma[r][2 * (i) + 1]]; \
		d = ROTR(d ^ a, 16); \
		c = c + d; \
		b = ROTR(b ^ c, 63); \
	} while (0)
#define ROUND(r) \
	do { \
		G(r, 0, v0, v4, v8, v12); \
		G(r, 1, v1, v5, v9, v13); \
		G(r, 2, v2, v6, v10, v14); \
		G(r, 3, v3, v7, v11, v15); \
		G(r, 4, v0, v5, v10, v15); \
		G(r, 5, v1, v6, v11, v12); \
		G(r, 6, v2, v7, v8, v13); \
		G(r, 7, v3, v4, v9, v14); \
	} while (0)

static uint64_t
load64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void
compress(struct file_hash *s, const uint8_t *block, uint64_t last)
{
	uint64_t m[16];
	uint64_t v0 = s->h[0], v1 = s->h[1], v2 = s->h[2], v3 = s->h[3], v4 = s->h[4], v5 = s->h[5],
	         v6 = s->h[6], v7 = s->h[7];
	uint64_t v8 = iv[0], v9 = iv[1], v10 = iv[2], v11 = iv[3], v12 = iv[4] ^ s->t, v13 = iv[5],
	         v14 = iv[6] ^ last, v15 = iv[7];

	for (int i = 0; i < 16; i++)
		m[i] = load64(block + 8 * i);
	ROUND(0);
	ROUND(1);
	ROUND(2);
	ROUND(3);
	ROUND(4);
	ROUND(5);
	ROUND(6);
	ROUND(7);
	ROUND(8);
	ROUND(9);
	ROUND(10);
	ROUND(11);
	s->h[0] ^= v0 ^ v8;
	s->h[1] ^= v1 ^ v9;
	s->h[2] ^= v2 ^ v10;
	s->h[3] ^= v3 ^ v11;
	s->h[4] ^= v4 ^ v12;
	s->h[5] ^= v5 ^ v13;
	s->h[6] ^= v6 ^ v14;
	s->h[7] ^= v7 ^ v15;
}

void
file_hash_init(struct file_hash *s)
{
	memcpy(s->h, iv, sizeof(s->h));
	/* The parameter block: digest length, no key, fanout 1, depth 1. */
	s->h[0] ^= 0x01010000ULL ^ FILE_HASH_BYTES;
	s->t = 0;
	s->n = 0;
}

void
file_hash_update(struct file_hash *s, const uint8_t *p, size_t len)
{
	/* The last block is compressed by final, flagged: a full buffer
	 * waits until more bytes come. */
	if (len == 0)
		return;
	if (s->n + len > FILE_HASH_BLOCK) {
		size_t k = FILE_HASH_BLOCK - s->n;
		memcpy(s->buf + s->n, p, k);
		s->t += FILE_HASH_BLOCK;
		compress(s, s->buf, 0);
		s->n = 0;
		p += k;
		len -= k;
		while (len > FILE_HASH_BLOCK) {
			s->t += FILE_HASH_BLOCK;
			compress(s, p, 0);
			p += FILE_HASH_BLOCK;
			len -= FILE_HASH_BLOCK;
		}
	}
	memcpy(s->buf + s->n, p, len);
	s->n += len;
}

void
file_hash_final(struct file_hash *s, uint8_t out[FILE_HASH_BYTES])
{
	s->t += s->n;
	memset(s->buf + s->n, 0, FILE_HASH_BLOCK - s->n);
	compress(s, s->buf, ~(uint64_t)0);
	for (int i = 0; i < FILE_HASH_BYTES; i++)
		out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
}
