/* tui_cmd.c — what the user does: the key table, the client's own
 * slash-commands (registered into the engine's command layer, which runs
 * every command line), Tab completion, the login prompt, and the /help
 * answer with the keys, as hychat(1) documents them. */
#include <ctype.h>
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "hychat/command.h"
#include "tui_internal.h"

#define CTRL_KEY(c) ((c)&0x1f)
#define COMP_MAX 256 /* completion candidates considered */

static void
next_conv(struct tui *t, int dir)
{
	if (t->nconvs == 0)
		return;
	tui_conv_select(
	    t, (t->cur + t->nconvs + (size_t)(dir > 0 ? 1 : t->nconvs - 1)) % t->nconvs);
}

/* Alt-A: a mention or a direct message first, then any activity. */
static void
next_activity(struct tui *t)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 1; k <= t->nconvs; k++) {
			size_t i = (t->cur + k) % t->nconvs;
			struct tui_conv *c = t->convs[i];
			int hot = c->mention || (!c->channel && c->unread > 0);
			if (i != t->cur && (pass == 0 ? hot : c->activity || c->unread > 0)) {
				tui_conv_select(t, i);
				return;
			}
		}
	}
	tui_notice(t, 0, "no activity elsewhere");
}

/* Key actions. */

static void
key_submit(struct tui *t, int arg)
{
	tui_submit(t);
}

static void
key_page(struct tui *t, int dir)
{
	int page = t->msg_h > 2 ? t->msg_h - 1 : 1;

	tui_conv_scroll(t, dir * page);
}

static void
key_conv(struct tui *t, int dir)
{
	next_conv(t, dir);
}

static void
key_window(struct tui *t, int n)
{
	if ((size_t)n <= t->nconvs)
		tui_conv_select(t, (size_t)n - 1);
}

static void
key_activity(struct tui *t, int arg)
{
	next_activity(t);
}

static void
key_top(struct tui *t, int arg)
{
	tui_conv_top(t);
}

static void
key_newest(struct tui *t, int arg)
{
	tui_conv_newest(t);
}

static void
key_search(struct tui *t, int arg)
{
	t->mode = TUI_SEARCH;
	tui_input_clear(&t->input);
	if (t->search_text != NULL)
		tui_input_replace(&t->input, 0, 0, t->search_text);
}

static void
key_redraw(struct tui *t, int arg)
{
	clearok(curscr, TRUE);
	tui_dirty(t);
}

static void
key_suspend(struct tui *t, int arg)
{
	tui_suspend(t);
}

static void
key_quit(struct tui *t, int arg)
{
	tui_quit(t);
}

static void complete(struct tui *t);

static void
key_complete(struct tui *t, int arg)
{
	complete(t);
}

struct binding {
	int key;
	int code; /* key is an ncurses KEY_ code */
	int meta; /* pressed with Alt (or after Escape) */
	void (*fn)(struct tui *t, int arg); /* NULL: the line editor's */
	int arg;
	const char *name, *help; /* for /help and hychat(1) */
};

static const struct binding bindings[] = {
	{ '\r', 0, 0, key_submit, 0, "Enter", "send the line, or run the command" },
	{ '\n', 0, 0, key_submit, 0, NULL, NULL },
	{ KEY_ENTER, 1, 0, key_submit, 0, NULL, NULL },
	{ '\t', 0, 0, key_complete, 0, "Tab",
	    "complete a command, a #channel or a username; again for the next; a file's path "
	    "after /sendfile USER or /accept ID (~ is home, a directory ends with /), a "
	    "transfer's id after /accept, /reject, /cancel" },
	{ KEY_PPAGE, 1, 0, key_page, -1, "PgUp", "scroll back, into the stored history" },
	{ KEY_NPAGE, 1, 0, key_page, 1, "PgDn", "scroll forward" },
	{ '<', 0, 1, key_top, 0, "Alt-<", "the oldest message of the conversation" },
	{ '>', 0, 1, key_newest, 0, "Alt->", "the newest message" },
	{ CTRL_KEY('n'), 0, 0, key_conv, 1, "Ctrl-N, Alt-Right", "the next conversation" },
	{ CTRL_KEY('p'), 0, 0, key_conv, -1, "Ctrl-P, Alt-Left", "the previous conversation" },
	{ TUI_KEY_ALT_RIGHT, 1, 0, key_conv, 1, NULL, NULL },
	{ TUI_KEY_ALT_LEFT, 1, 0, key_conv, -1, NULL, NULL },
	{ KEY_RIGHT, 1, 1, key_conv, 1, NULL, NULL }, /* Escape, then the arrow */
	{ KEY_LEFT, 1, 1, key_conv, -1, NULL, NULL },
	{ '1', 0, 1, key_window, 1, "Alt-1 ... Alt-9", "the conversation of that number" },
	{ '2', 0, 1, key_window, 2, NULL, NULL },
	{ '3', 0, 1, key_window, 3, NULL, NULL },
	{ '4', 0, 1, key_window, 4, NULL, NULL },
	{ '5', 0, 1, key_window, 5, NULL, NULL },
	{ '6', 0, 1, key_window, 6, NULL, NULL },
	{ '7', 0, 1, key_window, 7, NULL, NULL },
	{ '8', 0, 1, key_window, 8, NULL, NULL },
	{ '9', 0, 1, key_window, 9, NULL, NULL },
	{ '0', 0, 1, key_window, 10, "Alt-0", "the tenth conversation" },
	{ 'a', 0, 1, key_activity, 0, "Alt-A",
	    "the next conversation with activity, mentions and direct messages first" },
	{ CTRL_KEY('r'), 0, 0, key_search, 0, "Ctrl-R",
	    "search the conversation's history; again for an older match" },
	{ CTRL_KEY('l'), 0, 0, key_redraw, 0, "Ctrl-L", "redraw the screen" },
	{ CTRL_KEY('c'), 0, 0, key_quit, 0, "Ctrl-C", "quit, as /quit" },
	{ CTRL_KEY('z'), 0, 0, key_suspend, 0, "Ctrl-Z",
	    "suspend to the shell (fg to come back); links drop meanwhile" },
	{ 0, 0, 0, NULL, 0, "Left, Right, Ctrl-B, Ctrl-F", "move the cursor" },
	{ 0, 0, 0, NULL, 0, "Home, End, Ctrl-A, Ctrl-E", "to the start or end of the line" },
	{ 0, 0, 0, NULL, 0, "Alt-B, Alt-F, Ctrl-Left, Ctrl-Right", "a word back or forward" },
	{ 0, 0, 0, NULL, 0, "Backspace, Delete, Ctrl-D", "delete a character" },
	{ 0, 0, 0, NULL, 0, "Ctrl-W, Alt-Backspace", "delete the word before the cursor" },
	{ 0, 0, 0, NULL, 0, "Alt-D", "delete the word after the cursor" },
	{ 0, 0, 0, NULL, 0, "Ctrl-U, Ctrl-K", "delete to the start or end of the line" },
	{ 0, 0, 0, NULL, 0, "Ctrl-Y", "put back what the last of these deleted" },
	{ 0, 0, 0, NULL, 0, "Ctrl-T", "swap two characters" },
	{ 0, 0, 0, NULL, 0, "Up, Down", "the lines typed before, kept across restarts" },
	{ 0, 0, 0, NULL, 0, "Escape", "back to the newest message; leave a prompt" },
};

/* The client's own commands, in the engine's command layer: they run
 * only from this terminal, with the engine's parser and usage errors. */

static int
cmd_query(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct tui *t = arg;
	const char *user = argv[0];
	struct tui_conv *c;

	if (user[0] == '#' || strcmp(user, engine_username(t->e)) == 0 ||
	    (c = tui_conv_get(t, user)) == NULL) {
		tui_line(t, TUI_MSG_ERROR, "query: \"%s\" is not another user's name", user);
		return -1;
	}
	for (size_t i = 0; i < t->nconvs; i++)
		if (t->convs[i] == c)
			tui_conv_select(t, i);
	return argc > 1 ? engine_send(t->e, c->name, argv[1], 0) : 0;
}

static int
cmd_close(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	struct tui *t = arg;
	struct tui_conv *c = tui_conv_find(t, argv[0]);

	if (c == NULL) {
		tui_line(t, TUI_MSG_ERROR, "close: no conversation %s", argv[0]);
		return -1;
	}
	if (c->channel)
		return engine_part(t->e, c->name);
	tui_conv_close(t, c);
	return 0;
}

static int
cmd_search(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	tui_conv_search(arg, argv[0], 0);
	return 0;
}

static int
cmd_clear(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	tui_conv_clear(arg);
	return 0;
}

void
tui_web_url(struct tui *t)
{
	if (t->cfg.web_url == NULL) {
		tui_line(t, TUI_MSG_ERROR, "no web bridge: start hychat with --web");
		return;
	}
	/* The address on a line of its own, to be copied whole. */
	tui_line(t, TUI_MSG_SYSTEM, "web bridge: open this address once in your browser:");
	tui_line(t, TUI_MSG_SYSTEM, "%s", t->cfg.web_url(t->cfg.web_arg));
}

static int
cmd_web(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	tui_web_url(arg);
	return 0;
}

static const struct command_front commands[] = {
	{ { "query", 1, 2, COMMAND_REST, NULL, "USER [MESSAGE]",
	      "open a direct conversation with USER" },
	    cmd_query },
	{ { "close", 1, 1, COMMAND_CONV, NULL, "[CONVERSATION]",
	      "close a conversation, the one shown by default; for a channel, leave it (/part)" },
	    cmd_close },
	{ { "search", 1, 1, COMMAND_REST, NULL, "TEXT",
	      "search the conversation's stored history and show the newest match" },
	    cmd_search },
	{ { "clear", 0, 0, 0, NULL, "", "empty the view; PgUp brings the history back" },
	    cmd_clear },
	{ { "web", 0, 0, 0, NULL, "",
	      "the address that opens the browser front end (--web), once; a new one each time "
	      "the last was used" },
	    cmd_web },
};

int
tui_commands(struct tui *t)
{
	return command_register(t->e, t, commands, HY_ARRAY_LEN(commands), t);
}

static struct tui_conv *
current(struct tui *t)
{
	struct tui_conv *c = tui_conv_current(t);

	if (c == NULL)
		tui_line(t, TUI_MSG_ERROR, "no conversation open");
	return c;
}

/* A line the user typed: its answers are labelled TUI_LABEL_SHOW, to be
 * printed, unless the user wrote a label of their own. */
static void
run_command(struct tui *t, const char *line)
{
	struct tui_conv *conv = tui_conv_current(t);
	struct buf b;

	buf_init(&b);
	if (line[0] != '@')
		buf_printf(&b, "@label=%s ", TUI_LABEL_SHOW);
	buf_printf(&b, "%s", line);
	command_run(t->e, b.data, conv != NULL ? conv->name : NULL, t, NULL);
	explicit_bzero(b.data, b.len);
	buf_fini(&b);
}

static void
send_text(struct tui *t, const char *text)
{
	struct tui_conv *c = current(t);

	if (c == NULL)
		return;
	if (engine_tracker_state(t->e) != ENGINE_ONLINE && c->channel)
		tui_notice(t, 1, "not logged in: the message waits for the tracker");
	engine_send(t->e, c->name, text, 0);
}

static int
secret_command(const char *line)
{
	static const char *const secret[] = { "/login ", "/register ", "login ", "register " };

	for (size_t i = 0; i < HY_ARRAY_LEN(secret); i++)
		if (strncasecmp(line, secret[i], strlen(secret[i])) == 0)
			return 1;
	return 0;
}

void
tui_submit(struct tui *t)
{
	char *line;
	size_t lines = tui_input_lines(&t->input);

	line = tui_input_take(&t->input);
	if (line[0] == '\0') {
		free(line);
		return;
	}
	if (!secret_command(line))
		tui_input_remember(&t->input, line);
	if (line[0] == '/' && line[1] != '/') {
		run_command(t, line);
	} else if (lines > TUI_PASTE_ASK_LINES) {
		free(t->confirm_text);
		t->confirm_text = xstrdup(line);
		t->mode = TUI_CONFIRM;
	} else {
		send_text(t, line[0] == '/' ? line + 1 : line);
	}
	explicit_bzero(line, strlen(line));
	free(line);
}

/* Tab completion. */

struct candidates {
	const char *v[COMP_MAX];
	size_t n;
	const char *prefix;
	size_t plen;
};

static void
consider(struct candidates *c, const char *s)
{
	if (c->n == COMP_MAX || strncasecmp(s, c->prefix, c->plen) != 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i], s) == 0)
			return;
	c->v[c->n++] = s;
}

/* Path completion: the commands whose argument at index `arg` (0 the
 * command) is a file's path, to the end of the line. */
static const struct path_arg {
	const char *cmd;
	int arg;
} path_args[] = {
	{ "/sendfile", 2 },
	{ "/accept", 2 },
};

/* Where the path being typed starts, if the cursor is in one. */
static int
path_start(const struct tui_input *in, size_t *start)
{
	size_t i = 0, tok = 0, cmd_end;

	if (in->len == 0 || in->buf[0] != L'/')
		return 0;
	while (i < in->len && in->buf[i] != L' ')
		i++;
	cmd_end = i;
	for (size_t k = 0; k < HY_ARRAY_LEN(path_args); k++) {
		const char *name = path_args[k].cmd;
		size_t j;
		if (strlen(name) != cmd_end)
			continue;
		for (j = 0; j < cmd_end &&
		     (wchar_t)tolower((unsigned char)name[j]) ==
		         (wchar_t)towlower((wint_t)in->buf[j]);
		     j++)
			;
		if (j != cmd_end)
			continue;
		/* Arguments before the path: one blank after each. */
		i = cmd_end;
		for (tok = 1; (int)tok < path_args[k].arg; tok++) {
			while (i < in->len && in->buf[i] == L' ')
				i++;
			while (i < in->len && in->buf[i] != L' ')
				i++;
		}
		if (i >= in->len || in->buf[i] != L' ' || in->cur <= i)
			return 0;
		while (i < in->cur && in->buf[i] == L' ')
			i++;
		*start = i;
		return 1;
	}
	return 0;
}

/* The names of the paths in a notice, as many as fit. */
static void
list_paths(struct tui *t, char **v, size_t n)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < n && b.len < sizeof(t->notice) - 32; i++) {
		const char *p = v[i] + tui_path_dir_len(v[i]);
		/* A directory's name is before its trailing slash. */
		if (*p == '\0' && strlen(v[i]) > 1) {
			const char *end = v[i] + strlen(v[i]) - 1, *q = end;
			while (q > v[i] && q[-1] != '/')
				q--;
			buf_printf(&b, "%s%.*s/", i > 0 ? "  " : "", (int)(end - q), q);
			continue;
		}
		buf_printf(&b, "%s%s", i > 0 ? "  " : "", p);
	}
	tui_notice(t, 0, "%zu match%s: %s", n, n == 1 ? "" : "es", b.data != NULL ? b.data : "");
	buf_fini(&b);
}

/* Tab in a path: as far as the names agree; a directory's name ends
 * with "/", so Tab again lists inside it; when they part, the names on
 * the status bar, and Tab again takes each in turn. The directory is read
 * on the thread pool (a slow or huge one must not stop the screen):
 * path_scanned() completes, if the line is still as it was at the Tab. */
static void path_scanned(struct tui *t, char **v, size_t n);

static void
complete_path(struct tui *t, size_t start)
{
	struct tui_input *in = &t->input;
	char *word;

	if (in->scanning != NULL) {
		in->tab_waiting = 1; /* taken once the Tab before has its answer */
		return;
	}
	if (!in->completing) {
		free(in->comp_prefix);
		in->comp_prefix_len = in->cur - start;
		in->comp_prefix = xmalloc((in->comp_prefix_len + 1) * sizeof(wchar_t));
		memcpy(in->comp_prefix, in->buf + start, in->comp_prefix_len * sizeof(wchar_t));
		in->comp_start = start;
		in->comp_len = in->comp_prefix_len;
		in->comp_index = 0;
	}
	free(in->scan_line);
	in->scan_line = xmalloc((in->len + 1) * sizeof(wchar_t));
	memcpy(in->scan_line, in->buf, in->len * sizeof(wchar_t));
	in->scan_len = in->len;
	in->scan_cur = in->cur;
	in->scan_start = start;
	word = tui_text_utf8(in->comp_prefix, in->comp_prefix_len);
	in->scanning =
	    tui_path_scan_start(t->loop, t, word, getenv("HOME"), COMP_MAX, path_scanned);
	if (in->scanning == NULL)
		tui_notice(t, 0, "cannot read the directory of \"%s\"", word);
	free(word);
}

static void
free_paths(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
path_scanned(struct tui *t, char **v, size_t n)
{
	struct tui_input *in = &t->input;
	char *word, *home = getenv("HOME"), *expanded;
	size_t common, start = in->scan_start;

	in->scanning = NULL;
	/* Typed on, moved or sent meanwhile: this Tab's answer is stale. */
	if (t->closing || in->len != in->scan_len || in->cur != in->scan_cur ||
	    (in->len > 0 && wmemcmp(in->buf, in->scan_line, in->len) != 0) ||
	    in->comp_prefix == NULL) {
		in->tab_waiting = 0;
		free_paths(v, n);
		return;
	}
	word = tui_text_utf8(in->comp_prefix, in->comp_prefix_len);
	if (n == 0) {
		in->tab_waiting = 0;
		tui_notice(t, 0, "no file matches \"%s\"", word);
		free(word);
		free_paths(v, n);
		tui_dirty(t);
		return;
	}
	expanded = tui_path_expand(word, home);
	common = tui_path_common(v, n);
	if (in->completing) {
		/* Tab again where the names part: each in turn. */
		size_t before = in->len;
		tui_input_replace(in, in->comp_start, in->comp_len, v[in->comp_index++ % n]);
		in->comp_len = in->comp_len + in->len - before;
	} else if (n == 1 || common > strlen(expanded)) {
		char *pick = xstrdup(v[0]);
		pick[common] = '\0';
		tui_input_replace(in, start, in->cur - start, pick);
		free(pick);
		if (n > 1) {
			/* Tab again takes each of the names that part here. */
			list_paths(t, v, n);
			free(in->comp_prefix);
			in->comp_prefix_len = in->cur - start;
			in->comp_prefix = xmalloc((in->comp_prefix_len + 1) * sizeof(wchar_t));
			memcpy(in->comp_prefix, in->buf + start,
			    in->comp_prefix_len * sizeof(wchar_t));
			in->comp_start = start;
			in->comp_len = in->comp_prefix_len;
			in->comp_index = 0;
			in->completing = 1;
		}
	} else {
		/* They part here: the choices; Tab again takes the first. */
		size_t before = in->len;
		list_paths(t, v, n);
		tui_input_replace(in, start, in->cur - start, expanded);
		in->comp_len = in->comp_len + in->len - before;
		in->completing = 1;
	}
	free_paths(v, n);
	free(expanded);
	free(word);
	tui_dirty(t);
	if (in->tab_waiting) {
		in->tab_waiting = 0;
		complete(t);
	}
}

/* The ids of transfers, for /accept, /reject and /cancel. */
static const struct path_arg id_args[] = {
	{ "/accept ", 1 },
	{ "/reject ", 1 },
	{ "/cancel ", 1 },
};

static int
id_command(const char *line)
{
	for (size_t i = 0; i < HY_ARRAY_LEN(id_args); i++)
		if (strncasecmp(line, id_args[i].cmd, strlen(id_args[i].cmd)) == 0)
			return 1;
	return 0;
}

static void
complete(struct tui *t)
{
	struct tui_input *in = &t->input;
	struct candidates c = { .n = 0 };
	char ids[TUI_XFER_MAX][TUI_XFER_SHORT_ID + 1];
	char *line;
	size_t pstart;
	char cmdname[COMP_MAX][40];
	const struct command *all[COMP_MAX];
	size_t ncmd = 0, start, len;
	char *prefix;
	int nick;

	if (in->completing ? in->comp_path : path_start(in, &pstart)) {
		in->comp_path = 1;
		complete_path(t, in->completing ? in->comp_start : pstart);
		return;
	}
	in->comp_path = 0;
	if (!in->completing) {
		tui_input_word(in, &start, &len);
		free(in->comp_prefix);
		in->comp_prefix = xmalloc((len + 1) * sizeof(wchar_t));
		memcpy(in->comp_prefix, in->buf + start, len * sizeof(wchar_t));
		in->comp_prefix_len = len;
		in->comp_start = start;
		in->comp_len = len;
		in->comp_index = 0;
	}
	prefix = tui_text_utf8(in->comp_prefix, in->comp_prefix_len);
	c.prefix = prefix;
	c.plen = strlen(prefix);
	nick = 0;
	line = tui_text_utf8(in->buf, in->comp_start);
	if (id_command(line) && strchr(line + 1, ' ') == line + strlen(line) - 1) {
		/* The second word of /accept, /reject, /cancel: a transfer. */
		for (size_t i = 0; i < t->nxfers; i++) {
			snprintf(ids[i], sizeof(ids[i]), "%.*s", TUI_XFER_SHORT_ID, t->xfers[i].id);
			if (!tui_xfer_final(t->xfers[i].state))
				consider(&c, ids[i]);
		}
	} else if (in->comp_start == 0 && prefix[0] == '/') {
		ncmd = command_list(t->e, t, all, COMP_MAX);
		for (size_t i = 0; i < ncmd && i < COMP_MAX; i++)
			snprintf(cmdname[i], sizeof(cmdname[0]), "/%s", all[i]->name);
		for (size_t i = 0; i < ncmd && i < COMP_MAX; i++)
			consider(&c, cmdname[i]);
	} else if (prefix[0] == '#') {
		for (size_t i = 0; i < t->nconvs; i++)
			if (t->convs[i]->channel)
				consider(&c, t->convs[i]->name);
	} else {
		struct tui_conv *cur = tui_conv_current(t);
		nick = 1;
		if (cur != NULL)
			for (size_t i = 0; i < cur->nmembers; i++)
				consider(&c, cur->members[i]);
		for (size_t i = 0; i < t->nconvs; i++)
			if (!t->convs[i]->channel)
				consider(&c, t->convs[i]->name);
		for (size_t i = 0; i < t->npeers; i++)
			consider(&c, t->peers[i].name);
	}
	free(line);
	if (c.n == 0) {
		tui_notice(t, 0, "no completion for \"%s\"", prefix);
		free(prefix);
		return;
	}
	{
		const char *pick = c.v[in->comp_index++ % c.n];
		char repl[128];
		int at_start = in->comp_start == 0;
		size_t before = in->len;
		snprintf(repl, sizeof(repl), "%s%s", pick, nick && at_start ? ": " : " ");
		tui_input_replace(in, in->comp_start, in->comp_len, repl);
		in->comp_len = in->comp_len + in->len - before;
		in->completing = 1;
	}
	free(prefix);
}

/* /help: the engine's answer (a help event, with this terminal's own
 * commands among the engine's), and the keys when it lists them all. */

#define SP(usage) ((usage)[0] != '\0' ? " " : "")

void
tui_help(struct tui *t, struct json_object *ev)
{
	struct json_object *list;
	size_t n;

	if (!json_object_object_get_ex(ev, "commands", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	n = json_object_array_length(list);
	if (n > 1) {
		tui_line(t, TUI_MSG_SYSTEM,
		    "Type to send to the current conversation; //text sends text that starts "
		    "with /.");
		tui_line(t, TUI_MSG_SYSTEM, "Commands:");
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(list, i);
		const char *name = http_json_str(c, "name"), *usage = http_json_str(c, "usage"),
		           *help = http_json_str(c, "help");
		if (name == NULL || usage == NULL || help == NULL)
			continue;
		tui_line(t, TUI_MSG_SYSTEM, "%s/%s%s%s: %s", n > 1 ? "  " : "", name, SP(usage),
		    usage, help);
	}
	if (n <= 1)
		return;
	tui_line(t, TUI_MSG_SYSTEM, "Keys:");
	for (size_t i = 0; i < HY_ARRAY_LEN(bindings); i++)
		if (bindings[i].name != NULL)
			tui_line(t, TUI_MSG_SYSTEM, "  %s: %s", bindings[i].name, bindings[i].help);
}

/* Keys, by mode. */

static int
printable(int key, int code)
{
	return !code && key >= ' ' && key != 127 && (iswprint((wint_t)key) || wcwidth(key) == 0);
}

static void
login_submit(struct tui *t)
{
	char *pw = tui_input_take(&t->input);
	const char *user = engine_username(t->e);

	tui_input_wipe(&t->input);
	if (pw[0] == '\0') {
		free(pw);
		return;
	}
	switch (t->mode) {
	case TUI_LOGIN: engine_login(t->e, user, pw); break;
	case TUI_REGISTER:
		free(t->password);
		t->password = pw;
		t->mode = TUI_REGISTER_AGAIN;
		return;
	case TUI_REGISTER_AGAIN:
		if (t->password == NULL || strcmp(t->password, pw) != 0) {
			tui_notice(t, 1, "the passwords differ: type the new one again");
			t->mode = TUI_REGISTER;
		} else {
			engine_register(t->e, user, pw);
		}
		if (t->password != NULL) {
			explicit_bzero(t->password, strlen(t->password));
			free(t->password);
			t->password = NULL;
		}
		break;
	default: break;
	}
	explicit_bzero(pw, strlen(pw));
	free(pw);
}

static void
key_login(struct tui *t, int key, int code, int meta)
{
	if (!code && (key == '\r' || key == '\n')) {
		login_submit(t);
	} else if (code && key == KEY_ENTER) {
		login_submit(t);
	} else if (!code && key == '\t') {
		tui_input_wipe(&t->input);
		t->mode = t->mode == TUI_LOGIN ? TUI_REGISTER : TUI_LOGIN;
	} else if (code && key == TUI_KEY_ESC) {
		tui_input_wipe(&t->input);
		t->mode = TUI_NORMAL;
		tui_line(t, TUI_MSG_SYSTEM, "not logged in: /login %s PASSWORD when you want to",
		    engine_username(t->e));
	} else if (!code && key == CTRL_KEY('c')) {
		tui_quit(t);
	} else if (code && (key == KEY_UP || key == KEY_DOWN)) {
		/* No typed lines in a password field. */
	} else if (!tui_input_edit(&t->input, key, code, meta) && printable(key, code)) {
		tui_input_insert(&t->input, (wchar_t)key);
	}
}

static void
key_search_mode(struct tui *t, int key, int code, int meta)
{
	if ((!code && (key == '\r' || key == '\n' || key == CTRL_KEY('r'))) ||
	    (code && key == KEY_ENTER)) {
		char *text = tui_text_utf8(t->input.buf, t->input.len);
		if (text[0] != '\0')
			tui_conv_search(t, text, 1);
		free(text);
	} else if ((code && key == TUI_KEY_ESC) || (!code && key == CTRL_KEY('c'))) {
		tui_input_clear(&t->input);
		t->mode = TUI_NORMAL;
		tui_conv_newest(t);
	} else if (code && (key == KEY_PPAGE || key == KEY_NPAGE)) {
		key_page(t, key == KEY_PPAGE ? -1 : 1);
	} else if (!tui_input_edit(&t->input, key, code, meta) && printable(key, code)) {
		tui_input_insert(&t->input, (wchar_t)key);
	}
}

static void
key_confirm(struct tui *t, int key, int code)
{
	char *text = t->confirm_text;

	t->confirm_text = NULL;
	t->mode = TUI_NORMAL;
	if (text == NULL)
		return;
	if (!code && (key == 'y' || key == 'Y'))
		send_text(t, text);
	else
		tui_input_replace(&t->input, 0, t->input.len, text);
	free(text);
}

void
tui_key(struct tui *t, int key, int code)
{
	int meta = t->meta;

	if (!code && key == 27 && !t->meta && !t->pasting) {
		t->meta = 1;
		return;
	}
	t->meta = 0;
	/* The rest of an escape sequence ncurses does not know is not text:
	 * swallowed up to its final byte. */
	if (t->csi) {
		t->csi = !code && !(key >= 0x40 && key <= 0x7e);
		return;
	}
	if (meta && !code && key == '[' && !t->pasting) {
		t->csi = 1;
		return;
	}
	if (!code && key == 27)
		key = TUI_KEY_ESC, code = 1, meta = 0;
	if (code && (key == TUI_KEY_PASTE_BEGIN || key == TUI_KEY_PASTE_END)) {
		t->pasting = key == TUI_KEY_PASTE_BEGIN;
		return;
	}
	tui_dirty(t);
	if (t->input.len >= TUI_INPUT_MAX && printable(key, code))
		tui_notice(t, 1, "the line is full: %d characters at most", TUI_INPUT_MAX);
	if (t->pasting && t->mode != TUI_CONFIRM) {
		/* A pasted block is text, newlines included: never a burst of
		 * separate messages. */
		if ((!code && (key == '\r' || key == '\n')) || (code && key == KEY_ENTER))
			tui_input_insert(&t->input, L'\n');
		else if (!code && key == '\t')
			tui_input_insert(&t->input, L' ');
		else if (printable(key, code))
			tui_input_insert(&t->input, (wchar_t)key);
		return;
	}
	switch (t->mode) {
	case TUI_LOGIN:
	case TUI_REGISTER:
	case TUI_REGISTER_AGAIN: key_login(t, key, code, meta); return;
	case TUI_SEARCH: key_search_mode(t, key, code, meta); return;
	case TUI_CONFIRM: key_confirm(t, key, code); return;
	case TUI_NORMAL: break;
	}
	if (code && key == TUI_KEY_ESC) {
		tui_conv_newest(t);
		return;
	}
	for (size_t i = 0; i < HY_ARRAY_LEN(bindings); i++) {
		const struct binding *b = &bindings[i];
		if (b->fn != NULL && b->key == key && b->code == code && b->meta == meta) {
			b->fn(t, b->arg);
			return;
		}
	}
	if (tui_input_edit(&t->input, key, code, meta))
		return;
	/* Escape, then a key with no Alt binding: the two keys, as typed. */
	if (meta)
		tui_conv_newest(t);
	if (printable(key, code)) {
		tui_input_insert(&t->input, (wchar_t)key);
		tui_typing_key(t);
	}
}
