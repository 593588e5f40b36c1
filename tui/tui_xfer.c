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
		snprintf(out, outsz, "%s %s offers %s (%s): /accept %s [PATH] or /reject %s", arrow,
		    x->peer, x->name, size, x->id, x->id);
		return;
	}
	if (!x->incoming &&
	    (strcmp(x->state, "offered") == 0 || strcmp(x->state, "waiting") == 0)) {
		snprintf(out, outsz,
		    "%s %s (%s) %s %s: offered, waiting for an answer (/cancel %s)", arrow, x->name,
		    size, dir, x->peer, x->id);
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
