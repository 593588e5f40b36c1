/* tui.h — the terminal front end: a full-screen ncursesw client on the
 * peer engine, in the style of irssi, WeeChat and catgirl.
 *
 * It reads the terminal through the engine's libuv loop (never blocking
 * it), renders the engine's events, and turns typed lines and keys into
 * engine commands. The terminal is restored when the engine quits, when
 * the process exits, and on a crash signal. While it runs, the process's
 * standard error goes to TUI_LOG_FILE in the data directory.
 */
#ifndef HYCHAT_TUI_H
#define HYCHAT_TUI_H

#include <uv.h>

#include "hychat/engine.h"

#define TUI_LOG_FILE "hychat.log" /* in the data directory */
#define TUI_HISTORY_FILE "input_history" /* typed lines, kept across restarts */

struct tui_config {
	int no_bell; /* no bell on a direct message or a mention */
	int need_login; /* no password was given: prompt for one */
	/* With --web: the web bridge's one-time address to open (a new one
	 * once used), shown at start and by /web; NULL without. */
	const char *(*web_url)(void *arg);
	void *web_arg;
};

struct tui;

/* Takes over the terminal (stdin and stdout must be one) and subscribes to
 * e's events; call before engine_start(). Returns NULL with *cause
 * (allocated) if the terminal cannot be used. */
struct tui *tui_new(uv_loop_t *loop, struct engine *e, const struct tui_config *cfg, char **cause);
/* Frees t; after the loop has ended (its handles close on "quit"). */
void tui_free(struct tui *t);

#endif
