/* file_name.c — the names received files may take: the check of an
 * offered name and the "NAME (n).EXT" candidates. */
#include "hychat/file_name.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The length of the UTF-8 character at s[0..n) that is not a control
 * character, or 0. */
static size_t
char_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = c < 0x80    ? 1
	    : (c & 0xE0) == 0xC0 ? 2
	    : (c & 0xF0) == 0xE0 ? 3
	    : (c & 0xF8) == 0xF0 ? 4
	                         : 0;
	uint32_t cp;

	if (len == 0 || len > n || c < 0x20 || c == 0x7F || c == 0xC0 || c == 0xC1)
		return 0;
	cp = len == 1 ? c : (uint32_t)(c & (0x7F >> len));
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3F);
	}
	if ((len == 2 && cp < 0xA0) || /* C1 controls */
	    (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

int
file_name_check(const char *name, size_t len, const char **err)
{
	const unsigned char *s = (const unsigned char *)name;

	if (len == 0 || len > FILE_NAME_MAX) {
		*err = "a file name of 1 to 200 bytes";
		return -1;
	}
	for (size_t i = 0, k; i < len; i += k) {
		if (s[i] == '/' || s[i] == '\\') {
			*err = "a file name may not hold a path separator";
			return -1;
		}
		if ((k = char_len(s + i, len - i)) == 0) {
			*err = "a file name must be UTF-8 without control characters";
			return -1;
		}
	}
	if (name[0] == '.' || name[0] == ' ' || name[len - 1] == ' ' || name[len - 1] == '.') {
		*err = "a file name may not start with a dot or a blank, nor end with one";
		return -1;
	}
	return 0;
}

int
file_name_candidate(const char *name, unsigned n, char *out, size_t size)
{
	const char *dot = strrchr(name, '.');
	size_t base = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
	int w;

	if (n == 0)
		w = snprintf(out, size, "%s", name);
	else
		w = snprintf(out, size, "%.*s (%u)%s", (int)base, name, n, name + base);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}
