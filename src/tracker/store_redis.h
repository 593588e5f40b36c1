/* store_redis.h — what the Redis store's files share: the address a URL
 * names (store_redis_admin.c). Not an interface outside src/tracker. */
#ifndef HYCHAT_STORE_REDIS_H
#define HYCHAT_STORE_REDIS_H

#include <netdb.h>

#define REDIS_URL_PREFIX "redis://"
#define REDIS_DEFAULT_PORT 6379

struct redis_addr {
	char host[NI_MAXHOST]; /* numeric */
	int port;
	int db;
};

/* Parses redis://HOST[:PORT][/DB] and resolves HOST (blocking: at start
 * only). Returns 0, or -1 with *cause. */
int redis_addr_parse(const char *url, struct redis_addr *a, char **cause);

#endif
