#!/usr/bin/env python3
"""hychat-proxy against nginx terminating TLS in front of a plain backend,
side by side in one run: the same backend (nginx serving a 1 KB file over
plain HTTP), the same ECDSA P-256 certificate, one worker each, wrk with
keep-alive, in rounds that alternate the two servers so that a change in
the machine's load falls on both. Prints each round, then the medians:
req/s, p99 and the ratio hychat/nginx, and the CPU time each server
process spent per request (utime + stime from /proc): on a machine shared
with other work, req/s follows the load, the CPU cost per request much
less. Then hychat-proxy through an https backend (proxy_pass https://,
verification on) as a second figure."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (BUILD, Server, build, free_port, need, nginx, nginx_version,  # noqa: E402
                      row, wrk)


def make_cert(d, name="cert"):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return pem, key


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def nginx_worker(master_pid):
    with open("/proc/%d/task/%d/children" % (master_pid, master_pid)) as f:
        kids = [int(x) for x in f.read().split()]
    return kids[0] if kids else master_pid


def measured(url, pid, conns, seconds, script=None):
    """wrk's (req/s, p99 ms, errors) and the server's CPU us per request."""
    c0 = cpu_s(pid)
    r = wrk(url, conns, seconds, script=script)
    used = cpu_s(pid) - c0
    return r[0], r[1], r[2], used * 1e6 / max(1.0, r[0] * seconds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    need("wrk", "nginx", "openssl")
    build()
    root = tempfile.mkdtemp(prefix="hychat-bench-proxy-tls-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(os.path.join(root, "1k.bin"), 0o644)
    pem, key = make_cert(root)
    bpem, bkey = make_cert(root, "backend")

    b, bs, hp, hs, np_ = free_port(), free_port(), free_port(), free_port(), free_port()
    # the backend: one nginx, plain HTTP on b and TLS on bs
    backend = nginx(b, """
        server {{ listen 127.0.0.1:{b}; root {root}; }}
        server {{ listen 127.0.0.1:{bs} ssl; root {root};
            ssl_certificate {bpem}; ssl_certificate_key {bkey}; }}
    """.format(**locals()))
    # the reference: a second nginx terminating TLS, proxying with an
    # upstream keepalive pool
    front = nginx(np_, """
        upstream hy {{ server 127.0.0.1:{b}; keepalive 64; }}
        server {{ listen 127.0.0.1:{np_} ssl; ssl_certificate {pem};
            ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;
            ssl_session_tickets on;
            location / {{ proxy_pass http://hy; proxy_http_version 1.1;
                proxy_set_header Connection ""; }} }}
    """.format(**locals()))
    conf = os.path.join(root, "proxy.conf")
    with open(conf, "w") as f:
        f.write("""
listen 127.0.0.1:{hp} ssl;
host "127.0.0.1" default {{
    ssl_certificate {pem};
    ssl_certificate_key {key};
    proxy_pass http://127.0.0.1:{b};
}}
host "https.local" {{
    proxy_pass https://127.0.0.1:{bs};
    proxy_ssl_trusted_certificate {bpem};
}}
""".format(**locals()))
    hy = Server([os.path.join(BUILD, "src/proxy/hychat-proxy"), "-c", conf, "--quiet"], hp)
    hdr = os.path.join(root, "https-host.lua")
    with open(hdr, "w") as f:
        f.write('wrk.headers["Host"] = "https.local"\n')
    try:
        url_h = "https://127.0.0.1:%d/1k.bin" % hp
        url_n = "https://127.0.0.1:%d/1k.bin" % np_
        wrk(url_h, a.conns, 2)
        wrk(url_n, a.conns, 2)
        hs_, ns_ = [], []
        pid_h, pid_n = hy.p.pid, nginx_worker(front.p.pid)
        for i in range(a.rounds):
            if i % 2 == 0:
                h_ = measured(url_h, pid_h, a.conns, a.seconds)
                n_ = measured(url_n, pid_n, a.conns, a.seconds)
            else:
                n_ = measured(url_n, pid_n, a.conns, a.seconds)
                h_ = measured(url_h, pid_h, a.conns, a.seconds)
            hs_.append(h_)
            ns_.append(n_)
            print("round %d: hychat %.0f req/s p99 %.2f ms %.1f us CPU/req, nginx %.0f req/s"
                  " p99 %.2f ms %.1f us CPU/req, ratio %.2fx" % (
                      i + 1, h_[0], h_[1], h_[3], n_[0], n_[1], n_[3], h_[0] / n_[0]))
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        h = (med(hs_, 0), med(hs_, 1), sum(x[2] for x in hs_), med(hs_, 3))
        n = (med(ns_, 0), med(ns_, 1), sum(x[2] for x in ns_), med(ns_, 3))
        s = measured(url_h, pid_h, a.conns, a.seconds, script=hdr)
        rss = hy.rss_kb()
    finally:
        hy.stop()
        front.stop()
        backend.stop()

    print("hychat-proxy vs %s terminating TLS (ECDSA P-256) in front of a plain backend,"
          " 1 worker each, wrk -t1 -c%d -d%ds, median of %d alternating rounds,"
          " backend: nginx serving 1 KB" % (nginx_version(), a.conns, a.seconds, a.rounds))
    row("hychat-proxy", h[0], h[1], h[2])
    row("nginx proxy", n[0], n[1], n[2])
    print("ratio hychat/nginx                 req/s %.2fx   p99 %.2fx" % (h[0] / n[0], h[1] / n[1]))
    print("CPU per request: hychat-proxy %.1f us, nginx %.1f us: nginx/hychat %.2fx" % (
        h[3], n[3], n[3] / h[3]))
    row("hychat-proxy, https backend", s[0], s[1], s[2])
    print("  CPU per request through the https backend: %.1f us" % s[3])
    print("hychat-proxy RSS after the runs: %d kB" % rss)


if __name__ == "__main__":
    main()
