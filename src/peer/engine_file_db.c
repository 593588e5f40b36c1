/* engine_file_db.c — file transfers in the peer's database: one row each,
 * written at every change of state, read at start so that a transfer
 * survives a restart of either side. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine_file.h"
#include "hychat/log.h"
#include "hychat/util.h"

static const char xfer_schema[] = "CREATE TABLE IF NOT EXISTS transfers ("
                                  " id TEXT PRIMARY KEY, peer TEXT NOT NULL, dir_out INTEGER,"
                                  " name TEXT, path TEXT, part TEXT, dest TEXT, size INTEGER,"
                                  " mtime INTEGER, hash BLOB, state TEXT, error TEXT,"
                                  " bytes INTEGER, created INTEGER)";

void
engine_file_save(struct engine_xfer *x)
{
	struct engine *e = x->e;
	static const char sql[] =
	    "INSERT OR REPLACE INTO transfers (id, peer, dir_out, name, path, part, dest, size,"
	    " mtime, hash, state, error, bytes, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,"
	    " COALESCE((SELECT created FROM transfers WHERE id = ?1), ?14))";
	char *cause = NULL;

	if (e->xfer_save == NULL && (e->xfer_save = peerdb_prepare(e->db, sql, &cause)) == NULL) {
		log_error("%s", cause);
		free(cause);
		return;
	}
	if (peerdb_write(e->db) < 0)
		return;
	sqlite3_stmt *q = e->xfer_save;
	sqlite3_bind_text(q, 1, x->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, x->peer, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, x->out);
	sqlite3_bind_text(q, 4, x->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, x->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, x->part, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, x->dest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, (sqlite3_int64)x->size);
	sqlite3_bind_int64(q, 9, x->mtime_ns);
	sqlite3_bind_blob(q, 10, x->hash, sizeof(x->hash), SQLITE_STATIC);
	sqlite3_bind_text(q, 11, engine_file_state_names[x->state], -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 12, x->error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 13, (sqlite3_int64)x->bytes);
	sqlite3_bind_int64(q, 14, (sqlite3_int64)hy_now_ms());
	if (sqlite3_step(q) != SQLITE_DONE)
		log_error(
		    "transfers: cannot save %s: %s", x->id, sqlite3_errmsg(peerdb_handle(e->db)));
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

static enum xfer_state
state_of(const char *name)
{
	for (int i = 0; i < XFER_STATE_COUNT; i++)
		if (strcmp(engine_file_state_names[i], name) == 0)
			return i;
	return XFER_FAILED;
}

static char *
col_str(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

int
engine_file_load(struct engine *e, char **cause)
{
	sqlite3_stmt *q;
	int rc;

	if (peerdb_exec(e->db, xfer_schema, cause) < 0)
		return -1;
	if ((q = peerdb_prepare(e->db,
	         "SELECT id, peer, dir_out, name, path, part, dest, size, mtime, hash, state,"
	         " error, bytes FROM transfers ORDER BY created",
	         cause)) == NULL)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint8_t id[FILE_FRAME_ID_BYTES];
		const char *hex = (const char *)sqlite3_column_text(q, 0);
		const char *peer = (const char *)sqlite3_column_text(q, 1);
		struct engine_xfer *x;
		if (hex == NULL || peer == NULL || strlen(hex) != ENGINE_FILE_ID_HEX ||
		    sodium_hex2bin(id, sizeof(id), hex, strlen(hex), NULL, NULL, NULL) != 0 ||
		    sqlite3_column_bytes(q, 9) != FILE_IO_HASH_BYTES)
			continue;
		x = engine_file_xfer_new(e, peer, sqlite3_column_int(q, 2));
		engine_file_set_id(x, id);
		x->name = col_str(q, 3);
		x->path = col_str(q, 4);
		x->part = col_str(q, 5);
		x->dest = col_str(q, 6);
		x->size = (uint64_t)sqlite3_column_int64(q, 7);
		x->mtime_ns = sqlite3_column_int64(q, 8);
		memcpy(x->hash, sqlite3_column_blob(q, 9), FILE_IO_HASH_BYTES);
		sodium_bin2hex(x->hash_hex, sizeof(x->hash_hex), x->hash, sizeof(x->hash));
		x->state = state_of((const char *)sqlite3_column_text(q, 10));
		x->error = col_str(q, 11);
		x->bytes = (uint64_t)sqlite3_column_int64(q, 12);
		x->cleaned = engine_file_terminal(x->state);
		x->checked = 1; /* what was offered: a resume must match it */
		if (x->name == NULL || (x->out && x->path == NULL)) {
			x->state = XFER_FAILED;
			x->cleaned = 1;
			continue;
		}
		if (engine_file_terminal(x->state) || x->state == XFER_OFFERED)
			continue;
		if (x->out) {
			x->state = XFER_PAUSED;
		} else if (x->part == NULL) {
			x->state = XFER_ACCEPTED; /* the .part was not made yet */
		} else {
			x->state = XFER_PAUSED;
			x->need_open = 1;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		*cause = peerdb_cause(e->db, "transfers");
		return -1;
	}
	return 0;
}
