/* webpolicy.c — the Host, Origin, Cookie and token checks of the web bridge:
 * pure functions of the header values and the query string. */
#include "hychat/webpolicy.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hychat/http_parse.h"
#include "hychat/util.h"

#define HTTP_DEFAULT_PORT 80

/* Parses an IP literal; returns its family, or 0. */
static int
ip_literal(const char *s, unsigned char out[16])
{
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	return 0;
}

static int
is_wildcard(const char *s)
{
	unsigned char a[16], zero[16] = { 0 };
	int af = ip_literal(s, a);

	return af != 0 && memcmp(a, zero, af == AF_INET ? 4 : 16) == 0;
}

int
webpolicy_is_loopback(const char *addr)
{
	static const unsigned char v6_loopback[16] = { [15] = 1 };
	unsigned char a[16];

	if (strcmp(addr, "localhost") == 0)
		return 1;
	switch (ip_literal(addr, a)) {
	case AF_INET: return a[0] == 127;
	case AF_INET6: return memcmp(a, v6_loopback, 16) == 0;
	default: return 0;
	}
}

int
webpolicy_init(struct webpolicy *p, const char *addr, int port)
{
	unsigned char a[16];

	memset(p, 0, sizeof(*p));
	if (strlen(addr) >= sizeof(p->addr) || ip_literal(addr, a) == 0)
		return -1;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->port = port;
	p->wildcard = is_wildcard(addr);
	return 0;
}

/* Splits "HOST[:PORT]" or "[V6][:PORT]" into host (unbracketed) and port.
 * Returns 0, or -1 if malformed. */
static int
split_host(const char *s, size_t len, char *host, size_t hostsz, int *port)
{
	const char *end = s + len, *h = s, *hend, *colon;

	if (len == 0)
		return -1;
	if (*s == '[') {
		h = s + 1;
		if ((hend = memchr(h, ']', len - 1)) == NULL)
			return -1;
		colon = hend + 1 < end ? hend + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return -1;
	} else {
		colon = memchr(s, ':', len);
		hend = colon != NULL ? colon : end;
	}
	if (hend == h || (size_t)(hend - h) >= hostsz)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	*port = HTTP_DEFAULT_PORT;
	if (colon != NULL) {
		const char *d = colon + 1;
		long v = 0;
		if (d == end || end - d > 5)
			return -1;
		for (; d < end; d++) {
			if (*d < '0' || *d > '9')
				return -1;
			v = v * 10 + (*d - '0');
		}
		if (v < 1 || v > 65535)
			return -1;
		*port = (int)v;
	}
	return 0;
}

static int
same_addr(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int af = ip_literal(a, x);

	if (af == 0)
		return strcmp(a, b) == 0;
	return ip_literal(b, y) == af && memcmp(x, y, af == AF_INET ? 4 : 16) == 0;
}

int
webpolicy_host_ok(const struct webpolicy *p, const char *hostport, size_t len)
{
	char host[WEBPOLICY_HOST_MAX];
	unsigned char a[16];
	int port;

	if (split_host(hostport, len, host, sizeof(host), &port) < 0 || port != p->port)
		return 0;
	if (webpolicy_is_loopback(host))
		return webpolicy_is_loopback(p->addr) || p->wildcard;
	if (ip_literal(host, a) == 0)
		return 0; /* a name: the one a rebinding attack would use */
	return p->wildcard || same_addr(host, p->addr);
}

/* 1 if two Host values name the same address and port. */
static int
same_hostport(const char *a, size_t alen, const char *b, size_t blen)
{
	char ha[WEBPOLICY_HOST_MAX], hb[WEBPOLICY_HOST_MAX];
	int pa, pb;

	if (split_host(a, alen, ha, sizeof(ha), &pa) < 0 ||
	    split_host(b, blen, hb, sizeof(hb), &pb) < 0 || pa != pb)
		return 0;
	return ip_literal(ha, (unsigned char[16]){ 0 }) != 0 ? same_addr(ha, hb)
	                                                     : strcasecmp(ha, hb) == 0;
}

int
webpolicy_origin_ok(
    const struct webpolicy *p, const char *origin, size_t olen, const char *host, size_t hlen)
{
	static const char scheme[] = "http://";
	size_t sl = sizeof(scheme) - 1;

	if (olen <= sl || strncasecmp(origin, scheme, sl) != 0)
		return 0;
	return webpolicy_host_ok(p, host, hlen) &&
	    same_hostport(origin + sl, olen - sl, host, hlen);
}

/* 1 if the n bytes of v equal the string want, in time that depends on n
 * only. */
static int
equal_ct(const char *v, size_t n, const char *want)
{
	size_t wl = strlen(want);

	return wl > 0 && n == wl && hy_memeq_ct(v, want, n);
}

int
webpolicy_session_ok(const char *header, size_t len, const char *name, const char *session)
{
	const char *v;
	size_t vlen;

	if (http_cookie_get(header, len, name, &v, &vlen) < 0)
		return 0;
	return equal_ct(v, vlen, session);
}

int
webpolicy_token_ok(const char *query, size_t len, const char *token)
{
	char v[WEBPOLICY_TOKEN_MAX + 1];
	ssize_t n = http_form_get(query, len, WEBPOLICY_TOKEN_PARAM, v, sizeof(v));
	int ok = n >= 0 && equal_ct(v, (size_t)n, token);

	sodium_memzero(v, sizeof(v));
	return ok;
}

/* The length of the valid UTF-8 character at s[0..len), or 0. */
static size_t
utf8_char(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void
webpolicy_upload_name(const char *in, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	/* Leading dots and blanks: no hidden file, no "..". */
	while (i < len && (s[i] == '.' || s[i] == ' '))
		i++;
	while (i < len) {
		size_t n = utf8_char(s + i, len - i);
		int bad = n == 0 ||
		    (n == 1 && (s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\'));
		size_t w = bad ? 1 : n;
		if (o + w > WEBPOLICY_UPLOAD_NAME_MAX)
			break;
		if (bad)
			out[o++] = '_';
		else
			memcpy(out + o, s + i, n), o += n;
		i += n == 0 ? 1 : n;
	}
	/* Trailing blanks: a name that reads the same as it is. */
	while (o > 0 && out[o - 1] == ' ')
		o--;
	if (o == 0)
		o = (size_t)snprintf(
		    out, WEBPOLICY_UPLOAD_NAME_MAX + 1, "%s", WEBPOLICY_UPLOAD_NAME_DEFAULT);
	out[o] = '\0';
}

int
webpolicy_upload_size(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s[0] == '\0')
		return -1;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		uint64_t d = (uint64_t)(*p - '0');
		if (v > max / 10 || d > max - v * 10)
			return -1; /* over max, and never past UINT64_MAX */
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}
