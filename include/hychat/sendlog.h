/* sendlog.h — the sender's journal: the direct messages sent since the
 * last commit, written before they go on the links, so that the commit can
 * follow the links, and wait.
 *
 * A direct message is stored (history row, outbox entry) in the SQLite
 * transaction of its turn. Committing it before writing it to its link put
 * the commit, its locks and its write on every message's latency; writing
 * the link first, with nothing else, would let a sender killed before the
 * commit deliver a message that its own history and outbox never hold. The
 * journal closes that window for the price of one pwrite(2) a turn: the
 * turn's messages are appended to it, whole, then go on the links; a
 * commit stores them, at once or, like what a receiver stores, up to
 * ENGINE_COMMIT_DELAY_MS later with what came after; then the journal is
 * cleared. A run that finds a journal at its start stores again whatever
 * of it the database lacks (the outbox then sends it again; the
 * recipient's seen ids drop the copy).
 *
 * The file: segments, one per turn since the last clear, from offset 0. A
 * segment is a 40-byte header, then its records. The header holds a magic
 * (SENDLOG_MAGIC), the epoch (64 random bits, new at each clear), the
 * records' length and count (32-bit), all little endian, and a 16-byte
 * BLAKE2b of those three and the records. A record is the history row's
 * seq (64-bit), the recipient (a byte of length, then the name) and the
 * message as it went on the wire (32-bit length, then the JSON). Reading
 * stops at the first segment whose magic or sum is wrong or whose epoch is
 * not the first's: a segment cut while written was written before any
 * byte of its turn went on a link, and one of an older epoch was
 * committed. A clear zeroes the first header. Like SQLite's WAL under
 * synchronous=NORMAL the journal is not synced: it survives the process,
 * not the machine.
 */
#ifndef HYCHAT_SENDLOG_H
#define HYCHAT_SENDLOG_H

#include <stddef.h>
#include <stdint.h>

#define SENDLOG_FILE "sending.journal"
#define SENDLOG_MAGIC "HYSENDJ1"
#define SENDLOG_HEADER_BYTES 40
/* The most the journal holds; a turn that would pass it commits before
 * its links, and the commit clears the journal. */
#define SENDLOG_MAX_BYTES (8u * 1024 * 1024)

struct sendlog_record {
	int64_t seq; /* the history row it was stored as */
	const char *user; /* the recipient, a valid name */
	const char *json; /* the message as it went on the wire, NUL-terminated */
	size_t len;
};

/* Returns 0 to go on, non-zero to stop. */
typedef int sendlog_fn(const struct sendlog_record *r, void *arg);

struct sendlog;

/* Opens (creating, mode 0600) the journal at path. NULL with *cause. */
struct sendlog *sendlog_open(const char *path, char **cause);
void sendlog_free(struct sendlog *s);

/* Adds a message to the turn's batch, in memory. Returns 0, or -1 if the
 * journal would pass SENDLOG_MAX_BYTES or the record is malformed (a name
 * longer than 255 bytes): the turn must then commit first. */
int sendlog_add(struct sendlog *s, int64_t seq, const char *user, const char *json, size_t len);
/* Records in the batch. */
size_t sendlog_count(const struct sendlog *s);
/* Appends the batch to the file, whole, in one call, and empties it. 0,
 * or -1 with *cause: then nothing of the turn may leave before its
 * commit. */
int sendlog_write(struct sendlog *s, char **cause);
/* Empties the batch without writing it (a turn that commits first). */
void sendlog_drop(struct sendlog *s);
/* Marks the file empty: after a commit, which stored all it holds.
 * Returns 0, or -1 with *cause. */
int sendlog_clear(struct sendlog *s, char **cause);

/* Calls fn for each record the file holds, in order. Returns the number of
 * records, 0 for an empty or cut journal, -1 with *cause if it cannot be
 * read or a record whose sum is right is malformed. */
int sendlog_replay(struct sendlog *s, sendlog_fn *fn, void *arg, char **cause);

/* The parser of a journal's bytes, for sendlog_replay and the fuzzer:
 * the number of records (fn told of each), -1 if a record of a segment
 * whose sum is right is malformed. */
int sendlog_parse(const uint8_t *data, size_t len, sendlog_fn *fn, void *arg);
/* A segment's header for records of len bytes, count of them (for the
 * tests). */
void sendlog_header(uint8_t out[SENDLOG_HEADER_BYTES], uint64_t epoch, const uint8_t *records,
    uint32_t len, uint32_t count);

#endif
