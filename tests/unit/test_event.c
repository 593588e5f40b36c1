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
	/* An event emitted from a subscriber reaches the others too. */
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
	assert_string_equal(a.lines[0], "{\"type\":\"error\",\"message\":\"nested\"}");
	assert_string_equal(a.lines[1], "{\"type\":\"system\",\"message\":\"one\"}");
	assert_int_equal(bus.nsubs, 1);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_subscriber_gets_the_same_line),
		cmocka_unit_test(test_lines_hold_no_newline_and_keep_utf8),
		cmocka_unit_test(test_type_names_round_trip),
		cmocka_unit_test(test_unsubscribe_from_a_callback),
		cmocka_unit_test(test_subscribers_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
