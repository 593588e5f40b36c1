/* test_command.c — the command language: every command with its
 * arguments, the optional slash, messages kept verbatim, and the usage
 * errors a user sees for a wrong command or wrong arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/command.h"

struct good {
	const char *line;
	const char *name;
	int argc;
	const char *argv[COMMAND_MAX_ARGS];
};

static const struct good goods[] = {
	{ "login alice s3cret", "login", 2, { "alice", "s3cret" } },
	{ "login alice pass with spaces", "login", 2, { "alice", "pass with spaces" } },
	{ "register bob pw", "register", 2, { "bob", "pw" } },
	{ "join #test", "join", 1, { "#test" } },
	{ "join test", "join", 1, { "test" } },
	{ "part #test", "part", 1, { "#test" } },
	{ "list", "list", 0, { NULL } },
	{ "list general", "list", 1, { "general" } },
	{ "who #general", "who", 1, { "#general" } },
	{ "channels", "channels", 0, { NULL } },
	{ "conversations", "conversations", 0, { NULL } },
	{ "connect bob 127.0.0.1 9102", "connect", 3, { "bob", "127.0.0.1", "9102" } },
	{ "send bob hello", "send", 2, { "bob", "hello" } },
	{ "msg bob hi there", "msg", 2, { "bob", "hi there" } },
	{ "sendchannel general hi all", "sendchannel", 2, { "general", "hi all" } },
	{ "me waves", "me", 1, { "waves" } },
	{ "history #general", "history", 1, { "#general" } },
	{ "history bob 20", "history", 2, { "bob", "20" } },
	{ "read bob", "read", 1, { "bob" } },
	{ "read #general 42", "read", 2, { "#general", "42" } },
	{ "away", "away", 0, { NULL } },
	{ "away gone to lunch", "away", 1, { "gone to lunch" } },
	{ "back", "back", 0, { NULL } },
	{ "fingerprint", "fingerprint", 0, { NULL } },
	{ "fingerprint bob", "fingerprint", 1, { "bob" } },
	{ "typing bob", "typing", 1, { "bob" } },
	{ "contacts", "contacts", 0, { NULL } },
	{ "whois bob", "whois", 1, { "bob" } },
	{ "add bob", "add", 1, { "bob" } },
	{ "remove bob", "remove", 1, { "bob" } },
	{ "block mallory", "block", 1, { "mallory" } },
	{ "unblock mallory", "unblock", 1, { "mallory" } },
	{ "set", "set", 0, { NULL } },
	{ "set notify", "set", 1, { "notify" } },
	{ "set highlight deploy  release", "set", 2, { "highlight", "deploy  release" } },
	{ "sendfile bob /tmp/a file.txt", "sendfile", 2, { "bob", "/tmp/a file.txt" } },
	{ "accept 3fa2", "accept", 1, { "3fa2" } },
	{ "accept 3fa2 /tmp/My Files", "accept", 2, { "3fa2", "/tmp/My Files" } },
	{ "reject 3fa2", "reject", 1, { "3fa2" } },
	{ "transfers", "transfers", 0, { NULL } },
	{ "cancel 3fa2", "cancel", 1, { "3fa2" } },
	{ "help", "help", 0, { NULL } },
	{ "help send", "help", 1, { "send" } },
	{ "quit", "quit", 0, { NULL } },
	{ "quit see you", "quit", 1, { "see you" } },
};

static void
test_every_command_parses_its_arguments(void **state)
{
	char err[COMMAND_ERR_MAX];

	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		for (int slash = 0; slash < 2; slash++) {
			struct command_call call;
			char line[256];
			snprintf(line, sizeof(line), "%s%s", slash ? "/" : "", g->line);
			assert_int_equal(command_parse(line, &call, err), 0);
			assert_string_equal(call.cmd->name, g->name);
			assert_int_equal(call.argc, g->argc);
			for (int k = 0; k < g->argc; k++)
				assert_string_equal(call.argv[k], g->argv[k]);
			command_call_fini(&call);
		}
	}
}

static void
test_every_table_entry_is_covered_and_documented(void **state)
{
	size_t n;
	const struct command *t = command_table(&n);

	for (size_t i = 0; i < n; i++) {
		int found = 0;
		for (size_t k = 0; k < sizeof(goods) / sizeof(goods[0]); k++)
			found |= strcmp(goods[k].name, t[i].name) == 0;
		assert_true(found);
		assert_non_null(t[i].run);
		assert_true(strlen(t[i].help) > 0);
		assert_true(t[i].min_args <= t[i].max_args);
		assert_true(t[i].max_args <= COMMAND_MAX_ARGS);
		assert_ptr_equal(command_find(t[i].name, strlen(t[i].name)), &t[i]);
	}
}

static void
test_message_text_is_kept_verbatim(void **state)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX];

	assert_int_equal(
	    command_parse("  /send   bob   two  spaces\t\tand tabs  \r\n", &call, err), 0);
	assert_string_equal(call.argv[0], "bob");
	assert_string_equal(call.argv[1], "two  spaces\t\tand tabs  ");
	command_call_fini(&call);
	assert_int_equal(
	    command_parse("send bob Xin chào, tôi là Phát — 世界 🙂", &call, err), 0);
	assert_string_equal(call.argv[1], "Xin chào, tôi là Phát — 世界 🙂");
	command_call_fini(&call);
}

static void
test_names_are_case_insensitive(void **state)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX];

	assert_int_equal(command_parse("/JOIN #Test", &call, err), 0);
	assert_string_equal(call.cmd->name, "join");
	assert_string_equal(call.argv[0], "#Test");
	command_call_fini(&call);
}

static void
test_empty_lines_do_nothing(void **state)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX];

	assert_int_equal(command_parse("", &call, err), 1);
	assert_int_equal(command_parse("   \t ", &call, err), 1);
	assert_int_equal(command_parse("/", &call, err), 1);
	assert_int_equal(command_parse("\r\n", &call, err), 1);
}

struct bad {
	const char *line;
	const char *err;
};

static const struct bad bads[] = {
	{ "login alice", "usage: /login USER PASSWORD" },
	{ "login", "usage: /login USER PASSWORD" },
	{ "register bob", "usage: /register USER PASSWORD" },
	{ "join", "usage: /join CHANNEL" },
	{ "join a b", "usage: /join CHANNEL" },
	{ "part", "usage: /part CHANNEL" },
	{ "list a b", "usage: /list [CHANNEL]" },
	{ "who", "usage: /who CHANNEL" },
	{ "channels x", "usage: /channels" },
	{ "conversations x", "usage: /conversations" },
	{ "connect bob 127.0.0.1", "usage: /connect USER IP PORT" },
	{ "connect bob 127.0.0.1 1 2", "usage: /connect USER IP PORT" },
	{ "send bob", "usage: /send USER MESSAGE" },
	{ "/send", "usage: /send USER MESSAGE" },
	{ "msg bob", "usage: /msg USER MESSAGE" },
	{ "sendchannel general", "usage: /sendchannel CHANNEL MESSAGE" },
	{ "me", "usage: /me ACTION" },
	{ "history", "usage: /history CONVERSATION [N]" },
	{ "history a 1 2", "usage: /history CONVERSATION [N]" },
	{ "fingerprint a b", "usage: /fingerprint [USER]" },
	{ "help a b", "usage: /help [COMMAND]" },
	{ "frobnicate now", "unknown command \"frobnicate\": try /help" },
	{ "/sendd bob hi", "unknown command \"sendd\": try /help" },
};

static void
test_wrong_arguments_say_what_was_expected(void **state)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct command_call call;
		char err[COMMAND_ERR_MAX] = "";
		assert_int_equal(command_parse(bads[i].line, &call, err), -1);
		assert_string_equal(err, bads[i].err);
	}
}

static void
test_overlong_line_is_refused(void **state)
{
	size_t n = COMMAND_LINE_MAX + 10;
	char *line = malloc(n + 1);
	struct command_call call;
	char err[COMMAND_ERR_MAX];

	memcpy(line, "send bob ", 9);
	memset(line + 9, 'x', n - 9);
	line[n] = '\0';
	assert_int_equal(command_parse(line, &call, err), -1);
	assert_non_null(strstr(err, "too long"));
	line[ENGINE_TEXT_MAX + 9] = '\0';
	assert_int_equal(command_parse(line, &call, err), 0);
	assert_int_equal(strlen(call.argv[1]), ENGINE_TEXT_MAX);
	command_call_fini(&call);
	free(line);
}

static void
test_labels_are_split_off(void **state)
{
	char label[EVENT_LABEL_MAX + 1], err[COMMAND_ERR_MAX], big[EVENT_LABEL_MAX + 32];
	const char *rest;

	rest = command_label("@label=h42 history #general 5", label, err);
	assert_non_null(rest);
	assert_string_equal(label, "h42");
	assert_string_equal(rest, " history #general 5");
	rest = command_label("history bob", label, err);
	assert_string_equal(label, "");
	assert_string_equal(rest, "history bob");
	/* The IRCv3 forms a script may write. */
	rest = command_label("@label=a.b:c-d/e+f= who #x", label, err);
	assert_string_equal(label, "a.b:c-d/e+f=");
	assert_null(command_label("@label= history bob", label, err));
	assert_non_null(strstr(err, "bad label"));
	assert_null(command_label("@label=a\"b history bob", label, err));
	assert_null(command_label("@label=\xc3\xa9 help", label, err));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "@label=", 7);
	assert_null(command_label(big, label, err));
	/* A label alone is an empty command. */
	rest = command_label("@label=z", label, err);
	assert_string_equal(rest, "");
	assert_string_equal(label, "z");
}

/* A front end's own commands, registered into the engine's layer. */

static int front_calls;

static int
front_run(void *arg, const void *client, const char *ctx, int argc, char **argv)
{
	front_calls++;
	return 0;
}

static const struct command_front front_table[] = {
	{ { "query", 1, 2, COMMAND_REST, NULL, "USER [MESSAGE]", "open a conversation" },
	    front_run },
	{ { "close", 1, 1, COMMAND_CONV, NULL, "[CONVERSATION]", "close a conversation" },
	    front_run },
};

static const struct command_front clashing[] = {
	{ { "join", 1, 1, 0, NULL, "CHANNEL", "a second join with other rules" }, front_run },
};

/* Engines and front ends are only keys here: never dereferenced. */
static int engine_a, front_a, front_b;
#define ENGINE_A ((struct engine *)(void *)&engine_a)

static void
test_front_end_commands_join_the_one_table(void **state)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX] = "";
	const struct command *all[128];
	size_t n, engine_n;

	assert_int_equal(command_register(ENGINE_A, &front_a, front_table, 2, NULL), 0);
	/* The owner sees them, with the engine's parser. */
	assert_int_equal(
	    command_parse_for(ENGINE_A, &front_a, NULL, "/query bob hi there", &call, err), 0);
	assert_ptr_equal(call.front, &front_table[0]);
	assert_int_equal(call.argc, 2);
	assert_string_equal(call.argv[1], "hi there");
	command_call_fini(&call);
	/* With the engine's usage errors. */
	assert_int_equal(command_parse_for(ENGINE_A, &front_a, NULL, "/query", &call, err), -1);
	assert_string_equal(err, "usage: /query USER [MESSAGE]");
	/* No one else does: not another front end, not the headless protocol. */
	assert_int_equal(command_parse_for(ENGINE_A, &front_b, NULL, "query bob", &call, err), -1);
	assert_string_equal(err, "unknown command \"query\": try /help");
	assert_int_equal(command_parse("query bob", &call, err), -1);
	assert_null(command_of(ENGINE_A, &front_b, "query bob"));
	assert_ptr_equal(
	    command_of(ENGINE_A, &front_a, "@label=x /QUERY bob"), &front_table[0].cmd);
	assert_ptr_equal(command_of(ENGINE_A, &front_b, "join x"), command_find("join", 4));
	/* The list for help and completion: the engine's, then the owner's. */
	command_table(&engine_n);
	n = command_list(ENGINE_A, &front_a, all, 128);
	assert_int_equal(n, engine_n + 2);
	assert_ptr_equal(all[engine_n + 1], &front_table[1].cmd);
	assert_int_equal(command_list(ENGINE_A, &front_b, all, 128), engine_n);
	command_unregister(ENGINE_A, &front_a);
	assert_null(command_of(ENGINE_A, &front_a, "query bob"));
}

static void
test_front_ends_cannot_shadow_engine_commands(void **state)
{
	assert_int_equal(command_register(ENGINE_A, &front_a, clashing, 1, NULL), -1);
	assert_ptr_equal(command_of(ENGINE_A, &front_a, "join x"), command_find("join", 4));
	assert_int_equal(command_register(ENGINE_A, NULL, front_table, 2, NULL), -1);
}

static void
test_the_current_conversation_is_a_default(void **state)
{
	struct command_call call;
	char err[COMMAND_ERR_MAX] = "";

	/* COMMAND_CONV: any conversation. */
	assert_int_equal(command_parse_for(NULL, NULL, "bob", "/history", &call, err), 0);
	assert_string_equal(call.argv[0], "bob");
	assert_int_equal(call.argc, 1);
	command_call_fini(&call);
	assert_int_equal(command_parse_for(NULL, NULL, "bob", "/history #x 5", &call, err), 0);
	assert_string_equal(call.argv[0], "#x");
	command_call_fini(&call);
	/* COMMAND_CHAN: a channel only. */
	assert_int_equal(command_parse_for(NULL, NULL, "#general", "/part", &call, err), 0);
	assert_string_equal(call.argv[0], "#general");
	command_call_fini(&call);
	assert_int_equal(command_parse_for(NULL, NULL, "bob", "/part", &call, err), -1);
	assert_string_equal(err, "usage: /part CHANNEL");
	assert_int_equal(command_parse_for(NULL, NULL, "#general", "/list", &call, err), 0);
	assert_int_equal(call.argc, 1);
	command_call_fini(&call);
	assert_int_equal(command_parse_for(NULL, NULL, "bob", "/list", &call, err), 0);
	assert_int_equal(call.argc, 0);
	command_call_fini(&call);
	/* Without a conversation (the headless protocol): the usage error. */
	assert_int_equal(command_parse_for(NULL, NULL, NULL, "history", &call, err), -1);
	assert_string_equal(err, "usage: /history CONVERSATION [N]");
	/* Never for a command without the flag. */
	assert_int_equal(command_parse_for(NULL, NULL, "#general", "join", &call, err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_command_parses_its_arguments),
		cmocka_unit_test(test_every_table_entry_is_covered_and_documented),
		cmocka_unit_test(test_message_text_is_kept_verbatim),
		cmocka_unit_test(test_names_are_case_insensitive),
		cmocka_unit_test(test_empty_lines_do_nothing),
		cmocka_unit_test(test_wrong_arguments_say_what_was_expected),
		cmocka_unit_test(test_overlong_line_is_refused),
		cmocka_unit_test(test_labels_are_split_off),
		cmocka_unit_test(test_front_end_commands_join_the_one_table),
		cmocka_unit_test(test_front_ends_cannot_shadow_engine_commands),
		cmocka_unit_test(test_the_current_conversation_is_a_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
