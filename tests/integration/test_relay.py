#!/usr/bin/env python3
"""hychat-relay against friendly and hostile clients: two halves of a
token are spliced byte for byte (what follows the token line included);
bad, expired, foreign-key and reused tokens are refused; slowloris token
lines are cut at the token timeout while a real pair is still spliced at
once; a connection flood from one address is shed without starving
another; per-user connection caps, bytes per second and the idle timeout
hold; a reader that never reads does not grow the relay's memory."""
import hashlib
import hmac
import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import (Proc, binary, case, free_port, raise_fd_limit,  # noqa: E402
                    request, rss_kb, run)
from peer_harness import tracker_store  # noqa: E402

SECRET = b"a secret shared by the tracker and its relays, 32+ bytes\n"
DIR = tempfile.mkdtemp(prefix="hychat-relay-")
SECRET_FILE = os.path.join(DIR, "secret")
TOKEN_TIMEOUT_S = 5  # RELAY_TOKEN_MS


def key(secret=SECRET):
    return hashlib.blake2b(secret.rstrip(b"\r\n"), digest_size=32).digest()


def token(tid, frm, to, expiry=None, k=None):
    expiry = expiry if expiry is not None else int(time.time()) + 60
    body = "HYRELAY1 %s %d %s %s" % (tid, expiry, frm, to)
    mac = hmac.new(k or key(), body.encode(), hashlib.sha512).digest()[:32]
    return (body + " " + mac.hex() + "\n").encode()


def new_id():
    return os.urandom(16).hex()


def start(*extra):
    port = free_port()
    p = Proc([binary("hychat-relay"), "--listen", "127.0.0.1:%d" % port,
              "--relay-secret", SECRET_FILE, *extra], port=port)
    return p, port


def dial(port, data=b"", src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    if data:
        s.sendall(data)
    return s


def recv_n(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(min(65536, n - len(out)))
        if not d:
            break
        out += d
    return out


def refused(s, timeout=3):
    """The relay's answer to a refused connection: ERR line, then EOF."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return out.decode(errors="replace")
            out += d
    except socket.timeout:
        return None
    except ConnectionResetError:
        return out.decode(errors="replace") or "reset"


def pair(port, a="alice", b="bob", tid=None):
    tid = tid or new_id()
    x = dial(port, token(tid, a, b) + b"hello from " + a.encode())
    y = dial(port, token(tid, b, a) + b"hello from " + b.encode())
    return x, y, tid


def setup():
    with open(SECRET_FILE, "wb") as f:
        f.write(SECRET)
    os.chmod(SECRET_FILE, 0o600)
    raise_fd_limit(8192)
    return start()


CTX = {}


@case
def test_splice_byte_for_byte():
    p, port = CTX["relay"]
    x, y, _ = pair(port)
    assert recv_n(y, 16) == b"hello from alice"
    assert recv_n(x, 14) == b"hello from bob"
    blob = os.urandom(1 << 20)
    x.sendall(blob)
    assert recv_n(y, len(blob)) == blob
    y.sendall(blob[::-1])
    assert recv_n(x, len(blob)) == blob[::-1]
    x.close()
    y.settimeout(3)
    assert y.recv(1) == b"", "the partner's end follows"
    y.close()


@case
def test_bad_tokens_refused():
    p, port = CTX["relay"]
    tid = new_id()
    cases = {
        "bad token signature": token(tid, "alice", "bob", k=key(b"another secret" * 4)),
        "token expired": token(tid, "alice", "bob", expiry=int(time.time()) - 5),
        "not a relay token": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "malformed token": b"HYRELAY1 zz 1 alice bob 00\n",
        "token line too long": b"HYRELAY1 " + b"A" * 400,
    }
    for why, data in cases.items():
        s = dial(port, data)
        got = refused(s)
        assert got is not None and why in got, (why, got)
        s.close()
    # tampered: the names swapped under the same MAC
    line = token(tid, "alice", "bob").decode()
    f = line.split(" ")
    f[3], f[4] = f[4], f[3]
    s = dial(port, " ".join(f).encode())
    assert "bad token signature" in (refused(s) or "")
    assert p.alive()


@case
def test_token_used_twice():
    p, port = CTX["relay"]
    x, y, tid = pair(port)
    assert recv_n(y, 16) == b"hello from alice"
    # the same half again, after the splice: refused, the splice untouched
    z = dial(port, token(tid, "alice", "bob"))
    assert "token already used" in (refused(z) or "")
    x.sendall(b"still here")
    assert recv_n(y, 10) == b"still here"
    # the same half twice while waiting for the partner
    tid = new_id()
    a1 = dial(port, token(tid, "carol", "dave"))
    time.sleep(0.2)
    a2 = dial(port, token(tid, "carol", "dave"))
    assert "token already used" in (refused(a2) or "")
    for s in (x, y, z, a1, a2):
        s.close()


@case
def test_slowloris_token_lines():
    p, port = CTX["relay"]
    slow = []
    line = token(new_id(), "mallory", "bob")
    for i in range(20):  # under the per-address cap of connections without a token
        slow.append(dial(port, line[:10], src="127.0.0.3"))
    for s in slow:
        s.sendall(line[10:12])
    t0 = time.monotonic()
    x, y, _ = pair(port)
    assert recv_n(y, 16) == b"hello from alice"
    assert time.monotonic() - t0 < 0.5, "a real pair waited beside slow token lines"
    time.sleep(TOKEN_TIMEOUT_S + 1)
    cut = sum(1 for s in slow if refused(s, 0.5) is not None)
    assert cut == len(slow), "%d of %d slow lines cut" % (cut, len(slow))
    for s in slow + [x, y]:
        s.close()


@case
def test_connection_flood():
    p, port = CTX["relay"]
    flood = []
    for i in range(1000):
        try:
            flood.append(dial(port, src="127.0.0.2"))
        except OSError:
            break
    time.sleep(0.3)
    t0 = time.monotonic()
    x, y, _ = pair(port)
    assert recv_n(y, 16) == b"hello from alice"
    took = time.monotonic() - t0
    assert took < 1.0, "a pair took %.2f s during a flood" % took
    shed = sum(1 for s in flood if refused(s, 0.05) is not None)
    assert shed >= len(flood) - 32, "only %d of %d shed" % (shed, len(flood))
    for s in flood + [x, y]:
        s.close()
    assert p.alive()


@case
def test_user_connection_cap():
    p, port = CTX["relay"]
    socks = [dial(port, token(new_id(), "eve", "bob")) for _ in range(16)]
    time.sleep(0.3)
    extra = dial(port, token(new_id(), "eve", "bob"))
    assert "too many relayed connections" in (refused(extra) or "")
    for s in socks:
        s.close()
    time.sleep(0.3)
    x, y, _ = pair(port, "eve", "bob")
    assert recv_n(y, 14) == b"hello from eve"
    x.close()
    y.close()


@case
def test_user_rate_and_idle():
    p, port = start("--user-rate", "131072", "--idle-timeout", "2")
    try:
        x, y, _ = pair(port)
        assert recv_n(y, 16) == b"hello from alice"
        blob = os.urandom(512 * 1024)
        t0 = time.monotonic()
        x.settimeout(30)
        y.settimeout(30)
        import threading
        th = threading.Thread(target=x.sendall, args=(blob,))
        th.start()
        assert recv_n(y, len(blob)) == blob
        took = time.monotonic() - t0
        th.join()
        assert took >= 2.5, "512 KiB at 128 KiB/s took only %.2f s" % took
        # idle: nothing either way for 2 s closes both
        t0 = time.monotonic()
        y.settimeout(5)
        assert y.recv(1) == b""
        assert 1.5 < time.monotonic() - t0 < 4
    finally:
        p.stop()


@case
def test_reader_never_reads():
    p, port = start("--user-rate", str(1 << 30))
    try:
        x, y, _ = pair(port)
        y.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert recv_n(y, 16) == b"hello from alice"
        before = rss_kb(p.pid)
        x.setblocking(False)
        sent = 0
        chunk = b"x" * 65536
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:
            try:
                sent += x.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
        grown = rss_kb(p.pid) - before
        # the kernel's buffers on loopback hold ~20 MB; the relay 256 KiB
        assert sent < 32 << 20, "the relay took %d bytes for a reader that never reads" % sent
        assert grown < 8 * 1024, "the relay grew %d KiB" % grown
        x.close()
        y.close()
    finally:
        p.stop()


def tracker_call(port, method, path, body=None, token=None):
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    st, _, raw = request(port, method, path, body=body, headers=hdrs)
    return st, (json.loads(raw) if raw else None)


@case
def test_tracker_rendezvous_through_the_relay():
    """The tracker signs both halves: ours in the answer, the peer's in
    its next /hints (once); they meet at the relay. Observed addresses
    come back in /submit-info, /peers/USER and /whoami."""
    rp, rport = CTX["relay"]
    tport = free_port()
    db = os.path.join(DIR, "tracker.db")
    t = Proc([binary("hychat-tracker"), "--listen", "127.0.0.1:%d" % tport] + tracker_store(db) + [
              "--quiet", "--kdf-cost", "min", "--relay", "127.0.0.1:%d" % rport,
              "--relay-secret", SECRET_FILE], port=tport)
    try:
        tok = {}
        for u in ("alice", "bob", "carol"):
            st, _ = tracker_call(tport, "POST", "/register",
                                 {"username": u, "password": u + " password"})
            assert st == 201, st
            st, d = tracker_call(tport, "POST", "/login",
                                 {"username": u, "password": u + " password"})
            tok[u] = d["token"]
        for i, u in enumerate(("alice", "bob")):
            st, d = tracker_call(tport, "POST", "/submit-info",
                                 {"username": u, "ip": "10.0.0.%d" % (i + 1), "port": 9000},
                                 tok[u])
            assert st == 200 and d["observed_ip"] == "127.0.0.1", d
        st, d = tracker_call(tport, "GET", "/peers/bob", token=tok["alice"])
        assert d["ip"] == "10.0.0.2" and d["observed_ip"] == "127.0.0.1", d
        assert "ip6" not in d, d
        # dual stack: an IPv6 address beside, listed with the other
        for bad, code in (("fe80::1", 400), ("10.0.0.9", 400), ("::ffff:10.0.0.9", 400),
                          ("fd00::1\u0000x", 400), ("not an address", 400), (7, 400),
                          ("ff02::1", 403), ("::", 403)):
            st, d = tracker_call(tport, "POST", "/submit-info",
                                 {"username": "bob", "ip": "10.0.0.2", "port": 9000,
                                  "ip6": bad}, tok["bob"])
            assert st == code, (bad, st, d)
        st, d = tracker_call(tport, "POST", "/submit-info",
                             {"username": "bob", "ip": "10.0.0.2", "port": 9000,
                              "ip6": "fd00:2:b::2"}, tok["bob"])
        assert st == 200 and d["ip6"] == "fd00:2:b::2", d
        st, d = tracker_call(tport, "GET", "/peers/bob", token=tok["alice"])
        assert d["ip"] == "10.0.0.2" and d["ip6"] == "fd00:2:b::2", d
        st, d = tracker_call(tport, "GET", "/get-list?all=1", token=tok["alice"])
        bob = [p for p in d["peers"] if p["username"] == "bob"][0]
        assert bob["ip6"] == "fd00:2:b::2" and bob["ip"] == "10.0.0.2", d
        st, d = tracker_call(tport, "POST", "/submit-info",
                             {"username": "bob", "ip": "10.0.0.2", "port": 9000}, tok["bob"])
        st, d = tracker_call(tport, "GET", "/peers/bob", token=tok["alice"])
        assert "ip6" not in d, "registering without ip6 drops it: %s" % d
        st, d = tracker_call(tport, "GET", "/whoami", token=tok["alice"])
        assert d["observed_ip"] == "127.0.0.1" and d["relays"] == ["127.0.0.1:%d" % rport], d
        st, _ = tracker_call(tport, "GET", "/whoami")
        assert st == 401
        # carol is offline: no token; oneself: refused
        st, _ = tracker_call(tport, "POST", "/rendezvous", {"peer": "carol"}, tok["alice"])
        assert st == 404, st
        st, _ = tracker_call(tport, "POST", "/rendezvous", {"peer": "alice"}, tok["alice"])
        assert st == 400, st
        st, d = tracker_call(tport, "POST", "/rendezvous", {"peer": "bob"}, tok["alice"])
        assert st == 200 and d["relay"] == "127.0.0.1:%d" % rport and d["via"] == "relay", d
        mine = d["token"]
        assert mine.split(" ")[3:5] == ["alice", "bob"], mine
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert len(d["hints"]) == 1, d
        h = d["hints"][0]
        assert h["type"] == "relay" and h["peer"] == "alice", h
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert d["hints"] == [], "a hint is given once"
        x = dial(rport, mine.encode() + b"\n" + b"ping")
        y = dial(rport, h["token"].encode() + b"\n" + b"pong")
        assert recv_n(y, 4) == b"ping" and recv_n(x, 4) == b"pong"
        x.close()
        y.close()
        # a dial hint carries no token
        st, d = tracker_call(tport, "POST", "/rendezvous", {"peer": "alice", "via": "dial"},
                             tok["bob"])
        assert st == 200 and "token" not in d and d["via"] == "dial", d
        st, d = tracker_call(tport, "GET", "/hints", token=tok["alice"])
        assert d["hints"] == [{"type": "dial", "peer": "bob"}], d
        # a punch: each gets the other's observed address and peer port
        st, d = tracker_call(tport, "POST", "/rendezvous", {"peer": "bob", "via": "punch"},
                             tok["alice"])
        assert st == 200 and d["via"] == "punch" and d["ip"] == "127.0.0.1" \
            and d["port"] == 9000, d
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert d["hints"] == [{"type": "punch", "peer": "alice", "ip": "127.0.0.1",
                               "port": 9000}], d
        # from a fresh port: bob gets that port, both are told "fresh"
        st, d = tracker_call(tport, "POST", "/rendezvous",
                             {"peer": "bob", "via": "punch", "port": 40123}, tok["alice"])
        assert st == 200 and d["port"] == 9000 and d["fresh"] is True, d
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert d["hints"] == [{"type": "punch", "peer": "alice", "ip": "127.0.0.1",
                               "port": 40123, "fresh": True}], d
        for bad in (0, 65536, -1, "40123", 1.5):
            st, _ = tracker_call(tport, "POST", "/rendezvous",
                                 {"peer": "bob", "via": "punch", "port": bad}, tok["alice"])
            assert st == 400, bad
        st, _ = tracker_call(tport, "POST", "/rendezvous", {"peer": "bob", "via": "x"},
                             tok["alice"])
        assert st == 400
        # a caller cannot make bob connect somewhere at will: 20, then 1/s
        codes = [tracker_call(tport, "POST", "/rendezvous", {"peer": "bob"}, tok["alice"])[0]
                 for _ in range(40)]
        assert codes.count(429) >= 15 and codes[:15] == [200] * 15, codes
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert len(d["hints"]) == 8, "a user keeps its 8 newest hints"
        st, _ = tracker_call(tport, "POST", "/rendezvous", {"peer": "alice"}, tok["bob"])
        assert st == 200, "another caller has its own budget"
        # hints are for a session: bob's logout drops those waiting, so
        # that his next session does not dial, punch or meet for the one
        # that ended (a punch to a fresh port long closed, say)
        time.sleep(1.1)  # one more rendezvous in alice's budget
        st, _ = tracker_call(tport, "POST", "/rendezvous", {"peer": "bob", "via": "dial"},
                             tok["alice"])
        assert st == 200, st
        st, _ = tracker_call(tport, "POST", "/logout", {}, tok["bob"])
        assert st == 200, st
        st, d = tracker_call(tport, "POST", "/login",
                             {"username": "bob", "password": "bob password"})
        tok["bob"] = d["token"]
        st, d = tracker_call(tport, "POST", "/submit-info",
                             {"username": "bob", "ip": "10.0.0.2", "port": 9000}, tok["bob"])
        assert st == 200, d
        st, d = tracker_call(tport, "GET", "/hints", token=tok["bob"])
        assert d["hints"] == [], "a logout drops the hints waiting: %s" % d
    finally:
        t.stop()


def teardown(ctx):
    p, _ = CTX["relay"]
    rc = p.stop()
    out = p.output()
    if rc != 0 or "ERROR" in out or "Sanitizer" in out:
        print(out[-4000:])
        raise SystemExit("hychat-relay exited %s" % rc)


def main_setup():
    CTX["relay"] = setup()


if __name__ == "__main__":
    run(setup=main_setup, teardown=teardown)
