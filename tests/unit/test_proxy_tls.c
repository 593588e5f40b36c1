/* test_proxy_tls.c — the proxy's TLS contexts: one per certificate and
 * per trust setting, kept across reloads, read again on a reload, errors
 * that name the host block's line. Certificates are made here with
 * OpenSSL (self-signed ECDSA P-256) in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hychat/proxy_tls.h"

#define NHOSTS 8

static char dir[] = "/tmp/hychat-test-proxy-tls-XXXXXX";

static void
path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* NAME.pem and NAME.key, self-signed for cn; the key mode 0600. */
static void
make_cert(const char *name, const char *cn)
{
	char pem[256], key[256], file[200];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(k);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	snprintf(file, sizeof(file), "%s.pem", name);
	path_of(pem, sizeof(pem), file);
	snprintf(file, sizeof(file), "%s.key", name);
	path_of(key, sizeof(key), file);
	FILE *f = fopen(pem, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	f = fopen(key, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(key, 0600), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* The configuration text with every "@" replaced by the directory. */
static struct proxy_conf *
conf_of(const char *tmpl)
{
	char text[4096], err[256] = "";
	size_t n = 0;
	struct proxy_conf *c = NULL;

	for (const char *p = tmpl; *p && n + sizeof(dir) < sizeof(text); p++) {
		if (*p == '@') {
			memcpy(text + n, dir, strlen(dir));
			n += strlen(dir);
		} else {
			text[n++] = *p;
		}
	}
	if (proxy_conf_parse(text, n, "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	return c;
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	make_cert("a", "a.test");
	make_cert("b", "b.test");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char many[] = "host \"a.test\" { ssl_certificate @/a.pem; "
                           "ssl_certificate_key @/a.key; proxy_pass http://h:1; }\n"
                           "host \"a2.test\" { ssl_certificate @/a.pem; "
                           "ssl_certificate_key @/a.key; proxy_pass http://h:1; }\n"
                           "host \"b.test\" { ssl_certificate @/b.pem; "
                           "ssl_certificate_key @/b.key; proxy_pass https://h:1; }\n"
                           "host \"c.test\" { proxy_pass https://h:1; "
                           "proxy_ssl_trusted_certificate @/a.pem; }\n"
                           "host \"d.test\" { proxy_pass https://h:1; "
                           "proxy_ssl_verify off; proxy_ssl_trusted_certificate @/b.pem; }\n"
                           "host \"e.test\" { proxy_pass https://h:1; proxy_ssl_verify off; }\n"
                           "host \"f.test\" { proxy_pass http://h:1; }\n";

static void
test_one_context_per_certificate_and_per_trust_setting(void **state)
{
	struct proxy_tls *pt = proxy_tls_new(NULL, NULL);
	struct proxy_conf *c = conf_of(many);
	struct http_tls *srv[NHOSTS], *cli[NHOSTS];
	char err[512] = "";

	(void)state;
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), 0);
	assert_non_null(srv[0]);
	assert_ptr_equal(srv[0], srv[1]); /* the same files, one context */
	assert_non_null(srv[2]);
	assert_ptr_not_equal(srv[2], srv[0]);
	assert_null(srv[3]);
	assert_null(srv[6]);
	assert_null(cli[0]); /* no https backend, no client context */
	assert_non_null(cli[2]); /* verified against the system's CAs */
	assert_non_null(cli[3]);
	assert_ptr_not_equal(cli[2], cli[3]);
	assert_ptr_equal(cli[4], cli[5]); /* without verification the CA file is moot */
	assert_ptr_not_equal(cli[4], cli[2]);

	/* a reload finds the same contexts, and a new configuration that
	 * names the same files gets them too: pointers stay valid */
	struct http_tls *srv2[NHOSTS], *cli2[NHOSTS];
	assert_int_equal(proxy_tls_resolve(pt, c, 1, srv2, cli2, err, sizeof(err)), 0);
	assert_memory_equal(srv, srv2, c->nvhosts * sizeof(*srv));
	assert_memory_equal(cli, cli2, c->nvhosts * sizeof(*cli));
	proxy_conf_free(c);
	proxy_tls_free(pt);
}

static void
test_a_failed_reload_names_the_line_and_the_file(void **state)
{
	struct proxy_tls *pt = proxy_tls_new(NULL, NULL);
	struct proxy_conf *c =
	    conf_of("\nhost \"b.test\" {\n ssl_certificate @/b.pem;\n"
	            " ssl_certificate_key @/b.key;\n proxy_pass http://h:1;\n}\n");
	struct http_tls *srv[1], *cli[1];
	char err[512] = "", key[256];

	(void)state;
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), 0);
	/* a key others may read: the reload fails, naming block and file */
	path_of(key, sizeof(key), "b.key");
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(proxy_tls_resolve(pt, c, 1, srv, cli, err, sizeof(err)), -1);
	if (strstr(err, "2: host b.test: ") != err || strstr(err, "b.key") == NULL ||
	    strstr(err, "chmod 600") == NULL)
		fail_msg("error \"%s\"", err);
	/* without reload the context made before is used as it is */
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), 0);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(proxy_tls_resolve(pt, c, 1, srv, cli, err, sizeof(err)), 0);
	proxy_conf_free(c);
	proxy_tls_free(pt);
}

static void
test_missing_files_are_errors_with_the_line(void **state)
{
	struct proxy_tls *pt = proxy_tls_new(NULL, NULL);
	struct http_tls *srv[2], *cli[2];
	char err[512] = "";

	(void)state;
	struct proxy_conf *c =
	    conf_of("host x { proxy_pass http://h:1; }\nhost \"n.test\" {\n"
	            " ssl_certificate @/none.pem;\n"
	            " ssl_certificate_key @/a.key;\n proxy_pass http://h:1;\n}\n");
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), -1);
	if (strstr(err, "2: host n.test: ") != err || strstr(err, "none.pem") == NULL)
		fail_msg("error \"%s\"", err);
	proxy_conf_free(c);
	c = conf_of("host \"v.test\" { proxy_pass https://h:1;\n"
	            " proxy_ssl_trusted_certificate @/none-ca.pem; }\n");
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), -1);
	if (strstr(err, "1: host v.test: ") != err || strstr(err, "none-ca.pem") == NULL)
		fail_msg("error \"%s\"", err);
	proxy_conf_free(c);
	/* a key that does not match its certificate */
	c = conf_of("host \"m.test\" { ssl_certificate @/a.pem; ssl_certificate_key @/b.key;"
	            " proxy_pass http://h:1; }\n");
	assert_int_equal(proxy_tls_resolve(pt, c, 0, srv, cli, err, sizeof(err)), -1);
	if (strstr(err, "does not match") == NULL)
		fail_msg("error \"%s\"", err);
	proxy_conf_free(c);
	proxy_tls_free(pt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_context_per_certificate_and_per_trust_setting),
		cmocka_unit_test(test_a_failed_reload_names_the_line_and_the_file),
		cmocka_unit_test(test_missing_files_are_errors_with_the_line),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
