#!/usr/bin/env python3
"""hychat-proxy against nginx as a reverse proxy, side by side in one run:
the same backend (nginx serving a 1 KB file), one worker each, wrk with
50 connections. Prints req/s, p99 and the ratio, then the round-robin
spread of hychat-proxy over two backends."""
import argparse
import collections
import http.client
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (BUILD, Server, build, free_port, need, nginx, nginx_version,  # noqa: E402
                      ratio, row, wrk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--spread", type=int, default=10000)
    a = ap.parse_args()
    need("wrk", "nginx")
    build()
    root = tempfile.mkdtemp(prefix="hychat-bench-proxy-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(os.path.join(root, "1k.bin"), 0o644)

    b1, b2, hp, np_ = free_port(), free_port(), free_port(), free_port()
    # the backend: one nginx on two ports, each naming itself in a header
    backend = nginx(b1, """
        server {{ listen 127.0.0.1:{b1}; root {root}; add_header X-Backend one; }}
        server {{ listen 127.0.0.1:{b2}; root {root}; add_header X-Backend two; }}
    """.format(b1=b1, b2=b2, root=root))
    # the reference: a second nginx, proxying with an upstream keepalive pool
    front = nginx(np_, """
        upstream hy {{ server 127.0.0.1:{b1}; keepalive 64; }}
        server {{ listen 127.0.0.1:{np}; location / {{ proxy_pass http://hy;
            proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
    """.format(b1=b1, np=np_))
    conf = os.path.join(root, "proxy.conf")
    with open(conf, "w") as f:
        f.write('host "127.0.0.1:%d" { proxy_pass http://127.0.0.1:%d; }\n' % (hp, b1))
        f.write('host "spread.local" { proxy_pass http://127.0.0.1:%d;\n'
                '  proxy_pass http://127.0.0.1:%d; dist_policy round-robin }\n' % (b1, b2))
    hy = Server([os.path.join(BUILD, "src/proxy/hychat-proxy"), "-c", conf, "--listen",
                 "127.0.0.1:%d" % hp, "--quiet"], hp)
    try:
        url_h = "http://127.0.0.1:%d/1k.bin" % hp
        url_n = "http://127.0.0.1:%d/1k.bin" % np_
        wrk(url_h, a.conns, 2)
        wrk(url_n, a.conns, 2)
        h = wrk(url_h, a.conns, a.seconds)
        n = wrk(url_n, a.conns, a.seconds)
        counts = collections.Counter()
        c = http.client.HTTPConnection("127.0.0.1", hp, timeout=10)
        for _ in range(a.spread):
            c.request("GET", "/1k.bin", headers={"Host": "spread.local"})
            r = c.getresponse()
            r.read()
            counts[r.getheader("X-Backend")] += 1
        c.close()
    finally:
        hy.stop()
        front.stop()
        backend.stop()

    print("hychat-proxy vs %s as a reverse proxy (upstream keepalive), 1 worker each,"
          " wrk -t1 -c%d -d%ds, backend: nginx serving 1 KB" % (nginx_version(), a.conns, a.seconds))
    row("hychat-proxy", *h)
    row("nginx proxy", *n)
    ok = ratio("hychat/nginx", h, n)
    one, two = counts.get("one", 0), counts.get("two", 0)
    print("round-robin over 2 backends, %d requests: %d / %d (%.2f%% off even)" %
          (a.spread, one, two, abs(one - two) / 2 / max(1, one + two) * 100))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
