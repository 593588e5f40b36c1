/* backlog_frame.h — the two messages of the channel backlog on an
 * encrypted link, built and read: pure functions of JSON, no I/O. Every
 * field read from a peer is checked for type, length and form here; the
 * signature (chansig.h) is the engine's to check.
 *
 * Request:  {"type":"backlog","channel":C,"since":TIME,"after":SEQ,"limit":N}
 *   the messages of #C with an original time at or after TIME, after the
 *   answerer's own SEQ (0: from the start), at most N (the last N when
 *   after is 0).
 * Answer:   {"type":"backlog_page","channel":C,"messages":[E...],"next":SEQ}
 *   at most BACKLOG_PAGE_MAX entries, about BACKLOG_PAGE_BYTES of JSON;
 *   next is the SEQ to ask after for more, 0 when there is no more.
 * Entry E:  {"id","from","time","message","sig"} and "action":true for /me.
 */
#ifndef HYCHAT_BACKLOG_FRAME_H
#define HYCHAT_BACKLOG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "hychat/util.h"

#define BACKLOG_PAGE_MAX 100 /* entries in one page */
#define BACKLOG_PAGE_BYTES (192 * 1024) /* JSON of a page's entries, one over allowed */
#define BACKLOG_LIMIT_MAX 100000 /* the largest limit a request may name */
#define BACKLOG_TIME_MAX 64 /* bytes of a time, with its NUL */
#define BACKLOG_ID_MAX 64 /* bytes of a message id */
#define BACKLOG_TEXT_MAX (64 * 1024) /* bytes of a message's text */

struct backlog_request {
	char channel[HY_CHANNEL_MAX + 1];
	char since[BACKLOG_TIME_MAX];
	int64_t after;
	int64_t limit;
};

/* One entry, its strings pointing into the JSON it was read from. */
struct backlog_entry {
	const char *id, *from, *time, *text, *sig;
	int action;
};

/* A new request message; the caller puts it. */
struct json_object *backlog_request_new(const struct backlog_request *r);
/* Reads a request. Returns 0, or -1 if malformed. */
int backlog_request_parse(struct json_object *m, struct backlog_request *r);

/* A new, empty page for channel. */
struct json_object *backlog_page_new(const char *channel);
/* Adds an entry to page unless it is full (the count, or the bytes with
 * one entry already in; *used counts the entries' bytes, 0 for a new
 * page). Returns 1 added, 0 full. */
int backlog_page_add(struct json_object *page, const struct backlog_entry *en, size_t *used);
void backlog_page_set_next(struct json_object *page, int64_t next);
/* Reads a page's head: its channel (HY_CHANNEL_MAX + 1 bytes), its
 * entries (borrowed from m) and next. Returns 0, or -1 if malformed. */
int backlog_page_parse(
    struct json_object *m, char *channel, struct json_object **entries, int64_t *next);
/* Reads entry i of a parsed page's entries. Returns 0, or -1 if malformed
 * (the caller drops that one entry). */
int backlog_entry_parse(struct json_object *entries, size_t i, struct backlog_entry *en);

#endif
