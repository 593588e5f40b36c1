/* http_request.c — reading a parsed request: headers, cookies, path
 * parameters. */
#include <string.h>

#include "http_internal.h"

const char *
http_request_header(const struct http_request *req, const char *name, size_t *len)
{
	const struct http_header *h =
	    http_header_find(req->head.headers, req->head.num_headers, name);

	if (h == NULL)
		return NULL;
	if (len != NULL)
		*len = h->value_len;
	return h->value;
}

ssize_t
http_request_cookie(const struct http_request *req, const char *name, char *out, size_t outsz)
{
	for (size_t i = 0; i < req->head.num_headers; i++) {
		const struct http_header *h = &req->head.headers[i];
		const char *v;
		size_t vl;
		if (!hy_strieq(h->name, h->name_len, "cookie") ||
		    http_cookie_get(h->value, h->value_len, name, &v, &vl) < 0)
			continue;
		if (vl >= outsz)
			return -1;
		memcpy(out, v, vl);
		out[vl] = '\0';
		return (ssize_t)vl;
	}
	return -1;
}

const char *
http_request_param(const struct http_request *req, const char *name, size_t *len)
{
	for (size_t i = 0; i < req->num_params; i++) {
		if (strcmp(req->params[i].name, name) == 0) {
			if (len != NULL)
				*len = req->params[i].value_len;
			return req->params[i].value;
		}
	}
	return NULL;
}

void
http_request_error(
    const struct http_request *req, struct http_response *res, int status, const char *msg)
{
	void (*page)(struct http_response *, int, const char *) = NULL;

	if (req->conn != NULL)
		page = req->conn->srv->cfg.error_page;
	if (page != NULL)
		page(res, status, msg != NULL ? msg : http_status_reason(status));
	else
		http_response_error(res, status, msg);
}
