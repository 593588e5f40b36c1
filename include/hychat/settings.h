/* settings.h — the user's settings, kept in hychat.conf: one "NAME = VALUE"
 * a line, blank lines and lines starting with '#' ignored, in the order
 * of the table below when written back.
 *
 * Every setting has a kind that checks its values (a word from a list, a
 * number in a range, a URL, a username, free text) and a default. A bad
 * line is reported with its line number and skipped; the file is never
 * fatal. Saving writes a temporary file beside it and renames it over the
 * old one, mode 0600, so a crash leaves the old file or the new, never
 * half of one.
 */
#ifndef HYCHAT_SETTINGS_H
#define HYCHAT_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "hychat/util.h"

#define SETTINGS_DIR "hychat" /* under $XDG_CONFIG_HOME or ~/.config */
#define SETTINGS_FILE "hychat.conf"
#define SETTINGS_FILE_MODE 0600
#define SETTINGS_DIR_MODE 0700
#define SETTINGS_VALUE_MAX 512 /* bytes of one value */
#define SETTINGS_FILE_MAX (64 * 1024) /* a longer file is read up to here */
#define SETTINGS_ERR_MAX 256

/* X(id, name, default, help); the kind of each is in settings.c. */
#define SETTINGS_LIST(X) \
	X(SETTING_TRACKER, "tracker", "", "the tracker's URL (empty: the built-in default)") \
	X(SETTING_USERNAME, "username", "", "who this peer is (empty: $USER)") \
	X(SETTING_PEER_PORT, "peer-port", "0", "the port other peers connect to (0: not set)") \
	X(SETTING_COLOR, "color", "on", "on or off: colours in the terminal client") \
	X(SETTING_NOTIFY, "notify", "bell", \
	    "desktop, bell or off: how a direct message or a highlight is announced") \
	X(SETTING_HIGHLIGHT, "highlight", "", \
	    "words, separated by blanks, that announce a message like your name does") \
	X(SETTING_AUTO_AWAY, "auto-away", "0", "minutes without input before away (0: never)") \
	X(SETTING_TYPING, "typing", "on", "on or off: tell the others when you are typing") \
	X(SETTING_RECEIPTS, "receipts", "on", \
	    "on or off: tell the sender of a direct message when you have read it") \
	X(SETTING_NAME, "name", "", "your display name, kept by the tracker for the others") \
	X(SETTING_STATUS, "status", "", "your status line, kept by the tracker for the others") \
	X(SETTING_AUTOACCEPT, "autoaccept", "off", \
	    "off, or contacts SIZE: accept files from contacts up to SIZE (e.g. 100M)") \
	X(SETTING_MAX_OFFER, "max-offer", "4G", \
	    "the largest incoming file offered (K, M, G, T: powers of 1024); larger ones are " \
	    "refused") \
	X(SETTING_MAX_TRANSFERS, "max-transfers", "4", \
	    "transfers running at once, both ways; more offers are refused")

#define SETTINGS_ENUM(id, name, def, help) id,
enum setting_id {
	SETTINGS_LIST(SETTINGS_ENUM) SETTING_COUNT
};
#undef SETTINGS_ENUM

struct settings;

/* Every setting at its default. */
struct settings *settings_new(void);
void settings_free(struct settings *s);

/* The default file: $XDG_CONFIG_HOME/hychat/hychat.conf, or
 * $HOME/.config/hychat/hychat.conf; NULL if neither variable is set.
 * Allocated. */
char *settings_default_path(void);

/* Called for each bad line: its number (from 1) and what is wrong. */
typedef void settings_warn_fn(void *arg, size_t line, const char *message);

/* Reads the lines of text[0..len) into s; any bytes. Each bad line goes to
 * warn (may be NULL) and is skipped; a later line overrides an earlier
 * one. Returns the number of bad lines. */
size_t settings_parse(
    struct settings *s, const char *text, size_t len, settings_warn_fn *warn, void *arg);
/* Reads the file at path into s; a missing file is no error (s keeps its
 * defaults). Returns 0, or -1 with *cause (allocated) when the file is
 * there but cannot be read. */
int settings_load(
    struct settings *s, const char *path, settings_warn_fn *warn, void *arg, char **cause);
/* Writes s to path atomically (temporary file, fsync, rename), mode 0600,
 * making the directory (0700) if missing. Returns 0, or -1 with *cause. */
int settings_save(const struct settings *s, const char *path, char **cause);

/* A size: digits and an optional K, M, G or T (powers of 1024), blanks
 * around ignored. Returns 0 with *out, or -1. */
int settings_parse_size(const char *text, uint64_t *out);
/* The autoaccept setting: 1 with *max for "contacts SIZE", 0 for off. */
int settings_autoaccept(const struct settings *s, uint64_t *max);

/* Finds a setting by name; -1 if unknown. */
int settings_find(const char *name);
const char *settings_name(enum setting_id id);
const char *settings_help(enum setting_id id);
/* Sets one after checking the value (surrounding blanks are trimmed).
 * Returns 0, or -1 with a reason in err (SETTINGS_ERR_MAX bytes). */
int settings_set(struct settings *s, enum setting_id id, const char *value, char *err);
const char *settings_get(const struct settings *s, enum setting_id id);
/* A number setting's value, or a switch's (1 on, 0 off). */
long settings_get_int(const struct settings *s, enum setting_id id);
/* 1 if the setting differs from its default (the user set it). */
int settings_is_set(const struct settings *s, enum setting_id id);

#endif
