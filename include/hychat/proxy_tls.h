/* proxy_tls.h — hychat-proxy's TLS contexts: one server context per
 * certificate (ssl_certificate, ssl_certificate_key) and one client context
 * per trust setting towards https backends (proxy_ssl_verify,
 * proxy_ssl_trusted_certificate), found by their files.
 *
 * A context, once made, lives as long as the struct proxy_tls: a pointer
 * taken for one configuration stays valid after a reload has replaced that
 * configuration, so worker threads and the SNI callback may hold one
 * without a reference count. A reload reads every file in use again
 * (http_tls_reload()): new connections get the new certificate, open ones
 * keep theirs.
 */
#ifndef HYCHAT_PROXY_TLS_H
#define HYCHAT_PROXY_TLS_H

#include <stddef.h>

#include "hychat/http_tls.h"
#include "hychat/proxy_conf.h"

struct proxy_tls;

/* sni_pick(name, arg) becomes every server context's SNI picker (see
 * http_tls_set_sni()). */
struct proxy_tls *proxy_tls_new(
    struct http_tls *(*sni_pick)(const char *name, void *arg), void *arg);
/* Frees every context: only once no connection can use one. */
void proxy_tls_free(struct proxy_tls *pt);

/* Finds or makes the contexts conf's host blocks need: server[i] for
 * block i's certificate, client[i] for its https backends (NULL where it
 * needs none). With reload set, contexts made before are read again.
 * Returns 0, or -1 with err "LINE: host NAME: cause" (the caller
 * puts the file name in front) (nothing
 * published: the arrays are the caller's until it uses them). One thread
 * at a time: start-up, then the SIGHUP handler. */
int proxy_tls_resolve(struct proxy_tls *pt, const struct proxy_conf *conf, int reload,
    struct http_tls **server, struct http_tls **client, char *err, size_t errsz);

#endif
