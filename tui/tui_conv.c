/* tui_conv.c — the conversations: the left pane's list, and for each a
 * window of consecutive messages from the stored history, at most
 * TUI_WINDOW_MAX of them, fetched a page at a time as the view scrolls
 * towards either end. A conversation of any length costs the same to
 * show; search jumps move the window to the hit. */
#include <ctype.h>
#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hychat/settings.h"
#include "tui_internal.h"

#include "hychat/delivery.h"

/* Order in the left pane: #general, #broadcast, other channels, then the
 * direct conversations, each group in order of arrival. */
static int
rank(const char *name)
{
	if (strcmp(name, "#general") == 0)
		return 0;
	if (strcmp(name, "#" ENGINE_BROADCAST) == 0)
		return 1;
	return name[0] == '#' ? 2 : 3;
}

struct tui_conv *
tui_conv_find(struct tui *t, const char *name)
{
	for (size_t i = 0; i < t->nconvs; i++)
		if (strcmp(t->convs[i]->name, name) == 0)
			return t->convs[i];
	return NULL;
}

struct tui_conv *
tui_conv_current(struct tui *t)
{
	return t->nconvs > 0 ? t->convs[t->cur] : NULL;
}

struct tui_conv *
tui_conv_get(struct tui *t, const char *name)
{
	struct tui_conv *c = tui_conv_find(t, name), *cur = tui_conv_current(t);
	size_t at;

	if (c != NULL || name[0] == '\0' || strlen(name) >= sizeof(c->name))
		return c;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->channel = name[0] == '#';
	c->follow = 1;
	t->convs = xrealloc(t->convs, (t->nconvs + 1) * sizeof(*t->convs));
	for (at = t->nconvs; at > 0 && rank(t->convs[at - 1]->name) > rank(name); at--)
		;
	memmove(t->convs + at + 1, t->convs + at, (t->nconvs - at) * sizeof(*t->convs));
	t->convs[at] = c;
	t->nconvs++;
	if (cur != NULL && at <= t->cur)
		t->cur++;
	tui_dirty(t);
	return c;
}

void
tui_msg_free(struct tui_msg *m)
{
	if (m == NULL)
		return;
	free(m->from);
	free(m->text);
	free(m->id);
	free(m->xfer);
	free(m);
}

static void
clear_window(struct tui_conv *c)
{
	for (size_t i = 0; i < c->n; i++)
		tui_msg_free(c->msgs[i]);
	c->n = 0;
	c->bottom = 0;
	c->skip = 0;
	c->below = 0;
}

void
tui_conv_free(struct tui_conv *c)
{
	clear_window(c);
	free(c->msgs);
	free(c->members);
	free(c);
}

/* Whether text names user as a word: a mention. */
static int
mentions(const char *text, const char *user)
{
	size_t n = strlen(user);

	for (const char *p = strcasestr(text, user); p != NULL; p = strcasestr(p + 1, user)) {
		int before = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
		int after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
		if (before && after)
			return 1;
	}
	return 0;
}

/* Whether text holds one of the highlight words (separated by blanks). */
static int
highlighted(const char *text, const char *words)
{
	char word[SETTINGS_VALUE_MAX + 1];

	while (*words != '\0') {
		size_t n = strcspn(words, " \t");
		if (n > 0) {
			snprintf(word, sizeof(word), "%.*s", (int)n, words);
			if (mentions(text, word))
				return 1;
		}
		words += n;
		words += strspn(words, " \t");
	}
	return 0;
}

struct tui_msg *
tui_msg_from_json(struct tui *t, struct json_object *o, const char *conv)
{
	const char *from = http_json_str(o, "from"), *text = http_json_str(o, "message"),
	           *time = http_json_str(o, "time"), *kind = http_json_str(o, "kind");
	struct json_object *v;
	struct tui_msg *m;

	if (from == NULL || text == NULL)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->seq = json_object_object_get_ex(o, "seq", &v) ? json_object_get_int64(v) : 0;
	m->outgoing = json_object_object_get_ex(o, "outgoing", &v) && json_object_get_boolean(v);
	m->kind = TUI_MSG_CHAT;
	if ((json_object_object_get_ex(o, "action", &v) && json_object_get_boolean(v)) ||
	    (kind != NULL && strcmp(kind, "action") == 0))
		m->kind = TUI_MSG_ACTION;
	else if (kind != NULL && strcmp(kind, "system") == 0)
		m->kind = TUI_MSG_SYSTEM;
	/* "2026-11-24T10:00:00.123" shows as its hour and minute. */
	if (time != NULL && strlen(time) >= 16 && time[10] == 'T') {
		memcpy(m->time, time + 11, TUI_TIME_LEN);
		memcpy(m->day, time, TUI_DAY_LEN);
	} else
		memcpy(m->time, "--:--", TUI_TIME_LEN);
	m->from = xstrdup(from);
	m->text = xstrdup(text);
	m->delivery = -1;
	if (m->outgoing && conv[0] != '#' && http_json_str(o, "id") != NULL) {
		/* history has the state; a new line gets it from "delivery" events */
		const char *state = http_json_str(o, "delivery");
		m->id = xstrdup(http_json_str(o, "id"));
		for (int i = 0; state != NULL && i < DELIVERY_STATE_COUNT; i++)
			if (strcmp(state, delivery_name((enum delivery_state)i)) == 0)
				m->delivery = i;
	}
	m->mention = !m->outgoing && conv[0] == '#' &&
	    (mentions(text, engine_username(t->e)) ||
	        highlighted(text, engine_setting(t->e, SETTING_HIGHLIGHT)));
	return m;
}

/* Day lines: above the first message of each day in the window, and
 * above the very first message of the history. */
static void
mark_days(struct tui_conv *c, size_t from)
{
	for (size_t i = from; i < c->n; i++) {
		struct tui_msg *m = c->msgs[i];
		int brk = m->day[0] != '\0' &&
		    (i == 0 ? c->at_start : strcmp(m->day, c->msgs[i - 1]->day) != 0);
		m->day_break = brk;
	}
}

static void
reserve(struct tui_conv *c, size_t more)
{
	if (c->n + more <= c->cap)
		return;
	c->cap = (c->n + more) * 2;
	c->msgs = xrealloc(c->msgs, c->cap * sizeof(*c->msgs));
}

/* Drops the oldest messages beyond the window, far above the view. */
static void
trim_start(struct tui *t, struct tui_conv *c)
{
	size_t drop = 0;

	while (c->n - drop > TUI_WINDOW_MAX && drop + TUI_PAGE + (size_t)t->msg_h < c->bottom)
		drop++;
	if (drop == 0)
		return;
	for (size_t i = 0; i < drop; i++)
		tui_msg_free(c->msgs[i]);
	memmove(c->msgs, c->msgs + drop, (c->n - drop) * sizeof(*c->msgs));
	c->n -= drop;
	c->bottom -= drop;
	c->at_start = 0;
	mark_days(c, 0);
}

/* Drops the newest messages beyond the window, far below the view. */
static void
trim_end(struct tui_conv *c)
{
	while (c->n > TUI_WINDOW_MAX && c->n - 1 > c->bottom + TUI_PAGE) {
		tui_msg_free(c->msgs[--c->n]);
		c->at_end = 0;
		c->follow = 0;
	}
}

static void
append(struct tui *t, struct tui_conv *c, struct tui_msg *m)
{
	reserve(c, 1);
	c->msgs[c->n++] = m;
	mark_days(c, c->n - 1);
	if (c->follow) {
		c->bottom = c->n - 1;
		c->skip = 0;
	}
	trim_start(t, c);
}

void
tui_conv_add(struct tui *t, struct tui_conv *c, struct tui_msg *m)
{
	if (c->loaded && c->at_end) {
		append(t, c, m);
	} else {
		c->below += c->loaded;
		tui_msg_free(m);
	}
	tui_dirty(t);
}

void
tui_line(struct tui *t, enum tui_kind kind, const char *fmt, ...)
{
	struct tui_conv *c = tui_conv_current(t);
	struct tui_msg *m;
	char clock[8];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	struct buf b;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (c == NULL || !c->loaded || !c->at_end) {
		tui_notice(t, kind == TUI_MSG_ERROR, "%s", b.data != NULL ? b.data : "");
		buf_fini(&b);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->kind = kind;
	m->delivery = -1;
	localtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%H:%M", &tm);
	memcpy(m->time, clock, TUI_TIME_LEN);
	strftime(m->day, sizeof(m->day), "%Y-%m-%d", &tm);
	m->text = b.data != NULL ? b.data : xstrdup("");
	append(t, c, m);
	tui_dirty(t);
}

/* Stored seq of the first or last message of the window, 0 if none. */
static int64_t
edge_seq(const struct tui_conv *c, int last)
{
	for (size_t k = 0; k < c->n; k++) {
		const struct tui_msg *m = c->msgs[last ? c->n - 1 - k : k];
		if (m->seq > 0)
			return m->seq;
	}
	return 0;
}

/* Asks the engine for a page; its history event arrives during the call
 * and lands in tui_conv_history(). Returns the messages received. */
static int
fetch(struct tui *t, struct tui_conv *c, enum tui_fetch how, int n, int64_t seq)
{
	struct event_origin saved;
	int rc;

	t->fetch = how;
	t->fetch_conv = c;
	t->fetch_count = 0;
	tui_ask(t, TUI_LABEL_FETCH, &saved);
	if (how == TUI_FETCH_NEWER || how == TUI_FETCH_FIRST)
		rc = engine_history_after(t->e, c->name, n, seq);
	else
		rc = engine_history(t->e, c->name, n, seq);
	tui_asked(t, &saved);
	t->fetch = TUI_FETCH_NONE;
	t->fetch_conv = NULL;
	return rc < 0 ? -1 : t->fetch_count;
}

/* The unread marker goes above the oldest of the last `unread` incoming
 * messages. */
static void
place_marker(struct tui_conv *c, int64_t unread)
{
	c->marker_seq = 0;
	for (size_t i = c->n; i > 0 && unread > 0; i--) {
		struct tui_msg *m = c->msgs[i - 1];
		if (m->outgoing || m->kind == TUI_MSG_SYSTEM || m->kind == TUI_MSG_FILE)
			continue;
		c->marker_seq = m->seq;
		unread--;
	}
}

void
tui_conv_history(struct tui *t, struct json_object *ev)
{
	struct tui_conv *c = t->fetch_conv;
	const char *name = http_json_str(ev, "conversation");
	struct json_object *list, *v;
	size_t n, k = 0;
	int was_empty;

	if (c == NULL || name == NULL || strcmp(name, c->name) != 0 ||
	    !json_object_object_get_ex(ev, "messages", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	n = json_object_array_length(list);
	t->fetch_count = (int)n;
	if (t->fetch == TUI_FETCH_OPEN || t->fetch == TUI_FETCH_HIT || t->fetch == TUI_FETCH_FIRST)
		clear_window(c);
	was_empty = c->n == 0;
	reserve(c, n);
	if (t->fetch == TUI_FETCH_OLDER) {
		memmove(c->msgs + n, c->msgs, c->n * sizeof(*c->msgs));
		c->n += n;
		c->bottom += n;
	}
	for (size_t i = 0; i < n; i++) {
		struct tui_msg *m =
		    tui_msg_from_json(t, json_object_array_get_idx(list, i), c->name);
		if (m == NULL)
			continue;
		if (t->fetch == TUI_FETCH_OLDER)
			c->msgs[k++] = m;
		else
			c->msgs[c->n++] = m;
	}
	if (t->fetch == TUI_FETCH_OLDER && k < n) {
		/* Malformed entries were skipped: close the gap. */
		memmove(c->msgs + k, c->msgs + n, (c->n - n) * sizeof(*c->msgs));
		c->n -= n - k;
		c->bottom -= n - k;
	}
	switch (t->fetch) {
	case TUI_FETCH_OPEN:
		c->loaded = 1;
		c->at_end = 1;
		c->at_start = n < TUI_PAGE;
		c->follow = 1;
		c->bottom = c->n > 0 ? c->n - 1 : 0;
		if (json_object_object_get_ex(ev, "unread", &v) && json_object_get_int64(v) > 0)
			place_marker(c, json_object_get_int64(v));
		break;
	case TUI_FETCH_OLDER:
		c->at_start = n < TUI_PAGE;
		if (was_empty) /* after /clear */
			c->bottom = c->n > 0 ? c->n - 1 : 0;
		trim_end(c);
		break;
	case TUI_FETCH_NEWER:
		if (n < TUI_PAGE) {
			c->at_end = 1;
			c->below = 0;
		}
		trim_start(t, c);
		break;
	case TUI_FETCH_HIT:
		c->loaded = 1;
		c->at_start = n < TUI_PAGE / 2;
		c->at_end = 0;
		c->follow = 0;
		c->bottom = c->n > 0 ? c->n - 1 : 0;
		break;
	case TUI_FETCH_FIRST:
		c->loaded = 1;
		c->at_start = 1;
		c->at_end = n < TUI_PAGE;
		c->follow = 0;
		c->bottom = 0;
		break;
	default: break;
	}
	mark_days(c, 0);
	c->skip = 0;
	/* The lines of its transfers are the client's own, not stored. */
	if (c->at_end && t->fetch != TUI_FETCH_OLDER)
		tui_xfer_attach(t, c);
	tui_dirty(t);
}

/* Tells the engine c has been read: every front end hears it (a read
 * event, tui_event.c), this one included. */
static void
mark_read(struct tui *t, struct tui_conv *c)
{
	c->unread = 0;
	engine_read(t->e, c->name, 0);
}

static void
open_conv(struct tui *t, struct tui_conv *c)
{
	if (fetch(t, c, TUI_FETCH_OPEN, TUI_PAGE, 0) < 0)
		return;
	mark_read(t, c);
}

void
tui_conv_mark_all(struct tui *t)
{
	for (size_t i = 0; i < t->nconvs; i++) {
		struct tui_conv *c = t->convs[i];
		if (c->loaded && c->at_end && c->unread > 0 && i == t->cur)
			mark_read(t, c);
	}
}

void
tui_conv_refresh_peers(struct tui *t)
{
	struct event_origin saved;
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL || engine_tracker_state(t->e) != ENGINE_ONLINE)
		return;
	tui_ask(t, TUI_LABEL_QUIET, &saved);
	if (c->channel && strcmp(c->name, "#" ENGINE_BROADCAST) != 0)
		engine_list(t->e, c->name);
	else
		engine_list(t->e, NULL);
	if (!c->channel && c->fingerprint[0] == '\0')
		engine_fingerprint(t->e, c->name);
	tui_asked(t, &saved);
}

void
tui_conv_select(struct tui *t, size_t i)
{
	struct tui_conv *old = tui_conv_current(t), *c;

	if (i >= t->nconvs)
		return;
	if (old != NULL && old->loaded && old->unread > 0 && old->at_end) {
		/* What arrived while it was shown has been seen. */
		mark_read(t, old);
	}
	if (old != NULL && old != t->convs[i])
		old->marker_seq = 0;
	t->cur = i;
	c = t->convs[i];
	if (!c->loaded) {
		open_conv(t, c);
	} else if (c->unread > 0) {
		if (c->at_end)
			place_marker(c, c->unread);
		mark_read(t, c);
	}
	c->activity = 0;
	c->mention = 0;
	tui_conv_refresh_peers(t);
	tui_title(t);
	tui_dirty(t);
}

void
tui_conv_close(struct tui *t, struct tui_conv *c)
{
	size_t i;

	for (i = 0; i < t->nconvs && t->convs[i] != c; i++)
		;
	if (i == t->nconvs)
		return;
	memmove(t->convs + i, t->convs + i + 1, (t->nconvs - i - 1) * sizeof(*t->convs));
	t->nconvs--;
	if (t->search_conv == c)
		t->search_conv = NULL;
	tui_conv_free(c);
	if (t->cur > i || t->cur >= t->nconvs)
		t->cur = t->cur > 0 ? t->cur - 1 : 0;
	if (t->nconvs > 0)
		tui_conv_select(t, t->cur);
	tui_dirty(t);
}

int
tui_msg_lines(struct tui *t, struct tui_conv *c, struct tui_msg *m)
{
	if (m->wrap_width != t->msg_w) {
		int p = tui_msg_prefix(m), w = t->msg_w - p;
		if (w < TUI_TEXT_MIN)
			m->nlines = 1 + tui_text_wrap(m->text, t->msg_w, NULL, 0);
		else
			m->nlines = tui_text_wrap(m->text, w, NULL, 0);
		m->wrap_width = t->msg_w;
	}
	return m->nlines + m->day_break + (m->seq != 0 && m->seq == c->marker_seq) +
	    (m->seq != 0 && m->seq == c->backlog_seq);
}

/* Lines of the window above the view's last row, counted up to limit. */
static int
lines_above(struct tui *t, struct tui_conv *c, int limit)
{
	int n;

	if (c->n == 0)
		return 0;
	n = tui_msg_lines(t, c, c->msgs[c->bottom]) - c->skip - 1;
	for (size_t i = c->bottom; i > 0 && n < limit; i--)
		n += tui_msg_lines(t, c, c->msgs[i - 1]);
	return n;
}

static void
ensure_older(struct tui *t, struct tui_conv *c)
{
	if (!c->at_start && lines_above(t, c, 2 * t->msg_h) < 2 * t->msg_h) {
		int64_t first = edge_seq(c, 0);
		if (first == 0)
			first = c->cleared_seq;
		if (first > 0)
			fetch(t, c, TUI_FETCH_OLDER, TUI_PAGE, first);
		else
			c->at_start = 1;
	}
}

static void
ensure_newer(struct tui *t, struct tui_conv *c)
{
	if (!c->at_end && c->bottom + TUI_PAGE / 4 >= c->n) {
		int64_t last = edge_seq(c, 1);
		fetch(t, c, TUI_FETCH_NEWER, TUI_PAGE, last);
	}
}

/* Keeps the first line of the history from going below the top row. */
static void
clamp_top(struct tui *t, struct tui_conv *c)
{
	while (c->at_start && c->n > 0 && lines_above(t, c, t->msg_h) < t->msg_h - 1) {
		if (c->skip > 0) {
			c->skip--;
		} else if (c->bottom + 1 < c->n) {
			c->bottom++;
			c->skip = tui_msg_lines(t, c, c->msgs[c->bottom]) - 1;
		} else {
			break;
		}
	}
	if (c->at_end && c->bottom + 1 == c->n && c->skip == 0)
		c->follow = 1;
}

static void
scroll_up(struct tui *t, struct tui_conv *c, int k)
{
	int was_empty = c->n == 0;

	c->follow = 0;
	ensure_older(t, c);
	/* After /clear, the empty screen was the page: the one before it
	 * ends with the newest message. */
	if (was_empty)
		k = 0;
	while (k > 0 && c->n > 0) {
		int avail = tui_msg_lines(t, c, c->msgs[c->bottom]) - 1 - c->skip;
		if (k <= avail) {
			c->skip += k;
			break;
		}
		if (c->bottom == 0) {
			ensure_older(t, c);
			if (c->bottom == 0) {
				c->skip += avail;
				break;
			}
		}
		k -= avail + 1;
		c->bottom--;
		c->skip = 0;
	}
	ensure_older(t, c);
	clamp_top(t, c);
}

static void
scroll_down(struct tui *t, struct tui_conv *c, int k)
{
	while (k > 0 && c->n > 0) {
		if (c->skip > 0) {
			int d = k < c->skip ? k : c->skip;
			c->skip -= d;
			k -= d;
			continue;
		}
		if (c->bottom + 1 >= c->n) {
			ensure_newer(t, c);
			if (c->bottom + 1 >= c->n)
				break;
		}
		c->bottom++;
		c->skip = tui_msg_lines(t, c, c->msgs[c->bottom]) - 1;
		k--;
	}
	ensure_newer(t, c);
	if (c->at_end && c->bottom + 1 >= c->n && c->skip == 0) {
		c->follow = 1;
		c->hit_seq = 0;
	}
}

void
tui_conv_scroll(struct tui *t, int lines)
{
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL || !c->loaded)
		return;
	if (c->follow && c->n > 0) {
		c->bottom = c->n - 1;
		c->skip = 0;
	}
	if (lines < 0)
		scroll_up(t, c, -lines);
	else
		scroll_down(t, c, lines);
	tui_dirty(t);
}

void
tui_conv_clear(struct tui *t)
{
	struct tui_conv *c = tui_conv_current(t);
	int64_t last;

	if (c == NULL || !c->loaded)
		return;
	if (!c->at_end)
		tui_conv_newest(t);
	last = edge_seq(c, 1);
	clear_window(c);
	/* PgUp brings back what was cleared. */
	c->cleared_seq = last > 0 ? last + 1 : 0;
	c->at_start = last == 0;
	c->follow = 1;
	c->marker_seq = 0;
	c->hit_seq = 0;
	tui_dirty(t);
}

void
tui_conv_newest(struct tui *t)
{
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL)
		return;
	if (!c->at_end || !c->loaded)
		fetch(t, c, TUI_FETCH_OPEN, TUI_PAGE, 0);
	c->follow = 1;
	c->hit_seq = 0;
	if (c->n > 0)
		c->bottom = c->n - 1;
	c->skip = 0;
	tui_dirty(t);
}

void
tui_conv_top(struct tui *t)
{
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL)
		return;
	if (!c->at_start)
		fetch(t, c, TUI_FETCH_FIRST, TUI_PAGE, 0);
	c->follow = 0;
	c->bottom = 0;
	c->skip = c->n > 0 ? tui_msg_lines(t, c, c->msgs[0]) - 1 : 0;
	clamp_top(t, c);
	tui_dirty(t);
}

/* Moves the window to a page around the hit and shows it mid-screen. */
static void
jump_to(struct tui *t, struct tui_conv *c, int64_t seq)
{
	size_t i;

	if (fetch(t, c, TUI_FETCH_HIT, TUI_PAGE / 2, seq + 1) <= 0)
		return;
	c->hit_seq = seq;
	fetch(t, c, TUI_FETCH_NEWER, TUI_PAGE, seq);
	for (i = 0; i < c->n && c->msgs[i]->seq != seq; i++)
		;
	c->bottom = i < c->n ? i : c->n - 1;
	c->skip = 0;
	c->follow = 0;
	scroll_down(t, c, t->msg_h / 2);
	c->follow = 0;
	c->hit_seq = seq; /* even when the hit is among the newest */
	ensure_older(t, c);
	tui_dirty(t);
}

void
tui_conv_search(struct tui *t, const char *text, int again)
{
	struct event_origin saved;
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL)
		return;
	if (!again || t->search_text == NULL || strcmp(t->search_text, text) != 0 ||
	    t->search_conv != c) {
		free(t->search_text);
		t->search_text = xstrdup(text);
		t->search_conv = c;
		t->search_before = 0;
	}
	tui_ask(t, TUI_LABEL_SEARCH, &saved);
	engine_search(t->e, c->name, t->search_text, 1, t->search_before);
	tui_asked(t, &saved);
}

void
tui_conv_search_result(struct tui *t, struct json_object *ev)
{
	struct tui_conv *c = t->search_conv;
	struct json_object *list, *hit, *v;
	const char *name = http_json_str(ev, "conversation");

	if (!tui_label_is(ev, TUI_LABEL_SEARCH) || c == NULL || name == NULL ||
	    strcmp(name, c->name) != 0 || !json_object_object_get_ex(ev, "messages", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	if (json_object_array_length(list) == 0) {
		tui_notice(t, 1, "search: no %smatch for \"%s\" in %s",
		    t->search_before > 0 ? "older " : "", t->search_text, c->name);
		return;
	}
	hit = json_object_array_get_idx(list, 0);
	if (!json_object_object_get_ex(hit, "seq", &v))
		return;
	t->search_before = json_object_get_int64(v);
	jump_to(t, c, t->search_before);
	tui_notice(t, 0, "match in %s from %s: Ctrl-R for an older one, End of scroll with PgDn",
	    c->name, http_json_str(hit, "from") ? http_json_str(hit, "from") : "?");
}

struct tui_peer *
tui_peer_get(struct tui *t, const char *name)
{
	for (size_t i = 0; i < t->npeers; i++)
		if (strcmp(t->peers[i].name, name) == 0)
			return &t->peers[i];
	if (strlen(name) > HY_NAME_MAX)
		return NULL;
	t->peers = xrealloc(t->peers, (t->npeers + 1) * sizeof(*t->peers));
	memset(&t->peers[t->npeers], 0, sizeof(*t->peers));
	snprintf(t->peers[t->npeers].name, sizeof(t->peers[0].name), "%s", name);
	return &t->peers[t->npeers++];
}
