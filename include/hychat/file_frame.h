/* file_frame.h — the frames of a file transfer, inside a link's encrypted
 * frames (p2p_frame.h) beside the JSON messages: binary, so that a chunk
 * costs no escaping. A file frame's first byte is FILE_FRAME_MAGIC, which
 * no JSON object starts with; then its type, the transfer's 16-byte id,
 * and the type's fields, integers big-endian:
 *
 *   OFFER   size:8 hash:32 name_len:2 name      the sender offers a file
 *   ACCEPT  offset:8                            send from offset (also a resume)
 *   REJECT  reason_len:2 reason                 the receiver refuses
 *   CANCEL  reason_len:2 reason                 either side stops, or fails
 *   CHUNK   offset:8 data (1 to FILE_FRAME_CHUNK_MAX bytes)
 *   ACK     offset:8                            written up to offset
 *   DONE                                        saved, the hash matched
 *
 * file_frame_parse() is a pure function of bytes: views into them, no
 * allocation; anything else is refused. */
#ifndef HYCHAT_FILE_FRAME_H
#define HYCHAT_FILE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "hychat/util.h"

#define FILE_FRAME_MAGIC 0x01
#define FILE_FRAME_ID_BYTES 16
#define FILE_FRAME_HASH_BYTES 32 /* BLAKE2b-256 */
#define FILE_FRAME_CHUNK_MAX (64 * 1024)
#define FILE_FRAME_NAME_MAX 255 /* bytes of a name on the wire; file_name.h is stricter */
#define FILE_FRAME_REASON_MAX 200
#define FILE_FRAME_HEAD (2 + FILE_FRAME_ID_BYTES)
#define FILE_FRAME_MAX (FILE_FRAME_HEAD + 8 + FILE_FRAME_CHUNK_MAX)

#define FILE_FRAME_TYPES(X) \
	X(FILE_OFFER, 1, "offer") \
	X(FILE_ACCEPT, 2, "accept") \
	X(FILE_REJECT, 3, "reject") \
	X(FILE_CANCEL, 4, "cancel") \
	X(FILE_CHUNK, 5, "chunk") \
	X(FILE_ACK, 6, "ack") \
	X(FILE_DONE, 7, "done")

#define FILE_FRAME_ENUM(e, code, name) e = code,
enum file_frame_type {
	FILE_FRAME_TYPES(FILE_FRAME_ENUM)
};
#undef FILE_FRAME_ENUM

struct file_frame {
	enum file_frame_type type;
	uint8_t id[FILE_FRAME_ID_BYTES];
	uint64_t offset; /* ACCEPT, CHUNK, ACK; OFFER: the size */
	const uint8_t *hash; /* OFFER */
	const char *text; /* OFFER: the name; REJECT, CANCEL: the reason (not NUL-terminated) */
	size_t text_len;
	const uint8_t *data; /* CHUNK */
	size_t data_len;
};

/* 1 if p[0..n) is a file frame (its first byte), else a JSON message. */
int file_frame_is(const uint8_t *p, size_t n);
/* Parses p[0..n) into f. Returns 0, or -1 with a static reason in *err. */
int file_frame_parse(const uint8_t *p, size_t n, struct file_frame *f, const char **err);
/* Appends the frame f to out (its views read); -1 if a field is too long. */
int file_frame_put(struct buf *out, const struct file_frame *f);
/* The name of a type ("chunk"); "?" if unknown. */
const char *file_frame_type_name(int type);

#endif
