/* fuzz_settings.c — libFuzzer target for the settings file's parser: any
 * bytes, and what it keeps must pass the checks again and save. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings *s = settings_new(), *t = settings_new();
	char err[SETTINGS_ERR_MAX];

	settings_parse(s, (const char *)data, size, NULL, NULL);
	/* What was kept is a value the checks take again, unchanged. */
	for (int i = 0; i < SETTING_COUNT; i++) {
		const char *v = settings_get(s, i);
		if (settings_set(t, i, v, err) != 0 || strcmp(settings_get(t, i), v) != 0)
			abort();
		if (strchr(v, '\n') != NULL)
			abort();
	}
	settings_free(s);
	settings_free(t);
	return 0;
}
