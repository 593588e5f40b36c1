/* command.h — the command language, the same for every front end: one
 * line, a command name with an optional leading slash, then arguments
 * separated by blanks; the last argument of some commands (a message, a
 * password) takes the rest of the line as it is.
 *
 * One table holds every command: its name, how many arguments it takes,
 * the engine call it makes and its help line. Parsing is a pure function
 * of the line; command_run() parses, reports a mistake as an "error" event
 * saying what was expected, and calls the engine.
 */
#ifndef HYCHAT_COMMAND_H
#define HYCHAT_COMMAND_H

#include <stddef.h>

#include "hychat/engine.h"

#define COMMAND_MAX_ARGS 4
#define COMMAND_LINE_MAX (ENGINE_TEXT_MAX + 1024) /* longer lines are refused */
#define COMMAND_ERR_MAX 256

/* ctx: the caller's current conversation (may be NULL). */
typedef int command_fn(struct engine *e, const char *ctx, int argc, char **argv);

struct command {
	const char *name;
	int min_args, max_args;
	int rest; /* the last argument takes the rest of the line */
	command_fn *run;
	const char *usage; /* the arguments, e.g. "USER MESSAGE" */
	const char *help;
};

/* A parsed line; argv points into its own copy of the line. */
struct command_call {
	const struct command *cmd;
	int argc;
	char *argv[COMMAND_MAX_ARGS];
	char *line;
};

/* Finds a command by name (case-insensitive, no slash); NULL if unknown. */
const struct command *command_find(const char *name, size_t len);
/* The whole table, for help and completion. */
const struct command *command_table(size_t *count);
/* Parses line into call. Returns 0, 1 for an empty line (nothing to do),
 * or -1 with a message for the user in err (COMMAND_ERR_MAX bytes). On 0
 * the caller frees call with command_call_fini(). */
int command_parse(const char *line, struct command_call *call, char *err);
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
 * Returns the command's result: 0, or -1 after an error event. */
int command_run(
    struct engine *e, const char *line, const char *ctx, const void *owner, const void *client);

#endif
