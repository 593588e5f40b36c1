/* http_tls.h — TLS as a layer under an HTTP/1.1 connection (OpenSSL 3).
 *
 * A struct http_tls is a context: a certificate and key read from PEM
 * files (a server), or trust anchors (a client). It is shared by every
 * connection and every worker thread, and can be reloaded (SIGHUP): new
 * connections get the new certificate, open ones keep the one they began
 * with. A server context speaks TLS 1.2 and 1.3 only, with Mozilla's
 * "intermediate" ciphers, ALPN http/1.1, session tickets whose keys rotate
 * (HTTP_TLS_TICKET_ROTATE_S), and no renegotiation.
 *
 * A struct http_tls_conn is one connection's TLS state, driven through
 * memory BIOs: the caller feeds it the bytes TCP delivered, however they
 * were cut, reads the plaintext out, writes plaintext in, and takes the
 * ciphertext to send. Nothing here touches a socket or blocks, so it runs
 * on a libuv loop (http_conn.c) or in a fuzzer alike.
 */
#ifndef HYCHAT_HTTP_TLS_H
#define HYCHAT_HTTP_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "hychat/util.h"

#define HTTP_TLS_HANDSHAKE_TIMEOUT_MS 10000
#define HTTP_TLS_TICKET_ROTATE_S (12 * 3600) /* a ticket key encrypts this long */
#define HTTP_TLS_ALPN "http/1.1"

/* Results of http_tls_conn_feed() and http_tls_conn_read() below 0. */
enum http_tls_result {
	HTTP_TLS_ERROR = -1, /* a protocol error: the connection is over */
	HTTP_TLS_EOF = -2, /* the peer sent close_notify */
	HTTP_TLS_NOT_TLS = -3, /* the first bytes are not a TLS handshake */
};

struct http_tls;
struct http_tls_conn;

/* A server context from a certificate chain and a private key, both PEM.
 * A key file that its group or others may read is refused, as ssh refuses
 * one. Returns NULL with *cause set (static or per-thread text; one line
 * naming the file). */
struct http_tls *http_tls_server_new(
    const char *cert_file, const char *key_file, const char **cause);
/* A client context: verifies the server against ca_file (PEM), or the
 * system's trust store when NULL; verify 0 accepts any certificate. */
struct http_tls *http_tls_client_new(const char *ca_file, int verify, const char **cause);
/* Reads the files again; on success new connections use them. Returns 0,
 * or -1 with *cause set and the old certificate still in use. */
int http_tls_reload(struct http_tls *t, const char **cause);
/* For a server with several names: pick(name, arg) returns the context
 * whose certificate serves that SNI name (NULL name: the client sent
 * none), or NULL to keep t's. The context returned must outlive the
 * handshake. */
void http_tls_set_sni(
    struct http_tls *t, struct http_tls *(*pick)(const char *name, void *arg), void *arg);
void http_tls_free(struct http_tls *t);

/* One connection. server_name (clients only): the SNI name sent and the
 * name the certificate must hold, or an IP address the certificate must
 * hold (then no SNI is sent); NULL for a server. */
struct http_tls_conn *http_tls_conn_new(struct http_tls *t, const char *server_name);
void http_tls_conn_free(struct http_tls_conn *tc);
/* Ciphertext from the network. Returns 0, or HTTP_TLS_NOT_TLS when a
 * server's first bytes are not a TLS record (plain HTTP on a TLS port). */
int http_tls_conn_feed(struct http_tls_conn *tc, const char *data, size_t len);
/* Advances the handshake and decrypts: returns the number of plaintext
 * bytes put in out (up to cap), 0 when more input is needed, or an
 * enum http_tls_result with *cause set for HTTP_TLS_ERROR. */
ssize_t http_tls_conn_read(struct http_tls_conn *tc, char *out, size_t cap, const char **cause);
/* Encrypts len bytes (once the handshake is done). Returns 0 or -1. */
int http_tls_conn_write(struct http_tls_conn *tc, const char *data, size_t len);
/* Queues a close_notify alert. */
void http_tls_conn_close_notify(struct http_tls_conn *tc);
/* Appends the ciphertext waiting to be sent (handshake, records, alerts)
 * to out; returns how many bytes. */
size_t http_tls_conn_take(struct http_tls_conn *tc, struct buf *out);
/* The connection is idle (nothing buffered either way): its two memory
 * BIOs are freed, and made again by the next call that needs them. Does
 * nothing while the handshake runs or bytes wait. */
void http_tls_conn_idle(struct http_tls_conn *tc);
/* 1 once the handshake is complete. */
int http_tls_conn_established(const struct http_tls_conn *tc);
/* 1 if this connection resumed a session. */
int http_tls_conn_resumed(const struct http_tls_conn *tc);
/* The protocol version ("TLSv1.3") and the ALPN protocol ("" if none). */
const char *http_tls_conn_version(const struct http_tls_conn *tc);
const char *http_tls_conn_alpn(const struct http_tls_conn *tc, size_t *len);

#endif
