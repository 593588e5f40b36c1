/* p2p_frame.h — the bytes on a P2P link.
 *
 * Every message on an encrypted link, handshake messages included, is a
 * frame: a 4-byte big-endian length, then that many bytes. After the
 * handshake a frame's body is one JSON object sealed with
 * ChaCha20-Poly1305 under the link's session key for that direction and a
 * nonce that counts frames (the Noise transport): a frame that is altered,
 * dropped, replayed or reordered fails to open and the link is cut.
 *
 * Since a length of a valid frame is below 2^24, a frame's first byte is
 * 0: a listener tells a hychat peer from one speaking the original
 * plaintext protocol (which opens with '{') by its first byte.
 *
 * The plaintext protocol has no framing: a stream of JSON objects, parsed
 * here incrementally however TCP cuts them. */
#ifndef HYCHAT_P2P_FRAME_H
#define HYCHAT_P2P_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "hychat/util.h"

#define P2P_FRAME_HEADER 4
#define P2P_FRAME_TAG 16
/* The largest plaintext in one frame: a 64 KiB message of UTF-8 escaped
 * as JSON, with room to spare. */
#define P2P_FRAME_MAX_PLAIN (512 * 1024)
#define P2P_FRAME_MAX (P2P_FRAME_MAX_PLAIN + P2P_FRAME_TAG)
#define P2P_FRAME_KEY_BYTES 32

struct p2p_frame_state;

/* The transport state from the two session keys of a handshake. */
struct p2p_frame_state *p2p_frame_state_new(
    const uint8_t send_key[P2P_FRAME_KEY_BYTES], const uint8_t recv_key[P2P_FRAME_KEY_BYTES]);
void p2p_frame_state_free(struct p2p_frame_state *fs);

/* Noise's ChaChaPoly nonce for counter n: 32 zero bits, then n
 * little-endian (the handshake's ciphers use it too). */
void p2p_frame_nonce(uint8_t nonce[12], uint64_t n);
/* Appends a frame header for a body of len bytes to out. */
void p2p_frame_put_header(struct buf *out, size_t len);
/* Finds the first frame in data: 1 with *frame and *len its body and *used the
 * bytes it takes, 0 if more bytes are needed, -1 if the length is over max
 * (P2P_FRAME_MAX once a link is up, the largest Noise message before: the
 * link must be cut, told by the header alone). */
int p2p_frame_next(
    const uint8_t *data, size_t n, size_t max, const uint8_t **frame, size_t *len, size_t *used);
/* Appends the sealed frame (header included) of plain to out: 0, or -1 if
 * plain is too large or the nonces are spent. */
int p2p_frame_seal(struct p2p_frame_state *fs, const uint8_t *plain, size_t len, struct buf *out);
/* Appends the opened body of frame to plain: 0, or -1 if it fails
 * authentication (the link must be cut: the nonce does not advance). */
int p2p_frame_open(struct p2p_frame_state *fs, const uint8_t *frame, size_t len, struct buf *plain);

/* The plaintext protocol: JSON objects back to back, whitespace between
 * them allowed, none larger than max bytes. */
struct p2p_json_stream;

struct p2p_json_stream *p2p_json_stream_new(size_t max);
void p2p_json_stream_free(struct p2p_json_stream *js);
/* Raises the limit for the objects that follow (a link that is up). */
void p2p_json_stream_raise_max(struct p2p_json_stream *js, size_t max);
/* Takes the next object out of in (consuming its bytes): 1 and *o (owned
 * by the caller), 0 if more bytes are needed (in is consumed), -1 with
 * *err (static) if the bytes are not a JSON object or it is too large. */
int p2p_json_stream_next(
    struct p2p_json_stream *js, struct buf *in, struct json_object **o, const char **err);

#endif
