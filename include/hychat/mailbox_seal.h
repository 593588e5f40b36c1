/* mailbox_seal.h — the envelope of a direct message left at the tracker
 * for an offline recipient: pure functions over libsodium, no I/O.
 *
 * Outer: crypto_box_seal to the recipient's X25519 identity key, so that
 * only the recipient opens it and the tracker learns nothing, the sender
 * included. Inside it: the sender's name (one length byte, then the name),
 * a 24-byte nonce, and crypto_box_easy(message, nonce, recipient_pk,
 * sender_sk): the message authenticated as coming from the holder of the
 * sender's identity key, which the recipient checks against the key it
 * pinned for that name. The message is the JSON {"id","time","message"}
 * ("action" too for /me), read by the engine.
 */
#ifndef HYCHAT_MAILBOX_SEAL_H
#define HYCHAT_MAILBOX_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define MAILBOX_SEAL_KEY_BYTES 32
#define MAILBOX_SEAL_NAME_MAX 32 /* bytes of the sender's name */
/* Bytes a blob adds to a message of the longest name. */
#define MAILBOX_SEAL_OVERHEAD (48 + 1 + MAILBOX_SEAL_NAME_MAX + 24 + 16)

/* Seals msg from sender (its name and secret key) to recipient_pk. Returns
 * the allocated blob with *len, or NULL if the name is empty or too long. */
uint8_t *mailbox_seal(const char *sender, const uint8_t sender_sk[MAILBOX_SEAL_KEY_BYTES],
    const uint8_t recipient_pk[MAILBOX_SEAL_KEY_BYTES], const uint8_t *msg, size_t msglen,
    size_t *len);

/* A blob with its outer seal opened: who it says sent it, and the box. */
struct mailbox_opened {
	char sender[MAILBOX_SEAL_NAME_MAX + 1]; /* as claimed: not yet verified */
	uint8_t *plain; /* allocated: the whole inner plaintext */
	size_t plain_len;
};

/* Opens blob's outer seal with the recipient's own key pair. Returns 0, or
 * -1 (o left empty) if the blob was not sealed to this key, was altered,
 * or is malformed. The sender's name is any bytes but NUL: check it. */
int mailbox_open_outer(const uint8_t pk[MAILBOX_SEAL_KEY_BYTES],
    const uint8_t sk[MAILBOX_SEAL_KEY_BYTES], const uint8_t *blob, size_t len,
    struct mailbox_opened *o);
/* Verifies and decrypts the inner box against the sender's public key (as
 * pinned). Returns the allocated message, NUL-terminated, with *len; NULL
 * if it does not verify. */
char *mailbox_open_inner(const struct mailbox_opened *o,
    const uint8_t sender_pk[MAILBOX_SEAL_KEY_BYTES], const uint8_t sk[MAILBOX_SEAL_KEY_BYTES],
    size_t *len);
void mailbox_opened_fini(struct mailbox_opened *o);

#endif
