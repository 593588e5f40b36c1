/* http_parse.c — the HTTP/1.1 message parser (RFC 9112), pure functions
 * of bytes.
 *
 * Heads are parsed only once their end (an empty line) is in the buffer,
 * found by a memchr scan that resumes at last_len; the parse itself is
 * then a single pass with table lookups. Nothing here allocates, does
 * I/O, or reads outside [buf, buf + len).
 */
#include <string.h>

#include "hychat/http_parse.h"

#define CHUNK_MAX_HEX 16
#define CHUNK_MAX_EXT 4096
#define CHUNK_MAX_TRAILER 8192

/* tchar of RFC 9110 5.6.2 */
static const unsigned char token_char[256] = {
	['!'] = 1,
	['#'] = 1,
	['$'] = 1,
	['%'] = 1,
	['&'] = 1,
	['\''] = 1,
	['*'] = 1,
	['+'] = 1,
	['-'] = 1,
	['.'] = 1,
	['^'] = 1,
	['_'] = 1,
	['`'] = 1,
	['|'] = 1,
	['~'] = 1,
	['0'] = 1,
	['1'] = 1,
	['2'] = 1,
	['3'] = 1,
	['4'] = 1,
	['5'] = 1,
	['6'] = 1,
	['7'] = 1,
	['8'] = 1,
	['9'] = 1,
	['A'] = 1,
	['B'] = 1,
	['C'] = 1,
	['D'] = 1,
	['E'] = 1,
	['F'] = 1,
	['G'] = 1,
	['H'] = 1,
	['I'] = 1,
	['J'] = 1,
	['K'] = 1,
	['L'] = 1,
	['M'] = 1,
	['N'] = 1,
	['O'] = 1,
	['P'] = 1,
	['Q'] = 1,
	['R'] = 1,
	['S'] = 1,
	['T'] = 1,
	['U'] = 1,
	['V'] = 1,
	['W'] = 1,
	['X'] = 1,
	['Y'] = 1,
	['Z'] = 1,
	['a'] = 1,
	['b'] = 1,
	['c'] = 1,
	['d'] = 1,
	['e'] = 1,
	['f'] = 1,
	['g'] = 1,
	['h'] = 1,
	['i'] = 1,
	['j'] = 1,
	['k'] = 1,
	['l'] = 1,
	['m'] = 1,
	['n'] = 1,
	['o'] = 1,
	['p'] = 1,
	['q'] = 1,
	['r'] = 1,
	['s'] = 1,
	['t'] = 1,
	['u'] = 1,
	['v'] = 1,
	['w'] = 1,
	['x'] = 1,
	['y'] = 1,
	['z'] = 1,
};

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Finds the end of the head: the byte after "\n\r\n" or "\n\n", searching
 * from about last_len. Returns its offset, or 0 if not there yet. */
static size_t
head_end(const char *buf, size_t len, size_t last_len)
{
	size_t i = last_len > 3 ? last_len - 3 : 0;

	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		if (nl == NULL)
			return 0;
		size_t k = (size_t)(nl - buf) + 1;
		if (k < len && buf[k] == '\n')
			return k + 1;
		if (k + 1 < len && buf[k] == '\r' && buf[k + 1] == '\n')
			return k + 2;
		i = k;
	}
	return 0;
}

/* Reads one line of [p, end): sets *eol to its end (before CR LF or LF)
 * and returns the start of the next line, or NULL if a CR stands alone. */
static const char *
line_end(const char *p, const char *end, const char **eol)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (nl == NULL)
		return NULL;
	*eol = nl;
	if (nl > p && nl[-1] == '\r')
		*eol = nl - 1;
	return nl + 1;
}

/* Parses header lines from p to the empty line. Returns the number of
 * headers or a negative status. */
static int
parse_headers(const char *p, const char *end, struct http_header *hs, size_t *num)
{
	size_t n = 0;

	for (;;) {
		const char *eol, *next = line_end(p, end, &eol);
		if (next == NULL)
			return HTTP_PARSE_BAD;
		if (eol == p) {
			*num = n;
			return 0;
		}
		if (*p == ' ' || *p == '\t')
			return HTTP_PARSE_BAD; /* obs-fold */
		const char *q = p;
		while (q < eol && token_char[(unsigned char)*q])
			q++;
		if (q == p || q == eol || *q != ':')
			return HTTP_PARSE_BAD;
		if (n == HTTP_MAX_HEADERS)
			return HTTP_PARSE_TOO_MANY_HEADERS;
		hs[n].name = p;
		hs[n].name_len = (size_t)(q - p);
		q++;
		while (q < eol && (*q == ' ' || *q == '\t'))
			q++;
		const char *ve = eol;
		while (ve > q && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *v = q; v < ve; v++) {
			unsigned char c = (unsigned char)*v;
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return HTTP_PARSE_BAD;
		}
		hs[n].value = q;
		hs[n].value_len = (size_t)(ve - q);
		n++;
		p = next;
	}
}

/* "HTTP/1.x" at p; returns the minor version or a negative status. */
static int
parse_version(const char *p, size_t len)
{
	if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.')
		return HTTP_PARSE_BAD;
	if (p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return HTTP_PARSE_BAD;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return HTTP_PARSE_BAD_VERSION;
	return p[7] - '0';
}

int
http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request_head *req)
{
	size_t start = 0;

	/* RFC 9112 2.2: empty lines before the request line are ignored */
	while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
		start++;
	if (start == len)
		return HTTP_PARSE_INCOMPLETE;
	size_t hend = head_end(buf + start, len - start, last_len > start ? last_len - start : 0);
	if (hend == 0)
		return HTTP_PARSE_INCOMPLETE;
	const char *p = buf + start, *end = buf + start + hend;
	const char *eol, *next = line_end(p, end, &eol);
	if (next == NULL)
		return HTTP_PARSE_BAD;

	const char *q = p;
	while (q < eol && token_char[(unsigned char)*q])
		q++;
	if (q == p || q == eol || *q != ' ')
		return HTTP_PARSE_BAD;
	req->method = p;
	req->method_len = (size_t)(q - p);
	p = q + 1;
	q = p;
	while (q < eol && (unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f)
		q++;
	if (q == p || q == eol || *q != ' ')
		return HTTP_PARSE_BAD;
	req->target = p;
	req->target_len = (size_t)(q - p);
	int minor = parse_version(q + 1, (size_t)(eol - (q + 1)));
	if (minor < 0)
		return minor;
	req->minor_version = minor;

	const char *qm = memchr(req->target, '?', req->target_len);
	const char *hash = memchr(req->target, '#', req->target_len);
	const char *tend = req->target + req->target_len;
	if (hash != NULL && qm != NULL && hash < qm)
		qm = NULL;
	req->path = req->target;
	req->path_len = (size_t)((qm != NULL ? qm : hash != NULL ? hash : tend) - req->target);
	if (qm != NULL) {
		req->query = qm + 1;
		req->query_len = (size_t)((hash != NULL ? hash : tend) - req->query);
	} else {
		req->query = NULL;
		req->query_len = 0;
	}
	int rc = parse_headers(next, end, req->headers, &req->num_headers);
	if (rc < 0)
		return rc;
	return (int)(end - buf);
}

int
http_parse_response(const char *buf, size_t len, size_t last_len, struct http_response_head *res)
{
	size_t hend = head_end(buf, len, last_len);

	if (hend == 0)
		return HTTP_PARSE_INCOMPLETE;
	const char *p = buf, *end = buf + hend;
	const char *eol, *next = line_end(p, end, &eol);
	if (next == NULL || eol - p < 12 || p[8] != ' ')
		return HTTP_PARSE_BAD;
	int minor = parse_version(p, 8);
	if (minor < 0)
		return minor;
	res->minor_version = minor;
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return HTTP_PARSE_BAD;
		status = status * 10 + (p[i] - '0');
	}
	if (status < 100)
		return HTTP_PARSE_BAD;
	res->status = status;
	const char *r = p + 12;
	if (r < eol && *r != ' ')
		return HTTP_PARSE_BAD;
	if (r < eol)
		r++;
	for (const char *v = r; v < eol; v++) {
		unsigned char c = (unsigned char)*v;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_PARSE_BAD;
	}
	res->reason = r;
	res->reason_len = (size_t)(eol - r);
	int rc = parse_headers(next, end, res->headers, &res->num_headers);
	if (rc < 0)
		return rc;
	return (int)hend;
}

static int
ascii_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		unsigned char x = (unsigned char)a[k], y = (unsigned char)b[k];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

const struct http_header *
http_header_find(const struct http_header *h, size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len != nl)
			continue;
		if (ascii_caseeq(h[i].name, name, nl))
			return &h[i];
	}
	return NULL;
}

int
http_header_has_token(const char *value, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		size_t s = i;
		while (i < len && value[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e - s == tl && ascii_caseeq(value + s, token, tl))
			return 1;
	}
	return 0;
}

int
http_parse_content_length(const char *value, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(value[i] - '0');
	}
	if (v > INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

enum chunk_state {
	CH_SIZE, /* hex digits of the chunk size */
	CH_EXT, /* after the size: extensions up to the line end */
	CH_SIZE_LF, /* CR seen after the size line */
	CH_DATA, /* chunk payload */
	CH_DATA_CR, /* CR LF after the payload */
	CH_DATA_LF,
	CH_TRAILER, /* trailer lines after the last chunk */
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_END_LF, /* CR of the final empty line seen */
};

void
http_chunked_init(struct http_chunked *d)
{
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE;
}

ssize_t
http_chunked_decode(struct http_chunked *d, char *buf, size_t *len)
{
	size_t in = 0, out = 0, n = *len;

	while (in < n) {
		unsigned char c = (unsigned char)buf[in];
		switch (d->state) {
		case CH_SIZE: {
			int h = hexval(c);
			if (h >= 0) {
				if (++d->hex_digits > CHUNK_MAX_HEX)
					return HTTP_PARSE_BAD;
				d->remaining = d->remaining << 4 | (uint64_t)h;
				in++;
				break;
			}
			if (d->hex_digits == 0)
				return HTTP_PARSE_BAD;
			if (c == ';' || c == ' ' || c == '\t') {
				d->state = CH_EXT;
				break;
			}
			if (c == '\r') {
				d->state = CH_SIZE_LF;
				in++;
				break;
			}
			if (c != '\n')
				return HTTP_PARSE_BAD;
			in++;
			goto size_done;
		}
		case CH_EXT:
			if (c == '\r') {
				d->state = CH_SIZE_LF;
			} else if (c == '\n') {
				in++;
				goto size_done;
			} else if (++d->ext_len > CHUNK_MAX_EXT || c == 0 || c == 0x7f) {
				return HTTP_PARSE_BAD;
			}
			in++;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return HTTP_PARSE_BAD;
			in++;
		size_done:
			d->hex_digits = 0;
			if (d->remaining == 0) {
				d->state = CH_TRAILER;
				d->ext_len = 0;
			} else {
				d->state = CH_DATA;
			}
			break;
		case CH_DATA: {
			size_t take = n - in;
			if (take > d->remaining)
				take = (size_t)d->remaining;
			memmove(buf + out, buf + in, take);
			out += take;
			in += take;
			d->remaining -= take;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (c == '\n') {
				d->state = CH_SIZE;
			} else if (c == '\r') {
				d->state = CH_DATA_LF;
			} else {
				return HTTP_PARSE_BAD;
			}
			in++;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return HTTP_PARSE_BAD;
			d->state = CH_SIZE;
			in++;
			break;
		case CH_TRAILER:
			/* at the start of a trailer line: an empty one ends the body */
			if (c == '\n') {
				in++;
				goto done;
			}
			if (c == '\r') {
				d->state = CH_END_LF;
				in++;
				break;
			}
			if (!token_char[c])
				return HTTP_PARSE_BAD;
			d->state = CH_TRAILER_LINE;
			d->remaining = 0; /* becomes 1 once the line's colon is seen */
			break;
		case CH_TRAILER_LINE:
			if (++d->ext_len > CHUNK_MAX_TRAILER || c == 0)
				return HTTP_PARSE_BAD;
			if (c == ':') {
				d->remaining = 1;
			} else if (c == '\n' || c == '\r') {
				if (!d->remaining)
					return HTTP_PARSE_BAD;
				d->state = c == '\n' ? CH_TRAILER : CH_TRAILER_LF;
			} else if (!d->remaining && !token_char[c]) {
				return HTTP_PARSE_BAD;
			}
			in++;
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return HTTP_PARSE_BAD;
			d->state = CH_TRAILER;
			in++;
			break;
		case CH_END_LF:
			if (c != '\n')
				return HTTP_PARSE_BAD;
			in++;
			goto done;
		default: return HTTP_PARSE_BAD;
		}
	}
	*len = out;
	return HTTP_PARSE_INCOMPLETE;
done:
	*len = out;
	d->state = -1;
	return (ssize_t)(n - in);
}

ssize_t
http_percent_decode(char *dst, const char *src, size_t len, int plus_space)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '%') {
			if (len - i < 3)
				return -1;
			int hi = hexval((unsigned char)src[i + 1]),
			    lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			dst[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_space) {
			dst[o++] = ' ';
		} else {
			dst[o++] = c;
		}
	}
	return (ssize_t)o;
}

ssize_t
http_form_get(const char *s, size_t len, const char *key, char *out, size_t outsz)
{
	char name[256];
	size_t i = 0;

	while (i < len) {
		size_t start = i;
		while (i < len && s[i] != '&')
			i++;
		const char *pair = s + start;
		size_t plen = i - start;
		i++;
		if (plen == 0)
			continue;
		const char *eq = memchr(pair, '=', plen);
		size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;
		if (klen >= sizeof(name))
			continue;
		ssize_t kl = http_percent_decode(name, pair, klen, 1);
		if (kl < 0 || strlen(key) != (size_t)kl || memcmp(name, key, (size_t)kl) != 0)
			continue;
		const char *v = eq != NULL ? eq + 1 : pair + plen;
		size_t vlen = (size_t)(pair + plen - v);
		if (vlen >= outsz)
			return -1;
		ssize_t vl = http_percent_decode(out, v, vlen, 1);
		if (vl < 0)
			return -1;
		out[vl] = '\0';
		return vl;
	}
	return -1;
}

int
http_cookie_get(
    const char *header, size_t len, const char *name, const char **value, size_t *value_len)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		while (i < len && (header[i] == ' ' || header[i] == '\t' || header[i] == ';'))
			i++;
		size_t s = i;
		while (i < len && header[i] != ';')
			i++;
		size_t e = i;
		while (e > s && (header[e - 1] == ' ' || header[e - 1] == '\t'))
			e--;
		const char *eq = memchr(header + s, '=', e - s);
		if (eq == NULL)
			continue;
		size_t ke = (size_t)(eq - header);
		while (ke > s && (header[ke - 1] == ' ' || header[ke - 1] == '\t'))
			ke--;
		if (ke - s != nl || memcmp(header + s, name, nl) != 0)
			continue;
		size_t vs = (size_t)(eq - header) + 1;
		while (vs < e && (header[vs] == ' ' || header[vs] == '\t'))
			vs++;
		if (e - vs >= 2 && header[vs] == '"' && header[e - 1] == '"') {
			vs++;
			e--;
		}
		*value = header + vs;
		*value_len = e - vs;
		return 0;
	}
	return -1;
}
