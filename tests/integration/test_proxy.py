#!/usr/bin/env python3
"""hychat-proxy in front of real backends on 127.0.0.1: Python servers
started by the test (each tells who it is), a silent one, a garbage one,
and a WebSocket echo."""
import base64
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import (  # noqa: E402
                    PeakRss, Proc, binary, case, free_port, parse_responses, raw, request, run,
                    steady_memory_env)

PROXY = binary("hychat-proxy")
S = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            h = hashlib.sha256()
            n = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n, h.hexdigest()
                d = self.rfile.read(size)
                self.rfile.readline()
                h.update(d)
                n += len(d)
        n = int(self.headers.get("Content-Length", 0))
        d = self.rfile.read(n)
        return n, hashlib.sha256(d).hexdigest()

    def do_GET(self):
        if self.path.startswith("/big/"):
            size = int(self.path[5:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * 65536
            left = size
            while left:
                n = min(left, len(block))
                self.wfile.write(b"%x\r\n" % n + block[:n] + b"\r\n")
                left -= n
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"server": self.server.name, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=5")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n, digest = self._body()
        body = json.dumps({"server": self.server.name, "length": n, "sha256": digest}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Backend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def backend(name):
    port = free_port()
    srv = Backend(("127.0.0.1", port), Handler)
    srv.name = name
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def raw_backend(behaviour):
    """A backend that accepts and then misbehaves: 'silent', 'garbage',
    'cut' (closes mid-body) or 'ws' (a WebSocket echo)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                return
            data += d
        if behaviour == "silent":
            time.sleep(10)
        elif behaviour == "garbage":
            c.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")
        elif behaviour == "cut":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        elif behaviour == "ws":
            key = re.search(rb"Sec-WebSocket-Key: (\S+)", data).group(1)
            acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)  # echo the frames back as they are
        c.close()

    def loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls, ls.getsockname()[1]


def write_conf(text):
    path = os.path.join(S["dir"], "proxy.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def setup():
    S["dir"] = tempfile.mkdtemp()
    S["a"], S["pa"] = backend("A")
    S["b"], S["pb"] = backend("B")
    S["c"], S["pc"] = backend("C")
    _, S["silent"] = raw_backend("silent")
    _, S["garbage"] = raw_backend("garbage")
    _, S["cut"] = raw_backend("cut")
    _, S["ws"] = raw_backend("ws")
    S["dead"] = free_port()
    S["port"] = free_port()
    S["conf"] = """
host "127.0.0.1:{port}" {{
    proxy_pass http://127.0.0.1:{pc};
}}
host "app1.local" {{
    proxy_pass http://127.0.0.1:{pa};
}}
host "app2.local" {{
    proxy_set_header X-Via hychat;
    proxy_pass http://127.0.0.1:{pa};
    proxy_pass http://127.0.0.1:{pb};
    dist_policy round-robin
}}
host "fail.local" {{
    proxy_pass http://127.0.0.1:{dead};
    proxy_pass http://127.0.0.1:{pb};
    fail_timeout 30s;
}}
host "refused.local" {{ proxy_pass http://127.0.0.1:{dead}; }}
host "silent.local" {{ proxy_pass http://127.0.0.1:{silent}; proxy_read_timeout 1s; }}
host "garbage.local" {{ proxy_pass http://127.0.0.1:{garbage}; }}
host "cut.local" {{ proxy_pass http://127.0.0.1:{cut}; }}
host "ws.local" {{ proxy_pass http://127.0.0.1:{ws}; }}
""".format(**S)
    path = write_conf(S["conf"])
    S["p"] = Proc([PROXY, "-c", path, "--listen", "127.0.0.1:%d" % S["port"]], port=S["port"],
                  env=steady_memory_env())


def teardown(_):
    rc = S["p"].stop()
    out = S["p"].output()
    if rc != 0 or "ERROR: " in out or "runtime error" in out:
        print(out)
        raise SystemExit("hychat-proxy exited with %s or reported an error" % rc)


def via(host, path="/", method="GET", body=None, headers=None):
    h = {"Host": host}
    h.update(headers or {})
    st, hd, b = request(S["port"], method, path, body=body, headers=h)
    return st, hd, b


def who(host, path="/"):
    st, _, b = via(host, path)
    assert st == 200, (host, st, b[:200])
    return json.loads(b)


@case
def test_host_routing_with_and_without_port():
    assert who("app1.local")["server"] == "A"
    assert who("app1.local:%d" % S["port"])["server"] == "A"
    assert who("127.0.0.1:%d" % S["port"])["server"] == "C"
    assert who("127.0.0.1")["server"] == "C"  # no port: the one we listen on


@case
def test_unknown_host_is_421():
    st, _, _ = via("nobody.local")
    assert st == 421, st


@case
def test_round_robin_alternates_over_two_backends():
    seen = [who("app2.local")["server"] for _ in range(10)]
    assert seen.count("A") == 5 and seen.count("B") == 5, seen
    assert all(seen[i] != seen[i + 1] for i in range(9)), seen


@case
def test_forwarded_headers_and_hop_by_hop_removed():
    r = who("app2.local", "/h?q=1")
    h = r["headers"]
    assert r["path"] == "/h?q=1"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["forwarded"] == "for=127.0.0.1;proto=http"
    assert h["x-via"] == "hychat"
    assert h["host"] == "app2.local"
    st, hd, b = via("app2.local", "/h", headers={"X-Forwarded-For": "10.0.0.1",
                                                 "Connection": "close, X-Secret",
                                                 "X-Secret": "drop me", "Keep-Alive": "1"})
    h = json.loads(b)["headers"]
    assert h["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert "x-secret" not in h and "keep-alive" not in h
    assert "keep-alive" not in hd  # the backend's hop-by-hop header is not passed on


@case
def test_refused_backend_fails_over_then_is_skipped():
    for _ in range(4):
        assert who("fail.local")["server"] == "B"


@case
def test_all_backends_refused_is_502():
    t0 = time.monotonic()
    st, _, body = via("refused.local")
    assert st == 502 and b"502" in body, st
    assert time.monotonic() - t0 < 3


@case
def test_silent_backend_is_504_within_timeout():
    t0 = time.monotonic()
    st, _, _ = via("silent.local")
    took = time.monotonic() - t0
    assert st == 504, st
    assert 0.9 < took < 3.0, took


@case
def test_garbage_and_cut_answers_give_clean_errors():
    st, _, _ = via("garbage.local")
    assert st == 502, st
    out = raw(S["port"], b"GET / HTTP/1.1\r\nHost: cut.local\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out[:40]
    assert len(out.partition(b"\r\n\r\n")[2]) < 1000  # cut short, connection closed
    assert who("app1.local")["server"] == "A"


@case
def test_failover_when_a_backend_is_killed_mid_test():
    # backend D is a separate process, so that it can really be killed
    d = tempfile.mkdtemp()
    open(os.path.join(d, "who"), "w").write("D")
    pd = free_port()
    dproc = Proc([sys.executable, "-m", "http.server", str(pd), "--bind", "127.0.0.1",
                  "--directory", d], port=pd)
    conf = S["conf"] + 'host "kill.local" {\n    proxy_pass http://127.0.0.1:%d;\n' \
        '    proxy_pass http://127.0.0.1:%d;\n}\n' % (pd, S["pb"])
    write_conf(conf)
    os.kill(S["p"].pid, signal.SIGHUP)
    time.sleep(0.3)

    def server():
        st, _, b = via("kill.local", "/who")
        assert st == 200, st
        return "D" if b == b"D" else json.loads(b)["server"]
    seen = [server() for _ in range(4)]
    assert sorted(set(seen)) == ["B", "D"], seen
    dproc.stop(signal.SIGKILL)
    seen = [server() for _ in range(6)]
    assert seen == ["B"] * 6, seen


def closing_backend():
    """A backend that answers one request on a kept-alive connection, then
    reads the next, stops listening and closes without an answer: the
    proxy's pooled connection has gone stale, and a dial to it again is
    refused."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def serve():
        c, _ = ls.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.recv(4096)  # the next request, never answered
        ls.close()
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


@case
def test_a_body_retried_twice_reaches_the_next_backend_whole():
    """A POST on a pooled connection found stale is tried again on the
    same backend, whose dial is refused, then on the next: the body goes
    with it each time. It used to be dropped at the second try, leaving
    the next backend waiting for it (a tracker answered 408 after 10 s)."""
    pz = closing_backend()
    conf = S["conf"] + 'host "stale.local" {\n    proxy_pass http://127.0.0.1:%d;\n' \
        '    proxy_pass http://127.0.0.1:%d;\n    proxy_read_timeout 3s;\n}\n' % (pz, S["pb"])
    write_conf(conf)
    os.kill(S["p"].pid, signal.SIGHUP)
    time.sleep(0.3)
    st, _, b = via("stale.local", "/first")
    assert st == 200 and b == b"ok", (st, b)
    assert who("stale.local", "/between")["server"] == "B"  # round robin: next is Z's turn
    body = b"hello, the same bytes twice"
    st, _, b = via("stale.local", "/second", method="POST", body=body)
    assert st == 200, (st, b)
    got = json.loads(b)
    assert got["server"] == "B" and got["length"] == len(body), got
    assert got["sha256"] == hashlib.sha256(body).hexdigest(), got
    write_conf(S["conf"])
    os.kill(S["p"].pid, signal.SIGHUP)
    time.sleep(0.3)


@case
def test_pipelined_requests_answered_in_order():
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: app2.local\r\n\r\n" % i for i in range(6))
    reqs += b"GET /last HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n"
    resp = parse_responses(raw(S["port"], reqs))
    paths = [json.loads(r[2])["path"] for r in resp]
    assert paths == ["/p%d" % i for i in range(6)] + ["/last"], paths


def rss_kb():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % S["p"].pid).read()).group(1))


def stream_up(size):
    """POSTs size bytes, chunked, through the proxy; checks the echo."""
    s = socket.create_connection(("127.0.0.1", S["port"]), timeout=30)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: app1.local\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\n")
    block = os.urandom(256 * 1024)
    h = hashlib.sha256()
    for _ in range(size // len(block)):
        s.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
        h.update(block)
    s.sendall(b"0\r\n\r\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    r = json.loads(parse_responses(out)[0][2])
    assert r["length"] == size and r["sha256"] == h.hexdigest(), r


def stream_down(size):
    s = socket.create_connection(("127.0.0.1", S["port"]), timeout=30)
    s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: app1.local\r\nConnection: close\r\n\r\n" % size)
    got = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got += len(d)
    s.close()
    assert got > size, got


# Peak growth allowed over the warmed-up baseline while 48 MiB go each way
# (0.6 to 2.4 MB under ASan): a proxy that held a sixth of one body would
# fail it.
STREAM_GROWTH_KB = 8 * 1024


@case
def test_large_chunked_upload_and_download_stream_in_bounded_memory():
    size = 48 * 1024 * 1024
    # Warm up the same path, so that its buffers and the allocator's pools
    # exist; then the baseline, then the peak while the streams run.
    stream_up(4 * 1024 * 1024)
    stream_down(4 * 1024 * 1024)
    before = rss_kb()
    with PeakRss(S["p"].pid) as rss:
        stream_up(size)
        stream_down(size)
    grown = rss.peak - before
    print("  proxy RSS %d kB warmed up, peak %d kB streaming 48 MiB each way (+%d kB)"
          % (before, rss.peak, grown))
    assert grown < STREAM_GROWTH_KB, "RSS grew by %d kB for 48 MiB each way" % grown


@case
def test_websocket_upgrade_is_tunnelled():
    s = socket.create_connection(("127.0.0.1", S["port"]), timeout=5)
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: ws.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # masked "Hello"
    s.sendall(frame)
    echo = b""
    while len(echo) < len(frame):
        echo += s.recv(4096)
    s.close()
    assert echo == frame


@case
def test_reload_on_sighup_and_bad_file_keeps_the_old():
    write_conf(S["conf"].replace('host "app1.local" {\n    proxy_pass http://127.0.0.1:%d;'
                                 % S["pa"], 'host "app1.local" {\n    proxy_pass http://127.0.0.1:%d;'
                                 % S["pb"]))
    os.kill(S["p"].pid, signal.SIGHUP)
    time.sleep(0.3)
    assert who("app1.local")["server"] == "B"
    write_conf("host \"app1.local\" {\n    proxy_pass nowhere;\n}\n")
    os.kill(S["p"].pid, signal.SIGHUP)
    time.sleep(0.3)
    assert who("app1.local")["server"] == "B"
    assert "reload refused" in S["p"].output() and "proxy.conf:2:" in S["p"].output()


@case
def test_check_reports_config_errors_with_line_numbers():
    good = write_conf(S["conf"])
    r = subprocess.run([PROXY, "--check", "-c", good], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    bad = os.path.join(S["dir"], "bad.conf")
    open(bad, "w").write("host \"a\" {\n  proxy_pass http://127.0.0.1:1\n}\n")
    r = subprocess.run([PROXY, "--check", "-c", bad], capture_output=True, timeout=10)
    assert r.returncode == 1
    assert b"bad.conf:3: expected ';', found '}'" in r.stderr, r.stderr


@case
def test_access_log_names_host_backend_and_time():
    who("app2.local", "/logged")
    time.sleep(0.2)
    lines = [l for l in S["p"].output().splitlines() if '"GET /logged"' in l]
    assert lines, S["p"].output()[-500:]
    assert re.search(r'^127\.0\.0\.1 "GET /logged" 200 app2\.local 127\.0\.0\.1:\d+ \d+ms$',
                     lines[-1]), lines[-1]


@case
def test_help_and_version():
    r = subprocess.run([PROXY, "--version"], capture_output=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith(b"hychat-proxy ")
    r = subprocess.run([PROXY, "--help"], capture_output=True, timeout=10)
    assert r.returncode == 0 and b"--check" in r.stdout


if __name__ == "__main__":
    run(setup, teardown)
