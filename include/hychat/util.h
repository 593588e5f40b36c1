/* util.h — allocation wrappers, growable byte buffers, small string helpers.
 *
 * Allocation failure is handled once, here: the x* wrappers abort with a
 * message, so callers never check for NULL.
 */
#ifndef HYCHAT_UTIL_H
#define HYCHAT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define HY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Names, the same at the tracker, the peer and the web app. */
#define HY_NAME_MAX 32 /* bytes of a username */
#define HY_CHANNEL_MAX 64 /* bytes of a channel name, without its '#' */
#define HY_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
#define HY_NAME_RULE "1 to 32 of A-Z a-z 0-9 _ . -" /* said to the user */

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A growable byte buffer. Always NUL-terminated after len when data != NULL. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);
/* Ensures room for n more bytes. */
void buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
/* Appends the decimal form of v. */
void buf_append_u64(struct buf *b, uint64_t v);
void buf_printf(struct buf *b, const char *fmt, ...) HY_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) HY_PRINTF(2, 0);
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Appends s with the five HTML-special characters escaped. */
void buf_append_html(struct buf *b, const char *s, size_t n);

/* The one way a recoverable error is told (tmux's char **cause): sets
 * *cause, when cause is not NULL, to an allocated message the caller
 * frees. */
void hy_cause(char **cause, const char *fmt, ...) HY_PRINTF(2, 3);

/* Case-insensitive ASCII comparison of a view with a NUL-terminated string. */
int hy_strieq(const char *a, size_t alen, const char *b);
/* Constant-time equality of two byte strings of the same length. */
int hy_memeq_ct(const void *a, const void *b, size_t n);

/* 1 if the len bytes at s (no NUL needed) are a username: 1 to
 * HY_NAME_MAX of HY_NAME_CHARS. */
int hy_name_valid(const char *s, size_t len);
/* True if s[0..n) is strict UTF-8: no overlong forms, no surrogates,
 * nothing past U+10FFFF. */
int hy_utf8_valid(const char *s, size_t n);
/* True if s[0..n) is strict UTF-8 without control characters (C0, DEL):
 * a name or status a user types, to be shown on one line. */
int hy_utf8_printable(const char *s, size_t n);
/* Copies the channel name at s[0..len), "#name" or "name", without its
 * '#' into out (HY_CHANNEL_MAX + 1 bytes). Returns 0, or -1 if it is not
 * 1 to HY_CHANNEL_MAX of HY_NAME_CHARS. */
int hy_channel_canon(const char *s, size_t len, char *out);
/* Parses s, a whole decimal number from min to max, into *out. Returns 0,
 * or -1 (out untouched) for anything else: empty, a sign, a blank, junk
 * after it, out of range. */
int hy_parse_number(const char *s, long long min, long long max, long long *out);

/* Monotonic milliseconds. */
uint64_t hy_now_ms(void);

/* Parses "HOST:PORT" (IPv4, name or [IPv6]) into host (size hostsz) and
 * port. Returns 0, or -1 with *err set to a static reason. */
int hy_parse_hostport(const char *s, char *host, size_t hostsz, int *port, const char **err);
/* How good ip is as an IPv6 address for others to dial: 2 global unicast
 * (2000::/3), 1 unique local (fc00::/7), 0 anything else (not an IPv6
 * literal, link-local, loopback, unspecified, multicast, IPv4-mapped). */
int hy_ip6_rank(const char *ip);

#endif
