/* identity.c — the identity key file and known_peers. */
#include "hychat/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "hychat/util.h"

#define KEY_B64_MAX sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)

struct identity {
	uint8_t sk[IDENTITY_SECRET_BYTES];
	uint8_t pk[IDENTITY_PUBLIC_BYTES];
};

static struct identity *
identity_from_secret(const uint8_t sk[IDENTITY_SECRET_BYTES])
{
	struct identity *id;

	if (sodium_init() < 0 || (id = sodium_malloc(sizeof(*id))) == NULL)
		return NULL;
	memcpy(id->sk, sk, IDENTITY_SECRET_BYTES);
	crypto_scalarmult_base(id->pk, id->sk);
	return id;
}

/* Creates a new key file; the key is written to a temporary file and
 * renamed, so a crash leaves no half key. */
static struct identity *
create_key(const char *path, char **cause)
{
	uint8_t sk[IDENTITY_SECRET_BYTES];
	char b64[KEY_B64_MAX], *tmp;
	struct identity *id;
	struct buf t;
	FILE *f;
	int fd;

	randombytes_buf(sk, sizeof(sk));
	sodium_bin2base64(b64, sizeof(b64), sk, sizeof(sk), sodium_base64_VARIANT_ORIGINAL);
	buf_init(&t);
	buf_printf(&t, "%s.tmp", path);
	tmp = t.data;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		hy_cause(cause, "cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return NULL;
	}
	fprintf(f, "# hychat identity key: the secret half. Keep it; never share it.\n%s\n", b64);
	if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		hy_cause(cause, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	free(tmp);
	id = identity_from_secret(sk);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(b64, sizeof(b64));
	return id;
}

struct identity *
identity_load(const char *path, char **cause)
{
	uint8_t sk[IDENTITY_SECRET_BYTES];
	char line[256];
	struct identity *id = NULL;
	struct stat st;
	size_t n;
	FILE *f;

	if (sodium_init() < 0) {
		*cause = xstrdup("libsodium cannot start");
		return NULL;
	}
	f = fopen(path, "re");
	if (f == NULL && errno == ENOENT)
		return create_key(path, cause);
	if (f == NULL) {
		hy_cause(cause, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
		hy_cause(cause, "refusing %s: others can read it (chmod 600 it)", path);
		fclose(f);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		if (sodium_base642bin(sk, sizeof(sk), line, strlen(line), NULL, &n, NULL,
		        sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    n == sizeof(sk))
			id = identity_from_secret(sk);
		break;
	}
	fclose(f);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(line, sizeof(line));
	if (id == NULL)
		hy_cause(cause, "bad key file %s: expected one line of base64 (32 bytes)", path);
	return id;
}

void
identity_free(struct identity *id)
{
	if (id != NULL)
		sodium_free(id);
}

const uint8_t *
identity_public_key(const struct identity *id)
{
	return id->pk;
}

const uint8_t *
identity_secret_key(const struct identity *id)
{
	return id->sk;
}

void
identity_fingerprint(const uint8_t key[IDENTITY_PUBLIC_BYTES], char *fp)
{
	uint8_t h[32];

	crypto_generichash(h, sizeof(h), key, IDENTITY_PUBLIC_BYTES, NULL, 0);
	memcpy(fp, "BLAKE2b:", 8);
	sodium_bin2base64(fp + 8, IDENTITY_FINGERPRINT_MAX - 8, h, sizeof(h),
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* known_peers */

struct known_entry {
	char user[HY_NAME_MAX + 1];
	uint8_t key[IDENTITY_PUBLIC_BYTES];
};

struct known_peers {
	char *path;
	struct known_entry *v;
	size_t n, cap;
};

static struct known_entry *
find(const struct known_peers *k, const char *user)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].user, user) == 0)
			return &k->v[i];
	return NULL;
}

static void
add(struct known_peers *k, const char *user, const uint8_t *key)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 16;
		k->v = xrealloc(k->v, k->cap * sizeof(*k->v));
	}
	snprintf(k->v[k->n].user, sizeof(k->v[k->n].user), "%s", user);
	memcpy(k->v[k->n].key, key, IDENTITY_PUBLIC_BYTES);
	k->n++;
}

struct known_peers *
known_peers_open(const char *path, char **cause)
{
	struct known_peers *k = xcalloc(1, sizeof(*k));
	uint8_t key[IDENTITY_PUBLIC_BYTES];
	char line[512], *user, *b64, *save;
	size_t n;
	FILE *f;

	k->path = xstrdup(path);
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return k;
		hy_cause(cause, "cannot open %s: %s", path, strerror(errno));
		known_peers_close(k);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		user = strtok_r(line, " \t\r\n", &save);
		b64 = user != NULL ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		/* Comments, blank and bad lines are skipped; the first line for
		 * a user wins. */
		if (user == NULL || b64 == NULL || !hy_name_valid(user, strlen(user)) ||
		    find(k, user) != NULL)
			continue;
		if (sodium_base642bin(key, sizeof(key), b64, strlen(b64), NULL, &n, NULL,
		        sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    n == sizeof(key))
			add(k, user, key);
	}
	fclose(f);
	return k;
}

void
known_peers_close(struct known_peers *k)
{
	if (k == NULL)
		return;
	free(k->path);
	free(k->v);
	free(k);
}

enum known_peers_result
known_peers_check(struct known_peers *k, const char *user, const uint8_t *key, size_t keylen)
{
	char b64[KEY_B64_MAX];
	struct known_entry *e;
	FILE *f;
	int ok;

	if (keylen != IDENTITY_PUBLIC_BYTES || !hy_name_valid(user, strlen(user)))
		return KNOWN_PEERS_ERROR;
	e = find(k, user);
	if (e != NULL)
		return sodium_memcmp(e->key, key, keylen) == 0 ? KNOWN_PEERS_MATCH
		                                               : KNOWN_PEERS_CHANGED;
	/* A small append, once per new user. */
	f = fopen(k->path, "ae");
	if (f == NULL)
		return KNOWN_PEERS_ERROR;
	sodium_bin2base64(b64, sizeof(b64), key, keylen, sodium_base64_VARIANT_ORIGINAL);
	ok = fprintf(f, "%s %s\n", user, b64) > 0;
	if (fclose(f) != 0 || !ok)
		return KNOWN_PEERS_ERROR;
	add(k, user, key);
	return KNOWN_PEERS_NEW;
}

int
known_peers_lookup(
    const struct known_peers *k, const char *user, uint8_t key[IDENTITY_PUBLIC_BYTES])
{
	const struct known_entry *e = find(k, user);

	if (e == NULL)
		return 0;
	memcpy(key, e->key, IDENTITY_PUBLIC_BYTES);
	return 1;
}
