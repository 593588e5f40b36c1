/* fuzz_event_json.c — libFuzzer target for the events written as text
 * (event_json_*): for any string, the line is the one json-c writes for
 * the same fields, and json-c reads the string back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct json_object *o = event_new(EVENT_BROADCAST), *back, *v;
	struct event_json j;
	long long n = 0;

	memcpy(s, data, size);
	s[size] = '\0'; /* a C string: up to the first NUL */
	for (size_t i = 0; i < size && i < sizeof(n); i++)
		n = (long long)((unsigned long long)n << 8 | data[i]);
	event_add_str(o, "message", s);
	event_add_int(o, "seq", n);
	event_add_bool(o, "outgoing", size & 1);
	event_json_begin(&j, EVENT_BROADCAST);
	event_json_str(&j, "message", s);
	event_json_int(&j, "seq", n);
	event_json_bool(&j, "outgoing", size & 1);
	buf_append_char(&j.b, '}');
	if (strcmp(j.b.data,
	        json_object_to_json_string_ext(
	            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) != 0)
		abort();
	back = json_tokener_parse(j.b.data);
	if (back == NULL || !json_object_object_get_ex(back, "message", &v) ||
	    strcmp(json_object_get_string(v), s) != 0)
		abort();
	json_object_put(back);
	json_object_put(o);
	buf_fini(&j.b);
	free(s);
	return 0;
}
