/* fuzz_http_parse.c — libFuzzer target for the HTTP parser: request and
 * response heads, the chunked decoder fed in pieces the input chooses,
 * percent-decoding, forms and cookies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request_head req;
	struct http_response_head res;
	const char *p = (const char *)data;

	/* an exact-size copy, so that ASan sees any over-read */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);

	int r = http_parse_request(buf, size, size / 2, &req);
	if (r > 0) {
		for (size_t i = 0; i < req.num_headers; i++) {
			const char *v;
			size_t vl;
			(void)http_header_has_token(
			    req.headers[i].value, req.headers[i].value_len, "close");
			(void)http_cookie_get(
			    req.headers[i].value, req.headers[i].value_len, "s", &v, &vl);
			uint64_t cl;
			(void)http_parse_content_length(
			    req.headers[i].value, req.headers[i].value_len, &cl);
		}
		(void)http_header_find(req.headers, req.num_headers, "host");
		if (req.query != NULL) {
			char out[64];
			(void)http_form_get(req.query, req.query_len, "a", out, sizeof(out));
		}
		char *path = malloc(req.path_len + 1);
		(void)http_percent_decode(path, req.path, req.path_len, 0);
		free(path);
	}
	(void)http_parse_response(buf, size, 0, &res);

	/* the chunked decoder, fed in pieces whose sizes the first byte picks */
	memcpy(buf, data, size);
	struct http_chunked d;
	http_chunked_init(&d);
	size_t step = size ? (size_t)(unsigned char)p[0] % 17 + 1 : 1;
	for (size_t off = 0; off < size;) {
		size_t n = size - off < step ? size - off : step;
		size_t len = n;
		ssize_t cr = http_chunked_decode(&d, buf + off, &len);
		if (len > n)
			abort();
		if (cr != HTTP_PARSE_INCOMPLETE) {
			if (cr >= 0 && (size_t)cr > n)
				abort();
			break;
		}
		off += n;
	}
	free(buf);
	return 0;
}
