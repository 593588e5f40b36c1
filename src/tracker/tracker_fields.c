/* tracker_fields.c — what every tracker request goes through: the JSON
 * body and its fields, and the JSON answers, each check
 * answering its own 400, 401 or 403. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "tracker_internal.h"

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
	if (!hy_name_valid(*out, len)) {
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
    const char *s, size_t len, char out[HY_CHANNEL_MAX + 1], struct http_response *res)
{
	if (hy_channel_canon(s, len, out) < 0) {
		http_json_error(res, 400,
		    "Invalid channel: 1-64 characters of A-Z a-z 0-9 _ . -, "
		    "with or without a leading #");
		return -1;
	}
	return 0;
}

int
tracker_field_channel(
    struct json_object *o, char out[HY_CHANNEL_MAX + 1], struct http_response *res)
{
	const char *s;
	size_t len;

	if (tracker_field_str(o, "channel", 1, &s, &len, res) < 0)
		return -1;
	return tracker_check_channel(s, len, out, res);
}

/* Peer addresses. */

enum addr_kind {
	ADDR_OK,
	ADDR_LOOPBACK,
	ADDR_UNSPECIFIED,
	ADDR_MULTICAST,
	ADDR_RESERVED,
};

static const char *const addr_refusals[] = {
	[ADDR_LOOPBACK] = "Field ip must not be a loopback address: other peers would dial "
	                  "their own machine (--allow-loopback-peers allows it)",
	[ADDR_UNSPECIFIED] = "Field ip must not be an unspecified address",
	[ADDR_MULTICAST] = "Field ip must not be a multicast or broadcast address",
	[ADDR_RESERVED] = "Field ip must not be a reserved address",
};

static enum addr_kind
addr_kind_v4(const uint8_t a[4])
{
	if (a[0] == 127)
		return ADDR_LOOPBACK;
	if (a[0] == 0)
		return ADDR_UNSPECIFIED; /* 0.0.0.0/8, "this network" */
	if (a[0] >= 224 && a[0] <= 239)
		return ADDR_MULTICAST;
	if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255)
		return ADDR_MULTICAST; /* the limited broadcast */
	if (a[0] >= 240)
		return ADDR_RESERVED;
	return ADDR_OK;
}

/* Writes the 16-byte form of ip (IPv4 as ::ffff:a.b.c.d) to out and
 * returns its kind; -1 if ip is no address. */
static int
addr_parse(const char *ip, uint8_t out[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zeros[12] = { 0 };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t v4[4];

	if (inet_pton(AF_INET, ip, v4) == 1) {
		memcpy(out, mapped, sizeof(mapped));
		memcpy(out + 12, v4, 4);
		return addr_kind_v4(v4);
	}
	if (inet_pton(AF_INET6, ip, out) != 1)
		return -1;
	if (memcmp(out, mapped, 12) == 0 || memcmp(out, nat64, 12) == 0)
		return addr_kind_v4(out + 12);
	if (memcmp(out, zeros, 12) == 0) {
		uint32_t low = (uint32_t)out[12] << 24 | (uint32_t)out[13] << 16 |
		    (uint32_t)out[14] << 8 | out[15];
		if (low == 0)
			return ADDR_UNSPECIFIED; /* :: */
		if (low == 1)
			return ADDR_LOOPBACK; /* ::1 */
		return addr_kind_v4(out + 12); /* deprecated IPv4-compatible */
	}
	if (out[0] == 0xff)
		return ADDR_MULTICAST;
	return ADDR_OK;
}

int
tracker_check_peer_ip(
    const struct tracker *t, const char *ip, const char *source, struct http_response *res)
{
	uint8_t a[16], b[16];
	int kind = addr_parse(ip, a);

	if (kind < 0) {
		http_json_error(res, 400, "Field ip must be an IPv4 or IPv6 address");
		return -1;
	}
	if (kind != ADDR_OK && !(kind == ADDR_LOOPBACK && t->cfg.allow_loopback_peers)) {
		http_json_error(res, 403, addr_refusals[kind]);
		return -1;
	}
	if (t->cfg.require_source_ip && source != NULL &&
	    (addr_parse(source, b) < 0 || memcmp(a, b, sizeof(a)) != 0)) {
		http_json_error(res, 403,
		    "Field ip must be the address this request comes from (--require-source-ip)");
		return -1;
	}
	return 0;
}

int
tracker_field_ip6(const struct tracker *t, struct json_object *o, const char *source,
    char out[TRACKER_NAT_IP_MAX], struct http_response *res)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t a[16];
	const char *ip6;
	size_t len;
	int rc = tracker_field_str(o, "ip6", 0, &ip6, &len, res);

	out[0] = '\0';
	if (rc <= 0)
		return rc;
	if (len >= TRACKER_NAT_IP_MAX || strlen(ip6) != len || inet_pton(AF_INET6, ip6, a) != 1 ||
	    memcmp(a, mapped, sizeof(mapped)) == 0 || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)) {
		http_json_error(
		    res, 400, "Field ip6 must be a global or unique-local IPv6 address");
		return -1;
	}
	if (tracker_check_peer_ip(t, ip6, NULL, res) < 0)
		return -1;
	/* Unverifiable unless it is where the request comes from. */
	if (t->cfg.require_source_ip && (source == NULL || strcmp(source, ip6) != 0))
		return 0;
	memcpy(out, ip6, len + 1);
	return 0;
}
