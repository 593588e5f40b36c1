/* chansig.h — the signature every channel message carries from its
 * original sender, so that a member relaying history (the backlog) can
 * neither forge nor alter what someone else said. Pure functions over
 * libsodium, no I/O.
 *
 * The identity key is X25519 (identity.h). Its clamped secret scalar a is
 * also an Ed25519 secret scalar: A = aB on the Edwards curve is the
 * Ed25519 public key whose Montgomery form is the identity's public key.
 * A signature is a standard Ed25519 signature (RFC 8032 verification,
 * crypto_sign_verify_detached) made with a, carried with A: a verifier
 * checks that A maps to the X25519 key it pinned for the sender
 * (known_peers), then the signature. Only the holder of a can make one.
 *
 * Signed: a domain string, then channel, id, sender, time and text, each
 * with a 4-byte big-endian length, then one byte, 1 for /me.
 */
#ifndef HYCHAT_CHANSIG_H
#define HYCHAT_CHANSIG_H

#include <stddef.h>
#include <stdint.h>

#define CHANSIG_KEY_BYTES 32
#define CHANSIG_RAW_BYTES (32 + 64) /* A, then the signature R || s */
#define CHANSIG_B64_LEN 128 /* base64 (original, padded) of the raw bytes */
#define CHANSIG_B64_MAX (CHANSIG_B64_LEN + 1)

/* The signed fields of a channel message (all NUL-terminated). */
struct chansig_msg {
	const char *channel; /* without '#' */
	const char *id;
	const char *from;
	const char *time;
	const char *text;
	int action;
};

/* Signs m with the X25519 identity secret key sk into out (base64,
 * NUL-terminated). Returns 0, or -1 on a field missing. */
int chansig_sign(
    const uint8_t sk[CHANSIG_KEY_BYTES], const struct chansig_msg *m, char out[CHANSIG_B64_MAX]);
/* 0 if sig (base64, any bytes) is a signature of m by the holder of the
 * X25519 public key pk; -1 otherwise. */
int chansig_verify(
    const uint8_t pk[CHANSIG_KEY_BYTES], const struct chansig_msg *m, const char *sig);

#endif
