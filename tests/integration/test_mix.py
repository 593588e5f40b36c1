#!/usr/bin/env python3
"""Hostile load across the system: a flood of 10,000 connections to the
tracker (the cap answered with 503, service back after); then a random mix
of oversized, truncated and malformed requests and frames for 60 s against
the tracker, the proxy (in front of hychat-httpd) and a peer at once, and
hostile pages against the peer's web bridge (foreign origins, commands
without the secret, bad frames): every one refused, none taking effect.
Afterwards every process still answers correctly and its memory is back
within 10% of what it was before the mix.

HYCHAT_MIX_SECONDS changes the length of the mix (default 60)."""
import base64
import html
import json
import os
import random
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import (  # noqa: E402
                    Proc, binary, case, connect_many, count_503, free_port, raise_fd_limit,
                    recv_exact, request, rss_kb, run, steady_memory_env)
from peer_harness import register, start_peer, start_tracker, tracker_store  # noqa: E402

FLOOD = 10000
CAP = 5000
RATE = 200
MIX_S = float(os.environ.get("HYCHAT_MIX_SECONDS", 60))
ASAN = steady_memory_env()
S = {}




def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-mix-")
    os.environ.update(ASAN)


def teardown(_):
    shutil.rmtree(S["tmp"], ignore_errors=True)


@case
def tracker_flood_of_10000_connections_is_capped_and_recovers():
    have = raise_fd_limit(FLOOD * 2 + 500)
    assert have >= FLOOD + 500, "fd limit %d too low for the flood" % have
    port = free_port()
    p = Proc([binary("hychat-tracker"), "--listen", "127.0.0.1:%d" % port, "--quiet",
              "--max-conns", str(CAP)] + tracker_store(os.path.join(S["tmp"], "flood.db")),
             port=port, env=ASAN)
    try:
        assert request(port, "GET", "/get-list")[0] == 401
        rss_after = []
        for round in (1, 2, 3, 4):
            socks = connect_many(port, FLOOD)
            time.sleep(1.0)
            assert p.alive(), p.output()[-2000:]
            refused = count_503(socks[CAP + 10:])
            want = FLOOD - CAP - 10
            assert refused == want, "%d of %d over the cap saw 503" % (refused, want)
            # Those under the cap are still served, on the connection they hold.
            socks[0].sendall(b"GET /get-list HTTP/1.1\r\nHost: x\r\n\r\n")
            assert socks[0].recv(4096).startswith(b"HTTP/1.1 401")
            for s in socks:
                s.close()
            time.sleep(1.5)
            assert request(port, "GET", "/get-list")[0] == 401
            rss = rss_kb(p.pid)
            print("  tracker flood %d: %d connections, %d answered 503, RSS %d kB"
                  % (round, FLOOD, refused, rss))
            rss_after.append(rss)
        # Once the allocator has seen a flood, the next reuses its memory. A
        # leak grows RSS every round; a loaded machine (the connections of
        # one round alive together longer) may lift one round's peak. So
        # of the rounds after the second, one at least must not grow.
        growth = [b / a for a, b in zip(rss_after[1:], rss_after[2:])]
        assert min(growth) <= 1.03, "RSS after floods 2, 3, 4: %s kB" % rss_after
    finally:
        assert p.stop() == 0, p.output()[-3000:]


# The mix. Each generator returns bytes to send on a fresh connection.

def http_bad(rnd, host):
    pick = rnd.randrange(12)
    if pick == 0:
        return os.urandom(rnd.randrange(1, 4096))
    if pick == 1:  # a header line far over the limit
        return b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nX: " + b"a" * 200000 + b"\r\n\r\n"
    if pick == 2:  # truncated head
        return b"POST /login HTTP/1.1\r\nHost: " + host + b"\r\nContent-Le"
    if pick == 3:  # body shorter than its length, then close
        return (b"POST /login HTTP/1.1\r\nHost: " + host +
                b"\r\nContent-Length: 1000\r\n\r\n{\"username\":")
    if pick == 4:  # bad chunk sizes
        return (b"POST /register HTTP/1.1\r\nHost: " + host +
                b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    if pick == 5:  # a huge declared body
        return (b"POST /submit-info HTTP/1.1\r\nHost: " + host +
                b"\r\nContent-Length: 99999999999\r\n\r\n" + b"x" * 1000)
    if pick == 6:  # JSON that is not UTF-8, deep, or the wrong shape
        body = rnd.choice([b"\xff\xfe{\"username\":\"\xc3\x28\"}", b"[" * 5000 + b"]" * 5000,
                           b"{\"username\":[1,2,3],\"password\":{}}", b"null", b"{\"a\":1e999}"])
        return (b"POST /login HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    if pick == 7:  # a bad method, version, target
        return rnd.choice([b"BREW / HTCPCP/1.0\r\n\r\n", b"GET  HTTP/1.1\r\n\r\n",
                           b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                           b"GET /%00%ff/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"])
    if pick == 8:  # conflicting lengths (smuggling)
        return (b"POST /login HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    if pick == 9:  # too many headers
        return b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n" + b"X-A: b\r\n" * 500 + b"\r\n"
    if pick == 10:  # pipelined good and bad
        return (b"GET /get-list HTTP/1.1\r\nHost: " + host + b"\r\n\r\n" + os.urandom(64))
    return b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"  # a good one


def peer_bad(rnd, host):
    pick = rnd.randrange(7)
    if pick == 0:
        return os.urandom(rnd.randrange(1, 4096))
    if pick == 1:  # the largest length a header can say
        return b"\xff\xff\xff\xff" + os.urandom(512)
    if pick == 2:  # a frame just over the limit
        return struct.pack(">I", 512 * 1024 + 17) + b"x" * 100
    if pick == 3:  # a valid-sized handshake frame of garbage
        return struct.pack(">I", 32) + os.urandom(32) + struct.pack(">I", 96) + os.urandom(96)
    if pick == 4:  # plaintext the peer does not allow
        return b'{"type":"handshake","username":"mallory"}'
    if pick == 5:  # a truncated frame, then close
        return struct.pack(">I", 1000) + os.urandom(10)
    return b"\x00\x00"


def blast(port, gen, host, deadline, counts, seed):
    """Sends gen's bytes on fresh connections until deadline. counts:
    [connections made, connections that failed to connect, reasons...]."""
    rnd = random.Random(seed)
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        data = gen(rnd, host)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError as e:
            counts[1] += 1
            counts.append(type(e).__name__ + ": " + str(e)[:60])
            continue
        counts[0] += 1
        try:
            # Reset on close: no TIME_WAIT to eat the ephemeral ports.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.settimeout(0.25)
            s.sendall(data)
            if rnd.random() < 0.5:
                s.shutdown(socket.SHUT_WR)
            s.recv(4096)
        except OSError:
            pass  # cut by the server, as it should be, or slow to answer
        finally:
            s.close()
        # At most RATE connections a second per thread.
        left = 1.0 / RATE - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)


# A minimal WebSocket client (RFC 6455), enough to play a browser tab or a
# hostile page.

def ws_upgrade(port, origin, path="/ws", cookie="own"):
    """A socket after the upgrade, or (None, status line) if refused. The
    cookie: "own" for the session cookie of the bridge, None for none."""
    if cookie == "own":
        cookie = S.get("bridge_cookie")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    head = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            % (path, port, key))
    if origin is not None:
        head += "Origin: %s\r\n" % origin
    if cookie is not None:
        head += "Cookie: %s\r\n" % cookie
    s.sendall((head + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    status = data.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        s.close()
        return None, status
    return s, status


def ws_frame(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read(s):
    """(opcode, payload) of the next frame from the server, or None."""
    try:
        h = recv_exact(s, 2)
        if h is None:
            return None
        n = h[1] & 0x7f
        if n >= 126:
            ext = recv_exact(s, 2 if n == 126 else 8)
            if ext is None:
                return None
            n = struct.unpack(">H" if n == 126 else ">Q", ext)[0]
        body = recv_exact(s, n)
        return None if body is None else (h[0] & 0x0f, body)
    except OSError:
        return None


def bridge_login(peer, port):
    """Spends the peer's one-time web address for the session cookie."""
    with open(os.path.join(peer.data_dir, "web-url")) as f:
        token = re.search(r"\?token=([0-9a-f]+)", f.read()).group(1)
    st, hdrs, _ = request(port, "GET", "/?token=" + token)
    assert st == 303, st
    S["bridge_cookie"] = hdrs["set-cookie"].split(";")[0]


def bridge_secret(port):
    st, _, body = request(port, "GET", "/", headers={"Host": "127.0.0.1:%d" % port,
                                                    "Cookie": S["bridge_cookie"]})
    assert st == 200, st
    m = re.search(r'name="hychat-config" content="([^"]*)"', body.decode())
    return json.loads(html.unescape(m.group(1)))["secret"]


def ws_bad(rnd, port):
    """One hostile attempt on the bridge; returns True if it was refused."""
    pick = rnd.randrange(7)
    own = "http://127.0.0.1:%d" % port
    if pick == 0:  # a foreign page
        s, st = ws_upgrade(port, rnd.choice(["http://evil.example", "null",
                                             "http://127.0.0.1:1", "http://localhost.evil"]))
        return s is None  # refused: 403, or closed before any 101
    if pick == 1:  # no Origin at all, or our origin without the session cookie
        s, st = rnd.choice([lambda: ws_upgrade(port, None),
                            lambda: ws_upgrade(port, own, cookie=None)])()
        return s is None
    if pick in (2, 3):  # our origin, but commands without the secret or a wrong one
        s, st = ws_upgrade(port, own)
        if s is None:
            return False
        first = "auth wrong-%d" % rnd.randrange(10 ** 6) if pick == 3 else ""
        line = first or "send alice HACKED-%d" % rnd.randrange(10 ** 6)
        s.sendall(ws_frame(line.encode()))
        if pick == 3:
            s.sendall(ws_frame(b"send alice HACKED-after-a-wrong-secret"))
        f = ws_read(s)
        s.close()
        return f is None or (f[0] == 8 and f[1][:2] == struct.pack(">H", 1008))
    if pick == 4:  # a binary frame, a frame of impossible length
        s, st = ws_upgrade(port, own)
        if s is None:
            return False
        s.sendall(rnd.choice([ws_frame(os.urandom(64), opcode=2),
                              b"\x81\xff" + b"\x7f" * 8 + os.urandom(4) + b"x" * 100,
                              os.urandom(200)]))
        f = ws_read(s)
        s.close()
        return f is None or f[0] == 8
    if pick == 5:  # /confirm-login without the secret
        st, _, _ = request(port, "GET", "/confirm-login",
                           headers={"Host": "127.0.0.1:%d" % port})
        return st == 403
    try:  # garbage
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(os.urandom(rnd.randrange(1, 2048)))
        s.settimeout(0.5)
        s.recv(4096)
        s.close()
    except OSError:
        pass
    return True


def ws_blast(port, deadline, counts, seed):
    rnd = random.Random(seed)
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            refused = ws_bad(rnd, port)
        except OSError:
            refused = True  # cut by the bridge
        counts[0] += 1
        counts[1] += 0 if refused else 1
        left = 1.0 / RATE - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)


def run_workers(jobs):
    """Runs each (function, args) in its own thread until all are done;
    an exception in any of them is raised here, in the main thread, not
    left to die with its thread."""
    errors = []

    def wrap(fn, args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: B902 — re-raised below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@case
def a_minute_of_malformed_input_leaves_everything_serving():
    raise_fd_limit(4096)
    tmp = S["tmp"]
    # The tracker, two peers, hychat-httpd behind hychat-proxy.
    tracker, tport = start_tracker(tmp, extra=["--kdf-cost", "min"])
    hport, pport = free_port(), free_port()
    httpd = Proc([binary("hychat-httpd"), "--listen", "127.0.0.1:%d" % hport, "--quiet",
                  "--root", os.path.join(os.path.dirname(__file__), "..", "..", "www")],
                 port=hport, env=ASAN)
    conf = os.path.join(tmp, "proxy.conf")
    with open(conf, "w") as f:
        f.write('host "app.local" default {\n    proxy_pass http://127.0.0.1:%d;\n}\n' % hport)
    proxy = Proc([binary("hychat-proxy"), "-c", conf, "--listen", "127.0.0.1:%d" % pport],
                 port=pport, env=ASAN)
    register(tport, "alice", "alice pw")
    register(tport, "bob", "bob pw")
    a = start_peer("alice", tport, tmp, "alice pw")
    wport = free_port()
    b = start_peer("bob", tport, tmp, "bob pw", extra=["--web", str(wport)])
    bridge_login(b, wport)
    procs = [("tracker", tracker.pid), ("proxy", proxy.pid), ("peer", b.p.pid)]
    try:
        def healthy(timeout=15):
            assert request(tport, "GET", "/get-list")[0] == 401
            st, _, body = request(tport, "POST", "/login",
                                  {"username": "alice", "password": "alice pw"})
            assert st == 200 and "token" in json.loads(body), (st, body)
            st, _, _ = request(pport, "GET", "/login.html", headers={"Host": "app.local"})
            assert st == 200, st
            m = b.mark()
            text = "still here %f" % time.time()
            a.cmd("send bob " + text)
            b.wait(lambda e: e.get("type") == "chat" and e.get("message") == text, timeout, m,
                   "a message after the mix")
            # A tab of bob's own page, with its cookie and secret, sends for bob.
            ws, st = ws_upgrade(wport, "http://127.0.0.1:%d" % wport)
            assert ws is not None, st
            ws.sendall(ws_frame(("auth " + bridge_secret(wport)).encode()))
            hello = json.loads(ws_read(ws)[1])
            assert hello["type"] == "hello" and hello["username"] == "bob", hello
            m = a.mark()
            text = "from the tab %f" % time.time()
            ws.sendall(ws_frame(("send alice " + text).encode()))
            a.wait(lambda e: e.get("type") == "chat" and e.get("message") == text, timeout, m,
                   "a message from bob's tab")
            ws.close()

        # Warm up (pools, caches, the link), then the baseline.
        healthy()
        warm = time.monotonic() + 8
        counts = {n: [0, 0] for n in ("tracker", "proxy", "peer", "bridge")}
        run_workers([(blast, (port, gen, host, warm, counts[name], 1))
                     for name, port, gen, host in (("tracker", tport, http_bad, b"t"),
                                                   ("proxy", pport, http_bad, b"app.local"),
                                                   ("peer", b.port, peer_bad, b""))]
                    + [(ws_blast, (wport, warm, counts["bridge"], 2))])
        time.sleep(2.0)
        healthy()
        base = {n: rss_kb(pid) for n, pid in procs}

        # The mix counts afresh: the warm-up alone must not satisfy it.
        counts = {n: [0, 0] for n in ("tracker", "proxy", "peer", "bridge")}
        deadline = time.monotonic() + MIX_S
        run_workers([(blast, (port, gen, host, deadline, counts[name], 100 + i))
                     for i, (name, port, gen, host) in enumerate((
                         ("tracker", tport, http_bad, b"t"), ("tracker", tport, http_bad, b"t"),
                         ("proxy", pport, http_bad, b"app.local"),
                         ("proxy", pport, http_bad, b"app.local"),
                         ("peer", b.port, peer_bad, b""), ("peer", b.port, peer_bad, b"")))]
                    + [(ws_blast, (wport, deadline, counts["bridge"], 200))])
        # Recovery on its own: no dial by hand. The per-address handshake
        # budget refills, and a link that was lost is dialed again with a
        # backoff of at most 30 s.
        healthy(timeout=45)
        after = {n: rss_kb(pid) for n, pid in procs}
        for n, _ in procs:
            print("  %s: %d connections of malformed input in %.0f s (%d failed to connect), "
                  "RSS %d kB -> %d kB" % (n, counts[n][0], MIX_S, counts[n][1], base[n], after[n]))
        print("  bridge: %d hostile pages, sockets and requests in %.0f s, %d not refused"
              % (counts["bridge"][0], MIX_S, counts["bridge"][1]))
        assert counts["bridge"][0] > 100, counts["bridge"]
        assert counts["bridge"][1] == 0, "the bridge let %d through" % counts["bridge"][1]
        hacked = [e for e in a.events() if "HACKED" in json.dumps(e)]
        assert not hacked, "a command without the secret ran: %r" % hacked[:3]
        for n, _ in procs:
            assert counts[n][0] > 100, "the mix hardly ran against %s: %r" % (n, counts[n])
            assert counts[n][1] == 0, "%s: %d connections failed: %r" % (
                n, counts[n][1], sorted(set(counts[n][2:]))[:5])
            assert after[n] <= base[n] * 1.10, \
                "%s: RSS %d kB after the mix, %d kB before" % (n, after[n], base[n])
    finally:
        bad = []
        for name, p in (("alice", a), ("bob", b)):
            rc = p.stop("quit")
            if rc != 0 or "AddressSanitizer" in p.stderr() or "runtime error" in p.stderr():
                bad.append("%s exited %s:\n%s" % (name, rc, p.stderr()[-3000:]))
        for name, p in (("proxy", proxy), ("httpd", httpd), ("tracker", tracker)):
            rc = p.stop()
            if rc != 0 or "AddressSanitizer" in p.output() or "runtime error" in p.output():
                bad.append("%s exited %s:\n%s" % (name, rc, p.output()[-3000:]))
        assert not bad, "\n".join(bad)


if __name__ == "__main__":
    run(setup, teardown)
