/* store_redis_admin.c — the Redis store's address, and its blocking calls
 * for the command line (--add-user, --migrate-from), which run before any
 * loop and so may wait for the server: the URL, setting a password, and
 * copying an SQLite store's accounts, keys, memberships, profiles and
 * mailboxes in one pipeline. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>

#include "hychat/store.h"
#include "hychat/util.h"
#include "store_redis.h"
#include "store_redis_lua.h"

#define ADMIN_KEY_MAX 128
#define ADMIN_TIMEOUT_S 10

/* Resolved once, at start: hiredis would resolve a name with
 * getaddrinfo() on every connect, blocking the loop. */
static int
redis_resolve(const char *host, char out[NI_MAXHOST], char **cause)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &ai);

	if (rc != 0) {
		char why[NI_MAXHOST + 128];
		snprintf(why, sizeof(why), "%s: %s", host, gai_strerror(rc));
		*cause = xstrdup(why);
		return -1;
	}
	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, out, NI_MAXHOST, NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(ai);
	if (rc != 0) {
		*cause = xstrdup(gai_strerror(rc));
		return -1;
	}
	return 0;
}

/* HOST[:PORT] of len bytes at s into a, PORT defaulting to def. */
static int
host_port(const char *s, size_t len, int def, struct redis_addr *a, char **cause)
{
	char host[NI_MAXHOST];
	const char *colon = memchr(s, ':', len);
	size_t hlen = colon != NULL ? (size_t)(colon - s) : len;
	char *end;

	if (hlen == 0 || hlen >= sizeof(host)) {
		*cause = xstrdup("expected HOST:PORT");
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	a->port = def;
	if (colon != NULL) {
		long port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || port < 1 || port > 65535 || end != s + len) {
			*cause = xstrdup("the port must be 1 to 65535");
			return -1;
		}
		a->port = (int)port;
	}
	return redis_resolve(host, a->host, cause);
}

int
redis_sentinel_parse(const char *url, struct redis_sentinels *sn, char **cause)
{
	const char *rest, *slash;

	memset(sn, 0, sizeof(*sn));
	if (strncmp(url, REDIS_SENTINEL_PREFIX, strlen(REDIS_SENTINEL_PREFIX)) != 0 ||
	    (slash = strchr(rest = url + strlen(REDIS_SENTINEL_PREFIX), '/')) == NULL ||
	    slash[1] == '\0' || strlen(slash + 1) >= sizeof(sn->master) || slash == rest) {
		*cause = xstrdup("expected redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER");
		return -1;
	}
	snprintf(sn->master, sizeof(sn->master), "%s", slash + 1);
	for (const char *p = rest; p < slash;) {
		const char *comma = memchr(p, ',', (size_t)(slash - p));
		const char *stop = comma != NULL ? comma : slash;
		if (sn->n == REDIS_MAX_SENTINELS) {
			*cause = xstrdup("too many sentinels");
			return -1;
		}
		if (host_port(p, (size_t)(stop - p), REDIS_SENTINEL_PORT, &sn->at[sn->n], cause) <
		    0)
			return -1;
		sn->n++;
		p = stop + 1;
	}
	return 0;
}

int
redis_addr_parse(const char *url, struct redis_addr *a, char **cause)
{
	const char *rest, *slash;
	char *end;

	memset(a, 0, sizeof(*a));
	if (strncmp(url, REDIS_URL_PREFIX, strlen(REDIS_URL_PREFIX)) != 0) {
		*cause = xstrdup("expected redis://HOST:PORT[/DB]");
		return -1;
	}
	rest = url + strlen(REDIS_URL_PREFIX);
	slash = strchr(rest, '/');
	if (slash != NULL && slash[1] != '\0') {
		long db = strtol(slash + 1, &end, 10);
		if (*end != '\0' || db < 0 || db > 65535 || !(slash[1] >= '0' && slash[1] <= '9')) {
			*cause = xstrdup("the database must be a number");
			return -1;
		}
		a->db = (int)db;
	}
	return host_port(rest, slash != NULL ? (size_t)(slash - rest) : strlen(rest),
	    REDIS_DEFAULT_PORT, a, cause);
}

/* Connects and selects the database; NULL with *cause. */
static redisContext *
admin_connect(const char *url, char **cause)
{
	struct redis_addr a;
	struct timeval tv = { .tv_sec = ADMIN_TIMEOUT_S };
	char why[NI_MAXHOST + 256];

	if (redis_addr_parse(url, &a, cause) < 0)
		return NULL;
	redisContext *rc = redisConnectWithTimeout(a.host, a.port, tv);
	if (rc == NULL || rc->err) {
		snprintf(why, sizeof(why), "%s:%d: %s", a.host, a.port,
		    rc != NULL ? rc->errstr : "out of memory");
		*cause = xstrdup(why);
		redisFree(rc);
		return NULL;
	}
	redisSetTimeout(rc, tv);
	if (a.db != 0) {
		redisReply *r = redisCommand(rc, "SELECT %d", a.db);
		int bad = r == NULL || r->type == REDIS_REPLY_ERROR;
		snprintf(why, sizeof(why), "SELECT %d: %s", a.db,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
		freeReplyObject(r);
		if (bad) {
			*cause = xstrdup(why);
			redisFree(rc);
			return NULL;
		}
	}
	return rc;
}

/* Reads n pipelined replies; -1 with *cause at the first error. */
static int
admin_drain(redisContext *rc, size_t n, char **cause)
{
	int failed = 0;
	char why[512] = "";

	for (size_t i = 0; i < n; i++) {
		void *reply = NULL;
		if (redisGetReply(rc, &reply) != REDIS_OK) {
			snprintf(why, sizeof(why), "%s", rc->errstr);
			failed = 1;
			break;
		}
		redisReply *r = reply;
		if (r->type == REDIS_REPLY_ERROR && !failed) {
			snprintf(why, sizeof(why), "%s", r->str);
			failed = 1;
		}
		freeReplyObject(r);
	}
	if (failed)
		*cause = xstrdup(why);
	return failed ? -1 : 0;
}

int
store_redis_set_hash(const char *url, const char *name, const char *hash, char **cause)
{
	redisContext *rc = admin_connect(url, cause);

	if (rc == NULL)
		return -1;
	redisAppendCommand(rc, "HSET hy:u:{%s} h %s", name, hash);
	redisAppendCommand(rc, "SADD hy:users:{%u} %s", redis_bucket(name), name);
	int ret = admin_drain(rc, 2, cause);
	redisFree(rc);
	return ret;
}

#define ADMIN_MAIL_PAGE 256 /* messages read from the old store at a time */
#define ADMIN_TIME_TEXT 24 /* a wall-clock ms in decimal, the space and NUL */
/* Raises a counter to ARGV[1], never lowers it: ids only grow. */
#define ADMIN_RAISE \
	"if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then " \
	"redis.call('SET', KEYS[1], ARGV[1]) end"

struct migration {
	redisContext *rc;
	struct store_migration *n;
	size_t pending;
	char (*names)[HY_NAME_MAX + 1]; /* every account, for the mailboxes */
	size_t nnames;
	const char *user; /* whose mailbox is being copied */
	uint64_t last_id, msgs, bytes;
};

static void
migrate_user(const char *name, const char *hash, void *arg)
{
	struct migration *m = arg;

	redisAppendCommand(m->rc, "HSET hy:u:{%s} h %s", name, hash);
	redisAppendCommand(m->rc, "SADD hy:users:{%u} %s", redis_bucket(name), name);
	m->pending += 2;
	m->n->accounts++;
	if (hy_name_valid(name, strlen(name))) {
		m->names = xrealloc(m->names, (m->nnames + 1) * sizeof(*m->names));
		snprintf(m->names[m->nnames++], sizeof(*m->names), "%s", name);
	}
}

static void
migrate_profile(const char *name, const char *display, const char *status, void *arg)
{
	struct migration *m = arg;

	if (name == NULL || display == NULL || status == NULL ||
	    !hy_name_valid(name, strlen(name)) || (display[0] == '\0' && status[0] == '\0'))
		return;
	redisAppendCommand(m->rc, "DEL hy:p:{%s}", name);
	redisAppendCommand(m->rc, "HSET hy:p:{%s} d %s s %s", name, display, status);
	m->pending += 2;
	m->n->profiles++;
}

/* One message, as store_redis_lua.h lays a mailbox out. */
static void
migrate_mail(uint64_t id, uint64_t time_ms, const uint8_t *blob, size_t len, void *arg)
{
	struct migration *m = arg;
	char head[ADMIN_TIME_TEXT], *v;
	int hlen = snprintf(head, sizeof(head), "%llu ", (unsigned long long)time_ms);

	v = xmalloc((size_t)hlen + len + 1);
	memcpy(v, head, (size_t)hlen);
	memcpy(v + hlen, blob, len);
	redisAppendCommand(m->rc, "HSET hy:mb:{%s} %llu %b", m->user, (unsigned long long)id, v,
	    (size_t)hlen + len);
	free(v);
	redisAppendCommand(m->rc, "ZADD hy:mq:{%s} %llu %llu", m->user, (unsigned long long)id,
	    (unsigned long long)id);
	char member[HY_NAME_MAX + ADMIN_TIME_TEXT];
	int mlen = snprintf(member, sizeof(member), "%s %llu", m->user, (unsigned long long)id);
	redisAppendCommand(m->rc, "ZADD hy:mail:{%u} %llu %b", redis_bucket(m->user),
	    (unsigned long long)time_ms, member, (size_t)mlen);
	m->pending += 3;
	m->last_id = id;
	m->msgs++;
	m->bytes += len;
	m->n->messages++;
}

/* Replaces name's mailbox in Redis with the one in from: the same ids,
 * deposit times and blobs, and the counts; the last id given is raised
 * to the highest copied. */
static int
migrate_mailbox(struct migration *m, struct store *from, const char *name, char **cause)
{
	int more = 1;

	m->user = name;
	m->last_id = m->msgs = m->bytes = 0;
	redisAppendCommand(m->rc, "DEL hy:mb:{%s} hy:mq:{%s} hy:mc:{%s}", name, name, name);
	m->pending++;
	while (more) {
		more = 0;
		if (from->ops->mail_list(from, name, m->last_id, ADMIN_MAIL_PAGE, SIZE_MAX,
		        migrate_mail, m, &more, cause) < 0)
			return -1;
	}
	if (m->msgs == 0)
		return 0;
	redisAppendCommand(m->rc, "HSET hy:mc:{%s} n %llu b %llu", name,
	    (unsigned long long)m->msgs, (unsigned long long)m->bytes);
	redisAppendCommand(
	    m->rc, "EVAL %s 1 hy:mid:{%s} %llu", ADMIN_RAISE, name, (unsigned long long)m->last_id);
	m->pending += 2;
	return 0;
}

static void
migrate_key(const char *name, const uint8_t *key, size_t len, void *arg)
{
	struct migration *m = arg;
	char text[REG_PUBKEY_TEXT_SIZE];

	if (len > REG_PUBKEY_MAX)
		return;
	sodium_bin2base64(text, sizeof(text), key, len, sodium_base64_VARIANT_ORIGINAL);
	redisAppendCommand(m->rc, "HSET hy:u:{%s} pk %s", name, text);
	m->pending++;
	m->n->keys++;
}

static void
migrate_member(const char *channel, const char *name, void *arg)
{
	struct migration *m = arg;
	char canon[HY_CHANNEL_MAX + 1];

	if (!hy_name_valid(name, strlen(name)) ||
	    hy_channel_canon(channel, strlen(channel), canon) < 0)
		return;
	redisAppendCommand(m->rc, "ZADD hy:c:{%s} 0 %s", canon, name);
	redisAppendCommand(m->rc, "ZADD hy:channels 0 %s", canon);
	redisAppendCommand(m->rc, "SADD hy:uc:{%s} %s", name, canon);
	m->pending += 3;
	m->n->memberships++;
}

int
store_redis_migrate(const char *url, struct store *from, struct store_migration *n, char **cause)
{
	struct migration m = { .n = n };

	memset(n, 0, sizeof(*n));
	if (from->ops->each_user == NULL) {
		*cause = xstrdup("this store cannot list its accounts");
		return -1;
	}
	if ((m.rc = admin_connect(url, cause)) == NULL)
		return -1;
	int rc = from->ops->each_user(from, migrate_user, &m, cause);
	if (rc == 0)
		rc = from->ops->each_pubkey(from, migrate_key, &m, cause);
	if (rc == 0)
		rc = from->ops->each_member(from, migrate_member, &m, cause);
	if (rc == 0 && from->ops->each_profile != NULL)
		rc = from->ops->each_profile(from, migrate_profile, &m, cause);
	for (size_t i = 0; rc == 0 && from->ops->mail_list != NULL && i < m.nnames; i++)
		rc = migrate_mailbox(&m, from, m.names[i], cause);
	free(m.names);
	char *drain_cause = NULL;
	if (admin_drain(m.rc, m.pending, &drain_cause) < 0 && rc == 0) {
		*cause = drain_cause;
		rc = -1;
	} else {
		free(drain_cause);
	}
	if (rc == 0) {
		redisReply *r = redisCommand(m.rc, "ZCARD hy:channels");
		if (r != NULL && r->type == REDIS_REPLY_INTEGER)
			n->channels = (uint64_t)r->integer;
		freeReplyObject(r);
	}
	redisFree(m.rc);
	return rc;
}
