/* file_io.h — the disk side of a file transfer: blocking calls, each run
 * on the loop's thread pool (uv_queue_work), never on the loop.
 *
 * The receiver writes NAME.part and, beside it, the sidecar NAME.part.hychat
 * ("hychat-part 1 ID SIZE HASH OFFSET"): OFFSET bytes of the .part are
 * written and synced to disk. The sidecar only moves forward after an
 * fdatasync of the .part, and is replaced atomically (a temporary file,
 * fsync, rename), so after a crash it never claims more than the disk
 * holds. */
#ifndef HYCHAT_FILE_IO_H
#define HYCHAT_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define FILE_IO_HASH_BYTES crypto_generichash_BYTES /* BLAKE2b-256 */
#define FILE_IO_BLOCK (1024 * 1024) /* bytes read at once to hash */
#define FILE_IO_DIR_MODE 0700
#define FILE_IO_FILE_MODE 0600
#define FILE_IO_SIDECAR ".hychat" /* after the .part's name */
#define FILE_IO_PART ".part"
#define FILE_IO_ERR_MAX 256

/* What a sender knows of its file. */
struct file_io_stat {
	uint64_t size;
	int64_t mtime_ns;
	uint8_t hash[FILE_IO_HASH_BYTES];
};

/* Opens path (a regular file), reads its size and mtime and hashes it.
 * Returns the open descriptor, or -1 with err. */
int file_io_hash(const char *path, struct file_io_stat *st, char *err);
/* Reads len bytes at off into out (exactly, else -1 with err). */
int file_io_read(int fd, uint64_t off, uint8_t *out, size_t len, char *err);

/* The download directory: $XDG_DOWNLOAD_DIR/hychat, else
 * $HOME/Downloads/hychat (allocated; NULL without either). */
char *file_io_download_dir(void);
/* Makes dir and its parents. Returns 0, or -1 with err. */
int file_io_mkdirs(const char *dir, char *err);
/* Creates a new .part for a file of size bytes meant to land as target
 * (target's directory must exist): checks the disk's free space, then
 * creates TARGET.part, or "BASE (1).EXT.part"... if taken (O_EXCL), and
 * its sidecar at offset 0. Returns the descriptor with *part (allocated),
 * or -1 with err. */
int file_io_part_create(const char *target, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], char **part, char *err);
/* Opens an existing .part again and reads its sidecar: *offset is what it
 * says is synced (0 if it is missing, or names another transfer, or the
 * .part is shorter). Returns the descriptor, or -1 with err. */
int file_io_part_open(const char *part, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], uint64_t *offset, char *err);
/* Writes data at off. Returns 0, or -1 with err. */
int file_io_write(int fd, uint64_t off, const uint8_t *data, size_t len, char *err);
/* Syncs the .part, then records offset in its sidecar. */
int file_io_sync(int fd, const char *part, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], uint64_t offset, char *err);
/* The end: the .part is cut to size and hashed (from hs if not NULL,
 * which has seen all of it, else read back); if the hash is the one
 * offered, it takes target's name, or the first of "BASE (n).EXT" that is
 * free (link(2), which never replaces a file), and *final (allocated) is
 * that path. Else the .part goes. The sidecar goes either way, and fd is
 * closed. Returns 0, or -1 with err. */
int file_io_finish(int fd, const char *part, const char *target, uint64_t size,
    const uint8_t hash[FILE_IO_HASH_BYTES], crypto_generichash_state *hs, char **final, char *err);
/* Removes a .part and its sidecar, and a sidecar half replaced by a run
 * that was killed (a cancelled or failed transfer). */
void file_io_remove(const char *part);

#endif
