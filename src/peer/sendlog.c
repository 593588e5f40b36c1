/* sendlog.c — the sender's journal (sendlog.h). */
#include "hychat/sendlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "hychat/util.h"

#define MAGIC_BYTES 8
#define EPOCH_AT MAGIC_BYTES
#define LEN_AT (EPOCH_AT + 8)
#define COUNT_AT (LEN_AT + 4)
#define SUM_AT (COUNT_AT + 4)
#define SUM_BYTES 16

struct sendlog {
	int fd;
	struct buf batch; /* the header's room, then the records */
	uint32_t count;
	uint64_t epoch; /* of the segments written since the last clear */
	uint64_t end; /* where the next segment goes */
	int dirty; /* the file may hold a segment that is not cleared */
};

static void
put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void
sendlog_header(uint8_t out[SENDLOG_HEADER_BYTES], uint64_t epoch, const uint8_t *records,
    uint32_t len, uint32_t count)
{
	crypto_generichash_state st;

	memcpy(out, SENDLOG_MAGIC, MAGIC_BYTES);
	put_le(out + EPOCH_AT, epoch, 8);
	put_le(out + LEN_AT, len, 4);
	put_le(out + COUNT_AT, count, 4);
	crypto_generichash_init(&st, NULL, 0, SUM_BYTES);
	crypto_generichash_update(&st, out + EPOCH_AT, SUM_AT - EPOCH_AT);
	crypto_generichash_update(&st, records, len);
	crypto_generichash_final(&st, out + SUM_AT, SUM_BYTES);
}

static int
write_at(int fd, const uint8_t *p, size_t n, uint64_t off, char **cause)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			hy_cause(
			    cause, "sending journal: %s", w < 0 ? strerror(errno) : "short write");
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static uint64_t
new_epoch(void)
{
	uint64_t e;

	randombytes_buf(&e, sizeof(e));
	return e;
}

struct sendlog *
sendlog_open(const char *path, char **cause)
{
	struct sendlog *s;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		hy_cause(cause, "%s: %s", path, strerror(errno));
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->dirty = 1; /* whatever a run before left, until cleared */
	s->epoch = new_epoch();
	buf_init(&s->batch);
	return s;
}

void
sendlog_free(struct sendlog *s)
{
	if (s == NULL)
		return;
	close(s->fd);
	buf_fini(&s->batch);
	free(s);
}

int
sendlog_add(struct sendlog *s, int64_t seq, const char *user, const char *json, size_t len)
{
	size_t ulen = strlen(user);
	uint8_t head[8 + 1];
	uint8_t jlen[4];

	if (ulen == 0 || ulen > 255 || len == 0)
		return -1;
	if (s->batch.len == 0)
		buf_append(
		    &s->batch, (const uint8_t[SENDLOG_HEADER_BYTES]){ 0 }, SENDLOG_HEADER_BYTES);
	if (s->end + s->batch.len + sizeof(head) + ulen + sizeof(jlen) + len > SENDLOG_MAX_BYTES)
		return -1;
	put_le(head, (uint64_t)seq, 8);
	head[8] = (uint8_t)ulen;
	put_le(jlen, len, 4);
	buf_append(&s->batch, head, sizeof(head));
	buf_append(&s->batch, user, ulen);
	buf_append(&s->batch, jlen, sizeof(jlen));
	buf_append(&s->batch, json, len);
	s->count++;
	return 0;
}

size_t
sendlog_count(const struct sendlog *s)
{
	return s->count;
}

void
sendlog_drop(struct sendlog *s)
{
	s->batch.len = 0;
	s->count = 0;
}

int
sendlog_write(struct sendlog *s, char **cause)
{
	uint8_t *p = (uint8_t *)s->batch.data;
	int rc = 0;

	if (s->count == 0)
		return 0;
	sendlog_header(p, s->epoch, p + SENDLOG_HEADER_BYTES,
	    (uint32_t)(s->batch.len - SENDLOG_HEADER_BYTES), s->count);
	s->dirty = 1;
	if (write_at(s->fd, p, s->batch.len, s->end, cause) < 0)
		rc = -1;
	else
		s->end += s->batch.len;
	sendlog_drop(s);
	return rc;
}

int
sendlog_clear(struct sendlog *s, char **cause)
{
	static const uint8_t zeros[SENDLOG_HEADER_BYTES];

	if (!s->dirty)
		return 0;
	if (write_at(s->fd, zeros, sizeof(zeros), 0, cause) < 0)
		return -1;
	s->dirty = 0;
	s->end = 0;
	/* A segment of the old epoch past the new ones is never read. */
	s->epoch = new_epoch();
	return 0;
}

/* The segment at p, of at most len bytes: its records' length and count,
 * or 0 if it is not one of epoch (*epoch set by the first). */
static int
segment(const uint8_t *p, size_t len, uint64_t *epoch, int first, uint32_t *rlen, uint32_t *count)
{
	uint8_t want[SENDLOG_HEADER_BYTES];
	uint64_t e;

	if (len < SENDLOG_HEADER_BYTES || memcmp(p, SENDLOG_MAGIC, MAGIC_BYTES) != 0)
		return 0;
	e = get_le(p + EPOCH_AT, 8);
	*rlen = (uint32_t)get_le(p + LEN_AT, 4);
	*count = (uint32_t)get_le(p + COUNT_AT, 4);
	if ((!first && e != *epoch) || *rlen > len - SENDLOG_HEADER_BYTES ||
	    *rlen > SENDLOG_MAX_BYTES)
		return 0; /* an older epoch's, or cut short */
	sendlog_header(want, e, p + SENDLOG_HEADER_BYTES, *rlen, *count);
	if (!hy_memeq_ct(want + SUM_AT, p + SUM_AT, SUM_BYTES))
		return 0;
	*epoch = e;
	return 1;
}

/* The records of one segment: their number, or -1 if one is malformed. */
static int
records(const uint8_t *p, const uint8_t *end, uint32_t count, sendlog_fn *fn, void *arg, int *stop)
{
	int n = 0;

	while (p < end && !*stop) {
		struct sendlog_record r;
		char user[256];
		size_t ulen, jlen;
		char *json;

		if ((size_t)(end - p) < 9)
			return -1;
		r.seq = (int64_t)get_le(p, 8);
		ulen = p[8];
		p += 9;
		if ((size_t)(end - p) < ulen + 4 || !hy_name_valid((const char *)p, ulen))
			return -1;
		memcpy(user, p, ulen);
		user[ulen] = '\0';
		p += ulen;
		jlen = (size_t)get_le(p, 4);
		p += 4;
		if (jlen == 0 || jlen > (size_t)(end - p) || memchr(p, '\0', jlen) != NULL)
			return -1;
		json = xstrndup((const char *)p, jlen);
		p += jlen;
		r.user = user;
		r.json = json;
		r.len = jlen;
		n++;
		*stop = fn != NULL && fn(&r, arg) != 0;
		free(json);
	}
	if (p == end && (uint32_t)n != count)
		return -1;
	return n;
}

int
sendlog_parse(const uint8_t *data, size_t len, sendlog_fn *fn, void *arg)
{
	uint64_t epoch = 0;
	uint32_t rlen, count;
	size_t off = 0;
	int n = 0, stop = 0;

	while (!stop && segment(data + off, len - off, &epoch, off == 0, &rlen, &count)) {
		const uint8_t *p = data + off + SENDLOG_HEADER_BYTES;
		int k = records(p, p + rlen, count, fn, arg, &stop);

		if (k < 0)
			return -1;
		n += k;
		off += SENDLOG_HEADER_BYTES + rlen;
	}
	return n;
}

int
sendlog_replay(struct sendlog *s, sendlog_fn *fn, void *arg, char **cause)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0, size;
	int n;

	if (fstat(s->fd, &st) < 0) {
		hy_cause(cause, "sending journal: %s", strerror(errno));
		return -1;
	}
	if (st.st_size < SENDLOG_HEADER_BYTES)
		return 0;
	size = (uint64_t)st.st_size > (uint64_t)SENDLOG_MAX_BYTES ? SENDLOG_MAX_BYTES
	                                                          : (size_t)st.st_size;
	data = xmalloc(size);
	while (got < size) {
		ssize_t r = pread(s->fd, data + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	n = sendlog_parse(data, got, fn, arg);
	free(data);
	if (n < 0)
		hy_cause(cause, "sending journal: a malformed record");
	return n;
}
