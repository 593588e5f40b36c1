/* backlog_frame.c — the backlog's request and page, built and checked.
 * Everything read here came from another peer: each field is looked up
 * with its type, bounded and checked before anyone uses it. */
#include "hychat/backlog_frame.h"

#include <string.h>

/* The string at key, NUL-free and at most max bytes, or NULL. */
static const char *
str_field(struct json_object *o, const char *key, size_t min, size_t max)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n < min || n > max || strlen(s) != n)
		return NULL;
	return s;
}

static int
int_field(struct json_object *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	if (n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int
channel_field(struct json_object *o, char *out)
{
	const char *c = str_field(o, "channel", 1, HY_CHANNEL_MAX);

	if (c == NULL || !hy_name_valid(c, strlen(c)))
		return -1;
	memcpy(out, c, strlen(c) + 1);
	return 0;
}

struct json_object *
backlog_request_new(const struct backlog_request *r)
{
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "type", json_object_new_string("backlog"));
	json_object_object_add(m, "channel", json_object_new_string(r->channel));
	json_object_object_add(m, "since", json_object_new_string(r->since));
	json_object_object_add(m, "after", json_object_new_int64(r->after));
	json_object_object_add(m, "limit", json_object_new_int64(r->limit));
	return m;
}

int
backlog_request_parse(struct json_object *m, struct backlog_request *r)
{
	const char *since = str_field(m, "since", 0, BACKLOG_TIME_MAX - 1);

	memset(r, 0, sizeof(*r));
	if (channel_field(m, r->channel) < 0 || since == NULL ||
	    int_field(m, "after", 0, INT64_MAX, &r->after) < 0 ||
	    int_field(m, "limit", 1, BACKLOG_LIMIT_MAX, &r->limit) < 0)
		return -1;
	memcpy(r->since, since, strlen(since) + 1);
	return 0;
}

struct json_object *
backlog_page_new(const char *channel)
{
	struct json_object *m = json_object_new_object();

	json_object_object_add(m, "type", json_object_new_string("backlog_page"));
	json_object_object_add(m, "channel", json_object_new_string(channel));
	json_object_object_add(m, "messages", json_object_new_array());
	json_object_object_add(m, "next", json_object_new_int64(0));
	return m;
}

int
backlog_page_add(struct json_object *page, const struct backlog_entry *en, size_t *used)
{
	struct json_object *list, *e;
	size_t n, len;

	json_object_object_get_ex(page, "messages", &list);
	n = json_object_array_length(list);
	if (n >= BACKLOG_PAGE_MAX)
		return 0;
	e = json_object_new_object();
	json_object_object_add(e, "id", json_object_new_string(en->id));
	json_object_object_add(e, "from", json_object_new_string(en->from));
	json_object_object_add(e, "time", json_object_new_string(en->time));
	json_object_object_add(e, "message", json_object_new_string(en->text));
	if (en->action)
		json_object_object_add(e, "action", json_object_new_boolean(1));
	json_object_object_add(e, "sig", json_object_new_string(en->sig));
	json_object_to_json_string_length(e, JSON_C_TO_STRING_PLAIN, &len);
	if (n > 0 && *used + len > BACKLOG_PAGE_BYTES) {
		json_object_put(e);
		return 0;
	}
	json_object_array_add(list, e);
	*used += len;
	return 1;
}

void
backlog_page_set_next(struct json_object *page, int64_t next)
{
	json_object_object_add(page, "next", json_object_new_int64(next));
}

int
backlog_page_parse(
    struct json_object *m, char *channel, struct json_object **entries, int64_t *next)
{
	struct json_object *list;

	if (channel_field(m, channel) < 0 || !json_object_object_get_ex(m, "messages", &list) ||
	    !json_object_is_type(list, json_type_array) ||
	    json_object_array_length(list) > BACKLOG_PAGE_MAX ||
	    int_field(m, "next", 0, INT64_MAX, next) < 0)
		return -1;
	*entries = list;
	return 0;
}

int
backlog_entry_parse(struct json_object *entries, size_t i, struct backlog_entry *en)
{
	struct json_object *e = json_object_array_get_idx(entries, i), *v;

	memset(en, 0, sizeof(*en));
	if (e == NULL || !json_object_is_type(e, json_type_object))
		return -1;
	en->id = str_field(e, "id", 1, BACKLOG_ID_MAX);
	en->from = str_field(e, "from", 1, HY_NAME_MAX);
	en->time = str_field(e, "time", 1, BACKLOG_TIME_MAX - 1);
	en->text = str_field(e, "message", 1, BACKLOG_TEXT_MAX);
	en->sig = str_field(e, "sig", 1, 256);
	if (en->id == NULL || en->from == NULL || en->time == NULL || en->text == NULL ||
	    en->sig == NULL || !hy_name_valid(en->from, strlen(en->from)) ||
	    !hy_utf8_valid(en->text, strlen(en->text)))
		return -1;
	if (json_object_object_get_ex(e, "action", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return -1;
		en->action = json_object_get_boolean(v);
	}
	return 0;
}
