/* users.h — a users file of Argon2id password hashes ("name:$argon2id$..."
 * per line, '#' comments), as hychat-httpd keeps it.
 *
 * Hashing and verifying take ~100 ms and 64 MiB by design: call them on a
 * thread pool, never on an event loop.
 */
#ifndef HYCHAT_USERS_H
#define HYCHAT_USERS_H

#include <stddef.h>

#define USERS_MAX_PASSWORD 1024

struct users;

/* Loads path; a missing file is an empty set. Bad lines are reported on
 * stderr with file and line and skipped. Returns NULL with *cause set
 * (allocated) if the file exists but cannot be read. */
struct users *users_load(const char *path, char **cause);
void users_free(struct users *u);
size_t users_count(const struct users *u);

/* Checks a password in constant time against the stored hash; an unknown
 * user costs the same as a wrong password. Thread-safe. */
int users_verify(const struct users *u, const char *name, const char *password);

/* Sets name's password and rewrites the file atomically (temp + rename,
 * mode 0600). Returns 0, or -1 with *cause set (allocated). */
int users_set(
    struct users *u, const char *path, const char *name, const char *password, char **cause);

#endif
