/* test_event.c — the event bus and the JSON of events: one line each,
 * UTF-8 kept, every subscriber served in order, unsubscribing safe from a
 * callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hychat/event.h"

struct seen {
	char lines[8][512];
	int n;
	enum event_type last;
};

static void
record(const struct event *ev, void *arg)
{
	struct seen *s = arg;

	assert_int_equal(strlen(ev->json), ev->len);
	snprintf(s->lines[s->n++ % 8], sizeof(s->lines[0]), "%s", ev->json);
	s->last = ev->type;
}

static void
test_every_subscriber_gets_the_same_line(void **state)
{
	struct event_bus bus;
	struct seen a = { 0 }, b = { 0 };
	struct json_object *o;

	event_bus_init(&bus);
	assert_int_equal(event_subscribe(&bus, record, &a), 0);
	assert_int_equal(event_subscribe(&bus, record, &b), 0);
	o = event_new(EVENT_CHAT);
	event_add_str(o, "from", "bob");
	event_add_str(o, "message", "hi");
	event_add_bool(o, "encrypted", 1);
	event_add_int(o, "seq", 7);
	event_emit(&bus, o);
	assert_int_equal(a.n, 1);
	assert_int_equal(b.n, 1);
	assert_int_equal(a.last, EVENT_CHAT);
	assert_string_equal(a.lines[0],
	    "{\"type\":\"chat\",\"from\":\"bob\",\"message\":\"hi\",\"encrypted\":true,\"seq\":7}");
	assert_string_equal(a.lines[0], b.lines[0]);
	event_bus_fini(&bus);
}

static void
test_lines_hold_no_newline_and_keep_utf8(void **state)
{
	struct event_bus bus;
	struct seen a = { 0 };

	event_bus_init(&bus);
	event_subscribe(&bus, record, &a);
	event_system(&bus, "two\nlines / Xin chào 🙂 \"q\"");
	assert_string_equal(a.lines[0],
	    "{\"type\":\"system\",\"message\":\"two\\nlines / Xin chào 🙂 \\\"q\\\"\"}");
	assert_null(strchr(a.lines[0], '\n'));
	event_error(&bus, "usage: /%s %s", "send", "USER MESSAGE");
	assert_string_equal(
	    a.lines[1], "{\"type\":\"error\",\"message\":\"usage: /send USER MESSAGE\"}");
	assert_int_equal(a.last, EVENT_ERROR);
	event_bus_fini(&bus);
}

static void
test_type_names_round_trip(void **state)
{
	for (int i = 0; i < EVENT_COUNT; i++)
		assert_int_equal(event_type_from_name(event_type_name((enum event_type)i)), i);
	assert_int_equal(event_type_from_name("nope"), -1);
	assert_string_equal(event_type_name(EVENT_LOGIN_RESULT), "login_result");
	assert_string_equal(event_type_name(EVENT_PEER_LIST), "peer_list");
	assert_string_equal(event_type_name(EVENT_BROADCAST), "broadcast");
}

struct selfish {
	struct event_bus *bus;
	int calls;
};

static void
leave_after_one(const struct event *ev, void *arg)
{
	struct selfish *s = arg;

	s->calls++;
	event_unsubscribe(s->bus, leave_after_one, s);
	/* An event emitted from a subscriber reaches the others too, after
	 * the one being delivered. */
	if (ev->type == EVENT_SYSTEM)
		event_error(s->bus, "nested");
}

static void
test_unsubscribe_from_a_callback(void **state)
{
	struct event_bus bus;
	struct selfish s = { &bus, 0 };
	struct seen a = { 0 };

	event_bus_init(&bus);
	event_subscribe(&bus, leave_after_one, &s);
	event_subscribe(&bus, record, &a);
	event_system(&bus, "one");
	event_system(&bus, "two");
	assert_int_equal(s.calls, 1);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.lines[0], "{\"type\":\"system\",\"message\":\"one\"}");
	assert_string_equal(a.lines[1], "{\"type\":\"error\",\"message\":\"nested\"}");
	assert_string_equal(a.lines[2], "{\"type\":\"system\",\"message\":\"two\"}");
	assert_int_equal(bus.nsubs, 1);
	event_bus_fini(&bus);
}

struct chain {
	struct event_bus *bus;
	int left; /* events still to emit, one per delivery */
};

/* Emits a nested event per delivery, each naming its cause. */
static void
cause_effects(const struct event *ev, void *arg)
{
	struct chain *c = arg;
	struct json_object *m;

	if (c->left <= 0)
		return;
	c->left--;
	json_object_object_get_ex(ev->obj, "message", &m);
	event_system(c->bus, "after %s", json_object_get_string(m));
	event_error(c->bus, "also after %s", json_object_get_string(m));
}

static void
test_nested_emits_go_out_in_order(void **state)
{
	struct event_bus bus;
	struct chain c = { &bus, 2 };
	struct seen a = { 0 };

	event_bus_init(&bus);
	event_subscribe(&bus, cause_effects, &c);
	event_subscribe(&bus, record, &a);
	event_system(&bus, "root");
	/* Every event reaches the later subscriber after its cause, and
	 * siblings keep the order they were emitted in. */
	assert_int_equal(a.n, 5);
	assert_string_equal(a.lines[0], "{\"type\":\"system\",\"message\":\"root\"}");
	assert_string_equal(a.lines[1], "{\"type\":\"system\",\"message\":\"after root\"}");
	assert_string_equal(a.lines[2], "{\"type\":\"error\",\"message\":\"also after root\"}");
	assert_string_equal(a.lines[3], "{\"type\":\"system\",\"message\":\"after after root\"}");
	assert_string_equal(
	    a.lines[4], "{\"type\":\"error\",\"message\":\"also after after root\"}");
	assert_null(bus.queue);
	event_bus_fini(&bus);
}

static void
test_answers_go_to_the_asker_alone(void **state)
{
	struct event_bus bus;
	struct seen a = { 0 }, b = { 0 };
	struct event_origin from = { &a, NULL, "q1" };

	event_bus_init(&bus);
	event_subscribe(&bus, record, &a);
	event_subscribe(&bus, record, &b);
	event_origin_set(&bus, &from);
	event_emit(&bus, event_new(EVENT_HISTORY));
	event_error(&bus, "no such conversation");
	/* A change of state made by the command reaches everyone, unlabelled. */
	event_emit(&bus, event_new(EVENT_CHAT));
	event_origin_set(&bus, NULL);
	event_emit(&bus, event_new(EVENT_HISTORY));
	assert_int_equal(a.n, 4);
	assert_string_equal(a.lines[0], "{\"type\":\"history\",\"label\":\"q1\"}");
	assert_string_equal(a.lines[1],
	    "{\"type\":\"error\",\"message\":\"no such conversation\",\"label\":\"q1\"}");
	assert_string_equal(a.lines[2], "{\"type\":\"chat\"}");
	assert_string_equal(a.lines[3], "{\"type\":\"history\"}");
	assert_int_equal(b.n, 2);
	assert_string_equal(b.lines[0], "{\"type\":\"chat\"}");
	assert_string_equal(b.lines[1], "{\"type\":\"history\"}");
	assert_true(event_type_is_answer(EVENT_SEARCH));
	assert_false(event_type_is_answer(EVENT_READ));
	event_bus_fini(&bus);
}

struct asker {
	struct event_bus *bus;
	struct seen seen;
	int answered_in_call;
};

/* Asks a question while an event is delivered, as the terminal does when
 * it opens a conversation it was told about. */
static void
ask_on_chat(const struct event *ev, void *arg)
{
	struct asker *k = arg;
	struct event_origin saved = *event_origin_get(k->bus), from = { k, NULL, "" };

	record(ev, &k->seen);
	if (ev->type != EVENT_CHAT)
		return;
	event_origin_set(k->bus, &from);
	event_emit(k->bus, event_new(EVENT_HISTORY));
	event_origin_set(k->bus, &saved);
	k->answered_in_call = k->seen.n == 2;
}

static void
test_an_answer_arrives_during_the_call(void **state)
{
	struct event_bus bus;
	struct asker k = { .bus = &bus };
	struct seen b = { 0 };

	event_bus_init(&bus);
	event_subscribe(&bus, ask_on_chat, &k);
	event_subscribe(&bus, record, &b);
	event_emit(&bus, event_new(EVENT_CHAT));
	assert_true(k.answered_in_call);
	assert_int_equal(b.n, 1);
	event_bus_fini(&bus);
}

static void
test_subscribers_are_bounded(void **state)
{
	struct event_bus bus;
	struct seen a = { 0 };

	event_bus_init(&bus);
	for (int i = 0; i < EVENT_MAX_SUBSCRIBERS; i++)
		assert_int_equal(event_subscribe(&bus, record, &a), 0);
	assert_int_equal(event_subscribe(&bus, record, &a), -1);
	event_bus_fini(&bus);
}

struct flusher {
	struct event_bus *bus;
	int flushed;
	int leave; /* unsubscribes itself when flushed */
};

static void
ignore(const struct event *ev, void *arg)
{
	(void)ev;
	(void)arg;
}

static void
flush_one(void *arg)
{
	struct flusher *f = arg;

	f->flushed++;
	if (f->leave)
		event_unsubscribe(f->bus, ignore, f);
}

static void
test_turn_end_flushes_once_each(void **state)
{
	struct event_bus bus;
	struct flusher a = { &bus, 0, 1 }, b = { &bus, 0, 0 }, c = { &bus, 0, 0 };
	struct seen none = { 0 };

	event_bus_init(&bus);
	assert_int_equal(event_subscribe(&bus, ignore, &a), 0);
	assert_int_equal(event_subscribe(&bus, record, &none), 0);
	assert_int_equal(event_subscribe(&bus, ignore, &b), 0);
	assert_int_equal(event_subscribe(&bus, ignore, &c), 0);
	event_on_turn_end(&bus, ignore, &a, flush_one);
	event_on_turn_end(&bus, ignore, &b, flush_one);
	event_on_turn_end(&bus, ignore, &c, flush_one);
	event_turn_end(&bus);
	/* a left during its flush: never called again, nobody twice. */
	assert_int_equal(a.flushed, 1);
	assert_true(b.flushed <= 1 && c.flushed == 1);
	event_turn_end(&bus);
	assert_int_equal(a.flushed, 1);
	assert_true(b.flushed >= 1 && b.flushed <= 2);
	assert_int_equal(c.flushed, 2);
	assert_int_equal(none.n, 0);
	event_bus_fini(&bus);
}

/* The text writer gives the very line json-c gives for the same fields:
 * every byte alone, and random strings of them. */
static void
same_line(const char *value, long long n, int flag)
{
	struct json_object *o = event_new(EVENT_CHAT);
	struct event_json j;
	const char *want;

	event_add_str(o, "message", value);
	event_add_str(o, "to", NULL);
	event_add_int(o, "seq", n);
	event_add_bool(o, "action", flag);
	want = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	event_json_begin(&j, EVENT_CHAT);
	event_json_str(&j, "message", value);
	event_json_str(&j, "to", NULL);
	event_json_int(&j, "seq", n);
	event_json_bool(&j, "action", flag);
	buf_append_char(&j.b, '}');
	assert_string_equal(j.b.data, want);
	buf_fini(&j.b);
	json_object_put(o);
}

static void
test_text_events_match_json_c(void **state)
{
	char s[64];
	unsigned seed = 12345;

	for (int c = 1; c < 256; c++) {
		s[0] = (char)c;
		s[1] = '\0';
		same_line(s, c, c & 1);
	}
	same_line("", 0, 0);
	same_line("a/b \"q\" \\ Xin chào 🙂", -9223372036854775807LL - 1, 1);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(i % 63);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			s[k] = (char)(1 + (seed >> 16) % 255);
		}
		s[n] = '\0';
		same_line(s, (long long)seed * (i & 1 ? -1 : 1), i & 1);
	}
}

/* A text event reaches subscribers as a line, an object on demand, and in
 * order with the events around it. */
static int nested_sent;

static void
emit_nested(const struct event *ev, void *arg)
{
	struct event_bus *bus = arg;
	struct json_object *o = event_object(ev), *m;

	assert_non_null(o);
	if (ev->type == EVENT_CHAT && !nested_sent) {
		assert_true(json_object_object_get_ex(o, "message", &m));
		assert_string_equal(json_object_get_string(m), "one\n");
		struct event_json j;
		nested_sent = 1;
		event_json_begin(&j, EVENT_DELIVERY);
		event_json_str(&j, "state", "pending");
		event_json_emit(bus, &j);
		event_system(bus, "after");
	}
}

static void
test_text_events_go_out_in_order(void **state)
{
	struct event_bus bus;
	struct seen a = { 0 };
	struct event_json j;

	event_bus_init(&bus);
	assert_int_equal(event_subscribe(&bus, emit_nested, &bus), 0);
	assert_int_equal(event_subscribe(&bus, record, &a), 0);
	event_json_begin(&j, EVENT_CHAT);
	event_json_str(&j, "message", "one\n");
	event_json_emit(&bus, &j);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.lines[0], "{\"type\":\"chat\",\"message\":\"one\\n\"}");
	assert_string_equal(a.lines[1], "{\"type\":\"delivery\",\"state\":\"pending\"}");
	assert_string_equal(a.lines[2], "{\"type\":\"system\",\"message\":\"after\"}");
	event_bus_fini(&bus);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_subscriber_gets_the_same_line),
		cmocka_unit_test(test_lines_hold_no_newline_and_keep_utf8),
		cmocka_unit_test(test_type_names_round_trip),
		cmocka_unit_test(test_unsubscribe_from_a_callback),
		cmocka_unit_test(test_nested_emits_go_out_in_order),
		cmocka_unit_test(test_answers_go_to_the_asker_alone),
		cmocka_unit_test(test_an_answer_arrives_during_the_call),
		cmocka_unit_test(test_subscribers_are_bounded),
		cmocka_unit_test(test_turn_end_flushes_once_each),
		cmocka_unit_test(test_text_events_match_json_c),
		cmocka_unit_test(test_text_events_go_out_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
