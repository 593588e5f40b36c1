/* walbuf.c — a VFS that writes a commit's WAL frames in one system call
 * (walbuf.h).
 *
 * The WAL's layout (https://www.sqlite.org/fileformat2.html#walformat): a
 * 32-byte header at offset 0, then frames of a 24-byte header and a page;
 * bytes 4-7 of a frame header are the database size after a commit, zero
 * in every frame but a commit's last. SQLite writes the header, then the
 * page, then (for a commit) publishes the frames in the WAL index, which
 * no VFS call separates from the page's write: the page of a commit's last
 * frame is therefore where what was gathered must reach the file. A write
 * below the highest offset written since the WAL header (SQLite rewriting
 * a page or a checksum in place) goes through at once, what was gathered
 * first. */
#include "hychat/walbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define WAL_HEADER_BYTES 32
#define WAL_FRAME_HEADER_BYTES 24

struct walbuf_file {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, right after this struct */
	int wal;
	int commit_next; /* the next write is the page of a commit's last frame */
	unsigned char *buf;
	size_t len, cap;
	sqlite3_int64 off; /* the file offset of buf[0] */
	sqlite3_int64 top; /* the end of the highest write since the WAL header */
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *real_vfs;

static int
flush(struct walbuf_file *f)
{
	int rc;

	if (f->len == 0)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
	f->len = 0;
	return rc;
}

static int
wb_close(sqlite3_file *file)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int
commit_header(const void *data, int amt)
{
	const unsigned char *p = data;

	return amt == WAL_FRAME_HEADER_BYTES && (p[4] | p[5] | p[6] | p[7]) != 0;
}

static int
wb_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc, page_of_commit;

	if (!f->wal)
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	if (off == 0)
		f->top = 0; /* a new WAL header: the WAL starts over */
	page_of_commit = f->commit_next;
	f->commit_next = 0;
	if (off < f->top || amt > WALBUF_MAX) {
		/* In place, or too large to gather: through at once, in order. */
		if ((rc = flush(f)) != SQLITE_OK)
			return rc;
		rc = f->real->pMethods->xWrite(f->real, data, amt, off);
		if (off + amt > f->top)
			f->top = off + amt;
		return rc;
	}
	if (f->len > 0 && (off != f->off + (sqlite3_int64)f->len || f->len + amt > WALBUF_MAX) &&
	    (rc = flush(f)) != SQLITE_OK)
		return rc;
	if (f->len + amt > f->cap) {
		size_t cap = WALBUF_MAX;
		unsigned char *grown = realloc(f->buf, cap);
		if (grown == NULL) {
			if ((rc = flush(f)) != SQLITE_OK)
				return rc;
			return f->real->pMethods->xWrite(f->real, data, amt, off);
		}
		f->buf = grown;
		f->cap = cap;
	}
	if (f->len == 0)
		f->off = off;
	memcpy(f->buf + f->len, data, (size_t)amt);
	f->len += (size_t)amt;
	if (off + amt > f->top)
		f->top = off + amt;
	if (commit_header(data, amt) && off >= WAL_HEADER_BYTES)
		f->commit_next = 1;
	else if (page_of_commit)
		return flush(f); /* the commit is whole: into the file before it is published */
	return SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	if (size < f->top)
		f->top = size;
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
wb_sync(sqlite3_file *file, int flags)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

/* The rest pass through (a file control after what is gathered). */
#define REAL(file) (((struct walbuf_file *)(file))->real)

static int
wb_lock(sqlite3_file *file, int level)
{
	return REAL(file)->pMethods->xLock(REAL(file), level);
}

static int
wb_unlock(sqlite3_file *file, int level)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), level);
}

static int
wb_check_reserved(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int
wb_file_control(sqlite3_file *file, int op, void *arg)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return rc;
	if (op == SQLITE_FCNTL_VFSNAME) {
		/* Our name before the default VFS's, as the manual asks of a shim. */
		rc = f->real->pMethods->xFileControl(f->real, op, arg);
		if (rc == SQLITE_OK) {
			char **name = arg;
			char *both = sqlite3_mprintf("%s/%z", WALBUF_VFS, *name);
			*name = both;
		}
		return rc;
	}
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
wb_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int
wb_device(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int
wb_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), page, size, extend, out);
}

static int
wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void
wb_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int
wb_shm_unmap(sqlite3_file *file, int del)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), del);
}

static int
wb_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int
wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return REAL(file)->pMethods->xUnfetch(REAL(file), off, p);
}

static const sqlite3_io_methods walbuf_methods = {
	.iVersion = 3,
	.xClose = wb_close,
	.xRead = wb_read,
	.xWrite = wb_write,
	.xTruncate = wb_truncate,
	.xSync = wb_sync,
	.xFileSize = wb_file_size,
	.xLock = wb_lock,
	.xUnlock = wb_unlock,
	.xCheckReservedLock = wb_check_reserved,
	.xFileControl = wb_file_control,
	.xSectorSize = wb_sector_size,
	.xDeviceCharacteristics = wb_device,
	.xShmMap = wb_shm_map,
	.xShmLock = wb_shm_lock,
	.xShmBarrier = wb_shm_barrier,
	.xShmUnmap = wb_shm_unmap,
	.xFetch = wb_fetch,
	.xUnfetch = wb_unfetch,
};

static int
wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	struct walbuf_file *f = (struct walbuf_file *)file;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || f->real->pMethods == NULL) {
		f->base.pMethods = NULL;
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	/* The shim's methods are version 3; a default VFS with fewer would be
	 * called for methods it lacks. */
	if (f->real->pMethods->iVersion < 3) {
		f->real->pMethods->xClose(f->real);
		f->base.pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	f->base.pMethods = &walbuf_methods;
	return SQLITE_OK;
}

/* The VFS's other methods are the default VFS's own. */
static int
wb_access(sqlite3_vfs *vfs, const char *path, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, path, flags, out);
}

static int
wb_delete(sqlite3_vfs *vfs, const char *path, int sync)
{
	(void)vfs;
	return real_vfs->xDelete(real_vfs, path, sync);
}

static int
wb_full_pathname(sqlite3_vfs *vfs, const char *path, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, path, n, out);
}

static void *
wb_dl_open(sqlite3_vfs *vfs, const char *path)
{
	(void)vfs;
	return real_vfs->xDlOpen(real_vfs, path);
}

static void
wb_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	real_vfs->xDlError(real_vfs, n, out);
}

static void (*wb_dl_sym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
	(void)vfs;
	return real_vfs->xDlSym(real_vfs, handle, sym);
}

static void
wb_dl_close(sqlite3_vfs *vfs, void *handle)
{
	(void)vfs;
	real_vfs->xDlClose(real_vfs, handle);
}

static int
wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int
wb_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int
wb_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int
wb_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int
wb_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

int
walbuf_register(void)
{
	if (real_vfs != NULL)
		return 0;
	if ((real_vfs = sqlite3_vfs_find(NULL)) == NULL || real_vfs->iVersion < 2)
		return -1;
	walbuf_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct walbuf_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = WALBUF_VFS,
		.xOpen = wb_open,
		.xDelete = wb_delete,
		.xAccess = wb_access,
		.xFullPathname = wb_full_pathname,
		.xDlOpen = wb_dl_open,
		.xDlError = wb_dl_error,
		.xDlSym = wb_dl_sym,
		.xDlClose = wb_dl_close,
		.xRandomness = wb_randomness,
		.xSleep = wb_sleep,
		.xCurrentTime = wb_current_time,
		.xGetLastError = wb_last_error,
		.xCurrentTimeInt64 = wb_current_time_int64,
	};
	if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK) {
		real_vfs = NULL;
		return -1;
	}
	return 0;
}
