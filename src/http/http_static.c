/* http_static.c — files under a root directory, safely.
 *
 * The decoded path is split into segments; "..", hidden names and empty
 * roots are refused before the file system is touched, then realpath(3)
 * checks that symlinks do not lead out of the root. Small files live in an
 * in-memory cache, shared by the worker threads under a mutex and checked
 * against the file system at most once per HTTP_STATIC_REVALIDATE_MS, so a
 * hot file costs no system call. Larger files are read on libuv's thread
 * pool in pieces, one piece ahead of the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hychat/http_static.h"
#include "hychat/log.h"

#define STATIC_BUCKETS 256
#define STATIC_CHUNK (64 * 1024)
#define STATIC_INDEX "index.html"
#define STATIC_REF_MIN (16 * 1024) /* bodies this large are written from the cache */

/* A cached file's bytes, shared by the cache and the responses being
 * written from it: a file changed meanwhile gets a new blob. */
struct blob {
	atomic_uint refs;
	size_t len;
	char data[];
};

struct entry {
	struct entry *next;
	char *key;
	uint64_t hash;
	struct blob *blob;
	size_t size;
	time_t mtime;
	ino_t ino;
	const char *mime;
	char etag[48];
	char lastmod[32];
	uint64_t checked_ms;
};

struct http_static {
	char *root;
	size_t root_len;
	pthread_mutex_t lock;
	struct entry *buckets[STATIC_BUCKETS];
	size_t cached_bytes;
};

struct stream {
	struct http_conn *c;
	uv_fs_t req;
	uv_file fd;
	uint64_t off, size;
	char buf[STATIC_CHUNK];
};

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "xml", "application/xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "ico", "image/x-icon" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "mp3", "audio/mpeg" },
	{ "wav", "audio/wav" },
};

const char *
http_static_mime(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *slash = strrchr(name, '/');

	if (dot != NULL && (slash == NULL || dot > slash)) {
		for (size_t i = 0; i < HY_ARRAY_LEN(mime_types); i++) {
			if (hy_strieq(dot + 1, strlen(dot + 1), mime_types[i].ext))
				return mime_types[i].type;
		}
	}
	return HTTP_MIME_UNKNOWN;
}

struct http_static *
http_static_new(const char *root, char **cause)
{
	char real[PATH_MAX];
	struct stat st;

	if (realpath(root, real) == NULL || stat(real, &st) < 0) {
		hy_cause(cause, "%s", strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		hy_cause(cause, "not a directory");
		return NULL;
	}
	struct http_static *s = xcalloc(1, sizeof(*s));
	s->root = xstrdup(real);
	s->root_len = strlen(real);
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void
blob_unref(void *arg)
{
	struct blob *b = arg;

	if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
		free(b);
}

static void
entry_free(struct entry *e)
{
	free(e->key);
	blob_unref(e->blob);
	free(e);
}

static void
cache_clear(struct http_static *s)
{
	for (size_t i = 0; i < STATIC_BUCKETS; i++) {
		struct entry *e, *next;
		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->next;
			entry_free(e);
		}
		s->buckets[i] = NULL;
	}
	s->cached_bytes = 0;
}

void
http_static_free(struct http_static *s)
{
	if (s == NULL)
		return;
	cache_clear(s);
	pthread_mutex_destroy(&s->lock);
	free(s->root);
	free(s);
}

static uint64_t
hash_str(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Builds the relative path from the decoded request path. Returns 0, or
 * the status to answer: ".." and hidden names are never served. */
static int
normalize(const char *path, size_t len, struct buf *rel, int *dir_slash)
{
	size_t i = 0;

	rel->len = 0;
	*dir_slash = len > 0 && path[len - 1] == '/';
	while (i < len) {
		while (i < len && path[i] == '/')
			i++;
		size_t start = i;
		while (i < len && path[i] != '/')
			i++;
		size_t seg = i - start;
		if (seg == 0 || (seg == 1 && path[start] == '.'))
			continue;
		if (seg == 2 && path[start] == '.' && path[start + 1] == '.')
			return 400;
		if (path[start] == '.' || memchr(path + start, '\\', seg) != NULL)
			return 404;
		if (rel->len)
			buf_append_char(rel, '/');
		buf_append(rel, path + start, seg);
	}
	if (rel->data == NULL)
		buf_append(rel, "", 0);
	return 0;
}

static void
entry_stamp(struct entry *e, const struct stat *st)
{
	struct tm tm;

	e->size = (size_t)st->st_size;
	e->mtime = st->st_mtime;
	e->ino = st->st_ino;
	snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
	    (unsigned long long)st->st_size);
	gmtime_r(&st->st_mtime, &tm);
	strftime(e->lastmod, sizeof(e->lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static struct blob *
read_file(const char *path, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct blob *b = xmalloc(sizeof(*b) + size + 1);
	atomic_init(&b->refs, 1);
	b->len = size;
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, b->data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		free(b);
		return NULL;
	}
	return b;
}

/* Resolves rel under the root. Returns 0 with the real path and its stat,
 * or the status to answer. */
static int
resolve(struct http_static *s, const char *rel, char *real, struct stat *st)
{
	char full[PATH_MAX];

	if ((size_t)snprintf(full, sizeof(full), "%s/%s", s->root, rel) >= sizeof(full))
		return 414;
	if (realpath(full, real) == NULL)
		return errno == EACCES ? 403 : 404;
	if (strncmp(real, s->root, s->root_len) != 0 ||
	    (real[s->root_len] != '/' && real[s->root_len] != '\0'))
		return 404; /* a symlink out of the root */
	if (stat(real, st) < 0)
		return 404;
	return 0;
}

static int
not_modified(const struct http_request *req, const char *etag, time_t mtime)
{
	size_t len;
	const char *v = http_request_header(req, "If-None-Match", &len);

	if (v != NULL) {
		size_t el = strlen(etag);
		if (len == 1 && v[0] == '*')
			return 1;
		for (size_t i = 0; i + el <= len; i++) {
			if (memcmp(v + i, etag, el) == 0)
				return 1;
		}
		return 0;
	}
	v = http_request_header(req, "If-Modified-Since", &len);
	if (v != NULL && len < 64) {
		char tmp[64];
		struct tm tm;
		memcpy(tmp, v, len);
		tmp[len] = '\0';
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (end != NULL && *end == '\0' && timegm(&tm) >= mtime)
			return 1;
	}
	return 0;
}

static void
validators(struct http_response *res, const char *mime, const char *etag, const char *lastmod)
{
	if (mime != NULL)
		http_response_header(res, "Content-Type", mime);
	http_response_header(res, "ETag", etag);
	http_response_header(res, "Last-Modified", lastmod);
}

static void stream_read(struct stream *st);

static void
stream_end(struct stream *st)
{
	uv_fs_t req;

	uv_fs_close(NULL, &req, st->fd, NULL);
	uv_fs_req_cleanup(&req);
	http_conn_unref(st->c);
	free(st);
}

static void
stream_drained(struct http_conn *c, void *arg)
{
	struct stream *st = arg;

	if (http_conn_closed(c))
		stream_end(st);
	else
		stream_read(st);
}

static void
stream_read_cb(uv_fs_t *req)
{
	struct stream *st = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	if (http_conn_closed(st->c)) {
		stream_end(st);
		return;
	}
	if (n <= 0) {
		/* the file shrank or failed under us: the length was promised */
		log_warn("static: read failed at offset %llu", (unsigned long long)st->off);
		http_conn_close(st->c, 1);
		stream_end(st);
		return;
	}
	http_conn_write_body(st->c, st->buf, (size_t)n);
	st->off += (uint64_t)n;
	if (st->off >= st->size) {
		http_conn_end_response(st->c);
		stream_end(st);
		return;
	}
	http_conn_on_drain(st->c, stream_drained, st);
}

static void
stream_read(struct stream *st)
{
	uint64_t left = st->size - st->off;
	uv_buf_t b = uv_buf_init(st->buf, (unsigned)(left < STATIC_CHUNK ? left : STATIC_CHUNK));

	st->req.data = st;
	if (uv_fs_read(http_conn_loop(st->c), &st->req, st->fd, &b, 1, (int64_t)st->off,
	        stream_read_cb) < 0) {
		http_conn_close(st->c, 1);
		stream_end(st);
	}
}

static int
serve_large(struct http_request *req, const char *real, const struct stat *sb,
    struct http_response *res, const char *mime)
{
	struct entry tmp;
	int fd = open(real, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		http_request_error(req, res, 403, NULL);
		return 0;
	}
	entry_stamp(&tmp, sb);
	validators(res, mime, tmp.etag, tmp.lastmod);
	if (not_modified(req, tmp.etag, tmp.mtime)) {
		close(fd);
		res->status = 304;
		res->no_body = 1;
		return 0;
	}
	http_conn_write_head(
	    req->conn, 200, res->headers.data, res->headers.len, (int64_t)tmp.size);
	if (req->method == HTTP_HEAD || tmp.size == 0) {
		close(fd);
		http_conn_end_response(req->conn);
		res->deferred = 1;
		return 1;
	}
	struct stream *st = xcalloc(1, sizeof(*st));
	st->c = http_conn_ref(req->conn);
	st->fd = fd;
	st->size = tmp.size;
	res->deferred = 1;
	stream_read(st);
	return 1;
}

/* Finds or (re)loads the cache entry of rel. Called under the lock.
 * Returns the entry, NULL with *status set, or NULL with *large set. */
static struct entry *
cache_get(struct http_static *s, struct http_request *req, struct buf *rel, int dir_slash,
    int *status, struct stat *sb, char *real, struct http_response *res)
{
	uint64_t now = uv_now(http_conn_loop(req->conn));
	uint64_t h = hash_str(rel->data, rel->len);
	struct entry **pp = &s->buckets[h % STATIC_BUCKETS], *e;

	for (e = *pp; e != NULL; pp = &e->next, e = e->next) {
		if (e->hash == h && strcmp(e->key, rel->data) == 0)
			break;
	}
	if (e != NULL && now - e->checked_ms < HTTP_STATIC_REVALIDATE_MS)
		return e;

	*status = resolve(s, rel->data, real, sb);
	if (*status == 0 && S_ISDIR(sb->st_mode)) {
		if (!dir_slash) {
			/* a directory is its index, at a URL that ends in '/' */
			buf_printf(&res->headers, "Location: %.*s/\r\n", (int)req->head.path_len,
			    req->head.path);
			*status = 301;
		} else {
			buf_append_str(rel, rel->len ? "/" STATIC_INDEX : STATIC_INDEX);
			*status = resolve(s, rel->data, real, sb);
			if (*status == 0 && !S_ISREG(sb->st_mode))
				*status = 404;
			if (*status == 0) {
				/* cache the index under the directory's own key too */
				return cache_get(s, req, rel, 0, status, sb, real, res);
			}
		}
	} else if (*status == 0 && !S_ISREG(sb->st_mode)) {
		*status = 404;
	}
	if (*status != 0 || sb->st_size > HTTP_STATIC_CACHE_MAX_FILE) {
		if (e != NULL) {
			*pp = e->next;
			s->cached_bytes -= e->size;
			entry_free(e);
		}
		return NULL;
	}
	if (e != NULL && e->mtime == sb->st_mtime && e->size == (size_t)sb->st_size &&
	    e->ino == sb->st_ino) {
		e->checked_ms = now;
		return e;
	}
	struct blob *blob = read_file(real, (size_t)sb->st_size);
	if (blob == NULL) {
		*status = 403;
		return NULL;
	}
	if (e == NULL) {
		if (s->cached_bytes + (size_t)sb->st_size > HTTP_STATIC_CACHE_MAX_BYTES)
			cache_clear(s);
		e = xcalloc(1, sizeof(*e));
		e->key = xstrndup(rel->data, rel->len);
		e->hash = h;
		e->next = s->buckets[h % STATIC_BUCKETS];
		s->buckets[h % STATIC_BUCKETS] = e;
	} else {
		s->cached_bytes -= e->size;
		blob_unref(e->blob);
	}
	e->blob = blob;
	entry_stamp(e, sb);
	e->mime = http_static_mime(real);
	e->checked_ms = now;
	s->cached_bytes += e->size;
	return e;
}

int
http_static_serve(
    struct http_static *s, struct http_request *req, const char *path, struct http_response *res)
{
	struct buf rel;
	struct stat sb;
	char real[PATH_MAX];
	int dir_slash, status;

	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		http_request_error(req, res, 405, NULL);
		http_response_header(res, "Allow", "GET, HEAD");
		return 0;
	}
	if (path == NULL)
		path = req->path;
	buf_init(&rel);
	status = normalize(path, strlen(path), &rel, &dir_slash);
	if (status != 0) {
		buf_fini(&rel);
		http_request_error(req, res, status, NULL);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	status = 0;
	sb.st_size = 0;
	struct entry *e = cache_get(s, req, &rel, dir_slash, &status, &sb, real, res);
	if (e != NULL) {
		validators(res, e->mime, e->etag, e->lastmod);
		if (not_modified(req, e->etag, e->mtime)) {
			res->status = 304;
			res->no_body = 1;
		} else if (e->size >= STATIC_REF_MIN) {
			res->status = 200;
			atomic_fetch_add(&e->blob->refs, 1);
			res->body_ref = e->blob->data;
			res->body_ref_len = e->size;
			res->body_release = blob_unref;
			res->body_arg = e->blob;
		} else {
			res->status = 200;
			buf_append(&res->body, e->blob->data, e->size);
		}
		pthread_mutex_unlock(&s->lock);
		buf_fini(&rel);
		return 0;
	}
	pthread_mutex_unlock(&s->lock);
	buf_fini(&rel);
	if (status == 301) {
		res->status = 301;
		return 0;
	}
	if (status != 0) {
		http_request_error(req, res, status, NULL);
		return 0;
	}
	return serve_large(req, real, &sb, res, http_static_mime(real));
}
