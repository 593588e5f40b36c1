/* fuzz_http_response.c — libFuzzer target for what the proxy reads from a
 * backend: response heads parsed as they arrive in pieces (resuming at
 * last_len, as proxy.c's up_read does), interim 1xx answers skipped, then
 * the body framed by Transfer-Encoding or Content-Length and de-chunked.
 *
 * Checks, besides the sanitizers: a resumed parse gives the same answer
 * as a parse from the start, and every view lies inside the head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/http_parse.h"
#include "hychat/util.h"

#define FUZZ_MAX_STEP 31

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_view(const char *p, size_t len, const char *buf, size_t end)
{
	if (len > 0 && (p < buf || p + len > buf + end))
		abort();
}

static void
check_head(const struct http_response_head *rh, const char *buf, int r)
{
	if (rh->status < 100 || rh->status > 999 || rh->minor_version < 0 ||
	    rh->minor_version > 1 || rh->num_headers > HTTP_MAX_HEADERS)
		abort();
	check_view(rh->reason, rh->reason_len, buf, (size_t)r);
	for (size_t i = 0; i < rh->num_headers; i++) {
		const struct http_header *h = &rh->headers[i];
		if (h->name_len == 0 || memchr(h->name, ':', h->name_len) != NULL)
			abort();
		check_view(h->name, h->name_len, buf, (size_t)r);
		check_view(h->value, h->value_len, buf, (size_t)r);
		if (memchr(h->value, '\n', h->value_len) || memchr(h->value, '\r', h->value_len))
			abort();
	}
}

/* The head parser as the proxy drives it: the buffer grows by step bytes
 * at a time. Returns the parse result once it is not "incomplete" (or on
 * all the bytes), with *head the buffer rh points into, to be freed. Each
 * call sees an exact-size copy, so ASan catches a read past its end. */
static int
parse_growing(
    const uint8_t *data, size_t size, size_t step, struct http_response_head *rh, char **head)
{
	size_t n = 0, last_len = 0;

	for (;;) {
		n = size - n < step ? size : n + step;
		char *b = xmalloc(n ? n : 1);
		memcpy(b, data, n);
		int r = http_parse_response(b, n, last_len, rh);
		struct http_response_head again;
		int r0 = http_parse_response(b, n, 0, &again);
		if (r != r0 ||
		    (r > 0 && (rh->status != again.status || rh->num_headers != again.num_headers)))
			abort(); /* resuming must not change the answer */
		if (r > 0) {
			if ((size_t)r > n)
				abort();
			check_head(rh, b, r);
		}
		if (r != HTTP_PARSE_INCOMPLETE || n == size) {
			*head = b;
			return r;
		}
		free(b);
		last_len = n;
	}
}

/* Hop-by-hop, as the proxy decides it: the fixed list or a name the
 * Connection header lists. */
static int
is_hop(const struct http_header *x, const struct http_header *conn)
{
	static const char *const hop[] = { "connection", "keep-alive", "proxy-connection", "te",
		"trailer", "transfer-encoding", "upgrade", "content-length" };
	char tok[64];

	for (size_t i = 0; i < HY_ARRAY_LEN(hop); i++)
		if (hy_strieq(x->name, x->name_len, hop[i]))
			return 1;
	if (conn == NULL || x->name_len >= sizeof(tok))
		return 0;
	memcpy(tok, x->name, x->name_len);
	tok[x->name_len] = '\0';
	return http_header_has_token(conn->value, conn->value_len, tok);
}

/* The body after the head: chunked in pieces, or a length, or to the end. */
static void
body(const struct http_response_head *rh, const uint8_t *data, size_t size, size_t step)
{
	const struct http_header *conn =
	    http_header_find(rh->headers, rh->num_headers, "connection");
	int chunked = 0;
	uint64_t cl = 0;

	for (size_t i = 0; i < rh->num_headers; i++) {
		const struct http_header *x = &rh->headers[i];
		if (hy_strieq(x->name, x->name_len, "transfer-encoding"))
			chunked = http_header_has_token(x->value, x->value_len, "chunked");
		else if (hy_strieq(x->name, x->name_len, "content-length") &&
		    http_parse_content_length(x->value, x->value_len, &cl) < 0)
			return; /* 502 */
		(void)is_hop(x, conn);
	}
	if (!chunked || rh->status == 204 || rh->status == 304 || rh->status < 200)
		return;

	struct http_chunked d;
	char *b = xmalloc(size ? size : 1);
	memcpy(b, data, size);
	http_chunked_init(&d);
	for (size_t off = 0; off < size;) {
		size_t n = size - off < step ? size - off : step, len = n;
		ssize_t r = http_chunked_decode(&d, b + off, &len);
		if (len > n)
			abort();
		if (r != HTTP_PARSE_INCOMPLETE) {
			if (r >= 0 && (size_t)r > n)
				abort();
			break;
		}
		off += n;
	}
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step = size % FUZZ_MAX_STEP + 1;

	while (size > 0) {
		struct http_response_head rh;
		char *head;
		int r = parse_growing(data, size, step, &rh, &head);
		if (r < 0) {
			free(head);
			break;
		}
		data += r;
		size -= (size_t)r;
		/* interim answers: the real one follows on the same bytes */
		int interim = rh.status >= 100 && rh.status < 200 && rh.status != 101;
		if (!interim && rh.status != 101)
			body(&rh, data, size, step);
		free(head);
		if (!interim)
			break;
	}
	return 0;
}
