/* fuzz_noise.c — libFuzzer target for the Noise XX handshake: the
 * messages a listener (responder) or a dialer (initiator) reads from the
 * network, and a whole handshake between two honest sides whose payloads
 * the input picks and one of whose bytes it may alter. Every key is fixed
 * (noise_handshake_new_keys), so runs are deterministic.
 *
 * Input: the first byte picks the mode; the rest holds up to three
 * messages, each as a 2-byte big-endian length and its bytes (the last
 * may run to the end of the input).
 *
 * Checks, besides the sanitizers: an honest handshake always completes,
 * with the same hash and transport keys on both sides and each side
 * knowing the other's key; an altered byte always makes it fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/noise.h"
#include "hychat/p2p_frame.h"

#define FUZZ_MAX_PARTS 3

enum {
	MODE_RESPONDER,
	MODE_INITIATOR,
	MODE_HONEST,
	MODE_COUNT
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed keys: s_* static secrets, e_* ephemeral secrets. */
static const uint8_t s_init[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t e_init[32] = { 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
	49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64 };
static const uint8_t s_resp[32] = { 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80,
	81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96 };
static const uint8_t e_resp[32] = { 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
	110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
	128 };

struct part {
	const uint8_t *p;
	size_t len;
};

/* Splits the input into length-prefixed parts; returns how many. */
static size_t
split(const uint8_t *data, size_t size, struct part parts[FUZZ_MAX_PARTS])
{
	size_t n = 0;

	while (n < FUZZ_MAX_PARTS && size >= 2) {
		size_t len = (size_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
		if (len > size || n == FUZZ_MAX_PARTS - 1)
			len = size;
		parts[n].p = data;
		parts[n].len = len;
		n++;
		data += len;
		size -= len;
	}
	return n;
}

static struct noise_handshake *
side(int initiator)
{
	return noise_handshake_new_keys(initiator ? s_init : s_resp, initiator ? e_init : e_resp,
	    initiator, (const uint8_t *)NOISE_PROLOGUE, sizeof(NOISE_PROLOGUE) - 1);
}

/* Reads a message from an exact-size copy, so that ASan sees any read
 * past its end. */
static int
read_msg(struct noise_handshake *hs, const struct part *m, struct buf *payload)
{
	uint8_t *copy = xmalloc(m->len ? m->len : 1);
	memcpy(copy, m->p, m->len);
	int rc = noise_handshake_read(hs, copy, m->len, payload);
	free(copy);
	return rc;
}

/* Once a side is through, its transport must work. */
static void
use_transport(struct noise_handshake *hs)
{
	uint8_t key[32];
	struct p2p_frame_state *fs = noise_handshake_split(hs);
	struct buf out;

	if (fs == NULL || noise_handshake_remote_key(hs, key) < 0)
		abort();
	buf_init(&out);
	if (p2p_frame_seal(fs, (const uint8_t *)"{}", 2, &out) < 0)
		abort();
	buf_fini(&out);
	p2p_frame_state_free(fs);
}

/* A listener reads message 1 and message 3 from the network. */
static void
mode_responder(const struct part *parts, size_t n)
{
	struct noise_handshake *r = side(0);
	struct buf payload, out;

	buf_init(&payload);
	buf_init(&out);
	for (size_t i = 0; i < n; i++) {
		if (read_msg(r, &parts[i], &payload) < 0) {
			/* a failed handshake refuses everything after */
			if (noise_handshake_read(r, parts[i].p, parts[i].len, &payload) == 0 ||
			    noise_handshake_split(r) != NULL)
				abort();
			break;
		}
		if (noise_handshake_done(r)) {
			use_transport(r);
			break;
		}
		if (noise_handshake_write(r, (const uint8_t *)payload.data, payload.len, &out) < 0)
			break;
	}
	buf_fini(&out);
	buf_fini(&payload);
	noise_handshake_free(r);
}

/* A dialer sends message 1 and reads message 2 from the network. */
static void
mode_initiator(const struct part *parts, size_t n)
{
	struct noise_handshake *i = side(1);
	struct buf payload, out;

	buf_init(&payload);
	buf_init(&out);
	if (noise_handshake_write(i, NULL, 0, &out) < 0)
		abort();
	if (n > 0 && read_msg(i, &parts[0], &payload) == 0) {
		if (noise_handshake_write(i, (const uint8_t *)payload.data, payload.len, &out) <
		        0 ||
		    !noise_handshake_done(i))
			abort();
		use_transport(i);
	}
	/* a message out of turn is refused */
	if (n > 1 && !noise_handshake_done(i) && read_msg(i, &parts[1], &payload) == 0)
		abort();
	buf_fini(&out);
	buf_fini(&payload);
	noise_handshake_free(i);
}

/* Two honest sides; the input gives the three payloads, then (in the
 * last part's first 3 bytes) a byte to alter: its position in the whole
 * exchange (0: none) and the XOR mask. */
static void
mode_honest(const struct part *parts, size_t n)
{
	struct noise_handshake *hs[2] = { side(1), side(0) };
	struct buf msg, payload;
	size_t pos = 0, tamper = 0;
	uint8_t mask = 0;
	int failed = 0;

	if (n == FUZZ_MAX_PARTS && parts[2].len >= 3) {
		tamper = (size_t)parts[2].p[0] << 8 | parts[2].p[1];
		mask = parts[2].p[2];
	}
	buf_init(&msg);
	buf_init(&payload);
	for (int step = 0; step < 3 && !failed; step++) {
		struct noise_handshake *w = hs[step % 2], *r = hs[(step + 1) % 2];
		const struct part *pl = step < (int)n ? &parts[step] : NULL;
		msg.len = 0;
		payload.len = 0;
		/* only after an altered message 1 (a bad ephemeral key) */
		if (noise_handshake_write_raw(w, pl ? pl->p : NULL, pl ? pl->len : 0, &msg) < 0) {
			failed = 1;
			break;
		}
		int here = mask != 0 && tamper > pos && tamper <= pos + msg.len;
		if (here)
			msg.data[tamper - pos - 1] ^= (char)mask;
		pos += msg.len;
		struct part m = { (const uint8_t *)msg.data, msg.len };
		if (read_msg(r, &m, &payload) < 0) {
			failed = 1;
			break;
		}
		if (!here && pl != NULL &&
		    (payload.len != pl->len ||
		        (pl->len > 0 && memcmp(payload.data, pl->p, pl->len) != 0)))
			abort(); /* a payload arrives as it was sent */
	}
	int altered = mask != 0 && tamper > 0 && tamper <= pos;
	if (failed != altered)
		abort(); /* every byte of every message is bound by the hash */
	if (!failed) {
		uint8_t a1[32], a2[32], b1[32], b2[32], k[32];
		if (memcmp(noise_handshake_hash(hs[0]), noise_handshake_hash(hs[1]),
		        NOISE_HASH_BYTES) != 0 ||
		    noise_handshake_split_keys(hs[0], a1, a2) < 0 ||
		    noise_handshake_split_keys(hs[1], b1, b2) < 0 || memcmp(a1, b1, 32) != 0 ||
		    memcmp(a2, b2, 32) != 0)
			abort();
		if (noise_handshake_remote_key(hs[0], k) < 0)
			abort();
		use_transport(hs[0]);
		use_transport(hs[1]);
	}
	buf_fini(&payload);
	buf_fini(&msg);
	noise_handshake_free(hs[0]);
	noise_handshake_free(hs[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct part parts[FUZZ_MAX_PARTS];
	size_t n;

	if (size < 1)
		return 0;
	n = split(data + 1, size - 1, parts);
	switch (data[0] % MODE_COUNT) {
	case MODE_RESPONDER: mode_responder(parts, n); break;
	case MODE_INITIATOR: mode_initiator(parts, n); break;
	case MODE_HONEST: mode_honest(parts, n); break;
	}
	return 0;
}
