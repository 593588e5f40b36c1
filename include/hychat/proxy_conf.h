/* proxy_conf.h — hychat-proxy's configuration file: virtual hosts and
 * their backend pools, in the original design's format.
 *
 *	listen 127.0.0.1:8443 ssl;
 *	host "app2.local" [default] {
 *	    ssl_certificate /etc/hychat/app2.pem;
 *	    ssl_certificate_key /etc/hychat/app2.key;
 *	    proxy_set_header Host $host;
 *	    proxy_pass http://192.168.56.210:9002;
 *	    proxy_pass https://192.168.56.220:9443;
 *	    proxy_ssl_trusted_certificate /etc/hychat/backend-ca.pem;
 *	    dist_policy round-robin
 *	}
 *
 * Top-level listen lines name the addresses to serve, "ssl" marking those
 * that speak TLS (the certificate chosen by SNI among the host blocks
 * that carry one). Certificate files are only named here; proxy_tls.c
 * loads them.
 *
 * '#' starts a comment; the ';' after dist_policy is optional, as the
 * original wrote it. The parser is a pure function of the text: errors
 * name the file, the line and what was expected.
 */
#ifndef HYCHAT_PROXY_CONF_H
#define HYCHAT_PROXY_CONF_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_MAX_NAME 255
#define PROXY_MAX_BACKENDS 64
#define PROXY_MAX_SET_HEADERS 16
#define PROXY_MAX_VALUE 1024
#define PROXY_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define PROXY_DEFAULT_READ_TIMEOUT_MS 30000
#define PROXY_DEFAULT_MAX_FAILS 1
#define PROXY_DEFAULT_FAIL_TIMEOUT_MS 10000
#define PROXY_MAX_PATH 1024
#define PROXY_MAX_LISTEN 16
#define PROXY_HTTP_PORT 80
#define PROXY_HTTPS_PORT 443

#define PROXY_POLICIES(X) \
	X(PROXY_ROUND_ROBIN, "round-robin") \
	X(PROXY_LEAST_CONN, "least-conn") \
	X(PROXY_RANDOM, "random")

enum proxy_policy {
#define PROXY_POLICY_ENUM(e, name) e,
	PROXY_POLICIES(PROXY_POLICY_ENUM)
#undef PROXY_POLICY_ENUM
};

struct proxy_backend {
	char host[PROXY_MAX_NAME + 1];
	int port;
	char name[PROXY_MAX_NAME + 8]; /* "host:port", for logs */
	int tls; /* proxy_pass https:// */
};

struct proxy_set_header {
	char name[PROXY_MAX_NAME + 1];
	char value[PROXY_MAX_VALUE + 1]; /* may hold $host and $remote_addr */
};

struct proxy_vhost {
	char name[PROXY_MAX_NAME + 1]; /* as written: "app1.local" or "1.2.3.4:8080" */
	char host[PROXY_MAX_NAME + 1]; /* the name without its port, lower case */
	int port; /* -1: any port */
	int is_default;
	unsigned line; /* where the block starts */
	enum proxy_policy policy;
	size_t nbackends;
	struct proxy_backend backends[PROXY_MAX_BACKENDS];
	size_t nset;
	struct proxy_set_header set[PROXY_MAX_SET_HEADERS];
	uint64_t connect_timeout_ms;
	uint64_t read_timeout_ms;
	unsigned max_fails;
	uint64_t fail_timeout_ms;
	/* TLS towards clients: both set or both "" (checked by the parser) */
	char ssl_certificate[PROXY_MAX_PATH + 1];
	char ssl_certificate_key[PROXY_MAX_PATH + 1];
	/* TLS towards https backends: verify (default on) against the CAs in
	 * ssl_trusted, or the system's when "" */
	int ssl_verify;
	char ssl_trusted[PROXY_MAX_PATH + 1];
};

struct proxy_listen {
	char host[PROXY_MAX_NAME + 1];
	int port;
	int ssl;
	unsigned line;
};

struct proxy_conf {
	size_t nvhosts;
	struct proxy_vhost *vhosts;
	const struct proxy_vhost *fallback; /* the block marked default, or NULL */
	size_t nlistens;
	struct proxy_listen listens[PROXY_MAX_LISTEN];
};

/* Parses text (len bytes, any bytes) read from file. Returns 0 and a new
 * configuration in *out, or -1 with a message "FILE:LINE: expected X,
 * found Y" in err. */
int proxy_conf_parse(const char *text, size_t len, const char *file, struct proxy_conf **out,
    char *err, size_t errsz);
/* Reads and parses a file. */
int proxy_conf_load(const char *path, struct proxy_conf **out, char *err, size_t errsz);
void proxy_conf_free(struct proxy_conf *c);

/* The virtual host for a Host header value ("name" or "name:port"): an
 * exact name and port first, then a name without port, then the default
 * block; NULL when none matches (the proxy answers 421). */
const struct proxy_vhost *proxy_conf_match(
    const struct proxy_conf *c, const char *host, size_t len, int local_port);

/* The host block whose certificate serves a TLS server name (SNI): the
 * block of that name with a certificate, else the default block if it has
 * one, else the first block with one; NULL when no block has one. name
 * NULL: the client sent none. */
const struct proxy_vhost *proxy_conf_match_sni(const struct proxy_conf *c, const char *name);
/* 1 if some listen line says ssl. */
int proxy_conf_has_ssl(const struct proxy_conf *c);

const char *proxy_policy_name(enum proxy_policy p);

#endif
