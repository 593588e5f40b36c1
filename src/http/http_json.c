/* http_json.c — JSON bodies in and out, on json-c. */
#include <string.h>

#include "hychat/http_json.h"

#define HTTP_JSON_MAX_DEPTH 16

struct json_object *
http_json_body(const struct http_request *req, struct http_response *res)
{
	if (req->body_len == 0)
		return json_object_new_object();

	struct json_tokener *tok = json_tokener_new_ex(HTTP_JSON_MAX_DEPTH);
	if (tok == NULL) {
		http_json_error(res, 500, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (o == NULL || jerr != json_tokener_success) {
		json_object_put(o);
		http_json_error(res, 400,
		    jerr == json_tokener_continue ? "Invalid JSON: truncated body"
		                                  : "Invalid JSON");
		return NULL;
	}
	for (; end < req->body_len; end++) {
		if (strchr(" \t\r\n", req->body[end]) == NULL) {
			json_object_put(o);
			http_json_error(res, 400, "Invalid JSON: trailing data");
			return NULL;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		http_json_error(res, 400, "Invalid JSON: expected an object");
		return NULL;
	}
	return o;
}

void
http_json_respond(struct http_response *res, int status, struct json_object *obj)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);

	res->status = status;
	res->body.len = 0;
	buf_append(&res->body, s, len);
	http_response_header(res, "Content-Type", "application/json");
	json_object_put(obj);
}

void
http_json_error(struct http_response *res, int status, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("failed"));
	json_object_object_add(o, "message", json_object_new_string(msg));
	http_json_respond(res, status, o);
}

const char *
http_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
