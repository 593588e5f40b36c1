/* fuzz_proxy_conf.c — libFuzzer target for the proxy's configuration
 * parser and host matching. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/proxy_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_conf *c = NULL;
	char err[256];
	char *text = malloc(size ? size : 1);

	memcpy(text, data, size);
	if (proxy_conf_parse(text, size, "fuzz.conf", &c, err, sizeof(err)) == 0) {
		if (c == NULL || c->nvhosts == 0)
			abort();
		(void)proxy_conf_match(c, text, size < 300 ? size : 300, 8080);
		(void)proxy_conf_match(c, c->vhosts[0].name, strlen(c->vhosts[0].name), 80);
		const struct proxy_vhost *v = proxy_conf_match_sni(c, c->vhosts[0].host);
		/* a TLS listener always finds a certificate to present */
		if (proxy_conf_has_ssl(c) &&
		    (v == NULL || v->ssl_certificate[0] == '\0' ||
		        v->ssl_certificate_key[0] == '\0'))
			abort();
		proxy_conf_free(c);
	} else if (memchr(err, ':', sizeof(err)) == NULL) {
		abort(); /* every error names its place */
	}
	free(text);
	return 0;
}
