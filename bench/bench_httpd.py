#!/usr/bin/env python3
"""hychat-httpd against nginx, side by side in one run: the same 1 KB and
100 KB files, one worker each, wrk with 50 connections on the other core.
Prints req/s, p99 and the ratio hychat/nginx."""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import BUILD, build, free_port, need, nginx, nginx_version, ratio, row, wrk, Server  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    a = ap.parse_args()
    need("wrk", "nginx")
    build()
    root = tempfile.mkdtemp(prefix="hychat-bench-www-")
    os.chmod(root, 0o755)  # nginx's workers run as another user
    os.mkdir(os.path.join(root, "public"), 0o755)
    for name, size in (("1k.bin", 1024), ("100k.bin", 100 * 1024)):
        with open(os.path.join(root, "public", name), "wb") as f:
            f.write(os.urandom(size))
        os.chmod(os.path.join(root, "public", name), 0o644)

    hp, np_ = free_port(), free_port()
    hy = Server([os.path.join(BUILD, "src/httpd/hychat-httpd"), "--listen", "127.0.0.1:%d" % hp,
                 "--root", root, "--quiet", "--workers", "1"], hp)
    ng = nginx(np_, "server { listen 127.0.0.1:%d; root %s; }" % (np_, root))
    results = {}
    try:
        for f in ("1k.bin", "100k.bin"):
            # warm both, then measure each in turn in the same run
            wrk("http://127.0.0.1:%d/public/%s" % (hp, f), a.conns, 2)
            wrk("http://127.0.0.1:%d/public/%s" % (np_, f), a.conns, 2)
            results[("hychat", f)] = wrk("http://127.0.0.1:%d/public/%s" % (hp, f), a.conns, a.seconds)
            results[("nginx", f)] = wrk("http://127.0.0.1:%d/public/%s" % (np_, f), a.conns, a.seconds)
    finally:
        hy.stop()
        ng.stop()

    print("hychat-httpd vs %s, 1 worker each, wrk -t1 -c%d -d%ds" %
          (nginx_version(), a.conns, a.seconds))
    ok = True
    for f in ("1k.bin", "100k.bin"):
        h, n = results[("hychat", f)], results[("nginx", f)]
        row("hychat-httpd " + f, *h)
        row("nginx        " + f, *n)
        ok &= ratio("hychat/nginx " + f, h, n)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
