/* http_json.h — JSON request bodies and responses on json-c.
 *
 * The tracker's wire format: bodies are JSON objects, answers carry a real
 * status and a JSON body ({"status":"failed","message":...} on errors).
 */
#ifndef HYCHAT_HTTP_JSON_H
#define HYCHAT_HTTP_JSON_H

#include <json-c/json.h>

#include "hychat/http_server.h"

/* Parses the request body as a JSON object. Returns it (the caller puts
 * it), or NULL after filling res with a 400 JSON error saying why. An
 * empty body gives an empty object. */
struct json_object *http_json_body(const struct http_request *req, struct http_response *res);

/* Sets res to status with obj serialized as the body; takes obj. */
void http_json_respond(struct http_response *res, int status, struct json_object *obj);

/* Sets res to {"status":"failed","message":msg} with status. */
void http_json_error(struct http_response *res, int status, const char *msg);

/* Reads a string member; returns NULL if absent or not a string. */
const char *http_json_str(struct json_object *o, const char *key);

#endif
