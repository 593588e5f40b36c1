/* settings.c — hychat.conf: the table of settings with the kind of value
 * each takes, the parser of the file (a pure function of its bytes), and
 * the atomic save. */
#include "hychat/settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hychat/util.h"

enum setting_kind {
	KIND_TEXT, /* printable UTF-8 */
	KIND_URL, /* empty, or http:// or https:// and no blanks */
	KIND_USER, /* empty, or a username */
	KIND_NUMBER, /* min to max */
	KIND_SWITCH, /* on or off */
	KIND_CHOICE, /* one of choices */
	KIND_SIZE, /* a size: digits and K, M, G or T */
	KIND_AUTOACCEPT, /* off, or "contacts SIZE" */
};

struct setting_def {
	const char *name, *def, *help;
	enum setting_kind kind;
	long min, max;
	const char *const *choices;
};

static const char *const notify_choices[] = { "desktop", "bell", "off", NULL };

#define SETTINGS_DEF(id, name, def, help) [id] = { name, def, help, KIND_TEXT, 0, 0, NULL },
static struct setting_def defs[SETTING_COUNT] = { SETTINGS_LIST(SETTINGS_DEF) };
#undef SETTINGS_DEF

/* The kind of each, beside the list's names and defaults. */
static const struct {
	enum setting_id id;
	enum setting_kind kind;
	long min, max;
	const char *const *choices;
} kinds[] = {
	{ SETTING_TRACKER, KIND_URL, 0, 0, NULL },
	{ SETTING_USERNAME, KIND_USER, 0, 0, NULL },
	{ SETTING_PEER_PORT, KIND_NUMBER, 0, 65535, NULL },
	{ SETTING_COLOR, KIND_SWITCH, 0, 0, NULL },
	{ SETTING_NOTIFY, KIND_CHOICE, 0, 0, notify_choices },
	{ SETTING_HIGHLIGHT, KIND_TEXT, 0, 0, NULL },
	{ SETTING_AUTO_AWAY, KIND_NUMBER, 0, 10080, NULL },
	{ SETTING_TYPING, KIND_SWITCH, 0, 0, NULL },
	{ SETTING_RECEIPTS, KIND_SWITCH, 0, 0, NULL },
	{ SETTING_NAME, KIND_TEXT, 0, 0, NULL },
	{ SETTING_STATUS, KIND_TEXT, 0, 0, NULL },
	{ SETTING_BACKLOG_DAYS, KIND_NUMBER, 0, 365, NULL },
	{ SETTING_BACKLOG_MESSAGES, KIND_NUMBER, 0, 100000, NULL },
	{ SETTING_AUTOACCEPT, KIND_AUTOACCEPT, 0, 0, NULL },
	{ SETTING_MAX_OFFER, KIND_SIZE, 0, 0, NULL },
	{ SETTING_MAX_TRANSFERS, KIND_NUMBER, 1, 64, NULL },
};

#define SETTINGS_SIZE_MAX (UINT64_C(1) << 50) /* a petabyte: no file is larger */
#define SETTINGS_AUTOACCEPT_WORD "contacts"

int
settings_parse_size(const char *text, uint64_t *out)
{
	static const char units[] = "KMGT";
	uint64_t v = 0;
	const char *p = text, *u;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > SETTINGS_SIZE_MAX)
			return -1;
	}
	if (*p != '\0' && (u = strchr(units, *p & ~0x20)) != NULL) {
		for (long i = 0; i <= u - units; i++)
			v *= 1024;
		p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' || v > SETTINGS_SIZE_MAX)
		return -1;
	*out = v;
	return 0;
}

int
settings_autoaccept(const struct settings *s, uint64_t *max)
{
	const char *v = settings_get(s, SETTING_AUTOACCEPT);
	size_t n = strlen(SETTINGS_AUTOACCEPT_WORD);

	if (strncmp(v, SETTINGS_AUTOACCEPT_WORD, n) != 0 || (v[n] != ' ' && v[n] != '\t'))
		return 0;
	return settings_parse_size(v + n, max) == 0;
}

static const struct setting_def *
def_of(enum setting_id id)
{
	static int ready;

	if (!ready) {
		for (size_t i = 0; i < HY_ARRAY_LEN(kinds); i++) {
			defs[kinds[i].id].kind = kinds[i].kind;
			defs[kinds[i].id].min = kinds[i].min;
			defs[kinds[i].id].max = kinds[i].max;
			defs[kinds[i].id].choices = kinds[i].choices;
		}
		ready = 1;
	}
	return &defs[id];
}

struct settings {
	char *values[SETTING_COUNT];
};

struct settings *
settings_new(void)
{
	struct settings *s = xcalloc(1, sizeof(*s));

	for (int i = 0; i < SETTING_COUNT; i++)
		s->values[i] = xstrdup(def_of(i)->def);
	return s;
}

void
settings_free(struct settings *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < SETTING_COUNT; i++)
		free(s->values[i]);
	free(s);
}

char *
settings_default_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	struct buf b;

	buf_init(&b);
	if (xdg != NULL && xdg[0] == '/')
		buf_printf(&b, "%s/%s/%s", xdg, SETTINGS_DIR, SETTINGS_FILE);
	else if (home != NULL && home[0] != '\0')
		buf_printf(&b, "%s/.config/%s/%s", home, SETTINGS_DIR, SETTINGS_FILE);
	return b.data;
}

static int
find_view(const char *name, size_t len)
{
	for (int i = 0; i < SETTING_COUNT; i++)
		if (strlen(def_of(i)->name) == len && memcmp(def_of(i)->name, name, len) == 0)
			return i;
	return -1;
}

int
settings_find(const char *name)
{
	return find_view(name, strlen(name));
}

const char *
settings_name(enum setting_id id)
{
	return def_of(id)->name;
}

const char *
settings_help(enum setting_id id)
{
	return def_of(id)->help;
}

static int
blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Checks value[0..n) for def; writes its normal form (NUL-terminated,
 * SETTINGS_VALUE_MAX + 1 bytes) to out. Returns 0 or -1 with err. */
static int
check(const struct setting_def *d, const char *value, size_t n, char *out, char *err)
{
	static const char *const on[] = { "on", "yes", "true", "1" };
	static const char *const off[] = { "off", "no", "false", "0" };
	char *end;
	long v;

	while (n > 0 && blank(value[0]))
		value++, n--;
	while (n > 0 && blank(value[n - 1]))
		n--;
	if (n > SETTINGS_VALUE_MAX) {
		snprintf(
		    err, SETTINGS_ERR_MAX, "%s: at most %d bytes", d->name, SETTINGS_VALUE_MAX);
		return -1;
	}
	if (!hy_utf8_printable(value, n)) {
		snprintf(err, SETTINGS_ERR_MAX, "%s: not printable UTF-8 text", d->name);
		return -1;
	}
	memcpy(out, value, n);
	out[n] = '\0';
	switch (d->kind) {
	case KIND_TEXT: return 0;
	case KIND_URL:
		if (n == 0 ||
		    ((strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0) &&
		        strpbrk(out, " \t") == NULL))
			return 0;
		snprintf(err, SETTINGS_ERR_MAX, "%s: an http:// or https:// URL", d->name);
		return -1;
	case KIND_USER:
		if (n <= 32 &&
		    strspn(out,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n)
			return 0;
		snprintf(err, SETTINGS_ERR_MAX, "%s: 1 to 32 of A-Z a-z 0-9 _ . -", d->name);
		return -1;
	case KIND_NUMBER:
		errno = 0;
		v = strtol(out, &end, 10);
		if (n > 0 && out[0] >= '0' && out[0] <= '9' && *end == '\0' && errno == 0 &&
		    v >= d->min && v <= d->max) {
			snprintf(out, SETTINGS_VALUE_MAX + 1, "%ld", v);
			return 0;
		}
		snprintf(
		    err, SETTINGS_ERR_MAX, "%s: a number from %ld to %ld", d->name, d->min, d->max);
		return -1;
	case KIND_SWITCH:
		for (size_t i = 0; i < HY_ARRAY_LEN(on); i++) {
			if (strcmp(out, on[i]) == 0 || strcmp(out, off[i]) == 0) {
				snprintf(out, SETTINGS_VALUE_MAX + 1, "%s",
				    strcmp(out, on[i]) == 0 ? "on" : "off");
				return 0;
			}
		}
		snprintf(err, SETTINGS_ERR_MAX, "%s: on or off", d->name);
		return -1;
	case KIND_CHOICE:
		for (size_t i = 0; d->choices[i] != NULL; i++)
			if (strcmp(out, d->choices[i]) == 0)
				return 0;
		snprintf(err, SETTINGS_ERR_MAX, "%s: one of", d->name);
		for (size_t i = 0; d->choices[i] != NULL; i++) {
			size_t len = strlen(err);
			snprintf(err + len, SETTINGS_ERR_MAX - len, "%s %s", i > 0 ? "," : "",
			    d->choices[i]);
		}
		return -1;
	case KIND_SIZE: {
		uint64_t size;
		if (settings_parse_size(out, &size) == 0)
			return 0;
		snprintf(err, SETTINGS_ERR_MAX, "%s: a size, such as 4G or 500M", d->name);
		return -1;
	}
	case KIND_AUTOACCEPT: {
		size_t w = strlen(SETTINGS_AUTOACCEPT_WORD);
		uint64_t size;
		if (strcmp(out, "off") == 0 ||
		    (strncmp(out, SETTINGS_AUTOACCEPT_WORD, w) == 0 && blank(out[w]) &&
		        settings_parse_size(out + w, &size) == 0))
			return 0;
		snprintf(
		    err, SETTINGS_ERR_MAX, "%s: off, or contacts SIZE (such as 100M)", d->name);
		return -1;
	}
	}
	return -1;
}

static int
set_view(struct settings *s, enum setting_id id, const char *value, size_t n, char *err)
{
	char out[SETTINGS_VALUE_MAX + 1];

	if (check(def_of(id), value, n, out, err) < 0)
		return -1;
	free(s->values[id]);
	s->values[id] = xstrdup(out);
	return 0;
}

int
settings_set(struct settings *s, enum setting_id id, const char *value, char *err)
{
	return set_view(s, id, value, strlen(value), err);
}

const char *
settings_get(const struct settings *s, enum setting_id id)
{
	return s->values[id];
}

long
settings_get_int(const struct settings *s, enum setting_id id)
{
	const char *v = s->values[id];

	if (def_of(id)->kind == KIND_SWITCH)
		return strcmp(v, "on") == 0;
	return strtol(v, NULL, 10);
}

int
settings_is_set(const struct settings *s, enum setting_id id)
{
	return strcmp(s->values[id], def_of(id)->def) != 0;
}

/* One line, without its newline: blank, a comment, or NAME = VALUE. */
static int
parse_line(struct settings *s, const char *p, size_t n, char *err)
{
	const char *eq, *name = p;
	size_t nlen;
	int id;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	while (n > 0 && blank(*name))
		name++, n--;
	if (n == 0 || name[0] == '#')
		return 0;
	if ((eq = memchr(name, '=', n)) == NULL) {
		snprintf(err, SETTINGS_ERR_MAX, "expected NAME = VALUE");
		return -1;
	}
	nlen = (size_t)(eq - name);
	while (nlen > 0 && blank(name[nlen - 1]))
		nlen--;
	if ((id = find_view(name, nlen)) < 0) {
		snprintf(err, SETTINGS_ERR_MAX, "unknown setting \"%.*s\"",
		    (int)(nlen > 32 ? 32 : nlen), name);
		/* The name is shown: only printable bytes. */
		for (char *c = err; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7F)
				*c = '?';
		return -1;
	}
	return set_view(s, id, eq + 1, n - (size_t)(eq + 1 - name), err);
}

size_t
settings_parse(struct settings *s, const char *text, size_t len, settings_warn_fn *warn, void *arg)
{
	char err[SETTINGS_ERR_MAX];
	size_t bad = 0, line = 0, off = 0;

	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - (text + off)) : len - off;

		line++;
		if (parse_line(s, text + off, n, err) < 0) {
			bad++;
			if (warn != NULL)
				warn(arg, line, err);
		}
		off += n + (nl != NULL);
	}
	return bad;
}

int
settings_load(struct settings *s, const char *path, settings_warn_fn *warn, void *arg, char **cause)
{
	FILE *f = fopen(path, "r");
	char *text;
	size_t n;
	struct buf b;

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		buf_init(&b);
		buf_printf(&b, "%s: %s", path, strerror(errno));
		*cause = b.data;
		return -1;
	}
	text = xmalloc(SETTINGS_FILE_MAX);
	n = fread(text, 1, SETTINGS_FILE_MAX, f);
	if (ferror(f)) {
		buf_init(&b);
		buf_printf(&b, "%s: cannot read", path);
		*cause = b.data;
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	settings_parse(s, text, n, warn, arg);
	free(text);
	return 0;
}

static int
make_parent(const char *path, char **cause)
{
	char *dir = xstrdup(path);
	struct buf b;

	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, SETTINGS_DIR_MODE) < 0 && errno != EEXIST) {
			buf_init(&b);
			buf_printf(&b, "%s: %s", dir, strerror(errno));
			*cause = b.data;
			free(dir);
			return -1;
		}
		*p = '/';
	}
	free(dir);
	return 0;
}

int
settings_save(const struct settings *s, const char *path, char **cause)
{
	struct buf text, tmp, why;
	int fd, rc = -1;
	ssize_t w = 0;

	if (make_parent(path, cause) < 0)
		return -1;
	buf_init(&text);
	buf_append_str(
	    &text, "# hychat settings: NAME = VALUE; /set NAME VALUE writes this file.\n");
	for (int i = 0; i < SETTING_COUNT; i++)
		buf_printf(&text, "%s = %s\n", def_of(i)->name, s->values[i]);
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	buf_init(&why);
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, SETTINGS_FILE_MODE);
	if (fd >= 0) {
		size_t off = 0;
		while (off < text.len && (w = write(fd, text.data + off, text.len - off)) > 0)
			off += (size_t)w;
		if (off == text.len && fchmod(fd, SETTINGS_FILE_MODE) == 0 && fsync(fd) == 0) {
			if (close(fd) == 0 && rename(tmp.data, path) == 0)
				rc = 0;
		} else {
			close(fd);
		}
		if (rc < 0)
			unlink(tmp.data);
	}
	if (rc < 0) {
		buf_printf(&why, "%s: %s", path, strerror(errno));
		*cause = why.data;
	}
	buf_fini(&text);
	buf_fini(&tmp);
	return rc;
}
