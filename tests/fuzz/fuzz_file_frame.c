/* fuzz_file_frame.c — libFuzzer target for the file transfer frames
 * (file_frame.h): any bytes go to file_frame_parse(); what parses is
 * built again with file_frame_put() and must come out byte for byte the
 * same, and its views must lie inside the input. The name check and the
 * collision names run on the input too: a name the check accepts is
 * never empty, has no separator and never starts with a dot. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/file_frame.h"
#include "hychat/file_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
	if (p != NULL && ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct file_frame f;
	const char *err;
	struct buf b;
	char out[FILE_NAME_MAX + 32];

	if (file_frame_parse(data, size, &f, &err) == 0) {
		inside(f.text, f.text_len, data, size);
		inside(f.data, f.data_len, data, size);
		inside(f.hash, FILE_FRAME_HASH_BYTES, data, size);
		buf_init(&b);
		if (file_frame_put(&b, &f) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
			abort();
		buf_fini(&b);
		if (f.type == FILE_OFFER && file_name_check(f.text, f.text_len, &err) == 0) {
			if (f.text_len == 0 || f.text[0] == '.' ||
			    memchr(f.text, '/', f.text_len) != NULL ||
			    memchr(f.text, '\0', f.text_len) != NULL)
				abort();
			memcpy(out, f.text, f.text_len);
			out[f.text_len] = '\0';
			for (unsigned n = 0; n < FILE_NAME_TRIES; n += 333) {
				char cand[FILE_NAME_MAX + 32];
				if (file_name_candidate(out, n, cand, sizeof(cand)) != 0 ||
				    strchr(cand, '/') != NULL || cand[0] == '.')
					abort();
			}
		}
	} else if (err == NULL) {
		abort();
	}
	if (size > 0 && size <= FILE_NAME_MAX + 8 &&
	    file_name_check((const char *)data, size, &err) == 0 &&
	    (data[0] == '.' || memchr(data, '/', size) != NULL || memchr(data, '\\', size) != NULL))
		abort();
	return 0;
}
