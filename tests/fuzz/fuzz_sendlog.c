/* fuzz_sendlog.c — libFuzzer target for the sending journal's parser. The
 * input is parsed twice: as a whole journal (whose sums a fuzzer can
 * hardly forge, so this mostly tries the headers), and as the records of
 * a segment whose header is made for them, so that every record path runs.
 * Beside not crashing: each record told has a valid name and a message of
 * the length it says, with no NUL; the count returned is the records told. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hychat/sendlog.h"
#include "hychat/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
check(const struct sendlog_record *r, void *arg)
{
	int *n = arg;

	if (!hy_name_valid(r->user, strlen(r->user)) || strlen(r->json) != r->len || r->len == 0)
		abort();
	(*n)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy, *framed;
	int told = 0, rc;

	if (sodium_init() < 0)
		abort();
	copy = malloc(size > 0 ? size : 1);
	memcpy(copy, data, size);
	rc = sendlog_parse(copy, size, check, &told);
	if (rc > 0 && rc != told)
		abort();
	free(copy);

	told = 0;
	framed = malloc(SENDLOG_HEADER_BYTES + size);
	memcpy(framed + SENDLOG_HEADER_BYTES, data, size);
	/* The count: the first byte's value, so that both a right and a wrong
	 * count are tried. */
	sendlog_header(
	    framed, 1, framed + SENDLOG_HEADER_BYTES, (uint32_t)size, size > 0 ? data[0] % 4 : 0);
	rc = sendlog_parse(framed, SENDLOG_HEADER_BYTES + size, check, &told);
	if (rc > 0 && rc != told)
		abort();
	free(framed);
	return 0;
}
