/* store.h — the tracker's persistent state: accounts (Argon2id hashes),
 * channels, memberships, public keys.
 *
 * A store is a table of operations, so that another backend (Redis, for
 * several trackers) can be added without touching the handlers. Every
 * operation is thread-safe and quick (an indexed read or a small write);
 * password hashing is the caller's, off the loop. Operations return 0 (or
 * a count) on success, and -1 with *cause set to an allocated reason the
 * caller frees; names are valid (see registry.h) when they arrive.
 */
#ifndef HYCHAT_STORE_H
#define HYCHAT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_EXISTS 1 /* user_add: the name is taken */
#define STORE_HASH_MAX 128 /* room for a crypto_pwhash_str() string */
#define STORE_FULL 2 /* mail_add: the recipient's quota would be passed */

struct store;

struct store_ops {
	void (*close)(struct store *st);
	/* Adds an account; STORE_EXISTS if the name is taken. */
	int (*user_add)(struct store *st, const char *name, const char *hash, char **cause);
	/* Adds an account or replaces its password hash. */
	int (*user_set_hash)(struct store *st, const char *name, const char *hash, char **cause);
	/* Copies name's hash to out (STORE_HASH_MAX bytes): 1 found, 0 no such user. */
	int (*user_hash)(struct store *st, const char *name, char *out, char **cause);
	/* Sets *n to the number of accounts. */
	int (*user_count)(struct store *st, uint64_t *n, char **cause);
	int (*pubkey_set)(
	    struct store *st, const char *name, const uint8_t *key, size_t len, char **cause);
	/* Adds name to channel, creating the channel; joining twice is no error. */
	int (*join)(struct store *st, const char *channel, const char *name, char **cause);
	/* Removes name from channel, deleting the channel once it is empty. */
	int (*leave)(struct store *st, const char *channel, const char *name, char **cause);
	/* Calls fn for every membership, ordered by channel then name. */
	int (*each_member)(struct store *st,
	    void (*fn)(const char *channel, const char *name, void *arg), void *arg, char **cause);
	/* Calls fn for every account with a public key. */
	int (*each_pubkey)(struct store *st,
	    void (*fn)(const char *name, const uint8_t *key, size_t len, void *arg), void *arg,
	    char **cause);
	/* Profiles; both optional (NULL: the tracker keeps them in memory
	 * only). Sets name's display name and status line ("" for none). */
	int (*profile_set)(struct store *st, const char *name, const char *display,
	    const char *status, char **cause);
	/* Calls fn for every stored profile. */
	int (*each_profile)(struct store *st,
	    void (*fn)(const char *name, const char *display, const char *status, void *arg),
	    void *arg, char **cause);

	/* The mailbox: sealed blobs waiting for their recipient. A message is
	 * its recipient, id (increasing), deposit time (wall-clock ms), size
	 * and blob; never its sender. */
	/* Adds blob for name unless name would then hold more than max_msgs
	 * messages or max_bytes bytes (STORE_FULL); 0 with *id set. */
	int (*mail_add)(struct store *st, const char *name, const uint8_t *blob, size_t len,
	    uint64_t now_ms, uint64_t max_msgs, uint64_t max_bytes, uint64_t *id, char **cause);
	/* Sets *msgs and *bytes to what name's mailbox holds. */
	int (*mail_count)(
	    struct store *st, const char *name, uint64_t *msgs, uint64_t *bytes, char **cause);
	/* Calls fn for name's messages with an id above after, in id order:
	 * at most limit, and no more once max_bytes of blobs were given (at
	 * least one). Returns the count; *more is set if others follow. */
	int (*mail_list)(struct store *st, const char *name, uint64_t after, size_t limit,
	    size_t max_bytes,
	    void (*fn)(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg),
	    void *arg, int *more, char **cause);
	/* Deletes those of ids that are name's; returns how many went. */
	int (*mail_delete)(
	    struct store *st, const char *name, const uint64_t *ids, size_t n, char **cause);
	/* Deletes every message deposited before before_ms; returns how many. */
	int (*mail_expire)(struct store *st, uint64_t before_ms, char **cause);
};

/* Every backend's handle starts with this. */
struct store {
	const struct store_ops *ops;
};

/* Opens (creating and migrating) the SQLite database at path, in WAL
 * mode. Returns NULL with *cause set if it cannot. */
struct store *store_sqlite_open(const char *path, char **cause);

#endif
