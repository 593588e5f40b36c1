/* command.c — the command table, the parser of command lines, and the
 * step from a parsed command to its engine call. */
#include "hychat/command.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/engine.h"
#include "hychat/event.h"
#include "hychat/history.h"
#include "hychat/util.h"

#define COMMAND_HELP_MAX 128 /* commands one front end sees */

static int
run_login(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_login(e, argv[0], argv[1]);
}

static int
run_register(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_register(e, argv[0], argv[1]);
}

static int
run_join(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_join(e, argv[0]);
}

static int
run_part(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_part(e, argv[0]);
}

static int
run_list(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_list(e, argc > 0 ? argv[0] : NULL);
}

static int
run_channels(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_channels(e);
}

static int
run_conversations(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_conversations(e);
}

static int
run_connect(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_connect(e, argv[0], argv[1], argv[2]);
}

static int
run_send(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_send_direct(e, argv[0], argv[1], 0);
}

static int
run_sendchannel(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_send_channel(e, argv[0], argv[1], 0);
}

static int
run_me(struct engine *e, const char *ctx, int argc, char **argv)
{
	const char *conv = ctx != NULL ? ctx : engine_last_conversation(e);

	if (conv == NULL) {
		event_error(engine_events(e),
		    "me: no current conversation: send, sendchannel or join first");
		return -1;
	}
	return engine_send(e, conv, argv[0], 1);
}

static int
run_history(struct engine *e, const char *ctx, int argc, char **argv)
{
	long long n = HISTORY_DEFAULT_N;

	if (argc > 1 && hy_parse_number(argv[1], 1, HISTORY_MAX_N, &n) < 0) {
		event_error(
		    engine_events(e), "history: N must be a number from 1 to %d", HISTORY_MAX_N);
		return -1;
	}
	return engine_history(e, argv[0], (int)n, 0);
}

static int
run_read(struct engine *e, const char *ctx, int argc, char **argv)
{
	long long upto = 0;

	if (argc > 1 && hy_parse_number(argv[1], 1, INT64_MAX, &upto) < 0) {
		event_error(engine_events(e), "read: UPTO must be a message's seq");
		return -1;
	}
	return engine_read(e, argv[0], upto);
}

static int
run_fingerprint(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_fingerprint(e, argc > 0 ? argv[0] : NULL);
}

static int
run_away(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_away(e, argc > 0 ? argv[0] : NULL);
}

static int
run_back(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_back(e);
}

static int
run_contacts(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_contacts(e);
}

static int
run_add(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_contact(e, ENGINE_CONTACT_ADD, argv[0]);
}

static int
run_remove(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_contact(e, ENGINE_CONTACT_REMOVE, argv[0]);
}

static int
run_block(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_contact(e, ENGINE_CONTACT_BLOCK, argv[0]);
}

static int
run_unblock(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_contact(e, ENGINE_CONTACT_UNBLOCK, argv[0]);
}

static int
run_whois(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_whois(e, argv[0]);
}

static int
run_typing(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_typing(e, argv[0]);
}

static int
run_set(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_set(e, argc > 0 ? argv[0] : NULL, argc > 1 ? argv[1] : NULL);
}

static int
run_sendfile(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_sendfile(e, argv[0], argv[1]);
}

static int
run_accept(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_file_accept(e, argv[0], argc > 1 ? argv[1] : NULL);
}

static int
run_reject(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_file_reject(e, argv[0]);
}

static int
run_cancel(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_file_cancel(e, argv[0]);
}

static int
run_transfers(struct engine *e, const char *ctx, int argc, char **argv)
{
	return engine_transfers(e);
}

static int run_help(struct engine *e, const char *ctx, int argc, char **argv);

static int
run_quit(struct engine *e, const char *ctx, int argc, char **argv)
{
	engine_quit(e);
	return 0;
}

static const struct command commands[] = {
	{ "login", 2, 2, COMMAND_REST, run_login, "USER PASSWORD", "log in to the tracker" },
	{ "register", 2, 2, COMMAND_REST, run_register, "USER PASSWORD",
	    "create an account on the tracker, then log in" },
	{ "join", 1, 1, 0, run_join, "CHANNEL", "join a channel and connect to its members" },
	{ "part", 1, 1, COMMAND_CHAN, run_part, "CHANNEL",
	    "leave a channel (default: the one shown)" },
	{ "list", 0, 1, COMMAND_CHAN, run_list, "[CHANNEL]",
	    "list the online peers, all or a channel's (default: the one shown)" },
	{ "who", 1, 1, COMMAND_CHAN, run_list, "CHANNEL",
	    "list a channel's online members (default: the one shown)" },
	{ "channels", 0, 0, 0, run_channels, "", "list the tracker's channels" },
	{ "conversations", 0, 0, 0, run_conversations, "",
	    "list the conversations with their unread counts" },
	{ "connect", 3, 3, 0, run_connect, "USER IP PORT", "open a link to a peer at an address" },
	{ "send", 2, 2, COMMAND_REST, run_send, "USER MESSAGE", "send a direct message" },
	{ "msg", 2, 2, COMMAND_REST, run_send, "USER MESSAGE", "send a direct message (as send)" },
	{ "sendchannel", 2, 2, COMMAND_REST, run_sendchannel, "CHANNEL MESSAGE",
	    "send to a channel" },
	{ "me", 1, 1, COMMAND_REST, run_me, "ACTION", "act in the current conversation" },
	{ "history", 1, 2, COMMAND_CONV, run_history, "CONVERSATION [N]",
	    "show the last N messages of a conversation" },
	{ "read", 1, 2, COMMAND_CONV, run_read, "CONVERSATION [UPTO]",
	    "mark a conversation read, up to a message's seq or all of it" },
	{ "fingerprint", 0, 1, 0, run_fingerprint, "[USER]",
	    "show a key fingerprint to compare out of band" },
	{ "away", 0, 1, COMMAND_REST, run_away, "[MESSAGE]", "tell the others you are away" },
	{ "back", 0, 0, 0, run_back, "", "tell the others you are back" },
	{ "contacts", 0, 0, 0, run_contacts, "", "list your contacts and blocked users" },
	{ "add", 1, 1, 0, run_add, "USER", "add a user to your contacts" },
	{ "remove", 1, 1, 0, run_remove, "USER", "remove a user from your contacts" },
	{ "block", 1, 1, 0, run_block, "USER",
	    "drop a user's messages, typing and presence, telling them nothing" },
	{ "unblock", 1, 1, 0, run_unblock, "USER", "take a user's messages again" },
	{ "whois", 1, 1, 0, run_whois, "USER",
	    "show a user's display name, status line and presence" },
	{ "typing", 1, 1, 0, run_typing, "CONVERSATION",
	    "tell the conversation you are typing (front ends call it on keys)" },
	{ "set", 0, 2, 1, run_set, "[NAME [VALUE]]",
	    "list the settings, show one, or change one and save it" },
	{ "sendfile", 2, 2, COMMAND_REST, run_sendfile, "USER PATH",
	    "offer a file to a user; it goes once they accept" },
	{ "accept", 1, 2, COMMAND_REST, run_accept, "ID [PATH]",
	    "accept a file offered, into the download directory, a directory or a file" },
	{ "reject", 1, 1, 0, run_reject, "ID", "refuse a file offered" },
	{ "transfers", 0, 0, 0, run_transfers, "", "list the file transfers and their state" },
	{ "cancel", 1, 1, 0, run_cancel, "ID", "stop a file transfer, either way" },
	{ "help", 0, 1, 0, run_help, "[COMMAND]", "list the commands, or explain one" },
	{ "quit", 0, 1, COMMAND_REST, run_quit, "[MESSAGE]", "leave the tracker and exit" },
};

const struct command *
command_find(const char *name, size_t len)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(commands); i++)
		if (hy_strieq(name, len, commands[i].name))
			return &commands[i];
	return NULL;
}

const struct command *
command_table(size_t *count)
{
	*count = HY_ARRAY_LEN(commands);
	return commands;
}

/* The front ends' own commands. */
struct front {
	struct engine *e;
	const void *owner;
	const struct command_front *table;
	size_t n;
	void *arg;
};

static struct front fronts[COMMAND_MAX_FRONTS];

static struct front *
front_of(struct engine *e, const void *owner)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(fronts); i++)
		if (fronts[i].e == e && fronts[i].owner == owner && owner != NULL)
			return &fronts[i];
	return NULL;
}

int
command_register(
    struct engine *e, const void *owner, const struct command_front *table, size_t n, void *arg)
{
	struct front *f = front_of(e, owner);

	for (size_t i = 0; i < n; i++)
		if (command_find(table[i].cmd.name, strlen(table[i].cmd.name)) != NULL)
			return -1;
	for (size_t i = 0; f == NULL && i < HY_ARRAY_LEN(fronts); i++)
		if (fronts[i].e == NULL)
			f = &fronts[i];
	if (f == NULL || owner == NULL)
		return -1;
	*f = (struct front){ e, owner, table, n, arg };
	return 0;
}

void
command_unregister(struct engine *e, const void *owner)
{
	struct front *f = front_of(e, owner);

	if (f != NULL)
		memset(f, 0, sizeof(*f));
}

/* The command named name[0..len) as owner sees it; *fc is set to the
 * front end's entry for one of owner's own. */
static const struct command *
find_for(struct engine *e, const void *owner, const char *name, size_t len,
    const struct command_front **fc)
{
	const struct command *c = command_find(name, len);
	struct front *f;

	*fc = NULL;
	if (c != NULL || e == NULL || (f = front_of(e, owner)) == NULL)
		return c;
	for (size_t i = 0; i < f->n; i++)
		if (hy_strieq(name, len, f->table[i].cmd.name)) {
			*fc = &f->table[i];
			return &f->table[i].cmd;
		}
	return NULL;
}

size_t
command_list(struct engine *e, const void *owner, const struct command **out, size_t max)
{
	struct front *f = e != NULL ? front_of(e, owner) : NULL;
	size_t n = 0;

	for (size_t i = 0; i < HY_ARRAY_LEN(commands); i++, n++)
		if (n < max)
			out[n] = &commands[i];
	for (size_t i = 0; f != NULL && i < f->n; i++, n++)
		if (n < max)
			out[n] = &f->table[i].cmd;
	return n;
}

static void
add_command(struct json_object *list, const struct command *c)
{
	struct json_object *o = json_object_new_object();

	event_add_str(o, "name", c->name);
	event_add_str(o, "usage", c->usage);
	event_add_str(o, "help", c->help);
	json_object_array_add(list, o);
}

static int
run_help(struct engine *e, const char *ctx, int argc, char **argv)
{
	const void *owner = event_origin_get(engine_events(e))->owner;
	const struct command *c = NULL, *all[COMMAND_HELP_MAX];
	const struct command_front *fc;
	struct json_object *ev, *list;
	size_t n;
	const char *name;

	if (argc > 0) {
		name = argv[0] + (argv[0][0] == '/');
		if ((c = find_for(e, owner, name, strlen(name), &fc)) == NULL) {
			event_error(engine_events(e), "help: unknown command \"%s\"", name);
			return -1;
		}
	}
	ev = event_new(EVENT_HELP);
	list = json_object_new_array();
	n = command_list(e, owner, all, HY_ARRAY_LEN(all));
	for (size_t i = 0; i < n && i < HY_ARRAY_LEN(all); i++)
		if (c == NULL || c == all[i])
			add_command(list, all[i]);
	json_object_object_add(ev, "commands", list);
	event_emit(engine_events(e), ev);
	return 0;
}

static int
blank(char c)
{
	return c == ' ' || c == '\t';
}

static void
usage_error(const struct command *c, char *err)
{
	snprintf(err, COMMAND_ERR_MAX, "usage: /%s%s%s", c->name, c->usage[0] ? " " : "", c->usage);
}

/* Fills a missing first argument from ctx, as c's flags say. */
static void
default_first(const struct command *c, const char *ctx, struct command_call *call)
{
	int conv = (c->flags & COMMAND_CONV) != 0,
	    chan = (c->flags & COMMAND_CHAN) != 0 && ctx != NULL && ctx[0] == '#';

	if (call->argc > 0 || c->max_args == 0 || ctx == NULL || ctx[0] == '\0' || !(conv || chan))
		return;
	call->dflt = xstrdup(ctx);
	call->argv[call->argc++] = call->dflt;
}

int
command_parse_for(struct engine *e, const void *owner, const char *ctx, const char *line,
    struct command_call *call, char *err)
{
	const struct command *c;
	const struct command_front *fc;
	char *p, *name;
	size_t len = strlen(line);

	memset(call, 0, sizeof(*call));
	if (len > COMMAND_LINE_MAX) {
		snprintf(err, COMMAND_ERR_MAX, "line too long: at most %d bytes", COMMAND_LINE_MAX);
		return -1;
	}
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	call->line = xstrndup(line, len);
	p = call->line;
	while (blank(*p))
		p++;
	if (*p == '/')
		p++;
	name = p;
	while (*p != '\0' && !blank(*p))
		p++;
	if (p == name) {
		command_call_fini(call);
		return 1;
	}
	if ((c = find_for(e, owner, name, (size_t)(p - name), &fc)) == NULL) {
		snprintf(err, COMMAND_ERR_MAX, "unknown command \"%.*s\": try /help",
		    (int)(p - name > 32 ? 32 : p - name), name);
		command_call_fini(call);
		return -1;
	}
	call->cmd = c;
	call->front = fc;
	if (*p != '\0')
		*p++ = '\0';
	for (;;) {
		while (blank(*p))
			p++;
		if (*p == '\0')
			break;
		if (call->argc == c->max_args) {
			usage_error(c, err);
			command_call_fini(call);
			return -1;
		}
		call->argv[call->argc++] = p;
		if ((c->flags & COMMAND_REST) && call->argc == c->max_args)
			break;
		while (*p != '\0' && !blank(*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	default_first(c, ctx, call);
	if (call->argc < c->min_args) {
		usage_error(c, err);
		command_call_fini(call);
		return -1;
	}
	return 0;
}

int
command_parse(const char *line, struct command_call *call, char *err)
{
	return command_parse_for(NULL, NULL, NULL, line, call, err);
}

void
command_call_fini(struct command_call *call)
{
	free(call->line);
	free(call->dflt);
	memset(call, 0, sizeof(*call));
}

const char *
command_label(const char *line, char *label, char *err)
{
	static const char prefix[] = "@label=";
	size_t n;

	label[0] = '\0';
	while (blank(*line))
		line++;
	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		return line;
	line += sizeof(prefix) - 1;
	n = strspn(line, EVENT_LABEL_CHARS);
	if (n == 0 || n > EVENT_LABEL_MAX || (line[n] != '\0' && !blank(line[n]))) {
		snprintf(err, COMMAND_ERR_MAX,
		    "bad label: 1 to %d letters, digits or ._:-/+= then a blank", EVENT_LABEL_MAX);
		return NULL;
	}
	memcpy(label, line, n);
	label[n] = '\0';
	return line + n;
}

const struct command *
command_of(struct engine *e, const void *owner, const char *line)
{
	char label[EVENT_LABEL_MAX + 1], err[COMMAND_ERR_MAX];
	const struct command_front *fc;
	size_t len;

	if ((line = command_label(line, label, err)) == NULL)
		return NULL;
	while (blank(*line))
		line++;
	line += *line == '/';
	len = strcspn(line, " \t\r\n");
	return len > 0 ? find_for(e, owner, line, len, &fc) : NULL;
}

int
command_run(
    struct engine *e, const char *line, const char *ctx, const void *owner, const void *client)
{
	struct event_bus *bus = engine_events(e);
	struct event_origin saved = *event_origin_get(bus), from = { owner, client, "" };
	struct command_call call;
	char err[COMMAND_ERR_MAX];
	struct front *f;
	int rc;

	event_origin_set(bus, owner != NULL ? &from : NULL);
	if ((line = command_label(line, from.label, err)) == NULL) {
		event_error(bus, "%s", err);
		event_origin_set(bus, &saved);
		return -1;
	}
	event_origin_set(bus, owner != NULL ? &from : NULL);
	if (owner != NULL)
		engine_input(e);
	rc = command_parse_for(e, owner, ctx, line, &call, err);
	if (rc < 0)
		event_error(bus, "%s", err);
	else if (rc == 1)
		rc = 0;
	else {
		if (call.front != NULL && (f = front_of(e, owner)) != NULL)
			rc = call.front->run(f->arg, client, ctx, call.argc, call.argv);
		else
			rc = call.cmd->run(e, ctx, call.argc, call.argv);
		command_call_fini(&call);
	}
	event_origin_set(bus, &saved);
	return rc;
}
