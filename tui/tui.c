/* tui.c — the terminal's life: taken over at start, read through a
 * uv_poll_t on the loop, resized on SIGWINCH, redrawn once per turn of the
 * loop when something changed, and given back as it was on exit, on
 * Ctrl-C, on SIGTERM or SIGHUP, and on a crash signal. */
#include "hychat/tui.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "hychat/command.h"
#include "hychat/event.h"
#include "hychat/log.h"
#include "hychat/settings.h"
#include "tui_internal.h"

/* What a crash handler may write: no allocation, no stdio. */
#define TERM_RESET "\033[?2004l\033[0m\033[?25h\033[?1049l\033[23;0t\r\n"
#define PASTE_ON "\033[?2004h"
#define PASTE_OFF "\033[?2004l"
#define TITLE_PUSH "\033[22;0t"
#define TITLE_POP "\033[23;0t"
#define TITLE_MAX 200

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

/* The terminal as it was, for the crash handler and atexit. */
static struct termios saved_tio;
static int saved_tio_ok;
static volatile sig_atomic_t term_active;
static int term_saved_stderr = -1;
static SCREEN *screen;
static FILE *screen_in;

static void
write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

static void
restore_stderr(void)
{
	if (term_saved_stderr >= 0) {
		dup2(term_saved_stderr, STDERR_FILENO);
		close(term_saved_stderr);
		term_saved_stderr = -1;
	}
}

/* The one way back to the terminal as it was, outside signal handlers. */
static void
restore_terminal(void)
{
	if (!term_active)
		return;
	term_active = 0;
	endwin();
	write_all(STDOUT_FILENO, PASTE_OFF TITLE_POP, strlen(PASTE_OFF TITLE_POP));
	if (saved_tio_ok)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
	/* Standard error stays in the log until tui_free(): the engine logs
	 * its last words after the screen is gone. */
}

static void
on_crash(int sig)
{
	static const char msg[] = "hychat: crashed; the log is in the data directory\n";

	if (term_active) {
		term_active = 0;
		write_all(STDOUT_FILENO, TERM_RESET, strlen(TERM_RESET));
		if (saved_tio_ok)
			tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		if (term_saved_stderr >= 0)
			write_all(term_saved_stderr, msg, strlen(msg));
	}
	/* SA_RESETHAND put the default action back: die of the signal. */
	raise(sig);
}

static void
at_exit(void)
{
	restore_terminal();
	restore_stderr();
}

static void
on_redraw(uv_idle_t *i)
{
	struct tui *t = i->data;

	uv_idle_stop(i);
	if (t->closing)
		return;
	tui_draw(t);
	if (t->timing && t->key_ns != 0) {
		log_info("tui: key to screen %.3f ms", (double)(uv_hrtime() - t->key_ns) / 1e6);
		t->key_ns = 0;
	}
}

void
tui_dirty(struct tui *t)
{
	if (!t->closing)
		uv_idle_start(&t->redraw, on_redraw);
}

void
tui_title(struct tui *t)
{
	char title[TITLE_MAX];
	size_t waiting = 0, n;
	const char *who = NULL;

	for (size_t i = 0; i < t->nconvs; i++) {
		struct tui_conv *c = t->convs[i];
		if (i != t->cur && (c->mention || (!c->channel && c->unread > 0))) {
			waiting++;
			who = c->name;
		}
	}
	if (waiting > 0)
		n = (size_t)snprintf(title, sizeof(title),
		    "\033]2;hychat: %s (%zu waiting: %s)\007", engine_username(t->e), waiting, who);
	else
		n = (size_t)snprintf(
		    title, sizeof(title), "\033]2;hychat: %s\007", engine_username(t->e));
	if (n >= sizeof(title) || t->closing || !term_active)
		return;
	/* Between two doupdate()s ncurses holds no unsent output. */
	write_all(STDOUT_FILENO, title, n);
}

void
tui_alert(struct tui *t, struct tui_conv *c)
{
	if (!t->cfg.no_bell && strcmp(engine_setting(t->e, SETTING_NOTIFY), "off") != 0)
		beep();
	tui_title(t);
	(void)c;
}

static void
on_notice_timeout(uv_timer_t *timer)
{
	struct tui *t = timer->data;

	t->notice[0] = '\0';
	tui_dirty(t);
}

void
tui_notice(struct tui *t, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->notice, sizeof(t->notice), fmt, ap);
	va_end(ap);
	for (char *p = t->notice; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	t->notice_error = error;
	if (!t->closing)
		uv_timer_start(&t->notice_timer, on_notice_timeout, TUI_NOTICE_MS, 0);
	tui_dirty(t);
}

static void
on_list_timer(uv_timer_t *timer)
{
	struct tui *t = timer->data;

	/* Once, after a burst of changes: the engine pushes presence, the
	 * terminal never polls. */
	tui_conv_refresh_peers(t);
}

void
tui_ask(struct tui *t, const char *label, struct event_origin *saved)
{
	struct event_bus *bus = engine_events(t->e);
	struct event_origin o = { .owner = t };

	*saved = *event_origin_get(bus);
	snprintf(o.label, sizeof(o.label), "%s", label);
	event_origin_set(bus, &o);
}

void
tui_asked(struct tui *t, const struct event_origin *saved)
{
	event_origin_set(engine_events(t->e), saved);
}

void
tui_refresh_soon(struct tui *t)
{
	if (!t->closing)
		uv_timer_start(&t->list_timer, on_list_timer, TUI_LIST_SOON_MS, 0);
}

static void
on_start(uv_timer_t *timer)
{
	struct event_origin saved;
	struct tui *t = timer->data;

	/* The engine has started: its channels are known. */
	tui_ask(t, TUI_LABEL_QUIET, &saved);
	engine_conversations(t->e);
	engine_contacts(t->e);
	engine_transfers(t->e); /* those of earlier runs, resumed */
	tui_asked(t, &saved);
	if (t->nconvs > 0 && !tui_conv_current(t)->loaded)
		tui_conv_select(t, 0);
	tui_title(t);
	if (t->cfg.web_url != NULL)
		tui_web_url(t);
	tui_dirty(t);
}

static void
on_input(uv_poll_t *p, int status, int events)
{
	struct tui *t = p->data;
	wint_t wc;
	int rc;

	if (status < 0) {
		log_error("terminal: %s", uv_strerror(status));
		tui_quit(t);
		return;
	}
	if (t->timing)
		t->key_ns = uv_hrtime();
	while (!t->closing && (rc = wget_wch(stdscr, &wc)) != ERR) {
		if (rc == KEY_CODE_YES && wc == KEY_RESIZE)
			continue;
		/* The user is here: the engine's auto-away clock restarts. */
		engine_input(t->e);
		tui_key(t, (int)wc, rc == KEY_CODE_YES);
	}
	/* An Escape with nothing after it was the Escape key itself. */
	if (!t->closing && t->meta) {
		t->meta = 0;
		tui_key(t, TUI_KEY_ESC, 1);
	}
}

/* Takes the terminal's size now; returns 1 if it changed. */
static int
take_size(struct tui *t)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0 ||
	    (ws.ws_row == LINES && ws.ws_col == COLS))
		return 0;
	resizeterm(ws.ws_row, ws.ws_col);
	clearok(curscr, TRUE);
	tui_draw_layout(t);
	tui_dirty(t);
	return 1;
}

static void
on_resize_settled(uv_timer_t *timer)
{
	take_size(timer->data);
}

static void
on_winch(uv_signal_t *s, int signum)
{
	struct tui *t = s->data;

	take_size(t);
	/* A terminal may change its height and width in two steps: look
	 * again once the signals have settled. */
	uv_timer_start(&t->resize_timer, on_resize_settled, TUI_RESIZE_SETTLE_MS, 0);
}

static void
on_hup(uv_signal_t *s, int signum)
{
	struct tui *t = s->data;

	engine_stop(t->e);
}

void
tui_suspend(struct tui *t)
{
	/* The terminal as the shell wants it, then stop as a shell's job;
	 * execution resumes here on SIGCONT. */
	endwin();
	write_all(STDOUT_FILENO, PASTE_OFF, strlen(PASTE_OFF));
	kill(getpid(), SIGTSTP);
	write_all(STDOUT_FILENO, PASTE_ON, strlen(PASTE_ON));
	take_size(t);
	clearok(curscr, TRUE);
	tui_dirty(t);
}

void
tui_quit(struct tui *t)
{
	if (t->closing)
		return;
	tui_conv_mark_all(t);
	engine_quit(t->e);
}

static void
on_closed(uv_handle_t *h)
{
	struct tui *t = h->data;

	t->handles--;
}

void
tui_close(struct tui *t)
{
	uv_handle_t *hs[] = { (uv_handle_t *)&t->in, (uv_handle_t *)&t->winch,
		(uv_handle_t *)&t->hup, (uv_handle_t *)&t->redraw, (uv_handle_t *)&t->start,
		(uv_handle_t *)&t->list_timer, (uv_handle_t *)&t->notice_timer,
		(uv_handle_t *)&t->resize_timer };

	if (t->closing)
		return;
	t->closing = 1;
	event_unsubscribe(engine_events(t->e), tui_event, t);
	for (size_t i = 0; i < HY_ARRAY_LEN(hs); i++) {
		hs[i]->data = t;
		uv_close(hs[i], on_closed);
	}
	restore_terminal();
}

/* Makes sure wide characters are read and written as UTF-8. */
static void
utf8_locale(void)
{
	setlocale(LC_ALL, "");
	if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0 && setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		log_warn("no UTF-8 locale: text beyond ASCII may show wrongly");
}

static int
open_terminal(struct tui *t, char **cause)
{
	struct sigaction sa;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		*cause =
		    xstrdup("the terminal client needs a terminal on standard input and output");
		return -1;
	}
	utf8_locale();
	saved_tio_ok = tcgetattr(STDIN_FILENO, &saved_tio) == 0;
	/* A file description of our own: the loop makes it non-blocking, and
	 * the shell's (shared with standard output) must stay as it was. */
	t->in_fd = open("/proc/self/fd/0", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (t->in_fd < 0)
		t->in_fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (t->in_fd < 0 || (screen_in = fdopen(t->in_fd, "r")) == NULL) {
		*cause = xstrdup("terminal: cannot open it for reading");
		if (t->in_fd >= 0)
			close(t->in_fd);
		return -1;
	}
	if ((screen = newterm(NULL, stdout, screen_in)) == NULL) {
		*cause = xstrdup("terminal: $TERM is not a terminal type ncurses knows");
		fclose(screen_in);
		return -1;
	}
	set_term(screen);
	term_active = 1;
	if (tigetstr("cup") == NULL || tigetstr("cup") == (char *)-1) {
		/* TERM=dumb, an editor's shell: no full screen there. */
		restore_terminal();
		delscreen(screen);
		screen = NULL;
		fclose(screen_in);
		screen_in = NULL;
		*cause = xstrdup("terminal: $TERM cannot move the cursor");
		return -1;
	}
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(TUI_ESC_DELAY_MS);
	define_key("\033[200~", TUI_KEY_PASTE_BEGIN);
	define_key("\033[201~", TUI_KEY_PASTE_END);
	define_key("\033[1;3D", TUI_KEY_ALT_LEFT);
	define_key("\033[1;3C", TUI_KEY_ALT_RIGHT);
	define_key("\033[1;5D", TUI_KEY_CTRL_LEFT);
	define_key("\033[1;5C", TUI_KEY_CTRL_RIGHT);
	t->color = has_colors() && (getenv("NO_COLOR") == NULL || getenv("NO_COLOR")[0] == '\0') &&
	    strcmp(engine_setting(t->e, SETTING_COLOR), "on") == 0;
	if (t->color) {
		start_color();
		use_default_colors();
		tui_draw_colors(t);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sa.sa_flags = (int)SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < HY_ARRAY_LEN(crash_signals); i++)
		sigaction(crash_signals[i], &sa, NULL);
	atexit(at_exit);
	refresh();
	write_all(STDOUT_FILENO, PASTE_ON TITLE_PUSH, strlen(PASTE_ON TITLE_PUSH));
	return 0;
}

/* Logs would scribble over the screen: they go to a file meanwhile. */
static void
redirect_stderr(struct engine *e)
{
	struct buf path;
	int fd;

	buf_init(&path);
	buf_printf(&path, "%s/%s", engine_data_dir(e), TUI_LOG_FILE);
	fd = open(path.data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	buf_fini(&path);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	term_saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

struct tui *
tui_new(uv_loop_t *loop, struct engine *e, const struct tui_config *cfg, char **cause)
{
	struct tui *t = xcalloc(1, sizeof(*t));
	struct buf path;

	t->loop = loop;
	t->e = e;
	t->cfg = *cfg;
	t->in_fd = -1;
	t->timing = getenv("HYCHAT_TUI_TIMING") != NULL;
	snprintf(t->tracker, sizeof(t->tracker), "offline");
	t->tracker_tls = 1; /* until the engine's first tracker event says */
	if (open_terminal(t, cause) < 0) {
		free(t);
		return NULL;
	}
	if (uv_poll_init(loop, &t->in, t->in_fd) != 0) {
		restore_terminal();
		*cause = xstrdup("terminal: cannot watch it on the loop");
		free(t);
		return NULL;
	}
	redirect_stderr(e);
	buf_init(&path);
	buf_printf(&path, "%s/%s", engine_data_dir(e), TUI_HISTORY_FILE);
	tui_input_init(&t->input, path.data);
	buf_fini(&path);
	t->mode = cfg->need_login ? TUI_LOGIN : TUI_NORMAL;
	t->in.data = t;
	uv_poll_start(&t->in, UV_READABLE, on_input);
	uv_signal_init(loop, &t->winch);
	t->winch.data = t;
	uv_signal_start(&t->winch, on_winch, SIGWINCH);
	uv_signal_init(loop, &t->hup);
	t->hup.data = t;
	uv_signal_start(&t->hup, on_hup, SIGHUP);
	uv_idle_init(loop, &t->redraw);
	t->redraw.data = t;
	uv_timer_init(loop, &t->start);
	t->start.data = t;
	uv_timer_start(&t->start, on_start, 0, 0);
	uv_timer_init(loop, &t->list_timer);
	t->list_timer.data = t;
	uv_timer_init(loop, &t->notice_timer);
	t->notice_timer.data = t;
	uv_timer_init(loop, &t->resize_timer);
	t->resize_timer.data = t;
	t->handles = 8;
	tui_draw_layout(t);
	event_subscribe(engine_events(e), tui_event, t);
	if (tui_commands(t) < 0)
		log_error("tui: its commands clash with the engine's");
	tui_dirty(t);
	return t;
}

void
tui_free(struct tui *t)
{
	if (t == NULL)
		return;
	if (t->handles != 0)
		log_error("tui: freed with %d handles open", t->handles);
	command_unregister(t->e, t);
	restore_terminal();
	restore_stderr();
	for (size_t i = 0; i < t->nconvs; i++)
		tui_conv_free(t->convs[i]);
	free(t->convs);
	free(t->peers);
	free(t->contacts);
	tui_input_fini(&t->input);
	if (t->password != NULL) {
		explicit_bzero(t->password, strlen(t->password));
		free(t->password);
	}
	free(t->confirm_text);
	free(t->search_text);
	if (screen != NULL) {
		delscreen(screen);
		screen = NULL;
	}
	if (screen_in != NULL) {
		fclose(screen_in);
		screen_in = NULL;
	}
	free(t);
}
