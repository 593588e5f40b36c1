/* proxy_head.h — the heads the proxy passes on, rewritten: pure functions
 * of a parsed head, no I/O, the output appended to a caller's buffer.
 *
 * Both directions drop the hop-by-hop headers (RFC 9110 7.6.1: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * and whatever Connection names) and those the proxy sets itself
 * (Content-Length, Expect, Proxy-Authorization), then state the body's
 * framing anew.
 */
#ifndef HYCHAT_PROXY_HEAD_H
#define HYCHAT_PROXY_HEAD_H

#include <stdint.h>

#include "hychat/http_parse.h"
#include "hychat/http_server.h"
#include "hychat/proxy_conf.h"
#include "hychat/util.h"

/* Whether req asks to switch protocols: its Connection names "upgrade"
 * and it has an Upgrade header. */
int proxy_head_is_upgrade(const struct http_request *req);

/* Appends the head to send a backend of v: req's request line as
 * HTTP/1.1; its headers less the hop-by-hop ones, X-Forwarded-For and
 * those v sets; v's proxy_set_header lines ($host, $remote_addr
 * expanded); X-Forwarded-For (req's own, then remote), X-Forwarded-Proto
 * and Forwarded (https when tls); "Connection: Upgrade" and req's Upgrade
 * when upgrade; Transfer-Encoding: chunked or Content-Length as req has
 * it; the empty line. */
void proxy_head_request(struct buf *out, const struct http_request *req,
    const struct proxy_vhost *v, const char *remote, int tls, int upgrade);

/* How a backend's answer is framed, and what to tell the client. */
struct proxy_answer {
	int no_body; /* 1xx, 204, 304 or an answer to HEAD */
	int keepalive; /* the backend connection may serve again */
	int chunked;
	int close_delimited; /* the body ends when the backend closes */
	uint64_t body_left; /* with neither: the Content-Length */
	int64_t client_len; /* the length to give the client's head, or -1 */
};

/* Appends rh's headers (name: value lines, no status line, no empty line)
 * less the hop-by-hop ones, keeping Upgrade and Connection on a 101, and
 * fills a. head_only: the request was HEAD. Returns 0, or -1 on a
 * Content-Length that is not one. */
int proxy_head_response(
    struct buf *out, const struct http_response_head *rh, int head_only, struct proxy_answer *a);

#endif
