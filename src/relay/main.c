/* main.c — hychat-relay: the command line, signals, the relay on one
 * loop. */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "hychat/relay.h"
#include "hychat/util.h"

#define RELAY_DEFAULT_HOST "0.0.0.0"
#define RELAY_DEFAULT_PORT 7400

enum {
	OPT_LISTEN = 256,
	OPT_SECRET,
	OPT_MAX_CONNS,
	OPT_USER_CONNS,
	OPT_USER_RATE,
	OPT_IDLE,
};

static const struct option options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "relay-secret", required_argument, NULL, OPT_SECRET },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "user-conns", required_argument, NULL, OPT_USER_CONNS },
	{ "user-rate", required_argument, NULL, OPT_USER_RATE },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hychat-relay --relay-secret FILE [--listen HOST:PORT] [options]\n"
	    "\n"
	    "  --relay-secret FILE   the secret shared with the trackers (mode 600)\n"
	    "  --listen HOST:PORT    address to serve (default %s:%d)\n"
	    "  --max-conns N         connections in all (default %d)\n"
	    "  --user-conns N        connections per user (default %d)\n"
	    "  --user-rate BYTES     bytes per second per user (default %d)\n"
	    "  --idle-timeout SECS   close a splice silent this long (default %d)\n"
	    "  -v, --verbose         log every closed connection\n"
	    "  --help, --version\n",
	    RELAY_DEFAULT_HOST, RELAY_DEFAULT_PORT, RELAY_MAX_CONNS_DEFAULT,
	    RELAY_USER_CONNS_DEFAULT, RELAY_USER_RATE_DEFAULT, RELAY_IDLE_MS_DEFAULT / 1000);
}

static uint64_t
number(const char *flag, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s == '\0' || *end != '\0' || s[0] == '-' || v < min || v > max)
		log_fatal(2, "%s: expected %llu-%llu, got '%s'", flag, (unsigned long long)min,
		    (unsigned long long)max, s);
	return v;
}

static struct relay *relay;
static uv_signal_t sigs[2];

static void
on_signal(uv_signal_t *s, int signum)
{
	log_info("signal %d: stopping", signum);
	relay_free(relay);
	for (size_t i = 0; i < HY_ARRAY_LEN(sigs); i++)
		uv_close((uv_handle_t *)&sigs[i], NULL);
	(void)s;
}

int
main(int argc, char **argv)
{
	struct relay_config cfg;
	char host[256] = RELAY_DEFAULT_HOST;
	const char *secret = NULL, *why = NULL;
	char *cause = NULL;
	int port = RELAY_DEFAULT_PORT, opt;
	enum log_level level = LOG_INFO;

	log_init("hychat-relay", LOG_INFO);
	if (sodium_init() < 0)
		log_fatal(1, "cannot initialise libsodium");
	relay_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "vhV", options, NULL)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
			if (hy_parse_hostport(optarg, host, sizeof(host), &port, &why) < 0)
				log_fatal(2, "--listen %s: %s", optarg, why);
			break;
		case OPT_SECRET: secret = optarg; break;
		case OPT_MAX_CONNS:
			cfg.max_conns = number("--max-conns", optarg, 1, 1000000);
			break;
		case OPT_USER_CONNS:
			cfg.user_conns = number("--user-conns", optarg, 1, 100000);
			break;
		case OPT_USER_RATE:
			cfg.user_rate = number("--user-rate", optarg, 1024, 1ULL << 40);
			break;
		case OPT_IDLE:
			cfg.idle_ms = 1000 * number("--idle-timeout", optarg, 1, 86400);
			break;
		case 'v': level = LOG_DEBUG; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hychat-relay %s\n", HYCHAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	log_init("hychat-relay", level);
	if (secret == NULL)
		log_fatal(2, "--relay-secret FILE is required");
	if (relay_token_load_key(secret, cfg.key, &why) < 0)
		log_fatal(1, "--relay-secret %s: %s", secret, why);
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	cfg.host = host;
	cfg.port = port;
	relay = relay_new(loop, &cfg, &cause);
	if (relay == NULL)
		log_fatal(1, "%s", cause);
	static const int signums[] = { SIGINT, SIGTERM };
	for (size_t i = 0; i < HY_ARRAY_LEN(sigs); i++) {
		uv_signal_init(loop, &sigs[i]);
		uv_signal_start(&sigs[i], on_signal, signums[i]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_info("relaying on %s:%d", host, relay_port(relay));
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
