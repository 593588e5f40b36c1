/* proxy_conf.c — the proxy's configuration: a tokenizer and a recursive
 * descent over host blocks, each directive read through one table. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hychat/proxy_conf.h"
#include "hychat/util.h"

#define CONF_MAX_FILE (1024 * 1024)
#define CONF_MAX_VHOSTS 1024
#define CONF_MAX_TOKEN 1024
#define CONF_MAX_ARGS 2

enum tok {
	TOK_EOF,
	TOK_WORD,
	TOK_STRING,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_SEMI,
	TOK_BAD,
};

struct lexer {
	const char *p, *end;
	const char *file;
	unsigned line;
	enum tok tok;
	char text[CONF_MAX_TOKEN + 1];
	size_t len;
	char *err;
	size_t errsz;
};

static const char *const policy_names[] = {
#define PROXY_POLICY_NAME(e, name) name,
	PROXY_POLICIES(PROXY_POLICY_NAME)
#undef PROXY_POLICY_NAME
};

const char *
proxy_policy_name(enum proxy_policy p)
{
	return policy_names[p];
}

static int
word_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != ';' && c != '{' && c != '}' && c != '#' && c != '"';
}

/* Reads the next token into lx->tok / lx->text. */
static void
lex(struct lexer *lx)
{
	lx->len = 0;
	lx->text[0] = '\0';
	for (;;) {
		while (lx->p < lx->end &&
		    (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' || *lx->p == '\n')) {
			if (*lx->p == '\n')
				lx->line++;
			lx->p++;
		}
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
			continue;
		}
		break;
	}
	if (lx->p == lx->end) {
		lx->tok = TOK_EOF;
		return;
	}
	unsigned char c = (unsigned char)*lx->p;
	static const struct {
		char c;
		enum tok tok;
	} punct[] = { { '{', TOK_LBRACE }, { '}', TOK_RBRACE }, { ';', TOK_SEMI } };
	for (size_t i = 0; i < HY_ARRAY_LEN(punct); i++) {
		if (c == (unsigned char)punct[i].c) {
			lx->tok = punct[i].tok;
			lx->text[0] = punct[i].c;
			lx->text[1] = '\0';
			lx->len = 1;
			lx->p++;
			return;
		}
	}
	if (c == '"') {
		lx->p++;
		while (lx->p < lx->end && *lx->p != '"' && *lx->p != '\n') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] != '\n')
				lx->p++;
			if (lx->len == CONF_MAX_TOKEN || *lx->p == '\0') {
				lx->tok = TOK_BAD;
				return;
			}
			lx->text[lx->len++] = *lx->p++;
		}
		lx->text[lx->len] = '\0';
		if (lx->p == lx->end || *lx->p != '"') {
			lx->tok = TOK_BAD;
			snprintf(lx->text, sizeof(lx->text), "an unterminated string");
			return;
		}
		lx->p++;
		lx->tok = TOK_STRING;
		return;
	}
	if (!word_char(c)) {
		lx->tok = TOK_BAD;
		snprintf(lx->text, sizeof(lx->text), "byte 0x%02x", c);
		lx->p++;
		return;
	}
	while (lx->p < lx->end && word_char((unsigned char)*lx->p)) {
		if (lx->len == CONF_MAX_TOKEN) {
			lx->tok = TOK_BAD;
			snprintf(
			    lx->text, sizeof(lx->text), "a word over %d bytes", CONF_MAX_TOKEN);
			return;
		}
		lx->text[lx->len++] = *lx->p++;
	}
	lx->text[lx->len] = '\0';
	lx->tok = TOK_WORD;
}

static int
fail(struct lexer *lx, const char *expected)
{
	char found[80];

	if (lx->tok == TOK_EOF)
		snprintf(found, sizeof(found), "end of file");
	else if (lx->tok == TOK_BAD)
		snprintf(found, sizeof(found), "%.60s", lx->text[0] ? lx->text : "a bad token");
	else
		snprintf(found, sizeof(found), "'%.60s'", lx->text);
	snprintf(lx->err, lx->errsz, "%s:%u: expected %s, found %s", lx->file, lx->line, expected,
	    found);
	return -1;
}

static int
failf(struct lexer *lx, unsigned line, const char *msg, const char *arg)
{
	snprintf(lx->err, lx->errsz, "%s:%u: %s%s", lx->file, line, msg, arg);
	return -1;
}

/* "2s", "500ms", "1m" or a bare number of seconds. */
static int
parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || *s == '-')
		return -1;
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60000 } };
	for (size_t i = 0; i < HY_ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].ms / 2)
				return -1;
			*ms = v * units[i].ms;
			return 0;
		}
	}
	return -1;
}

/* "host", "host:port" or "[v6]:port"; port -1 when absent. */
static int
split_hostport(const char *s, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(s, ':');
	size_t hl = strlen(s);

	*port = -1;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL)
			return -1;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		s++;
		hl = (size_t)(rb - s);
	} else if (colon != NULL) {
		hl = (size_t)(colon - s);
	}
	if (colon != NULL) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	if (hl == 0 || hl >= hostsz)
		return -1;
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)tolower((unsigned char)s[i]);
	host[hl] = '\0';
	return 0;
}

typedef int directive_fn(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1]);

static int
d_proxy_pass(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	static const struct {
		const char *prefix;
		int tls, port;
	} schemes[] = { { "http://", 0, PROXY_HTTP_PORT }, { "https://", 1, PROXY_HTTPS_PORT } };
	const char *url = args[0], *rest = NULL;
	struct proxy_backend *b;
	int tls = 0, default_port = 0;

	for (size_t i = 0; i < HY_ARRAY_LEN(schemes); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncmp(url, schemes[i].prefix, n) == 0) {
			rest = url + n;
			tls = schemes[i].tls;
			default_port = schemes[i].port;
		}
	}
	if (rest == NULL)
		return failf(lx, lx->line, "proxy_pass takes http(s)://HOST:PORT, not ", url);
	if (v->nbackends == PROXY_MAX_BACKENDS)
		return failf(lx, lx->line, "too many proxy_pass lines in one host", "");
	b = &v->backends[v->nbackends];
	char hp[CONF_MAX_TOKEN + 1];
	snprintf(hp, sizeof(hp), "%s", rest);
	size_t n = strlen(hp);
	if (n > 0 && hp[n - 1] == '/')
		hp[n - 1] = '\0';
	if (strchr(hp, '/') != NULL || split_hostport(hp, b->host, sizeof(b->host), &b->port) < 0)
		return failf(lx, lx->line, "proxy_pass takes http(s)://HOST:PORT, not ", url);
	if (b->port < 0)
		b->port = default_port;
	b->tls = tls;
	char name[sizeof(b->name)];
	snprintf(name, sizeof(name), "%s:%d", b->host, b->port);
	memcpy(b->name, name, sizeof(name));
	v->nbackends++;
	return 0;
}

/* A file name into out (PROXY_MAX_PATH + 1 bytes). */
static int
d_path(struct lexer *lx, char *out, const char *what, const char *arg)
{
	if (arg[0] == '\0' || strlen(arg) > PROXY_MAX_PATH)
		return failf(lx, lx->line, what, " takes a file name");
	snprintf(out, PROXY_MAX_PATH + 1, "%s", arg);
	return 0;
}

static int
d_ssl_certificate(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_path(lx, v->ssl_certificate, "ssl_certificate", args[0]);
}

static int
d_ssl_certificate_key(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_path(lx, v->ssl_certificate_key, "ssl_certificate_key", args[0]);
}

static int
d_ssl_trusted(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_path(lx, v->ssl_trusted, "proxy_ssl_trusted_certificate", args[0]);
}

static int
d_ssl_verify(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	static const struct {
		const char *word;
		int on;
	} words[] = { { "on", 1 }, { "off", 0 } };
	for (size_t i = 0; i < HY_ARRAY_LEN(words); i++) {
		if (strcmp(args[0], words[i].word) == 0) {
			v->ssl_verify = words[i].on;
			return 0;
		}
	}
	return failf(lx, lx->line, "proxy_ssl_verify is on or off, not ", args[0]);
}

static int
d_set_header(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	if (v->nset == PROXY_MAX_SET_HEADERS)
		return failf(lx, lx->line, "too many proxy_set_header lines in one host", "");
	for (const char *p = args[0]; *p; p++) {
		if (!word_char((unsigned char)*p) || *p == ':')
			return failf(lx, lx->line, "bad header name ", args[0]);
	}
	for (const char *p = args[1]; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return failf(lx, lx->line, "control character in the value of ", args[0]);
	}
	if (strlen(args[0]) > PROXY_MAX_NAME || strlen(args[1]) > PROXY_MAX_VALUE)
		return failf(lx, lx->line, "header too long: ", args[0]);
	snprintf(v->set[v->nset].name, sizeof(v->set[v->nset].name), "%s", args[0]);
	snprintf(v->set[v->nset].value, sizeof(v->set[v->nset].value), "%s", args[1]);
	v->nset++;
	return 0;
}

static int
d_policy(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	for (size_t i = 0; i < HY_ARRAY_LEN(policy_names); i++) {
		if (strcmp(args[0], policy_names[i]) == 0) {
			v->policy = (enum proxy_policy)i;
			return 0;
		}
	}
	return failf(
	    lx, lx->line, "dist_policy is round-robin, least-conn or random, not ", args[0]);
}

static int
d_duration(struct lexer *lx, uint64_t *out, const char *arg)
{
	if (parse_duration(arg, out) < 0 || *out == 0)
		return failf(lx, lx->line, "expected a duration such as 2s or 500ms, found ", arg);
	return 0;
}

static int
d_connect_timeout(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_duration(lx, &v->connect_timeout_ms, args[0]);
}

static int
d_read_timeout(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_duration(lx, &v->read_timeout_ms, args[0]);
}

static int
d_fail_timeout(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	return d_duration(lx, &v->fail_timeout_ms, args[0]);
}

static int
d_max_fails(struct lexer *lx, struct proxy_vhost *v, char args[][CONF_MAX_TOKEN + 1])
{
	char *end;
	long n = strtol(args[0], &end, 10);
	if (*end != '\0' || end == args[0] || n < 1 || n > 1000)
		return failf(
		    lx, lx->line, "max_fails takes a number from 1 to 1000, not ", args[0]);
	v->max_fails = (unsigned)n;
	return 0;
}

static const struct directive {
	const char *name;
	int nargs;
	int semi_optional; /* the original wrote dist_policy without ';' */
	directive_fn *fn;
} directives[] = {
	{ "proxy_pass", 1, 0, d_proxy_pass },
	{ "proxy_set_header", 2, 0, d_set_header },
	{ "dist_policy", 1, 1, d_policy },
	{ "proxy_connect_timeout", 1, 0, d_connect_timeout },
	{ "proxy_read_timeout", 1, 0, d_read_timeout },
	{ "max_fails", 1, 0, d_max_fails },
	{ "fail_timeout", 1, 0, d_fail_timeout },
	{ "ssl_certificate", 1, 0, d_ssl_certificate },
	{ "ssl_certificate_key", 1, 0, d_ssl_certificate_key },
	{ "proxy_ssl_verify", 1, 0, d_ssl_verify },
	{ "proxy_ssl_trusted_certificate", 1, 0, d_ssl_trusted },
};

static int
parse_directive(struct lexer *lx, struct proxy_vhost *v)
{
	const struct directive *d = NULL;
	char args[CONF_MAX_ARGS][CONF_MAX_TOKEN + 1];

	for (size_t i = 0; i < HY_ARRAY_LEN(directives); i++) {
		if (strcmp(lx->text, directives[i].name) == 0)
			d = &directives[i];
	}
	if (d == NULL)
		return fail(lx, "a directive (proxy_pass, proxy_set_header, dist_policy, ...)");
	for (int i = 0; i < d->nargs; i++) {
		lex(lx);
		if (lx->tok != TOK_WORD && lx->tok != TOK_STRING)
			return fail(lx, i == 0 ? "an argument" : "another argument");
		memcpy(args[i], lx->text, lx->len + 1);
	}
	if (d->fn(lx, v, args) < 0)
		return -1;
	lex(lx);
	if (lx->tok == TOK_SEMI) {
		lex(lx);
		return 0;
	}
	if (d->semi_optional)
		return 0;
	return fail(lx, "';'");
}

static int
parse_host(struct lexer *lx, struct proxy_conf *c)
{
	if (lx->tok != TOK_WORD || strcmp(lx->text, "host") != 0)
		return fail(lx, "'host'");
	unsigned line = lx->line;
	lex(lx);
	if (lx->tok != TOK_STRING && lx->tok != TOK_WORD)
		return fail(lx, "a host name in quotes");
	if (c->nvhosts == CONF_MAX_VHOSTS)
		return failf(lx, line, "too many host blocks", "");
	c->vhosts = xrealloc(c->vhosts, (c->nvhosts + 1) * sizeof(*c->vhosts));
	struct proxy_vhost *v = &c->vhosts[c->nvhosts];
	memset(v, 0, sizeof(*v));
	v->line = line;
	v->policy = PROXY_ROUND_ROBIN;
	v->connect_timeout_ms = PROXY_DEFAULT_CONNECT_TIMEOUT_MS;
	v->read_timeout_ms = PROXY_DEFAULT_READ_TIMEOUT_MS;
	v->max_fails = PROXY_DEFAULT_MAX_FAILS;
	v->fail_timeout_ms = PROXY_DEFAULT_FAIL_TIMEOUT_MS;
	v->ssl_verify = 1;
	if (lx->len > PROXY_MAX_NAME ||
	    split_hostport(lx->text, v->host, sizeof(v->host), &v->port) < 0)
		return failf(lx, lx->line, "bad host name ", lx->text);
	memcpy(v->name, lx->text, lx->len + 1);
	for (size_t i = 0; i < c->nvhosts; i++) {
		if (strcmp(c->vhosts[i].host, v->host) == 0 && c->vhosts[i].port == v->port)
			return failf(lx, line, "a second block for host ", v->name);
	}
	lex(lx);
	if (lx->tok == TOK_WORD && strcmp(lx->text, "default") == 0) {
		v->is_default = 1;
		lex(lx);
	}
	if (lx->tok != TOK_LBRACE)
		return fail(lx, "'{'");
	lex(lx);
	while (lx->tok != TOK_RBRACE) {
		if (lx->tok != TOK_WORD)
			return fail(lx, "a directive or '}'");
		if (parse_directive(lx, v) < 0)
			return -1;
	}
	if (v->nbackends == 0)
		return failf(lx, line, "no proxy_pass in host ", v->name);
	if ((v->ssl_certificate[0] == '\0') != (v->ssl_certificate_key[0] == '\0'))
		return failf(lx, line,
		    "ssl_certificate and ssl_certificate_key go together, in host ", v->name);
	c->nvhosts++;
	lex(lx);
	return 0;
}

/* listen HOST:PORT [ssl]; */
static int
parse_listen(struct lexer *lx, struct proxy_conf *c)
{
	unsigned line = lx->line;
	const char *why = NULL;

	lex(lx);
	if (lx->tok != TOK_WORD && lx->tok != TOK_STRING)
		return fail(lx, "an address HOST:PORT after listen");
	if (c->nlistens == PROXY_MAX_LISTEN)
		return failf(lx, line, "too many listen lines", "");
	struct proxy_listen *l = &c->listens[c->nlistens];
	memset(l, 0, sizeof(*l));
	l->line = line;
	if (hy_parse_hostport(lx->text, l->host, sizeof(l->host), &l->port, &why) < 0) {
		snprintf(
		    lx->err, lx->errsz, "%s:%u: listen %.200s: %s", lx->file, line, lx->text, why);
		return -1;
	}
	lex(lx);
	if (lx->tok == TOK_WORD && strcmp(lx->text, "ssl") == 0) {
		l->ssl = 1;
		lex(lx);
	}
	if (lx->tok != TOK_SEMI)
		return fail(lx, "'ssl' or ';'");
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].port == l->port && strcmp(c->listens[i].host, l->host) == 0)
			return failf(lx, line, "a second listen line for the same address", "");
	}
	c->nlistens++;
	lex(lx);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct lexer *lx, struct proxy_conf *c);
} blocks[] = {
	{ "host", parse_host },
	{ "listen", parse_listen },
};

static int
parse_top(struct lexer *lx, struct proxy_conf *c)
{
	for (size_t i = 0; lx->tok == TOK_WORD && i < HY_ARRAY_LEN(blocks); i++) {
		if (strcmp(lx->text, blocks[i].name) == 0)
			return blocks[i].fn(lx, c);
	}
	return fail(lx, "'host' or 'listen'");
}

/* What the whole file must hold together. */
static int
conf_check(struct proxy_conf *c, const char *file, char *err, size_t errsz)
{
	int have_cert = 0;

	for (size_t i = 0; i < c->nvhosts; i++)
		have_cert |= c->vhosts[i].ssl_certificate[0] != '\0';
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].ssl && !have_cert) {
			snprintf(err, errsz,
			    "%s:%u: listen ... ssl needs a host block with ssl_certificate", file,
			    c->listens[i].line);
			return -1;
		}
	}
	for (size_t i = 0; i < c->nvhosts; i++) {
		if (!c->vhosts[i].is_default)
			continue;
		if (c->fallback != NULL) {
			snprintf(err, errsz, "%s:%u: a second host marked default", file,
			    c->vhosts[i].line);
			return -1;
		}
		c->fallback = &c->vhosts[i];
	}
	return 0;
}

int
proxy_conf_parse(const char *text, size_t len, const char *file, struct proxy_conf **out, char *err,
    size_t errsz)
{
	struct lexer lx = {
		.p = text, .end = text + len, .file = file, .line = 1, .err = err, .errsz = errsz
	};
	struct proxy_conf *c = xcalloc(1, sizeof(*c));

	lex(&lx);
	while (lx.tok != TOK_EOF) {
		if (parse_top(&lx, c) < 0) {
			proxy_conf_free(c);
			return -1;
		}
	}
	if (c->nvhosts == 0) {
		snprintf(err, errsz, "%s:%u: expected at least one host block", file, lx.line);
		proxy_conf_free(c);
		return -1;
	}
	if (conf_check(c, file, err, errsz) < 0) {
		proxy_conf_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

int
proxy_conf_load(const char *path, struct proxy_conf **out, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct buf b;
	buf_init(&b);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > CONF_MAX_FILE) {
			snprintf(err, errsz, "%s: larger than %d bytes", path, CONF_MAX_FILE);
			fclose(f);
			buf_fini(&b);
			return -1;
		}
		buf_append(&b, chunk, n);
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errsz, "%s: read error", path);
		buf_fini(&b);
		return -1;
	}
	int rc = proxy_conf_parse(b.data != NULL ? b.data : "", b.len, path, out, err, errsz);
	buf_fini(&b);
	return rc;
}

void
proxy_conf_free(struct proxy_conf *c)
{
	if (c == NULL)
		return;
	free(c->vhosts);
	free(c);
}

const struct proxy_vhost *
proxy_conf_match(const struct proxy_conf *c, const char *host, size_t len, int local_port)
{
	char name[PROXY_MAX_NAME + 1], tmp[PROXY_MAX_NAME + 1];
	int port;

	if (host != NULL && len > 0 && len <= PROXY_MAX_NAME) {
		memcpy(tmp, host, len);
		tmp[len] = '\0';
		if (split_hostport(tmp, name, sizeof(name), &port) == 0) {
			if (port < 0)
				port = local_port;
			for (size_t i = 0; i < c->nvhosts; i++) {
				if (c->vhosts[i].port == port &&
				    strcmp(c->vhosts[i].host, name) == 0)
					return &c->vhosts[i];
			}
			for (size_t i = 0; i < c->nvhosts; i++) {
				if (c->vhosts[i].port < 0 && strcmp(c->vhosts[i].host, name) == 0)
					return &c->vhosts[i];
			}
		}
	}
	return c->fallback;
}

const struct proxy_vhost *
proxy_conf_match_sni(const struct proxy_conf *c, const char *name)
{
	const struct proxy_vhost *first = NULL;

	for (size_t i = 0; i < c->nvhosts; i++) {
		const struct proxy_vhost *v = &c->vhosts[i];
		if (v->ssl_certificate[0] == '\0')
			continue;
		if (first == NULL)
			first = v;
		if (name != NULL && strcasecmp(v->host, name) == 0)
			return v;
	}
	if (c->fallback != NULL && c->fallback->ssl_certificate[0] != '\0')
		return c->fallback;
	return first;
}

int
proxy_conf_has_ssl(const struct proxy_conf *c)
{
	for (size_t i = 0; i < c->nlistens; i++) {
		if (c->listens[i].ssl)
			return 1;
	}
	return 0;
}
