#!/usr/bin/env python3
"""Hostile clients against the HTTP server library, through hychat-httpd
and hychat-tracker: slowloris connections are cut at the header timeout
while a normal client is still served at once, and a flood of
connections past the cap is answered cleanly and service comes back. The
same on a TLS port, where a connection may also stall inside its
handshake: half-finished handshakes are shed at the handshake timeout."""
import os
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import (  # noqa: E402
                    PeakRss, Proc, binary, case, connect_many, count_503, free_port,
                    raise_fd_limit, request, rss_kb, run, steady_memory_env, tls_cert)
from peer_harness import tracker_store  # noqa: E402

SLOW = 1000
FLOOD = 5000
TLS_SLOW = 200  # each one costs a real handshake
HANDSHAKE_TIMEOUT_S = 10  # the library's default
TLS_DIR = tempfile.mkdtemp(prefix="hychat-hostile-tls-")




def slowloris(port, path, header_timeout_s):
    socks = []
    for _ in range(SLOW):
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    # a byte now and then keeps none of them under the timeout for long
    for s in socks[: SLOW // 2]:
        s.sendall(b"X")
    t0 = time.monotonic()
    st, _, _ = request(port, "GET", path.decode())
    took = time.monotonic() - t0
    # A server that a slow client can hold up answers only when the slow
    # ones are cut, at header_timeout_s: well before that, with room for
    # a loaded machine (no timing target here; it was 0.1 s and flaked
    # under the full suite on 2 cores). The figure is printed.
    print("  a normal client beside %d slow ones: %.3f s" % (SLOW, took))
    assert took < header_timeout_s / 4, (
        "a normal client waited %.3f s beside %d slow ones" % (took, SLOW))
    time.sleep(header_timeout_s + 1.5)
    cut = 0
    for s in socks:
        s.settimeout(0.5)
        try:
            d = s.recv(4096)
            if d.startswith(b"HTTP/1.1 408") or d == b"":
                cut += 1
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    assert cut == SLOW, "%d of %d slow connections were cut" % (cut, SLOW)
    return st


@case
def test_slowloris_on_httpd_is_cut_and_others_are_served():
    raise_fd_limit(SLOW * 2 + 100)
    port = free_port()
    p = Proc([binary("hychat-httpd"), "--listen", "127.0.0.1:%d" % port, "--quiet",
              "--header-timeout", "2000"], port=port)
    try:
        assert slowloris(port, b"/login.html", 2) == 200
        assert request(port, "GET", "/login.html")[0] == 200
    finally:
        assert p.stop() == 0, p.output()


@case
def test_slowloris_on_tracker_is_cut_and_others_are_served():
    raise_fd_limit(SLOW * 2 + 100)
    port = free_port()
    d = tempfile.mkdtemp()
    p = Proc([binary("hychat-tracker"), "--listen", "127.0.0.1:%d" % port, "--quiet"] +
             tracker_store(os.path.join(d, "t.db")), port=port)
    try:
        # the tracker keeps the library's default header timeout (10 s)
        st = slowloris(port, b"/get-list", 10)
        assert st == 401, st  # answered at once (no token), not stuck
    finally:
        assert p.stop() == 0, p.output()


# Peak growth allowed over the warmed-up baseline through a flood of
# FLOOD connections, all open at once: about 24 MB under ASan (under 5 KB
# a connection); 4 KB more for each, or the +35 MB of eager input buffers
# recorded in RELIABILITY.md, fails it.
FLOOD_GROWTH_KB = 32 * 1024


@case
def test_connection_flood_past_the_cap_is_answered_and_recovers():
    raise_fd_limit(FLOOD * 2 + 200)
    port = free_port()
    p = Proc([binary("hychat-httpd"), "--listen", "127.0.0.1:%d" % port, "--quiet",
              "--max-conns", "1000"], port=port, env=steady_memory_env())
    try:
        # Warm up: a few requests, so the serving path has run once; then
        # the baseline, then the peak through the flood and its closes.
        for _ in range(20):
            assert request(port, "GET", "/login.html")[0] == 200
        base = rss_kb(p.pid)
        with PeakRss(p.pid) as rss:
            socks = connect_many(port, FLOOD)
            time.sleep(0.5)
            assert p.alive()
            refused = count_503(socks[1000:])
            assert refused == FLOOD - 1000, \
                "%d of %d over the cap saw 503" % (refused, FLOOD - 1000)
            for s in socks:
                s.close()
            time.sleep(1.0)
        assert request(port, "GET", "/login.html")[0] == 200
        grown = rss.peak - base
        print("  httpd RSS %d kB warmed up, peak %d kB through a flood of %d (+%d kB)"
              % (base, rss.peak, FLOOD, grown))
        assert grown < FLOOD_GROWTH_KB, "RSS grew %d kB through the flood" % grown
    finally:
        assert p.stop() == 0, p.output()


def tls_httpd(extra=()):
    ca, cert, key = tls_cert(TLS_DIR, "srv")
    port = free_port()
    p = Proc([binary("hychat-httpd"), "--listen", "127.0.0.1:%d" % port, "--quiet",
              "--tls-cert", cert, "--tls-key", key] + list(extra), port=port,
             env=steady_memory_env())
    ctx = ssl.create_default_context(cafile=ca)
    return p, port, ctx


def tls_get(port, ctx, path="/login.html"):
    """One HTTPS GET on a fresh connection: the status and the seconds it took."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
    return int(data[9:12]), time.monotonic() - t0


def client_hello():
    """The bytes of a real ClientHello, from a client that never goes on."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_by_server(s, wait_s=0.5):
    """True if the server has closed s (reading what it sent before)."""
    s.settimeout(wait_s)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, ssl.SSLError):
        return True
    except (socket.timeout, TimeoutError):
        return False


@case
def test_half_finished_handshakes_on_a_tls_port_are_shed():
    raise_fd_limit(SLOW * 2 + 100)
    p, port, ctx = tls_httpd()
    try:
        hello = client_hello()
        socks = []
        for i in range(SLOW):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            # a third say nothing, a third half a ClientHello, a third all
            # of it and then nothing more
            if i % 3 == 1:
                s.sendall(hello[: len(hello) // 2])
            elif i % 3 == 2:
                s.sendall(hello)
            socks.append(s)
        st, took = tls_get(port, ctx)
        assert st == 200 and took < 1.0, "a TLS client waited %.3f s beside %d stalled" % (
            took, SLOW)
        time.sleep(HANDSHAKE_TIMEOUT_S + 1.5)
        cut = sum(closed_by_server(s, 0.05) for s in socks)
        for s in socks:
            s.close()
        assert cut == SLOW, "%d of %d stalled handshakes were shed" % (cut, SLOW)
        assert tls_get(port, ctx)[0] == 200
    finally:
        assert p.stop() == 0, p.output()


@case
def test_slowloris_on_a_tls_port_is_cut_and_others_are_served():
    raise_fd_limit(TLS_SLOW * 2 + 100)
    p, port, ctx = tls_httpd(["--header-timeout", "2000"])
    try:
        socks = []
        for _ in range(TLS_SLOW):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                server_hostname="localhost")
            s.sendall(b"GET /login.html HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        for s in socks[: TLS_SLOW // 2]:
            s.sendall(b"X")
        st, took = tls_get(port, ctx)
        assert st == 200 and took < 1.0, "a TLS client waited %.3f s" % took
        time.sleep(2 + 1.5)
        cut = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                d = s.recv(4096)
                cut += d.startswith(b"HTTP/1.1 408") or d == b""
            except (socket.timeout, TimeoutError):
                pass
            except (ConnectionResetError, ssl.SSLError):
                cut += 1
            s.close()
        assert cut == TLS_SLOW, "%d of %d slow TLS connections were cut" % (cut, TLS_SLOW)
    finally:
        assert p.stop() == 0, p.output()


@case
def test_connection_flood_past_the_cap_on_a_tls_port_is_closed_and_recovers():
    raise_fd_limit(FLOOD * 2 + 200)
    p, port, ctx = tls_httpd(["--max-conns", "1000"])
    try:
        base = rss_kb(p.pid)
        socks = connect_many(port, FLOOD)
        time.sleep(0.5)
        assert p.alive()
        # no 503 in clear to a TLS client: a close
        closed = sum(closed_by_server(s, 0.05) for s in socks[1000:])
        assert closed == FLOOD - 1000, "%d of %d over the cap were closed" % (
            closed, FLOOD - 1000)
        for s in socks:
            s.close()
        time.sleep(1.0)
        assert tls_get(port, ctx)[0] == 200
        grown = rss_kb(p.pid) - base
        assert grown < 64 * 1024, "RSS grew %d kB after the flood" % grown
    finally:
        assert p.stop() == 0, p.output()


if __name__ == "__main__":
    run()
