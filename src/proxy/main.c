/* main.c — hychat-proxy: the command line, SIGHUP reloads, the proxy on
 * the HTTP server. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hychat/http_listen.h"
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
	    "  --listen HOST:PORT      plain HTTP address to serve, besides the file's\n"
	    "                          listen lines (default, with neither: %s:%d)\n"
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
/* the listen lines read at start: the sockets cannot change later */
static size_t start_nlistens;
static struct proxy_listen start_listens[PROXY_MAX_LISTEN];

static int
listens_changed(const struct proxy_conf *c)
{
	return c->nlistens != start_nlistens ||
	    memcmp(c->listens, start_listens, c->nlistens * sizeof(*c->listens)) != 0;
}

/* Reads the file and every certificate, key and CA file again. */
static void
hup_cb(uv_signal_t *s, int signum)
{
	struct proxy_conf *c;
	char err[512], terr[512];

	(void)s;
	(void)signum;
	if (proxy_conf_load(conf_path, &c, err, sizeof(err)) < 0) {
		log_error("reload refused, the old configuration stays: %s", err);
		return;
	}
	size_t n = c->nvhosts;
	int moved = listens_changed(c);
	if (proxy_reload(proxy, c, terr, sizeof(terr)) < 0) {
		log_error("reload refused, the old configuration stays: %s:%s", conf_path, terr);
		return;
	}
	if (moved)
		log_warn(
		    "%s: listen lines are read at start only; restart to apply them", conf_path);
	log_info("reloaded %s and its certificates: %zu host%s", conf_path, n, n == 1 ? "" : "s");
}

/* The file's listen lines and --listen into cfg: the first is the main
 * address, the rest go to more[]. */
static void
listeners_set(struct http_server_config *cfg, const struct proxy_conf *conf,
    struct http_listen *more, const char *cli_host, int cli_port, int have_cli)
{
	struct http_tls *tls = proxy_listener_tls(proxy);
	size_t n = 0;

	if (proxy_conf_has_ssl(conf) && tls == NULL) /* the parser forbids it */
		log_fatal(1, "%s: a TLS listener without a certificate", conf_path);

	start_nlistens = conf->nlistens;
	memcpy(start_listens, conf->listens, conf->nlistens * sizeof(*conf->listens));
	for (size_t i = 0; i < conf->nlistens; i++) {
		more[n].host = start_listens[i].host;
		more[n].port = start_listens[i].port;
		more[n].tls = start_listens[i].ssl ? tls : NULL;
		n++;
	}
	if (have_cli || n == 0) {
		more[n].host = cli_host;
		more[n].port = cli_port;
		more[n].tls = NULL;
		n++;
	}
	cfg->host = more[0].host;
	cfg->port = more[0].port;
	cfg->tls = more[0].tls;
	cfg->more = more + 1;
	cfg->nmore = n - 1;
	for (size_t i = 0; i < n; i++)
		log_info("proxying on %s://%s:%d with %s", more[i].tls != NULL ? "https" : "http",
		    more[i].host, more[i].port, conf_path);
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
	int port = PROXY_DEFAULT_PORT, quiet = 0, check = 0, have_cli = 0, opt;
	struct http_listen listens[PROXY_MAX_LISTEN + 1];

	log_init("hychat-proxy", LOG_INFO);
	http_server_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "c:w:qhV", options, NULL)) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case OPT_LISTEN:
			if (hy_parse_hostport(optarg, host, sizeof(host), &port, &perr) < 0)
				log_fatal(2, "--listen %s: %s", optarg, perr);
			have_cli = 1;
			break;
		case OPT_SERVER_IP:
			snprintf(host, sizeof(host), "%s", optarg);
			have_cli = 1;
			break;
		case OPT_SERVER_PORT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 0 || v > 65535)
				log_fatal(2, "--server-port: expected 0-65535, got '%s'", optarg);
			port = (int)v;
			have_cli = 1;
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
	size_t nhosts = conf->nvhosts;
	proxy = proxy_new(conf, !quiet, err, sizeof(err));
	if (proxy == NULL)
		log_fatal(1, "%s:%s", conf_path, err);
	if (check) {
		/* the certificates, keys and CA files were read too */
		printf("%s: ok, %zu host%s\n", conf_path, nhosts, nhosts == 1 ? "" : "s");
		proxy_free(proxy);
		return 0;
	}
	listeners_set(&cfg, conf, listens, host, port, have_cli);
	cfg.max_body_bytes = 0; /* bodies stream through */
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = http_server_run(
	    &cfg, &proxy_http_handler, proxy, worker_init, worker_fini, NULL, &perr);
	if (rc != 0)
		log_fatal(1, "listen: %s", perr);
	proxy_free(proxy);
	return 0;
}
