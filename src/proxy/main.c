/* main.c — hychat-proxy: the command line, SIGHUP reloads, the proxy on
 * the HTTP server. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/log.h"
#include "hychat/proxy.h"

#define PROXY_DEFAULT_HOST "0.0.0.0"
#define PROXY_DEFAULT_PORT 8080
#define PROXY_DEFAULT_CONF "config/proxy.conf"

enum {
	OPT_LISTEN = 256,
	OPT_SERVER_IP,
	OPT_SERVER_PORT,
	OPT_CHECK
};

static const struct option options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "server-ip", required_argument, NULL, OPT_SERVER_IP },
	{ "server-port", required_argument, NULL, OPT_SERVER_PORT },
	{ "workers", required_argument, NULL, 'w' },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hychat-proxy [-c FILE] [--listen HOST:PORT] [--workers N] [--quiet]\n"
	    "       hychat-proxy --check -c FILE\n"
	    "\n"
	    "  -c, --config FILE       virtual hosts and backends (default %s)\n"
	    "  --listen HOST:PORT      address to serve (default %s:%d)\n"
	    "  --server-ip IP, --server-port PORT   the same, spelled as the original\n"
	    "  --workers N             event loops sharing the port (default 1)\n"
	    "  --check                 only validate the configuration file\n"
	    "  --quiet                 no access log\n"
	    "  --help, --version\n",
	    PROXY_DEFAULT_CONF, PROXY_DEFAULT_HOST, PROXY_DEFAULT_PORT);
}

static struct proxy *proxy;
static const char *conf_path;
static uv_signal_t hup;

static void
hup_cb(uv_signal_t *s, int signum)
{
	struct proxy_conf *c;
	char err[512];

	(void)s;
	(void)signum;
	if (proxy_conf_load(conf_path, &c, err, sizeof(err)) < 0) {
		log_error("reload refused, the old configuration stays: %s", err);
		return;
	}
	proxy_reload(proxy, c);
	log_info("reloaded %s: %zu host%s", conf_path, c->nvhosts, c->nvhosts == 1 ? "" : "s");
}

static void
worker_init(int worker, uv_loop_t *loop, void *arg)
{
	(void)arg;
	proxy_worker_init(proxy, loop);
	if (worker == 0) {
		uv_signal_init(loop, &hup);
		uv_signal_start(&hup, hup_cb, SIGHUP);
	}
}

static void
worker_fini(int worker, uv_loop_t *loop, void *arg)
{
	(void)arg;
	proxy_worker_fini(loop);
	if (worker == 0)
		uv_close((uv_handle_t *)&hup, NULL);
}

int
main(int argc, char **argv)
{
	struct http_server_config cfg;
	char host[256] = PROXY_DEFAULT_HOST, confbuf[4096], err[512];
	const char *perr = NULL;
	int port = PROXY_DEFAULT_PORT, quiet = 0, check = 0, opt;

	log_init("hychat-proxy", LOG_INFO);
	http_server_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "c:w:qhV", options, NULL)) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case OPT_LISTEN:
			if (hy_parse_hostport(optarg, host, sizeof(host), &port, &perr) < 0)
				log_fatal(2, "--listen %s: %s", optarg, perr);
			break;
		case OPT_SERVER_IP: snprintf(host, sizeof(host), "%s", optarg); break;
		case OPT_SERVER_PORT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 0 || v > 65535)
				log_fatal(2, "--server-port: expected 0-65535, got '%s'", optarg);
			port = (int)v;
			break;
		}
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > HTTP_MAX_WORKERS)
				log_fatal(2, "--workers: expected 1-%d, got '%s'", HTTP_MAX_WORKERS,
				    optarg);
			cfg.workers = (int)v;
			break;
		}
		case OPT_CHECK: check = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("hychat-proxy %s\n", HYCHAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (conf_path == NULL) {
		snprintf(confbuf, sizeof(confbuf), "%s/%s", HYCHAT_SOURCE_DIR, PROXY_DEFAULT_CONF);
		if (access(confbuf, R_OK) != 0)
			snprintf(confbuf, sizeof(confbuf), "%s/proxy.conf", HYCHAT_DATA_DIR);
		conf_path = confbuf;
	}
	struct proxy_conf *conf;
	if (proxy_conf_load(conf_path, &conf, err, sizeof(err)) < 0)
		log_fatal(1, "%s", err);
	if (check) {
		printf("%s: ok, %zu host%s\n", conf_path, conf->nvhosts,
		    conf->nvhosts == 1 ? "" : "s");
		proxy_conf_free(conf);
		return 0;
	}
	proxy = proxy_new(conf, port, !quiet);
	cfg.host = host;
	cfg.port = port;
	cfg.max_body_bytes = 0; /* bodies stream through */
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_info("proxying on %s:%d with %s", host, port, conf_path);
	int rc = http_server_run(
	    &cfg, &proxy_http_handler, proxy, worker_init, worker_fini, NULL, &perr);
	if (rc != 0)
		log_fatal(1, "listen on %s:%d: %s", host, port, perr);
	proxy_free(proxy);
	return 0;
}
