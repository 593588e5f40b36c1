/* http_listen.h — the listening addresses a daemon's command line gives:
 * --listen HOST:PORT (repeatable; TLS when --tls-cert and --tls-key are
 * given) and --plain-listen HOST:PORT (repeatable, always plain HTTP),
 * turned into a struct http_server_config for http_server_run().
 */
#ifndef HYCHAT_HTTP_LISTEN_H
#define HYCHAT_HTTP_LISTEN_H

#include "hychat/http_server.h"
#include "hychat/http_tls.h"

#define HTTP_MAX_LISTEN 16
#define HTTP_LISTEN_HOST_MAX 256

struct http_listen_set {
	int have_main; /* the first --listen went to the main address */
	size_t n;
	struct http_listen more[HTTP_MAX_LISTEN];
	int plain[HTTP_MAX_LISTEN];
	char host[HTTP_MAX_LISTEN][HTTP_LISTEN_HOST_MAX];
	const char *cert, *key; /* --tls-cert, --tls-key */
	struct http_tls *tls; /* made by http_listen_apply() */
};

/* Takes one --listen (plain 0) or --plain-listen (plain 1). The first
 * --listen is the main address and goes to host (size hostsz) and *port,
 * which --server-ip/--server-port may also set; the rest are kept here.
 * Fatal (exit 2) on a bad address or too many. */
void http_listen_add(struct http_listen_set *ls, const char *hostport, int plain, char *host,
    size_t hostsz, int *port);
/* Loads the certificate if one was given and fills cfg's host, port, tls
 * and more. Fatal (exit 2) when only one of --tls-cert and --tls-key is
 * given, (exit 1) when they cannot be used: one line naming the file. */
void http_listen_apply(
    struct http_listen_set *ls, struct http_server_config *cfg, const char *host, int port);
/* The scheme of the main address: "https" or "http". */
const char *http_listen_scheme(const struct http_listen_set *ls);
/* Frees the TLS context, after http_server_run() returns. */
void http_listen_fini(struct http_listen_set *ls);

#endif
