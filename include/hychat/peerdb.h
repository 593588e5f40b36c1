/* peerdb.h — the peer's SQLite database (hychat.db in the data directory):
 * one connection, WAL mode, writes grouped into one transaction per turn of
 * the event loop.
 *
 * The history and the outbox keep their tables in it; each prepares its own
 * statements. Writers call peerdb_write() before writing; the owner calls
 * peerdb_commit() once per loop iteration (before the loop waits) and at
 * exit, so a burst of messages costs one commit, not one per row; a
 * transaction of deferrable writes only (peerdb_defer) it may leave open
 * for a few more iterations.
 */
#ifndef HYCHAT_PEERDB_H
#define HYCHAT_PEERDB_H

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

#define PEERDB_FILE "hychat.db"
#define PEERDB_BUSY_TIMEOUT_MS 2000
#define PEERDB_FILE_MODE 0600
#define PEERDB_CHECKPOINT_PAGES 1000 /* WAL frames since the last checkpoint that start one */
#define PEERDB_IDLE_CHECKPOINT_MS 1000 /* no commit for this long: what is left is copied */
/* WAL frames (1 MiB) committed between two requests to the kernel to
 * start writing the WAL out (peerdb.c). */
#define PEERDB_WRITEBACK_PAGES 256

struct peerdb;

/* Opens or creates the database at path. With a loop, checkpoints (which
 * wait for the disk) run on the loop's thread pool, on a connection of
 * their own, never on the loop, and so does the writeback of the WAL
 * that keeps them short; without one, SQLite runs them inline.
 * Returns NULL with *cause (allocated) on failure. */
struct peerdb *peerdb_open(const char *path, uv_loop_t *loop, char **cause);
/* Commits what is pending and closes; with a loop, only once the loop
 * has finished a checkpoint it started. */
void peerdb_close(struct peerdb *db);
sqlite3 *peerdb_handle(struct peerdb *db);
/* Runs SQL with no result rows (schema). Returns 0, or -1 with *cause. */
int peerdb_exec(struct peerdb *db, const char *sql, char **cause);
/* Prepares a statement that lives as long as db (finalized by
 * peerdb_close). Returns NULL with *cause on failure. */
sqlite3_stmt *peerdb_prepare(struct peerdb *db, const char *sql, char **cause);
/* Opens the grouped write transaction unless it is open. Returns 0 or -1.
 * A write made outside peerdb_defer() makes the transaction urgent. */
int peerdb_write(struct peerdb *db);
/* Between peerdb_defer(db, 1) and peerdb_defer(db, 0), writes may wait
 * for a later commit than the turn's: their owner (the engine, for what
 * it received) holds back whatever depends on them until that commit. */
void peerdb_defer(struct peerdb *db, int on);
/* Makes the open transaction urgent, as a write outside peerdb_defer(). */
void peerdb_urge(struct peerdb *db);
enum peerdb_pending {
	PEERDB_NONE, /* no transaction open */
	PEERDB_DEFERRABLE, /* open, with only writes made under peerdb_defer() */
	PEERDB_URGENT, /* open, with a write that wants the turn's commit */
};
enum peerdb_pending peerdb_pending(const struct peerdb *db);
/* The loop's time when the open transaction began. */
uint64_t peerdb_begun_ms(const struct peerdb *db);
/* Commits the grouped transaction, if one is open. Returns 0, or -1 with
 * *cause. Called with nothing to commit, after PEERDB_IDLE_CHECKPOINT_MS
 * without a write, it starts a checkpoint of the frames left, so that the
 * next write starts the WAL over. */
int peerdb_commit(struct peerdb *db, char **cause);
/* An allocated "what: sqlite's message" for *cause. */
char *peerdb_cause(struct peerdb *db, const char *what);

#endif
