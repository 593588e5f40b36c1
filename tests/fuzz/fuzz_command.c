/* fuzz_command.c — libFuzzer target for the command language's parser,
 * command_parse(), which is a pure function of the line. command_run()
 * is not fuzzed: it calls an engine, which needs a loop, a data
 * directory and a bound port.
 *
 * The input is a stream of lines, as a front end reads them. An input
 * starting with byte 0x01 is instead repeated into one line of about
 * COMMAND_LINE_MAX bytes, to try the length limit. Each line goes
 * through command_label() first, as command_run() does with a front
 * end's "@label=VALUE " prefix.
 *
 * Checks, besides the sanitizers: a parsed call names a command of the
 * table with an argument count it allows, every argument is a non-empty
 * string inside the call's copy of the line, without blanks unless it
 * takes the rest of the line; a refused line says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/command.h"
#include "hychat/util.h"

#define FUZZ_LONG_MARK 0x01
#define FUZZ_LONG_SPREAD 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CONTEXT "#general" /* a front end's current conversation */

/* linelen: the line's length without its line end; the parser cuts its
 * copy into NUL-terminated arguments. */
static void
check_call(const struct command_call *call, size_t linelen)
{
	const struct command *c = call->cmd;
	size_t count;
	const struct command *table = command_table(&count);

	if (c < table || c >= table + count || call->argc < c->min_args ||
	    call->argc > c->max_args || call->argc > COMMAND_MAX_ARGS)
		abort();
	if (command_find(c->name, strlen(c->name)) != c)
		abort();
	for (int i = 0; i < call->argc; i++) {
		const char *a = call->argv[i];
		size_t len = strlen(a);
		if (i == 0 && a == call->dflt) /* the caller's conversation (COMMAND_CONV) */
			continue;
		if (len == 0 || a < call->line || a + len > call->line + linelen)
			abort();
		int rest = (c->flags & COMMAND_REST) && i == c->max_args - 1;
		if (!rest && (memchr(a, ' ', len) != NULL || memchr(a, '\t', len) != NULL))
			abort();
		if (a[0] == ' ' || a[0] == '\t')
			abort();
	}
}

/* The label first, as command_run() splits it off: a label of 1 to
 * EVENT_LABEL_MAX bytes of EVENT_LABEL_CHARS, and the rest inside line;
 * or a refusal that says why. */
static const char *
split_label(const char *line)
{
	char label[EVENT_LABEL_MAX + 1], err[COMMAND_ERR_MAX];
	const char *rest;

	memset(err, 0, sizeof(err));
	rest = command_label(line, label, err);
	if (rest == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return NULL;
	}
	if (rest < line || rest > line + strlen(line) ||
	    strspn(label, EVENT_LABEL_CHARS) != strlen(label))
		abort();
	return rest;
}

static void
parse_line(const char *line)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX];

	if ((line = split_label(line)) == NULL)
		return;
	size_t linelen = strlen(line);
	while (linelen > 0 && (line[linelen - 1] == '\n' || line[linelen - 1] == '\r'))
		linelen--;
	memset(err, 0, sizeof(err));
	int rc = command_parse(line, &call, err);
	if (rc == 0) {
		check_call(&call, linelen);
		command_call_fini(&call);
	} else if (rc < 0) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL || call.line != NULL)
			abort();
	} else if (rc != 1 || call.line != NULL) {
		abort();
	}
	/* As a front end parses it, with a current conversation to fill a
	 * missing first argument. */
	memset(err, 0, sizeof(err));
	rc = command_parse_for(NULL, NULL, FUZZ_CONTEXT, line, &call, err);
	if (rc == 0) {
		if (call.dflt != NULL &&
		    (call.argv[0] != call.dflt || strcmp(call.dflt, FUZZ_CONTEXT) != 0))
			abort();
		check_call(&call, linelen);
		command_call_fini(&call);
	} else if (rc < 0 && (err[0] == '\0' || call.line != NULL)) {
		abort();
	}
	/* the name alone, as completion and /help look it up */
	(void)command_find(line, strnlen(line, 64));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 && data[0] == FUZZ_LONG_MARK) {
		size_t len = COMMAND_LINE_MAX - FUZZ_LONG_SPREAD / 2 + data[1] % FUZZ_LONG_SPREAD;
		const uint8_t *fill = data + 2;
		size_t n = size - 2;
		char *line = xmalloc(len + 1);
		for (size_t i = 0; i < len; i++)
			line[i] = n > 0 ? (char)fill[i % n] : 'x';
		line[len] = '\0';
		parse_line(line);
		free(line);
		return 0;
	}
	for (size_t off = 0; off < size;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = (nl != NULL ? (size_t)(nl - data) + 1 : size) - off;
		/* an exact-size copy, NUL included, so ASan sees any over-read */
		char *line = xmalloc(len + 1);
		memcpy(line, data + off, len);
		line[len] = '\0';
		parse_line(line);
		free(line);
		off += len;
	}
	return 0;
}
