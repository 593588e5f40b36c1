/* tui_input.c — the line editor: a line of wide characters and a cursor,
 * the editing keys of readline and irssi, and the typed lines kept in a
 * file of the data directory so Up finds them after a restart. */
#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wctype.h>

#include "hychat/log.h"
#include "tui_internal.h"

#define CTRL_KEY(c) ((c)&0x1f)

/* The file escapes backslashes and newlines, one line per entry. */
static char *
unescape(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			*o++ = s[i] == 'n' ? '\n' : s[i];
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static void
add_line(struct tui_input *in, char *line)
{
	if (in->nhist == TUI_INPUT_HISTORY_MAX) {
		free(in->hist[0]);
		memmove(in->hist, in->hist + 1, (in->nhist - 1) * sizeof(*in->hist));
		in->nhist--;
	}
	in->hist[in->nhist++] = line;
}

static void write_line(FILE *f, const char *line);

/* Rewrites the file with the entries kept, through a new file renamed
 * over it. */
static void
compact_history(struct tui_input *in)
{
	struct buf tmp;
	FILE *f;

	buf_init(&tmp);
	buf_printf(&tmp, "%s.new", in->hist_path);
	if ((f = fopen(tmp.data, "w")) != NULL) {
		for (size_t i = 0; i < in->nhist; i++)
			write_line(f, in->hist[i]);
		if (fclose(f) != 0 || rename(tmp.data, in->hist_path) != 0) {
			log_warn("%s: %s", in->hist_path, strerror(errno));
			unlink(tmp.data);
		}
	}
	buf_fini(&tmp);
}

static void
load_history(struct tui_input *in)
{
	FILE *f = fopen(in->hist_path, "r");
	char *line = NULL;
	size_t cap = 0, lines = 0;
	ssize_t n;

	if (f == NULL) {
		if (errno != ENOENT)
			log_warn("%s: %s", in->hist_path, strerror(errno));
		return;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0)
			add_line(in, unescape(line));
		lines++;
	}
	free(line);
	fclose(f);
	if (lines > 2 * TUI_INPUT_HISTORY_MAX)
		compact_history(in);
}

void
tui_input_init(struct tui_input *in, const char *hist_path)
{
	memset(in, 0, sizeof(*in));
	in->buf = xcalloc(TUI_INPUT_MAX + 1, sizeof(wchar_t));
	in->hist = xcalloc(TUI_INPUT_HISTORY_MAX, sizeof(*in->hist));
	in->hist_path = hist_path != NULL ? xstrdup(hist_path) : NULL;
	if (in->hist_path != NULL)
		load_history(in);
	in->pos = in->nhist;
}

void
tui_input_fini(struct tui_input *in)
{
	tui_input_wipe(in);
	free(in->buf);
	for (size_t i = 0; i < in->nhist; i++)
		free(in->hist[i]);
	free(in->hist);
	free(in->draft);
	free(in->comp_prefix);
	free(in->hist_path);
	free(in->scan_line);
	tui_path_scan_orphan(in->scanning); /* it ends on the pool, unheard */
	in->scanning = NULL;
}

static void
write_line(FILE *f, const char *line)
{
	for (const char *p = line; *p != '\0'; p++) {
		if (*p == '\\' || *p == '\n')
			fputc('\\', f);
		fputc(*p == '\n' ? 'n' : *p, f);
	}
	fputc('\n', f);
}

/* Appends the line to the file; at start, a file that holds twice as many
 * lines as are kept is cut back to those. */
static void
save_line(struct tui_input *in, const char *line)
{
	FILE *f;

	if (in->hist_path == NULL || (f = fopen(in->hist_path, "a")) == NULL)
		return;
	write_line(f, line);
	if (fclose(f) != 0)
		log_warn("%s: %s", in->hist_path, strerror(errno));
}

void
tui_input_remember(struct tui_input *in, const char *line)
{
	if (line[0] == '\0')
		return;
	if (in->nhist > 0 && strcmp(in->hist[in->nhist - 1], line) == 0) {
		in->pos = in->nhist;
		return;
	}
	add_line(in, xstrdup(line));
	in->pos = in->nhist;
	save_line(in, line);
}

static void
set_text(struct tui_input *in, const char *utf8)
{
	size_t len = strlen(utf8), off = 0;
	mbstate_t st;

	memset(&st, 0, sizeof(st));
	in->len = 0;
	while (off < len && in->len < TUI_INPUT_MAX) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, utf8 + off, len - off, &st);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&st, 0, sizeof(st));
			off++;
			continue;
		}
		in->buf[in->len++] = wc;
		off += n;
	}
	in->cur = in->len;
}

void
tui_input_history(struct tui_input *in, int dir)
{
	size_t pos = in->pos;

	if (dir < 0 && pos == 0)
		return;
	if (dir > 0 && pos >= in->nhist)
		return;
	if (pos == in->nhist) {
		free(in->draft);
		in->draft = xmalloc((in->len + 1) * sizeof(wchar_t));
		memcpy(in->draft, in->buf, in->len * sizeof(wchar_t));
		in->draft_len = in->len;
	}
	pos = dir < 0 ? pos - 1 : pos + 1;
	in->pos = pos;
	if (pos == in->nhist) {
		memcpy(in->buf, in->draft, in->draft_len * sizeof(wchar_t));
		in->len = in->cur = in->draft_len;
	} else {
		set_text(in, in->hist[pos]);
	}
	in->completing = 0;
}

void
tui_input_insert(struct tui_input *in, wchar_t c)
{
	if (in->len >= TUI_INPUT_MAX)
		return;
	memmove(in->buf + in->cur + 1, in->buf + in->cur, (in->len - in->cur) * sizeof(wchar_t));
	in->buf[in->cur++] = c;
	in->len++;
	in->completing = 0;
}

static void
delete_range(struct tui_input *in, size_t from, size_t to)
{
	if (to <= from)
		return;
	memmove(in->buf + from, in->buf + to, (in->len - to) * sizeof(wchar_t));
	in->len -= to - from;
	in->cur = from;
}

/* Deletes a word or more into the kill buffer, for Ctrl-Y. */
static void
kill_range(struct tui_input *in, size_t from, size_t to)
{
	if (to <= from)
		return;
	free(in->killed);
	in->killed = xmalloc((to - from) * sizeof(wchar_t));
	memcpy(in->killed, in->buf + from, (to - from) * sizeof(wchar_t));
	in->killed_len = to - from;
	memmove(in->buf + from, in->buf + to, (in->len - to) * sizeof(wchar_t));
	in->len -= to - from;
	in->cur = from;
}

static int
word_char(wchar_t c)
{
	return iswalnum((wint_t)c) || c == L'_' || c == L'#' || c == L'-' || c == L'.';
}

static size_t
word_left(const struct tui_input *in)
{
	size_t i = in->cur;

	while (i > 0 && !word_char(in->buf[i - 1]))
		i--;
	while (i > 0 && word_char(in->buf[i - 1]))
		i--;
	return i;
}

static size_t
word_right(const struct tui_input *in)
{
	size_t i = in->cur;

	while (i < in->len && !word_char(in->buf[i]))
		i++;
	while (i < in->len && word_char(in->buf[i]))
		i++;
	return i;
}

/* Ctrl-W deletes back to a blank, as in a shell. */
static size_t
blank_left(const struct tui_input *in)
{
	size_t i = in->cur;

	while (i > 0 && in->buf[i - 1] == L' ')
		i--;
	while (i > 0 && in->buf[i - 1] != L' ')
		i--;
	return i;
}

int
tui_input_edit(struct tui_input *in, int key, int is_code, int meta)
{
	size_t cur = in->cur;

	if (meta && !is_code) {
		switch (key) {
		case 'b': in->cur = word_left(in); break;
		case 'f': in->cur = word_right(in); break;
		case 'd': kill_range(in, cur, word_right(in)); break;
		case 127:
		case CTRL_KEY('h'): kill_range(in, word_left(in), cur); break;
		default: return 0;
		}
		in->completing = 0;
		return 1;
	}
	if (is_code) {
		switch (key) {
		case KEY_LEFT: in->cur = cur > 0 ? cur - 1 : 0; break;
		case TUI_KEY_CTRL_LEFT: in->cur = word_left(in); break;
		case TUI_KEY_CTRL_RIGHT: in->cur = word_right(in); break;
		case KEY_RIGHT: in->cur = cur < in->len ? cur + 1 : cur; break;
		case KEY_HOME: in->cur = 0; break;
		case KEY_END: in->cur = in->len; break;
		case KEY_BACKSPACE: delete_range(in, cur > 0 ? cur - 1 : 0, cur); break;
		case KEY_DC: delete_range(in, cur, cur < in->len ? cur + 1 : cur); break;
		case KEY_UP: tui_input_history(in, -1); break;
		case KEY_DOWN: tui_input_history(in, 1); break;
		default: return 0;
		}
		in->completing = 0;
		return 1;
	}
	switch (key) {
	case CTRL_KEY('a'): in->cur = 0; break;
	case CTRL_KEY('e'): in->cur = in->len; break;
	case CTRL_KEY('b'): in->cur = cur > 0 ? cur - 1 : 0; break;
	case CTRL_KEY('f'): in->cur = cur < in->len ? cur + 1 : cur; break;
	case CTRL_KEY('u'): kill_range(in, 0, cur); break;
	case CTRL_KEY('k'): kill_range(in, cur, in->len); break;
	case CTRL_KEY('w'): kill_range(in, blank_left(in), cur); break;
	case CTRL_KEY('y'):
		for (size_t i = 0; i < in->killed_len; i++)
			tui_input_insert(in, in->killed[i]);
		break;
	case CTRL_KEY('d'): delete_range(in, cur, cur < in->len ? cur + 1 : cur); break;
	case CTRL_KEY('h'):
	case 127: delete_range(in, cur > 0 ? cur - 1 : 0, cur); break;
	case CTRL_KEY('t'):
		if (cur > 0 && in->len >= 2) {
			size_t i = cur < in->len ? cur : cur - 1;
			wchar_t c = in->buf[i - 1];
			in->buf[i - 1] = in->buf[i];
			in->buf[i] = c;
			in->cur = i + 1;
		}
		break;
	default: return 0;
	}
	in->completing = 0;
	return 1;
}

char *
tui_input_take(struct tui_input *in)
{
	char *s = tui_text_utf8(in->buf, in->len);

	tui_input_clear(in);
	return s;
}

void
tui_input_clear(struct tui_input *in)
{
	in->len = in->cur = 0;
	in->pos = in->nhist;
	in->completing = 0;
	in->scroll = 0;
}

void
tui_input_wipe(struct tui_input *in)
{
	if (in->buf != NULL)
		explicit_bzero(in->buf, (TUI_INPUT_MAX + 1) * sizeof(wchar_t));
	/* What Ctrl-U cut from a password is a password too. */
	if (in->killed != NULL)
		explicit_bzero(in->killed, in->killed_len * sizeof(wchar_t));
	free(in->killed);
	in->killed = NULL;
	in->killed_len = 0;
	tui_input_clear(in);
}

void
tui_input_word(const struct tui_input *in, size_t *start, size_t *len)
{
	size_t i = in->cur;

	while (i > 0 && in->buf[i - 1] != L' ')
		i--;
	*start = i;
	*len = in->cur - i;
}

void
tui_input_replace(struct tui_input *in, size_t start, size_t len, const char *utf8)
{
	mbstate_t st;
	size_t n = 0, off = 0, slen = strlen(utf8);
	wchar_t *w = xmalloc((slen + 1) * sizeof(wchar_t)); /* a path may be long */

	memset(&st, 0, sizeof(st));
	while (off < slen) {
		size_t k = mbrtowc(&w[n], utf8 + off, slen - off, &st);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0)
			break;
		off += k;
		n++;
	}
	if (start > in->len || start + len > in->len || in->len - len + n > TUI_INPUT_MAX) {
		free(w);
		return;
	}
	memmove(
	    in->buf + start + n, in->buf + start + len, (in->len - start - len) * sizeof(wchar_t));
	memcpy(in->buf + start, w, n * sizeof(wchar_t));
	in->len = in->len - len + n;
	in->cur = start + n;
	free(w);
}

size_t
tui_input_lines(const struct tui_input *in)
{
	size_t n = 1;

	for (size_t i = 0; i < in->len; i++)
		n += in->buf[i] == L'\n';
	return n;
}
