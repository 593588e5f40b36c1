#!/usr/bin/env python3
"""hychat-httpd against nginx over TLS, side by side in one run: the same
1 KB file and the same ECDSA P-256 certificate, one worker each.
  - HTTPS with keep-alive: wrk, req/s and p99;
  - a new TLS connection per request (wrk with Connection: close):
    handshakes/s;
  - the memory of N idle TLS connections (after one request each): the
    server's RSS growth per connection.
Prints the figures and the ratios hychat/nginx."""
import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402
from benchlib import BUILD, build, free_port, need, nginx, nginx_version, row, wrk, Server  # noqa: E402


def make_cert(d):
    key, pem = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return pem, key


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def nginx_worker(master_pid):
    with open("/proc/%d/task/%d/children" % (master_pid, master_pid)) as f:
        kids = [int(x) for x in f.read().split()]
    return kids[0] if kids else master_pid


def idle_rss_per_conn(port, pid, n):
    """kB of server RSS per idle TLS connection, each after one request."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    req = b"GET /public/1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    time.sleep(0.5)
    before = rss_kb(pid)
    socks = []
    try:
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
            s.sendall(req)
            got = b""
            while b"\r\n\r\n" not in got or len(got) < 1024:
                got += s.recv(4096)
            socks.append(s)
        time.sleep(1.0)
        after = rss_kb(pid)
    finally:
        for s in socks:
            s.close()
    return (after - before) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--idle", type=int, default=5000)
    a = ap.parse_args()
    need("wrk", "nginx", "openssl")
    build()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * a.idle)), hard))
    tmp = tempfile.mkdtemp(prefix="hychat-bench-tls-")
    os.chmod(tmp, 0o755)
    pem, key = make_cert(tmp)
    root = os.path.join(tmp, "www")
    os.mkdir(root, 0o755)
    os.mkdir(os.path.join(root, "public"), 0o755)
    with open(os.path.join(root, "public", "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    os.chmod(os.path.join(root, "public", "1k.bin"), 0o644)

    benchlib.NGINX_CONF = benchlib.NGINX_CONF.replace(
        "worker_connections 4096;", "worker_connections %d;" % (2 * a.idle + 100)).replace(
        "worker_processes {workers};", "worker_processes {workers};\nworker_rlimit_nofile %d;"
        % (3 * a.idle))
    hp, np_ = free_port(), free_port()
    hy = Server([os.path.join(BUILD, "src/httpd/hychat-httpd"), "--listen",
                 "127.0.0.1:%d" % hp, "--tls-cert", pem, "--tls-key", key, "--root", root,
                 "--quiet", "--workers", "1"], hp)
    ng = nginx(np_, """server { listen 127.0.0.1:%d ssl; root %s;
        ssl_certificate %s; ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on; }""" % (np_, root, pem, key))
    res = {}
    try:
        for name, port in (("hychat", hp), ("nginx", np_)):
            wrk("https://127.0.0.1:%d/public/1k.bin" % port, a.conns, 1)
        for name, port in (("hychat", hp), ("nginx", np_)):
            url = "https://127.0.0.1:%d/public/1k.bin" % port
            res[(name, "ka")] = wrk(url, a.conns, a.seconds)
        close = os.path.join(tmp, "close.lua")
        with open(close, "w") as f:
            f.write('wrk.headers["Connection"] = "close"\n')
        for name, port in (("hychat", hp), ("nginx", np_)):
            url = "https://127.0.0.1:%d/public/1k.bin" % port
            res[(name, "new")] = wrk(url, a.conns, a.seconds, script=close)
        res[("hychat", "idle")] = idle_rss_per_conn(hp, hy.p.pid, a.idle)
        res[("nginx", "idle")] = idle_rss_per_conn(np_, nginx_worker(ng.p.pid), a.idle)
    finally:
        hy.stop()
        ng.stop()

    print("hychat-httpd vs %s over TLS (ECDSA P-256), 1 worker each, wrk -t1 -c%d -d%ds" %
          (nginx_version(), a.conns, a.seconds))
    for mode, label in (("ka", "keep-alive 1 KB"), ("new", "new connection per request")):
        h, n = res[("hychat", mode)], res[("nginx", mode)]
        row("hychat-httpd " + label, h[0], h[1], h[2])
        row("nginx        " + label, n[0], n[1], n[2])
        print("ratio hychat/nginx %-28s req/s %.2fx   p99 %.2fx" % (label, h[0] / n[0],
                                                                    h[1] / n[1]))
    h, n = res[("hychat", "idle")], res[("nginx", "idle")]
    print("RSS per idle TLS connection (%d): hychat %.1f kB, nginx %.1f kB, ratio %.2fx" %
          (a.idle, h, n, h / n if n else float("nan")))


if __name__ == "__main__":
    main()
