/* test_file_frame.c — the file transfer frames: each type round-trips,
 * every truncation and every wrong length is refused, a parse never reads
 * past the end (the frame is placed against a PROT_NONE page), and the
 * name check refuses separators, dots, blanks, control characters, bad
 * UTF-8 and long names, while collisions number the name before its
 * extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "hychat/file_frame.h"
#include "hychat/file_name.h"

static const uint8_t tid[FILE_FRAME_ID_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16 };
static uint8_t hash[FILE_FRAME_HASH_BYTES];
static uint8_t chunk[FILE_FRAME_CHUNK_MAX];

/* Parses p[0..n) copied to the very end of a page followed by a
 * PROT_NONE page: any over-read faults. */
static int
parse_guarded(const uint8_t *p, size_t n, struct file_frame *f, const char **err)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (n + page - 1) / page * page + page;
	uint8_t *m =
	    mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rc;

	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + span, page, PROT_NONE), 0);
	memcpy(m + span - n, p, n);
	rc = file_frame_parse(m + span - n, n, f, err);
	if (rc == 0) { /* the views must stay inside: copy them out before unmapping */
		static uint8_t keep[FILE_FRAME_MAX];
		if (f->data != NULL) {
			memcpy(keep, f->data, f->data_len);
			f->data = keep;
		}
		if (f->text != NULL) {
			memcpy(keep, f->text, f->text_len);
			f->text = (const char *)keep;
		}
		if (f->hash != NULL) {
			memcpy(hash, f->hash, sizeof(hash));
			f->hash = hash;
		}
	}
	munmap(m, span + page);
	return rc;
}

static void
put(struct buf *b, enum file_frame_type type, uint64_t off, const void *text, size_t tlen)
{
	struct file_frame f = { .type = type, .offset = off, .hash = hash };

	memcpy(f.id, tid, sizeof(f.id));
	if (type == FILE_CHUNK) {
		f.data = text;
		f.data_len = tlen;
	} else {
		f.text = text;
		f.text_len = tlen;
	}
	b->len = 0;
	assert_int_equal(file_frame_put(b, &f), 0);
}

static void
test_every_type_round_trips(void **state)
{
	struct file_frame f;
	const char *err;
	struct buf b;

	(void)state;
	memset(hash, 0xab, sizeof(hash));
	memset(chunk, 0x5a, sizeof(chunk));
	buf_init(&b);
	put(&b, FILE_OFFER, UINT64_C(5) << 32, "report.pdf", 10);
	assert_true(file_frame_is((uint8_t *)b.data, b.len));
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.type, FILE_OFFER);
	assert_memory_equal(f.id, tid, sizeof(tid));
	assert_true(f.offset == UINT64_C(5) << 32);
	assert_int_equal(f.text_len, 10);
	assert_memory_equal(f.text, "report.pdf", 10);
	put(&b, FILE_ACCEPT, 123456789, NULL, 0);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.type, FILE_ACCEPT);
	assert_true(f.offset == 123456789);
	put(&b, FILE_ACK, 65536, NULL, 0);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_true(f.offset == 65536);
	put(&b, FILE_CANCEL, 0, "the file changed", 16);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.type, FILE_CANCEL);
	assert_memory_equal(f.text, "the file changed", 16);
	put(&b, FILE_REJECT, 0, "", 0);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.text_len, 0);
	put(&b, FILE_CHUNK, 7 * 65536, chunk, sizeof(chunk));
	assert_int_equal(b.len, FILE_FRAME_MAX);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.data_len, sizeof(chunk));
	assert_memory_equal(f.data, chunk, sizeof(chunk));
	put(&b, FILE_DONE, 0, NULL, 0);
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), 0);
	assert_int_equal(f.type, FILE_DONE);
	buf_fini(&b);
}

static void
test_truncated_and_overlong_are_refused(void **state)
{
	struct file_frame f;
	const char *err;
	struct buf b;
	const struct {
		enum file_frame_type type;
		const void *text;
		size_t len;
	} all[] = {
		{ FILE_OFFER, "a.txt", 5 },
		{ FILE_ACCEPT, NULL, 0 },
		{ FILE_ACK, NULL, 0 },
		{ FILE_CANCEL, "why", 3 },
		{ FILE_CHUNK, "data", 4 },
		{ FILE_DONE, NULL, 0 },
	};

	(void)state;
	buf_init(&b);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		put(&b, all[i].type, 1, all[i].text, all[i].len);
		/* A chunk's data runs to the end of the frame (the link's frame
		 * says where): a shorter one with data is a valid chunk. */
		size_t upto = all[i].type == FILE_CHUNK ? FILE_FRAME_HEAD + 9 : b.len;
		for (size_t cut = 0; cut < upto; cut++)
			assert_int_equal(parse_guarded((uint8_t *)b.data, cut, &f, &err), -1);
		buf_append_char(&b, 'x'); /* one byte more: a length disagrees */
		if (all[i].type != FILE_CHUNK)
			assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), -1);
	}
	/* A chunk over FILE_FRAME_CHUNK_MAX, an empty one, an unknown type, a
	 * JSON message. */
	put(&b, FILE_CHUNK, 0, chunk, sizeof(chunk));
	buf_append_char(&b, 'x');
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), -1);
	put(&b, FILE_ACK, 0, NULL, 0);
	b.len = FILE_FRAME_HEAD + 8;
	b.data[1] = FILE_CHUNK;
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), -1);
	b.data[1] = 99;
	assert_int_equal(parse_guarded((uint8_t *)b.data, b.len, &f, &err), -1);
	assert_false(file_frame_is((const uint8_t *)"{\"type\":\"chat\"}", 15));
	/* The builder refuses what the parser would. */
	struct file_frame big = {
		.type = FILE_OFFER, .text = (const char *)chunk, .text_len = 256
	};
	assert_int_equal(file_frame_put(&b, &big), -1);
	big.text_len = 0;
	assert_int_equal(file_frame_put(&b, &big), -1);
	buf_fini(&b);
}

static void
test_names_are_checked(void **state)
{
	static const char *const good[] = { "report.pdf", "a", "Résumé 2026.txt", "日本語.md",
		"with space.tar.gz", "x.y.z", "emoji 😀" };
	static const char *const bad[] = { "", "../../.bashrc", "/etc/passwd", "a/b", "a\\b",
		".bashrc", ".", "..", "tab\there", "esc\x1b[2J", "nl\n", "del\x7f", "c1\xc2\x85",
		"bad\xc3(", "over\xf4\x90\x80\x80", "surrogate\xed\xa0\x80", "overlong\xc0\xaf",
		" lead", "trail ", "trail." };
	const char *err;
	char longname[FILE_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(file_name_check(good[i], strlen(good[i]), &err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (file_name_check(bad[i], strlen(bad[i]), &err) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
	}
	/* NUL inside the name. */
	assert_int_equal(file_name_check("a\0b", 3, &err), -1);
	memset(longname, 'n', sizeof(longname));
	assert_int_equal(file_name_check(longname, FILE_NAME_MAX, &err), 0);
	assert_int_equal(file_name_check(longname, FILE_NAME_MAX + 1, &err), -1);
}

static void
test_collisions_number_before_the_extension(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(file_name_candidate("note.txt", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "note.txt");
	assert_int_equal(file_name_candidate("note.txt", 1, out, sizeof(out)), 0);
	assert_string_equal(out, "note (1).txt");
	assert_int_equal(file_name_candidate("a.tar.gz", 12, out, sizeof(out)), 0);
	assert_string_equal(out, "a.tar (12).gz");
	assert_int_equal(file_name_candidate("README", 2, out, sizeof(out)), 0);
	assert_string_equal(out, "README (2)");
	assert_int_equal(file_name_candidate("note.txt", 1, out, 8), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_round_trips),
		cmocka_unit_test(test_truncated_and_overlong_are_refused),
		cmocka_unit_test(test_names_are_checked),
		cmocka_unit_test(test_collisions_number_before_the_extension),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
