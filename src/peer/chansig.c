/* chansig.c — channel messages signed with the identity key (an Ed25519
 * signature by the X25519 secret scalar; see chansig.h for why that is
 * sound), and checked against a pinned X25519 key. */
#include "hychat/chansig.h"

#include <sodium.h>
#include <string.h>

#include "hychat/util.h"

#define CHANSIG_DOMAIN "hychat channel message v1"
#define CHANSIG_NONCE_DOMAIN "hychat channel nonce v1"

static void
put_field(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	unsigned char len[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
		(unsigned char)(n >> 8), (unsigned char)n };

	buf_append(b, (const char *)len, sizeof(len));
	buf_append(b, s, n);
}

/* The bytes signed; -1 if a field is missing. */
static int
signed_bytes(const struct chansig_msg *m, struct buf *b)
{
	if (m->channel == NULL || m->id == NULL || m->from == NULL || m->time == NULL ||
	    m->text == NULL)
		return -1;
	buf_append(b, CHANSIG_DOMAIN, sizeof(CHANSIG_DOMAIN));
	put_field(b, m->channel);
	put_field(b, m->id);
	put_field(b, m->from);
	put_field(b, m->time);
	put_field(b, m->text);
	buf_append_char(b, m->action ? 1 : 0);
	return 0;
}

/* The 64-byte hash of the parts, reduced to a scalar. */
static void
hash_scalar(unsigned char out[crypto_core_ed25519_SCALARBYTES], const void *p1, size_t n1,
    const void *p2, size_t n2, const void *p3, size_t n3)
{
	crypto_hash_sha512_state st;
	unsigned char h[crypto_hash_sha512_BYTES];

	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, p1, n1);
	crypto_hash_sha512_update(&st, p2, n2);
	crypto_hash_sha512_update(&st, p3, n3);
	crypto_hash_sha512_final(&st, h);
	crypto_core_ed25519_scalar_reduce(out, h);
	sodium_memzero(h, sizeof(h));
}

int
chansig_sign(
    const uint8_t sk[CHANSIG_KEY_BYTES], const struct chansig_msg *m, char out[CHANSIG_B64_MAX])
{
	unsigned char a[64] = { 0 }, ar[32], r[32], h[32], hs[32], big_a[32],
	              sig[CHANSIG_RAW_BYTES];
	struct buf b;
	int rc = -1;

	buf_init(&b);
	if (signed_bytes(m, &b) < 0)
		goto out;
	/* X25519's clamping: the scalar the identity's public key is made with. */
	memcpy(a, sk, CHANSIG_KEY_BYTES);
	a[0] &= 248;
	a[31] &= 127;
	a[31] |= 64;
	if (crypto_scalarmult_ed25519_base_noclamp(big_a, a) != 0)
		goto out;
	crypto_core_ed25519_scalar_reduce(ar, a);
	/* A deterministic nonce, as RFC 8032's, from the secret and the message. */
	hash_scalar(
	    r, CHANSIG_NONCE_DOMAIN, sizeof(CHANSIG_NONCE_DOMAIN), ar, sizeof(ar), b.data, b.len);
	if (crypto_scalarmult_ed25519_base_noclamp(sig + 32, r) != 0)
		goto out;
	hash_scalar(h, sig + 32, 32, big_a, 32, b.data, b.len);
	crypto_core_ed25519_scalar_mul(hs, h, ar);
	crypto_core_ed25519_scalar_add(sig + 64, r, hs);
	memcpy(sig, big_a, 32);
	sodium_bin2base64(out, CHANSIG_B64_MAX, sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	rc = 0;
out:
	sodium_memzero(a, sizeof(a));
	sodium_memzero(ar, sizeof(ar));
	sodium_memzero(r, sizeof(r));
	sodium_memzero(hs, sizeof(hs));
	buf_fini(&b);
	return rc;
}

int
chansig_verify(const uint8_t pk[CHANSIG_KEY_BYTES], const struct chansig_msg *m, const char *sig)
{
	unsigned char raw[CHANSIG_RAW_BYTES], x[crypto_scalarmult_curve25519_BYTES];
	size_t len = 0;
	struct buf b;
	int rc = -1;

	if (sig == NULL || strlen(sig) != CHANSIG_B64_LEN ||
	    sodium_base642bin(raw, sizeof(raw), sig, CHANSIG_B64_LEN, NULL, &len, NULL,
	        sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != sizeof(raw) || crypto_sign_ed25519_pk_to_curve25519(x, raw) != 0 ||
	    sodium_memcmp(x, pk, sizeof(x)) != 0)
		return -1;
	buf_init(&b);
	if (signed_bytes(m, &b) == 0 &&
	    crypto_sign_verify_detached(raw + 32, (const unsigned char *)b.data, b.len, raw) == 0)
		rc = 0;
	buf_fini(&b);
	return rc;
}
