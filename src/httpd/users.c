/* users.c — the users file: load, verify, update atomically. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/log.h"
#include "hychat/users.h"
#include "hychat/util.h"

struct user {
	char name[HY_NAME_MAX + 1];
	char hash[crypto_pwhash_STRBYTES];
};

struct users {
	struct user *v;
	size_t n, cap;
};

/* Verified against for unknown names, so they cost as much as known ones. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_init(void)
{
	if (crypto_pwhash_str(dummy_hash, "hychat-dummy", 12, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		dummy_hash[0] = '\0';
}

static struct user *
users_find(const struct users *u, const char *name)
{
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].name, name) == 0)
			return &u->v[i];
	}
	return NULL;
}

static void
users_put(struct users *u, const char *name, const char *hash)
{
	struct user *e = users_find(u, name);

	if (e == NULL) {
		if (u->n == u->cap) {
			u->cap = u->cap ? u->cap * 2 : 8;
			u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
		}
		e = &u->v[u->n++];
		snprintf(e->name, sizeof(e->name), "%s", name);
	}
	snprintf(e->hash, sizeof(e->hash), "%s", hash);
}

struct users *
users_load(const char *path, char **cause)
{
	struct users *u = xcalloc(1, sizeof(*u));
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		if (errno == ENOENT)
			return u;
		hy_cause(cause, "%s", strerror(errno));
		free(u);
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		char *colon = strchr(line, ':');
		if (colon != NULL)
			*colon = '\0';
		if (colon == NULL || !hy_name_valid(line, strlen(line)) ||
		    strncmp(colon + 1, "$argon2id$", 10) != 0 ||
		    strlen(colon + 1) >= crypto_pwhash_STRBYTES) {
			log_warn("%s:%u: expected NAME:$argon2id$..., line skipped", path, lineno);
			continue;
		}
		users_put(u, line, colon + 1);
	}
	free(line);
	fclose(f);
	return u;
}

void
users_free(struct users *u)
{
	if (u == NULL)
		return;
	free(u->v);
	free(u);
}

size_t
users_count(const struct users *u)
{
	return u->n;
}

int
users_verify(const struct users *u, const char *name, const char *password)
{
	const struct user *e = users_find(u, name);
	size_t plen = strlen(password);

	if (plen > USERS_MAX_PASSWORD)
		return 0;
	if (e == NULL) {
		pthread_once(&dummy_once, dummy_init);
		/* the answer is always no; the work is what matters */
		if (dummy_hash[0] != '\0' &&
		    crypto_pwhash_str_verify(dummy_hash, password, plen) == 0)
			return 0;
		return 0;
	}
	return crypto_pwhash_str_verify(e->hash, password, plen) == 0;
}

int
users_set(struct users *u, const char *path, const char *name, const char *password, char **cause)
{
	char hash[crypto_pwhash_STRBYTES];
	char tmp[4096];

	if (!hy_name_valid(name, strlen(name))) {
		hy_cause(cause, "a name is " HY_NAME_RULE);
		return -1;
	}
	if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		hy_cause(cause, "out of memory while hashing");
		return -1;
	}
	users_put(u, name, hash);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		hy_cause(cause, "path too long");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		hy_cause(cause, "%s", strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		hy_cause(cause, "%s", strerror(errno));
		return -1;
	}
	fprintf(f, "# hychat users: NAME:ARGON2ID-HASH, one per line\n");
	for (size_t i = 0; i < u->n; i++)
		fprintf(f, "%s:%s\n", u->v[i].name, u->v[i].hash);
	if (fflush(f) != 0 || fsync(fd) != 0) {
		hy_cause(cause, "%s", strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) != 0) {
		hy_cause(cause, "%s", strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
