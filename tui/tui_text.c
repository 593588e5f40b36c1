/* tui_text.c — UTF-8 text as the terminal shows it: each character's
 * width in cells (wide CJK and emoji 2, combining marks 0), what replaces
 * what cannot be shown, and word wrap on those widths. The drawing and
 * the wrapping share tui_text_next(), so a line never measures one width
 * and draws another. */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tui_internal.h"

#define TUI_REPLACEMENT 0xFFFD

int
tui_wchar_width(wchar_t c)
{
	int w;

	if (c == L'\t')
		return 1;
	w = wcwidth(c);
	return w < 0 ? 1 : w;
}

size_t
tui_text_next(const char *s, size_t len, wchar_t *wc, int *width)
{
	mbstate_t st;
	size_t n;

	memset(&st, 0, sizeof(st));
	n = mbrtowc(wc, s, len, &st);
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
		*wc = TUI_REPLACEMENT;
		*width = 1;
		return 1;
	}
	if (*wc == L'\t') {
		*wc = L' ';
		*width = 1;
		return n;
	}
	*width = wcwidth(*wc);
	if (*width < 0) {
		/* Control characters would move the cursor behind ncurses' back. */
		*wc = TUI_REPLACEMENT;
		*width = 1;
	}
	return n;
}

int
tui_text_width(const char *s, size_t len)
{
	size_t off = 0;
	int w = 0, cw;
	wchar_t wc;

	while (off < len) {
		off += tui_text_next(s + off, len - off, &wc, &cw);
		w += cw;
	}
	return w;
}

int
tui_text_wrap(const char *s, int width, struct tui_span *spans, int max)
{
	size_t len = strlen(s), off = 0, start = 0, brk = 0;
	int nlines = 0, col = 0, brk_col = 0;
	wchar_t wc;
	int cw;

	if (width < 1)
		width = 1;
	while (off < len) {
		if (s[off] == '\n') {
			if (nlines < max)
				spans[nlines] = (struct tui_span){ start, off - start };
			nlines++;
			off++;
			start = off;
			col = 0;
			brk = 0;
			continue;
		}
		size_t n = tui_text_next(s + off, len - off, &wc, &cw);
		while (col + cw > width && col > 0) {
			/* Break after the last blank of the line, or here if none. */
			size_t end = brk > start ? brk : off;
			if (nlines < max)
				spans[nlines] = (struct tui_span){ start, end - start };
			nlines++;
			if (brk > start) {
				col -= brk_col;
				start = brk;
			} else {
				col = 0;
				start = off;
			}
			brk = 0;
		}
		col += cw;
		off += n;
		if (wc == L' ') {
			brk = off;
			brk_col = col;
		}
	}
	if (off > start || nlines == 0) {
		if (nlines < max)
			spans[nlines] = (struct tui_span){ start, off - start };
		nlines++;
	}
	return nlines;
}

char *
tui_text_utf8(const wchar_t *w, size_t n)
{
	struct buf b;
	char mb[MB_LEN_MAX];
	mbstate_t st;

	buf_init(&b);
	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < n; i++) {
		size_t k = wcrtomb(mb, w[i], &st);
		if (k == (size_t)-1) {
			memset(&st, 0, sizeof(st));
			continue;
		}
		buf_append(&b, mb, k);
	}
	buf_append(&b, "", 0);
	if (b.data == NULL)
		return xstrdup("");
	return b.data;
}
