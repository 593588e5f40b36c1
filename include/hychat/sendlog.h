/* sendlog.h — the sender's journal: the direct messages of one turn,
 * written before they go on the links, so that the turn's commit can
 * follow the links instead of preceding them.
 *
 * A direct message is stored (history row, outbox entry) in the turn's
 * SQLite transaction. Committing it before writing it to its link put the
 * commit, its locks and its write on every message's latency; writing the
 * link first, with nothing else, would let a sender killed between the two
 * deliver a message that its own history and outbox never hold. The
 * journal closes that window for the price of one pwrite(2): the turn's
 * messages go to it first, whole, then to the links, then the commit
 * stores them, and then the journal is marked empty. A run that finds a
 * journal at its start stores again whatever of it the database lacks (the
 * outbox then sends it again; the recipient's seen ids drop the copy).
 *
 * The file: a 32-byte header, then the records. The header holds a magic
 * (SENDLOG_MAGIC), the records' length and count (32-bit, little endian)
 * and a 16-byte BLAKE2b of those two and the records; zeros mean empty. A
 * record is the history row's seq (64-bit, little endian), the recipient
 * (a byte of length, then the name) and the message as it went on the wire
 * (32-bit length, then the JSON). A journal whose sum is wrong was cut
 * while written, before any byte of its turn went on a link: it holds
 * nothing sent, and is ignored. Like SQLite's WAL under synchronous=NORMAL
 * it is not synced: it survives the process, not the machine.
 */
#ifndef HYCHAT_SENDLOG_H
#define HYCHAT_SENDLOG_H

#include <stddef.h>
#include <stdint.h>

#define SENDLOG_FILE "sending.journal"
#define SENDLOG_MAGIC "HYSENDJ1"
#define SENDLOG_HEADER_BYTES 32
/* The most one turn writes; a turn with more commits before its links. */
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
 * batch would pass SENDLOG_MAX_BYTES or the record is malformed (a name
 * longer than 255 bytes): the turn must then commit first. */
int sendlog_add(struct sendlog *s, int64_t seq, const char *user, const char *json, size_t len);
/* Records in the batch. */
size_t sendlog_count(const struct sendlog *s);
/* Writes the batch to the file, whole, in one call. 0, or -1 with *cause:
 * then nothing of the turn may leave before its commit. */
int sendlog_write(struct sendlog *s, char **cause);
/* Drops the batch; if it was written, marks the file empty (call it after
 * the commit that stores the batch). Returns 0, or -1 with *cause. */
int sendlog_done(struct sendlog *s, int committed, char **cause);

/* Calls fn for each record the file holds, in order. Returns the number of
 * records, 0 for an empty or cut journal, -1 with *cause if it cannot be
 * read or a record whose sum is right is malformed. */
int sendlog_replay(struct sendlog *s, sendlog_fn *fn, void *arg, char **cause);
/* Marks the file empty. Returns 0, or -1 with *cause. */
int sendlog_clear(struct sendlog *s, char **cause);

/* The parser of a journal's bytes, for sendlog_replay and the fuzzer:
 * the number of records (fn told of each), 0 if the header is empty or
 * its sum wrong, -1 if a record whose sum is right is malformed. */
int sendlog_parse(const uint8_t *data, size_t len, sendlog_fn *fn, void *arg);
/* The header for records of len bytes, count of them (for the tests). */
void sendlog_header(
    uint8_t out[SENDLOG_HEADER_BYTES], const uint8_t *records, uint32_t len, uint32_t count);

#endif
