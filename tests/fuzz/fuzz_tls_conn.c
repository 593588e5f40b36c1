/* fuzz_tls_conn.c — libFuzzer target for the TLS layer under an HTTP
 * connection (src/http/http_tls.c).
 *
 * A client and a server http_tls_conn talk through their memory BIOs: the
 * handshake, then a request from the client. The input picks the request
 * (path and body) and the points where each direction's bytes are cut, as
 * TCP might cut them; the server side is fed piece by piece and drained
 * after each piece, as http_conn.c does. The request parsed on the server
 * side must be the one sent. When the input asks, one byte of the
 * client's records is flipped: the server must then fail the connection,
 * never deliver a different request.
 *
 * The certificate is a test fixture made once at start (EVP_EC_gen).
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hychat/http_parse.h"
#include "hychat/http_tls.h"

#define FUZZ_MAX_PATH 64
#define FUZZ_MAX_BODY 2048
#define FUZZ_MAX_ROUNDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_tls *server_ctx, *client_ctx;

/* The input, consumed from the front. */
struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned
take_byte(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_tls_conn: %s\n", what);
	abort();
}

/* A self-signed P-256 certificate for localhost, in a private directory. */
static void
make_fixture(char *cert, char *key, size_t sz)
{
	char dir[] = "/tmp/fuzz-tls-XXXXXX";
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(cert, sz, "%s/cert.pem", dir);
	snprintf(key, sz, "%s/key.pem", dir);

	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (pk == NULL || x == NULL)
		die("EVP_EC_gen");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, pk);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		die("X509_sign");

	FILE *f = fopen(cert, "w");
	if (f == NULL || PEM_write_X509(f, x) != 1)
		die("write cert");
	fclose(f);
	umask(077);
	f = fopen(key, "w");
	if (f == NULL || PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1)
		die("write key");
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static void
init_once(void)
{
	char cert[256], key[256];
	const char *cause = NULL;

	if (server_ctx != NULL)
		return;
	make_fixture(cert, key, sizeof(cert));
	server_ctx = http_tls_server_new(cert, key, &cause);
	if (server_ctx == NULL)
		die(cause);
	client_ctx = http_tls_client_new(NULL, 0, &cause);
	if (client_ctx == NULL)
		die(cause);
	unlink(cert);
	unlink(key);
}

/* Feeds src to dst in pieces whose sizes the input picks, draining dst's
 * plaintext into plain after each piece. Returns 0, or HTTP_TLS_EOF or
 * HTTP_TLS_ERROR from dst. */
static int
deliver(struct buf *src, struct http_tls_conn *dst, struct input *in, struct buf *plain)
{
	const char *cause = NULL;
	size_t off = 0;

	while (off < src->len) {
		size_t n = take_byte(in) % 200 + 1;
		if (n > src->len - off)
			n = src->len - off;
		if (http_tls_conn_feed(dst, src->data + off, n) < 0) {
			src->len = 0;
			return HTTP_TLS_ERROR;
		}
		off += n;
		for (;;) {
			char tmp[512];
			ssize_t r = http_tls_conn_read(dst, tmp, sizeof(tmp), &cause);
			if (r == 0)
				break;
			if (r < 0) {
				src->len = 0;
				return (int)r;
			}
			buf_append(plain, tmp, (size_t)r);
		}
		/* an idle moment: the BIOs may go, and must come back intact */
		if (take_byte(in) & 1)
			http_tls_conn_idle(dst);
	}
	src->len = 0;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	char path[FUZZ_MAX_PATH + 2] = "/";
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-._~";

	init_once();

	/* the request: a path from a safe alphabet, a body of any bytes */
	size_t plen = take_byte(&in) % FUZZ_MAX_PATH;
	for (size_t i = 0; i < plen; i++)
		path[1 + i] = alphabet[take_byte(&in) % (sizeof(alphabet) - 1)];
	path[1 + plen] = '\0';
	size_t blen = (take_byte(&in) << 8 | take_byte(&in)) % FUZZ_MAX_BODY;
	if (blen > in.n)
		blen = in.n;
	const char *body = (const char *)in.p;
	in.p += blen;
	in.n -= blen;
	unsigned corrupt = take_byte(&in);
	size_t flip_at = take_byte(&in) << 8 | take_byte(&in);

	struct buf req, c2s, s2c, splain, cplain;
	buf_init(&req);
	buf_init(&c2s);
	buf_init(&s2c);
	buf_init(&splain);
	buf_init(&cplain);
	buf_printf(
	    &req, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n", path, blen);
	buf_append(&req, body, blen);

	struct http_tls_conn *cli = http_tls_conn_new(client_ctx, "localhost");
	struct http_tls_conn *srv = http_tls_conn_new(server_ctx, NULL);
	if (cli == NULL || srv == NULL)
		die("http_tls_conn_new");

	/* the handshake, every flight cut where the input says */
	const char *cause = NULL;
	int rounds = 0, failed = 0;
	while (!(http_tls_conn_established(cli) && http_tls_conn_established(srv))) {
		if (++rounds > FUZZ_MAX_ROUNDS)
			die("the handshake does not finish");
		char tmp[64];
		if (http_tls_conn_read(cli, tmp, sizeof(tmp), &cause) < 0)
			die(cause);
		http_tls_conn_take(cli, &c2s);
		if (deliver(&c2s, srv, &in, &splain) < 0)
			die("the server failed a clean handshake");
		http_tls_conn_take(srv, &s2c);
		if (deliver(&s2c, cli, &in, &cplain) < 0)
			die("the client failed a clean handshake");
	}
	if (splain.len != 0)
		die("plaintext before the request");

	/* the request, maybe with one byte flipped on the way */
	http_tls_conn_idle(cli);
	http_tls_conn_idle(srv);
	if (http_tls_conn_write(cli, req.data, req.len) < 0)
		die("SSL_write");
	http_tls_conn_take(cli, &c2s);
	int flipped = (corrupt & 1) && c2s.len > 0;
	if (flipped)
		c2s.data[flip_at % c2s.len] ^= (char)(corrupt | 1);
	failed = deliver(&c2s, srv, &in, &splain) < 0;
	if (!flipped && failed)
		die("the server failed a clean request");

	struct http_request_head h;
	int r = http_parse_request(splain.data != NULL ? splain.data : "", splain.len, 0, &h);
	if (!flipped || splain.len > 0) {
		/* what arrived, if anything, is exactly what was sent */
		if (splain.len > req.len || memcmp(splain.data, req.data, splain.len) != 0)
			die("the server read bytes the client never sent");
	}
	if (!flipped) {
		if (splain.len != req.len || r <= 0)
			die("the request did not arrive whole");
		if (h.path_len != strlen(path) || memcmp(h.path, path, h.path_len) != 0)
			die("the path changed on the way");
		if (splain.len - (size_t)r != blen || memcmp(splain.data + r, body, blen) != 0)
			die("the body changed on the way");

		/* and the close: the client sees close_notify as the end */
		http_tls_conn_close_notify(srv);
		http_tls_conn_take(srv, &s2c);
		if (deliver(&s2c, cli, &in, &cplain) != HTTP_TLS_EOF || cplain.len != 0)
			die("close_notify was not seen as the end");
	}

	http_tls_conn_free(cli);
	http_tls_conn_free(srv);
	buf_fini(&req);
	buf_fini(&c2s);
	buf_fini(&s2c);
	buf_fini(&splain);
	buf_fini(&cplain);
	return 0;
}
