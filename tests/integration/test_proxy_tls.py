#!/usr/bin/env python3
"""hychat-proxy and TLS: a `listen ... ssl` address terminates TLS with the
certificate of the host block the client names (SNI), old protocols and
weak ciphers are refused, plain HTTP and TLS on the wrong port are refused
cleanly; `proxy_pass https://` verifies the backend (a trusted one answers,
an untrusted or misnamed one is a 502 and a log line); WebSocket tunnels
work through TLS on either side; SIGHUP reloads certificates and keeps open
connections; half-finished handshakes and a connection flood on the TLS
port are shed. curl, openssl s_client and Python's ssl module are the
clients; hychat-httpd with --tls-cert is the https backend."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import (  # noqa: E402
                    Proc, binary, case, free_port, raise_fd_limit, raw, rss_kb, run,
                    steady_memory_env, tls_cert)

PROXY = binary("hychat-proxy")
DIR = tempfile.mkdtemp(prefix="hychat-proxy-tls-")
OTHER = tempfile.mkdtemp(prefix="hychat-proxy-tls-other-")  # a CA nobody trusts
HANDSHAKE_TIMEOUT_S = 10  # the library's default
# A client beside stalled handshakes must be served long before they are
# shed at the timeout; the proxy has first done the real handshake work
# of every complete ClientHello sent before it, on a machine shared with
# other builds, under ASan: seconds, not the timeout's ten.
SERVED_S = 3.0
STALLED = 600
FLOOD = 3000
WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
WS_FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # masked "Hello"


def ca_pem(d=DIR):
    return os.path.join(d, "ca.pem")


def cert(name, cn, san="IP:127.0.0.1,DNS:localhost", d=DIR):
    """NAME.pem and NAME.key signed by the test CA of directory d, with
    subject CN=cn and the given subjectAltName; the key mode 0600."""
    if not os.path.exists(ca_pem(d)):
        tls_cert(d, "seed")
    run_ = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    key, csr, pem, ext = (os.path.join(d, name + e) for e in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    run_("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    run_("openssl", "x509", "-req", "-in", csr, "-CA", ca_pem(d), "-CAkey",
         os.path.join(d, "ca.key"), "-CAcreateserial", "-out", pem, "-days", "2",
         "-extfile", ext)
    os.chmod(key, 0o600)
    return pem, key


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/big/"):  # chunked, a known pattern
            left = int(self.path[5:])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = bytes(range(256)) * 256
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
        self.end_headers()
        self.wfile.write(body)


    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        h = hashlib.sha256()
        while n:
            d = self.rfile.read(min(n, 65536))
            h.update(d)
            n -= len(d)
        body = json.dumps({"server": self.server.name, "sha256": h.hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Backend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def backend(name, ctx=None):
    """An HTTP backend that answers JSON naming itself and the request's
    headers, over TLS when ctx (a server context) is given."""
    port = free_port()
    srv = Backend(("127.0.0.1", port), Handler)
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.name = name
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def ws_backend(ctx=None):
    """A WebSocket echo backend, over TLS when ctx (a server context) is
    given."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        try:
            if ctx is not None:
                c = ctx.wrap_socket(c, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                d = c.recv(4096)
                if not d:
                    return
                data += d
            key = re.search(rb"Sec-WebSocket-Key: (\S+)", data).group(1)
            acc = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)
        except (OSError, ssl.SSLError):
            pass
        finally:
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


def tls_httpd(pem, key):
    """hychat-httpd speaking TLS with this certificate: an https backend."""
    port = free_port()
    p = Proc([binary("hychat-httpd"), "--listen", "127.0.0.1:%d" % port, "--quiet",
              "--tls-cert", pem, "--tls-key", key], port=port)
    return p, port


def proxy(conf, tls_port, plain_port=None):
    """hychat-proxy with this configuration text; waits for its ports."""
    path = os.path.join(tempfile.mkdtemp(dir=DIR), "proxy.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = Proc([PROXY, "-c", path], port=tls_port, env=steady_memory_env())
    if plain_port is not None:
        from hytest import wait_port
        wait_port(plain_port, p.p)
    p.conf = path
    return p


def stop(p):
    rc = p.stop()
    out = p.output()
    assert rc == 0 and "ERROR: " not in out and "runtime error" not in out, out


def client_ctx(ca=None):
    ctx = ssl.create_default_context(cafile=ca or ca_pem())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def get(port, host, path="/", conn=None):
    """GET over TLS, SNI and Host both host; (status, body, conn)."""
    c = conn
    if c is None:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx(), timeout=10)
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sock = client_ctx().wrap_socket(sock, server_hostname=host)
    c.request("GET", path, headers={"Host": host})
    r = c.getresponse()
    return r.status, r.read(), c


def peer_cn(c):
    return dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]


def s_client(port, *args, servername=None, stdin=b"", timeout=20):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", ca_pem()]
    if servername:
        cmd += ["-servername", servername]
    p = subprocess.run(cmd + list(args), input=stdin, capture_output=True, timeout=timeout)
    return (p.stdout + p.stderr).decode("utf-8", "replace"), p.returncode


def wait_log(p, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in p.output():
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (text, p.output()))


def two_host_conf(port, plain, be_a, be_b):
    a_pem, a_key = cert("alpha", "alpha.test", "DNS:alpha.test")
    b_pem, b_key = cert("beta", "beta.test", "DNS:beta.test")
    return """
# TLS on one port, plain HTTP on another
listen 127.0.0.1:{port} ssl;
listen 127.0.0.1:{plain};
host "alpha.test" default {{
    ssl_certificate {a_pem};
    ssl_certificate_key {a_key};
    proxy_pass http://127.0.0.1:{be_a};
}}
host "beta.test" {{
    ssl_certificate {b_pem};
    ssl_certificate_key {b_key};
    proxy_pass http://127.0.0.1:{be_b};
}}
""".format(**locals())


@case
def test_curl_and_s_client_through_the_tls_listener_and_sni_picks_the_certificate():
    _, be_a = backend("A")
    _, be_b = backend("B")
    port, plain = free_port(), free_port()
    p = proxy(two_host_conf(port, plain, be_a, be_b), port, plain)
    try:
        for host, server in (("alpha.test", "A"), ("beta.test", "B")):
            out = subprocess.run(
                ["curl", "-sS", "--cacert", ca_pem(), "--resolve",
                 "%s:%d:127.0.0.1" % (host, port), "https://%s:%d/x" % (host, port)],
                capture_output=True, timeout=20)
            assert out.returncode == 0, out
            got = json.loads(out.stdout)
            assert got["server"] == server, got
            assert got["headers"]["x-forwarded-proto"] == "https", got
            assert "proto=https" in got["headers"]["forwarded"], got
            # SNI picks the certificate: its subject names the host
            txt, rc = s_client(port, "-brief", "-verify_return_error", servername=host,
                               stdin=b"GET / HTTP/1.1\r\nHost: " + host.encode() +
                               b"\r\nConnection: close\r\n\r\n")
            assert rc == 0 and "Verification: OK" in txt, txt
            assert "CN = " + host in txt or "CN=" + host in txt, txt
        # a client that names no host gets the default block's certificate
        txt, _ = s_client(port, "-brief", "-noservername")
        assert "CN = alpha.test" in txt or "CN=alpha.test" in txt, txt
        # a name no block carries: the default's too
        txt, _ = s_client(port, "-brief", servername="gamma.test")
        assert "CN = alpha.test" in txt or "CN=alpha.test" in txt, txt
        # the plain listener still speaks plain HTTP, and says http
        out = subprocess.run(["curl", "-sS", "-H", "Host: beta.test",
                              "http://127.0.0.1:%d/" % plain], capture_output=True, timeout=20)
        got = json.loads(out.stdout)
        assert got["server"] == "B" and got["headers"]["x-forwarded-proto"] == "http", got
    finally:
        stop(p)


@case
def test_old_protocols_and_weak_ciphers_are_refused_at_the_proxy():
    _, be_a = backend("A")
    _, be_b = backend("B")
    port, plain = free_port(), free_port()
    p = proxy(two_host_conf(port, plain, be_a, be_b), port, plain)
    try:
        for args in (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
                     ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
                     ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
                     ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]):
            txt, rc = s_client(port, *args, servername="alpha.test")
            assert rc != 0, (args, txt)
            assert "Cipher is (NONE)" in txt or "no peer certificate" in txt, (args, txt)
        assert "unsupported protocol" in p.output(), p.output()
        assert "no shared cipher" in p.output(), p.output()
        txt, rc = s_client(port, "-tls1_2", "-brief", servername="alpha.test",
                           stdin=b"GET / HTTP/1.1\r\nHost: alpha.test\r\n"
                           b"Connection: close\r\n\r\n")
        assert rc == 0 and "Protocol version: TLSv1.2" in txt, txt
        assert p.alive()
    finally:
        stop(p)


@case
def test_plain_http_on_the_tls_port_and_tls_on_the_plain_port_are_refused_cleanly():
    _, be_a = backend("A")
    _, be_b = backend("B")
    port, plain = free_port(), free_port()
    p = proxy(two_host_conf(port, plain, be_a, be_b), port, plain)
    try:
        data = raw(port, b"GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 400"), data
        wait_log(p, "plain HTTP on a TLS port")
        with socket.create_connection(("127.0.0.1", plain), timeout=5) as s:
            try:
                client_ctx().wrap_socket(s, server_hostname="alpha.test")
                raise AssertionError("a TLS handshake succeeded on the plain port")
            except (ssl.SSLError, ConnectionError, OSError):
                pass
        wait_log(p, "TLS handshake on a plain HTTP port")
        st, body, c = get(port, "alpha.test")
        c.close()
        assert st == 200 and json.loads(body)["server"] == "A"
    finally:
        stop(p)


@case
def test_proxy_pass_https_verifies_the_backend():
    good_pem, good_key = cert("backend", "backend")  # 127.0.0.1, localhost
    bad_pem, bad_key = cert("stranger", "stranger", d=OTHER)  # a CA not trusted
    named_pem, named_key = cert("misnamed", "misnamed", "DNS:elsewhere.test")
    good, gport = tls_httpd(good_pem, good_key)
    bad, bport = tls_httpd(bad_pem, bad_key)
    named, nport = tls_httpd(named_pem, named_key)
    _, plain_be = backend("P")  # speaks plain HTTP to a ClientHello
    closer = socket.socket()  # accepts, then closes at once
    closer.bind(("127.0.0.1", 0))
    closer.listen(16)
    cport = closer.getsockname()[1]

    def close_all():
        while True:
            try:
                closer.accept()[0].close()
            except OSError:
                return
    threading.Thread(target=close_all, daemon=True).start()
    f_pem, f_key = cert("front", "front", ",".join(
        "DNS:%s.test" % n for n in ("front", "byname", "untrusted", "misnamed", "unverified",
                                    "plain", "closer")))
    port = free_port()
    conf = """
listen 127.0.0.1:{port} ssl;
host "front.test" default {{
    ssl_certificate {f_pem};
    ssl_certificate_key {f_key};
    proxy_pass https://127.0.0.1:{gport};
    proxy_ssl_trusted_certificate {ca};
}}
host "byname.test" {{
    proxy_pass https://localhost:{gport};
    proxy_ssl_trusted_certificate {ca};
}}
host "untrusted.test" {{
    proxy_pass https://127.0.0.1:{bport};
    proxy_ssl_trusted_certificate {ca};
}}
host "misnamed.test" {{
    proxy_pass https://127.0.0.1:{nport};
    proxy_ssl_trusted_certificate {ca};
}}
host "unverified.test" {{
    proxy_pass https://127.0.0.1:{bport};
    proxy_ssl_verify off;
}}
host "plain.test" {{ proxy_pass https://127.0.0.1:{plain_be}; }}
host "closer.test" {{ proxy_pass https://127.0.0.1:{cport}; }}
""".format(ca=ca_pem(), **locals())
    p = proxy(conf, port)
    try:
        for host in ("front.test", "byname.test", "unverified.test"):
            st, body, c = get(port, host, "/login.html")
            assert st == 200 and b"<form" in body, (host, st, body[:200])
            # kept alive on both sides: a second request on the same connections
            st, body, _ = get(port, host, "/login.html", conn=c)
            assert st == 200, (host, st)
            c.close()
        for host, why in (("untrusted.test", "certificate verify failed"),
                          ("misnamed.test", "certificate verify failed")):
            st, body, c = get(port, host, "/login.html")
            c.close()
            assert st == 502, (host, st, body[:200])
            wait_log(p, "backend 127.0.0.1:%d: TLS handshake: %s" % (
                bport if host == "untrusted.test" else nport, why))
        # an https backend that is not one: a clean 502 and a log line
        for host, be in (("plain.test", plain_be), ("closer.test", cport)):
            st, body, c = get(port, host, "/")
            c.close()
            assert st == 502, (host, st, body[:200])
            wait_log(p, "backend 127.0.0.1:%d: TLS handshake: " % be)
        assert "the backend closed the connection" in p.output(), p.output()
    finally:
        stop(p)
        closer.close()
        good.stop()
        bad.stop()
        named.stop()


@case
def test_large_bodies_stream_both_ways_through_tls_on_both_sides():
    b_pem, b_key = cert("bigback", "bigback")
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(b_pem, b_key)
    _, be = backend("T", sctx)
    f_pem, f_key = cert("bigfront", "big.test", "DNS:big.test")
    port = free_port()
    conf = """
listen 127.0.0.1:{port} ssl;
host "big.test" {{
    ssl_certificate {f_pem};
    ssl_certificate_key {f_key};
    proxy_pass https://127.0.0.1:{be};
    proxy_ssl_trusted_certificate {ca};
}}
""".format(ca=ca_pem(), **locals())
    p = proxy(conf, port)
    try:
        size = 24 * 1024 * 1024
        st, _, c = get(port, "big.test", "/json")
        assert st == 200
        c.request("GET", "/big/%d" % size, headers={"Host": "big.test"})
        r = c.getresponse()
        h, got, block = hashlib.sha256(), 0, bytes(range(256)) * 256
        # a slow start, so that the proxy has to hold the backend back
        time.sleep(1.0)
        while True:
            d = r.read(65536)
            if not d:
                break
            h.update(d)
            got += len(d)
        want = hashlib.sha256(block * (size // len(block))).hexdigest()
        assert got == size and h.hexdigest() == want, (got, size)
        body = os.urandom(3 * 1024 * 1024 + 17)
        c.request("POST", "/up", body=body, headers={"Host": "big.test"})
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["sha256"] == hashlib.sha256(body).hexdigest()
        c.close()
        assert rss_kb(p.pid) < 200 * 1024, "the proxy holds %d kB" % rss_kb(p.pid)
    finally:
        stop(p)


def ws_exchange(s, host):
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + WS_KEY +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        assert d, head
        head += d
    assert head.startswith(b"HTTP/1.1 101") and WS_ACCEPT in head, head
    for _ in range(3):
        s.sendall(WS_FRAME)
        echo = b""
        while len(echo) < len(WS_FRAME):
            d = s.recv(4096)
            assert d, echo
            echo += d
        assert echo == WS_FRAME, echo


@case
def test_websocket_upgrade_through_tls_on_either_side():
    _, plain_ws = ws_backend()
    b_pem, b_key = cert("wsback", "wsback")
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(b_pem, b_key)
    _, tls_ws = ws_backend(sctx)
    f_pem, f_key = cert("wsfront", "ws.test", "DNS:ws.test,DNS:wss.test")
    port, plain = free_port(), free_port()
    conf = """
listen 127.0.0.1:{port} ssl;
listen 127.0.0.1:{plain};
host "ws.test" default {{
    ssl_certificate {f_pem};
    ssl_certificate_key {f_key};
    proxy_pass http://127.0.0.1:{plain_ws};
}}
host "wss.test" {{
    proxy_pass https://127.0.0.1:{tls_ws};
    proxy_ssl_trusted_certificate {ca};
}}
""".format(ca=ca_pem(), **locals())
    p = proxy(conf, port, plain)
    try:
        # TLS at the client, plain to the backend; TLS on both sides; plain
        # at the client, TLS to the backend
        for host, tls in ((b"ws.test", True), (b"wss.test", True), (b"wss.test", False)):
            s = socket.create_connection(("127.0.0.1", port if tls else plain), timeout=10)
            if tls:
                s = client_ctx().wrap_socket(s, server_hostname=host.decode())
            ws_exchange(s, host)
            s.close()
    finally:
        stop(p)


@case
def test_sighup_reloads_certificates_and_keeps_an_open_connection():
    _, be_a = backend("A")
    pem, key = cert("reload", "first", "DNS:alpha.test")
    port = free_port()
    conf = """
listen 127.0.0.1:{port} ssl;
host "alpha.test" {{
    ssl_certificate {pem};
    ssl_certificate_key {key};
    proxy_pass http://127.0.0.1:{be_a};
}}
""".format(**locals())
    p = proxy(conf, port)
    try:
        st, _, old = get(port, "alpha.test")
        assert st == 200 and peer_cn(old) == "first"
        # a broken key: the reload is refused, the old certificate stays
        with open(key, "w") as f:
            f.write("not a key\n")
        os.kill(p.pid, signal.SIGHUP)
        wait_log(p, "reload refused")
        assert "line 3" in p.output() or "3: host alpha.test" in p.output(), p.output()
        st, _, c = get(port, "alpha.test")
        assert st == 200 and peer_cn(c) == "first"
        c.close()
        # the new pair in place
        pem2, key2 = cert("reload2", "second", "DNS:alpha.test")
        os.replace(pem2, pem)
        os.replace(key2, key)
        os.kill(p.pid, signal.SIGHUP)
        wait_log(p, "and its certificates")
        st, _, _ = get(port, "alpha.test", conn=old)  # still open
        assert st == 200 and peer_cn(old) == "first"
        st, _, new = get(port, "alpha.test")
        assert st == 200 and peer_cn(new) == "second"
        old.close()
        new.close()
    finally:
        stop(p)


@case
def test_a_key_others_may_read_stops_the_start_with_the_line():
    _, be_a = backend("A")
    pem, key = cert("loose", "loose", "DNS:alpha.test")
    os.chmod(key, 0o644)
    path = os.path.join(DIR, "loose.conf")
    with open(path, "w") as f:
        f.write("listen 127.0.0.1:%d ssl;\n\nhost \"alpha.test\" {\n ssl_certificate %s;\n"
                " ssl_certificate_key %s;\n proxy_pass http://127.0.0.1:%d;\n}\n"
                % (free_port(), pem, key, be_a))
    r = subprocess.run([PROXY, "-c", path], capture_output=True, timeout=10)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert "loose.conf:3: host alpha.test" in err and "chmod 600" in err, err
    r = subprocess.run([PROXY, "--check", "-c", path], capture_output=True, timeout=10)
    assert r.returncode == 1 and "chmod 600" in r.stderr.decode(), r


def client_hello():
    """The bytes of a real ClientHello, from a client that never goes on."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="alpha.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_by_server(s, wait_s=0.5):
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


def timed_get(port, host):
    t0 = time.monotonic()
    st, _, c = get(port, host)
    c.close()
    return st, time.monotonic() - t0


@case
def test_half_finished_handshakes_and_a_flood_on_the_tls_port_are_shed():
    raise_fd_limit(STALLED + FLOOD + 200)
    _, be_a = backend("A")
    _, be_b = backend("B")
    port, plain = free_port(), free_port()
    p = proxy(two_host_conf(port, plain, be_a, be_b), port, plain)
    try:
        base = rss_kb(p.pid)
        hello = client_hello()
        socks = []
        for i in range(STALLED):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            # a third say nothing, a third half a ClientHello, a third all
            # of it and nothing more
            if i % 3 == 1:
                s.sendall(hello[: len(hello) // 2])
            elif i % 3 == 2:
                s.sendall(hello)
            socks.append(s)
        st, took = timed_get(port, "beta.test")
        assert st == 200 and took < SERVED_S, "a client waited %.3f s beside %d stalled" % (
            took, STALLED)
        # a flood of connections opened and dropped at once
        for _ in range(FLOOD // 500):
            burst = [socket.create_connection(("127.0.0.1", port), timeout=5)
                     for _ in range(500)]
            for s in burst:
                s.close()
        assert p.alive()
        st, took = timed_get(port, "alpha.test")
        assert st == 200 and took < SERVED_S, "a client waited %.3f s after the flood" % took
        time.sleep(HANDSHAKE_TIMEOUT_S + 1.5)
        cut = sum(closed_by_server(s, 0.05) for s in socks)
        for s in socks:
            s.close()
        assert cut == STALLED, "%d of %d stalled handshakes were shed" % (cut, STALLED)
        assert timed_get(port, "alpha.test")[0] == 200
        grown = rss_kb(p.pid) - base
        assert grown < 64 * 1024, "RSS grew %d kB" % grown
    finally:
        stop(p)


if __name__ == "__main__":
    run()
