/* fuzz_p2p_frame.c — libFuzzer target for the P2P stream decoder: frames
 * found with p2p_frame_next() and opened with p2p_frame_open() under a
 * fixed key, their bodies parsed as one JSON object each (as p2p_link.c
 * does), and the plaintext protocol's p2p_json_stream_next() fed in
 * pieces of sizes the input picks.
 *
 * The input's first byte picks the mode (below), the second seeds the
 * piece sizes, the third and fourth pick a byte to alter in sealed mode
 * (0: none) and how. The rest is the payload.
 *
 * Checks, besides the sanitizers: unaltered sealed frames all open to
 * what was sealed, an altered one never opens, a lower cap on the frame
 * length (a link before its handshake is done) refuses exactly the frames
 * over it and finds the others alike, and the JSON stream gives the same
 * objects however its input is cut, also when its limit is raised after
 * the first object (a plaintext link going up). Every object parsed is
 * also read as the channel backlog's request and page (backlog_frame.h),
 * as the engine reads them: each field it hands on within its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/backlog_frame.h"
#include "hychat/noise.h"
#include "hychat/p2p_frame.h"

#define FUZZ_HEADER 4
#define FUZZ_SEP 0xff /* splits the payload into plaintexts in sealed mode */
#define FUZZ_MAX_FRAMES 64
#define FUZZ_MAX_OBJECTS 256

enum {
	MODE_WIRE,
	MODE_SEALED,
	MODE_PLAIN,
	MODE_COUNT
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key_a[P2P_FRAME_KEY_BYTES] = { 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8,
	9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28 };
static const uint8_t key_b[P2P_FRAME_KEY_BYTES] = { 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7, 8,
	9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28 };

static void
check_len(const char *s, size_t min, size_t max)
{
	if (s == NULL || strlen(s) < min || strlen(s) > max)
		abort();
}

/* The backlog's two messages, read as engine_backlog.c reads them. */
static void
take_backlog(struct json_object *o)
{
	struct backlog_request r;
	struct backlog_entry en;
	struct json_object *entries;
	char channel[HY_CHANNEL_MAX + 1];
	int64_t next;

	if (backlog_request_parse(o, &r) == 0) {
		check_len(r.channel, 1, HY_CHANNEL_MAX);
		check_len(r.since, 0, BACKLOG_TIME_MAX - 1);
		if (r.after < 0 || r.limit < 1 || r.limit > BACKLOG_LIMIT_MAX)
			abort();
	}
	if (backlog_page_parse(o, channel, &entries, &next) < 0)
		return;
	check_len(channel, 1, HY_CHANNEL_MAX);
	if (json_object_array_length(entries) > BACKLOG_PAGE_MAX || next < 0)
		abort();
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		if (backlog_entry_parse(entries, i, &en) < 0)
			continue;
		check_len(en.id, 1, BACKLOG_ID_MAX);
		check_len(en.from, 1, HY_NAME_MAX);
		check_len(en.time, 1, BACKLOG_TIME_MAX - 1);
		check_len(en.text, 1, BACKLOG_TEXT_MAX);
		check_len(en.sig, 1, 256);
		if (!hy_utf8_valid(en.text, strlen(en.text)))
			abort();
	}
}

/* What p2p_link.c's parse_frame() does with an opened body. */
static void
parse_body(struct json_tokener *tok, const struct buf *plain)
{
	json_tokener_reset(tok);
	struct json_object *o = json_tokener_parse_ex(tok, plain->data, (int)plain->len);
	if (json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == plain->len &&
	    json_object_is_type(o, json_type_object)) {
		(void)json_object_to_json_string(o);
		take_backlog(o);
	}
	json_object_put(o);
}

/* Decodes a wire of frames as the receiver (key_b in, key_a out): returns
 * how many frames opened before the first failure or the end. */
static size_t
take_frames(const uint8_t *wire, size_t n, struct buf *opened)
{
	struct p2p_frame_state *rx = p2p_frame_state_new(key_b, key_a);
	struct json_tokener *tok = json_tokener_new();
	struct buf plain;
	size_t off = 0, count = 0;

	buf_init(&plain);
	for (;;) {
		const uint8_t *frame;
		size_t len, used;
		int rc = p2p_frame_next(wire + off, n - off, P2P_FRAME_MAX, &frame, &len, &used);
		if (rc <= 0)
			break;
		if (used != P2P_FRAME_HEADER + len || used > n - off || frame != wire + off + 4)
			abort();
		off += used;
		plain.len = 0;
		if (p2p_frame_open(rx, frame, len, &plain) < 0)
			break;
		if (plain.len + P2P_FRAME_TAG != len)
			abort();
		parse_body(tok, &plain);
		if (opened != NULL) {
			buf_append(opened, plain.data, plain.len);
			buf_append_char(opened, (char)FUZZ_SEP);
		}
		count++;
	}
	buf_fini(&plain);
	json_tokener_free(tok);
	p2p_frame_state_free(rx);
	return count;
}

/* The frames of wire under cap agree with those under P2P_FRAME_MAX, but
 * for the lengths over cap, refused from their header alone. */
static void
check_cap(const uint8_t *wire, size_t n, size_t cap)
{
	size_t off = 0;

	for (;;) {
		const uint8_t *f1, *f2;
		size_t l1, l2, u1, u2;
		int big = p2p_frame_next(wire + off, n - off, P2P_FRAME_MAX, &f1, &l1, &u1);
		int small = p2p_frame_next(wire + off, n - off, cap, &f2, &l2, &u2);
		if (n - off >= P2P_FRAME_HEADER) {
			size_t claim = (size_t)wire[off] << 24 | (size_t)wire[off + 1] << 16 |
			    (size_t)wire[off + 2] << 8 | wire[off + 3];
			if ((small == -1) != (claim > cap))
				abort();
		}
		if (small != -1 &&
		    (small != big || (big == 1 && (f1 != f2 || l1 != l2 || u1 != u2))))
			abort();
		if (big != 1 || small != 1)
			return;
		off += u1;
	}
}

/* Wire mode: the payload is what arrived on the socket. The copy is of
 * the exact size, so that ASan sees any read past its end. */
static void
mode_wire(const uint8_t *p, size_t n)
{
	uint8_t *wire = xmalloc(n ? n : 1);

	memcpy(wire, p, n);
	(void)take_frames(wire, n, NULL);
	check_cap(wire, n, NOISE_MAX_MESSAGE);
	check_cap(wire, n, n > 0 ? wire[0] : 0);
	free(wire);
}

/* Sealed mode: the payload's pieces are sealed by the sender (key_a out),
 * one byte of the wire is perhaps altered, and the receiver decodes. */
static void
mode_sealed(const uint8_t *p, size_t n, size_t tamper, uint8_t x)
{
	struct p2p_frame_state *tx = p2p_frame_state_new(key_a, key_b);
	struct buf wire, sent, opened;
	size_t frames = 0;

	buf_init(&wire);
	buf_init(&sent);
	buf_init(&opened);
	for (size_t i = 0; i <= n && frames < FUZZ_MAX_FRAMES;) {
		const uint8_t *sep = memchr(p + i, FUZZ_SEP, n - i);
		size_t len = (sep != NULL ? (size_t)(sep - p) : n) - i;
		if (p2p_frame_seal(tx, p + i, len, &wire) < 0)
			abort();
		buf_append(&sent, p + i, len);
		buf_append_char(&sent, (char)FUZZ_SEP);
		frames++;
		i += len + 1;
	}
	int altered = tamper > 0 && x != 0 && tamper <= wire.len;
	if (altered)
		wire.data[tamper - 1] ^= (char)x;
	size_t got = take_frames((const uint8_t *)wire.data, wire.len, &opened);
	if (!altered &&
	    (got != frames || opened.len != sent.len ||
	        memcmp(opened.data, sent.data, sent.len) != 0))
		abort(); /* an honest stream opens whole */
	if (altered && got == frames)
		abort(); /* an altered byte is always caught */
	buf_fini(&opened);
	buf_fini(&sent);
	buf_fini(&wire);
	p2p_frame_state_free(tx);
}

/* Runs the JSON stream over p, given in pieces of sizes from seed (0: all
 * at once), serialising each object into out; raised: the limit, first
 * max, is raised to P2P_FRAME_MAX_PLAIN after the first object. Returns
 * the last result. */
static int
json_stream(const uint8_t *p, size_t n, size_t max, int raised, unsigned seed, struct buf *out)
{
	struct p2p_json_stream *js = p2p_json_stream_new(max);
	struct buf in;
	size_t off = 0, objects = 0;
	int rc = 0;

	buf_init(&in);
	while (rc >= 0 && objects < FUZZ_MAX_OBJECTS) {
		if (off < n) {
			size_t piece = n - off;
			if (seed != 0) {
				seed = seed * 1103515245u + 12345u;
				piece = (seed >> 16) % 64 + 1;
				if (piece > n - off)
					piece = n - off;
			}
			buf_append(&in, p + off, piece);
			off += piece;
		}
		struct json_object *o;
		const char *err = NULL;
		/* take every object the bytes so far hold */
		while ((rc = p2p_json_stream_next(js, &in, &o, &err)) == 1) {
			buf_append_str(out, json_object_to_json_string(o));
			buf_append_char(out, '\n');
			json_object_put(o);
			if (raised)
				p2p_json_stream_raise_max(js, P2P_FRAME_MAX_PLAIN);
			if (++objects == FUZZ_MAX_OBJECTS)
				break;
		}
		if (rc < 0 && (err == NULL || o != NULL))
			abort();
		if (rc == 0 && off == n)
			break;
	}
	buf_fini(&in);
	p2p_json_stream_free(js);
	return rc;
}

static void
mode_plain(const uint8_t *p, size_t n, unsigned seed)
{
	struct buf whole, pieces;
	/* small limits too, so that "too large" is reached */
	size_t max = seed % 2 ? 64 + seed * 4 : P2P_FRAME_MAX_PLAIN;
	int raised = seed % 4 == 1;

	buf_init(&whole);
	buf_init(&pieces);
	int a = json_stream(p, n, max, raised, 0, &whole);
	int b = json_stream(p, n, max, raised, seed | 1, &pieces);
	if (a != b || whole.len != pieces.len ||
	    (whole.len > 0 && memcmp(whole.data, pieces.data, whole.len) != 0))
		abort(); /* the objects must not depend on how TCP cut the bytes */
	buf_fini(&pieces);
	buf_fini(&whole);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < FUZZ_HEADER)
		return 0;
	const uint8_t *p = data + FUZZ_HEADER;
	size_t n = size - FUZZ_HEADER;

	switch (data[0] % MODE_COUNT) {
	case MODE_WIRE: mode_wire(p, n); break;
	case MODE_SEALED: mode_sealed(p, n, data[2], data[3]); break;
	case MODE_PLAIN: mode_plain(p, n, data[1]); break;
	}
	return 0;
}
