/* identity.h — a user's long-term X25519 key pair, its fingerprint, and
 * the known_peers file that pins other users' keys on first use (as ssh's
 * known_hosts does).
 *
 * The key file holds the secret half in base64 on one line, mode 0600;
 * a file that others can read is refused, as ssh refuses one. */
#ifndef HYCHAT_IDENTITY_H
#define HYCHAT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define IDENTITY_FILE "identity.key"
#define KNOWN_PEERS_FILE "known_peers"
#define IDENTITY_PUBLIC_BYTES 32
#define IDENTITY_SECRET_BYTES 32
/* "BLAKE2b:" and 43 characters of unpadded base64, and the NUL. */
#define IDENTITY_FINGERPRINT_MAX 64

struct identity;

/* Loads the key at path, creating it (0600) if there is none. Returns NULL
 * with *cause (allocated) set on failure. */
struct identity *identity_load(const char *path, char **cause);
void identity_free(struct identity *id);
const uint8_t *identity_public_key(const struct identity *id);
const uint8_t *identity_secret_key(const struct identity *id);

/* Writes the fingerprint of a public key into fp (IDENTITY_FINGERPRINT_MAX
 * bytes): "BLAKE2b:" and the base64 of its 256-bit BLAKE2b hash. */
void identity_fingerprint(const uint8_t key[IDENTITY_PUBLIC_BYTES], char *fp);

/* known_peers: lines "USER BASE64KEY"; '#' starts a comment. Delete a
 * user's line to accept a new key for them. */
struct known_peers;

enum known_peers_result {
	KNOWN_PEERS_MATCH, /* seen before, same key */
	KNOWN_PEERS_NEW, /* first sight: now pinned */
	KNOWN_PEERS_CHANGED, /* pinned to another key: refuse */
	KNOWN_PEERS_ERROR, /* could not pin it */
};

struct known_peers *known_peers_open(const char *path, char **cause);
void known_peers_close(struct known_peers *k);
/* Checks user's key against the pinned one, pinning it if new. */
enum known_peers_result known_peers_check(
    struct known_peers *k, const char *user, const uint8_t *key, size_t keylen);
/* Copies user's pinned key into key: 1 if there is one, else 0. */
int known_peers_lookup(
    const struct known_peers *k, const char *user, uint8_t key[IDENTITY_PUBLIC_BYTES]);

#endif
