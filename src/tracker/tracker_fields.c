/* tracker_fields.c — what every tracker request goes through: the bearer
 * token, the JSON body and its fields, and the JSON answers, each check
 * answering its own 400, 401 or 403. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "tracker_internal.h"

#define TRACKER_REALM "hychat-tracker"

void
tracker_store_failed(struct http_response *res, char *cause)
{
	log_error("store: %s", cause != NULL ? cause : "unknown error");
	free(cause);
	http_json_error(res, 500, "Storage error");
}

struct json_object *
tracker_success(void)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("success"));
	return o;
}

void
tracker_add_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

void
tracker_add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

int
tracker_auth(struct tracker *t, const struct http_request *req, struct http_response *res,
    char user[REG_NAME_MAX + 1], const char **token, size_t *token_len)
{
	static const char scheme[] = "Bearer ";
	size_t len;
	const char *v = http_request_header(req, "Authorization", &len);
	const char *name;

	if (v == NULL || len < sizeof(scheme) - 1 || !hy_strieq(v, sizeof(scheme) - 1, scheme)) {
		http_json_error(res, 401, "Missing bearer token");
		http_response_header(res, "WWW-Authenticate", "Bearer realm=\"" TRACKER_REALM "\"");
		return -1;
	}
	v += sizeof(scheme) - 1;
	len -= sizeof(scheme) - 1;
	while (len > 0 && *v == ' ') {
		v++;
		len--;
	}
	tracker_rd_lock(t);
	name = registry_token_user(t->reg, v, len, hy_now_ms());
	if (name != NULL)
		snprintf(user, REG_NAME_MAX + 1, "%s", name);
	tracker_unlock(t);
	if (name == NULL) {
		http_json_error(res, 401, "Invalid or expired token");
		http_response_header(res, "WWW-Authenticate",
		    "Bearer realm=\"" TRACKER_REALM "\", error=\"invalid_token\"");
		return -1;
	}
	if (token != NULL) {
		*token = v;
		*token_len = len;
	}
	return 0;
}

struct json_object *
tracker_body_for(const struct http_request *req, struct http_response *res, const char *user)
{
	struct json_object *o = http_json_body(req, res), *v;

	if (o == NULL || !json_object_object_get_ex(o, "username", &v))
		return o;
	if (!json_object_is_type(v, json_type_string)) {
		http_json_error(res, 400, "Field username must be a string");
	} else if (strcmp(json_object_get_string(v), user) != 0) {
		http_json_error(res, 403, "This token does not act for that user");
	} else {
		return o;
	}
	json_object_put(o);
	return NULL;
}

/* A 400 naming the field: "Missing field: ip", "Field ip must be ...". */
static void
field_error(struct http_response *res, const char *key, const char *must)
{
	char msg[128];

	if (must == NULL)
		snprintf(msg, sizeof(msg), "Missing field: %s", key);
	else
		snprintf(msg, sizeof(msg), "Field %s must be %s", key, must);
	http_json_error(res, 400, msg);
}

int
tracker_field_str(struct json_object *o, const char *key, int required, const char **out,
    size_t *len, struct http_response *res)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (!required)
			return 0;
		field_error(res, key, NULL);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		field_error(res, key, "a string");
		return -1;
	}
	*out = json_object_get_string(v);
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return 1;
}

int
tracker_field_int(struct json_object *o, const char *key, int required, int64_t min, int64_t max,
    int64_t *out, struct http_response *res)
{
	struct json_object *v;
	char msg[128];

	if (!json_object_object_get_ex(o, key, &v)) {
		if (!required)
			return 0;
		field_error(res, key, NULL);
		return -1;
	}
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		if (*out >= min && *out <= max)
			return 1;
	}
	snprintf(msg, sizeof(msg), "Field %s must be an integer from %lld to %lld", key,
	    (long long)min, (long long)max);
	http_json_error(res, 400, msg);
	return -1;
}

int
tracker_field_username(struct json_object *o, const char **out, struct http_response *res)
{
	size_t len;
	int rc = tracker_field_str(o, "username", 1, out, &len, res);

	if (rc < 0)
		return -1;
	if (!registry_username_valid(*out, len)) {
		http_json_error(res, 400, "Invalid username: 1-32 characters of A-Z a-z 0-9 _ . -");
		return -1;
	}
	return 0;
}

int
tracker_field_password(
    struct json_object *o, const char **out, size_t *len, struct http_response *res)
{
	if (tracker_field_str(o, "password", 1, out, len, res) < 0)
		return -1;
	if (*len < 1 || *len > TRACKER_PASSWORD_MAX) {
		http_json_error(res, 400, "Invalid password: 1 to 1024 bytes");
		return -1;
	}
	return 0;
}

int
tracker_check_channel(
    const char *s, size_t len, char out[REG_CHANNEL_MAX + 1], struct http_response *res)
{
	if (registry_channel_canon(s, len, out) < 0) {
		http_json_error(res, 400,
		    "Invalid channel: 1-64 characters of A-Z a-z 0-9 _ . -, "
		    "with or without a leading #");
		return -1;
	}
	return 0;
}

int
tracker_field_channel(
    struct json_object *o, char out[REG_CHANNEL_MAX + 1], struct http_response *res)
{
	const char *s;
	size_t len;

	if (tracker_field_str(o, "channel", 1, &s, &len, res) < 0)
		return -1;
	return tracker_check_channel(s, len, out, res);
}
