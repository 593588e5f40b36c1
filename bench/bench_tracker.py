#!/usr/bin/env python3
"""hychat-tracker under load, side by side with nginx in one run:
1,000 online peers (100 in #general); wrk against GET /get-list?channel=
general and POST /heartbeat with a bearer token (2 workers), nginx
serving the same /get-list body as a static file; then RSS per online
peer at 100,000 peers created by a pipelined loader.

Accounts are made with --kdf-cost min (Argon2id at its minimum cost), so
that 100,000 logins take seconds, not an hour; what is measured is the
online path, which does not hash."""
import argparse
import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (BUILD, Server, build, free_port, need, nginx, nginx_version,  # noqa: E402
                      ratio, row, wrk)


def pipelined(port, reqs, conns=8, batch=256):
    """Sends the raw requests over `conns` keep-alive connections, `batch`
    in flight on each; returns the bodies in order."""
    out = [None] * len(reqs)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for start in range(0, len(reqs), batch * conns):
        chunks = []
        for k, s in enumerate(socks):
            lo = start + k * batch
            idx = list(range(lo, min(lo + batch, len(reqs))))
            if idx:
                s.sendall(b"".join(reqs[i] for i in idx))
            chunks.append((s, idx))
        for s, idx in chunks:
            buf = b""
            for i in idx:
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0:
                        head = buf[:end].decode("latin-1")
                        n = int(head.lower().split("content-length:")[1].split("\r\n")[0])
                        if len(buf) >= end + 4 + n:
                            out[i] = (int(head.split(" ")[1]), buf[end + 4:end + 4 + n])
                            buf = buf[end + 4 + n:]
                            break
                    buf += s.recv(1 << 20)
    for s in socks:
        s.close()
    return out


def req(method, path, body=None, token=None):
    b = json.dumps(body).encode() if body is not None else b""
    h = "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        method, path, len(b))
    if token:
        h += "Authorization: Bearer %s\r\n" % token
    return h.encode() + b"\r\n" + b


def load(port, first, n, general=0):
    """Registers, logs in and brings online users first..first+n-1; the
    first `general` of them join #general. Returns their tokens."""
    names = ["u%06d" % i for i in range(first, first + n)]
    r = pipelined(port, [req("POST", "/register", {"username": u, "password": "pw-" + u}) for u in names])
    assert all(x[0] in (201, 409) for x in r), r[:3]
    r = pipelined(port, [req("POST", "/login", {"username": u, "password": "pw-" + u}) for u in names])
    tokens = [json.loads(x[1])["token"] for x in r]
    key = "A" * 43 + "="
    r = pipelined(port, [req("POST", "/submit-info", {"username": u, "ip": "127.0.0.1", "port": 10000 + i % 50000,
                                                       "pubkey": key}, t)
                         for i, (u, t) in enumerate(zip(names, tokens))])
    assert all(x[0] == 200 for x in r), r[:3]
    if general:
        r = pipelined(port, [req("POST", "/add-list", {"username": u, "channel": "general"}, t)
                             for u, t in zip(names[:general], tokens[:general])])
        assert all(x[0] == 200 for x in r), r[:3]
    return tokens


def lua(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--peers", type=int, default=100000)
    a = ap.parse_args()
    need("wrk", "nginx")
    build()
    tmp = tempfile.mkdtemp(prefix="hychat-bench-tracker-")
    os.chmod(tmp, 0o755)
    tp, np_ = free_port(), free_port()
    tr = Server([os.path.join(BUILD, "src/tracker/hychat-tracker"), "--listen", "127.0.0.1:%d" % tp,
                 "--db", os.path.join(tmp, "t.db"), "--workers", "2", "--quiet", "--ttl", "3600",
                 "--kdf-cost", "min"], tp)
    try:
        t0 = time.monotonic()
        tokens = load(tp, 0, 1000, general=100)
        setup_s = time.monotonic() - t0
        body = pipelined(tp, [req("GET", "/get-list?channel=general", token=tokens[0])])[0][1]
        with open(os.path.join(tmp, "get-list"), "wb") as f:
            f.write(body)
        os.chmod(os.path.join(tmp, "get-list"), 0o644)
        ng = nginx(np_, "server { listen 127.0.0.1:%d; root %s; default_type application/json; }"
                   % (np_, tmp), workers=2)
        auth = lua(os.path.join(tmp, "auth.lua"),
                   'wrk.headers["Authorization"] = "Bearer %s"\n' % tokens[0])
        hb = lua(os.path.join(tmp, "hb.lua"),
                 'wrk.method = "POST"\nwrk.body = "{}"\n'
                 'wrk.headers["Content-Type"] = "application/json"\n'
                 'wrk.headers["Authorization"] = "Bearer %s"\n' % tokens[1])
        gl = "http://127.0.0.1:%d/get-list?channel=general" % tp
        st = "http://127.0.0.1:%d/get-list" % np_
        wrk(gl, a.conns, 2, script=auth)
        wrk(st, a.conns, 2)
        g = wrk(gl, a.conns, a.seconds, script=auth)
        n = wrk(st, a.conns, a.seconds)
        h = wrk("http://127.0.0.1:%d/heartbeat" % tp, a.conns, a.seconds, threads=2, script=hb)
        ng.stop()

        before = tr.rss_kb()
        t0 = time.monotonic()
        step = 10000
        for first in range(1000, 1000 + a.peers - 1000, step):
            load(tp, first, min(step, 1000 + a.peers - 1000 - first))
        load_s = time.monotonic() - t0
        after = tr.rss_kb()
        stats = json.loads(pipelined(tp, [req("GET", "/stats", token=tokens[0])])[0][1])
    finally:
        tr.stop()

    print("hychat-tracker vs %s, 2 workers each, wrk -c%d -d%ds; 1,000 online peers,"
          " 100 in #general (%d bytes per /get-list), set up in %.1f s"
          % (nginx_version(), a.conns, a.seconds, len(body), setup_s))
    row("tracker GET /get-list?channel=general", *g)
    row("nginx   the same body, static", *n)
    ok = ratio("tracker/nginx get-list", g, n)
    row("tracker POST /heartbeat (wrk -t2)", *h)
    ok &= not (h[2] or h[3])
    online = stats["peers"]
    per = (after - before) * 1024 / max(1, online - 1000)
    print("memory: %d peers online (loaded in %.1f s); RSS %d -> %d kB: %.0f bytes per online peer"
          % (online, load_s, before, after, per))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
