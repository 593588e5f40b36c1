/* history.h — conversations and their messages, kept in the peer database
 * so that a restart shows them again with their unread counts.
 *
 * A conversation is named "#channel" for a channel and by the other
 * user's name for a direct conversation. Messages are numbered by seq,
 * increasing in the order they were stored; listings are oldest first.
 * Strings given to callbacks are valid only during the call.
 */
#ifndef HYCHAT_HISTORY_H
#define HYCHAT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "hychat/peerdb.h"

#define HISTORY_DEFAULT_N 50 /* messages in a history event */
#define HISTORY_MAX_N 1000

enum history_kind {
	HISTORY_CHAT,
	HISTORY_ACTION,
	HISTORY_SYSTEM
};

struct history_msg {
	int64_t seq; /* set by history_add */
	const char *conversation;
	const char *id; /* the message id, or NULL (system lines) */
	const char *from;
	const char *text;
	const char *time; /* ISO 8601, as the sender wrote it */
	enum history_kind kind;
	int outgoing;
	int encrypted;
	const char *sig; /* a channel message's signature (chansig.h), or NULL */
	int64_t unread; /* set by history_add: the conversation's unread count after it */
};

struct history_conv {
	const char *name;
	int64_t unread;
	int64_t last_seq; /* 0 when empty */
};

typedef void history_msg_fn(const struct history_msg *m, void *arg);
typedef void history_conv_fn(const struct history_conv *c, void *arg);

struct history;

/* Creates the tables if needed and prepares the statements in db (used,
 * not owned). Returns NULL with *cause (allocated). */
struct history *history_new(struct peerdb *db, char **cause);
void history_free(struct history *h);
/* Stores m in its conversation (made on first use); an incoming message
 * adds one to the unread count. Sets m->seq. Returns 0 or -1. */
int history_add(struct history *h, struct history_msg *m);
/* Calls fn for the last n messages of conv before seq `before` (0: the
 * newest), oldest first. Returns the number of messages, or -1. */
int history_last(
    struct history *h, const char *conv, int64_t before, int n, history_msg_fn *fn, void *arg);
/* Calls fn for the first n messages of conv after seq `after`, oldest
 * first. Returns the number of messages, or -1. */
int history_after(
    struct history *h, const char *conv, int64_t after, int n, history_msg_fn *fn, void *arg);
/* Calls fn for the last n messages of conv before seq `before` (0: the
 * newest) whose text contains text, ASCII letters compared without case;
 * newest first. Returns the number of messages, or -1. */
int history_search(struct history *h, const char *conv, const char *text, int64_t before, int n,
    history_msg_fn *fn, void *arg);
/* Marks conv read up to seq upto (0: all of it): the unread count
 * becomes the incoming messages after upto, and never grows (a marker
 * does not move back). It is kept across restarts. Returns 0 or -1. */
int history_mark_read(struct history *h, const char *conv, int64_t upto);
/* Makes conv exist (empty) so it is listed. Returns 0 or -1. */
int history_touch(struct history *h, const char *conv);
/* Remembers whether we are in channel conv ("#name"), across restarts,
 * and when we joined it (now, unless we were in it). Returns 0 or -1. */
int history_set_joined(struct history *h, const char *conv, int joined);
/* Records now as when we joined conv, unless a time is known. Returns 0
 * or -1. */
int history_mark_joined(struct history *h, const char *conv);
/* Calls fn for each channel conversation we are in. Returns the count or -1. */
int history_joined(struct history *h, void (*fn)(const char *conv, void *arg), void *arg);
/* Calls fn for each conversation, most recently active first. Returns the
 * count, or -1. */
int history_conversations(struct history *h, history_conv_fn *fn, void *arg);
/* The unread count of conv, 0 if unknown, -1 on error. */
int64_t history_unread(struct history *h, const char *conv);
/* The seq of conv's newest message, 0 if none, -1 on error. */
int64_t history_last_seq(struct history *h, const char *conv);
/* Calls fn for the message numbered seq, in whichever conversation.
 * Returns 1, 0 if there is none, or -1. */
int history_get(struct history *h, int64_t seq, history_msg_fn *fn, void *arg);
/* The seq of the newest message of any conversation, 0 if none, -1 on
 * error. */
int64_t history_newest_seq(struct history *h);

/* Calls fn for the first n signed messages of conv with a time at or
 * after since and a seq after `after`, oldest stored first; with after 0,
 * only among the last `last` of them. Returns the number of messages, or
 * -1. */
int history_signed_since(struct history *h, const char *conv, const char *since, int64_t after,
    int64_t last, int n, history_msg_fn *fn, void *arg);
/* The newest of the times of conv's messages (system lines aside) and of
 * when we joined it into out: 1 found, 0 none, -1 on error. */
int history_newest_time(struct history *h, const char *conv, char *out, size_t outsz);

#endif
