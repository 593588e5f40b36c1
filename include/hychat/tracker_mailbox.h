/* tracker_mailbox.h — the tracker's mailbox: sealed direct messages kept
 * for a recipient who is offline, until it fetches and acknowledges them
 * or they expire.
 *
 * The tracker reads nothing in a message: a deposit is an opaque blob
 * (sealed by the sender to the recipient's key), stored with its
 * recipient, size and time of deposit, never its sender. The routes are
 * listed in hychat-tracker(8):
 *   POST /mailbox/USER      a base64 blob for USER: 201 {"id"}; 404 no
 *                           such account, 413 too large, 429 the sender's
 *                           rate (Retry-After), 507 USER's quota is full
 *   GET  /mailbox[?after=ID][&limit=N]   the caller's own, in id order
 *   POST /mailbox/ack {"ids":[...]}      deletes those of the caller's
 * Heartbeats and /submit-info answers carry "mail", the count waiting.
 */
#ifndef HYCHAT_TRACKER_MAILBOX_H
#define HYCHAT_TRACKER_MAILBOX_H

#include <stdint.h>

#define MAILBOX_PAGE_MAX 100 /* messages per GET /mailbox */
#define MAILBOX_PAGE_BYTES (1024 * 1024) /* blob bytes per page (at least one message) */
#define MAILBOX_ACK_MAX 1000 /* ids per /mailbox/ack */
#define MAILBOX_SWEEP_MS 1000 /* how often expired messages are looked for */
#define MAILBOX_RATE_SLOTS 4096 /* senders tracked by the rate's buckets */
/* A message must fit, in base64, in one request body (TRACKER_MAX_BODY_BYTES). */
#define MAILBOX_MESSAGE_LIMIT 46000

/* field, flag, default, minimum, maximum, help: one line per flag. */
#define MAILBOX_OPTIONS(X) \
	X(ttl_s, "mailbox-ttl", 7 * 86400, 1, 365 * 86400, "seconds a message is kept") \
	X(max_messages, "mailbox-max-messages", 1000, 1, 1000000, "messages per recipient") \
	X(max_bytes, "mailbox-max-bytes", 16 * 1024 * 1024, 1, 2000000000, \
	    "bytes of messages per recipient") \
	X(message_max, "mailbox-message-max", 32768, 64, MAILBOX_MESSAGE_LIMIT, \
	    "bytes of one sealed message") \
	X(rate, "mailbox-rate", 60, 0, 1000000, "deposits a minute per sender (0: no limit)")

struct tracker_mailbox_config {
#define MAILBOX_FIELD(field, flag, def, min, max, help) uint64_t field;
	MAILBOX_OPTIONS(MAILBOX_FIELD)
#undef MAILBOX_FIELD
};

/* Fills cfg with the defaults above. */
void tracker_mailbox_defaults(struct tracker_mailbox_config *cfg);
/* Sets the field of flag (without "--") from value: 1 done, 0 if flag is
 * none of MAILBOX_OPTIONS, -1 with *err (static) if value is out of range. */
int tracker_mailbox_option(
    struct tracker_mailbox_config *cfg, const char *flag, const char *value, const char **err);

#endif
