/* main.c — hychat-tracker: the command line, the database path, the
 * sweeper's timer, then the API on the HTTP server's worker loops. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hychat/http_json.h"
#include "hychat/http_listen.h"
#include "hychat/log.h"
#include "hychat/registry.h"
#include "hychat/relay_token.h"
#include "hychat/tracker_api.h"

#define TRACKER_DEFAULT_HOST "0.0.0.0"
#define TRACKER_DEFAULT_PORT 8001
#define TRACKER_DB_NAME "tracker.db"
#define TRACKER_STATE_SUBDIR "hychat"
#define TRACKER_DIR_MODE 0700
#define TRACKER_MAX_TTL_S (7 * 86400)
#define TRACKER_PATH_MAX 4096
#define TRACKER_SQLITE_PREFIX "sqlite:"
#define TRACKER_REDIS_PREFIX "redis://"
#define TRACKER_SENTINEL_PREFIX "redis-sentinel://"

enum {
	OPT_LISTEN = 256,
	OPT_SERVER_IP,
	OPT_SERVER_PORT,
	OPT_DB,
	OPT_STORE,
	OPT_MIGRATE_FROM,
	OPT_TTL,
	OPT_TOKEN_TTL,
	OPT_NO_REGISTER,
	OPT_ADD_USER,
	OPT_KDF_COST,
	OPT_MAX_CONNS,
	OPT_MAX_USER_CHANNELS,
	OPT_MAX_CHANNELS,
	OPT_PAGE_SIZE,
	OPT_ALLOW_LOOPBACK,
	OPT_REQUIRE_SOURCE,
	OPT_GUARD, /* one of LOGIN_GUARD_OPTIONS */
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_PLAIN_LISTEN,
	OPT_MAILBOX, /* one of MAILBOX_OPTIONS */
	OPT_RELAY,
	OPT_RELAY_SECRET,
};

static const struct option options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "server-ip", required_argument, NULL, OPT_SERVER_IP },
	{ "server-port", required_argument, NULL, OPT_SERVER_PORT },
	{ "db", required_argument, NULL, OPT_DB },
	{ "store", required_argument, NULL, OPT_STORE },
	{ "migrate-from", required_argument, NULL, OPT_MIGRATE_FROM },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "token-ttl", required_argument, NULL, OPT_TOKEN_TTL },
	{ "workers", required_argument, NULL, 'w' },
	{ "no-register", no_argument, NULL, OPT_NO_REGISTER },
	{ "add-user", required_argument, NULL, OPT_ADD_USER },
	{ "kdf-cost", required_argument, NULL, OPT_KDF_COST },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "max-channels-per-user", required_argument, NULL, OPT_MAX_USER_CHANNELS },
	{ "max-channels", required_argument, NULL, OPT_MAX_CHANNELS },
	{ "page-size", required_argument, NULL, OPT_PAGE_SIZE },
	{ "allow-loopback-peers", no_argument, NULL, OPT_ALLOW_LOOPBACK },
	{ "require-source-ip", no_argument, NULL, OPT_REQUIRE_SOURCE },
/* clang-format off */
#define GUARD_OPTION(field, flag, def, min, max, help) { flag, required_argument, NULL, OPT_GUARD },
	LOGIN_GUARD_OPTIONS(GUARD_OPTION)
#undef GUARD_OPTION
#define MAILBOX_OPTION(field, flag, def, min, max, help) { flag, required_argument, NULL, OPT_MAILBOX },
	MAILBOX_OPTIONS(MAILBOX_OPTION)
#undef MAILBOX_OPTION
	/* clang-format on */
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "plain-listen", required_argument, NULL, OPT_PLAIN_LISTEN },
	{ "relay", required_argument, NULL, OPT_RELAY },
	{ "relay-secret", required_argument, NULL, OPT_RELAY_SECRET },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hychat-tracker [--listen HOST:PORT] [--store URL] [--ttl SECONDS] [--workers "
	    "N]\n"
	    "                      [--token-ttl SECONDS] [--max-conns N] [--no-register] "
	    "[--quiet]\n"
	    "                      [--tls-cert FILE --tls-key FILE] [--plain-listen HOST:PORT]\n"
	    "       hychat-tracker [--db PATH] --add-user NAME   (password on stdin)\n"
	    "\n"
	    "  --listen HOST:PORT      address to serve, repeatable; TLS with --tls-cert\n"
	    "                          (default %s:%d)\n"
	    "  --tls-cert FILE         certificate chain (PEM): every --listen speaks TLS\n"
	    "  --tls-key FILE          its private key (PEM, mode 0600 or stricter)\n"
	    "  --plain-listen HOST:PORT   a plain HTTP address besides, repeatable\n"
	    "  --server-ip IP, --server-port PORT   the same, spelled as the original\n"
	    "  --store sqlite:PATH     the state in this process, accounts in SQLite\n"
	    "                          (the default, $XDG_STATE_HOME/hychat/%s)\n"
	    "  --store redis://HOST:PORT[/DB]   the state in Redis, shared by trackers\n"
	    "  --store redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER   the same, the\n"
	    "                          primary named by sentinels; writes wait for a replica\n"
	    "  --db PATH               the same as --store sqlite:PATH\n"
	    "  --ttl SECONDS           a peer's registration lifetime (default %d)\n"
	    "  --token-ttl SECONDS     a login token's lifetime (default %d)\n"
	    "  --workers N             event loops sharing the port (default 1)\n"
	    "  --max-conns N           open connections per worker; more get 503 (default %d)\n"
	    "  --no-register           close POST /register (accounts via --add-user)\n"
	    "  --max-channels-per-user N  channels one user may be in (default %d)\n"
	    "  --max-channels N        channels in all (default %d)\n"
	    "  --page-size N           peers, members or channels per answer (default %d)\n"
	    "  --allow-loopback-peers  accept loopback peer addresses (the default when\n"
	    "                          listening on loopback)\n"
	    "  --require-source-ip     a peer's address must be the one it calls from\n"
	    "  --relay HOST:PORT       a hychat-relay for peers behind NAT, repeatable\n"
	    "  --relay-secret FILE     the secret shared with the relays (mode 600)\n"
	    "  --kdf-cost interactive|min   Argon2id cost of new hashes (min: tests only)\n"
	    "  --add-user NAME         create NAME or set its password from stdin, then exit\n"
	    "  --migrate-from sqlite:PATH  copy accounts, keys, memberships, profiles\n"
	    "                          and mailboxes into the --store redis://..., then exit\n"
	    "  --quiet                 no access log\n"
	    "  --help, --version\n"
	    "\n"
	    "throttling of /login and /register (a burst of 0 turns a bucket off):\n",
	    TRACKER_DEFAULT_HOST, TRACKER_DEFAULT_PORT, TRACKER_DB_NAME, TRACKER_DEFAULT_TTL_S,
	    TRACKER_TOKEN_TTL_S, HTTP_MAX_CONNS, TRACKER_MAX_USER_CHANNELS, TRACKER_MAX_CHANNELS,
	    TRACKER_LIST_CAP);
#define GUARD_USAGE(field, flag, def, min, max, help) \
	fprintf(f, "  --%-24s %s (default %d)\n", flag " N", help, def);
	LOGIN_GUARD_OPTIONS(GUARD_USAGE)
#undef GUARD_USAGE
	fprintf(f, "\nthe mailbox of sealed messages for offline users:\n");
#define MAILBOX_USAGE(field, flag, def, min, max, help) \
	fprintf(f, "  --%-24s %s (default %llu)\n", flag " N", help, (unsigned long long)(def));
	MAILBOX_OPTIONS(MAILBOX_USAGE)
#undef MAILBOX_USAGE
}

/* --relay HOST:PORT, checked. */
static void
add_relay(struct tracker_config *tc, const char *arg)
{
	char host[TRACKER_RELAY_MAX];
	const char *why;
	int port;

	if (tc->nrelays == TRACKER_MAX_RELAYS)
		log_fatal(2, "--relay: at most %d", TRACKER_MAX_RELAYS);
	if (hy_parse_hostport(arg, host, sizeof(host), &port, &why) < 0 || port == 0 ||
	    strlen(arg) >= TRACKER_RELAY_MAX)
		log_fatal(2, "--relay %s: %s", arg, port == 0 ? "a port is needed" : why);
	snprintf(tc->relays[tc->nrelays++], TRACKER_RELAY_MAX, "%s", arg);
}

/* Creates each missing directory of path's parent. */
static void
make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, TRACKER_DIR_MODE) < 0 && errno != EEXIST)
			log_fatal(1, "%s: %s", path, strerror(errno));
		*p = '/';
	}
}

/* $XDG_STATE_HOME/hychat/tracker.db, else ~/.local/state/hychat/tracker.db. */
static const char *
default_db(char *out, size_t outsz)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;

	if (state != NULL && state[0] == '/')
		n = snprintf(out, outsz, "%s/%s/%s", state, TRACKER_STATE_SUBDIR, TRACKER_DB_NAME);
	else if (home != NULL && home[0] == '/')
		n = snprintf(out, outsz, "%s/.local/state/%s/%s", home, TRACKER_STATE_SUBDIR,
		    TRACKER_DB_NAME);
	else
		log_fatal(1, "neither XDG_STATE_HOME nor HOME is set: give --db PATH");
	if (n < 0 || (size_t)n >= outsz)
		log_fatal(1, "the default database path is too long: give --db PATH");
	make_parents(out);
	return out;
}

/* --store URL: sqlite:PATH sets *db, a network store's URL *url. */
static void
store_arg(const char *arg, const char **db, const char **url)
{
	static const char *const network[] = { TRACKER_REDIS_PREFIX, TRACKER_SENTINEL_PREFIX };

	if (strncmp(arg, TRACKER_SQLITE_PREFIX, strlen(TRACKER_SQLITE_PREFIX)) == 0) {
		*db = arg + strlen(TRACKER_SQLITE_PREFIX);
		return;
	}
	for (size_t i = 0; i < HY_ARRAY_LEN(network); i++) {
		if (strncmp(arg, network[i], strlen(network[i])) == 0) {
			*url = arg;
			return;
		}
	}
	log_fatal(2,
	    "--store %s: expected sqlite:PATH, redis://HOST:PORT[/DB] or "
	    "redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER",
	    arg);
}

static struct store *
open_store(const char *path)
{
	char *cause = NULL;
	struct store *st = store_sqlite_open(path, &cause);
	char line[512];

	if (st == NULL) {
		snprintf(line, sizeof(line), "%s", cause);
		free(cause);
		log_fatal(1, "--db %s: %s", path, line);
	}
	return st;
}

static int
add_user(const char *db, int redis, const char *name)
{
	char pw[TRACKER_PASSWORD_MAX + 2], hash[STORE_HASH_MAX], line[512];
	char *cause = NULL;
	size_t len;

	if (!hy_name_valid(name, strlen(name)))
		log_fatal(2, "--add-user %s: a name is 1-32 characters of A-Z a-z 0-9 _ . -", name);
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password for %s: ", name);
	if (fgets(pw, sizeof(pw), stdin) == NULL)
		log_fatal(1, "no password on standard input");
	pw[strcspn(pw, "\r\n")] = '\0';
	len = strlen(pw);
	if (len == 0 || len > TRACKER_PASSWORD_MAX)
		log_fatal(1, "a password is 1 to %d bytes", TRACKER_PASSWORD_MAX);
	int rc = tracker_hash_password(pw, len, hash);
	sodium_memzero(pw, sizeof(pw));
	if (rc != 0)
		log_fatal(1, "cannot hash the password: out of memory");
	if (redis) {
		rc = store_redis_set_hash(db, name, hash, &cause);
	} else {
		struct store *st = open_store(db);
		rc = st->ops->user_set_hash(st, name, hash, &cause);
		st->ops->close(st);
	}
	if (rc < 0) {
		snprintf(line, sizeof(line), "%s", cause);
		free(cause);
		log_fatal(1, "%s: %s", db, line);
	}
	fprintf(stderr, "hychat-tracker: account %s saved in %s\n", name, db);
	return 0;
}

/* --migrate-from sqlite:PATH --store redis://...: copies, says how many,
 * and exits. */
static int
migrate(const char *from, const char *url)
{
	struct store_migration n;
	char *cause = NULL, line[512];

	if (url == NULL)
		log_fatal(2, "--migrate-from needs --store redis://HOST:PORT[/DB]");
	if (access(from, R_OK) != 0)
		log_fatal(1, "--migrate-from %s: %s", from, strerror(errno));
	struct store *st = open_store(from);
	int rc = store_redis_migrate(url, st, &n, &cause);
	st->ops->close(st);
	if (rc < 0) {
		snprintf(line, sizeof(line), "%s", cause);
		free(cause);
		log_fatal(1, "--migrate-from %s: %s", from, line);
	}
	printf("migrated %llu accounts, %llu keys, %llu memberships (%llu channels), %llu "
	       "profiles, %llu mailbox messages from %s to %s\n",
	    (unsigned long long)n.accounts, (unsigned long long)n.keys,
	    (unsigned long long)n.memberships, (unsigned long long)n.channels,
	    (unsigned long long)n.profiles, (unsigned long long)n.messages, from, url);
	return 0;
}

/* True if host is a loopback address: then every peer is on this machine,
 * and loopback peer addresses are what they register. */
static int
listens_on_loopback(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, &in6addr_loopback, sizeof(a)) == 0;
}

/* What the worker callbacks need. */
struct run {
	struct tracker *t;
	uv_timer_t sweep;
	const struct http_server_config *cfg;
	const char *db;
	uint64_t ttl_ms;
	const char *scheme;
	struct store_state *state; /* a network store: one connection per loop */
};

static void
sweep_cb(uv_timer_t *timer)
{
	struct run *run = timer->data;

	tracker_sweep_on(run->t, timer->loop);
}

/* The sweeper runs on worker 0 only: one pass over the shared registry.
 * The last worker's init comes after every socket is bound, so the start
 * is announced only once it has succeeded. */
static void
worker_init(int worker, uv_loop_t *loop, void *arg)
{
	struct run *run = arg;

	if (run->state != NULL)
		run->state->ops->attach(run->state, loop);
	if (worker == 0) {
		uv_timer_init(loop, &run->sweep);
		run->sweep.data = run;
		uv_timer_start(&run->sweep, sweep_cb, TRACKER_SWEEP_MS, TRACKER_SWEEP_MS);
	}
	if (worker == run->cfg->workers - 1)
		log_info("tracker on %s://%s:%d/ (store %s, ttl %llus, %d worker%s)", run->scheme,
		    run->cfg->host, run->cfg->port, run->db,
		    (unsigned long long)(run->ttl_ms / 1000), run->cfg->workers,
		    run->cfg->workers == 1 ? "" : "s");
}

static void
worker_fini(int worker, uv_loop_t *loop, void *arg)
{
	struct run *run = arg;

	tracker_cancel_jobs(run->t, loop);
	if (run->state != NULL)
		run->state->ops->detach(run->state, loop);
	if (worker == 0)
		uv_close((uv_handle_t *)&run->sweep, NULL);
}

int
main(int argc, char **argv)
{
	struct http_server_config cfg;
	static struct http_listen_set ls;
	struct tracker_config tc;
	char host[256] = TRACKER_DEFAULT_HOST, dbbuf[TRACKER_PATH_MAX], line[512];
	const char *db = NULL, *adduser = NULL, *err = NULL, *store_url = NULL;
	const char *migrate_from = NULL;
	char *cause = NULL;
	int port = TRACKER_DEFAULT_PORT, quiet = 0, opt, index = 0;

	log_init("hychat-tracker", LOG_INFO);
	http_server_config_defaults(&cfg);
	cfg.batch_answers = 1; /* a turn's answers from the store leave together */
	tracker_config_defaults(&tc);
	while ((opt = getopt_long(argc, argv, "w:qhV", options, &index)) != -1) {
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
		case OPT_DB: db = optarg; break;
		case OPT_STORE: store_arg(optarg, &db, &store_url); break;
		case OPT_MIGRATE_FROM:
			if (strncmp(optarg, TRACKER_SQLITE_PREFIX, strlen(TRACKER_SQLITE_PREFIX)) !=
			    0)
				log_fatal(2, "--migrate-from %s: expected sqlite:PATH", optarg);
			migrate_from = optarg + strlen(TRACKER_SQLITE_PREFIX);
			break;
		case OPT_TTL:
			tc.ttl_ms =
			    (uint64_t)log_flag_number("--ttl", optarg, 1, TRACKER_MAX_TTL_S) * 1000;
			break;
		case OPT_TOKEN_TTL:
			tc.token_ttl_ms =
			    (uint64_t)log_flag_number("--token-ttl", optarg, 1, TRACKER_MAX_TTL_S) *
			    1000;
			break;
		case 'w':
			cfg.workers =
			    (int)log_flag_number("--workers", optarg, 1, HTTP_MAX_WORKERS);
			break;
		case OPT_MAX_CONNS:
			cfg.max_conns = (size_t)log_flag_number("--max-conns", optarg, 1, 1000000);
			break;
		case OPT_MAX_USER_CHANNELS:
			tc.max_user_channels =
			    (size_t)log_flag_number("--max-channels-per-user", optarg, 1, 1000000);
			break;
		case OPT_MAX_CHANNELS:
			tc.max_channels =
			    (size_t)log_flag_number("--max-channels", optarg, 1, 100000000);
			break;
		case OPT_PAGE_SIZE:
			tc.page_max = (size_t)log_flag_number("--page-size", optarg, 1, 100000);
			break;
		case OPT_ALLOW_LOOPBACK: tc.allow_loopback_peers = 1; break;
		case OPT_REQUIRE_SOURCE: tc.require_source_ip = 1; break;
		case OPT_RELAY: add_relay(&tc, optarg); break;
		case OPT_RELAY_SECRET: {
			const char *why;
			if (relay_token_load_key(optarg, tc.relay_key, &why) < 0)
				log_fatal(1, "--relay-secret %s: %s", optarg, why);
			tc.has_relay_key = 1;
			break;
		}
		case OPT_GUARD:
			if (login_guard_option(&tc.guard, options[index].name, optarg, &cause) < 0)
				log_fatal(2, "--%s %s: %s", options[index].name, optarg, cause);
			break;
		case OPT_MAILBOX:
			if (tracker_mailbox_option(&tc.mailbox, options[index].name, optarg, &err) <
			    0)
				log_fatal(2, "--%s %s: %s", options[index].name, optarg, err);
			break;
		case OPT_NO_REGISTER: tc.no_register = 1; break;
		case OPT_ADD_USER: adduser = optarg; break;
		case OPT_KDF_COST:
			if (strcmp(optarg, "min") == 0) {
				tracker_set_kdf_min(1);
				log_warn(
				    "--kdf-cost min: new passwords get Argon2id's minimum cost; "
				    "for tests and benchmarks only");
			} else if (strcmp(optarg, "interactive") != 0)
				log_fatal(
				    2, "--kdf-cost: expected interactive or min, got '%s'", optarg);
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hychat-tracker %s\n", HYCHAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		log_fatal(1, "libsodium failed to initialise");
	if (migrate_from != NULL)
		return migrate(migrate_from, store_url);
	if (tc.nrelays > 0 && !tc.has_relay_key)
		log_fatal(2, "--relay needs --relay-secret FILE");
	if (db == NULL && store_url == NULL)
		db = default_db(dbbuf, sizeof(dbbuf));
	if (adduser != NULL)
		return add_user(store_url != NULL ? store_url : db, store_url != NULL, adduser);
	http_listen_apply(&ls, &cfg, host, port);

	if (listens_on_loopback(host))
		tc.allow_loopback_peers = 1;
	struct store *st = NULL;
	struct store_state *state = NULL;
	struct tracker *t;
	if (store_url != NULL) {
		if ((state = store_state_redis_new(store_url, &cause)) == NULL) {
			snprintf(line, sizeof(line), "%s", cause);
			free(cause);
			log_fatal(1, "--store %s: %s", store_url, line);
		}
		t = tracker_new_state(state, &tc, &cause);
	} else {
		st = open_store(db);
		t = tracker_new(st, &tc, &cause);
	}
	if (t == NULL) {
		snprintf(line, sizeof(line), "%s", cause);
		free(cause);
		log_fatal(1, "--store %s: %s", store_url != NULL ? store_url : db, line);
	}
	struct run run = { .t = t,
		.cfg = &cfg,
		.db = store_url != NULL ? store_url : db,
		.ttl_ms = tc.ttl_ms,
		.scheme = http_listen_scheme(&ls),
		.state = state };
	cfg.server_name = "hychat-tracker";
	cfg.max_body_bytes = TRACKER_MAX_BODY_BYTES;
	cfg.error_page = http_json_error;
	cfg.access_log = !quiet;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = http_server_run(
	    &cfg, &router_http_handler, tracker_router(t), worker_init, worker_fini, &run, &err);
	tracker_free(t);
	if (st != NULL)
		st->ops->close(st);
	if (state != NULL)
		state->ops->close(state);
	http_listen_fini(&ls);
	if (rc != 0)
		log_fatal(1, "listen on %s:%d: %s", host, port, err);
	return 0;
}
