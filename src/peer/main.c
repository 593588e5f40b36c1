/* main.c — hychat, the peer: the command line, the password, the signals,
 * then the engine and its front end on one loop. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/engine.h"
#include "hychat/headless.h"
#include "hychat/log.h"
#include "hychat/settings.h"
#ifdef HYCHAT_TUI
#include "hychat/tui.h"
#endif
#include "hychat/util.h"
#include "hychat/webbridge.h"

#define PEER_PASSWORD_MAX 1024
#define PEER_PASSWORD_ENV "HYCHAT_PASSWORD"
#define PEER_MALLOC_TRIM (8 * 1024 * 1024)

enum {
	OPT_USERNAME = 256,
	OPT_PEER_PORT,
	OPT_TRACKER,
	OPT_TRACKER_CA,
	OPT_TRACKER_PIN,
	OPT_ALLOW_INSECURE_TRACKER,
	OPT_DATA_DIR,
	OPT_PASSWORD_FILE,
	OPT_ALLOW_PLAINTEXT,
	OPT_AUTO_AWAY,
	OPT_CONFIG,
	OPT_HEADLESS,
	OPT_LISTEN,
	OPT_NO_BELL,
	OPT_WEB,
	OPT_WEB_LISTEN,
	OPT_WEB_ROOT,
};

static const struct option options[] = {
	{ "username", required_argument, NULL, OPT_USERNAME },
	{ "peer-port", required_argument, NULL, OPT_PEER_PORT },
	{ "tracker", required_argument, NULL, OPT_TRACKER },
	{ "tracker-ca", required_argument, NULL, OPT_TRACKER_CA },
	{ "tracker-pin", required_argument, NULL, OPT_TRACKER_PIN },
	{ "allow-insecure-tracker", no_argument, NULL, OPT_ALLOW_INSECURE_TRACKER },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "allow-plaintext", no_argument, NULL, OPT_ALLOW_PLAINTEXT },
	{ "auto-away", required_argument, NULL, OPT_AUTO_AWAY },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "headless", no_argument, NULL, OPT_HEADLESS },
	{ "no-bell", no_argument, NULL, OPT_NO_BELL },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "web", optional_argument, NULL, OPT_WEB },
	{ "web-listen", required_argument, NULL, OPT_WEB_LISTEN },
	{ "web-root", required_argument, NULL, OPT_WEB_ROOT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hychat [--username USER] [--peer-port PORT] [--tracker URL] [--data-dir DIR]\n"
	    "              [--tracker-ca FILE] [--tracker-pin sha256//BASE64]\n"
	    "              [--allow-insecure-tracker]\n"
	    "              [--password-file FILE] [--allow-plaintext] [--listen ADDR]\n"
	    "              [--headless] [--web [PORT]] [--web-listen ADDR:PORT] [--web-root DIR]\n"
	    "              [--no-bell] [--config FILE] [--verbose]\n"
	    "\n"
	    "  --username USER       who this peer is (default $USER)\n"
	    "  --peer-port PORT      the port other peers connect to (default: the first\n"
	    "                        free from %d)\n"
	    "  --tracker URL         the tracker (default %s); repeated or comma-separated,\n"
	    "                        trackers sharing one store, the next used when one fails\n"
	    "  --tracker-ca FILE     PEM CAs that vouch for an https:// tracker (default:\n"
	    "                        the system's)\n"
	    "  --tracker-pin sha256//BASE64  the tracker's public key must be this one\n"
	    "                        (alone: no CA needed; with --tracker-ca: both hold)\n"
	    "  --allow-insecure-tracker  send the password over plain http:// to a tracker\n"
	    "                        that is not on this machine\n"
	    "  --data-dir DIR        key, history, outbox (default $XDG_DATA_HOME/hychat/USER)\n"
	    "  --password-file FILE  log in at start with the first line of FILE\n"
	    "                        (or set %s)\n"
	    "  --allow-plaintext     talk to peers of the original, unencrypted protocol\n"
	    "  --auto-away MINUTES   away after MINUTES without input in any front end\n"
	    "  --listen ADDR         the address to listen on (default %s)\n"
	    "  --headless            commands on stdin, events on stdout (the default when\n"
	    "                        standard input or output is not a terminal)\n"
	    "  --no-bell             the terminal client does not ring on a direct message\n"
	    "                        or a mention\n"
	    "  --web [PORT]          serve the browser front end (default port: peer port + %d)\n"
	    "  --web-listen ADDR:PORT  its address instead of %s (implies --web)\n"
	    "  --web-root DIR        its files (default %s)\n"
	    "  --config FILE         the settings file (default\n"
	    "                        $XDG_CONFIG_HOME/hychat/hychat.conf); flags win over it\n"
	    "  --verbose             debug logs on stderr\n"
	    "  --help, --version\n",
	    ENGINE_DEFAULT_PORT, ENGINE_DEFAULT_TRACKER, PEER_PASSWORD_ENV, ENGINE_DEFAULT_LISTEN,
	    WEBBRIDGE_PORT_OFFSET, WEBBRIDGE_DEFAULT_ADDR, webbridge_default_root());
}

static void
settings_warn(void *arg, size_t line, const char *message)
{
	log_warn("%s:%zu: %s (line skipped)", (const char *)arg, line, message);
}

/* The settings file, then what the flags left unset taken from it. */
static struct settings *
load_settings(const char *path, struct engine_config *cfg, int username_flag)
{
	struct settings *s = settings_new();
	char *cause = NULL;
	const char *v;

	if (path != NULL && settings_load(s, path, settings_warn, (void *)path, &cause) < 0) {
		log_warn("%s: settings left at their defaults", cause);
		free(cause);
	}
	if (!username_flag && (v = settings_get(s, SETTING_USERNAME))[0] != '\0')
		cfg->username = v;
	if (cfg->tracker_url == NULL && (v = settings_get(s, SETTING_TRACKER))[0] != '\0')
		cfg->tracker_url = v;
	if (cfg->peer_port == 0)
		cfg->peer_port = (int)settings_get_int(s, SETTING_PEER_PORT);
	if (cfg->auto_away_minutes == 0)
		cfg->auto_away_minutes = (int)settings_get_int(s, SETTING_AUTO_AWAY);
	cfg->settings = s;
	cfg->settings_path = path;
	return s;
}

static char *
read_password(const char *path)
{
	char line[PEER_PASSWORD_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		log_fatal(1, "%s: %s", path, strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		log_fatal(1, "%s: empty", path);
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	if (n == 0 || n > PEER_PASSWORD_MAX)
		log_fatal(1, "%s: the first line must hold 1 to %d bytes", path, PEER_PASSWORD_MAX);
	line[n] = '\0';
	char *p = xstrdup(line);
	sodium_memzero(line, sizeof(line));
	return p;
}

struct peer_main {
	struct engine *engine;
	uv_signal_t sigint, sigterm;
};

static void
on_signal(uv_signal_t *s, int signum)
{
	struct peer_main *m = s->data;

	log_info("%s: stopping", strsignal(signum));
	engine_stop(m->engine);
}

static void
on_event(const struct event *ev, void *arg)
{
	struct peer_main *m = arg;

	if (ev->type != EVENT_QUIT)
		return;
	uv_close((uv_handle_t *)&m->sigint, NULL);
	uv_close((uv_handle_t *)&m->sigterm, NULL);
}

#ifdef HYCHAT_TUI
static const char *
web_login_url(void *arg)
{
	return webbridge_login_url(arg);
}
#endif

/* --tracker, repeated: the URLs joined with commas, as the client takes
 * them. */
static void
tracker_add(struct buf *b, const char *url)
{
	if (b->len > 0)
		buf_append_char(b, ',');
	buf_append_str(b, url);
}

int
main(int argc, char **argv)
{
	struct engine_config cfg = { 0 };
	struct peer_main m = { 0 };
	static struct buf trackers; /* static: alive for every exit path */
	char *password = NULL, *cause = NULL;
	enum log_level level = LOG_INFO;
	struct headless *h = NULL;
	int headless = 0, no_bell = 0, need_login, username_flag = 0;
	struct settings *settings;
	char *settings_path = NULL;
#ifdef HYCHAT_TUI
	struct tui *tui = NULL;
#endif
	struct webbridge_config web = { 0 };
	struct webbridge *wb = NULL;
	char web_host[256];
	int web_on = 0;
	uv_loop_t loop;
	struct passwd *pw;
	int c;

	/* SQLite frees a statement journal after each write; glibc would hand
	 * the heap top back every time, and a brk() that shrinks costs a TLB
	 * flush on every core. */
	mallopt(M_TRIM_THRESHOLD, PEER_MALLOC_TRIM);
	log_init("hychat", LOG_INFO);
	cfg.username = getenv("USER");
	buf_init(&trackers);
	if (cfg.username == NULL && (pw = getpwuid(getuid())) != NULL)
		cfg.username = pw->pw_name; /* a container's root has no $USER */
	while ((c = getopt_long(argc, argv, "hvV", options, NULL)) != -1) {
		switch (c) {
		case OPT_USERNAME:
			cfg.username = optarg;
			username_flag = 1;
			break;
		case OPT_CONFIG:
			free(settings_path);
			settings_path = xstrdup(optarg);
			break;
		case OPT_PEER_PORT:
			cfg.peer_port = (int)log_flag_number("--peer-port", optarg, 1, 65535);
			break;
		case OPT_TRACKER: tracker_add(&trackers, optarg); break;
		case OPT_TRACKER_CA:
			/* Read by libcurl at each connection: unreadable is said now. */
			if (access(optarg, R_OK) != 0)
				log_fatal(2, "--tracker-ca: %s: %s", optarg, strerror(errno));
			cfg.tracker_ca = optarg;
			break;
		case OPT_TRACKER_PIN: cfg.tracker_pin = optarg; break;
		case OPT_ALLOW_INSECURE_TRACKER: cfg.allow_insecure_tracker = 1; break;
		case OPT_DATA_DIR: cfg.data_dir = optarg; break;
		case OPT_PASSWORD_FILE:
			free(password);
			password = read_password(optarg);
			break;
		case OPT_ALLOW_PLAINTEXT: cfg.allow_plaintext = 1; break;
		case OPT_AUTO_AWAY:
			cfg.auto_away_minutes = (int)log_flag_number(
			    "--auto-away", optarg, 1, ENGINE_AUTO_AWAY_MAX_MINUTES);
			break;
		case OPT_HEADLESS: headless = 1; break;
		case OPT_NO_BELL: no_bell = 1; break;
		case OPT_LISTEN: cfg.listen_host = optarg; break;
		case OPT_WEB:
			web_on = 1;
			if (optarg == NULL && optind < argc && argv[optind][0] >= '0' &&
			    argv[optind][0] <= '9')
				optarg = argv[optind++];
			if (optarg != NULL)
				web.port = (int)log_flag_number("--web", optarg, 1, 65535);
			break;
		case OPT_WEB_LISTEN: {
			const char *why;
			web_on = 1;
			if (hy_parse_hostport(optarg, web_host, sizeof(web_host), &web.port, &why) <
			    0)
				log_fatal(2, "--web-listen: %s: %s", optarg, why);
			web.addr = web_host;
			break;
		}
		case OPT_WEB_ROOT: web.root = optarg; break;
		case 'v': level = LOG_DEBUG; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hychat %s\n", HYCHAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (settings_path == NULL)
		settings_path = settings_default_path();
	settings = load_settings(settings_path, &cfg, username_flag);
	if (cfg.username == NULL)
		log_fatal(2, "--username is required: no $USER and no name for this uid");
	log_init("hychat", level);
	if (password == NULL && getenv(PEER_PASSWORD_ENV) != NULL) {
		password = xstrdup(getenv(PEER_PASSWORD_ENV));
		unsetenv(PEER_PASSWORD_ENV);
	}
	cfg.password = password;
	if (trackers.len > 0)
		cfg.tracker_url = trackers.data;
	need_login = password == NULL;
	if (sodium_init() < 0)
		log_fatal(1, "libsodium: cannot initialise");
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0)
		log_fatal(1, "libuv: cannot make a loop");
	if ((m.engine = engine_new(&loop, &cfg, &cause)) == NULL)
		log_fatal(1, "%s", cause);
	if (password != NULL) {
		sodium_memzero(password, strlen(password));
		free(password);
	}
	if (web_on) {
		web.peer_port = engine_peer_port(m.engine);
		if ((wb = webbridge_new(&loop, m.engine, &web, &cause)) == NULL)
			log_fatal(1, "%s", cause);
		if (web.addr != NULL && !webbridge_addr_is_loopback(web.addr))
			log_warn("web bridge: listening on %s, not loopback: any host that reaches "
			         "it can try the page",
			    web.addr);
		/* The first word after "web bridge: " is the URL, for scripts. */
		log_info("web bridge: %s (open it once; also in %s)", webbridge_login_url(wb),
		    webbridge_url_file(wb));
		if (webbridge_socket_path(wb) != NULL)
			log_info("web bridge: also on the Unix socket %s, for your own tools",
			    webbridge_socket_path(wb));
	}
	/* On a terminal, the full-screen client; otherwise the line protocol. */
	if (!headless && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
#ifdef HYCHAT_TUI
		struct tui_config tc = { .no_bell = no_bell,
			.need_login = need_login,
			.web_url = wb != NULL ? web_login_url : NULL,
			.web_arg = wb };
		if ((tui = tui_new(&loop, m.engine, &tc, &cause)) == NULL) {
			log_warn("%s: running headless", cause);
			free(cause);
			headless = 1;
		}
#else
		(void)no_bell;
		(void)need_login;
		log_warn("built without ncursesw: no terminal client, running headless");
		headless = 1;
#endif
	} else {
		headless = 1;
	}
	if (headless && (h = headless_new(&loop, m.engine, &cause)) == NULL)
		log_fatal(1, "%s", cause);
	event_subscribe(engine_events(m.engine), on_event, &m);
	uv_signal_init(&loop, &m.sigint);
	uv_signal_init(&loop, &m.sigterm);
	m.sigint.data = m.sigterm.data = &m;
	uv_signal_start(&m.sigint, on_signal, SIGINT);
	uv_signal_start(&m.sigterm, on_signal, SIGTERM);
	engine_start(m.engine);
	uv_run(&loop, UV_RUN_DEFAULT);
	headless_free(h);
#ifdef HYCHAT_TUI
	tui_free(tui);
#endif
	webbridge_free(wb);
	engine_free(m.engine);
	settings_free(settings);
	free(settings_path);
	if (uv_loop_close(&loop) != 0)
		log_warn("loop closed with handles open");
	buf_fini(&trackers);
	return 0;
}
