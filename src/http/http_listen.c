/* http_listen.c — a daemon's --listen, --plain-listen, --tls-cert and
 * --tls-key flags into listeners (see http_listen.h). */
#include <stdio.h>
#include <string.h>

#include "hychat/http_listen.h"
#include "hychat/log.h"

void
http_listen_add(struct http_listen_set *ls, const char *hostport, int plain, char *host,
    size_t hostsz, int *port)
{
	const char *flag = plain ? "--plain-listen" : "--listen", *err = NULL;

	if (!plain && !ls->have_main) {
		if (hy_parse_hostport(hostport, host, hostsz, port, &err) < 0)
			log_fatal(2, "%s %s: %s", flag, hostport, err);
		ls->have_main = 1;
		return;
	}
	if (ls->n >= HTTP_MAX_LISTEN)
		log_fatal(2, "%s %s: at most %d extra addresses", flag, hostport, HTTP_MAX_LISTEN);
	struct http_listen *l = &ls->more[ls->n];
	if (hy_parse_hostport(hostport, ls->host[ls->n], sizeof(ls->host[ls->n]), &l->port, &err) <
	    0)
		log_fatal(2, "%s %s: %s", flag, hostport, err);
	l->host = ls->host[ls->n];
	ls->plain[ls->n] = plain;
	ls->n++;
}

void
http_listen_apply(
    struct http_listen_set *ls, struct http_server_config *cfg, const char *host, int port)
{
	const char *cause = NULL;

	if ((ls->cert == NULL) != (ls->key == NULL))
		log_fatal(2, "--tls-cert and --tls-key go together");
	if (ls->cert != NULL) {
		ls->tls = http_tls_server_new(ls->cert, ls->key, &cause);
		if (ls->tls == NULL)
			log_fatal(1, "TLS: %s", cause);
	}
	cfg->host = host;
	cfg->port = port;
	cfg->tls = ls->tls;
	for (size_t i = 0; i < ls->n; i++)
		ls->more[i].tls = ls->plain[i] ? NULL : ls->tls;
	cfg->more = ls->more;
	cfg->nmore = ls->n;
}

const char *
http_listen_scheme(const struct http_listen_set *ls)
{
	return ls->tls != NULL ? "https" : "http";
}

void
http_listen_fini(struct http_listen_set *ls)
{
	http_tls_free(ls->tls);
	ls->tls = NULL;
}
