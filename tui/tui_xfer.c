/* tui_xfer.c — file transfers as the terminal shows them: each one a line
 * of its peer's conversation, rewritten in place as its events come (an
 * offer with how to answer it, then a bar with percentage, rate and time
 * left, then how it ended), and a summary of those under way for the
 * status bar. The texts are pure functions of a transfer's fields; the
 * engine's events (at most four a second a transfer) only rewrite a line
 * and ask for a redraw. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tui_internal.h"

/* The states that end a transfer; every other one is under way. */
static const char *const final_states[] = { "done", "complete", "completed", "failed", "error",
	"cancelled", "canceled", "rejected" };

static const char *const moving_states[] = { "active", "sending", "receiving" };

static int
moving(const char *state)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(moving_states); i++)
		if (strcmp(state, moving_states[i]) == 0)
			return 1;
	return 0;
}

int
tui_xfer_final(const char *state)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(final_states); i++)
		if (strcmp(state, final_states[i]) == 0)
			return 1;
	return 0;
}

void
tui_xfer_size(char *out, size_t outsz, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(out, outsz, "%" PRIu64 " B", n);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < HY_ARRAY_LEN(units)) {
		v /= 1024;
		u++;
	}
	snprintf(out, outsz, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void
tui_xfer_eta(char *out, size_t outsz, uint64_t left, double rate)
{
	double s;
	uint64_t secs;

	if (rate < 1 || left == 0) {
		snprintf(out, outsz, left == 0 ? "0:00" : "--:--");
		return;
	}
	s = (double)left / rate;
	if (s > 99.0 * 3600) {
		snprintf(out, outsz, ">99h");
		return;
	}
	secs = (uint64_t)(s + 0.999);
	if (secs >= 3600)
		snprintf(out, outsz, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, secs / 3600,
		    secs / 60 % 60, secs % 60);
	else
		snprintf(out, outsz, "%" PRIu64 ":%02" PRIu64, secs / 60, secs % 60);
}

int
tui_xfer_percent(uint64_t bytes, uint64_t size)
{
	int p;

	if (size == 0)
		return bytes > 0 ? 100 : 0;
	if (bytes >= size)
		return 100;
	/* 99 until the last byte (rounding included): 100% means done. */
	p = (int)((double)bytes * 100 / (double)size);
	return p > 99 ? 99 : p;
}

void
tui_xfer_bar(char *out, size_t outsz, uint64_t bytes, uint64_t size, int cells)
{
	struct buf b;
	int full;

	if (cells < 1)
		cells = 1;
	full = size == 0    ? (bytes > 0 ? cells : 0)
	    : bytes >= size ? cells
	                    : (int)((double)bytes * cells / (double)size);
	buf_init(&b);
	buf_append_char(&b, '[');
	for (int i = 0; i < cells; i++)
		buf_append_str(&b, i < full ? TUI_XFER_FULL : TUI_XFER_EMPTY);
	buf_append_char(&b, ']');
	buf_append(&b, "", 0);
	snprintf(out, outsz, "%s", b.data);
	buf_fini(&b);
}

void
tui_xfer_text(const struct tui_xfer *x, char *out, size_t outsz)
{
	char size[32], done[32], rate[32], eta[16], bar[TUI_XFER_BAR_CELLS * 4 + 3];
	const char *arrow = x->incoming ? "\u2190" : "\u2192"; /* ← → */
	const char *dir = x->incoming ? "from" : "to";

	tui_xfer_size(size, sizeof(size), x->size);
	if (x->incoming && strcmp(x->state, "offered") == 0) {
		snprintf(out, outsz, "%s %s offers %s (%s): /accept %.*s [PATH] or /reject %.*s",
		    arrow, x->peer, x->name, size, TUI_XFER_SHORT_ID, x->id, TUI_XFER_SHORT_ID,
		    x->id);
		return;
	}
	if (!x->incoming &&
	    (strcmp(x->state, "offered") == 0 || strcmp(x->state, "waiting") == 0)) {
		snprintf(out, outsz,
		    "%s %s (%s) %s %s: offered, waiting for an answer (/cancel %.*s)", arrow,
		    x->name, size, dir, x->peer, TUI_XFER_SHORT_ID, x->id);
		return;
	}
	if (tui_xfer_final(x->state)) {
		int ok = strcmp(x->state, "done") == 0 || strcmp(x->state, "complete") == 0 ||
		    strcmp(x->state, "completed") == 0;
		if (ok)
			snprintf(out, outsz, "%s %s (%s) %s %s: done, 100%%%s%s", arrow, x->name,
			    size, dir, x->peer, x->path[0] != '\0' ? ", in " : "", x->path);
		else
			snprintf(out, outsz, "%s %s (%s) %s %s: %s%s%s at %d%%", arrow, x->name,
			    size, dir, x->peer, x->state, x->error[0] != '\0' ? ": " : "", x->error,
			    tui_xfer_percent(x->bytes, x->size));
		return;
	}
	tui_xfer_bar(bar, sizeof(bar), x->bytes, x->size, TUI_XFER_BAR_CELLS);
	tui_xfer_size(done, sizeof(done), x->bytes);
	tui_xfer_size(rate, sizeof(rate), (uint64_t)(x->rate > 0 ? x->rate : 0));
	tui_xfer_eta(eta, sizeof(eta), x->size > x->bytes ? x->size - x->bytes : 0, x->rate);
	/* A state other than moving (paused, a link down): said after it. */
	snprintf(out, outsz, "%s %s %s %s %s %3d%% %s of %s, %s/s, %s left%s%s", arrow, x->name,
	    dir, x->peer, bar, tui_xfer_percent(x->bytes, x->size), done, size, rate, eta,
	    moving(x->state) ? "" : ", ", moving(x->state) ? "" : x->state);
}

void
tui_xfer_summary(const struct tui_xfer *v, size_t n, char *out, size_t outsz)
{
	uint64_t bytes = 0, size = 0;
	size_t active = 0;

	for (size_t i = 0; i < n; i++) {
		if (tui_xfer_final(v[i].state) || strcmp(v[i].state, "offered") == 0)
			continue;
		active++;
		bytes += v[i].bytes < v[i].size ? v[i].bytes : v[i].size;
		size += v[i].size;
	}
	if (active == 0) {
		out[0] = '\0';
		return;
	}
	snprintf(out, outsz, "\u21c5 %zu file%s %d%%", active, active == 1 ? "" : "s",
	    tui_xfer_percent(bytes, size));
}

/* The model: transfers by id, each with its line in its peer's
 * conversation. */

struct tui_xfer *
tui_xfer_find(struct tui *t, const char *id)
{
	for (size_t i = 0; i < t->nxfers; i++)
		if (strcmp(t->xfers[i].id, id) == 0)
			return &t->xfers[i];
	return NULL;
}

/* A place for a new transfer: at TUI_XFER_MAX, the one that ended
 * longest ago goes (its line stays as it last read); if none has ended,
 * the oldest. */
static struct tui_xfer *
slot(struct tui *t)
{
	size_t victim = 0;
	int found = 0;

	if (t->nxfers < TUI_XFER_MAX) {
		t->xfers = xrealloc(t->xfers, (t->nxfers + 1) * sizeof(*t->xfers));
		return &t->xfers[t->nxfers++];
	}
	for (size_t i = 0; i < t->nxfers; i++) {
		int ended = tui_xfer_final(t->xfers[i].state);
		if ((ended && !found) ||
		    (ended == found && t->xfers[i].seen < t->xfers[victim].seen)) {
			if (ended)
				found = 1;
			victim = i;
		}
	}
	return &t->xfers[victim];
}

static uint64_t
get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	n = json_object_get_int64(v);
	return n > 0 ? (uint64_t)n : 0;
}

static void
copy(char *dst, size_t dstsz, struct json_object *o, const char *key)
{
	const char *s = http_json_str(o, key);

	if (s != NULL)
		snprintf(dst, dstsz, "%s", s);
}

struct tui_xfer *
tui_xfer_take(struct tui *t, struct json_object *o, int offer)
{
	const char *id = http_json_str(o, "id");
	const char *peer = http_json_str(o, offer ? "from" : "peer");
	struct tui_xfer *x;
	struct json_object *v;

	if (id == NULL || id[0] == '\0' || peer == NULL || peer[0] == '\0' ||
	    strlen(peer) > HY_NAME_MAX)
		return NULL;
	if ((x = tui_xfer_find(t, id)) == NULL) {
		x = slot(t);
		memset(x, 0, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", id);
		snprintf(x->state, sizeof(x->state), "offered");
	}
	snprintf(x->peer, sizeof(x->peer), "%s", peer);
	copy(x->name, sizeof(x->name), o, "name");
	if (offer) {
		x->incoming = 1;
	} else {
		x->incoming =
		    strcmp(
		        http_json_str(o, "direction") != NULL ? http_json_str(o, "direction") : "",
		        "in") == 0;
		copy(x->state, sizeof(x->state), o, "state");
		x->bytes = get_u64(o, "bytes");
		x->rate = json_object_object_get_ex(o, "rate", &v) ? json_object_get_double(v) : 0;
		x->error[0] = '\0';
		copy(x->error, sizeof(x->error), o, "error");
		/* Where a file received lands; a file sent's own path says nothing new. */
		if (x->incoming)
			copy(x->path, sizeof(x->path), o, "path");
	}
	x->size = get_u64(o, "size");
	x->seen = ++t->xfer_clock;
	return x;
}

static struct tui_msg *
new_line(const struct tui_xfer *x)
{
	struct tui_msg *m = xcalloc(1, sizeof(*m));
	char text[TUI_XFER_TEXT_MAX];
	time_t now = time(NULL);
	struct tm tm;

	m->kind = TUI_MSG_FILE;
	m->delivery = -1;
	localtime_r(&now, &tm);
	strftime(m->time, sizeof(m->time), "%H:%M", &tm);
	strftime(m->day, sizeof(m->day), "%Y-%m-%d", &tm);
	tui_xfer_text(x, text, sizeof(text));
	m->text = xstrdup(text);
	m->xfer = xstrdup(x->id);
	return m;
}

void
tui_xfer_show(struct tui *t, const struct tui_xfer *x)
{
	struct tui_conv *c = tui_conv_get(t, x->peer);
	char text[TUI_XFER_TEXT_MAX];

	if (c == NULL)
		return;
	tui_dirty(t);
	/* Its line is among the newest: looked for from the end. */
	for (size_t i = c->n; i-- > 0;) {
		struct tui_msg *m = c->msgs[i];
		if (m->kind != TUI_MSG_FILE || m->xfer == NULL || strcmp(m->xfer, x->id) != 0)
			continue;
		tui_xfer_text(x, text, sizeof(text));
		if (strcmp(text, m->text) != 0) {
			free(m->text);
			m->text = xstrdup(text);
			m->wrap_width = 0;
		}
		return;
	}
	tui_conv_add(t, c, new_line(x));
}

void
tui_xfer_attach(struct tui *t, struct tui_conv *c)
{
	for (size_t i = 0; i < t->nxfers; i++)
		if (strcmp(t->xfers[i].peer, c->name) == 0)
			tui_xfer_show(t, &t->xfers[i]);
}

void
tui_xfer_status(struct tui *t, char *out, size_t outsz)
{
	tui_xfer_summary(t->xfers, t->nxfers, out, outsz);
}
