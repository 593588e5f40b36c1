/* fuzz_relay_token.c — libFuzzer target for the relay's token line: the
 * input, copied to a buffer of its own size so that ASan sees any
 * over-read, is parsed whole and in every prefix the first byte picks.
 * Beside not crashing: a prefix never parses to something the whole does
 * not, what is consumed ends with the newline and never passes the input,
 * the parsed names are valid, and a line the parser accepts is only
 * accepted by the check if it is byte for byte one the key signs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hychat/relay_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[RELAY_TOKEN_KEY_BYTES];
	struct relay_token t, u;
	const char *why;
	size_t used = 0, pused = 0, cut;

	if (size < 1)
		return 0;
	if (sodium_init() < 0)
		abort();
	memset(key, 0x5a, sizeof(key));
	cut = data[0] % (size);
	data++;
	size--;
	char *line = malloc(size > 0 ? size : 1);
	memcpy(line, data, size);
	int rc = relay_token_parse(line, size, &t, &used, &why);
	if (rc == 1) {
		if (used == 0 || used > size || line[used - 1] != '\n')
			abort();
		if (!relay_token_name_ok(t.from, strlen(t.from)) ||
		    !relay_token_name_ok(t.to, strlen(t.to)))
			abort();
		char signed_line[RELAY_TOKEN_LINE_MAX];
		if (relay_token_check(&t, line, key, 0) == NULL &&
		    (relay_token_sign(key, t.id, t.expiry, t.from, t.to, signed_line) != 0 ||
		        strncmp(signed_line, line, strlen(signed_line)) != 0))
			abort();
	}
	if (rc < 0 && why == NULL)
		abort();
	/* A prefix: "need more" or the same answer. */
	if (cut <= size) {
		char *pre = malloc(cut > 0 ? cut : 1);
		memcpy(pre, data, cut);
		int prc = relay_token_parse(pre, cut, &u, &pused, &why);
		if (prc == 1 && (rc != 1 || pused != used || memcmp(&t, &u, sizeof(t)) != 0))
			abort();
		if (prc < 0 && rc == 1)
			abort();
		free(pre);
	}
	free(line);
	return 0;
}
