/* fuzz_webpolicy.c — libFuzzer target for the web bridge's checks of who
 * may have its session: the Host, the Origin against its own Host, the
 * session cookie and the one-time token. The first byte picks the address
 * listened on; the rest is Host, Origin, Cookie and query string, one a
 * line, each copied to a buffer of its own size so that ASan sees any
 * over-read. Beside not crashing: an accepted Origin means an accepted
 * Host, an empty (spent) token or session never matches, and the value
 * just checked is found again when it is the one expected. The last line
 * is also an uploaded file's name, which must come out a plain name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/webpolicy.h"

#define FIELDS 4
#define COOKIE_NAME "hychat_session_19101"
#define SECRET "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const addrs[] = { "127.0.0.1", "0.0.0.0", "::1", "::", "192.0.2.7" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + (size > 0), *end = data + size;
	char *field[FIELDS] = { NULL };
	size_t len[FIELDS] = { 0 };
	struct webpolicy pol;

	if (size == 0)
		return 0;
	if (webpolicy_init(&pol, addrs[data[0] % (sizeof(addrs) / sizeof(addrs[0]))], 19101) < 0)
		abort();
	for (int i = 0; i < FIELDS; i++) {
		const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		const uint8_t *stop = nl != NULL ? nl : end;

		len[i] = (size_t)(stop - p);
		field[i] = malloc(len[i] ? len[i] : 1);
		memcpy(field[i], p, len[i]);
		p = nl != NULL ? nl + 1 : end;
	}

	int host = webpolicy_host_ok(&pol, field[0], len[0]);
	int origin = webpolicy_origin_ok(&pol, field[1], len[1], field[0], len[0]);
	if (origin && !host)
		abort(); /* an Origin is only ever its own accepted Host */

	if (webpolicy_session_ok(field[2], len[2], COOKIE_NAME, ""))
		abort(); /* no session yet matches nothing */
	(void)webpolicy_session_ok(field[2], len[2], COOKIE_NAME, SECRET);
	if (webpolicy_token_ok(field[3], len[3], ""))
		abort(); /* a spent token matches nothing */
	(void)webpolicy_token_ok(field[3], len[3], SECRET);

	/* A printable value without separators, expected, is found. */
	if (len[3] > 0 && len[3] <= WEBPOLICY_TOKEN_MAX) {
		int plain = 1;
		for (size_t i = 0; i < len[3]; i++)
			plain &= (field[3][i] >= '0' && field[3][i] <= '9') ||
			    (field[3][i] >= 'a' && field[3][i] <= 'z');
		if (plain) {
			char want[WEBPOLICY_TOKEN_MAX + 1],
			    query[WEBPOLICY_TOKEN_MAX + sizeof(COOKIE_NAME)];
			memcpy(want, field[3], len[3]);
			want[len[3]] = '\0';
			memcpy(query, "token=", 6);
			memcpy(query + 6, field[3], len[3]);
			if (!webpolicy_token_ok(query, len[3] + 6, want))
				abort();
			/* "NAME=" is as long as sizeof(COOKIE_NAME), NUL included. */
			memcpy(query, COOKIE_NAME "=", sizeof(COOKIE_NAME));
			memcpy(query + sizeof(COOKIE_NAME), field[3], len[3]);
			if (!webpolicy_session_ok(
			        query, len[3] + sizeof(COOKIE_NAME), COOKIE_NAME, want))
				abort();
		}
	}
	/* An uploaded file's name: always a plain name, whatever the bytes. */
	{
		char name[WEBPOLICY_UPLOAD_NAME_MAX + 1];
		size_t n;
		webpolicy_upload_name(field[3], len[3], name);
		n = strlen(name);
		if (n == 0 || n > WEBPOLICY_UPLOAD_NAME_MAX || name[0] == '.' || name[0] == ' ' ||
		    strchr(name, '/') != NULL || strchr(name, '\\') != NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
				abort();
	}
	for (int i = 0; i < FIELDS; i++)
		free(field[i]);
	return 0;
}
