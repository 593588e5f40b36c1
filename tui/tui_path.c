/* tui_path.c — Tab completion of a file's path (/sendfile, /accept): the
 * word as typed, with "~" expanded, split into the directory to list and
 * the start of a name; the names that fit, a directory's with a trailing
 * "/", sorted; and how far they agree. Everything but tui_path_complete()
 * is a pure function of its arguments, tested without a file system. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tui_internal.h"

char *
tui_path_expand(const char *word, const char *home)
{
	struct buf b;

	/* "~" and "~/..." only: "~user" is left as typed. */
	if (home == NULL || home[0] == '\0' || word[0] != '~' ||
	    (word[1] != '\0' && word[1] != '/'))
		return xstrdup(word);
	buf_init(&b);
	buf_append_str(&b, home);
	/* "/" as home, then "~/x": "/x", not "//x". */
	if (b.len > 0 && b.data[b.len - 1] == '/' && word[1] == '/')
		b.len--;
	buf_append_str(&b, word[1] == '\0' ? "/" : word + 1);
	buf_append(&b, "", 0);
	return b.data;
}

size_t
tui_path_dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? (size_t)(slash - path) + 1 : 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
tui_path_match(
    const char *path, const struct tui_path_entry *ents, size_t n, char **out, size_t max)
{
	size_t dlen = tui_path_dir_len(path), k = 0;
	const char *base = path + dlen;
	size_t blen = strlen(base);

	for (size_t i = 0; i < n && k < max; i++) {
		const char *name = ents[i].name;
		struct buf b;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		/* Hidden files only when the typed start is a dot. */
		if (name[0] == '.' && base[0] != '.')
			continue;
		if (strncmp(name, base, blen) != 0)
			continue;
		buf_init(&b);
		buf_append(&b, path, dlen);
		buf_append_str(&b, name);
		if (ents[i].is_dir)
			buf_append_char(&b, '/');
		buf_append(&b, "", 0);
		out[k++] = b.data;
	}
	qsort(out, k, sizeof(*out), by_name);
	return k;
}

size_t
tui_path_common(char *const *v, size_t n)
{
	size_t len;

	if (n == 0)
		return 0;
	len = strlen(v[0]);
	for (size_t i = 1; i < n; i++) {
		size_t j = 0;
		while (j < len && v[i][j] == v[0][j])
			j++;
		len = j;
	}
	/* Never half a UTF-8 character. */
	while (len > 0 && len < strlen(v[0]) && ((unsigned char)v[0][len] & 0xc0) == 0x80)
		len--;
	return len;
}

size_t
tui_path_complete(const char *word, const char *home, char **out, size_t max)
{
	char *path = tui_path_expand(word, home), *dir;
	size_t dlen = tui_path_dir_len(path), n = 0, cap = 0, k;
	struct tui_path_entry *ents = NULL;
	struct dirent *d;
	DIR *dp;

	dir = dlen > 0 ? xstrdup(path) : xstrdup(".");
	if (dlen > 0)
		dir[dlen] = '\0';
	if ((dp = opendir(dir)) == NULL) {
		free(dir);
		free(path);
		return 0;
	}
	/* A huge directory costs a bounded time on a key press. */
	while ((d = readdir(dp)) != NULL && n < TUI_PATH_SCAN_MAX) {
		int is_dir = d->d_type == DT_DIR;
		if (d->d_type == DT_UNKNOWN || d->d_type == DT_LNK) {
			struct stat st;
			struct buf b;
			buf_init(&b);
			buf_printf(&b, "%s/%s", dir, d->d_name);
			is_dir = stat(b.data, &st) == 0 && S_ISDIR(st.st_mode);
			buf_fini(&b);
		}
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 64;
			ents = xrealloc(ents, cap * sizeof(*ents));
		}
		ents[n].name = xstrdup(d->d_name);
		ents[n].is_dir = is_dir;
		n++;
	}
	closedir(dp);
	k = tui_path_match(path, ents, n, out, max);
	for (size_t i = 0; i < n; i++)
		free((char *)ents[i].name);
	free(ents);
	free(dir);
	free(path);
	return k;
}

/* The thread pool's side. */

struct tui_path_scan {
	uv_work_t req;
	struct tui *t; /* NULL once orphaned */
	tui_path_done done;
	char *word, *home;
	char **out;
	size_t max, n;
};

static void
scan_work(uv_work_t *req)
{
	struct tui_path_scan *s = req->data;

	s->n = tui_path_complete(s->word, s->home, s->out, s->max);
}

static void
scan_after(uv_work_t *req, int status)
{
	struct tui_path_scan *s = req->data;

	if (status != 0)
		s->n = 0;
	if (s->t != NULL) {
		s->done(s->t, s->out, s->n); /* out is the callback's now */
	} else {
		for (size_t i = 0; i < s->n; i++)
			free(s->out[i]);
		free(s->out);
	}
	free(s->word);
	free(s->home);
	free(s);
}

struct tui_path_scan *
tui_path_scan_start(uv_loop_t *loop, struct tui *t, const char *word, const char *home, size_t max,
    tui_path_done done)
{
	struct tui_path_scan *s = xcalloc(1, sizeof(*s));

	s->req.data = s;
	s->t = t;
	s->done = done;
	s->word = xstrdup(word);
	s->home = home != NULL ? xstrdup(home) : NULL;
	s->max = max;
	s->out = xcalloc(max > 0 ? max : 1, sizeof(*s->out));
	if (uv_queue_work(loop, &s->req, scan_work, scan_after) != 0) {
		s->t = NULL;
		scan_after(&s->req, UV_EINVAL);
		return NULL;
	}
	return s;
}

void
tui_path_scan_orphan(struct tui_path_scan *s)
{
	if (s != NULL)
		s->t = NULL;
}
