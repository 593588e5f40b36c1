/* peerdb.c — the peer's one SQLite connection and its grouped write
 * transaction. */
#include "hychat/peerdb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/util.h"
#include "hychat/walbuf.h"

#define PEERDB_MAX_STMTS 64

struct peerdb {
	sqlite3 *db;
	char *path;
	uv_loop_t *loop;
	uv_work_t work;
	int checkpointing; /* a checkpoint is on the thread pool */
	sqlite3 *ckpt; /* the checkpoint's connection, used by one worker at a time */
	int ckpt_rc, ckpt_done; /* what the last checkpoint reported */
	int base; /* frames in the WAL when the last checkpoint began */
	int copied; /* frames of the WAL the last checkpoint copied */
	int wal_pages; /* frames in the WAL at the last commit */
	uint64_t last_write_ms; /* the loop's time of the last commit that wrote */
	int in_tx;
	int defer; /* writes now may wait for a later commit (peerdb_defer) */
	int urgent; /* the open transaction holds a write made outside that */
	uint64_t begun_ms; /* the loop's time when it began */
	uv_work_t writeback;
	int writing_back; /* a writeback is on the thread pool */
	int asked; /* frames in the WAL at the last writeback asked for */
	int wal_fd; /* the WAL, opened by the first writeback; -1 before */
	sqlite3_stmt *begin, *commit;
	sqlite3_stmt *stmts[PEERDB_MAX_STMTS];
	size_t nstmts;
};

char *
peerdb_cause(struct peerdb *db, const char *what)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s: %s", what,
	    db != NULL && db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
	return b.data;
}

/* SQLite creates the file with the umask; a history is private. */
static int
create_private(const char *path, char **cause)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, PEERDB_FILE_MODE);

	if (fd < 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s: %s", path, strerror(errno));
		*cause = b.data;
		return -1;
	}
	close(fd);
	return 0;
}

static void
do_checkpoint(uv_work_t *w)
{
	struct peerdb *db = w->data;

	/* A new connection knows the database is in WAL mode only once it has
	 * read from it; before that a checkpoint on it does nothing at all. */
	if (db->ckpt == NULL &&
	    (sqlite3_open_v2(db->path, &db->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	         NULL) != SQLITE_OK ||
	        sqlite3_busy_timeout(db->ckpt, PEERDB_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	        sqlite3_exec(db->ckpt, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL) !=
	            SQLITE_OK)) {
		sqlite3_close(db->ckpt);
		db->ckpt = NULL;
		return;
	}
	db->ckpt_rc = sqlite3_wal_checkpoint_v2(
	    db->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &db->ckpt_done);
}

static void checkpoint_done(uv_work_t *w, int status);

static void
start_checkpoint(struct peerdb *db)
{
	db->work.data = db;
	db->ckpt_rc = SQLITE_ERROR;
	if (uv_queue_work(db->loop, &db->work, do_checkpoint, checkpoint_done) == 0) {
		db->checkpointing = 1;
		db->base = db->wal_pages;
	}
}

/* What the checkpoint copied; the frames committed while it ran wait for
 * the next one (past PEERDB_CHECKPOINT_PAGES more, or at idle). */
static void
checkpoint_done(uv_work_t *w, int status)
{
	struct peerdb *db = w->data;

	db->checkpointing = 0;
	if (status == 0 && db->ckpt_rc == SQLITE_OK && db->ckpt_done <= db->wal_pages)
		db->copied = db->ckpt_done;
}

/* The WAL's writeback, started early. Nothing makes the kernel write a
 * committed frame out before a checkpoint's fsync (synchronous = NORMAL:
 * commits do not sync), so every checkpoint wrote 4 MiB at once, and the
 * file system's journal, committing them, held up every write of the
 * loop's that came meanwhile: commits of 20 us took 0.8 to 2.9 ms. Every
 * PEERDB_WRITEBACK_PAGES frames, a job on the pool asks the kernel to
 * start writing what is dirty (sync_file_range without waiting for it),
 * so the fsync finds little left. One job at a time; the descriptor is
 * the pool's alone. */
static void
do_writeback(uv_work_t *w)
{
	struct peerdb *db = w->data;

	if (db->wal_fd < 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s-wal", db->path);
		db->wal_fd = open(b.data, O_RDONLY | O_CLOEXEC);
		buf_fini(&b);
	}
#ifdef SYNC_FILE_RANGE_WRITE
	if (db->wal_fd >= 0)
		(void)sync_file_range(db->wal_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

static void
writeback_done(uv_work_t *w, int status)
{
	struct peerdb *db = w->data;

	(void)status;
	db->writing_back = 0;
}

static void
start_writeback(struct peerdb *db, int pages)
{
	db->writeback.data = db;
	if (uv_queue_work(db->loop, &db->writeback, do_writeback, writeback_done) == 0) {
		db->writing_back = 1;
		db->asked = pages;
	}
}

/* A checkpoint starts once PEERDB_CHECKPOINT_PAGES frames have been
 * committed since the last one began, not whenever the WAL is that long:
 * under a steady flow the WAL never starts over (SQLite starts it over
 * only when a write begins after a checkpoint copied every frame, and the
 * loop commits while checkpoints run), and a test of its length started a
 * checkpoint, with its two fsyncs, after nearly every commit. */
static int
on_wal(void *arg, sqlite3 *handle, const char *name, int pages)
{
	struct peerdb *db = arg;

	(void)handle;
	(void)name;
	if (pages < db->wal_pages)
		db->base = db->copied = db->asked = 0; /* the WAL started over */
	db->wal_pages = pages;
	db->last_write_ms = uv_now(db->loop);
	if (pages - db->asked >= PEERDB_WRITEBACK_PAGES && !db->writing_back)
		start_writeback(db, pages);
	if (pages - db->base >= PEERDB_CHECKPOINT_PAGES && !db->checkpointing)
		start_checkpoint(db);
	return SQLITE_OK;
}

/* At idle, what the last checkpoint left is copied, so that the next
 * write starts the WAL over; once per pause (a reader that holds frames
 * does not make it start one every turn). */
static void
idle_checkpoint(struct peerdb *db)
{
	if (db->loop != NULL && !db->checkpointing && db->wal_pages > db->copied &&
	    db->wal_pages > db->base &&
	    uv_now(db->loop) - db->last_write_ms >= PEERDB_IDLE_CHECKPOINT_MS)
		start_checkpoint(db);
}

struct peerdb *
peerdb_open(const char *path, uv_loop_t *loop, char **cause)
{
	struct peerdb *db = xcalloc(1, sizeof(*db));

	db->path = xstrdup(path);
	db->loop = loop;
	db->wal_fd = -1;

	if (create_private(path, cause) < 0) {
		free(db->path);
		free(db);
		return NULL;
	}
	/* SQLite's memory statistics take a global mutex on every allocation;
	 * nothing reads them. This only takes effect before SQLite's first
	 * use in the process, and is refused harmlessly after it. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* Each connection is used by one thread at a time (the loop's, or the
	 * one checkpoint in flight): SQLite's own mutexes are not needed. */
	/* The loop's connection writes a commit's WAL frames in one system
	 * call (walbuf.h); the checkpoint's only reads the WAL. */
	if (walbuf_register() < 0) {
		*cause = xstrdup("database: cannot register the WAL writer");
		free(db->path);
		free(db);
		return NULL;
	}
	if (sqlite3_open_v2(path, &db->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	        WALBUF_VFS) != SQLITE_OK ||
	    sqlite3_busy_timeout(db->db, PEERDB_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    peerdb_exec(db,
	        "PRAGMA journal_mode = WAL;"
	        "PRAGMA synchronous = NORMAL;"
	        "PRAGMA foreign_keys = ON;",
	        cause) < 0 ||
	    (db->begin = peerdb_prepare(db, "BEGIN IMMEDIATE", cause)) == NULL ||
	    (db->commit = peerdb_prepare(db, "COMMIT", cause)) == NULL ||
	    (loop != NULL && peerdb_exec(db, "PRAGMA wal_autocheckpoint = 0;", cause) < 0)) {
		if (*cause == NULL)
			*cause = peerdb_cause(db, path);
		peerdb_close(db);
		return NULL;
	}
	if (loop != NULL)
		sqlite3_wal_hook(db->db, on_wal, db);
	return db;
}

void
peerdb_close(struct peerdb *db)
{
	char *cause = NULL;

	if (db == NULL)
		return;
	/* The last commit starts no job on the pool: the loop may have ended
	 * (main closes the database after uv_run), and a job left queued
	 * would write into db once it is freed. */
	if (db->loop != NULL)
		sqlite3_wal_hook(db->db, NULL, NULL);
	if (peerdb_commit(db, &cause) < 0)
		free(cause);
	for (size_t i = 0; i < db->nstmts; i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_close(db->ckpt);
	sqlite3_close(db->db);
	if (db->wal_fd >= 0)
		close(db->wal_fd);
	free(db->path);
	free(db);
}

sqlite3 *
peerdb_handle(struct peerdb *db)
{
	return db->db;
}

int
peerdb_exec(struct peerdb *db, const char *sql, char **cause)
{
	char *msg = NULL;

	if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "database: %s", msg != NULL ? msg : "error");
		sqlite3_free(msg);
		*cause = b.data;
		return -1;
	}
	return 0;
}

sqlite3_stmt *
peerdb_prepare(struct peerdb *db, const char *sql, char **cause)
{
	sqlite3_stmt *st = NULL;

	if (db->nstmts == PEERDB_MAX_STMTS) {
		*cause = xstrdup("database: too many statements");
		return NULL;
	}
	if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK) {
		*cause = peerdb_cause(db, "prepare");
		return NULL;
	}
	db->stmts[db->nstmts++] = st;
	return st;
}

static int
step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
peerdb_write(struct peerdb *db)
{
	if (!db->defer)
		db->urgent = 1;
	if (db->in_tx)
		return 0;
	if (step_once(db->begin) < 0)
		return -1;
	db->in_tx = 1;
	db->begun_ms = db->loop != NULL ? uv_now(db->loop) : 0;
	return 0;
}

void
peerdb_defer(struct peerdb *db, int on)
{
	db->defer = on;
}

void
peerdb_urge(struct peerdb *db)
{
	if (db->in_tx)
		db->urgent = 1;
}

enum peerdb_pending
peerdb_pending(const struct peerdb *db)
{
	if (!db->in_tx)
		return PEERDB_NONE;
	return db->urgent ? PEERDB_URGENT : PEERDB_DEFERRABLE;
}

uint64_t
peerdb_begun_ms(const struct peerdb *db)
{
	return db->begun_ms;
}

int
peerdb_commit(struct peerdb *db, char **cause)
{
	if (!db->in_tx) {
		idle_checkpoint(db);
		return 0;
	}
	db->in_tx = 0;
	db->urgent = 0;
	if (step_once(db->commit) < 0) {
		*cause = peerdb_cause(db, "commit");
		if (!sqlite3_get_autocommit(db->db))
			(void)sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
