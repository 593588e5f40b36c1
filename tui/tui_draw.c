/* tui_draw.c — the screen: the layout for the terminal's size (panes fold
 * away when it is narrow), and every pane drawn from the model. Only what
 * is visible is measured and drawn, so the cost of a redraw does not grow
 * with the history; ncurses sends the terminal only what changed. */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tui_internal.h"

#include "hychat/delivery.h"

enum {
	PAIR_NICK = 1, /* 1 to NICK_COLORS */
	NICK_COLORS = 6,
	PAIR_ERROR = NICK_COLORS + 1,
	PAIR_MENTION,
	PAIR_ONLINE,
	PAIR_MARKER,
	PAIR_BAR,
	PAIR_INSECURE,
};

#define LINES_MAX_SPANS 4096 /* lines of one message drawn at most */

void
tui_draw_colors(struct tui *t)
{
	static const short nick[NICK_COLORS] = { COLOR_RED, COLOR_GREEN, COLOR_YELLOW, COLOR_BLUE,
		COLOR_MAGENTA, COLOR_CYAN };

	if (!t->color)
		return;
	for (int i = 0; i < NICK_COLORS; i++)
		init_pair((short)(PAIR_NICK + i), nick[i], -1);
	init_pair(PAIR_ERROR, COLOR_RED, -1);
	init_pair(PAIR_MENTION, COLOR_YELLOW, -1);
	init_pair(PAIR_ONLINE, COLOR_GREEN, -1);
	init_pair(PAIR_MARKER, COLOR_RED, -1);
	init_pair(PAIR_BAR, COLOR_WHITE, COLOR_BLUE);
	init_pair(PAIR_INSECURE, COLOR_WHITE, COLOR_RED);
}

static attr_t
color(struct tui *t, int pair)
{
	return t->color ? (attr_t)COLOR_PAIR(pair) : A_NORMAL;
}

/* A stable colour per name: the same on every screen and every run. */
static attr_t
nick_attr(struct tui *t, const char *name)
{
	uint32_t h = 2166136261u;

	for (const char *p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return color(t, PAIR_NICK + (int)(h % NICK_COLORS)) | A_BOLD;
}

static attr_t
bar_attr(struct tui *t)
{
	return t->color ? color(t, PAIR_BAR) : A_REVERSE;
}

void
tui_draw_layout(struct tui *t)
{
	getmaxyx(stdscr, t->rows, t->cols);
	t->left_w = t->cols >= TUI_LEFT_MIN_COLS ? TUI_LEFT_WIDTH : 0;
	t->right_w = t->cols >= TUI_RIGHT_MIN_COLS ? TUI_RIGHT_WIDTH : 0;
	t->msg_x = t->left_w > 0 ? t->left_w + 1 : 0;
	t->msg_w = t->cols - t->msg_x - (t->right_w > 0 ? t->right_w + 1 : 0);
	if (t->msg_w < 1)
		t->msg_w = 1;
	t->msg_h = t->rows - 3;
	if (t->msg_h < 0)
		t->msg_h = 0;
}

/* Draws s[0..len) from (y, x) in at most w cells; returns the cells used. */
static int
put_text(int y, int x, const char *s, size_t len, int w)
{
	wchar_t buf[512];
	size_t n = 0, off = 0;
	int used = 0;

	move(y, x);
	while (off < len) {
		wchar_t wc;
		int cw;
		size_t k = tui_text_next(s + off, len - off, &wc, &cw);
		if (used + cw > w)
			break;
		if (n == HY_ARRAY_LEN(buf) - 1) {
			addnwstr(buf, (int)n);
			n = 0;
		}
		/* A combining mark with nothing to combine with stands alone. */
		if (cw == 0 && used == 0)
			wc = L' ', cw = 1;
		buf[n++] = wc;
		used += cw;
		off += k;
	}
	if (n > 0)
		addnwstr(buf, (int)n);
	return used;
}

static int
put_str(int y, int x, const char *s, int w)
{
	return put_text(y, x, s, strlen(s), w);
}

static void
fill(int y, int x, int w, attr_t a)
{
	attrset(a);
	mvhline(y, x, ' ', w);
}

/* Beside an own direct message: pending, stored at the tracker, delivered. */
static const char *const delivery_marks[] = {
	[DELIVERY_PENDING] = "\u2026",
	[DELIVERY_STORED] = "\u2709",
	[DELIVERY_DELIVERED] = "\u2713",
};

int
tui_msg_prefix(const struct tui_msg *m)
{
	int nick = m->from != NULL ? tui_text_width(m->from, strlen(m->from)) : 0;

	switch (m->kind) {
	case TUI_MSG_CHAT: return TUI_TIME_LEN + 1 + (m->delivery >= 0 ? 2 : 0) + nick + 3;
	case TUI_MSG_ACTION: return TUI_TIME_LEN + 1 + 2 + nick + 1;
	default: return TUI_TIME_LEN + 1 + 4;
	}
}

static void
draw_prefix(struct tui *t, const struct tui_msg *m, int y)
{
	int x = t->msg_x;

	attrset(A_DIM);
	x += put_str(y, x, m->time, TUI_TIME_LEN) + 1;
	switch (m->kind) {
	case TUI_MSG_CHAT:
		if (m->delivery >= 0 && m->delivery < (int)HY_ARRAY_LEN(delivery_marks)) {
			attrset(m->delivery == DELIVERY_DELIVERED ? A_BOLD : A_DIM);
			x += put_str(y, x, delivery_marks[m->delivery], 1) + 1;
		}
		attrset(A_DIM);
		mvaddch(y, x++, '<');
		attrset(m->outgoing ? A_BOLD : nick_attr(t, m->from));
		x += put_str(y, x, m->from, t->msg_w - (x - t->msg_x));
		attrset(A_DIM);
		mvaddch(y, x, '>');
		break;
	case TUI_MSG_ACTION:
		attrset(A_BOLD);
		mvaddch(y, x, '*');
		x += 2;
		attrset(nick_attr(t, m->from));
		put_str(y, x, m->from, t->msg_w - (x - t->msg_x));
		break;
	case TUI_MSG_SYSTEM:
		attrset(A_DIM);
		put_str(y, x, "-!-", 3);
		break;
	case TUI_MSG_ERROR:
		attrset(color(t, PAIR_ERROR) | A_BOLD);
		put_str(y, x, "-!-", 3);
		break;
	case TUI_MSG_FILE:
		attrset(A_BOLD);
		put_str(y, x, "-\u21c5-", 3);
		break;
	}
}

static attr_t
text_attr(struct tui *t, const struct tui_conv *c, const struct tui_msg *m)
{
	if (m->seq != 0 && m->seq == c->hit_seq)
		return A_REVERSE;
	switch (m->kind) {
	case TUI_MSG_SYSTEM: return A_DIM;
	case TUI_MSG_ERROR: return color(t, PAIR_ERROR);
	case TUI_MSG_ACTION: return m->mention ? color(t, PAIR_MENTION) | A_BOLD : A_ITALIC;
	default: return m->mention ? color(t, PAIR_MENTION) | A_BOLD : A_NORMAL;
	}
}

/* "── Tue, 24 Nov 2026 ──" above the first message of a day. */
static void
draw_day(struct tui *t, const struct tui_msg *m, int y)
{
	struct tm tm = { 0 };
	char label[64];

	if (sscanf(m->day, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
		return;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_hour = 12;
	tm.tm_isdst = -1;
	if (mktime(&tm) == (time_t)-1 ||
	    strftime(label + 1, sizeof(label) - 2, "%a, %d %b %Y", &tm) == 0)
		snprintf(label + 1, sizeof(label) - 2, "%s", m->day);
	label[0] = ' ';
	strcat(label, " ");
	attrset(A_DIM);
	mvhline(y, t->msg_x, ACS_HLINE, t->msg_w);
	if (t->msg_w > 6)
		put_str(y, t->msg_x + 2, label, t->msg_w - 4);
}

/* Draws the lines [from, to) of message m, its line `from` on row y. */
static void
draw_msg(struct tui *t, struct tui_conv *c, struct tui_msg *m, int from, int to, int y)
{
	int p = tui_msg_prefix(m), own_line = t->msg_w - p < TUI_TEXT_MIN;
	int tw = own_line ? t->msg_w : t->msg_w - p, indent = own_line ? 0 : p;
	int day = m->day_break, marker = m->seq != 0 && m->seq == c->marker_seq, nspans;
	int backlog = m->seq != 0 && m->seq == c->backlog_seq;
	struct tui_span *spans;

	nspans = tui_text_wrap(m->text, tw, NULL, 0);
	if (nspans > LINES_MAX_SPANS)
		nspans = LINES_MAX_SPANS;
	spans = xmalloc((size_t)nspans * sizeof(*spans));
	tui_text_wrap(m->text, tw, spans, nspans);
	/* The lines: the day's, the unread marker, the prefix's own (when the
	 * text is too narrow beside it), then the text. */
	for (int k = from; k < to; k++, y++) {
		int line = k - day - marker - backlog - own_line;
		if (day && k == 0) {
			draw_day(t, m, y);
			continue;
		}
		if (marker && k == day) {
			attrset(color(t, PAIR_MARKER) | A_BOLD);
			mvhline(y, t->msg_x, ACS_HLINE, t->msg_w);
			if (t->msg_w > 14)
				put_str(y, t->msg_x + 2, " new messages ", t->msg_w - 2);
			continue;
		}
		if (backlog && k == day + marker) {
			char label[sizeof(" history since HH:MM ") + 8];
			snprintf(label, sizeof(label), " history since %s ", c->backlog_since);
			attrset(color(t, PAIR_MARKER) | A_DIM);
			mvhline(y, t->msg_x, ACS_HLINE, t->msg_w);
			if (t->msg_w > (int)strlen(label) + 2)
				put_str(y, t->msg_x + 2, label, t->msg_w - 2);
			continue;
		}
		if (line == (own_line ? -1 : 0))
			draw_prefix(t, m, y);
		if (line < 0 || line >= nspans)
			continue;
		attrset(text_attr(t, c, m));
		put_text(y, t->msg_x + indent, m->text + spans[line].off, spans[line].len, tw);
	}
	free(spans);
}

static void
draw_messages(struct tui *t, struct tui_conv *c)
{
	int rows_left = t->msg_h; /* rows 1 to rows_left are still free */

	if (c == NULL || c->n == 0 || t->msg_h <= 0) {
		if (c != NULL && c->loaded && t->msg_h > 0) {
			attrset(A_DIM);
			put_str(1, t->msg_x,
			    c->channel ? "No messages yet: say hello."
			               : "No messages yet: type one to send it.",
			    t->msg_w);
		}
		return;
	}
	if (c->follow) {
		c->bottom = c->n - 1;
		c->skip = 0;
	}
	for (size_t i = c->bottom + 1; i > 0 && rows_left > 0; i--) {
		struct tui_msg *m = c->msgs[i - 1];
		int total = tui_msg_lines(t, c, m);
		int last = total - (i - 1 == c->bottom ? c->skip : 0); /* lines [0, last) */
		int first = last - rows_left > 0 ? last - rows_left : 0;
		if (last <= 0)
			continue;
		draw_msg(t, c, m, first, last, rows_left - (last - first) + 1);
		rows_left -= last - first;
	}
}

static void
draw_left(struct tui *t)
{
	int h = t->rows - 3, first = 0;

	if (t->left_w == 0 || h <= 0)
		return;
	if ((int)t->cur >= h)
		first = (int)t->cur - h + 1;
	for (int row = 0; row < h && first + row < (int)t->nconvs; row++) {
		size_t i = (size_t)(first + row);
		struct tui_conv *c = t->convs[i];
		char num[24], count[24] = "";
		int y = 1 + row, x = 0, w = t->left_w;
		attr_t a = A_NORMAL;

		if (i == t->cur)
			a = A_REVERSE;
		else if (c->mention)
			a = color(t, PAIR_MENTION) | A_BOLD;
		else if (c->activity || c->unread > 0)
			a = A_BOLD;
		fill(y, 0, w, a);
		snprintf(num, sizeof(num), "%zu", i + 1);
		if (i != t->cur && c->unread > 0)
			snprintf(count, sizeof(count), "%s%lld", c->mention ? "!" : "",
			    (long long)c->unread);
		else if (i != t->cur && c->mention)
			snprintf(count, sizeof(count), "!");
		attrset(a | (i == t->cur ? 0 : A_DIM));
		x += put_str(y, x, num, 3);
		x = 3;
		attrset(a);
		put_str(y, x, c->name, w - x - (int)strlen(count) - (count[0] ? 1 : 0));
		if (count[0] != '\0')
			put_str(y, w - (int)strlen(count), count, (int)strlen(count));
	}
	attrset(A_DIM);
	mvvline(1, t->left_w, ACS_VLINE, h);
}

/* The contacts first, each with a presence mark ('+' online, '~' away,
 * blank offline); returns the next free row. */
static int
draw_contacts(struct tui *t, int x, int y, int w, int h)
{
	char line[96];

	if (t->ncontacts == 0)
		return y;
	attrset(A_BOLD);
	put_str(y++, x, "contacts", w);
	for (size_t i = 0; i < t->ncontacts && y <= h; i++, y++) {
		struct tui_peer *p = NULL;
		for (size_t k = 0; k < t->npeers; k++)
			if (strcmp(t->peers[k].name, t->contacts[i]) == 0)
				p = &t->peers[k];
		attrset(p != NULL && p->online ? color(t, PAIR_ONLINE) | A_BOLD : A_DIM);
		put_str(y, x, p == NULL || !p->online ? " " : p->away ? "~" : "+", 1);
		attrset(p != NULL && p->online ? nick_attr(t, t->contacts[i]) : A_DIM);
		snprintf(line, sizeof(line), "%s%s", t->contacts[i],
		    p == NULL || !p->online ? " (offline)"
		        : p->away           ? " (away)"
		                            : "");
		put_str(y, x + 1, line, w - 1);
	}
	return y + 1;
}

static void
draw_right(struct tui *t, struct tui_conv *c)
{
	int h = t->rows - 3, x = t->cols - t->right_w, y = 1, w = t->right_w;
	char line[160];

	if (t->right_w == 0 || h <= 0)
		return;
	attrset(A_DIM);
	mvvline(1, x - 1, ACS_VLINE, h);
	y = draw_contacts(t, x, y, w, h);
	if (c == NULL)
		return;
	if (c->channel) {
		snprintf(line, sizeof(line), "%zu online", c->nmembers);
		attrset(A_BOLD);
		put_str(y++, x, c->listed ? line : "...", w);
		for (size_t i = 0; i < c->nmembers && y <= h; i++, y++) {
			const char *u = c->members[i];
			struct tui_peer *p = NULL;
			int self = strcmp(u, engine_username(t->e)) == 0;
			for (size_t k = 0; k < t->npeers; k++)
				if (strcmp(t->peers[k].name, u) == 0)
					p = &t->peers[k];
			/* The mark: '+' an encrypted link, '!' a plaintext one. */
			attrset(p != NULL && p->link ? color(t, PAIR_ONLINE) | A_BOLD : A_DIM);
			put_str(y, x,
			    self                       ? "@"
			        : p != NULL && p->link ? (p->encrypted ? "+" : "!")
			                               : " ",
			    1);
			attrset(self ? A_BOLD : nick_attr(t, u));
			snprintf(line, sizeof(line), "%s%s%s%s%s", u,
			    p != NULL && p->display[0] ? " (" : "", p != NULL ? p->display : "",
			    p != NULL && p->display[0] ? ")" : "",
			    p != NULL && p->away ? " (away)" : "");
			put_str(y, x + 1, line, w - 1);
		}
		return;
	}
	{
		struct tui_peer *p = NULL;
		for (size_t k = 0; k < t->npeers; k++)
			if (strcmp(t->peers[k].name, c->name) == 0)
				p = &t->peers[k];
		attrset(nick_attr(t, c->name));
		put_str(y++, x, c->name, w);
		if (p != NULL && p->display[0] != '\0') {
			attrset(A_NORMAL);
			put_str(y++, x, p->display, w);
		}
		attrset(p != NULL && p->online ? color(t, PAIR_ONLINE) : A_DIM);
		if (p != NULL && p->online && p->away) {
			snprintf(line, sizeof(line), "away%s%s", p->away_message[0] ? ": " : "",
			    p->away_message);
			put_str(y++, x, line, w);
		} else {
			put_str(y++, x, p != NULL && p->online ? "online" : "offline", w);
		}
		attrset(A_NORMAL);
		put_str(y++, x,
		    p == NULL || !p->link ? "no link"
		        : p->encrypted    ? "link: encrypted"
		                          : "link: PLAINTEXT",
		    w);
		if (p != NULL && p->link && p->path[0] != '\0')
			put_str(y++, x, p->path, w);
		y++;
		attrset(A_DIM);
		put_str(y++, x, "key:", w);
		attrset(A_NORMAL);
		if (c->fingerprint[0] == '\0') {
			put_str(y++, x, "unknown", w);
		} else {
			size_t len = strlen(c->fingerprint);
			for (size_t off = 0; off < len && y <= h - 1; off += (size_t)w, y++)
				put_text(y, x, c->fingerprint + off,
				    len - off < (size_t)w ? len - off : (size_t)w, w);
			attrset(A_DIM);
			snprintf(line, sizeof(line), "(%s)", c->fp_source);
			if (y <= h)
				put_str(y++, x, line, w);
		}
	}
}

static void
draw_title(struct tui *t, struct tui_conv *c)
{
	char line[256];

	fill(0, 0, t->cols, bar_attr(t));
	if (c == NULL) {
		put_str(0, 1, "hychat", t->cols - 1);
		return;
	}
	if (t->mode == TUI_LOGIN || t->mode == TUI_REGISTER || t->mode == TUI_REGISTER_AGAIN)
		snprintf(line, sizeof(line), "%s %s: type the password. Tab: %s. Escape: later.",
		    t->mode == TUI_LOGIN ? "Log in as" : "New account for", engine_username(t->e),
		    t->mode == TUI_LOGIN ? "new account" : "log in");
	else if (c->channel)
		snprintf(line, sizeof(line), "%s  %zu online%s", c->name, c->nmembers,
		    strcmp(c->name, "#" ENGINE_BROADCAST) == 0 ? ", reaches every online peer"
		                                               : "");
	else
		snprintf(line, sizeof(line), "%s  direct conversation", c->name);
	put_str(0, 1, line, t->cols - 1);
}

/* The current link's state, as the status bar shows it. */
static void
link_state(struct tui *t, struct tui_conv *c, char *out, size_t outsz)
{
	size_t up = 0, enc = 0, others = 0;

	if (c == NULL) {
		out[0] = '\0';
		return;
	}
	if (!c->channel) {
		struct tui_peer *p = NULL;
		for (size_t k = 0; k < t->npeers; k++)
			if (strcmp(t->peers[k].name, c->name) == 0)
				p = &t->peers[k];
		snprintf(out, outsz, "%s",
		    p == NULL || !p->link ? "no link"
		        : p->encrypted    ? "encrypted"
		                          : "PLAINTEXT");
		return;
	}
	for (size_t i = 0; i < c->nmembers; i++) {
		if (strcmp(c->members[i], engine_username(t->e)) == 0)
			continue;
		others++;
		for (size_t k = 0; k < t->npeers; k++) {
			if (strcmp(t->peers[k].name, c->members[i]) == 0 && t->peers[k].link) {
				up++;
				enc += t->peers[k].encrypted != 0;
			}
		}
	}
	if (up > enc)
		snprintf(out, outsz, "%zu/%zu links, %zu PLAINTEXT", up, others, up - enc);
	else
		snprintf(out, outsz, "%zu/%zu links encrypted", up, others);
}

static void
draw_status(struct tui *t, struct tui_conv *c)
{
	int y = t->rows - 2;
	struct buf b;
	char link[64];
	const char *marker;
	size_t marker_at;

	if (y < 1)
		return;
	fill(y, 0, t->cols, bar_attr(t));
	buf_init(&b);
	link_state(t, c, link, sizeof(link));
	buf_printf(&b, "[%s]", engine_username(t->e));
	if (t->left_w == 0) {
		/* No left pane: irssi's activity list instead, first. */
		int first = 1;
		for (size_t i = 0; i < t->nconvs; i++) {
			struct tui_conv *o = t->convs[i];
			if (i == t->cur || (o->unread == 0 && !o->activity && !o->mention))
				continue;
			buf_printf(
			    &b, "%s%zu%s", first ? " act: " : ",", i + 1, o->mention ? "!" : "");
			first = 0;
		}
		if (!first)
			buf_append_str(&b, " |");
	}
	buf_printf(&b, " tracker: %s", t->tracker);
	/* Not TLS: the password and the token cross the wire in clear. */
	marker = t->tracker_tls ? NULL : t->tracker_loopback ? "http" : "INSECURE http";
	marker_at = b.len + 1;
	if (marker != NULL)
		buf_printf(&b, " %s", marker);
	if (c != NULL)
		buf_printf(&b, " | %zu:%s | %s", t->cur + 1, c->name, link);
	if (c != NULL && !c->follow)
		buf_printf(&b, " | -- more%s --", c->at_end ? "" : ", older history");
	{
		char xfers[64];
		tui_xfer_status(t, xfers, sizeof(xfers));
		if (xfers[0] != '\0')
			buf_printf(&b, " | %s", xfers);
	}
	if (c != NULL && c->ntyping > 0) {
		buf_append_str(&b, " | ");
		for (size_t i = 0; i < c->ntyping; i++)
			buf_printf(&b, "%s%s", i > 0 ? ", " : "", c->typing[i]);
		buf_append_str(
		    &b, c->ntyping > 1 ? " are typing\xe2\x80\xa6" : " is typing\xe2\x80\xa6");
	}
	attrset(bar_attr(t));
	put_str(y, 0, b.data, t->cols);
	if (marker != NULL) {
		int w = tui_text_width(b.data, marker_at);
		if (w < t->cols) {
			attrset(t->color ? color(t, PAIR_INSECURE) | A_BOLD : A_BOLD);
			put_str(y, w, marker, t->cols - w);
		}
	}
	if (t->notice[0] != '\0') {
		int w = tui_text_width(b.data, b.len) + 3;
		if (w < t->cols) {
			attrset(bar_attr(t) | A_BOLD);
			put_str(y, w, t->notice, t->cols - w);
		}
	}
	buf_fini(&b);
}

static int
input_prompt(struct tui *t, char *out, size_t outsz)
{
	struct tui_conv *c = tui_conv_current(t);
	const char *name = c != NULL ? c->name : "";

	switch (t->mode) {
	case TUI_LOGIN: snprintf(out, outsz, "password for %s: ", engine_username(t->e)); break;
	case TUI_REGISTER:
		snprintf(out, outsz, "new password for %s: ", engine_username(t->e));
		break;
	case TUI_REGISTER_AGAIN: snprintf(out, outsz, "the same again: "); break;
	case TUI_SEARCH: snprintf(out, outsz, "search %s: ", name); break;
	case TUI_CONFIRM: snprintf(out, outsz, "send? (y/n) "); break;
	default: snprintf(out, outsz, "[%s] ", name); break;
	}
	return t->mode == TUI_LOGIN || t->mode == TUI_REGISTER || t->mode == TUI_REGISTER_AGAIN;
}

static void
draw_input(struct tui *t)
{
	struct tui_input *in = &t->input;
	char prompt[128];
	int y = t->rows - 1, x, hidden, room, cx;
	wchar_t one[2] = { 0, 0 };

	hidden = input_prompt(t, prompt, sizeof(prompt));
	if (t->mode == TUI_CONFIRM && t->confirm_text != NULL) {
		size_t n = 1;
		for (const char *p = t->confirm_text; *p != '\0'; p++)
			n += *p == '\n';
		snprintf(prompt, sizeof(prompt), "send %zu lines? (y/n) ", n);
	}
	fill(y, 0, t->cols, A_NORMAL);
	attrset(A_BOLD);
	x = put_str(y, 0, prompt, t->cols / 2);
	attrset(A_NORMAL);
	if (hidden || t->mode == TUI_CONFIRM) {
		move(y, x);
		return;
	}
	room = t->cols - x - 1;
	if (room < 1)
		room = 1;
	/* Scroll so the cursor stays on the screen: walk back from it over
	 * what fits, never over the whole line (a paste may be 64 KiB). */
	if (in->scroll > in->cur)
		in->scroll = in->cur;
	{
		size_t i = in->cur;
		int w = 0;
		while (i > in->scroll) {
			int cw = in->buf[i - 1] == L'\n' ? 1 : tui_wchar_width(in->buf[i - 1]);
			if (w + cw > room)
				break;
			w += cw;
			i--;
		}
		if (i > in->scroll)
			in->scroll = i;
	}
	move(y, x);
	cx = x;
	for (size_t i = in->scroll; i < in->len; i++) {
		wchar_t c = in->buf[i];
		int w = c == L'\n' ? 1 : tui_wchar_width(c), px = getcurx(stdscr);
		if (i == in->cur)
			cx = px;
		/* The last column stays free for the cursor at the end. */
		if (px + w > t->cols - 1)
			break;
		one[0] = c == L'\n' ? L'\x21b5' : (wcwidth(c) < 0 ? L'\xfffd' : c);
		if (c == L'\n')
			attrset(A_DIM);
		addnwstr(one, 1);
		attrset(A_NORMAL);
	}
	if (in->cur >= in->len && in->cur > in->scroll)
		cx = getcurx(stdscr);
	move(y, cx < t->cols ? cx : t->cols - 1);
}

void
tui_draw(struct tui *t)
{
	struct tui_conv *c = tui_conv_current(t);

	tui_draw_layout(t);
	attrset(A_NORMAL);
	erase();
	if (t->rows >= 4) {
		draw_title(t, c);
		draw_left(t);
		draw_right(t, c);
		draw_messages(t, c);
		draw_status(t, c);
	}
	draw_input(t);
	wnoutrefresh(stdscr);
	doupdate();
}
