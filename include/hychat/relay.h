/* relay.h — hychat-relay: splices two peers' TCP connections that present
 * the two halves of one rendezvous token (relay_token.h), byte for byte.
 *
 * A connection has RELAY_TOKEN_MS to send its token line; a verified half
 * waits RELAY_PAIR_MS for its partner; nothing else it sends is read
 * meanwhile beyond the line's buffer. Once spliced, the bytes go through
 * unchanged (the peers' Noise handshake and frames: the relay never holds
 * a key), each direction with at most RELAY_BUF_MAX bytes queued before
 * the relay stops reading the sender (backpressure), throttled to the
 * sender's bytes per second, and closed after idle_ms without a byte
 * either way. A refused connection is closed without an answer.
 */
#ifndef HYCHAT_RELAY_H
#define HYCHAT_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hychat/relay_token.h"

#define RELAY_TOKEN_MS 5000 /* from accept to the whole token line */
#define RELAY_PAIR_MS 15000 /* a half waits this long for its partner */
#define RELAY_IDLE_MS_DEFAULT 300000
#define RELAY_BUF_MAX (256 * 1024) /* queued toward one side */
#define RELAY_READ_CHUNK (64 * 1024)
#define RELAY_MAX_CONNS_DEFAULT 4096
#define RELAY_USER_CONNS_DEFAULT 16 /* spliced or waiting, per user */
#define RELAY_USER_RATE_DEFAULT (1024 * 1024) /* bytes per second per user */
#define RELAY_IP_EARLY_MAX 32 /* connections without a token yet, per address */
#define RELAY_SWEEP_MS 100 /* timeouts and throttling granularity */

struct relay_config {
	const char *host;
	int port;
	uint8_t key[RELAY_TOKEN_KEY_BYTES];
	size_t max_conns;
	size_t user_conns;
	uint64_t user_rate; /* bytes per second */
	uint64_t idle_ms;
};

struct relay_stats {
	uint64_t accepted, spliced, refused, bytes;
	size_t conns, waiting;
};

struct relay;

void relay_config_defaults(struct relay_config *cfg);
/* Listens on cfg's address. NULL with *cause (allocated). */
struct relay *relay_new(uv_loop_t *loop, const struct relay_config *cfg, char **cause);
/* Closes every connection and the listener; memory goes once the loop
 * has closed the handles. */
void relay_free(struct relay *r);
void relay_get_stats(const struct relay *r, struct relay_stats *out);
/* The port actually bound (for port 0). */
int relay_port(const struct relay *r);

#endif
