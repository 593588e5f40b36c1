/* fuzz_http_response.c — libFuzzer target for what the proxy reads from a
 * backend: response heads parsed as they arrive in pieces (resuming at
 * last_len, as proxy.c's up_read does), interim 1xx answers skipped, then
 * the head rewritten for the client (proxy_head_response()), the body
 * framed by Transfer-Encoding or Content-Length and de-chunked.
 *
 * Checks, besides the sanitizers: a resumed parse gives the same answer
 * as a parse from the start, every view lies inside the head, and the
 * rewritten head holds no hop-by-hop header and a consistent framing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/http_parse.h"
#include "hychat/proxy_head.h"
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

/* Names no answer head passed to the client may hold: the proxy states
 * the framing and the connection's fate itself (but a 101 keeps its
 * Upgrade and Connection). */
static const char *const never_passed[] = { "connection:", "keep-alive:", "proxy-connection:",
	"te:", "trailer:", "transfer-encoding:", "upgrade:", "content-length:" };

/* The head the proxy gives the client: "name: value" lines only, none of
 * them hop-by-hop, and a framing that holds together. */
static void
check_answer(
    const struct http_response_head *rh, const struct buf *out, const struct proxy_answer *a)
{
	const char *p = out->data, *end = p != NULL ? p + out->len : p;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL || eol == p || eol[-1] != '\r' ||
		    memchr(p, ':', (size_t)(eol - p)) == NULL)
			abort();
		for (size_t i = 0; i < HY_ARRAY_LEN(never_passed); i++) {
			size_t n = strlen(never_passed[i]);
			int handshake = rh->status == 101 && (i == 0 || i == 6);
			if ((size_t)(eol - p) >= n && hy_strieq(p, n, never_passed[i]) &&
			    !handshake)
				abort();
		}
		p = eol + 1;
	}
	if (a->no_body && (a->body_left != 0 || a->client_len != 0 || a->close_delimited))
		abort();
	if (!a->no_body && a->chunked && (a->client_len != -1 || a->close_delimited))
		abort();
	if (a->close_delimited && (a->keepalive || a->client_len != -1))
		abort();
}

/* The answer head as the proxy rewrites it, then the body after it:
 * chunked in pieces, or a length, or to the end. */
static void
body(const struct http_response_head *rh, const uint8_t *data, size_t size, size_t step)
{
	struct proxy_answer a;
	struct buf out;

	buf_init(&out);
	int ok = proxy_head_response(&out, rh, 0, &a) == 0;
	if (ok)
		check_answer(rh, &out, &a);
	buf_fini(&out);
	if (!ok || !a.chunked || a.no_body || rh->status == 101)
		return; /* a 502, or no chunked body to decode */

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
		if (!interim)
			body(&rh, data, size, step);
		free(head);
		if (!interim)
			break;
	}
	return 0;
}
