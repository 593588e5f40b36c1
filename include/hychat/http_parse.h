/* http_parse.h — the HTTP/1.1 message parser (RFC 9112), pure functions of
 * bytes.
 *
 * No I/O, no allocation: results are views (pointer + length) into the
 * caller's buffer. Each function returns the bytes consumed (> 0), or
 * HTTP_PARSE_INCOMPLETE when more input is needed, or another negative
 * HTTP_PARSE_* code on an error. Callers re-run the head parsers on the
 * whole buffer when more bytes arrive; last_len lets them skip re-scanning
 * what was already seen not to hold the end of the head.
 * Every function accepts any byte sequence and never reads past buf + len.
 */
#ifndef HYCHAT_HTTP_PARSE_H
#define HYCHAT_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS 64

enum http_parse_status {
	HTTP_PARSE_INCOMPLETE = -1, /* need more bytes */
	HTTP_PARSE_BAD = -2, /* malformed: 400 */
	HTTP_PARSE_TOO_MANY_HEADERS = -3, /* over HTTP_MAX_HEADERS: 431 */
	HTTP_PARSE_BAD_VERSION = -4, /* not HTTP/1.x: 505 */
};

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing whitespace removed */
	size_t value_len;
};

struct http_request_head {
	const char *method;
	size_t method_len;
	const char *target; /* the raw request-target */
	size_t target_len;
	const char *path; /* target up to '?' or '#', still percent-encoded */
	size_t path_len;
	const char *query; /* after '?', without it; NULL when absent */
	size_t query_len;
	int minor_version; /* 0 or 1 */
	size_t num_headers;
	struct http_header headers[HTTP_MAX_HEADERS];
};

struct http_response_head {
	int minor_version;
	int status; /* 100..999 */
	const char *reason;
	size_t reason_len;
	size_t num_headers;
	struct http_header headers[HTTP_MAX_HEADERS];
};

/* Parses a request line and header block ending in an empty line. The
 * method must be a token, the target must be free of controls and spaces,
 * header names tokens; obsolete line folding is rejected (RFC 9112 5.2),
 * and so is whitespace between a header name and its colon. A bare LF is
 * accepted as a line end. Empty lines before the request line are skipped. */
int http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request_head *req);

/* The same for a status line and header block (used by the proxy). */
int http_parse_response(
    const char *buf, size_t len, size_t last_len, struct http_response_head *res);

/* Returns the first header with that name (case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_header *h, size_t n, const char *name);

/* True if a comma-separated header value lists token (case-insensitive),
 * as in "Connection: keep-alive, Upgrade". */
int http_header_has_token(const char *value, size_t len, const char *token);

/* Parses a Content-Length value: digits only, no sign, no overflow.
 * Returns 0 and sets *out, or -1. */
int http_parse_content_length(const char *value, size_t len, uint64_t *out);

/* Decoder of the chunked transfer coding, resumable across reads. */
struct http_chunked {
	int state;
	uint64_t remaining; /* bytes left in the current chunk */
	size_t ext_len; /* bytes of chunk extension / trailer seen */
	int hex_digits; /* digits of the chunk size seen */
};

void http_chunked_init(struct http_chunked *d);
/* Decodes buf[0..*len) in place: on return buf[0..*len) holds the payload
 * bytes found. Returns HTTP_PARSE_INCOMPLETE if the body is not finished
 * (all of the input was consumed), HTTP_PARSE_BAD on a framing error, or
 * the number of input bytes that follow the end of the body (the start of
 * the next message, which the caller finds at the end of the input). */
ssize_t http_chunked_decode(struct http_chunked *d, char *buf, size_t *len);

/* Percent-decodes src into dst (room for len bytes). With plus_space, '+'
 * becomes ' ' (form encoding). Returns the decoded length, or -1 on a bad
 * escape or an encoded NUL. dst may equal src. */
ssize_t http_percent_decode(char *dst, const char *src, size_t len, int plus_space);

/* Finds key in an application/x-www-form-urlencoded string or query
 * ("a=1&b=2") and decodes its value into out (size outsz, NUL-terminated).
 * Returns the decoded length, or -1 if absent, malformed or too long. */
ssize_t http_form_get(const char *s, size_t len, const char *key, char *out, size_t outsz);

/* Finds a cookie by name in a Cookie header value ("a=1; b=2"). Returns 0
 * and a view of its value (quotes removed), or -1 if absent. */
int http_cookie_get(
    const char *header, size_t len, const char *name, const char **value, size_t *value_len);

#endif
