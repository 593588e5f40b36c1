/* engine_internal.h — what the engine's files share: its state, and the
 * calls between engine.c (life, conversations, queries), engine_tracker.c
 * (the tracker session) and engine_msg.c (messages in and out). Not part
 * of any interface: front ends use engine.h. */
#ifndef HYCHAT_ENGINE_INTERNAL_H
#define HYCHAT_ENGINE_INTERNAL_H

#include <stdint.h>

#include "hychat/contacts.h"
#include "hychat/engine.h"
#include "hychat/event.h"
#include "hychat/history.h"
#include "hychat/outbox.h"
#include "hychat/p2p_net.h"
#include "hychat/peerdb.h"
#include "hychat/tracker_client.h"

#define ENGINE_ID_BYTES 16 /* a message id: 48 bits of time, 80 random, in hex */
#define ENGINE_ID_TIME_BYTES 6 /* milliseconds since 1970, big-endian */
#define ENGINE_ID_RANDOM_BYTES (ENGINE_ID_BYTES - ENGINE_ID_TIME_BYTES)
#define ENGINE_ID_MAX 64 /* longest id accepted from a peer */
#define ENGINE_ACK_MAX_IDS 1024 /* ids in one ack message (about 36 KB) */
/* Acks received are applied (the outbox entry deleted, the mark sent to the
 * front ends) this many a loop turn, so that a command or a message that
 * comes in behind a thousand of them waits for a few microseconds of them,
 * not for all; past ENGINE_ACK_MAX_IDS waiting, the rest at once. */
#define ENGINE_ACK_SLICE 16
/* What a turn received only (no message sent, nothing else written) is
 * committed, and acknowledged, at the first turn this long after the
 * transaction began, or by the timer at twice it (engine.c). */
#define ENGINE_COMMIT_DELAY_MS 20
#define ENGINE_ID_POOL 4096 /* random bytes drawn at once for ids */
#define ENGINE_TIME_MAX 64
/* In an outbox entry: written in a plaintext conversation, so it may go on
 * a plaintext link. No other entry ever does. */
#define ENGINE_PLAIN_FIELD "plain"
#define ENGINE_MEMBERS_FRESH_MS 0 /* membership is the tracker's: ask at each burst */
#define ENGINE_HELD_MAX 1024 /* channel messages held per channel for a member check */
#define ENGINE_HELD_MS 120000 /* how long one waits for its sender to be listed */
#define ENGINE_MEMBERS_MAX 100000 /* members kept of one channel */
#define ENGINE_CHANNEL_PAGES_MAX 100 /* pages of /channels one "channels" follows */
#define ENGINE_TYPING_SEND_MS 3000 /* one notice a conversation this often */
#define ENGINE_TYPING_IDLE_MS 6000 /* after the last notice: stopped */
#define ENGINE_TYPING_TICK_MS 100 /* how often "stopped" is looked for */
#define ENGINE_TYPING_MAX 1024 /* typers (and conversations typed in) kept */
#define ENGINE_HINTS_POLL_MS 1000 /* GET /hints while behind a NAT */
/* Set in the environment: the peer kills itself (SIGKILL) at the end of
 * the first turn that received a message, after showing it and before
 * committing it. For the tests of that ordering. */
#define ENGINE_KILL_BEFORE_COMMIT_ENV "HYCHAT_TEST_KILL_BEFORE_COMMIT"
/* Its values: "send" kills the peer at the end of the first turn that put
 * a message on a link's queue ("send:N": of the turn that put the Nth);
 * anything else at the end of the first that received one. */
enum {
	KILL_NEVER,
	KILL_AFTER_RECEIVING,
	KILL_AFTER_SENDING
};

/* A channel send waiting for the channel's member list (until the list
 * has come and the message is in the outbox of every member, it is also
 * kept on disk, outbox_channel_put, and resumed after a restart), or a
 * channel message received waiting for its sender to be found a member. */
struct engine_pending {
	struct json_object *msg;
	char from[HY_NAME_MAX + 1]; /* received: the link's user */
	int encrypted; /* received: over an encrypted link */
	uint64_t held_ms; /* received: when it began to wait */
	int asked; /* received: the tracker is being asked about its sender */
	int64_t seq; /* sent: its history row, 0 if unknown */
	struct engine_pending *next;
};

struct engine_channel {
	char name[HY_CHANNEL_MAX + 1]; /* without '#' */
	char **members; /* online members, from the tracker, sorted */
	size_t nmembers;
	struct json_object *pages; /* the pages of the member list asked for so far */
	/* Channel messages from senders not (yet) in members, held until the
	 * list is asked for again. */
	struct engine_pending *held, **held_tail;
	size_t nheld;
	uint64_t fetched_ms; /* 0: never */
	int fetching;
	/* A message went out while the list was being asked for: the answer
	 * may predate a join made before it, so that answer is not used and
	 * the list is asked for again. */
	int again;
	int stale; /* someone new came by: ask again before the next send */
	int dial; /* dial the members once they are known */
	struct engine_pending *queue, **queue_tail;
	/* Sent while the list was being asked for, and the list they went to:
	 * when the answer comes, members it did not hold get them too. */
	struct engine_pending *recent, **recent_tail;
	char **sent_to;
	size_t nsent_to;
	struct engine_channel *next;
};

/* A tracker request; the handler sees the final answer, after one new
 * login if the token had expired. */
typedef void engine_tcall_fn(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg);

struct engine_tcall {
	struct engine *e;
	enum tracker_method method;
	char *path;
	struct json_object *body;
	engine_tcall_fn *fn;
	char *arg;
	int retried;
	struct event_origin origin; /* who asked: the answers go there */
	struct engine_tcall *prev, *next;
};

struct engine {
	uv_loop_t *loop;
	struct event_bus bus;
	char username[HY_NAME_MAX + 1];
	char *password; /* kept to log in again after a tracker restart */
	char *data_dir;
	char *listen_host;
	int peer_port;
	int allow_plaintext;

	struct identity *id;
	struct known_peers *known;
	struct peerdb *db;
	struct history *hist;
	struct outbox *outbox;
	struct contacts *contacts;
	struct p2p_net *net;
	struct tracker_client *tc;

	uv_check_t commit;
	uv_timer_t commit_timer; /* commits what received messages left waiting */
	uv_timer_t heartbeat, relogin, refresh, grace;
	uv_timer_t members_retry; /* a member list the tracker did not give */
	uint64_t members_retry_ms; /* its next backoff */
	uv_timer_t hints; /* polls the tracker's hints (engine_nat.c) */
	int hints_busy;
	int handles; /* open loop handles of the engine itself */

	enum engine_tracker_state ts;
	int tracker_reachable;
	uint64_t heartbeat_ms;
	uint64_t relogin_ms; /* the next backoff */
	struct engine_tcall *calls; /* in flight */
	struct engine_tcall *waiting; /* for a login */

	struct engine_channel *channels;
	struct engine_acks *acks; /* acknowledgements waiting for the commit, per sender */
	size_t nacks; /* ids in acks */
	/* Acknowledgements received, not yet applied (engine_msg.c), oldest
	 * first; applied a slice a turn by the idle handle. */
	struct engine_acks *acked, **acked_tail;
	size_t nacked; /* ids in acked not yet applied */
	uv_idle_t ack_drain;
	int kill_before_commit; /* ENGINE_KILL_BEFORE_COMMIT_ENV: KILL_AFTER_* */
	long long kill_sends; /* messages to send before it ("send:N") */
	int turn_sent; /* messages that went on a link's queue this turn */
	/* The turn's direct messages, journaled before the links (sendlog.h);
	 * a turn that sent them may write its links before its commit unless
	 * it queued a frame that tells of something the turn stored (a channel
	 * message, a message in clear, a file frame): engine_ordered(). */
	struct sendlog *sendlog;
	int turn_ordered;
	char *last_conv;
	int stopping;

	/* Presence (engine_presence.c). */
	struct engine_presence *presence; /* users we share a conversation with */
	int away, auto_away; /* auto_away: set by the timer, undone by input */
	char *away_message;
	uint64_t input_ms; /* the last input in any front end */
	uint64_t auto_away_ms; /* 0: never */

	/* Typing (engine_typing.c): who types where, and our last notices. */
	struct engine_typing *typing, *typing_sent;
	uv_timer_t typing_timer;

	/* Settings (engine_settings.c). */
	struct settings *settings;
	int own_settings; /* made here: freed with the engine */
	char *settings_path; /* NULL: not saved */
	struct engine_mailbox *mailbox; /* engine_mailbox.c */
	struct engine_backlog *backlog; /* engine_backlog.c */
	struct engine_xfer *xfers; /* file transfers (engine_file.c) */
	sqlite3_stmt *xfer_save;
};

/* engine.c */
struct engine_channel *engine_channel_find(struct engine *e, const char *name);
struct engine_channel *engine_channel_add(struct engine *e, const char *name);
void engine_channel_remove(struct engine *e, const char *name);
void engine_set_members(struct engine_channel *c, struct json_object *peers);
/* True if user is in c's member list as the tracker last gave it. */
int engine_is_member(const struct engine_channel *c, const char *user);
/* Strips a leading '#' into out; -1 (and an error event) if invalid. */
int engine_channel_name(struct engine *e, const char *in, char *out, const char *what);
void engine_set_last(struct engine *e, const char *conv);
/* {"type":"tracker","state":...}. */
void engine_emit_tracker(struct engine *e, const char *state, const char *message);
/* Records peers (a get-list "peers" array) in the address book. */
void engine_learn_peers(struct engine *e, struct json_object *peers);
/* Records one peer: a get-list entry, or a /peers/USER answer (which says
 * "online"). */
void engine_learn_peer(struct engine *e, struct json_object *peer);

/* engine_tracker.c */
void engine_tracker_call(struct engine *e, enum tracker_method method, const char *path,
    struct json_object *body, engine_tcall_fn *fn, const char *arg);
void engine_tracker_login(struct engine *e);
/* Asks for channel c's members; queued sends go once they arrive. */
void engine_fetch_members(struct engine *e, struct engine_channel *c);
/* Asks the tracker about user, for the address book (p2p_net's lookup). */
void engine_lookup(struct engine *e, const char *user);
/* Asks the tracker whether user is a member of c; the verdict goes to
 * engine_settle_held(). */
void engine_check_member(struct engine *e, struct engine_channel *c, const char *user);
/* Asks again, after a backoff, for the members of every channel with sends
 * waiting: a failed answer never drops them. */
void engine_members_retry(struct engine *e);
void engine_tracker_free_calls(struct engine *e);
/* The tracker's failure message in body, or a fallback. */
const char *engine_tracker_message(struct json_object *body, const char *err, int status);

/* engine_presence.c */
/* A link with user came up (up) or went down. */
void engine_presence_link(struct engine *e, const char *user, int up);
/* The tracker lists user (online) or does not know them online. */
void engine_presence_tracker(struct engine *e, const char *user, int online);
/* {"type":"presence","state":"away"|"online","message":...} from user. */
void engine_presence_recv(struct engine *e, const char *user, int encrypted, struct json_object *m);
/* On the refresh timer: auto-away, and the tracker asked about users
 * online without a link. */
void engine_presence_tick(struct engine *e);
void engine_presence_free(struct engine *e);
/* user's state as the front ends were told ("online", "away",
 * "offline"), with the away message in *message. */
const char *engine_presence_state(const struct engine *e, const char *user, const char **message);
/* user is blocked: shown offline once, then forgotten. */
void engine_presence_forget(struct engine *e, const char *user);

/* engine_contacts.c */
int engine_contact_blocked(const struct engine *e, const char *user);
/* A contact, not blocked. */
int engine_contact_is(const struct engine *e, const char *user);

/* engine_profile.c */
/* Sends the name and status settings to the tracker, if logged in; with
 * always 0, only when one is set (at login). */
void engine_profile_push(struct engine *e, int always);

/* engine_receipts.c */
/* The user read conv up to seq upto: a receipt to its peer. */
void engine_receipt_send(struct engine *e, const char *conv, int64_t upto);
/* {"type":"receipt","id":ID} from user. */
void engine_receipt_recv(struct engine *e, const char *user, int encrypted, struct json_object *m);

/* engine_settings.c */
/* Takes cfg's settings (or makes the defaults). */
void engine_settings_init(struct engine *e, const struct engine_config *cfg);
void engine_settings_free(struct engine *e);

/* engine_typing.c */
/* {"type":"typing"} from user, with "channel" in a channel. */
void engine_typing_recv(struct engine *e, const char *user, int encrypted, struct json_object *m);
/* A message m arrived from user: if they were typing there, stopped. */
void engine_typing_message(struct engine *e, const char *user, struct json_object *m);
/* We sent a message to conv: its receivers stopped showing us typing,
 * so the next key may tell them at once. */
void engine_typing_sent(struct engine *e, const char *conv);
void engine_typing_free(struct engine *e);

/* engine_msg.c */
extern const struct p2p_net_ops engine_net_ops;
/* Sends channel c's queued messages to its members, asking the tracker
 * for them first unless fresh (the list just came). */
void engine_flush_channel(struct engine *e, struct engine_channel *c, int fresh);
void engine_free_pending(struct engine_channel *c);
/* Settles the channel messages held for a member check: those whose
 * sender the member list names are taken in. With user, the tracker's
 * verdict on that user (1 member, and added to the list; 0 not, and its
 * messages dropped; -1 no answer, they wait). Without, a periodic pass
 * that asks again what is unanswered. Held too long: dropped
 * unacknowledged. */
void engine_settle_held(struct engine *e, struct engine_channel *c, const char *user, int verdict);
/* Queues again the channel sends a previous run left waiting for their
 * member list; they go once the tracker names the members. */
void engine_resume_channels(struct engine *e);
/* Sends this turn's acknowledgements, one message per sender; called
 * once the turn's commit has stored what they acknowledge. */
void engine_flush_acks(struct engine *e);
void engine_free_acks(struct engine *e);
/* Applies every acknowledgement received and not yet applied. */
void engine_apply_acks(struct engine *e);
/* Dials the users that have messages waiting. */
void engine_redial_pending(struct engine *e);
/* A direct message from user that came another way than a link (the
 * mailbox), as a link would carry it: checked, then stored and shown
 * unless its id was seen. Returns 1 shown, 0 a duplicate, -1 malformed. */
int engine_take_direct(struct engine *e, const char *user, struct json_object *m);

/* The frame just queued tells of something this turn stored: the turn's
 * links wait for its commit (engine.c, links_first). Every sender of such
 * a frame calls it; presence, typing, receipts, backlogs and resends of
 * what is stored need not. */
void engine_ordered(struct engine *e);

/* A channel message taken from the backlog (engine_backlog.c): stored
 * and shown as if it came over a link. Returns its seq. */
int64_t engine_record_channel(struct engine *e, const char *conv, struct json_object *m);
/* Stores, and commits, what the sending journal holds that the history
 * lacks (a run killed between its links and its commit), then empties
 * the journal (sendlog.h). */
void engine_replay_sent(struct engine *e);

/* engine_backlog.c */
/* Makes the backlog's state and timer (a handle of the engine). */
void engine_backlog_init(struct engine *e);
/* Closes the timer (engine_stop); engine_backlog_free() after the loop. */
void engine_backlog_stop(struct engine *e);
void engine_backlog_free(struct engine *e);
/* An encrypted link with user came up (up) or went down: a member of our
 * channels is asked for what we missed; one gone is not waited for. */
void engine_backlog_link(struct engine *e, const char *user, int up);
/* Channel c's member list came: its members linked are asked. */
void engine_backlog_members(struct engine *e, struct engine_channel *c);
/* {"type":"backlog"} from user: a page of what we hold, if a member. */
void engine_backlog_request(
    struct engine *e, const char *user, int encrypted, struct json_object *m);
/* The tracker's verdict on user as a member of c (engine_check_member):
 * its backlog requests waiting for it are answered (1) or dropped. */
void engine_backlog_verdict(
    struct engine *e, struct engine_channel *c, const char *user, int verdict);
/* {"type":"backlog_page"} from user: taken if asked for. */
void engine_backlog_page(struct engine *e, const char *user, int encrypted, struct json_object *m);

/* engine_mailbox.c */
/* Opens the delivery states and the timer; -1 with *cause. */
int engine_mailbox_init(struct engine *e, char **cause);
/* Closes the timer (engine_stop); engine_mailbox_free() after the loop. */
void engine_mailbox_stop(struct engine *e);
void engine_mailbox_free(struct engine *e);
/* A direct message id to user went into the outbox: pending, and to the
 * mailbox if no link takes it soon. */
void engine_mailbox_sent(struct engine *e, const char *user, const char *id);
/* user's outbox may need the mailbox: looked at after a short wait. */
void engine_mailbox_kick(struct engine *e, const char *user);
/* Logged in: every recipient with entries waiting is kicked. */
void engine_mailbox_online(struct engine *e);
/* user acknowledged id over a link: delivered. */
void engine_mailbox_acked(struct engine *e, const char *user, const char *id);
/* The message of an outbox entry, rebuilt from its history row if it
 * names one; NULL (logged) if it cannot be read. The caller puts it. */
struct json_object *engine_outbox_msg(struct engine *e, const struct outbox_entry *en);
/* An outbox entry dropped unacknowledged (outbox_on_drop): no mark. */
void engine_mailbox_dropped(const char *user, const char *id, void *arg);
/* A tracker answer: fetches the mailbox if its "mail" says there is some. */
void engine_mailbox_hint(struct engine *e, struct json_object *answer);
/* Fetches, opens, takes in and deletes what the mailbox holds. */
void engine_mailbox_fetch(struct engine *e);
/* Adds "delivery", the state's name, to the own messages of a list of
 * direct conversation conv's history that have one. */
void engine_mailbox_annotate(struct engine *e, const char *conv, struct json_object *list);

/* engine_file.c */
/* The transfers table, and the transfers of earlier runs: those under
 * way wait for their peer's link. -1 with *cause. */
int engine_file_init(struct engine *e, char **cause);
/* A binary frame (file_frame.h) from user. */
void engine_file_frame(struct engine *e, const char *user, const uint8_t *data, size_t len);
/* user's link came up or went down. */
void engine_file_link(struct engine *e, const char *user, int up);
/* Logged in: dials the peers of transfers under way. */
void engine_file_redial(struct engine *e);
/* Stopping: receivers sync what they wrote. */
void engine_file_stop(struct engine *e);
void engine_file_free(struct engine *e);

/* engine_nat.c */
/* Records what a tracker peer entry says of the peer's observed address. */
void engine_nat_learn_peer(struct engine *e, struct json_object *peer);
/* After /submit-info: our observed address; polls hints while behind NAT. */
void engine_nat_registered(struct engine *e, struct json_object *answer, const char *local_ip);
/* The network's rendezvous op (p2p_net.h). */
void engine_nat_rendezvous(void *arg, const char *user, const char *via, int port);
/* Adds "path" and "via" of user's up link to o (nothing if none is up). */
void engine_nat_add_path(struct engine *e, struct json_object *o, const char *user);

#endif
