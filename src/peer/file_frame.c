/* file_frame.c — the file transfer frames: parsing (a pure function of
 * bytes) and building. */
#include "hychat/file_frame.h"

#include <string.h>

#define FILE_FRAME_NAME(e, code, name) [code] = name,
static const char *const type_names[] = { FILE_FRAME_TYPES(FILE_FRAME_NAME) };
#undef FILE_FRAME_NAME

const char *
file_frame_type_name(int type)
{
	if (type <= 0 || (size_t)type >= HY_ARRAY_LEN(type_names) || type_names[type] == NULL)
		return "?";
	return type_names[type];
}

int
file_frame_is(const uint8_t *p, size_t n)
{
	return n > 0 && p[0] == FILE_FRAME_MAGIC;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_u64(struct buf *out, uint64_t v)
{
	uint8_t b[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	buf_append(out, b, sizeof(b));
}

static void
put_u16(struct buf *out, size_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	buf_append(out, b, sizeof(b));
}

/* A length-prefixed text at p[0..n) that must end the frame. */
static int
get_text(const uint8_t *p, size_t n, size_t max, struct file_frame *f)
{
	size_t len;

	if (n < 2)
		return -1;
	len = (size_t)p[0] << 8 | p[1];
	if (len > max || len != n - 2)
		return -1;
	f->text = (const char *)p + 2;
	f->text_len = len;
	return 0;
}

int
file_frame_parse(const uint8_t *p, size_t n, struct file_frame *f, const char **err)
{
	const uint8_t *body;
	size_t left;

	memset(f, 0, sizeof(*f));
	if (n < FILE_FRAME_HEAD || p[0] != FILE_FRAME_MAGIC) {
		*err = "file frame too short";
		return -1;
	}
	f->type = p[1];
	memcpy(f->id, p + 2, FILE_FRAME_ID_BYTES);
	body = p + FILE_FRAME_HEAD;
	left = n - FILE_FRAME_HEAD;
	switch (p[1]) {
	case FILE_OFFER:
		if (left < 8 + FILE_FRAME_HASH_BYTES + 2)
			break;
		f->offset = get_u64(body);
		f->hash = body + 8;
		if (get_text(body + 8 + FILE_FRAME_HASH_BYTES, left - 8 - FILE_FRAME_HASH_BYTES,
		        FILE_FRAME_NAME_MAX, f) < 0 ||
		    f->text_len == 0)
			break;
		return 0;
	case FILE_ACCEPT:
	case FILE_ACK:
		if (left != 8)
			break;
		f->offset = get_u64(body);
		return 0;
	case FILE_REJECT:
	case FILE_CANCEL:
		if (get_text(body, left, FILE_FRAME_REASON_MAX, f) < 0)
			break;
		return 0;
	case FILE_CHUNK:
		if (left <= 8 || left - 8 > FILE_FRAME_CHUNK_MAX)
			break;
		f->offset = get_u64(body);
		f->data = body + 8;
		f->data_len = left - 8;
		return 0;
	case FILE_DONE:
		if (left != 0)
			break;
		return 0;
	default: *err = "unknown file frame type"; return -1;
	}
	*err = "malformed file frame";
	return -1;
}

int
file_frame_put(struct buf *out, const struct file_frame *f)
{
	uint8_t head[2] = { FILE_FRAME_MAGIC, (uint8_t)f->type };

	switch (f->type) {
	case FILE_OFFER:
		if (f->text_len == 0 || f->text_len > FILE_FRAME_NAME_MAX)
			return -1;
		break;
	case FILE_REJECT:
	case FILE_CANCEL:
		if (f->text_len > FILE_FRAME_REASON_MAX)
			return -1;
		break;
	case FILE_CHUNK:
		if (f->data_len == 0 || f->data_len > FILE_FRAME_CHUNK_MAX)
			return -1;
		break;
	default: break;
	}
	buf_append(out, head, sizeof(head));
	buf_append(out, f->id, FILE_FRAME_ID_BYTES);
	switch (f->type) {
	case FILE_OFFER:
		put_u64(out, f->offset);
		buf_append(out, f->hash, FILE_FRAME_HASH_BYTES);
		put_u16(out, f->text_len);
		buf_append(out, f->text, f->text_len);
		break;
	case FILE_ACCEPT:
	case FILE_ACK: put_u64(out, f->offset); break;
	case FILE_REJECT:
	case FILE_CANCEL:
		put_u16(out, f->text_len);
		buf_append(out, f->text, f->text_len);
		break;
	case FILE_CHUNK:
		put_u64(out, f->offset);
		buf_append(out, f->data, f->data_len);
		break;
	case FILE_DONE: break;
	}
	return 0;
}
