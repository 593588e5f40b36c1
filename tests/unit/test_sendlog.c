/* test_sendlog.c — the sending journal: the records of the turns since
 * the last clear come back whole and in order at the next start; a cleared
 * journal gives nothing back, and neither does a segment cut or with any
 * byte changed, nor anything after it, nor what an older epoch left past
 * the new segments; a record whose sum is right but whose fields are not
 * is refused; a journal past its bound is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hychat/sendlog.h"
#include "hychat/util.h"

struct fixture {
	char dir[64], path[128];
};

struct seen {
	int n;
	int64_t seq[8];
	char user[8][32];
	char json[8][128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_true(sodium_init() >= 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_sendlog.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, SENDLOG_FILE);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int
keep(const struct sendlog_record *r, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	assert_int_equal(strlen(r->json), r->len);
	s->seq[s->n] = r->seq;
	snprintf(s->user[s->n], sizeof(s->user[0]), "%s", r->user);
	snprintf(s->json[s->n], sizeof(s->json[0]), "%s", r->json);
	s->n++;
	return 0;
}

/* A journal of two turns of a record each, as a killed run leaves it. */
static void
write_two(const char *path)
{
	char *cause = NULL;
	struct sendlog *s = sendlog_open(path, &cause);

	assert_non_null(s);
	assert_int_equal(sendlog_add(s, 41, "bob", "{\"id\":\"a\"}", 10), 0);
	assert_int_equal(sendlog_count(s), 1);
	assert_int_equal(sendlog_write(s, &cause), 0);
	assert_int_equal(sendlog_count(s), 0);
	assert_int_equal(sendlog_add(s, 42, "carol", "{\"id\":\"b\"}", 10), 0);
	assert_int_equal(sendlog_write(s, &cause), 0);
	sendlog_free(s); /* killed: no clear */
}

/* The size of write_two's first segment. */
#define FIRST_SEGMENT (SENDLOG_HEADER_BYTES + 9 + 3 + 4 + 10)

static int
replay_file(const char *path, struct seen *seen)
{
	char *cause = NULL;
	struct sendlog *s = sendlog_open(path, &cause);
	int n;

	assert_non_null(s);
	n = sendlog_replay(s, keep, seen, &cause);
	if (n < 0)
		free(cause);
	sendlog_free(s);
	return n;
}

static void
test_a_killed_turn_comes_back(void **state)
{
	struct fixture *f = *state;
	struct seen seen = { 0 };

	write_two(f->path);
	assert_int_equal(replay_file(f->path, &seen), 2);
	assert_int_equal(seen.seq[0], 41);
	assert_string_equal(seen.user[0], "bob");
	assert_string_equal(seen.json[0], "{\"id\":\"a\"}");
	assert_int_equal(seen.seq[1], 42);
	assert_string_equal(seen.user[1], "carol");
	assert_string_equal(seen.json[1], "{\"id\":\"b\"}");
}

static void
test_a_committed_turn_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct seen seen = { 0 };
	char *cause = NULL;
	struct sendlog *s = sendlog_open(f->path, &cause);

	assert_non_null(s);
	assert_int_equal(sendlog_add(s, 7, "bob", "{}", 2), 0);
	assert_int_equal(sendlog_write(s, &cause), 0);
	assert_int_equal(sendlog_add(s, 8, "bob", "{}", 2), 0);
	assert_int_equal(sendlog_write(s, &cause), 0);
	assert_int_equal(sendlog_clear(s, &cause), 0);
	sendlog_free(s);
	assert_int_equal(replay_file(f->path, &seen), 0);
	assert_int_equal(seen.n, 0);

	/* A turn dropped (it committed first) is not written. */
	s = sendlog_open(f->path, &cause);
	assert_int_equal(sendlog_add(s, 9, "bob", "{}", 2), 0);
	sendlog_drop(s);
	assert_int_equal(sendlog_count(s), 0);
	assert_int_equal(sendlog_write(s, &cause), 0);
	sendlog_free(s);
	assert_int_equal(replay_file(f->path, &seen), 0);
}

/* A run that replayed and cleared a killed run's journal, then wrote one
 * segment of the same size as that run's first: the older run's second
 * segment, right behind it, is of another epoch and is not read. */
static void
test_an_older_epoch_is_not_read(void **state)
{
	struct fixture *f = *state;
	struct seen seen = { 0 };
	char *cause = NULL;
	struct sendlog *s;

	write_two(f->path);
	s = sendlog_open(f->path, &cause);
	assert_int_equal(sendlog_replay(s, keep, &seen, &cause), 2);
	assert_int_equal(sendlog_clear(s, &cause), 0);
	assert_int_equal(sendlog_add(s, 43, "dan", "{\"id\":\"c\"}", 10), 0);
	assert_int_equal(sendlog_write(s, &cause), 0);
	sendlog_free(s);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(replay_file(f->path, &seen), 1);
	assert_string_equal(seen.user[0], "dan");
	assert_int_equal(seen.seq[0], 43);
}

static void
test_a_cut_or_changed_journal_gives_nothing(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	FILE *fp;
	long size;

	write_two(f->path);
	assert_int_equal(stat(f->path, &st), 0);
	size = (long)st.st_size;
	/* Every byte changed in turn: the segment it is in, and what
	 * follows, gives nothing; what precedes it comes back. */
	for (long at = 0; at < size; at++) {
		struct seen seen = { 0 };
		int c;

		write_two(f->path);
		fp = fopen(f->path, "r+b");
		assert_non_null(fp);
		fseek(fp, at, SEEK_SET);
		c = fgetc(fp);
		fseek(fp, at, SEEK_SET);
		fputc(c ^ 0x20, fp);
		fclose(fp);
		assert_int_equal(replay_file(f->path, &seen), at < FIRST_SEGMENT ? 0 : 1);
		if (seen.n == 1)
			assert_string_equal(seen.user[0], "bob");
	}
	/* Cut at every length: the whole segments before the cut. */
	for (long len = 0; len < size; len++) {
		struct seen seen = { 0 };

		write_two(f->path);
		assert_int_equal(truncate(f->path, len), 0);
		assert_int_equal(replay_file(f->path, &seen), len < FIRST_SEGMENT ? 0 : 1);
	}
}

/* Records with the right sum and wrong fields (only a writer with a bug
 * makes them): refused, and nothing is read past them. */
static void
test_a_malformed_record_is_refused(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[40];
		size_t len;
		uint32_t count;
	} bad[] = {
		{ "a seq cut short", { 1, 2, 3 }, 3, 1 },
		{ "an empty name", { 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, '{', '}' }, 15, 1 },
		{ "a bad name", { 1, 0, 0, 0, 0, 0, 0, 0, 2, 'a', ' ', 2, 0, 0, 0, '{', '}' }, 17,
		    1 },
		{ "a name past the end", { 1, 0, 0, 0, 0, 0, 0, 0, 9, 'a', 'b' }, 11, 1 },
		{ "an empty message", { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0 }, 14, 1 },
		{ "a message past the end", { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 9, 0, 0, 0, '{' }, 15,
		    1 },
		{ "a NUL in the message", { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 2, 0, 0, 0, '{', 0 },
		    16, 1 },
		{ "a count that is wrong", { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 2, 0, 0, 0, '{', '}' },
		    16, 2 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t data[SENDLOG_HEADER_BYTES + 40];
		struct seen seen = { 0 };

		sendlog_header(data, 1, bad[i].bytes, (uint32_t)bad[i].len, bad[i].count);
		memcpy(data + SENDLOG_HEADER_BYTES, bad[i].bytes, bad[i].len);
		print_message("%s\n", bad[i].what);
		assert_int_equal(
		    sendlog_parse(data, SENDLOG_HEADER_BYTES + bad[i].len, keep, &seen), -1);
	}
}

static void
test_a_turn_too_big_is_refused(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL, name[300];
	struct sendlog *s = sendlog_open(f->path, &cause);
	size_t big = 1024 * 1024;
	char *json = malloc(big);

	assert_non_null(s);
	memset(json, 'x', big);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(sendlog_add(s, 1, name, "{}", 2), -1); /* a name over 255 bytes */
	assert_int_equal(sendlog_add(s, 1, "bob", json, 0), -1);
	/* The bound counts what earlier turns wrote since the last clear. */
	for (int i = 0; i < 7; i++) {
		assert_int_equal(sendlog_add(s, i, "bob", json, big), 0);
		assert_int_equal(sendlog_write(s, &cause), 0);
	}
	assert_int_equal(sendlog_add(s, 8, "bob", json, big), -1);
	sendlog_drop(s);
	assert_int_equal(sendlog_clear(s, &cause), 0);
	assert_int_equal(sendlog_add(s, 8, "bob", json, big), 0);
	assert_int_equal(sendlog_count(s), 1);
	sendlog_drop(s);
	free(json);
	sendlog_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_killed_turn_comes_back, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_committed_turn_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_older_epoch_is_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_cut_or_changed_journal_gives_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_malformed_record_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_turn_too_big_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
