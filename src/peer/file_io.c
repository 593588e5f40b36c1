/* file_io.c — the blocking disk work of file transfers, for the thread
 * pool: hashing a file to send, creating, syncing and finishing a .part
 * with its sidecar. */
#include "hychat/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sodium.h>

#include "hychat/file_name.h"
#include "hychat/util.h"

#define SIDECAR_MAGIC "hychat-part 1"
#define SIDECAR_MAX 256

static int
fail(char *err, const char *what, const char *path)
{
	snprintf(err, FILE_IO_ERR_MAX, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

int
file_io_hash(const char *path, struct file_io_stat *st, char *err)
{
	crypto_generichash_state hs;
	uint8_t *block;
	struct stat sb;
	uint64_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, "cannot open", path);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		if (errno == 0 || S_ISREG(sb.st_mode) == 0)
			snprintf(err, FILE_IO_ERR_MAX, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	st->size = (uint64_t)sb.st_size;
	st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	block = xmalloc(FILE_IO_BLOCK);
	crypto_generichash_init(&hs, NULL, 0, FILE_IO_HASH_BYTES);
	while (off < st->size) {
		ssize_t n = pread(fd, block, FILE_IO_BLOCK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, FILE_IO_ERR_MAX, "%s: %s", path,
			    n == 0 ? "shorter than its size" : strerror(errno));
			free(block);
			close(fd);
			return -1;
		}
		crypto_generichash_update(&hs, block, (size_t)n);
		off += (uint64_t)n;
	}
	crypto_generichash_final(&hs, st->hash, FILE_IO_HASH_BYTES);
	free(block);
	return fd;
}

int
file_io_read(int fd, uint64_t off, uint8_t *out, size_t len, char *err)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, out + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, FILE_IO_ERR_MAX, "cannot read the file: %s",
			    n == 0 ? "it became shorter" : strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

char *
file_io_download_dir(void)
{
	const char *xdg = getenv("XDG_DOWNLOAD_DIR"), *home = getenv("HOME");
	struct buf b;

	buf_init(&b);
	if (xdg != NULL && xdg[0] == '/')
		buf_printf(&b, "%s/hychat", xdg);
	else if (home != NULL && home[0] == '/')
		buf_printf(&b, "%s/Downloads/hychat", home);
	return b.data;
}

int
file_io_mkdirs(const char *dir, char *err)
{
	char *d = xstrdup(dir);
	int rc = 0;

	for (char *p = d + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(d, FILE_IO_DIR_MODE) < 0 && errno != EEXIST) {
			rc = fail(err, "cannot make", d);
			break;
		}
		if ((*p = c) == '\0')
			break;
	}
	free(d);
	return rc;
}

static char *
sidecar_path(const char *part)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s%s", part, FILE_IO_SIDECAR);
	return b.data;
}

static int
write_sidecar(const char *part, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], uint64_t offset, char *err)
{
	char hex[2 * FILE_IO_HASH_BYTES + 1], text[SIDECAR_MAX];
	char *side = sidecar_path(part);
	struct buf tmp;
	int fd, n, rc = -1;

	sodium_bin2hex(hex, sizeof(hex), hash, FILE_IO_HASH_BYTES);
	n = snprintf(text, sizeof(text), "%s %s %" PRIu64 " %s %" PRIu64 "\n", SIDECAR_MAGIC, id,
	    size, hex, offset);
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp", side);
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_IO_FILE_MODE);
	if (fd < 0) {
		fail(err, "cannot write", tmp.data);
	} else if (write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
		fail(err, "cannot write", tmp.data);
		close(fd);
		unlink(tmp.data);
	} else if (close(fd) < 0 || rename(tmp.data, side) < 0) {
		fail(err, "cannot write", side);
		unlink(tmp.data);
	} else {
		rc = 0;
	}
	buf_fini(&tmp);
	free(side);
	return rc;
}

/* The sidecar's offset, if it is this transfer's; 0 otherwise. */
static uint64_t
read_sidecar(
    const char *part, uint64_t size, const char *id, const uint8_t hash[FILE_IO_HASH_BYTES])
{
	char hex[2 * FILE_IO_HASH_BYTES + 1], want[SIDECAR_MAX], text[SIDECAR_MAX];
	char *side = sidecar_path(part);
	int fd = open(side, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
	uint64_t off = 0;
	int w;

	if (fd >= 0)
		close(fd);
	free(side);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	sodium_bin2hex(hex, sizeof(hex), hash, FILE_IO_HASH_BYTES);
	w = snprintf(want, sizeof(want), "%s %s %" PRIu64 " %s ", SIDECAR_MAGIC, id, size, hex);
	if (w < 0 || (size_t)w >= sizeof(want) || strncmp(text, want, (size_t)w) != 0 ||
	    sscanf(text + w, "%" SCNu64, &off) != 1 || off > size)
		return 0;
	return off;
}

/* dir/name for target's n-th candidate (its last component numbered). */
static int
candidate(const char *target, unsigned n, const char *suffix, struct buf *out)
{
	const char *slash = strrchr(target, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - target + 1) : 0;
	char name[FILE_NAME_MAX + 64];

	if (file_name_candidate(target + dlen, n, name, sizeof(name)) < 0)
		return -1;
	out->len = 0;
	buf_printf(out, "%.*s%s%s", (int)dlen, target, name, suffix);
	return 0;
}

int
file_io_part_create(const char *target, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], char **part, char *err)
{
	const char *slash = strrchr(target, '/');
	char *dir = slash != NULL ? xstrndup(target, (size_t)(slash - target + 1)) : xstrdup(".");
	struct statvfs vfs;
	struct buf p;
	int fd = -1;

	if (statvfs(dir, &vfs) < 0) {
		fail(err, "cannot look at", dir);
		free(dir);
		return -1;
	}
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < size) {
		snprintf(err, FILE_IO_ERR_MAX,
		    "not enough disk space in %s: %" PRIu64 " bytes needed, %" PRIu64 " free", dir,
		    size, (uint64_t)vfs.f_bavail * vfs.f_frsize);
		free(dir);
		return -1;
	}
	free(dir);
	buf_init(&p);
	for (unsigned n = 0; n < FILE_NAME_TRIES && fd < 0; n++) {
		char *side;
		struct stat sb;
		if (candidate(target, n, FILE_IO_PART, &p) < 0)
			break;
		side = sidecar_path(p.data);
		/* A stale sidecar of another transfer also takes the name. */
		if (lstat(side, &sb) == 0) {
			free(side);
			continue;
		}
		free(side);
		fd = open(p.data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, FILE_IO_FILE_MODE);
		if (fd < 0 && errno != EEXIST) {
			fail(err, "cannot create", p.data);
			buf_fini(&p);
			return -1;
		}
	}
	if (fd < 0) {
		snprintf(err, FILE_IO_ERR_MAX, "no free name for %s", target);
		buf_fini(&p);
		return -1;
	}
	if (write_sidecar(p.data, size, id, hash, 0, err) < 0) {
		close(fd);
		unlink(p.data);
		buf_fini(&p);
		return -1;
	}
	*part = p.data;
	return fd;
}

int
file_io_part_open(const char *part, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], uint64_t *offset, char *err)
{
	struct stat sb;
	int fd = open(part, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return fail(err, "cannot open", part);
	*offset = read_sidecar(part, size, id, hash);
	if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size < *offset)
		*offset = 0;
	return fd;
}

int
file_io_write(int fd, uint64_t off, const uint8_t *data, size_t len, char *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, FILE_IO_ERR_MAX, "cannot write: %s",
			    n == 0 ? "no progress" : strerror(errno));
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int
file_io_sync(int fd, const char *part, uint64_t size, const char *id,
    const uint8_t hash[FILE_IO_HASH_BYTES], uint64_t offset, char *err)
{
	if (fdatasync(fd) < 0)
		return fail(err, "cannot sync", part);
	return write_sidecar(part, size, id, hash, offset, err);
}

static int
hash_back(int fd, uint64_t size, uint8_t out[FILE_IO_HASH_BYTES], char *err)
{
	crypto_generichash_state hs;
	uint8_t *block = xmalloc(FILE_IO_BLOCK);
	uint64_t off = 0;

	crypto_generichash_init(&hs, NULL, 0, FILE_IO_HASH_BYTES);
	while (off < size) {
		size_t want = size - off < FILE_IO_BLOCK ? (size_t)(size - off) : FILE_IO_BLOCK;
		if (file_io_read(fd, off, block, want, err) < 0) {
			free(block);
			return -1;
		}
		crypto_generichash_update(&hs, block, want);
		off += want;
	}
	crypto_generichash_final(&hs, out, FILE_IO_HASH_BYTES);
	free(block);
	return 0;
}

int
file_io_finish(int fd, const char *part, const char *target, uint64_t size,
    const uint8_t hash[FILE_IO_HASH_BYTES], crypto_generichash_state *hs, char **final, char *err)
{
	uint8_t got[FILE_IO_HASH_BYTES];
	struct buf name;
	int rc = -1;

	if (ftruncate(fd, (off_t)size) < 0 || fdatasync(fd) < 0) {
		fail(err, "cannot sync", part);
	} else if (hs != NULL) {
		crypto_generichash_final(hs, got, FILE_IO_HASH_BYTES);
		rc = 0;
	} else {
		rc = hash_back(fd, size, got, err);
	}
	close(fd);
	if (rc == 0 && sodium_memcmp(got, hash, FILE_IO_HASH_BYTES) != 0) {
		snprintf(err, FILE_IO_ERR_MAX,
		    "hash mismatch: the file received is not the one offered; removed");
		rc = -1;
	}
	if (rc < 0) {
		file_io_remove(part);
		return -1;
	}
	rc = -1;
	buf_init(&name);
	for (unsigned n = 0; n < FILE_NAME_TRIES; n++) {
		if (candidate(target, n, "", &name) < 0)
			break;
		if (link(part, name.data) == 0) {
			rc = 0;
			break;
		}
		if (errno != EEXIST) {
			fail(err, "cannot make", name.data);
			buf_fini(&name);
			return -1;
		}
	}
	if (rc < 0) {
		snprintf(err, FILE_IO_ERR_MAX, "no free name for %s", target);
		buf_fini(&name);
		return -1;
	}
	file_io_remove(part);
	*final = name.data;
	return 0;
}

void
file_io_remove(const char *part)
{
	char *side = sidecar_path(part);
	struct buf tmp;

	unlink(part);
	unlink(side);
	/* A run killed while it replaced the sidecar left this behind. */
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp", side);
	unlink(tmp.data);
	buf_fini(&tmp);
	free(side);
}
