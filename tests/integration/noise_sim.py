"""noise_sim — simulated hychat peers for the tests, over peer_noise's
Noise XX: a dialer that logs in to a link as a user of its own (to play a
hostile but keyed peer), and a crowd of listeners, one port and one key
per simulated user, served by one thread (to make a channel of a thousand
members on a 2-core machine). Both speak the transport that follows the
handshake: one JSON object per frame, ChaCha20-Poly1305 with counting
nonces, acks for message ids."""
import ctypes
import ctypes.util
import json
import selectors
import socket
import threading
import time

import peer_noise as pn


def _use_libsodium():
    """The crowd's crypto through libsodium (the peer's own dependency):
    pure Python needs about 6 ms a handshake, too slow for a thousand
    links on the peer's 5 s handshake clock."""
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    if lib.sodium_init() < 0:
        raise OSError("sodium_init failed")
    buf = ctypes.create_string_buffer

    def x25519(k, u):
        out = buf(32)
        if lib.crypto_scalarmult_curve25519(out, bytes(k), bytes(u)) != 0:
            raise ValueError("x25519: low-order point")
        return out.raw

    def nonce(n):
        return b"\0" * 4 + n.to_bytes(8, "little")

    def aead_encrypt(key, n, ad, pt):
        out = buf(len(pt) + 16)
        clen = ctypes.c_ulonglong()
        lib.crypto_aead_chacha20poly1305_ietf_encrypt(
            out, ctypes.byref(clen), pt, ctypes.c_ulonglong(len(pt)), ad,
            ctypes.c_ulonglong(len(ad)), None, nonce(n), key)
        return out.raw[:clen.value]

    def aead_decrypt(key, n, ad, ct):
        if len(ct) < 16:
            raise ValueError("bad tag")
        out = buf(len(ct))
        plen = ctypes.c_ulonglong()
        if lib.crypto_aead_chacha20poly1305_ietf_decrypt(
                out, ctypes.byref(plen), None, ct, ctypes.c_ulonglong(len(ct)), ad,
                ctypes.c_ulonglong(len(ad)), nonce(n), key) != 0:
            raise ValueError("bad tag")
        return out.raw[:plen.value]

    pn.x25519, pn.aead_encrypt, pn.aead_decrypt = x25519, aead_encrypt, aead_decrypt


_use_libsodium()


def split(ss):
    """The two transport keys: (initiator to responder, the other way)."""
    k1, k2 = ss.H.hkdf(ss.ck, b"", 2)
    return k1[:32], k2[:32]


class Transport:
    def __init__(self, k_send, k_recv):
        self.ks, self.kr = k_send, k_recv
        self.ns = self.nr = 0

    def seal(self, obj):
        ct = pn.aead_encrypt(self.ks, self.ns, b"", json.dumps(obj).encode())
        self.ns += 1
        return pn.frame(ct)

    def open(self, data):
        pt = pn.aead_decrypt(self.kr, self.nr, b"", data)
        self.nr += 1
        return json.loads(pt)


class Responder:
    """The listener's side of XX: <- e; -> e, ee, s, es; <- s, se."""

    def __init__(self, static):
        self.ss = pn.SymmetricState(pn.PROTOCOL, pn.HASH)
        self.ss.mix_hash(pn.PROLOGUE)
        self.s = static
        self.e = pn.keypair()
        self.re = self.rs = None

    def read_msg1(self, m):
        self.re = m[:32]
        self.ss.mix_hash(self.re)
        return self.ss.decrypt_and_hash(m[32:])

    def msg2(self, payload):
        self.ss.mix_hash(self.e[1])
        self.ss.mix_key(pn.x25519(self.e[0], self.re))
        out = self.e[1] + self.ss.encrypt_and_hash(self.s[1])
        self.ss.mix_key(pn.x25519(self.s[0], self.re))
        return out + self.ss.encrypt_and_hash(payload)

    def read_msg3(self, m):
        self.rs = self.ss.decrypt_and_hash(m[:48])
        self.ss.mix_key(pn.x25519(self.e[0], self.rs))
        return self.ss.decrypt_and_hash(m[48:])


def hello(user):
    return json.dumps({"type": "handshake", "username": user}).encode()


def dial(port, user, static, timeout=5.0):
    """Links to the peer at port as user (static: its key pair), the way a
    hychat dialer does. Returns (socket, transport) once the peer's
    handshake_ack came, or raises if it hung up."""
    hs = pn.Initiator(pn.PROTOCOL, pn.HASH, static=static, prologue=pn.PROLOGUE)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(pn.frame(hs.msg1(hello(user) if pn.HELLO_IN == 1 else b"")))
    m2 = pn.read_frame(s, timeout)
    if m2 is None:
        raise ConnectionError("closed after the first message")
    hs.read_msg2(m2)
    s.sendall(pn.frame(hs.msg3(hello(user) if pn.HELLO_IN == 3 else b"")))
    t = Transport(*split(hs.ss))
    ack = pn.read_frame(s, timeout)
    if ack is None:
        raise ConnectionError("refused after the handshake")
    obj = t.open(ack)
    if obj.get("type") != "handshake_ack":
        raise ConnectionError("expected handshake_ack, got %r" % obj)
    return s, t


class Crowd:
    """Simulated users, each listening on a port of its own with a key of
    its own; one thread answers every handshake as the user whose port was
    dialed, then acknowledges and records every chat and channel message.
    got[user] is the list of messages user received."""

    def __init__(self, names):
        self.users = {}
        self.got = {n: [] for n in names}
        self.handshakes = 0
        self.errors = []
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        for n in names:
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", 0))
            ls.listen(64)
            ls.setblocking(False)
            self.users[n] = {"key": pn.keypair(), "port": ls.getsockname()[1]}
            self.sel.register(ls, selectors.EVENT_READ, ("listen", n))
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def port(self, n):
        return self.users[n]["port"]

    def pubkey(self, n):
        return self.users[n]["key"][1]

    def received(self, n):
        with self.lock:
            return list(self.got[n])

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def _run(self):
        while not self.stopping:
            for key, _ in self.sel.select(0.1):
                kind, state = key.data
                try:
                    if kind == "listen":
                        self._accept(key.fileobj, state)
                    else:
                        self._read(key.fileobj, state)
                except Exception as e:  # one bad link must not stop the crowd
                    self.errors.append("%s: %r" % (state.get("user"), e))
                    self._drop(key.fileobj)

    def _accept(self, ls, user):
        try:
            c, _ = ls.accept()
        except BlockingIOError:
            return
        c.setblocking(False)
        state = {"user": user, "buf": b"", "hs": Responder(self.users[user]["key"]),
                 "step": 1, "t": None}
        self.sel.register(c, selectors.EVENT_READ, ("conn", state))

    def _drop(self, c):
        try:
            self.sel.unregister(c)
        except (KeyError, ValueError):
            pass
        c.close()

    def _send(self, c, data):
        c.setblocking(True)
        c.settimeout(5)
        c.sendall(data)
        c.setblocking(False)

    def _read(self, c, st):
        try:
            data = c.recv(65536)
        except BlockingIOError:
            return
        if not data:
            self._drop(c)
            return
        st["buf"] += data
        while len(st["buf"]) >= pn.LEN_BYTES:
            n = int.from_bytes(st["buf"][:pn.LEN_BYTES], "big")
            if len(st["buf"]) < pn.LEN_BYTES + n:
                return
            msg = st["buf"][pn.LEN_BYTES:pn.LEN_BYTES + n]
            st["buf"] = st["buf"][pn.LEN_BYTES + n:]
            self._frame(c, st, msg)

    def _frame(self, c, st, msg):
        hs = st["hs"]
        if st["step"] == 1:
            hs.read_msg1(msg)
            self._send(c, pn.frame(hs.msg2(b"")))
            st["step"] = 3
        elif st["step"] == 3:
            hs.read_msg3(msg)
            k1, k2 = split(hs.ss)
            st["t"] = Transport(k2, k1)
            st["step"] = 0
            self._send(c, st["t"].seal({"type": "handshake_ack", "username": st["user"]}))
            with self.lock:
                self.handshakes += 1
        else:
            obj = st["t"].open(msg)
            if obj.get("type") in ("chat", "broadcast"):
                with self.lock:
                    self.got[st["user"]].append(obj)
                if obj.get("id"):
                    self._send(c, st["t"].seal({"type": "ack", "ids": [obj["id"]]}))


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("not within %.0fs: %s" % (timeout, what))
