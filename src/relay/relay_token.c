/* relay_token.c — the rendezvous token: its parser (a pure function of
 * bytes, fuzzed), its signature, and the shared secret's file. */
#include "hychat/relay_token.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELAY_KEY_FILE_MIN 32
#define RELAY_KEY_FILE_MAX 4096
#define RELAY_EXPIRY_DIGITS 12

static const char name_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

int
relay_token_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > RELAY_TOKEN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(name_chars, s[i]) == NULL)
			return 0;
	return 1;
}

static int
lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The next space-separated field of [*p, end): its view, *p past it. */
static int
field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *s = *p;

	while (s < end && *s != ' ')
		s++;
	*f = *p;
	*flen = (size_t)(s - *p);
	*p = s < end ? s + 1 : s;
	return *flen > 0;
}

int
relay_token_parse(
    const char *buf, size_t len, struct relay_token *t, size_t *used, const char **why)
{
	const char *nl = memchr(buf, '\n', len < RELAY_TOKEN_LINE_MAX ? len : RELAY_TOKEN_LINE_MAX);
	const char *p = buf, *end, *f;
	size_t flen;

	if (nl == NULL) {
		if (len >= RELAY_TOKEN_LINE_MAX) {
			*why = "token line too long";
			return -1;
		}
		return 0;
	}
	end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
	memset(t, 0, sizeof(*t));
	*why = "malformed token";
	if (!field(&p, end, &f, &flen) || flen != strlen(RELAY_TOKEN_MAGIC) ||
	    memcmp(f, RELAY_TOKEN_MAGIC, flen) != 0) {
		*why = "not a relay token";
		return -1;
	}
	if (!field(&p, end, &f, &flen) || flen != RELAY_TOKEN_ID_HEX || !lower_hex(f, flen))
		return -1;
	memcpy(t->id, f, flen);
	if (!field(&p, end, &f, &flen) || flen > RELAY_EXPIRY_DIGITS || f[0] == '0')
		return -1;
	for (size_t i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		t->expiry = t->expiry * 10 + (uint64_t)(f[i] - '0');
	}
	if (!field(&p, end, &f, &flen) || !relay_token_name_ok(f, flen))
		return -1;
	memcpy(t->from, f, flen);
	if (!field(&p, end, &f, &flen) || !relay_token_name_ok(f, flen))
		return -1;
	memcpy(t->to, f, flen);
	t->signed_len = (size_t)(f + flen - buf);
	if (!field(&p, end, &f, &flen) || flen != RELAY_TOKEN_MAC_HEX || !lower_hex(f, flen) ||
	    p != end || f + flen != end)
		return -1;
	memcpy(t->mac, f, flen);
	if (strcmp(t->from, t->to) == 0) {
		*why = "a token must join two users";
		return -1;
	}
	*used = (size_t)(nl - buf) + 1;
	*why = NULL;
	return 1;
}

const char *
relay_token_check(const struct relay_token *t, const char *line,
    const uint8_t key[RELAY_TOKEN_KEY_BYTES], uint64_t now)
{
	uint8_t mac[crypto_auth_BYTES];
	size_t maclen = 0;

	if (sodium_hex2bin(mac, sizeof(mac), t->mac, RELAY_TOKEN_MAC_HEX, NULL, &maclen, NULL) !=
	        0 ||
	    maclen != sizeof(mac) ||
	    crypto_auth_verify(mac, (const unsigned char *)line, t->signed_len, key) != 0)
		return "bad token signature";
	if (t->expiry < now)
		return "token expired";
	return NULL;
}

int
relay_token_sign(const uint8_t key[RELAY_TOKEN_KEY_BYTES], const char *id, uint64_t expiry,
    const char *from, const char *to, char out[RELAY_TOKEN_LINE_MAX])
{
	uint8_t mac[crypto_auth_BYTES];
	char hex[RELAY_TOKEN_MAC_HEX + 1];
	int n;

	if (!relay_token_name_ok(from, strlen(from)) || !relay_token_name_ok(to, strlen(to)) ||
	    strlen(id) != RELAY_TOKEN_ID_HEX || !lower_hex(id, RELAY_TOKEN_ID_HEX) ||
	    strcmp(from, to) == 0 || expiry == 0)
		return -1;
	n = snprintf(out, RELAY_TOKEN_LINE_MAX, "%s %s %llu %s %s", RELAY_TOKEN_MAGIC, id,
	    (unsigned long long)expiry, from, to);
	if (n < 0 || (size_t)n + 1 + RELAY_TOKEN_MAC_HEX + 1 >= RELAY_TOKEN_LINE_MAX)
		return -1;
	crypto_auth(mac, (const unsigned char *)out, (size_t)n, key);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(out + n, RELAY_TOKEN_LINE_MAX - (size_t)n, " %s", hex);
	return 0;
}

void
relay_token_new_id(char out[RELAY_TOKEN_ID_HEX + 1])
{
	uint8_t id[RELAY_TOKEN_ID_HEX / 2];

	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(out, RELAY_TOKEN_ID_HEX + 1, id, sizeof(id));
}

int
relay_token_load_key(const char *path, uint8_t key[RELAY_TOKEN_KEY_BYTES], const char **why)
{
	char data[RELAY_KEY_FILE_MAX];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		*why = "readable by others (chmod 600 it)";
		return -1;
	}
	while (len < sizeof(data) && (n = read(fd, data + len, sizeof(data) - len)) > 0)
		len += (size_t)n;
	close(fd);
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len < RELAY_KEY_FILE_MIN) {
		*why = "a secret needs at least 32 bytes";
		sodium_memzero(data, sizeof(data));
		return -1;
	}
	crypto_generichash(key, RELAY_TOKEN_KEY_BYTES, (const unsigned char *)data, len, NULL, 0);
	sodium_memzero(data, sizeof(data));
	return 0;
}
