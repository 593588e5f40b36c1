/* noise.c — Noise_XX_25519_ChaChaPoly_BLAKE2b over libsodium.
 *
 * The names follow the Noise specification (revision 34): the
 * SymmetricState (ck, h, k, n) and its MixHash, MixKey, EncryptAndHash,
 * DecryptAndHash and Split; HKDF over HMAC-BLAKE2b (HMAC with BLAKE2b's
 * 128-byte block, not BLAKE2b's keyed mode). */
#include "hychat/noise.h"

#include <string.h>

#include <sodium.h>

#include "hychat/identity.h"
#include "hychat/p2p_frame.h"

#define HASHLEN NOISE_HASH_BYTES
#define BLOCKLEN 128
#define DHLEN 32
#define KEYLEN 32
#define TAGLEN 16

struct noise_handshake {
	int initiator;
	int step; /* messages through: 0 to 3 */
	int failed;
	uint8_t ck[HASHLEN];
	uint8_t h[HASHLEN];
	uint8_t k[KEYLEN];
	int has_k;
	uint64_t n;
	uint8_t s_sk[DHLEN], s_pk[DHLEN];
	uint8_t e_sk[DHLEN], e_pk[DHLEN];
	uint8_t re[DHLEN], rs[DHLEN];
	int has_rs;
};

static void
hash2(uint8_t out[HASHLEN], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
	crypto_generichash_blake2b_update(&st, a, alen);
	if (blen > 0)
		crypto_generichash_blake2b_update(&st, b, blen);
	crypto_generichash_blake2b_final(&st, out, HASHLEN);
}

/* HMAC-BLAKE2b (RFC 2104) of the concatenation d1 || d2; keys are at most
 * HASHLEN bytes here. */
static void
hmac(uint8_t out[HASHLEN], const uint8_t key[HASHLEN], const uint8_t *d1, size_t l1,
    const uint8_t *d2, size_t l2)
{
	crypto_generichash_blake2b_state st;
	uint8_t pad[BLOCKLEN], inner[HASHLEN];
	size_t i;

	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
	crypto_generichash_blake2b_update(&st, d1, l1);
	if (l2 > 0)
		crypto_generichash_blake2b_update(&st, d2, l2);
	crypto_generichash_blake2b_final(&st, inner, HASHLEN);

	memset(pad, 0x5c, sizeof(pad));
	for (i = 0; i < HASHLEN; i++)
		pad[i] ^= key[i];
	hash2(out, pad, BLOCKLEN, inner, HASHLEN);
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/* HKDF(ck, ikm) with two outputs. */
static void
hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikmlen, uint8_t o1[HASHLEN],
    uint8_t o2[HASHLEN])
{
	uint8_t temp[HASHLEN];
	const uint8_t one = 1, two = 2;

	hmac(temp, ck, ikm, ikmlen, NULL, 0);
	hmac(o1, temp, &one, 1, NULL, 0);
	hmac(o2, temp, o1, HASHLEN, &two, 1);
	sodium_memzero(temp, sizeof(temp));
}

static void
mix_hash(struct noise_handshake *hs, const uint8_t *data, size_t len)
{
	hash2(hs->h, hs->h, HASHLEN, data, len);
}

static void
mix_key(struct noise_handshake *hs, const uint8_t *ikm, size_t len)
{
	uint8_t o1[HASHLEN], o2[HASHLEN];

	hkdf2(hs->ck, ikm, len, o1, o2);
	memcpy(hs->ck, o1, HASHLEN);
	memcpy(hs->k, o2, KEYLEN);
	hs->has_k = 1;
	hs->n = 0;
	sodium_memzero(o1, sizeof(o1));
	sodium_memzero(o2, sizeof(o2));
}

/* DH and MixKey; -1 for a low-order point (an all-zero result). */
static int
mix_dh(struct noise_handshake *hs, const uint8_t sk[DHLEN], const uint8_t pk[DHLEN])
{
	uint8_t shared[DHLEN];

	if (crypto_scalarmult(shared, sk, pk) != 0)
		return -1;
	mix_key(hs, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return 0;
}

static void
encrypt_and_hash(struct noise_handshake *hs, const uint8_t *pt, size_t len, struct buf *out)
{
	uint8_t nonce[12];
	unsigned long long clen;
	uint8_t *ct;

	buf_reserve(out, len + TAGLEN);
	ct = (uint8_t *)out->data + out->len;
	if (!hs->has_k) {
		if (len > 0)
			memcpy(ct, pt, len);
		clen = len;
	} else {
		p2p_frame_nonce(nonce, hs->n++);
		crypto_aead_chacha20poly1305_ietf_encrypt(
		    ct, &clen, pt, len, hs->h, HASHLEN, NULL, nonce, hs->k);
	}
	mix_hash(hs, ct, (size_t)clen);
	out->len += (size_t)clen;
	out->data[out->len] = '\0';
}

static int
decrypt_and_hash(struct noise_handshake *hs, const uint8_t *ct, size_t len, struct buf *out)
{
	uint8_t nonce[12];
	unsigned long long plen;
	uint8_t *pt;

	buf_reserve(out, len + 1);
	pt = (uint8_t *)out->data + out->len;
	if (!hs->has_k) {
		if (len > 0)
			memcpy(pt, ct, len);
		plen = len;
	} else {
		p2p_frame_nonce(nonce, hs->n);
		if (crypto_aead_chacha20poly1305_ietf_decrypt(
		        pt, &plen, NULL, ct, len, hs->h, HASHLEN, nonce, hs->k) != 0)
			return -1;
		hs->n++;
	}
	mix_hash(hs, ct, len);
	out->len += (size_t)plen;
	out->data[out->len] = '\0';
	return 0;
}

struct noise_handshake *
noise_handshake_new_keys(const uint8_t s_sk[32], const uint8_t *e_sk, int initiator,
    const uint8_t *prologue, size_t prologue_len)
{
	struct noise_handshake *hs;
	const size_t namelen = sizeof(NOISE_PROTOCOL) - 1;

	if (sodium_init() < 0)
		return NULL;
	hs = sodium_malloc(sizeof(*hs));
	if (hs == NULL)
		return NULL;
	memset(hs, 0, sizeof(*hs));
	hs->initiator = initiator != 0;
	/* The name is shorter than HASHLEN: h is the name, zero-padded. */
	memcpy(hs->h, NOISE_PROTOCOL, namelen);
	memcpy(hs->ck, hs->h, HASHLEN);
	mix_hash(hs, prologue, prologue_len);
	memcpy(hs->s_sk, s_sk, DHLEN);
	crypto_scalarmult_base(hs->s_pk, hs->s_sk);
	if (e_sk != NULL)
		memcpy(hs->e_sk, e_sk, DHLEN);
	else
		randombytes_buf(hs->e_sk, DHLEN);
	crypto_scalarmult_base(hs->e_pk, hs->e_sk);
	return hs;
}

struct noise_handshake *
noise_handshake_new(const struct identity *id, int initiator)
{
	return noise_handshake_new_keys(identity_secret_key(id), NULL, initiator,
	    (const uint8_t *)NOISE_PROLOGUE, sizeof(NOISE_PROLOGUE) - 1);
}

void
noise_handshake_free(struct noise_handshake *hs)
{
	if (hs != NULL)
		sodium_free(hs); /* zeroes it */
}

static int
our_turn(const struct noise_handshake *hs)
{
	/* The initiator writes messages 0 and 2, the responder message 1. */
	return !hs->failed && hs->step < 3 && (hs->step % 2 == 0) == hs->initiator;
}

int
noise_handshake_write_raw(
    struct noise_handshake *hs, const uint8_t *payload, size_t len, struct buf *out)
{
	size_t start = out->len;

	if (!our_turn(hs) || len > NOISE_MAX_MESSAGE - 2 * DHLEN - 2 * TAGLEN)
		return -1;
	switch (hs->step) {
	case 0: /* -> e */
		buf_append(out, hs->e_pk, DHLEN);
		mix_hash(hs, hs->e_pk, DHLEN);
		break;
	case 1: /* <- e, ee, s, es */
		buf_append(out, hs->e_pk, DHLEN);
		mix_hash(hs, hs->e_pk, DHLEN);
		if (mix_dh(hs, hs->e_sk, hs->re) < 0)
			goto fail;
		encrypt_and_hash(hs, hs->s_pk, DHLEN, out);
		if (mix_dh(hs, hs->s_sk, hs->re) < 0)
			goto fail;
		break;
	case 2: /* -> s, se */
		encrypt_and_hash(hs, hs->s_pk, DHLEN, out);
		if (mix_dh(hs, hs->s_sk, hs->re) < 0)
			goto fail;
		break;
	}
	encrypt_and_hash(hs, payload, len, out);
	hs->step++;
	return 0;
fail:
	hs->failed = 1;
	out->len = start;
	return -1;
}

int
noise_handshake_write(
    struct noise_handshake *hs, const uint8_t *payload, size_t len, struct buf *out)
{
	struct buf msg;
	int rc;

	buf_init(&msg);
	rc = noise_handshake_write_raw(hs, payload, len, &msg);
	if (rc == 0) {
		p2p_frame_put_header(out, msg.len);
		buf_append(out, msg.data, msg.len);
	}
	buf_fini(&msg);
	return rc;
}

int
noise_handshake_read(
    struct noise_handshake *hs, const uint8_t *msg, size_t len, struct buf *payload)
{
	struct buf rs;
	size_t start = payload->len, need;
	int rc = -1;

	if (hs->failed || hs->step >= 3 || our_turn(hs) || len > NOISE_MAX_MESSAGE)
		return -1;
	need = hs->step == 0 ? DHLEN : hs->step == 1 ? 2 * DHLEN + TAGLEN : DHLEN + TAGLEN;
	if (len < need + (hs->step == 0 ? 0 : TAGLEN)) {
		hs->failed = 1;
		return -1;
	}
	buf_init(&rs);
	switch (hs->step) {
	case 0: /* -> e */
		memcpy(hs->re, msg, DHLEN);
		mix_hash(hs, hs->re, DHLEN);
		msg += DHLEN;
		len -= DHLEN;
		break;
	case 1: /* <- e, ee, s, es */
		memcpy(hs->re, msg, DHLEN);
		mix_hash(hs, hs->re, DHLEN);
		if (mix_dh(hs, hs->e_sk, hs->re) < 0 ||
		    decrypt_and_hash(hs, msg + DHLEN, DHLEN + TAGLEN, &rs) < 0)
			goto out;
		memcpy(hs->rs, rs.data, DHLEN);
		hs->has_rs = 1;
		if (mix_dh(hs, hs->e_sk, hs->rs) < 0)
			goto out;
		msg += 2 * DHLEN + TAGLEN;
		len -= 2 * DHLEN + TAGLEN;
		break;
	case 2: /* -> s, se */
		if (decrypt_and_hash(hs, msg, DHLEN + TAGLEN, &rs) < 0)
			goto out;
		memcpy(hs->rs, rs.data, DHLEN);
		hs->has_rs = 1;
		if (mix_dh(hs, hs->e_sk, hs->rs) < 0)
			goto out;
		msg += DHLEN + TAGLEN;
		len -= DHLEN + TAGLEN;
		break;
	}
	if (decrypt_and_hash(hs, msg, len, payload) < 0)
		goto out;
	hs->step++;
	rc = 0;
out:
	if (rc < 0) {
		hs->failed = 1;
		hs->has_rs = 0;
		payload->len = start;
		if (payload->data != NULL)
			payload->data[start] = '\0';
	}
	buf_fini(&rs);
	return rc;
}

int
noise_handshake_remote_key(const struct noise_handshake *hs, uint8_t key[32])
{
	if (hs == NULL || !hs->has_rs || hs->failed)
		return -1;
	memcpy(key, hs->rs, DHLEN);
	return 0;
}

int
noise_handshake_done(const struct noise_handshake *hs)
{
	return hs->step == 3 && !hs->failed;
}

const uint8_t *
noise_handshake_hash(const struct noise_handshake *hs)
{
	return hs->h;
}

int
noise_handshake_split_keys(struct noise_handshake *hs, uint8_t k1[32], uint8_t k2[32])
{
	uint8_t o1[HASHLEN], o2[HASHLEN];

	if (!noise_handshake_done(hs))
		return -1;
	hkdf2(hs->ck, NULL, 0, o1, o2);
	memcpy(k1, o1, KEYLEN);
	memcpy(k2, o2, KEYLEN);
	sodium_memzero(o1, sizeof(o1));
	sodium_memzero(o2, sizeof(o2));
	return 0;
}

struct p2p_frame_state *
noise_handshake_split(struct noise_handshake *hs)
{
	uint8_t k1[KEYLEN], k2[KEYLEN];
	struct p2p_frame_state *fs;

	if (noise_handshake_split_keys(hs, k1, k2) < 0)
		return NULL;
	fs = hs->initiator ? p2p_frame_state_new(k1, k2) : p2p_frame_state_new(k2, k1);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	return fs;
}
