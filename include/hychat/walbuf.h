/* walbuf.h — a SQLite VFS over the default one that writes each commit's
 * WAL frames with one system call instead of two per frame.
 *
 * SQLite appends a frame to the WAL as two writes, its 24-byte header and
 * its page; a commit of 11 pages is 22 pwrite(2)s. Through this VFS the
 * writes to a WAL file are gathered in memory while they are contiguous
 * and written together when the commit's last frame (the one whose header
 * holds the database size) has been given, before SQLite publishes the
 * commit in the WAL index; so no reader, in this process or another, can
 * see a committed frame that is not in the file. Anything else done to the
 * WAL file (a read, a sync, a truncation, a write elsewhere, closing)
 * writes what is gathered first, and so does passing WALBUF_MAX bytes (a
 * commit larger than that takes one call per WALBUF_MAX). A
 * process killed with frames gathered loses only an uncommitted
 * transaction, which SQLite's recovery would drop anyway. Files other than
 * WAL files are passed through untouched.
 */
#ifndef HYCHAT_WALBUF_H
#define HYCHAT_WALBUF_H

#define WALBUF_VFS "hychat-walbuf"
/* Bytes gathered before they are written anyway: the default VFS writes
 * at most 128 KiB - 1 bytes in one call (a larger write is cut short, and
 * taken for a full disk). */
#define WALBUF_MAX (64 * 1024)

/* Registers the VFS (not as the default), once per process; later calls
 * do nothing. Returns 0, or -1 if SQLite has no default VFS or refuses. */
int walbuf_register(void);

#endif
