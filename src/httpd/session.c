/* session.c — cookie sessions: token → user and expiry, in a hash table
 * shared by the worker threads under a mutex. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/session.h"
#include "hychat/util.h"

#define SESSION_BUCKETS 1024

struct session {
	struct session *next;
	char token[SESSION_TOKEN_CHARS + 1];
	char user[SESSION_MAX_USER + 1];
	uint64_t expires;
};

struct sessions {
	pthread_mutex_t lock;
	uint64_t ttl_ms;
	size_t count;
	struct session *buckets[SESSION_BUCKETS];
};

struct sessions *
sessions_new(uint64_t ttl_ms)
{
	struct sessions *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->ttl_ms = ttl_ms;
	return s;
}

void
sessions_free(struct sessions *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < SESSION_BUCKETS; i++) {
		struct session *e, *next;
		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->next;
			sodium_memzero(e, sizeof(*e));
			free(e);
		}
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Tokens are uniformly random, so their first bytes are a fine hash. */
static size_t
bucket_of(const char *token)
{
	unsigned char b[2];
	size_t bl;

	if (sodium_hex2bin(b, sizeof(b), token, 4, NULL, &bl, NULL) != 0 || bl != 2)
		return 0;
	return ((size_t)b[0] << 8 | b[1]) % SESSION_BUCKETS;
}

void
sessions_create(struct sessions *s, const char *user, uint64_t now, char *token)
{
	unsigned char raw[SESSION_TOKEN_BYTES];
	struct session *e = xcalloc(1, sizeof(*e));

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(e->token, sizeof(e->token), raw, sizeof(raw));
	snprintf(e->user, sizeof(e->user), "%s", user);
	e->expires = now + s->ttl_ms;
	memcpy(token, e->token, sizeof(e->token));
	pthread_mutex_lock(&s->lock);
	size_t b = bucket_of(e->token);
	e->next = s->buckets[b];
	s->buckets[b] = e;
	s->count++;
	pthread_mutex_unlock(&s->lock);
}

/* Finds token's link in its bucket; called under the lock. */
static struct session **
find(struct sessions *s, const char *token)
{
	if (strlen(token) != SESSION_TOKEN_CHARS)
		return NULL;
	struct session **pp = &s->buckets[bucket_of(token)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (hy_memeq_ct((*pp)->token, token, SESSION_TOKEN_CHARS))
			return pp;
	}
	return NULL;
}

static void
unlink_free(struct sessions *s, struct session **pp)
{
	struct session *e = *pp;
	*pp = e->next;
	sodium_memzero(e, sizeof(*e));
	free(e);
	s->count--;
}

int
sessions_check(struct sessions *s, const char *token, uint64_t now, char *user)
{
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	struct session **pp = find(s, token);
	if (pp != NULL && (*pp)->expires <= now) {
		unlink_free(s, pp);
	} else if (pp != NULL) {
		memcpy(user, (*pp)->user, sizeof((*pp)->user));
		rc = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
sessions_end(struct sessions *s, const char *token)
{
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	struct session **pp = find(s, token);
	if (pp != NULL) {
		unlink_free(s, pp);
		rc = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

size_t
sessions_sweep(struct sessions *s, uint64_t now)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < SESSION_BUCKETS; i++) {
		struct session **pp = &s->buckets[i];
		while (*pp != NULL) {
			if ((*pp)->expires <= now) {
				unlink_free(s, pp);
				n++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
sessions_count(struct sessions *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->count;
	pthread_mutex_unlock(&s->lock);
	return n;
}
