/* proxy_tls.c — the proxy's TLS contexts, one per certificate or trust
 * setting, kept for the process's life (see proxy_tls.h). A configuration
 * names a handful of files, and a reload that names new ones adds a few
 * contexts: the table stays small, and never freeing an entry is what
 * lets other threads keep a bare pointer to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/proxy_tls.h"
#include "hychat/util.h"

enum tls_kind {
	TLS_SERVER,
	TLS_CLIENT
};

struct entry {
	enum tls_kind kind;
	char a[PROXY_MAX_PATH + 1]; /* certificate, or trusted CAs ("" system) */
	char b[PROXY_MAX_PATH + 1]; /* key */
	int verify;
	struct http_tls *tls;
	unsigned pass; /* the resolve call that last read its files */
};

struct proxy_tls {
	struct entry *e;
	size_t n;
	unsigned pass;
	struct http_tls *(*sni_pick)(const char *name, void *arg);
	void *sni_arg;
};

struct proxy_tls *
proxy_tls_new(struct http_tls *(*sni_pick)(const char *name, void *arg), void *arg)
{
	struct proxy_tls *pt = xcalloc(1, sizeof(*pt));
	pt->sni_pick = sni_pick;
	pt->sni_arg = arg;
	return pt;
}

void
proxy_tls_free(struct proxy_tls *pt)
{
	if (pt == NULL)
		return;
	for (size_t i = 0; i < pt->n; i++)
		http_tls_free(pt->e[i].tls);
	free(pt->e);
	free(pt);
}

static struct entry *
entry_find(struct proxy_tls *pt, enum tls_kind kind, const char *a, const char *b, int verify)
{
	for (size_t i = 0; i < pt->n; i++) {
		struct entry *e = &pt->e[i];
		if (e->kind == kind && e->verify == verify && strcmp(e->a, a) == 0 &&
		    strcmp(e->b, b) == 0)
			return e;
	}
	return NULL;
}

/* The context for these files: found (and read again on a reload, once
 * per pass) or made. NULL with *cause set. */
static struct http_tls *
entry_get(struct proxy_tls *pt, enum tls_kind kind, const char *a, const char *b, int verify,
    int reload, const char **cause)
{
	struct entry *e = entry_find(pt, kind, a, b, verify);

	if (e != NULL) {
		if (reload && e->pass != pt->pass) {
			if (http_tls_reload(e->tls, cause) < 0)
				return NULL;
			e->pass = pt->pass;
		}
		return e->tls;
	}
	struct http_tls *t = kind == TLS_SERVER
	    ? http_tls_server_new(a, b, cause)
	    : http_tls_client_new(a[0] != '\0' ? a : NULL, verify, cause);
	if (t == NULL)
		return NULL;
	/* set before any thread can see t: it never changes after */
	if (kind == TLS_SERVER)
		http_tls_set_sni(t, pt->sni_pick, pt->sni_arg);
	pt->e = xrealloc(pt->e, (pt->n + 1) * sizeof(*pt->e));
	e = &pt->e[pt->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	snprintf(e->a, sizeof(e->a), "%s", a);
	snprintf(e->b, sizeof(e->b), "%s", b);
	e->verify = verify;
	e->tls = t;
	e->pass = pt->pass;
	return t;
}

static int
vhost_has_tls_backend(const struct proxy_vhost *v)
{
	for (size_t i = 0; i < v->nbackends; i++) {
		if (v->backends[i].tls)
			return 1;
	}
	return 0;
}

int
proxy_tls_resolve(struct proxy_tls *pt, const struct proxy_conf *conf, int reload,
    struct http_tls **server, struct http_tls **client, char *err, size_t errsz)
{
	const char *cause = NULL;

	pt->pass++;
	for (size_t i = 0; i < conf->nvhosts; i++) {
		const struct proxy_vhost *v = &conf->vhosts[i];
		server[i] = client[i] = NULL;
		if (v->ssl_certificate[0] != '\0') {
			server[i] = entry_get(pt, TLS_SERVER, v->ssl_certificate,
			    v->ssl_certificate_key, 1, reload, &cause);
			if (server[i] == NULL)
				goto fail;
		}
		if (vhost_has_tls_backend(v)) {
			/* without verification the CA file does not matter */
			client[i] = entry_get(pt, TLS_CLIENT, v->ssl_verify ? v->ssl_trusted : "",
			    "", v->ssl_verify, reload, &cause);
			if (client[i] == NULL)
				goto fail;
		}
		continue;
	fail:
		snprintf(err, errsz, "%u: host %s: %s", v->line, v->name, cause);
		return -1;
	}
	return 0;
}
