/* relay_token.h — the one-time rendezvous token that lets two peers meet
 * at a hychat-relay, signed by the tracker with the secret it shares with
 * its relays.
 *
 * On the wire it is one line, the first thing a peer sends the relay:
 *
 *   HYRELAY1 ID EXPIRY FROM TO MAC\n
 *
 * ID is 32 lowercase hex digits (16 random bytes, the same in both
 * halves of a pair), EXPIRY the Unix time in seconds after which it is
 * refused, FROM the user presenting it and TO the user it meets, MAC 64
 * lowercase hex digits: crypto_auth (HMAC-SHA-512-256) with the shared
 * secret over everything before the space that precedes it. The tracker
 * issues each user of a pair its own half (FROM and TO swapped); the
 * relay splices the two connections whose halves match, and takes each
 * half only once.
 */
#ifndef HYCHAT_RELAY_TOKEN_H
#define HYCHAT_RELAY_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_TOKEN_MAGIC "HYRELAY1"
#define RELAY_TOKEN_ID_HEX 32
#define RELAY_TOKEN_MAC_HEX 64
#define RELAY_TOKEN_NAME_MAX 32
#define RELAY_TOKEN_KEY_BYTES 32 /* crypto_auth_KEYBYTES */
#define RELAY_TOKEN_LINE_MAX 256 /* with the newline; longer is refused */
#define RELAY_TOKEN_TTL_S 60 /* what the tracker gives */

struct relay_token {
	char id[RELAY_TOKEN_ID_HEX + 1];
	uint64_t expiry;
	char from[RELAY_TOKEN_NAME_MAX + 1];
	char to[RELAY_TOKEN_NAME_MAX + 1];
	char mac[RELAY_TOKEN_MAC_HEX + 1];
	size_t signed_len; /* bytes of the line the MAC covers */
};

/* Parses the line at the start of buf (a pure function of the bytes): 1
 * with *t filled and *used the bytes up to and including the newline, 0 if
 * more bytes are needed, -1 if it cannot be a token (*why says why). */
int relay_token_parse(
    const char *buf, size_t len, struct relay_token *t, size_t *used, const char **why);
/* NULL if line (as parsed into t) is signed with key and not expired at
 * now (Unix seconds), else why not. */
const char *relay_token_check(const struct relay_token *t, const char *line,
    const uint8_t key[RELAY_TOKEN_KEY_BYTES], uint64_t now);
/* Writes the line for (id, expiry, from, to) without its newline into out
 * (RELAY_TOKEN_LINE_MAX bytes). Returns 0, or -1 if a name is invalid. */
int relay_token_sign(const uint8_t key[RELAY_TOKEN_KEY_BYTES], const char *id, uint64_t expiry,
    const char *from, const char *to, char out[RELAY_TOKEN_LINE_MAX]);
/* A fresh random id, 32 hex digits. */
void relay_token_new_id(char out[RELAY_TOKEN_ID_HEX + 1]);
/* Reads the shared secret: a file holding at least 32 bytes (a line of
 * text is fine); the key is their BLAKE2b hash. Returns 0, or -1 with
 * *why (static). Refuses a file others may read. */
int relay_token_load_key(const char *path, uint8_t key[RELAY_TOKEN_KEY_BYTES], const char **why);
/* 1 if s is a username a token may carry. */
int relay_token_name_ok(const char *s, size_t len);

#endif
