/* main.c — hychat-httpd: the command line, then the web app on the
 * HTTP server. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/http_listen.h"
#include "hychat/log.h"
#include "hychat/webapp.h"

#define HTTPD_DEFAULT_HOST "0.0.0.0"
#define HTTPD_DEFAULT_PORT 9000
#define HTTPD_SWEEP_MS 60000
/* two years, as hstspreload.org asks; subdomains are not ours to bind */
#define HTTPD_HSTS "Strict-Transport-Security: max-age=63072000\r\n"
#define DEMO_USER "admin"
#define DEMO_PASSWORD "password"

enum {
	OPT_LISTEN = 256,
	OPT_SERVER_IP,
	OPT_SERVER_PORT,
	OPT_ADD_USER,
	OPT_SESSION_TTL,
	OPT_HEADER_TIMEOUT,
	OPT_BODY_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_CONNS,
	OPT_GUARD, /* one of LOGIN_GUARD_OPTIONS */
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_PLAIN_LISTEN,
};

static const struct option options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "server-ip", required_argument, NULL, OPT_SERVER_IP },
	{ "server-port", required_argument, NULL, OPT_SERVER_PORT },
	{ "root", required_argument, NULL, 'r' },
	{ "users", required_argument, NULL, 'u' },
	{ "workers", required_argument, NULL, 'w' },
	{ "add-user", required_argument, NULL, OPT_ADD_USER },
	{ "session-ttl", required_argument, NULL, OPT_SESSION_TTL },
	{ "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
	{ "body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
/* clang-format off */
#define GUARD_OPTION(field, flag, def, min, max, help) { flag, required_argument, NULL, OPT_GUARD },
	LOGIN_GUARD_OPTIONS(GUARD_OPTION)
#undef GUARD_OPTION
	/* clang-format on */
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "plain-listen", required_argument, NULL, OPT_PLAIN_LISTEN },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hychat-httpd [--listen HOST:PORT] [--root DIR] [--users FILE] [--workers N]\n"
	    "                    [--session-ttl SECONDS] [--quiet]\n"
	    "                    [--tls-cert FILE --tls-key FILE] [--plain-listen HOST:PORT]\n"
	    "       hychat-httpd [--users FILE] --add-user NAME   (password on stdin)\n"
	    "\n"
	    "  --listen HOST:PORT      address to serve, repeatable; TLS with --tls-cert\n"
	    "                          (default %s:%d)\n"
	    "  --tls-cert FILE         certificate chain (PEM): every --listen speaks TLS\n"
	    "  --tls-key FILE          its private key (PEM, mode 0600 or stricter)\n"
	    "  --plain-listen HOST:PORT   a plain HTTP address besides, repeatable\n"
	    "  --server-ip IP, --server-port PORT   the same, spelled as the original\n"
	    "  --root DIR              the site (default: the bundled demo site)\n"
	    "  --users FILE            users file of Argon2id hashes (default: the demo's)\n"
	    "  --workers N             event loops sharing the port (default 1)\n"
	    "  --session-ttl SECONDS   session lifetime (default %d)\n"
	    "  --header-timeout MS     time to send a request head (default %d)\n"
	    "  --body-timeout MS       longest pause inside a request body (default %d)\n"
	    "  --idle-timeout MS       keep-alive time between requests (default %d)\n"
	    "  --max-conns N           connections at once; more get 503 (default %d)\n"
	    "  --add-user NAME         set NAME's password from stdin in the users file\n"
	    "  --quiet                 no access log\n"
	    "  --help, --version\n"
	    "\n"
	    "throttling of POST /login (a burst of 0 turns a bucket off):\n",
	    HTTPD_DEFAULT_HOST, HTTPD_DEFAULT_PORT, WEBAPP_SESSION_TTL_S, HTTP_HEADER_TIMEOUT_MS,
	    HTTP_BODY_TIMEOUT_MS, HTTP_IDLE_TIMEOUT_MS, HTTP_MAX_CONNS);
#define GUARD_USAGE(field, flag, def, min, max, help) \
	fprintf(f, "  --%-24s %s (default %d)\n", flag " N", help, def);
	LOGIN_GUARD_OPTIONS(GUARD_USAGE)
#undef GUARD_USAGE
}

/* The bundled demo files: the source tree when run from a build, else
 * the installed data directory. */
static const char *
demo_path(const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", HYCHAT_SOURCE_DIR, name);
	if (access(out, R_OK) == 0)
		return out;
	snprintf(out, outsz, "%s/%s", HYCHAT_DATA_DIR, name);
	return out;
}

static int
add_user(const char *path, const char *name)
{
	char pw[USERS_MAX_PASSWORD + 2];
	char *cause = NULL;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password for %s: ", name);
	if (fgets(pw, sizeof(pw), stdin) == NULL)
		log_fatal(1, "no password on standard input");
	pw[strcspn(pw, "\r\n")] = '\0';
	if (pw[0] == '\0')
		log_fatal(1, "empty password");
	struct users *u = users_load(path, &cause);
	if (u == NULL)
		log_fatal(1, "%s: %s", path, cause);
	int rc = users_set(u, path, name, pw, &cause);
	sodium_memzero(pw, sizeof(pw));
	users_free(u);
	if (rc < 0)
		log_fatal(1, "%s: %s", path, cause);
	fprintf(stderr, "hychat-httpd: password of %s set in %s\n", name, path);
	return 0;
}

static struct sessions *sessions;
static uv_timer_t sweep_timer;

static void
sweep_cb(uv_timer_t *t)
{
	(void)t;
	sessions_sweep(sessions, hy_now_ms());
}

static void
worker_init(int worker, uv_loop_t *loop, void *arg)
{
	(void)arg;
	if (worker != 0)
		return;
	uv_timer_init(loop, &sweep_timer);
	uv_timer_start(&sweep_timer, sweep_cb, HTTPD_SWEEP_MS, HTTPD_SWEEP_MS);
}

static void
worker_fini(int worker, uv_loop_t *loop, void *arg)
{
	(void)loop;
	(void)arg;
	if (worker == 0)
		uv_close((uv_handle_t *)&sweep_timer, NULL);
}

int
main(int argc, char **argv)
{
	struct http_server_config cfg;
	static struct http_listen_set ls;
	char host[256] = HTTPD_DEFAULT_HOST, rootbuf[4096], usersbuf[4096];
	const char *root = NULL, *users_path = NULL, *adduser = NULL, *err = NULL;
	char *cause = NULL;
	int port = HTTPD_DEFAULT_PORT, quiet = 0, opt, index = 0;
	long ttl = WEBAPP_SESSION_TTL_S;
	struct login_guard_config gc;

	log_init("hychat-httpd", LOG_INFO);
	http_server_config_defaults(&cfg);
	login_guard_defaults(&gc);
	while ((opt = getopt_long(argc, argv, "r:u:w:qhV", options, &index)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
		case OPT_PLAIN_LISTEN:
			http_listen_add(
			    &ls, optarg, opt == OPT_PLAIN_LISTEN, host, sizeof(host), &port);
			break;
		case OPT_TLS_CERT: ls.cert = optarg; break;
		case OPT_TLS_KEY: ls.key = optarg; break;
		case OPT_SERVER_IP: snprintf(host, sizeof(host), "%s", optarg); break;
		case OPT_SERVER_PORT:
			port = (int)log_flag_number("--server-port", optarg, 0, 65535);
			break;
		case 'r': root = optarg; break;
		case 'u': users_path = optarg; break;
		case 'w':
			cfg.workers =
			    (int)log_flag_number("--workers", optarg, 1, HTTP_MAX_WORKERS);
			break;
		case OPT_ADD_USER: adduser = optarg; break;
		case OPT_SESSION_TTL:
			ttl = log_flag_number("--session-ttl", optarg, 1, 86400 * 365);
			break;
		case OPT_HEADER_TIMEOUT:
			cfg.header_timeout_ms =
			    (uint64_t)log_flag_number("--header-timeout", optarg, 1, 3600000);
			break;
		case OPT_BODY_TIMEOUT:
			cfg.body_timeout_ms =
			    (uint64_t)log_flag_number("--body-timeout", optarg, 1, 3600000);
			break;
		case OPT_IDLE_TIMEOUT:
			cfg.idle_timeout_ms =
			    (uint64_t)log_flag_number("--idle-timeout", optarg, 1, 3600000);
			break;
		case OPT_MAX_CONNS:
			cfg.max_conns = (size_t)log_flag_number("--max-conns", optarg, 1, 1000000);
			break;
		case OPT_GUARD:
			if (login_guard_option(&gc, options[index].name, optarg, &cause) < 0)
				log_fatal(2, "--%s %s: %s", options[index].name, optarg, cause);
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hychat-httpd %s\n", HYCHAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		log_fatal(1, "libsodium failed to initialise");
	if (users_path == NULL)
		users_path = demo_path("config/httpd-users", usersbuf, sizeof(usersbuf));
	if (adduser != NULL)
		return add_user(users_path, adduser);
	http_listen_apply(&ls, &cfg, host, port);
	if (root == NULL)
		root = demo_path("www", rootbuf, sizeof(rootbuf));

	struct http_static *files = http_static_new(root, &cause);
	if (files == NULL)
		log_fatal(1, "--root %s: %s", root, cause);
	struct users *users = users_load(users_path, &cause);
	if (users == NULL)
		log_fatal(1, "--users %s: %s", users_path, cause);
	if (users_count(users) == 0)
		log_warn("%s has no users: nobody can log in (add one with --add-user NAME)",
		    users_path);
	if (users_verify(users, DEMO_USER, DEMO_PASSWORD))
		log_warn("demo credentials are active (%s/%s): set a real password with "
		         "--users FILE --add-user %s",
		    DEMO_USER, DEMO_PASSWORD, DEMO_USER);

	sessions = sessions_new((uint64_t)ttl * 1000);
	struct login_guard *guard = login_guard_new(&gc);
	struct webapp app;
	webapp_init(&app, files, users, sessions, guard, (unsigned)ttl);

	cfg.server_name = "hychat-httpd";
	cfg.tls_headers = HTTPD_HSTS;
	cfg.access_log = !quiet;
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_info("serving %s on %s://%s:%d/ (%d worker%s)", root, http_listen_scheme(&ls), host,
	    port, cfg.workers, cfg.workers == 1 ? "" : "s");
	int rc = http_server_run(
	    &cfg, &router_http_handler, app.router, worker_init, worker_fini, NULL, &err);
	if (rc != 0)
		log_fatal(1, "listen on %s:%d: %s", host, port, err);
	router_free(app.router);
	login_guard_free(guard);
	sessions_free(sessions);
	users_free(users);
	http_static_free(files);
	http_listen_fini(&ls);
	return 0;
}
