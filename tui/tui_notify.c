/* tui_notify.c — desktop notifications: with the setting notify =
 * desktop, a direct message or a highlight in a conversation not shown
 * runs notify-send(1), when it is installed, through uv_spawn: never
 * waited for, its output discarded, at most TUI_NOTIFY_MAX at once. The
 * text came from the network: it goes as one argument after "--", never
 * through a shell, cut to TUI_NOTIFY_TEXT_MAX bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/log.h"
#include "hychat/settings.h"
#include "tui_internal.h"

#define TUI_NOTIFY_PROGRAM "notify-send"
#define TUI_NOTIFY_MAX 4 /* notify-send processes at once; more are dropped */
#define TUI_NOTIFY_TEXT_MAX 200 /* bytes of the message shown */

/* Every client of the process shares one bound: the callbacks outlive
 * no tui, since they touch nothing but this count and the handle. */
static int in_flight;

/* notify-send's path, found once in $PATH; "" if it is not there. */
static const char *
program(void)
{
	static char path[4096];
	static int looked;
	const char *dirs = getenv("PATH");

	if (looked)
		return path;
	looked = 1;
	while (dirs != NULL && *dirs != '\0') {
		size_t n = strcspn(dirs, ":");
		if (n > 0 && n + sizeof(TUI_NOTIFY_PROGRAM) + 1 < sizeof(path)) {
			snprintf(path, sizeof(path), "%.*s/%s", (int)n, dirs, TUI_NOTIFY_PROGRAM);
			if (access(path, X_OK) == 0)
				return path;
		}
		dirs += n + (dirs[n] == ':');
	}
	path[0] = '\0';
	return path;
}

static void
on_closed(uv_handle_t *h)
{
	free(h);
}

static void
on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
	(void)status;
	(void)signal;
	in_flight--;
	uv_close((uv_handle_t *)p, on_closed);
}

int
tui_notify_desktop(struct tui *t, const char *conv, const char *from, const char *text)
{
	char title[HY_CHANNEL_MAX + HY_NAME_MAX + 16], body[TUI_NOTIFY_TEXT_MAX + 4];
	const char *prog = program();
	uv_process_options_t o;
	uv_stdio_container_t io[3];
	uv_process_t *p;
	size_t n = strlen(text);
	int rc;

	if (prog[0] == '\0' || in_flight >= TUI_NOTIFY_MAX)
		return -1;
	if (n > TUI_NOTIFY_TEXT_MAX) {
		n = TUI_NOTIFY_TEXT_MAX;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--;
	}
	snprintf(
	    body, sizeof(body), "%.*s%s", (int)n, text, n < strlen(text) ? "\xe2\x80\xa6" : "");
	if (conv[0] == '#')
		snprintf(title, sizeof(title), "%s in %s", from, conv);
	else
		snprintf(title, sizeof(title), "%s", from);
	char *args[] = { (char *)prog, "--app-name=hychat", "--", title, body, NULL };
	memset(&o, 0, sizeof(o));
	memset(io, 0, sizeof(io));
	for (int i = 0; i < 3; i++)
		io[i].flags = UV_IGNORE;
	o.file = prog;
	o.args = args;
	o.exit_cb = on_exit_cb;
	o.stdio = io;
	o.stdio_count = 3;
	p = xcalloc(1, sizeof(*p));
	if ((rc = uv_spawn(t->loop, p, &o)) != 0) {
		log_warn("%s: %s", prog, uv_strerror(rc));
		uv_close((uv_handle_t *)p, on_closed);
		return -1;
	}
	in_flight++;
	return 0;
}
