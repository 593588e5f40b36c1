/* store_redis.h — what the Redis store's files share: the address a URL
 * names (store_redis_admin.c), the connections and requests
 * (store_redis.c) and the operations (store_redis_ops.c and the files it
 * names). Not an interface outside src/tracker. */
#ifndef HYCHAT_STORE_REDIS_H
#define HYCHAT_STORE_REDIS_H

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdint.h>

#include "hychat/store.h"

#define REDIS_URL_PREFIX "redis://"
#define REDIS_DEFAULT_PORT 6379
#define REDIS_SENTINEL_PREFIX "redis-sentinel://"
#define REDIS_SENTINEL_PORT 26379
#define REDIS_MAX_SENTINELS 16
#define REDIS_MASTER_NAME_MAX 64

struct redis_addr {
	char host[NI_MAXHOST]; /* numeric */
	int port;
	int db;
};

/* Parses redis://HOST[:PORT][/DB] and resolves HOST (blocking: at start
 * only). Returns 0, or -1 with *cause. */
int redis_addr_parse(const char *url, struct redis_addr *a, char **cause);

/* The sentinels to ask for the primary called master. */
struct redis_sentinels {
	struct redis_addr at[REDIS_MAX_SENTINELS];
	size_t n;
	char master[REDIS_MASTER_NAME_MAX + 1];
};
/* Parses redis-sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER, resolving
 * each HOST, as redis_addr_parse(). */
int redis_sentinel_parse(const char *url, struct redis_sentinels *sn, char **cause);

/* One command on its way; the parser turns its reply into the call's
 * outputs and result. */
struct redis_req;
typedef enum store_result (*redis_parse_fn)(struct store_call *c, const redisReply *r);

/* A request for c: the script (enum redis_script) sent with EVALSHA, or
 * with script -1 a plain command whose words follow. */
struct redis_req *redis_req_new(struct store_call *c, int script, redis_parse_fn parse);
/* One of a script's KEYS, before any other argument: every key a script
 * touches is one of them, all in one hash slot, so that Redis Cluster
 * can route the call (and a cluster node refuses a script, with its
 * `#!lua` line, that strays). */
void redis_req_key(struct redis_req *q, const char *key);
void redis_req_str(struct redis_req *q, const char *s);
void redis_req_u64(struct redis_req *q, uint64_t v);
/* Any bytes, as one word. */
void redis_req_bin(struct redis_req *q, const void *p, size_t len);
/* The answer waits until a replica has the write (WAIT), where the store
 * has replicas to wait for (redis-sentinel://). */
void redis_req_replicated(struct redis_req *q);
/* Sends q on the call's loop's connection; the call finishes when the
 * reply is parsed, or at once with STORE_DOWN. */
void redis_req_start(struct store_state *s, struct redis_req *q);
/* Sends n requests for the same call at once (pipelined: one write, and
 * each may go to another slot); the call finishes once all have answered,
 * with the result of the first, in the order given, that was not
 * STORE_DONE. Each parser fills its part of the call. */
void redis_req_start_all(struct store_state *s, struct redis_req **qs, size_t n);
/* From a parser: sends q as the next step of the same call, which then
 * finishes once q (and whatever q's parser sends in turn) has answered;
 * the parser returns STORE_DONE, or the result to keep if q's is not
 * needed. */
void redis_req_then(struct redis_req *q);
/* A number for q's parser to read back with redis_tag() (which of several
 * alike requests it is parsing). */
void redis_req_tag(struct redis_req *q, int tag);
int redis_tag(void);

/* What the operations' files share (store_redis_ops.c). */

#define REDIS_KEY_MAX 128
#define REDIS_TOKEN_ID_TEXT 32 /* a token's hash in base64url, NUL included */

/* Replies: an integer (a number in a string too; 0 for anything else),
 * the element i of an array (NULL), a string into out ("" otherwise). */
long long redis_reply_int(const redisReply *r);
const redisReply *redis_reply_at(const redisReply *r, size_t i);
void redis_reply_str(const redisReply *r, char *out, size_t outsz);
/* A peer's details as presence keeps them ("IP PORT KEY OBSERVED IP6",
 * then "\nDISPLAY\nSTATUS" with a profile) into p. */
void redis_peer_details(const redisReply *r, struct store_peer *p);
/* A count of mailbox messages that came with another answer. */
void redis_mail_known(struct store_call *c, const redisReply *r);
/* A parser for a reply that fills nothing. */
enum store_result redis_parse_any(struct store_call *c, const redisReply *r);

/* Keys: k of a user or a channel, hy:K:{TAG} (hy:u:{alice}); presence
 * bucket p's k, hy:K:{P} and then suffix. */
void redis_key(char *out, size_t outsz, const char *k, const char *tag);
void redis_pkey(char *out, size_t outsz, const char *k, unsigned p, const char *suffix);
/* A plain command on one key, then a word or two (NULL: none). */
struct redis_req *redis_cmd(struct store_call *c, redis_parse_fn parse, const char *cmd,
    const char *key, const char *a, const char *b);
/* Presence bucket p's keys as KEYS of q: the first nkeys of online,
 * names, peer and sessions. */
void redis_presence_keys(struct redis_req *q, unsigned p, size_t nkeys);

/* A token as received, resolved: its user, presence bucket and key. */
struct redis_token_ref {
	char user[HY_NAME_MAX + 1];
	unsigned pbucket;
	char id[REDIS_TOKEN_ID_TEXT];
	char key[REDIS_KEY_MAX];
};
/* Fills t from c's token; -1 if the text could not be a token at all. */
int redis_token_ref(const struct store_call *c, struct redis_token_ref *t);

/* The operations of the other files. */
void redis_peer_submit(struct store_state *s, struct store_call *c);
void redis_peer_info(struct store_state *s, struct store_call *c);
void redis_channel_join(struct store_state *s, struct store_call *c);
void redis_channel_leave(struct store_state *s, struct store_call *c);
void redis_channel_list(struct store_state *s, struct store_call *c);
void redis_stats(struct store_state *s, struct store_call *c);
void redis_peer_list(struct store_state *s, struct store_call *c);
void redis_mail_add(struct store_state *s, struct store_call *c);
void redis_mail_list(struct store_state *s, struct store_call *c);
void redis_mail_delete(struct store_state *s, struct store_call *c);
void redis_mail_expire(struct store_state *s, struct store_call *c);

void redis_attach(struct store_state *s, uv_loop_t *loop);
void redis_detach(struct store_state *s, uv_loop_t *loop);
void redis_close(struct store_state *s);
extern const struct store_state_ops redis_state_ops;

#endif
