/* noise.h — the link handshake: Noise_XX_25519_ChaChaPoly_BLAKE2b
 * (noiseprotocol.org, revision 34), built on libsodium.
 *
 *   -> e                 dialer's ephemeral key, no payload (it would be clear)
 *   <- e, ee, s, es      listener's identity, encrypted
 *   -> s, se             dialer's identity and name, encrypted
 *
 * Each side proves it holds its identity key (the DHs with it feed the
 * keys); ephemeral-ephemeral DH gives forward secrecy, and XX resists
 * key-compromise impersonation. Each message goes out as a frame of
 * p2p_frame.h. After the third message noise_handshake_split() gives the
 * transport state. The prologue binds the version of hychat's protocol:
 * hychat/2 since the dialer's name moved from the first message to the
 * third, so that an older peer fails the handshake instead of misreading
 * it. */
#ifndef HYCHAT_NOISE_H
#define HYCHAT_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "hychat/util.h"

#define NOISE_PROTOCOL "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define NOISE_PROLOGUE "hychat/2"
#define NOISE_MAX_MESSAGE 65535
#define NOISE_HASH_BYTES 64

struct identity;
struct p2p_frame_state;
struct noise_handshake;

/* A handshake with our identity; initiator 1 for the dialer. */
struct noise_handshake *noise_handshake_new(const struct identity *id, int initiator);
/* The same with every input given (test vectors): the static secret, the
 * ephemeral secret (NULL: a fresh one) and the prologue. */
struct noise_handshake *noise_handshake_new_keys(const uint8_t s_sk[32], const uint8_t *e_sk,
    int initiator, const uint8_t *prologue, size_t prologue_len);
void noise_handshake_free(struct noise_handshake *hs);

/* Writes our next message, carrying payload, as a frame appended to out;
 * unframed: the bare message. 0, or -1 if it is not our turn. */
int noise_handshake_write(
    struct noise_handshake *hs, const uint8_t *payload, size_t len, struct buf *out);
int noise_handshake_write_raw(
    struct noise_handshake *hs, const uint8_t *payload, size_t len, struct buf *out);
/* Reads the remote's next message (a frame's body), appending its payload
 * to payload. 0, or -1 if it is not their turn or it fails. */
int noise_handshake_read(
    struct noise_handshake *hs, const uint8_t *msg, size_t len, struct buf *payload);
/* The remote's identity key, once its message carrying it was read. */
int noise_handshake_remote_key(const struct noise_handshake *hs, uint8_t key[32]);
/* 1 once all three messages are through. */
int noise_handshake_done(const struct noise_handshake *hs);
/* The handshake hash (channel binding, test vectors). */
const uint8_t *noise_handshake_hash(const struct noise_handshake *hs);
/* The transport state, once done; NULL before. */
struct p2p_frame_state *noise_handshake_split(struct noise_handshake *hs);
/* The two transport keys (test vectors): initiator-to-responder first. */
int noise_handshake_split_keys(struct noise_handshake *hs, uint8_t k1[32], uint8_t k2[32]);

#endif
