/* engine.h — the peer's engine: the user's conversations, the tracker
 * session, the links to other peers, the outbox and the history. It takes
 * commands (through command.h, or these calls) and emits events (event.h);
 * it knows nothing of terminals, WebSockets or stdout.
 *
 * A conversation is "#channel" or a username. Every call below that can
 * fail on the user's input emits an "error" event and returns -1; its
 * results arrive later as events. Nothing here blocks.
 */
#ifndef HYCHAT_ENGINE_H
#define HYCHAT_ENGINE_H

#include <uv.h>

#include "hychat/event.h"

#define ENGINE_DEFAULT_TRACKER "http://127.0.0.1:8001"
#define ENGINE_DEFAULT_LISTEN "0.0.0.0"
#define ENGINE_DEFAULT_PORT 9101 /* without a peer port: the first free from here */
#define ENGINE_PORT_TRIES 100
#define ENGINE_BROADCAST "broadcast" /* the channel that reaches every online peer */
#define ENGINE_DEFAULT_CHANNELS \
	{ \
		"general", ENGINE_BROADCAST \
	}
#define ENGINE_TEXT_MAX (64 * 1024) /* bytes of one message's text */
#define ENGINE_MAX_CHANNELS 64 /* joined at once */
#define ENGINE_QUIT_GRACE_MS 1000 /* for the tracker to hear we left */
#define ENGINE_RELOGIN_MIN_MS 500 /* tracker retry backoff, doubled up to the cap */
#define ENGINE_RELOGIN_MAX_MS 30000
#define ENGINE_AUTO_AWAY_MAX_MINUTES 10080 /* a week */
#define ENGINE_LIST_REFRESH_MS 15000 /* heartbeats at least this often; lists go stale */

struct engine_config {
	const char *username;
	int peer_port; /* 0: the first free from ENGINE_DEFAULT_PORT */
	const char *listen_host; /* NULL: ENGINE_DEFAULT_LISTEN */
	const char *tracker_url; /* NULL: ENGINE_DEFAULT_TRACKER */
	const char *tracker_ca; /* CAs for an https tracker; NULL: the system's */
	const char *tracker_pin; /* sha256//BASE64 of the tracker's public key */
	int allow_insecure_tracker; /* plain http:// to a tracker not on loopback */
	const char *data_dir; /* made if missing */
	const char *password; /* log in at start; NULL: wait for "login" */
	int allow_plaintext; /* talk to peers of the original, unencrypted protocol */
	int auto_away_minutes; /* away after this long without input; 0: never */
	/* The user's settings (settings.h), borrowed, and the file /set saves
	 * them to; NULL: the defaults, and /set changes them for this run. */
	struct settings *settings;
	const char *settings_path;
};

struct engine;

/* The tracker session, as engine_tracker_state() gives it. */
enum engine_tracker_state {
	ENGINE_OFFLINE,
	ENGINE_LOGGING_IN,
	ENGINE_ONLINE /* logged in: a session token is held */
};

/* Opens the data directory (identity key, database, known peers) and
 * binds the peer port. Returns NULL with *cause (allocated) on a fatal
 * start-up error, among them a plain http:// tracker not on loopback
 * without allow_insecure_tracker: checked before any connection. */
struct engine *engine_new(uv_loop_t *loop, const struct engine_config *cfg, char **cause);
/* Subscribe front ends here, before engine_start(). */
struct event_bus *engine_events(struct engine *e);
/* Starts serving the peer port and logs in if a password was given. */
void engine_start(struct engine *e);
/* Emits "quit", tells the tracker we left (bounded by
 * ENGINE_QUIT_GRACE_MS) and closes every handle: the loop then ends.
 * Safe from anywhere, more than once. */
void engine_stop(struct engine *e);
/* Frees e; only after engine_stop() and the loop has ended. */
void engine_free(struct engine *e);

const char *engine_username(const struct engine *e);
/* The peer port, as given or as chosen. */
int engine_peer_port(const struct engine *e);
/* Where the tracker session stands; front ends ask this rather than
 * follow login_result events. */
enum engine_tracker_state engine_tracker_state(const struct engine *e);
/* The conversation the last command addressed, or NULL. */
const char *engine_last_conversation(const struct engine *e);
/* The data directory, where a front end may keep its own files. */
const char *engine_data_dir(const struct engine *e);

/* The commands, one call each. */
int engine_login(struct engine *e, const char *user, const char *password);
int engine_register(struct engine *e, const char *user, const char *password);
int engine_join(struct engine *e, const char *channel);
int engine_part(struct engine *e, const char *channel);
/* A peer_list event: channel's online members, or everyone when NULL. */
int engine_list(struct engine *e, const char *channel);
int engine_channels(struct engine *e);
int engine_conversations(struct engine *e);
int engine_connect(struct engine *e, const char *user, const char *ip, const char *port);
/* Sends text to a conversation ("#channel" or a user); action for /me. */
int engine_send(struct engine *e, const char *conversation, const char *text, int action);
int engine_send_direct(struct engine *e, const char *user, const char *text, int action);
int engine_send_channel(struct engine *e, const char *channel, const char *text, int action);
/* A history event with the last n messages before seq before (0: the
 * newest); the unread count is left alone (engine_read marks read). */
int engine_history(struct engine *e, const char *conversation, int n, long long before);
/* A history event (with "after") with the first n messages after seq
 * after, oldest first; the unread count is left alone. */
int engine_history_after(struct engine *e, const char *conversation, int n, long long after);
/* Marks conversation read up to seq upto (0: its newest message), kept
 * across restarts, and tells every front end with a read event
 * (conversation, upto, unread). */
int engine_read(struct engine *e, const char *conversation, long long upto);
/* A search event: the last n messages of conversation before seq before
 * (0: the newest) that contain text, newest first. */
int engine_search(
    struct engine *e, const char *conversation, const char *text, int n, long long before);
/* A fingerprint event for user (NULL: our own key). */
int engine_fingerprint(struct engine *e, const char *user);
/* Away, with an optional message, or back: linked peers and every front
 * end get a presence event. */
int engine_away(struct engine *e, const char *message);
int engine_back(struct engine *e);
/* A front end saw the user type: resets the auto-away clock, and ends an
 * automatic away. */
void engine_input(struct engine *e);
/* The user is typing in conversation: a typing notice to its linked
 * peers, at most one per ENGINE_TYPING_SEND_MS (engine_internal.h), none
 * with the typing setting off. Call it on every keystroke. */
int engine_typing(struct engine *e, const char *conversation);
/* Contacts: a contacts event listing them with their presence (an
 * answer); and the four changes, each kept in the database and told to
 * every front end with a contact event. A blocked user's messages,
 * typing and presence are dropped before they are stored or shown. */
enum engine_contact_op {
	ENGINE_CONTACT_ADD,
	ENGINE_CONTACT_REMOVE,
	ENGINE_CONTACT_BLOCK,
	ENGINE_CONTACT_UNBLOCK
};
int engine_contacts(struct engine *e);
int engine_contact(struct engine *e, enum engine_contact_op op, const char *user);
/* A whois event: user's display name and status line from the tracker,
 * whether it lists them online, and their presence. */
int engine_whois(struct engine *e, const char *user);
/* set: without name, a settings event listing every setting (an answer);
 * with name alone, that one; with a value, changes it, saves the file and
 * tells every front end with a setting event (name, value). */
int engine_set(struct engine *e, const char *name, const char *value);
/* A setting's value now (settings.h's ids), for the front ends. */
const char *engine_setting(const struct engine *e, int id);

/* File transfer (engine_file.c). A transfer is named by an id of
 * ENGINE_FILE_ID_HEX hex digits (commands take any unique prefix of at
 * least ENGINE_FILE_ID_PREFIX of them). It goes over the encrypted link
 * with the peer (direct or relayed), in chunks of ENGINE_FILE_CHUNK bytes
 * behind the chat's messages, and survives dropped links and restarts of
 * either side: both keep it in the database and the receiver resumes it
 * from what it wrote and synced. Its progress comes as "transfer" events
 * (event.h, hychat(1)); an incoming offer as a "file_offer" event. */
#define ENGINE_FILE_ID_HEX 32
#define ENGINE_FILE_ID_PREFIX 4
#define ENGINE_FILE_CHUNK (64 * 1024)
#define ENGINE_FILE_PROGRESS_MS 250 /* at most one "transfer" event this often, per transfer */
#define ENGINE_FILE_DIR "hychat" /* under $XDG_DOWNLOAD_DIR, else ~/Downloads */
/* Offers path (a regular file) to user: its BLAKE2b hash is computed
 * first (off the loop), then the offer is sent when a link is up. */
int engine_sendfile(struct engine *e, const char *user, const char *path);
/* Accepts an incoming offer; path NULL: the download directory; a
 * directory: saved there; else the file to write (never overwritten: a
 * name taken gets " (1)", " (2)"... before its extension). The disk's
 * free space is checked first. */
int engine_file_accept(struct engine *e, const char *id, const char *path);
/* Refuses an incoming offer; the sender's transfer ends "rejected". */
int engine_file_reject(struct engine *e, const char *id);
/* Stops a transfer in either direction, on both sides ("cancelled"); a
 * partial file is removed. */
int engine_file_cancel(struct engine *e, const char *id);
/* A "transfers" event (an answer) listing every transfer of this and
 * earlier runs that has not been forgotten, as "transfer" objects. */
int engine_transfers(struct engine *e);
void engine_quit(struct engine *e);

#endif
