/* tracker_profile.c — profiles: a display name and a status line per
 * user, set by the user with POST /profile and shown to others in
 * /peers/USER and /get-list. Kept in memory under the tracker's lock (a
 * sorted array, each entry with its JSON fragment encoded once), and in
 * the store when it keeps profiles. */
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/store.h"
#include "hychat/util.h"
#include "tracker_internal.h"

struct tracker_profile {
	char user[HY_NAME_MAX + 1];
	char *display, *status;
	char *json; /* ,"display_name":...,"status_line":... */
};

struct tracker_profiles {
	struct tracker_profile *v;
	size_t n;
};

/* 1 if s[0..n) is UTF-8 without control characters. */
static int
printable_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80    ? 1
		    : (c & 0xE0) == 0xC0 ? 2
		    : (c & 0xF0) == 0xE0 ? 3
		    : (c & 0xF8) == 0xF0 ? 4
		                         : 0;
		uint32_t cp;

		if (len == 0 || i + len > n || c < 0x20 || c == 0x7F || c == 0xC0 || c == 0xC1)
			return 0;
		cp = len == 1 ? c : (uint32_t)(c & (0x7F >> len));
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			return 0;
		i += len;
	}
	return 1;
}

static size_t
position(const struct tracker_profiles *p, const char *user, int *found)
{
	size_t lo = 0, hi = p->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(p->v[mid].user, user);
		if (cmp == 0) {
			*found = 1;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static char *
encode(const char *display, const char *status)
{
	struct json_object *o = json_object_new_object();
	struct buf b;
	const char *s;
	size_t len;

	json_object_object_add(o, "display_name", json_object_new_string(display));
	json_object_object_add(o, "status_line", json_object_new_string(status));
	s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	buf_init(&b);
	buf_append_char(&b, ',');
	buf_append(&b, s + 1, len - 2); /* without the braces */
	json_object_put(o);
	return b.data;
}

static void
entry_free(struct tracker_profile *e)
{
	free(e->display);
	free(e->status);
	free(e->json);
}

/* Sets user's profile in memory (under the write lock); both empty
 * removes it. */
static void
put(struct tracker_profiles *p, const char *user, const char *display, const char *status)
{
	int found;
	size_t i = position(p, user, &found);

	if (display[0] == '\0' && status[0] == '\0') {
		if (found) {
			entry_free(&p->v[i]);
			memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(*p->v));
			p->n--;
		}
		return;
	}
	if (!found) {
		p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
		memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(*p->v));
		memset(&p->v[i], 0, sizeof(*p->v));
		snprintf(p->v[i].user, sizeof(p->v[i].user), "%s", user);
		p->n++;
	} else {
		entry_free(&p->v[i]);
	}
	p->v[i].display = xstrdup(display);
	p->v[i].status = xstrdup(status);
	p->v[i].json = encode(display, status);
}

static const struct tracker_profile *
get(const struct tracker *t, const char *user)
{
	int found;
	size_t i;

	if (t->profiles == NULL)
		return NULL;
	i = position(t->profiles, user, &found);
	return found ? &t->profiles->v[i] : NULL;
}

const char *
tracker_profile_json(const struct tracker *t, const char *user)
{
	const struct tracker_profile *e = get(t, user);

	return e != NULL ? e->json : "";
}

void
tracker_profile_add(const struct tracker *t, struct json_object *o, const char *user)
{
	const struct tracker_profile *e = get(t, user);

	if (e == NULL)
		return;
	json_object_object_add(o, "display_name", json_object_new_string(e->display));
	json_object_object_add(o, "status_line", json_object_new_string(e->status));
}

static void
load_one(const char *name, const char *display, const char *status, void *arg)
{
	if (name != NULL && display != NULL && status != NULL && hy_name_valid(name, strlen(name)))
		put(arg, name, display, status);
}

int
tracker_profiles_load(struct tracker *t, char **cause)
{
	t->profiles = xcalloc(1, sizeof(*t->profiles));
	if (t->store == NULL || t->store->ops->each_profile == NULL)
		return 0;
	return t->store->ops->each_profile(t->store, load_one, t->profiles, cause);
}

void
tracker_profiles_free(struct tracker *t)
{
	if (t->profiles == NULL)
		return;
	for (size_t i = 0; i < t->profiles->n; i++)
		entry_free(&t->profiles->v[i]);
	free(t->profiles->v);
	free(t->profiles);
	t->profiles = NULL;
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
	if (len > max || strlen(*out) != len || !printable_utf8((const unsigned char *)*out, len)) {
		http_json_error(res, 400,
		    key[0] == 'd'
		        ? "Field display_name must be at most 64 bytes of printable UTF-8"
		        : "Field status_line must be at most 140 bytes of printable UTF-8");
		return -1;
	}
	return 0;
}

/* POST /profile {"display_name":..., "status_line":...}: either may be left
 * out (kept as it was); "" clears it. */
static void
tracker_api_profile_authed(
    struct tracker *t, struct http_request *req, struct http_response *res, const char *user)
{
	const char *display, *status;
	char *d, *s, *cause = NULL;
	const struct tracker_profile *old;
	struct json_object *o, *r;

	if ((o = tracker_body_for(req, res, user)) == NULL)
		return;
	if (text_field(o, "display_name", TRACKER_PROFILE_NAME_MAX, &display, res) < 0 ||
	    text_field(o, "status_line", TRACKER_PROFILE_STATUS_MAX, &status, res) < 0) {
		json_object_put(o);
		return;
	}
	tracker_rd_lock(t);
	old = get(t, user);
	d = xstrdup(display != NULL ? display : old != NULL ? old->display : "");
	s = xstrdup(status != NULL ? status : old != NULL ? old->status : "");
	tracker_unlock(t);
	json_object_put(o);
	if (t->store != NULL && t->store->ops->profile_set != NULL &&
	    t->store->ops->profile_set(t->store, user, d, s, &cause) < 0) {
		free(d);
		free(s);
		tracker_store_failed(res, cause);
		return;
	}
	tracker_wr_lock(t);
	put(t->profiles, user, d, s);
	tracker_unlock(t);
	r = tracker_success();
	json_object_object_add(r, "display_name", json_object_new_string(d));
	json_object_object_add(r, "status_line", json_object_new_string(s));
	http_json_respond(res, 200, r);
	free(d);
	free(s);
}

void
tracker_api_profile(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run_sync(ctx, req, res, tracker_api_profile_authed);
}
