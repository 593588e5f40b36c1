"""peer_noise — just enough of Noise XX in pure Python (standard library
only) to play a hostile peer in the tests: X25519 (RFC 7748),
ChaCha20-Poly1305 (RFC 8439), BLAKE2b from hashlib. Slow and not constant
time: for tests, never for secrets."""
import hashlib
import hmac
import os
import socket
import struct

from hytest import recv_exact

P = 2 ** 255 - 19
A24 = 121665


def _clamp(k):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def x25519(k, u):
    k = _clamp(k)
    u = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def keypair():
    sk = os.urandom(32)
    return sk, x25519(sk, (9).to_bytes(32, "little"))


def _rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 16)  # noqa: E702
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 12)  # noqa: E702
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 8)  # noqa: E702
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 7)  # noqa: E702


def _block(key, counter, nonce):
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + \
        [counter] + list(struct.unpack("<3I", nonce))
    w = s[:]
    for _ in range(10):
        _qr(w, 0, 4, 8, 12); _qr(w, 1, 5, 9, 13); _qr(w, 2, 6, 10, 14); _qr(w, 3, 7, 11, 15)  # noqa
        _qr(w, 0, 5, 10, 15); _qr(w, 1, 6, 11, 12); _qr(w, 2, 7, 8, 13); _qr(w, 3, 4, 9, 14)  # noqa
    return struct.pack("<16I", *[(w[i] + s[i]) & 0xffffffff for i in range(16)])


def chacha20(key, counter, nonce, data):
    out = bytearray()
    for i in range(0, len(data), 64):
        ks = _block(key, counter + i // 64, nonce)
        out += bytes(x ^ y for x, y in zip(data[i:i + 64], ks))
    return bytes(out)


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:], "little")
    acc, p = 0, (1 << 130) - 5
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _pad16(b):
    return b"\x00" * (-len(b) % 16)


def aead_encrypt(key, n, ad, pt):
    nonce = b"\x00" * 4 + struct.pack("<Q", n)
    otk = chacha20(key, 0, nonce, b"\x00" * 32)
    ct = chacha20(key, 1, nonce, pt)
    mac = poly1305(otk, ad + _pad16(ad) + ct + _pad16(ct) + struct.pack("<QQ", len(ad), len(ct)))
    return ct + mac


def aead_decrypt(key, n, ad, ct):
    nonce = b"\x00" * 4 + struct.pack("<Q", n)
    otk = chacha20(key, 0, nonce, b"\x00" * 32)
    body, tag = ct[:-16], ct[-16:]
    mac = poly1305(otk, ad + _pad16(ad) + body + _pad16(body) +
                   struct.pack("<QQ", len(ad), len(body)))
    if not hmac.compare_digest(mac, tag):
        raise ValueError("bad tag")
    return chacha20(key, 1, nonce, body)


class Hash:
    """The Noise hash functions over one of hashlib's."""

    def __init__(self, name):
        self.name = name
        self.len = hashlib.new(name).digest_size
        self.block = hashlib.new(name).block_size

    def h(self, data):
        return hashlib.new(self.name, data).digest()

    def hmac(self, key, data):
        return hmac.new(key, data, self.name).digest()

    def hkdf(self, ck, ikm, n):
        temp = self.hmac(ck, ikm)
        o1 = self.hmac(temp, b"\x01")
        o2 = self.hmac(temp, o1 + b"\x02")
        if n == 2:
            return o1, o2
        return o1, o2, self.hmac(temp, o2 + b"\x03")


class SymmetricState:
    def __init__(self, protocol, hashname):
        self.H = Hash(hashname)
        name = protocol.encode()
        self.h = name + b"\x00" * (self.H.len - len(name)) if len(name) <= self.H.len \
            else self.H.h(name)
        self.ck = self.h
        self.k = None
        self.n = 0

    def mix_hash(self, data):
        self.h = self.H.h(self.h + data)

    def mix_key(self, ikm):
        self.ck, k = self.H.hkdf(self.ck, ikm, 2)
        self.k, self.n = k[:32], 0

    def encrypt_and_hash(self, pt):
        if self.k is None:
            ct = pt
        else:
            ct = aead_encrypt(self.k, self.n, self.h, pt)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        if self.k is None:
            pt = ct
        else:
            pt = aead_decrypt(self.k, self.n, self.h, ct)
            self.n += 1
        self.mix_hash(ct)
        return pt


class Initiator:
    """The dialer's side of XX: -> e; <- e, ee, s, es; -> s, se."""

    def __init__(self, protocol, hashname, static=None, prologue=b""):
        self.ss = SymmetricState(protocol, hashname)
        self.ss.mix_hash(prologue)
        self.s = static or keypair()
        self.e = keypair()
        self.re = self.rs = None

    def msg1(self, payload):
        self.ss.mix_hash(self.e[1])
        return self.e[1] + self.ss.encrypt_and_hash(payload)

    def read_msg2(self, m):
        self.re = m[:32]
        self.ss.mix_hash(self.re)
        self.ss.mix_key(x25519(self.e[0], self.re))
        self.rs = self.ss.decrypt_and_hash(m[32:80])
        self.ss.mix_key(x25519(self.e[0], self.rs))
        return self.ss.decrypt_and_hash(m[80:])

    def msg3(self, payload):
        out = self.ss.encrypt_and_hash(self.s[1])
        self.ss.mix_key(x25519(self.s[0], self.re))
        return out + self.ss.encrypt_and_hash(payload)


# How hychat frames and names its handshake. These follow the crypto
# modules (src/peer/noise.c, p2p_frame.c): keep them in step.
PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
HASH = "blake2b"
PROLOGUE = b"hychat/2"
OLD_PROLOGUE = b"hychat/1"  # before the dialer's name moved to message 3
HELLO_IN = 3  # the handshake message that carries the dialer's {"type":"handshake"}
LEN_BYTES = 4  # big-endian length before every frame
FRAME_MAX = 512 * 1024 + 16


def frame(data):
    return len(data).to_bytes(LEN_BYTES, "big") + data


def read_frame(s, timeout=5.0):
    s.settimeout(timeout)
    head = recv_exact(s, LEN_BYTES)
    return None if head is None else recv_exact(s, int.from_bytes(head, "big"))


def hello(user):
    import json
    return json.dumps({"type": "handshake", "username": user}).encode()


def forge(port, claimed_user):
    """Runs the whole handshake as claimed_user with a key of its own (the
    name in message 3, encrypted, as hychat/2 does), then waits: "closed"
    if the peer hangs up without a word, "accepted" if it answers with
    anything."""
    hs = Initiator(PROTOCOL, HASH, prologue=PROLOGUE)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(frame(hs.msg1(b"")))
        m2 = read_frame(s)
        if m2 is None:
            return "closed"
        hs.read_msg2(m2)
        s.sendall(frame(hs.msg3(hello(claimed_user))))
        try:
            return "closed" if read_frame(s) is None else "accepted"
        except (socket.timeout, ConnectionResetError):
            return "closed"
    finally:
        s.close()


def dial_as_hychat1(port, user):
    """Opens a handshake as a hychat of protocol hychat/1 did (its prologue,
    its name in clear in message 1): "closed" if the peer hangs up without
    answering, "answered" if it sends message 2."""
    hs = Initiator(PROTOCOL, HASH, prologue=OLD_PROLOGUE)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(frame(hs.msg1(hello(user))))
        try:
            return "closed" if read_frame(s) is None else "answered"
        except (socket.timeout, ConnectionResetError):
            return "closed"
    finally:
        s.close()


def oversized_frame():
    """The largest length the prefix can say (beyond the largest frame), and
    a little of the body: a peer that waits for the rest is wrong."""
    return (2 ** (8 * LEN_BYTES) - 1).to_bytes(LEN_BYTES, "big") + b"x" * 1024
