/* http_response.c — the response a handler builds, status reasons and
 * the small error pages. */
#include <stdio.h>
#include <string.h>

#include "hychat/http_server.h"

static const char *const status_reasons[] = {
	[100] = "Continue",
	[101] = "Switching Protocols",
	[200] = "OK",
	[201] = "Created",
	[202] = "Accepted",
	[204] = "No Content",
	[206] = "Partial Content",
	[301] = "Moved Permanently",
	[302] = "Found",
	[303] = "See Other",
	[304] = "Not Modified",
	[307] = "Temporary Redirect",
	[308] = "Permanent Redirect",
	[400] = "Bad Request",
	[401] = "Unauthorized",
	[403] = "Forbidden",
	[404] = "Not Found",
	[405] = "Method Not Allowed",
	[408] = "Request Timeout",
	[409] = "Conflict",
	[411] = "Length Required",
	[413] = "Content Too Large",
	[414] = "URI Too Long",
	[415] = "Unsupported Media Type",
	[417] = "Expectation Failed",
	[421] = "Misdirected Request",
	[429] = "Too Many Requests",
	[431] = "Request Header Fields Too Large",
	[500] = "Internal Server Error",
	[501] = "Not Implemented",
	[502] = "Bad Gateway",
	[503] = "Service Unavailable",
	[504] = "Gateway Timeout",
	[505] = "HTTP Version Not Supported",
};

const char *
http_status_reason(int status)
{
	if (status >= 0 && (size_t)status < sizeof(status_reasons) / sizeof(status_reasons[0]) &&
	    status_reasons[status] != NULL)
		return status_reasons[status];
	return "Unknown";
}

void
http_response_init(struct http_response *res)
{
	memset(res, 0, sizeof(*res));
	res->status = 200;
	buf_init(&res->headers);
	buf_init(&res->body);
}

void
http_response_release_body(struct http_response *res)
{
	if (res->body_ref == NULL)
		return;
	if (res->body_release != NULL)
		res->body_release(res->body_arg);
	res->body_ref = NULL;
	res->body_ref_len = 0;
	res->body_release = NULL;
	res->body_arg = NULL;
}

void
http_response_fini(struct http_response *res)
{
	http_response_release_body(res);
	buf_fini(&res->headers);
	buf_fini(&res->body);
}

void
http_response_reset(struct http_response *res)
{
	http_response_release_body(res);
	res->status = 200;
	res->headers.len = 0;
	res->body.len = 0;
	res->close = 0;
	res->no_body = 0;
	res->deferred = 0;
}

void
http_response_header(struct http_response *res, const char *name, const char *value)
{
	buf_append_str(&res->headers, name);
	buf_append(&res->headers, ": ", 2);
	buf_append_str(&res->headers, value);
	buf_append(&res->headers, "\r\n", 2);
}

void
http_response_headerf(struct http_response *res, const char *name, const char *fmt, ...)
{
	va_list ap;

	buf_append_str(&res->headers, name);
	buf_append(&res->headers, ": ", 2);
	va_start(ap, fmt);
	buf_vprintf(&res->headers, fmt, ap);
	va_end(ap);
	buf_append(&res->headers, "\r\n", 2);
}

void
http_response_text(
    struct http_response *res, int status, const char *type, const char *body, size_t len)
{
	res->status = status;
	http_response_header(res, "Content-Type", type);
	res->body.len = 0;
	buf_append(&res->body, body, len);
}

void
http_response_error(struct http_response *res, int status, const char *message)
{
	const char *reason = http_status_reason(status);

	res->status = status;
	res->body.len = 0;
	http_response_header(res, "Content-Type", "text/html; charset=utf-8");
	buf_printf(&res->body,
	    "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
	    "<body><h1>%d %s</h1>\n",
	    status, reason, status, reason);
	if (message != NULL) {
		buf_append_str(&res->body, "<p>");
		buf_append_html(&res->body, message, strlen(message));
		buf_append_str(&res->body, "</p>\n");
	}
	buf_append_str(&res->body, "</body></html>\n");
}
