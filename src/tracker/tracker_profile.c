/* tracker_profile.c — profiles: a display name and a status line per
 * user, set by the user with POST /profile and shown to others in
 * /peers/USER and /get-list. The shared state keeps them (profile_set;
 * listings carry them), so that every tracker shows the same. */
#include <stdio.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/store.h"
#include "hychat/util.h"
#include "tracker_internal.h"

/* The profile's members, or NULL without one. */
static struct json_object *
profile_object(const struct store_peer *p)
{
	struct json_object *o;

	if (p->display[0] == '\0' && p->status[0] == '\0')
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "display_name", json_object_new_string(p->display));
	json_object_object_add(o, "status_line", json_object_new_string(p->status));
	return o;
}

void
tracker_profile_append(struct buf *b, const struct store_peer *p)
{
	struct json_object *o = profile_object(p);
	const char *s;
	size_t len;

	if (o == NULL)
		return;
	s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	buf_append_char(b, ',');
	buf_append(b, s + 1, len - 2); /* without the braces */
	json_object_put(o);
}

void
tracker_profile_add(struct json_object *o, const struct store_peer *p)
{
	if (p->display[0] == '\0' && p->status[0] == '\0')
		return;
	json_object_object_add(o, "display_name", json_object_new_string(p->display));
	json_object_object_add(o, "status_line", json_object_new_string(p->status));
}

/* One text field of the body: absent keeps what is there (*out NULL). */
static int
text_field(
    struct json_object *o, const char *key, size_t max, const char **out, struct http_response *res)
{
	size_t len;
	int rc = tracker_field_str(o, key, 0, out, &len, res);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		*out = NULL;
		return 0;
	}
	if (len > max || strlen(*out) != len || !hy_utf8_printable(*out, len)) {
		http_json_error(res, 400,
		    key[0] == 'd'
		        ? "Field display_name must be at most 64 bytes of printable UTF-8"
		        : "Field status_line must be at most 140 bytes of printable UTF-8");
		return -1;
	}
	return 0;
}

static void
profile_done(struct tracker_call *c)
{
	struct json_object *r;

	if (tracker_call_failed(c))
		return;
	r = tracker_success();
	json_object_object_add(r, "display_name", json_object_new_string(c->sc.info.display));
	json_object_object_add(r, "status_line", json_object_new_string(c->sc.info.status));
	http_json_respond(c->res, 200, r);
	tracker_call_end(c);
}

static void
body_free(void *data)
{
	json_object_put(data);
}

/* POST /profile {"display_name":..., "status_line":...}: either may be left
 * out (kept as it was); "" clears it. The store merges it with what it
 * holds, atomically, and answers with the whole profile. */
static void
profile_authed(struct tracker_call *c)
{
	const char *display, *status;
	struct json_object *o;

	if ((o = tracker_body_for(c->req, c->res, c->user)) == NULL) {
		tracker_call_end(c);
		return;
	}
	if (text_field(o, "display_name", STORE_DISPLAY_MAX, &display, c->res) < 0 ||
	    text_field(o, "status_line", STORE_STATUS_MAX, &status, c->res) < 0) {
		json_object_put(o);
		tracker_call_end(c);
		return;
	}
	c->data = o; /* holds display and status until the end */
	c->data_free = body_free;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
	c->sc.display_in = display;
	c->sc.status_in = status;
	tracker_call_store(c, c->t->state->ops->profile_set, profile_done);
}

void
tracker_api_profile(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, profile_authed);
}
