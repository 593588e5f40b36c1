/* http_tls.c — OpenSSL contexts from PEM files, and one connection's TLS
 * through two memory BIOs (see http_tls.h).
 *
 * The context in use sits behind a mutex only long enough to take a
 * reference: SSL_new() holds its SSL_CTX, so a reload swaps the pointer and
 * drops the old reference while open connections keep theirs. Session
 * ticket keys live in the struct http_tls, not in an SSL_CTX, so a reload
 * does not invalidate the tickets clients hold; they rotate lazily, the
 * previous key still decrypting (and asking for a renewal) for one period.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hychat/http_tls.h"

#define TLS_CAUSE_MAX 512
#define TLS_KEY_NAME_LEN 16
#define TLS_AES_KEY_LEN 32
#define TLS_HMAC_KEY_LEN 32
#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_KEY_FORBIDDEN_MODE 077 /* no bit for group or others, as ssh */
/* A drained memory BIO whose buffer grew past this is replaced: a memory
 * BIO never shrinks, and an idle connection should not keep the buffer
 * of the largest flight it ever saw. 0: any drained buffer goes. */
#define TLS_BIO_KEEP_BYTES 0

/* Mozilla's "intermediate" configuration (version 5.7). */
#define TLS_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_CIPHERS_13 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"
#define TLS_SESSION_ID_CONTEXT "hychat"

static const unsigned char alpn_wire[] = "\x08" HTTP_TLS_ALPN;

struct ticket_key {
	unsigned char name[TLS_KEY_NAME_LEN];
	unsigned char aes[TLS_AES_KEY_LEN];
	unsigned char hmac[TLS_HMAC_KEY_LEN];
	time_t born;
	int valid;
};

struct http_tls {
	pthread_mutex_t lock;
	SSL_CTX *ctx; /* the one new connections get */
	int server;
	char *cert_file, *key_file, *ca_file;
	int verify;
	struct ticket_key keys[2]; /* [0] encrypts; [1] still decrypts */
	struct http_tls *(*sni_pick)(const char *name, void *arg);
	void *sni_arg;
};

struct http_tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio; /* network → SSL, SSL → network */
	int fed; /* some input has arrived */
	int server;
};

static _Thread_local char cause_buf[TLS_CAUSE_MAX];

/* The reason OpenSSL gives for the last error, and the queue cleared: the
 * queue is per thread and would otherwise blame the next connection. */
static const char *
tls_reason(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	snprintf(cause_buf, sizeof(cause_buf), "%s: %s", what, r != NULL ? r : "TLS error");
	ERR_clear_error();
	return cause_buf;
}

static char *
xstrdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
ticket_key_new(struct ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		k->valid = 0;
		return;
	}
	k->born = time(NULL);
	k->valid = 1;
}

/* Called with t->lock held. */
static void
ticket_keys_rotate(struct http_tls *t, time_t now)
{
	if (t->keys[0].valid && now - t->keys[0].born < HTTP_TLS_TICKET_ROTATE_S)
		return;
	OPENSSL_cleanse(&t->keys[1], sizeof(t->keys[1]));
	t->keys[1] = t->keys[0];
	ticket_key_new(&t->keys[0]);
	if (t->keys[1].valid && now - t->keys[1].born >= 2 * HTTP_TLS_TICKET_ROTATE_S)
		OPENSSL_cleanse(&t->keys[1], sizeof(t->keys[1]));
}

static int
ticket_mac_init(EVP_MAC_CTX *hctx, unsigned char *key)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, TLS_HMAC_KEY_LEN),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: 1 to use the key, 2 to accept a ticket and
 * issue a fresh one, 0 to refuse (a full handshake), -1 on error. */
static int
ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
    int enc)
{
	struct http_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct ticket_key k;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	ticket_keys_rotate(t, time(NULL));
	if (enc) {
		k = t->keys[0];
		rc = k.valid ? 1 : -1;
	} else {
		for (int i = 0; i < 2 && rc == 0; i++) {
			if (t->keys[i].valid &&
			    memcmp(t->keys[i].name, name, TLS_KEY_NAME_LEN) == 0) {
				k = t->keys[i];
				rc = i == 0 ? 1 : 2;
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (rc <= 0)
		return rc;
	if (enc) {
		memcpy(name, k.name, TLS_KEY_NAME_LEN);
		if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
			rc = -1;
	} else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
		rc = -1;
	}
	if (rc > 0 && ticket_mac_init(hctx, k.hmac) < 0)
		rc = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, alpn_wire, sizeof(alpn_wire) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_ctx_current(struct http_tls *t);

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct http_tls *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (t->sni_pick == NULL)
		return SSL_TLSEXT_ERR_OK;
	struct http_tls *other = t->sni_pick(name, t->sni_arg);
	if (other != NULL && other != t && other->server) {
		SSL_CTX *ctx = tls_ctx_current(other);
		SSL_set_SSL_CTX(ssl, ctx);
		SSL_CTX_free(ctx);
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Opens the key file, refusing one its group or others may read. */
static EVP_PKEY *
key_load(const char *path, const char **cause)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(cause_buf, sizeof(cause_buf), "%s: %s", path, strerror(errno));
		*cause = cause_buf;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if ((st.st_mode & TLS_KEY_FORBIDDEN_MODE) != 0) {
		snprintf(cause_buf, sizeof(cause_buf),
		    "%s: the private key is accessible by group or others (mode %04o); "
		    "chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		*cause = cause_buf;
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		snprintf(cause_buf, sizeof(cause_buf), "%s: %s", path, strerror(errno));
		*cause = cause_buf;
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL) {
		char what[TLS_CAUSE_MAX / 2];
		snprintf(what, sizeof(what), "%s: not a PEM private key", path);
		*cause = tls_reason(what);
	}
	return k;
}

static SSL_CTX *
server_ctx_new(struct http_tls *t, const char **cause)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;
	char what[TLS_CAUSE_MAX / 2];

	if (ctx == NULL) {
		*cause = tls_reason("SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS_13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 || SSL_CTX_set_dh_auto(ctx, 1) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_ID_CONTEXT,
	        sizeof(TLS_SESSION_ID_CONTEXT) - 1) != 1) {
		*cause = tls_reason("TLS settings");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* stateless tickets only: no per-session memory on the server */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	SSL_CTX_set_app_data(ctx, t);

	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		snprintf(what, sizeof(what), "%s: cannot load the certificate chain", t->cert_file);
		*cause = tls_reason(what);
		goto fail;
	}
	if ((key = key_load(t->key_file, cause)) == NULL)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "%s: does not match the certificate %s", t->key_file,
		    t->cert_file);
		*cause = tls_reason(what);
		goto fail;
	}
	EVP_PKEY_free(key);
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *
client_ctx_new(struct http_tls *t, const char **cause)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		*cause = tls_reason("SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_alpn_protos(ctx, alpn_wire, sizeof(alpn_wire) - 1) != 0) {
		*cause = tls_reason("TLS settings");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (t->verify) {
		int ok = t->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
		                            : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			*cause = tls_reason(t->ca_file != NULL ? t->ca_file : "system CAs");
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

static struct http_tls *
tls_new(
    int server, const char *cert, const char *key, const char *ca, int verify, const char **cause)
{
	struct http_tls *t = xcalloc(1, sizeof(*t));

	pthread_mutex_init(&t->lock, NULL);
	t->server = server;
	t->cert_file = xstrdup_or_null(cert);
	t->key_file = xstrdup_or_null(key);
	t->ca_file = xstrdup_or_null(ca);
	t->verify = verify;
	t->ctx = server ? server_ctx_new(t, cause) : client_ctx_new(t, cause);
	if (t->ctx == NULL) {
		http_tls_free(t);
		return NULL;
	}
	return t;
}

struct http_tls *
http_tls_server_new(const char *cert_file, const char *key_file, const char **cause)
{
	return tls_new(1, cert_file, key_file, NULL, 1, cause);
}

struct http_tls *
http_tls_client_new(const char *ca_file, int verify, const char **cause)
{
	return tls_new(0, NULL, NULL, ca_file, verify, cause);
}

int
http_tls_reload(struct http_tls *t, const char **cause)
{
	SSL_CTX *ctx = t->server ? server_ctx_new(t, cause) : client_ctx_new(t, cause);

	if (ctx == NULL)
		return -1;
	pthread_mutex_lock(&t->lock);
	SSL_CTX *old = t->ctx;
	t->ctx = ctx;
	pthread_mutex_unlock(&t->lock);
	SSL_CTX_free(old); /* connections that use it hold their own reference */
	return 0;
}

void
http_tls_set_sni(
    struct http_tls *t, struct http_tls *(*pick)(const char *name, void *arg), void *arg)
{
	t->sni_pick = pick;
	t->sni_arg = arg;
}

void
http_tls_free(struct http_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	OPENSSL_cleanse(t->keys, sizeof(t->keys));
	free(t->cert_file);
	free(t->key_file);
	free(t->ca_file);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The context in use, with a reference the caller drops. */
static SSL_CTX *
tls_ctx_current(struct http_tls *t)
{
	pthread_mutex_lock(&t->lock);
	SSL_CTX *ctx = t->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->lock);
	return ctx;
}

static int
tls_is_address(const char *name)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

static BIO *
bio_new_mem(void)
{
	BIO *b = BIO_new(BIO_s_mem());

	/* an empty memory BIO means "wait for more", not end of file */
	if (b != NULL)
		BIO_set_mem_eof_return(b, -1);
	return b;
}

/* Swaps a drained, grown BIO for a fresh one (see TLS_BIO_KEEP_BYTES). */
static void
bio_trim(struct http_tls_conn *tc, int write_side)
{
	BIO *b = write_side ? tc->wbio : tc->rbio;
	BUF_MEM *bm = NULL;

	if (BIO_ctrl_pending(b) != 0 || BIO_get_mem_ptr(b, &bm) != 1 || bm == NULL ||
	    bm->max <= TLS_BIO_KEEP_BYTES)
		return;
	BIO *fresh = bio_new_mem();
	if (fresh == NULL) {
		ERR_clear_error();
		return;
	}
	if (write_side) {
		SSL_set0_wbio(tc->ssl, fresh); /* frees the old one */
		tc->wbio = fresh;
	} else {
		SSL_set0_rbio(tc->ssl, fresh);
		tc->rbio = fresh;
	}
}

/* Gives the connection its two BIOs again after http_tls_conn_idle().
 * Returns 0, or -1 when they cannot be made. */
static int
bio_ensure(struct http_tls_conn *tc)
{
	if (tc->rbio != NULL)
		return 0;
	BIO *r = bio_new_mem(), *w = bio_new_mem();
	if (r == NULL || w == NULL) {
		BIO_free(r);
		BIO_free(w);
		ERR_clear_error();
		return -1;
	}
	SSL_set0_rbio(tc->ssl, r);
	SSL_set0_wbio(tc->ssl, w);
	tc->rbio = r;
	tc->wbio = w;
	return 0;
}

void
http_tls_conn_idle(struct http_tls_conn *tc)
{
	if (tc->rbio == NULL || !SSL_is_init_finished(tc->ssl) || SSL_has_pending(tc->ssl) ||
	    BIO_ctrl_pending(tc->rbio) != 0 || BIO_ctrl_pending(tc->wbio) != 0)
		return;
	SSL_set0_rbio(tc->ssl, NULL); /* each frees the one it replaces */
	SSL_set0_wbio(tc->ssl, NULL);
	tc->rbio = tc->wbio = NULL;
}

struct http_tls_conn *
http_tls_conn_new(struct http_tls *t, const char *server_name)
{
	SSL_CTX *ctx = tls_ctx_current(t);
	SSL *ssl = SSL_new(ctx);
	BIO *r = bio_new_mem(), *w = bio_new_mem();

	SSL_CTX_free(ctx); /* the SSL holds its own */
	if (ssl == NULL || r == NULL || w == NULL) {
		SSL_free(ssl);
		BIO_free(r);
		BIO_free(w);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_bio(ssl, r, w);
	struct http_tls_conn *tc = xcalloc(1, sizeof(*tc));
	tc->ssl = ssl;
	tc->rbio = r;
	tc->wbio = w;
	tc->server = t->server;
	if (t->server) {
		SSL_set_accept_state(ssl);
	} else {
		if (server_name != NULL) {
			/* no SNI for an address (RFC 6066 3); SSL_set1_host()
			 * checks an address against the IP SANs */
			if (!tls_is_address(server_name))
				SSL_set_tlsext_host_name(ssl, server_name);
			if (t->verify)
				SSL_set1_host(ssl, server_name);
		}
		SSL_set_connect_state(ssl);
	}
	return tc;
}

void
http_tls_conn_free(struct http_tls_conn *tc)
{
	if (tc == NULL)
		return;
	SSL_free(tc->ssl); /* frees both BIOs */
	free(tc);
}

int
http_tls_conn_feed(struct http_tls_conn *tc, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!tc->fed && tc->server && (unsigned char)data[0] != TLS_RECORD_HANDSHAKE)
		return HTTP_TLS_NOT_TLS;
	tc->fed = 1;
	size_t done;
	if (bio_ensure(tc) < 0)
		return HTTP_TLS_ERROR;
	if (BIO_write_ex(tc->rbio, data, len, &done) != 1 || done != len) {
		ERR_clear_error();
		return HTTP_TLS_ERROR;
	}
	return 0;
}

ssize_t
http_tls_conn_read(struct http_tls_conn *tc, char *out, size_t cap, const char **cause)
{
	size_t n = 0;
	int rc;

	if (bio_ensure(tc) < 0) {
		*cause = "TLS: out of memory";
		return HTTP_TLS_ERROR;
	}
	if (!SSL_is_init_finished(tc->ssl)) {
		rc = SSL_do_handshake(tc->ssl);
		if (rc != 1) {
			int e = SSL_get_error(tc->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				return 0;
			}
			*cause = tls_reason("TLS handshake");
			return HTTP_TLS_ERROR;
		}
	}
	if (cap == 0)
		return 0;
	rc = SSL_read_ex(tc->ssl, out, cap, &n);
	if (rc == 1)
		return (ssize_t)n;
	switch (SSL_get_error(tc->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		bio_trim(tc, 0);
		return 0;
	case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return HTTP_TLS_EOF;
	default: *cause = tls_reason("TLS"); return HTTP_TLS_ERROR;
	}
}

int
http_tls_conn_write(struct http_tls_conn *tc, const char *data, size_t len)
{
	size_t n;

	if (len == 0)
		return 0;
	if (bio_ensure(tc) < 0)
		return -1;
	if (SSL_write_ex(tc->ssl, data, len, &n) != 1 || n != len) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void
http_tls_conn_close_notify(struct http_tls_conn *tc)
{
	if (SSL_is_init_finished(tc->ssl) && bio_ensure(tc) == 0)
		SSL_shutdown(tc->ssl);
	ERR_clear_error();
}

size_t
http_tls_conn_take(struct http_tls_conn *tc, struct buf *out)
{
	size_t pending = tc->wbio != NULL ? BIO_ctrl_pending(tc->wbio) : 0, n = 0;

	if (pending == 0)
		return 0;
	buf_reserve(out, pending);
	if (BIO_read_ex(tc->wbio, out->data + out->len, pending, &n) != 1) {
		ERR_clear_error();
		return 0;
	}
	out->len += n;
	out->data[out->len] = '\0';
	bio_trim(tc, 1);
	return n;
}

int
http_tls_conn_established(const struct http_tls_conn *tc)
{
	return SSL_is_init_finished(tc->ssl);
}

int
http_tls_conn_resumed(const struct http_tls_conn *tc)
{
	return SSL_session_reused(tc->ssl);
}

const char *
http_tls_conn_version(const struct http_tls_conn *tc)
{
	return SSL_get_version(tc->ssl);
}

const char *
http_tls_conn_alpn(const struct http_tls_conn *tc, size_t *len)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;

	SSL_get0_alpn_selected(tc->ssl, &p, &n);
	*len = n;
	return p != NULL ? (const char *)p : "";
}
