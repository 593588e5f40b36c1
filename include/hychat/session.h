/* session.h — server-side sessions behind a cookie: random tokens of
 * SESSION_TOKEN_BYTES from libsodium, an expiry, thread-safe lookups.
 */
#ifndef HYCHAT_SESSION_H
#define HYCHAT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#define SESSION_TOKEN_BYTES 32
#define SESSION_TOKEN_CHARS (SESSION_TOKEN_BYTES * 2) /* hex */
#define SESSION_MAX_USER 32

struct sessions;

struct sessions *sessions_new(uint64_t ttl_ms);
void sessions_free(struct sessions *s);

/* Creates a session for user at now; writes the token (hex,
 * SESSION_TOKEN_CHARS + 1 bytes) into token. */
void sessions_create(struct sessions *s, const char *user, uint64_t now, char *token);
/* Looks a token up; copies its user (SESSION_MAX_USER + 1 bytes) and
 * returns 0, or -1 if unknown or expired (an expired one is removed). */
int sessions_check(struct sessions *s, const char *token, uint64_t now, char *user);
/* Ends a session; returns 0, or -1 if there was none. */
int sessions_end(struct sessions *s, const char *token);
/* Removes every expired session; returns how many. */
size_t sessions_sweep(struct sessions *s, uint64_t now);
size_t sessions_count(struct sessions *s);

#endif
