/* command.h — the command language, the same for every front end: one
 * line, a command name with an optional leading slash, then arguments
 * separated by blanks; the last argument of some commands (a message, a
 * password) takes the rest of the line as it is.
 *
 * One table holds every command: its name, how many arguments it takes,
 * the engine call it makes and its help line. A front end adds its own
 * commands to it (command_register: the terminal's /query, the bridge's
 * auth), seen only in the lines that front end runs; they take the same
 * parser, the same usage errors and the same /help, and may not reuse an
 * engine command's name. Parsing is a pure function of the line;
 * command_run() parses, reports a mistake as an "error" event saying what
 * was expected, and calls the engine or the front end.
 */
#ifndef HYCHAT_COMMAND_H
#define HYCHAT_COMMAND_H

#include <stddef.h>

#include "hychat/engine.h"

#define COMMAND_MAX_ARGS 4
#define COMMAND_LINE_MAX (ENGINE_TEXT_MAX + 1024) /* longer lines are refused */
#define COMMAND_ERR_MAX 256
#define COMMAND_MAX_FRONTS 8 /* front ends with commands of their own, in all */

/* Flags of a command. */
#define COMMAND_REST 0x1 /* the last argument takes the rest of the line */
#define COMMAND_CONV 0x2 /* a missing first argument is the caller's conversation */
#define COMMAND_CHAN 0x4 /* ... when that conversation is a channel */

/* ctx: the caller's current conversation (may be NULL). */
typedef int command_fn(struct engine *e, const char *ctx, int argc, char **argv);

struct command {
	const char *name;
	int min_args, max_args;
	int flags; /* COMMAND_REST, COMMAND_CONV, COMMAND_CHAN */
	command_fn *run; /* NULL for a front end's: see struct command_front */
	const char *usage; /* the arguments, e.g. "USER MESSAGE" */
	const char *help;
};

/* A front end's command: arg is what it registered, client who asked in
 * it (see command_run), ctx its current conversation (may be NULL). */
typedef int command_front_fn(void *arg, const void *client, const char *ctx, int argc, char **argv);

struct command_front {
	struct command cmd; /* cmd.run NULL */
	command_front_fn *run;
};

/* A parsed line; argv points into its own copy of the line. */
struct command_call {
	const struct command *cmd;
	int argc;
	char *argv[COMMAND_MAX_ARGS];
	char *line;
	char *dflt; /* a defaulted first argument (COMMAND_CONV), owned */
	const struct command_front *front; /* a front end's, or NULL */
};

/* Finds an engine command by name (case-insensitive, no slash); NULL if
 * unknown. */
const struct command *command_find(const char *name, size_t len);
/* The engine's table, for help and completion. */
const struct command *command_table(size_t *count);
/* Adds owner's commands (table[0..n), which must outlive the
 * registration) to e's command layer: command_run() with that owner finds
 * them after the engine's, and calls run(arg, ...). Returns 0, or -1 if a
 * name is an engine command's or COMMAND_MAX_FRONTS front ends have
 * registered. */
int command_register(
    struct engine *e, const void *owner, const struct command_front *table, size_t n, void *arg);
/* Removes owner's commands from e (at the front end's teardown). */
void command_unregister(struct engine *e, const void *owner);
/* Every command owner sees, engine's first, into out (at most max);
 * returns how many there are. */
size_t command_list(struct engine *e, const void *owner, const struct command **out, size_t max);
/* The command line names (after a label), as owner sees it; NULL if none. */
const struct command *command_of(struct engine *e, const void *owner, const char *line);
/* Parses line into call, with the engine's commands alone. Returns 0, 1
 * for an empty line (nothing to do), or -1 with a message for the user in
 * err (COMMAND_ERR_MAX bytes). On 0 the caller frees call with
 * command_call_fini(). */
int command_parse(const char *line, struct command_call *call, char *err);
/* The same with owner's commands too, and ctx (the caller's current
 * conversation, may be NULL) filling a missing first argument of a
 * COMMAND_CONV or COMMAND_CHAN command. */
int command_parse_for(struct engine *e, const void *owner, const char *ctx, const char *line,
    struct command_call *call, char *err);
void command_call_fini(struct command_call *call);
/* Splits a leading "@label=VALUE " off line: copies VALUE into label
 * (EVENT_LABEL_MAX + 1 bytes; "" without one) and returns the rest of the
 * line, or NULL (with a message in err) if the label is malformed: empty,
 * longer than EVENT_LABEL_MAX, or with a byte outside EVENT_LABEL_CHARS. */
const char *command_label(const char *line, char *label, char *err);
/* Parses and runs line on e, reporting mistakes as error events. ctx is
 * the front end's current conversation, for commands like "me". owner is
 * the front end's event subscriber argument and client who asked inside
 * it (NULL if it has one client): the answers to the command (event.h)
 * go to them alone, labelled if the line began with "@label=VALUE ".
 * A front end's own commands are found for its owner alone.
 * Returns the command's result: 0, or -1 after an error event. */
int command_run(
    struct engine *e, const char *line, const char *ctx, const void *owner, const void *client);

#endif
