/* mailbox_seal.c — sealing and opening a mailbox message (mailbox_seal.h). */
#include "hychat/mailbox_seal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"

_Static_assert(MAILBOX_SEAL_OVERHEAD ==
        crypto_box_SEALBYTES + 1 + MAILBOX_SEAL_NAME_MAX + crypto_box_NONCEBYTES +
            crypto_box_MACBYTES,
    "the overhead is the outer seal, the name, the nonce and the inner MAC");

uint8_t *
mailbox_seal(const char *sender, const uint8_t sender_sk[MAILBOX_SEAL_KEY_BYTES],
    const uint8_t recipient_pk[MAILBOX_SEAL_KEY_BYTES], const uint8_t *msg, size_t msglen,
    size_t *len)
{
	size_t nlen = strlen(sender);

	if (nlen == 0 || nlen > MAILBOX_SEAL_NAME_MAX)
		return NULL;
	size_t plen = 1 + nlen + crypto_box_NONCEBYTES + crypto_box_MACBYTES + msglen;
	uint8_t *plain = xmalloc(plen), *p = plain;
	*p++ = (uint8_t)nlen;
	memcpy(p, sender, nlen);
	p += nlen;
	randombytes_buf(p, crypto_box_NONCEBYTES);
	if (crypto_box_easy(p + crypto_box_NONCEBYTES, msg, msglen, p, recipient_pk, sender_sk) !=
	    0) {
		free(plain);
		return NULL; /* a weak (low-order) recipient key */
	}
	*len = plen + crypto_box_SEALBYTES;
	uint8_t *blob = xmalloc(*len);
	crypto_box_seal(blob, plain, plen, recipient_pk);
	sodium_memzero(plain, plen);
	free(plain);
	return blob;
}

int
mailbox_open_outer(const uint8_t pk[MAILBOX_SEAL_KEY_BYTES],
    const uint8_t sk[MAILBOX_SEAL_KEY_BYTES], const uint8_t *blob, size_t len,
    struct mailbox_opened *o)
{
	memset(o, 0, sizeof(*o));
	if (len < crypto_box_SEALBYTES + 1 + crypto_box_NONCEBYTES + crypto_box_MACBYTES)
		return -1;
	size_t plen = len - crypto_box_SEALBYTES;
	uint8_t *plain = xmalloc(plen);
	if (crypto_box_seal_open(plain, blob, len, pk, sk) != 0)
		goto bad;
	size_t nlen = plain[0];
	if (nlen == 0 || nlen > MAILBOX_SEAL_NAME_MAX ||
	    plen < 1 + nlen + crypto_box_NONCEBYTES + crypto_box_MACBYTES ||
	    memchr(plain + 1, '\0', nlen) != NULL)
		goto bad;
	memcpy(o->sender, plain + 1, nlen);
	o->sender[nlen] = '\0';
	o->plain = plain;
	o->plain_len = plen;
	return 0;
bad:
	sodium_memzero(plain, plen);
	free(plain);
	return -1;
}

char *
mailbox_open_inner(const struct mailbox_opened *o, const uint8_t sender_pk[MAILBOX_SEAL_KEY_BYTES],
    const uint8_t sk[MAILBOX_SEAL_KEY_BYTES], size_t *len)
{
	size_t off = 1 + (size_t)o->plain[0];
	const uint8_t *nonce = o->plain + off, *box = nonce + crypto_box_NONCEBYTES;
	size_t blen = o->plain_len - off - crypto_box_NONCEBYTES;
	char *msg = xmalloc(blen - crypto_box_MACBYTES + 1);

	if (crypto_box_open_easy((uint8_t *)msg, box, blen, nonce, sender_pk, sk) != 0) {
		free(msg);
		return NULL;
	}
	*len = blen - crypto_box_MACBYTES;
	msg[*len] = '\0';
	return msg;
}

void
mailbox_opened_fini(struct mailbox_opened *o)
{
	if (o->plain != NULL) {
		sodium_memzero(o->plain, o->plain_len);
		free(o->plain);
	}
	memset(o, 0, sizeof(*o));
}
