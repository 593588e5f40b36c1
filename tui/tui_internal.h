/* tui_internal.h — what the files of the terminal front end share: the
 * state of the client and each file's calls.
 *
 *   tui.c        the terminal: set up, restored, read, resized, redrawn
 *   tui_event.c  engine events into the model, one handler per type
 *   tui_conv.c   conversations, their message windows and scrollback
 *   tui_cmd.c    keys, the client's own commands, and /help
 *   tui_input.c  the line editor and the input history file
 *   tui_text.c   UTF-8 text measured in terminal cells, word wrap
 *   tui_path.c   Tab completion of a file's path
 *   tui_xfer.c   file transfers: their lines, bars and status summary
 *   tui_draw.c   the layout and the rendering of every pane
 */
#ifndef HYCHAT_TUI_INTERNAL_H
#define HYCHAT_TUI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#include <json-c/json.h>
#include <uv.h>

#include "hychat/engine.h"
#include "hychat/http_json.h"
#include "hychat/tui.h"
#include "hychat/util.h"

#define TUI_PAGE 200 /* messages fetched from the history at a time */
#define TUI_WINDOW_MAX 2000 /* messages of one conversation held in memory */
#define TUI_INPUT_MAX ENGINE_TEXT_MAX /* characters on the input line */
#define TUI_INPUT_HISTORY_MAX 1000 /* typed lines remembered */
#define TUI_PASTE_ASK_LINES 5 /* a longer message asks before it is sent */
#define TUI_LEFT_MIN_COLS 60 /* narrower: no conversation pane */
#define TUI_RIGHT_MIN_COLS 80 /* narrower: no peer pane */
#define TUI_LEFT_WIDTH 18
#define TUI_RIGHT_WIDTH 18
#define TUI_LIST_SOON_MS 300 /* after a link changes: one request for a burst */
#define TUI_NOTICE_MS 8000 /* a notice on the status bar stays this long */
#define TUI_RESIZE_SETTLE_MS 100 /* the size is read again after SIGWINCH */
#define TUI_ESC_DELAY_MS 25 /* a lone Escape, as opposed to Alt-x */
#define TUI_TIME_LEN 5 /* "HH:MM" */
#define TUI_DAY_LEN 10 /* "YYYY-MM-DD" */
#define TUI_TEXT_MIN 10 /* narrower text goes below its "HH:MM <nick>" */
#define TUI_PATH_SCAN_MAX 10000 /* directory entries read for one Tab */
#define TUI_XFER_MAX 64 /* transfers remembered; the oldest ended one goes */
#define TUI_XFER_BAR_CELLS 20 /* the progress bar's width */
#define TUI_XFER_FULL "\xe2\x96\x88" /* U+2588, a done cell of the bar */
#define TUI_XFER_EMPTY "\xe2\x96\x91" /* U+2591, one still to come */
#define TUI_XFER_TEXT_MAX 1024 /* a transfer's line */
#define TUI_XFER_SHORT_ID 8 /* hex digits of an id shown (the engine takes 4 or more) */

/* Keys ncurses does not name: the brackets of a pasted block. */
#define TUI_KEY_PASTE_BEGIN (KEY_MAX + 1)
#define TUI_KEY_PASTE_END (KEY_MAX + 2)
#define TUI_KEY_ESC (KEY_MAX + 3) /* Escape alone, not the start of Alt-x */
/* xterm's modified arrows, which not every terminfo entry names. */
#define TUI_KEY_ALT_LEFT (KEY_MAX + 4)
#define TUI_KEY_ALT_RIGHT (KEY_MAX + 5)
#define TUI_KEY_CTRL_LEFT (KEY_MAX + 6)
#define TUI_KEY_CTRL_RIGHT (KEY_MAX + 7)

enum tui_kind {
	TUI_MSG_CHAT,
	TUI_MSG_ACTION,
	TUI_MSG_SYSTEM,
	TUI_MSG_ERROR,
	TUI_MSG_FILE /* a transfer's line, rewritten as it moves */
};

struct tui_msg {
	int64_t seq; /* in the history; 0 for the client's own lines */
	enum tui_kind kind;
	int outgoing;
	int mention;
	char time[TUI_TIME_LEN + 1];
	char day[TUI_DAY_LEN + 1]; /* "" if the time says none */
	int day_break; /* the first of its day in the window: a line above it */
	char *from; /* NULL for system and error lines */
	char *text;
	char *id; /* an own direct message's id, else NULL */
	char *xfer; /* TUI_MSG_FILE: the transfer's id */
	int delivery; /* its enum delivery_state, -1 if none (not shown) */
	int wrap_width; /* nlines holds for this width */
	int nlines;
};

/* A peer as the client knows it: from peer lists and link events. */
#define TUI_DISPLAY_MAX 64 /* bytes of a display name kept */

struct tui_peer {
	char name[HY_NAME_MAX + 1];
	int online; /* listed by the tracker lately */
	int link; /* 1 up, 0 down */
	int encrypted; /* of the link that is up */
	char path[64]; /* of the link that is up: "direct", "punched", "relayed via H:P" */
	int away; /* the engine's presence event said so */
	char away_message[64];
	char display[TUI_DISPLAY_MAX + 1]; /* the profile's name, from the tracker */
};

#define TUI_TYPING_MAX 4 /* typists named in the status bar */

struct tui_conv {
	char name[HY_CHANNEL_MAX + 2]; /* "#channel" or a username */
	int channel;
	int64_t unread;
	int mention;
	int activity; /* something new since it was last shown */
	/* The window: consecutive messages of the history, oldest first. */
	struct tui_msg **msgs;
	size_t n, cap;
	int loaded;
	int at_start; /* msgs[0] is the oldest message there is */
	int at_end; /* msgs[n-1] is the newest */
	size_t below; /* messages that arrived while !at_end */
	int64_t marker_seq; /* the unread marker goes above this message */
	int64_t backlog_seq; /* "history since HH:MM" goes above this one */
	char backlog_since[6]; /* HH:MM */
	int64_t hit_seq; /* a search hit, shown marked */
	int64_t cleared_seq; /* after /clear: PgUp fetches from before this */
	/* The view: msgs[bottom] is on the last row, its last `skip` lines
	 * cut off below; follow keeps the newest in view. */
	size_t bottom;
	int skip;
	int follow;
	/* The peer pane of a channel: its online members. */
	char (*members)[HY_NAME_MAX + 1];
	size_t nmembers;
	int listed;
	/* Who is typing here now, as the engine's typing events say. */
	char typing[TUI_TYPING_MAX][HY_NAME_MAX + 1];
	size_t ntyping;
	/* A direct conversation: the peer's key. */
	char fingerprint[80];
	char fp_source[16];
};

struct tui_input {
	wchar_t *buf;
	size_t len, cur;
	/* Typed lines, oldest first; pos == n while editing a new line. */
	char **hist;
	size_t nhist, pos;
	wchar_t *draft; /* the new line, kept while browsing */
	size_t draft_len;
	wchar_t *killed; /* the last text cut with Ctrl-U, K, W or Alt-D */
	size_t killed_len;
	char *hist_path;
	/* Tab completion: the word being completed and the choice so far. */
	int completing;
	struct tui_path_scan *scanning; /* a Tab's directory read, on the thread pool */
	wchar_t *scan_line; /* the line as it was at that Tab: its answer is */
	size_t scan_len, scan_cur, scan_start; /* used only if it still is */
	int tab_waiting; /* Tab pressed again during the read: done after it */
	size_t comp_start, comp_len;
	wchar_t *comp_prefix;
	size_t comp_prefix_len;
	size_t comp_index;
	int comp_path; /* completing a file's path */
	size_t scroll; /* the first character shown */
};

/* A file transfer, as its last event said. */
struct tui_xfer {
	char id[64];
	char peer[HY_NAME_MAX + 1];
	char name[256];
	int incoming;
	char state[16];
	uint64_t bytes, size;
	double rate; /* bytes a second */
	char error[128];
	char path[512]; /* where it was saved, when the engine says */
	uint64_t seen; /* order of the last event, to drop the oldest */
};

enum tui_mode {
	TUI_NORMAL,
	TUI_LOGIN, /* the password, not echoed */
	TUI_REGISTER, /* a new account: the password */
	TUI_REGISTER_AGAIN, /* ... and again */
	TUI_SEARCH, /* Ctrl-R: the text to search for */
	TUI_CONFIRM /* a long message: y or n */
};

enum tui_fetch {
	TUI_FETCH_NONE,
	TUI_FETCH_OPEN, /* the newest page, on opening */
	TUI_FETCH_OLDER,
	TUI_FETCH_NEWER,
	TUI_FETCH_HIT, /* a page ending with a search hit */
	TUI_FETCH_FIRST /* the oldest page */
};

struct tui {
	uv_loop_t *loop;
	struct engine *e;
	struct tui_config cfg;
	int color;
	int handles;
	int closing;
	int in_fd, saved_stderr;
	uv_poll_t in;
	uv_signal_t winch, hup;
	uv_idle_t redraw;
	uv_timer_t start, list_timer, notice_timer, resize_timer;
	int rows, cols;

	struct tui_conv **convs;
	size_t nconvs, cur;
	struct tui_peer *peers;
	size_t npeers;
	/* The user's contacts (not the blocked), sorted, from the engine. */
	char (*contacts)[HY_NAME_MAX + 1];
	size_t ncontacts;
	char tracker[16];
	int tracker_tls; /* as the last tracker event said */
	int tracker_loopback;

	struct tui_input input;
	enum tui_mode mode;
	char *password; /* the first of two typings */
	char *confirm_text; /* the long message waiting for y */
	char *search_text;
	int64_t search_before;
	struct tui_conv *search_conv;
	int meta; /* Escape seen: the next key is Alt-key */
	int csi; /* inside an escape sequence no key names: swallowed */
	int pasting;
	char notice[256];
	int notice_error;
	int title_unread; /* the title says something waits */

	/* The history request in progress; its event arrives during the call. */
	enum tui_fetch fetch;
	struct tui_conv *fetch_conv;
	int fetch_count;
	int timing; /* log each key's time to the redrawn screen */
	uint64_t key_ns;

	struct tui_xfer *xfers;
	size_t nxfers;
	uint64_t xfer_clock;

	/* Layout, set by tui_draw_layout(). */
	int left_w, right_w, msg_w, msg_h, msg_x;
};

/* tui.c */
void tui_dirty(struct tui *t);
/* Bell and title for something that waits in c. */
void tui_alert(struct tui *t, struct tui_conv *c);
/* tui_notify.c: a desktop notification of text from `from` in conv,
 * through notify-send; -1 if it is not installed or too many are out. */
int tui_notify_desktop(struct tui *t, const char *conv, const char *from, const char *text);
void tui_title(struct tui *t);
/* Asks for the current conversation's peer list shortly. */
void tui_refresh_soon(struct tui *t);
/* The terminal's queries: the answers of the engine calls made between
 * tui_ask() and tui_asked() come to this front end alone, with label
 * (see event.h), never to stdout or a browser tab. */
#define TUI_LABEL_FETCH "fetch" /* a page of the scrollback */
#define TUI_LABEL_SHOW "show" /* asked by the user: print it */
#define TUI_LABEL_QUIET "quiet" /* asked by the client: store, do not print */
#define TUI_LABEL_SEARCH "search"
void tui_ask(struct tui *t, const char *label, struct event_origin *saved);
void tui_asked(struct tui *t, const struct event_origin *saved);
/* 1 if event o answers the terminal's query labelled label. */
int tui_label_is(struct json_object *o, const char *label);
/* 1 if o answers a line the user typed (TUI_LABEL_SHOW, or a label the
 * user wrote): to be printed. */
int tui_label_user(struct json_object *o);
void tui_quit(struct tui *t);
/* Ctrl-Z: gives the terminal back and stops the process until fg. */
void tui_suspend(struct tui *t);
/* Tears down on the engine's "quit": closes handles, restores the terminal. */
void tui_close(struct tui *t);
void tui_notice(struct tui *t, int error, const char *fmt, ...) HY_PRINTF(3, 4);

/* tui_event.c */
void tui_event(const struct event *ev, void *arg);

/* tui_conv.c */
struct tui_conv *tui_conv_find(struct tui *t, const char *name);
/* A key went into the input line: tell the current conversation the user
 * is typing (the engine limits the notices). */
void tui_typing_key(struct tui *t);
struct tui_conv *tui_conv_get(struct tui *t, const char *name);
struct tui_conv *tui_conv_current(struct tui *t);
void tui_conv_select(struct tui *t, size_t i);
void tui_conv_close(struct tui *t, struct tui_conv *c);
void tui_conv_free(struct tui_conv *c);
/* Adds a message of the history from an event object (chat, broadcast or
 * an entry of "messages"); returns it, or NULL for a malformed one. */
struct tui_msg *tui_msg_from_json(struct tui *t, struct json_object *o, const char *conv);
void tui_msg_free(struct tui_msg *m);
/* A live message: appended when the window reaches the newest. */
void tui_conv_add(struct tui *t, struct tui_conv *c, struct tui_msg *m);
/* A line of the client's own (system, error, help) in the current
 * conversation, not stored. */
void tui_line(struct tui *t, enum tui_kind kind, const char *fmt, ...) HY_PRINTF(3, 4);
void tui_conv_history(struct tui *t, struct json_object *ev);
void tui_conv_search_result(struct tui *t, struct json_object *ev);
void tui_conv_search(struct tui *t, const char *text, int again);
void tui_conv_scroll(struct tui *t, int lines);
void tui_conv_top(struct tui *t);
void tui_conv_newest(struct tui *t);
/* /clear: an empty view, the history still a PgUp away. */
void tui_conv_clear(struct tui *t);
/* Marks every conversation with unseen read messages read in the history. */
void tui_conv_mark_all(struct tui *t);
int tui_msg_lines(struct tui *t, struct tui_conv *c, struct tui_msg *m);
struct tui_peer *tui_peer_get(struct tui *t, const char *name);
void tui_conv_refresh_peers(struct tui *t);

/* tui_cmd.c */
void tui_key(struct tui *t, int key, int is_code);
void tui_submit(struct tui *t);
/* Registers the client's own commands with the engine; 0 or -1. */
int tui_commands(struct tui *t);
/* Prints a help event, with the keys when it lists every command. */
void tui_help(struct tui *t, struct json_object *ev);
/* /web, and at start with --web: the web bridge's address to open. */
void tui_web_url(struct tui *t);

/* tui_input.c */
void tui_input_init(struct tui_input *in, const char *hist_path);
void tui_input_fini(struct tui_input *in);
void tui_input_insert(struct tui_input *in, wchar_t c);
/* Runs an editing key; returns 1 if it was one. */
int tui_input_edit(struct tui_input *in, int key, int is_code, int meta);
/* The line as UTF-8 (allocated), and empties the input. */
char *tui_input_take(struct tui_input *in);
void tui_input_clear(struct tui_input *in);
/* Wipes the line from memory (a password). */
void tui_input_wipe(struct tui_input *in);
void tui_input_remember(struct tui_input *in, const char *line);
void tui_input_history(struct tui_input *in, int dir);
/* The word before the cursor: its start and length. */
void tui_input_word(const struct tui_input *in, size_t *start, size_t *len);
void tui_input_replace(struct tui_input *in, size_t start, size_t len, const char *utf8);
size_t tui_input_lines(const struct tui_input *in);

/* tui_text.c */
/* Decodes one character of s[0..len) into what is drawn: *wc and its
 * width in cells (0 for a combining mark). Invalid bytes and control
 * characters become a replacement of width 1. Returns the bytes used. */
size_t tui_text_next(const char *s, size_t len, wchar_t *wc, int *width);
int tui_text_width(const char *s, size_t len);
int tui_wchar_width(wchar_t c);
struct tui_span {
	size_t off, len; /* bytes of the text */
};
/* Word-wraps s into lines of at most width cells, breaking at newlines;
 * fills up to max spans and returns the number of lines. */
int tui_text_wrap(const char *s, int width, struct tui_span *spans, int max);
/* The UTF-8 form of n wide characters, allocated. */
char *tui_text_utf8(const wchar_t *w, size_t n);

/* tui_path.c */
struct tui_path_entry {
	const char *name;
	int is_dir;
};
/* word with a leading "~" or "~/" made home's (allocated). */
char *tui_path_expand(const char *word, const char *home);
/* The length of path's directory part, its last "/" included (0: none). */
size_t tui_path_dir_len(const char *path);
/* The completions of the expanded path among the entries of its
 * directory: its directory part, then each name that starts as the rest
 * does (dot files only after a dot; never "." or ".."), a directory's
 * with "/". At most max, allocated into out, sorted; returns how many. */
size_t tui_path_match(
    const char *path, const struct tui_path_entry *ents, size_t n, char **out, size_t max);
/* The bytes all of v[0..n) begin with, never cutting a UTF-8 character. */
size_t tui_path_common(char *const *v, size_t n);
/* tui_path_match() on the directory itself (at most TUI_PATH_SCAN_MAX
 * entries read); word as typed. It blocks on the file system: the
 * terminal runs it on the thread pool (tui_path_scan_start). */
size_t tui_path_complete(const char *word, const char *home, char **out, size_t max);
/* tui_path_complete(word, home) on the loop's thread pool, then done(t,
 * out, n) on the loop: out is the caller's to free (each and the array).
 * Returns the scan, to be told (tui_path_scan_orphan) if t goes first. */
struct tui;
typedef void (*tui_path_done)(struct tui *t, char **out, size_t n);
struct tui_path_scan *tui_path_scan_start(uv_loop_t *loop, struct tui *t, const char *word,
    const char *home, size_t max, tui_path_done done);
/* The scan finishes without calling back (its owner is gone). */
void tui_path_scan_orphan(struct tui_path_scan *s);

/* tui_xfer.c */
/* 1 if state ends a transfer (done, failed, cancelled, rejected...). */
int tui_xfer_final(const char *state);
/* "512 B", "1.5 KiB", "37 MiB". */
void tui_xfer_size(char *out, size_t outsz, uint64_t n);
/* The time left at rate bytes a second: "0:42", "1:02:03", "--:--". */
void tui_xfer_eta(char *out, size_t outsz, uint64_t left, double rate);
/* 0 to 100; 100 only once every byte is in. */
int tui_xfer_percent(uint64_t bytes, uint64_t size);
/* "[████░░░░]" of cells cells. */
void tui_xfer_bar(char *out, size_t outsz, uint64_t bytes, uint64_t size, int cells);
/* The line of a transfer in its peer's conversation. */
void tui_xfer_text(const struct tui_xfer *x, char *out, size_t outsz);
/* "⇅ 2 files 43%" over the transfers under way; "" if none. */
void tui_xfer_summary(const struct tui_xfer *v, size_t n, char *out, size_t outsz);
struct tui_xfer *tui_xfer_find(struct tui *t, const char *id);
/* A file_offer (offer) or a transfer object into the model; returns the
 * transfer, or NULL for a malformed one. */
struct tui_xfer *tui_xfer_take(struct tui *t, struct json_object *o, int offer);
/* Rewrites x's line in its peer's conversation, or adds it there. */
void tui_xfer_show(struct tui *t, const struct tui_xfer *x);
/* The lines of c's transfers, after its window was fetched anew. */
void tui_xfer_attach(struct tui *t, struct tui_conv *c);
/* The status bar's summary. */
void tui_xfer_status(struct tui *t, char *out, size_t outsz);

/* tui_draw.c */
/* The cells before a message's text: "HH:MM <nick> ". */
int tui_msg_prefix(const struct tui_msg *m);
void tui_draw_layout(struct tui *t);
void tui_draw(struct tui *t);
void tui_draw_colors(struct tui *t);

#endif
