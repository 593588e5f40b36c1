/* proxy_head.c — rewriting the heads that pass through the proxy: the
 * request's towards the backend, the answer's towards the client. Pure
 * functions, so that a unit test sees every header the proxy drops, adds
 * or keeps.
 */
#include <stdio.h>
#include <string.h>

#include "hychat/proxy_head.h"

/* Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself. */
static const char *const hop_headers[] = {
	"connection",
	"keep-alive",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"content-length",
	"expect",
	"proxy-authorization",
};

static int
is_hop(const char *name, size_t len, const char *conn_value, size_t conn_len)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(hop_headers); i++) {
		if (hy_strieq(name, len, hop_headers[i]))
			return 1;
	}
	/* and whatever the Connection header names */
	if (conn_value != NULL && len < 64) {
		char tok[64];
		memcpy(tok, name, len);
		tok[len] = '\0';
		return http_header_has_token(conn_value, conn_len, tok);
	}
	return 0;
}

int
proxy_head_is_upgrade(const struct http_request *req)
{
	const struct http_header *conn =
	    http_header_find(req->head.headers, req->head.num_headers, "connection");

	return conn != NULL && http_header_has_token(conn->value, conn->value_len, "upgrade") &&
	    http_request_header(req, "Upgrade", NULL) != NULL;
}

/* Expands $host and $remote_addr in a proxy_set_header value. */
static void
expand(struct buf *out, const char *value, const struct http_request *req, const char *remote)
{
	size_t hl = 0;
	const char *host = http_request_header(req, "Host", &hl);

	for (const char *p = value; *p;) {
		if (strncmp(p, "$host", 5) == 0) {
			buf_append(out, host != NULL ? host : "", host != NULL ? hl : 0);
			p += 5;
		} else if (strncmp(p, "$remote_addr", 12) == 0) {
			buf_append_str(out, remote);
			p += 12;
		} else {
			buf_append_char(out, *p++);
		}
	}
}

void
proxy_head_request(struct buf *o, const struct http_request *req, const struct proxy_vhost *v,
    const char *remote, int tls, int upgrade)
{
	const struct http_request_head *h = &req->head;
	const struct http_header *conn = http_header_find(h->headers, h->num_headers, "connection");
	size_t xff_len = 0;
	const char *xff = NULL;

	buf_append(o, h->method, h->method_len);
	buf_append_char(o, ' ');
	buf_append(o, h->target, h->target_len);
	buf_append_str(o, " HTTP/1.1\r\n");
	for (size_t i = 0; i < h->num_headers; i++) {
		const struct http_header *x = &h->headers[i];
		int overridden = 0;
		for (size_t k = 0; k < v->nset; k++)
			overridden |= hy_strieq(x->name, x->name_len, v->set[k].name);
		if (overridden)
			continue;
		if (hy_strieq(x->name, x->name_len, "x-forwarded-for")) {
			xff = x->value;
			xff_len = x->value_len;
			continue;
		}
		if (is_hop(x->name, x->name_len, conn ? conn->value : NULL,
		        conn ? conn->value_len : 0))
			continue;
		buf_append(o, x->name, x->name_len);
		buf_append_str(o, ": ");
		buf_append(o, x->value, x->value_len);
		buf_append_str(o, "\r\n");
	}
	for (size_t k = 0; k < v->nset; k++) {
		buf_append_str(o, v->set[k].name);
		buf_append_str(o, ": ");
		expand(o, v->set[k].value, req, remote);
		buf_append_str(o, "\r\n");
	}
	buf_append_str(o, "X-Forwarded-For: ");
	if (xff != NULL) {
		buf_append(o, xff, xff_len);
		buf_append_str(o, ", ");
	}
	const char *proto = tls ? "https" : "http";
	buf_append_str(o, remote);
	buf_printf(o, "\r\nX-Forwarded-Proto: %s\r\nForwarded: for=", proto);
	int v6 = strchr(remote, ':') != NULL;
	buf_printf(o, v6 ? "\"[%s]\"" : "%s", remote);
	buf_printf(o, ";proto=%s\r\n", proto);
	if (upgrade) {
		size_t ul = 0;
		const char *up = http_request_header(req, "Upgrade", &ul);
		buf_append_str(o, "Connection: Upgrade\r\nUpgrade: ");
		buf_append(o, up, ul);
		buf_append_str(o, "\r\n");
	}
	if (req->chunked)
		buf_append_str(o, "Transfer-Encoding: chunked\r\n");
	else if (req->content_length > 0)
		buf_printf(o, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
	buf_append_str(o, "\r\n");
}

int
proxy_head_response(
    struct buf *out, const struct http_response_head *rh, int head_only, struct proxy_answer *a)
{
	const struct http_header *conn =
	    http_header_find(rh->headers, rh->num_headers, "connection");
	int64_t cl = -1;

	memset(a, 0, sizeof(*a));
	a->keepalive = rh->minor_version >= 1 &&
	    !(conn != NULL && http_header_has_token(conn->value, conn->value_len, "close"));
	for (size_t i = 0; i < rh->num_headers; i++) {
		const struct http_header *x = &rh->headers[i];
		if (hy_strieq(x->name, x->name_len, "transfer-encoding")) {
			a->chunked = http_header_has_token(x->value, x->value_len, "chunked");
			continue;
		}
		if (hy_strieq(x->name, x->name_len, "content-length")) {
			uint64_t v;
			if (http_parse_content_length(x->value, x->value_len, &v) < 0)
				return -1;
			cl = (int64_t)v;
			continue;
		}
		if (rh->status == 101 &&
		    (hy_strieq(x->name, x->name_len, "upgrade") ||
		        hy_strieq(x->name, x->name_len, "connection"))) {
			/* a tunnel keeps the handshake's own headers */
		} else if (is_hop(x->name, x->name_len, conn ? conn->value : NULL,
		               conn ? conn->value_len : 0)) {
			continue;
		}
		buf_append(out, x->name, x->name_len);
		buf_append_str(out, ": ");
		buf_append(out, x->value, x->value_len);
		buf_append_str(out, "\r\n");
	}
	a->no_body = head_only || rh->status == 204 || rh->status == 304 ||
	    (rh->status >= 100 && rh->status < 200);
	if (a->no_body) {
		a->body_left = 0;
	} else if (a->chunked) {
		cl = -1;
	} else if (cl >= 0) {
		a->body_left = (uint64_t)cl;
	} else {
		a->close_delimited = 1;
		a->keepalive = 0;
	}
	int64_t client_len = head_only && cl < 0 ? -1 : cl;
	a->client_len = a->no_body && !head_only ? 0 : client_len;
	return 0;
}
