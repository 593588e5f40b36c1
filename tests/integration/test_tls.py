#!/usr/bin/env python3
"""TLS in the HTTP library, through hychat-tracker and hychat-httpd: a
test CA signs server certificates for 127.0.0.1 and localhost, and curl,
openssl s_client and Python's ssl module talk to the real binaries. Old
protocols and weak ciphers are refused, ALPN and session resumption work,
plain HTTP and TLS on the wrong port are refused cleanly, SIGHUP reloads
the certificate without dropping a keep-alive connection, and a private
key that others may read stops the start."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import Proc, binary, case, free_port, raw, run, tls_cert  # noqa: E402
from peer_harness import tracker_store  # noqa: E402

DIR = tempfile.mkdtemp(prefix="hychat-tls-")
GET_CLOSE = b"GET /get-list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def make_cert(name, cn):
    """NAME.pem and NAME.key for 127.0.0.1, signed by the test CA."""
    return tls_cert(DIR, name, cn)[1:]


def ca_pem():
    return os.path.join(DIR, "ca.pem")


def client_ctx():
    ctx = ssl.create_default_context(cafile=ca_pem())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def start(prog, cert, key, extra=(), plain_port=None):
    port = free_port()
    args = [binary(prog), "--listen", "127.0.0.1:%d" % port, "--tls-cert", cert,
            "--tls-key", key] + list(extra)
    if prog == "hychat-tracker":
        args += tracker_store(os.path.join(tempfile.mkdtemp(dir=DIR), "t.db")) + ["--kdf-cost",
                                                                                  "min"]
    if plain_port is not None:
        args += ["--plain-listen", "127.0.0.1:%d" % plain_port]
    return Proc(args, port=port), port


def https(port, method, path, body=None, headers=None, conn=None):
    """A request over TLS (on conn if given, kept alive); (status, headers, body)."""
    c = conn or http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx(), timeout=10)
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheaders(), data


def s_client(port, *args, stdin=b"", timeout=20):
    """openssl s_client's output (stdout and stderr) and exit status."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost", "-CAfile", ca_pem()] + list(args),
                       input=stdin, capture_output=True, timeout=timeout)
    return (p.stdout + p.stderr).decode("utf-8", "replace"), p.returncode


def header(hdrs, name):
    for k, v in hdrs:
        if k.lower() == name.lower():
            return v
    return None


def wait_log(p, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in p.output():
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (text, p.output()))


@case
def test_tracker_speaks_tls_to_curl_and_s_client():
    cert, key = make_cert("tracker", "tracker")
    p, port = start("hychat-tracker", cert, key)
    try:
        out = subprocess.run(["curl", "-sS", "--cacert", ca_pem(), "-w", "\n%{http_code}",
                              "https://127.0.0.1:%d/get-list" % port],
                             capture_output=True, timeout=20)
        body, code = out.stdout.decode().rsplit("\n", 1)
        assert code == "401", out
        assert json.loads(body)["status"] == "failed", body
        st, _, _ = https(port, "POST", "/register", {"username": "alice", "password": "pw1"})
        assert st == 201, st
        st, _, b = https(port, "POST", "/login", {"username": "alice", "password": "pw1"})
        assert st == 200 and json.loads(b)["token"], (st, b)
        txt, rc = s_client(port, "-brief", "-ign_eof", stdin=GET_CLOSE)
        assert "Verification: OK" in txt, txt
        assert "Protocol version: TLSv1.3" in txt, txt
        assert "HTTP/1.1 401" in txt, txt
    finally:
        assert p.stop() == 0, p.output()


@case
def test_httpd_over_tls_sends_hsts_and_a_secure_cookie():
    cert, key = make_cert("httpd", "httpd")
    plain = free_port()
    p, port = start("hychat-httpd", cert, key, ["--quiet"], plain_port=plain)
    try:
        st, hdrs, _ = https(port, "GET", "/login.html")
        assert st == 200, st
        assert header(hdrs, "Strict-Transport-Security") == "max-age=63072000", hdrs
        st, hdrs, _ = https(port, "POST", "/login", "username=admin&password=password",
                            {"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, st
        cookie = header(hdrs, "Set-Cookie")
        assert cookie is not None and cookie.endswith("; Secure"), cookie
        # the plain listener beside it: no HSTS, no Secure
        data = raw(plain, b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n"
                   b"Content-Length: 32\r\n\r\nusername=admin&password=password")
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        assert b"Strict-Transport-Security" not in data
        assert b"Set-Cookie: hychat_session=" in data and b"Secure" not in data.split(
            b"\r\n\r\n")[0]
    finally:
        assert p.stop() == 0, p.output()


@case
def test_old_protocols_and_weak_ciphers_are_refused():
    cert, key = make_cert("weak", "weak")
    p, port = start("hychat-tracker", cert, key, ["--quiet"])
    try:
        for args in (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
                     ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
                     # ECDHE with CBC and SHA-1: the client offers only it
                     ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
                     ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"]):
            txt, rc = s_client(port, *args)
            assert rc != 0, (args, txt)
            assert "Cipher is (NONE)" in txt or "no peer certificate" in txt, (args, txt)
        assert "unsupported protocol" in p.output(), p.output()
        assert "no shared cipher" in p.output(), p.output()
        txt, rc = s_client(port, "-tls1_2", "-brief")
        assert rc == 0 and "Protocol version: TLSv1.2" in txt, txt
        assert p.alive()
    finally:
        assert p.stop() == 0, p.output()


@case
def test_renegotiation_is_refused():
    cert, key = make_cert("reneg", "reneg")
    p, port = start("hychat-tracker", cert, key, ["--quiet"])
    try:
        # s_client's "R" line asks for a TLS 1.2 renegotiation; stdin stays
        # open a moment so that the answer is read
        sc = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                               "-tls1_2", "-CAfile", ca_pem()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        sc.stdin.write(b"R\n")
        sc.stdin.flush()
        time.sleep(1.5)
        txt = sc.communicate(timeout=20)[0].decode("utf-8", "replace")
        assert "RENEGOTIATING" in txt, txt
        assert "no renegotiation" in txt, txt
        assert https(port, "GET", "/get-list")[0] == 401
    finally:
        assert p.stop() == 0, p.output()


@case
def test_alpn_http11_and_session_resumption():
    cert, key = make_cert("resume", "resume")
    p, port = start("hychat-tracker", cert, key, ["--quiet"])
    try:
        txt, _ = s_client(port, "-alpn", "h2,http/1.1")
        assert "ALPN protocol: http/1.1" in txt, txt
        for ver in ("-tls1_3", "-tls1_2"):
            sess = os.path.join(DIR, "sess" + ver)
            # a whole exchange, so that the TLS 1.3 ticket has arrived
            txt, rc = s_client(port, ver, "-sess_out", sess, "-ign_eof", stdin=GET_CLOSE)
            assert rc == 0 and "New, TLSv1" in txt, txt
            txt, rc = s_client(port, ver, "-sess_in", sess, "-ign_eof", stdin=GET_CLOSE)
            assert rc == 0 and "Reused, TLSv1" in txt, (ver, txt)
    finally:
        assert p.stop() == 0, p.output()


@case
def test_plain_http_on_the_tls_port_gets_400_and_a_log_line():
    cert, key = make_cert("plain", "plain")
    plain = free_port()
    p, port = start("hychat-tracker", cert, key, [], plain_port=plain)
    try:
        data = raw(port, b"GET /get-list HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 400"), data
        assert b"https://" in data, data
        wait_log(p, "plain HTTP on a TLS port")
        # TLS on the plain port: a clean close, no answer in clear
        with socket.create_connection(("127.0.0.1", plain), timeout=5) as s:
            with pytest_raises_ssl():
                client_ctx().wrap_socket(s, server_hostname="localhost")
        wait_log(p, "TLS handshake on a plain HTTP port")
        assert raw(plain, b"GET /get-list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   ).startswith(b"HTTP/1.1 401")
        assert https(port, "GET", "/get-list")[0] == 401
    finally:
        assert p.stop() == 0, p.output()


class pytest_raises_ssl:
    """with pytest_raises_ssl(): ... must raise an SSL or connection error."""

    def __enter__(self):
        return self

    def __exit__(self, typ, val, tb):
        assert typ is not None, "the TLS handshake succeeded on a plain port"
        return issubclass(typ, (ssl.SSLError, ConnectionError, OSError))


@case
def test_sighup_reloads_the_certificate_and_keeps_open_connections():
    cert, key = make_cert("reload", "first")
    p, port = start("hychat-tracker", cert, key)
    try:
        old = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx(), timeout=10)
        assert https(port, "GET", "/get-list", conn=old)[0] == 401
        assert dict(x[0] for x in old.sock.getpeercert()["subject"])["commonName"] == "first"
        # a broken key: the old certificate stays
        with open(key, "w") as f:
            f.write("not a key\n")
        os.kill(p.pid, signal.SIGHUP)
        wait_log(p, "keeps its old certificate")
        assert https(port, "GET", "/get-list")[0] == 401
        # the new pair, in place
        pem2, key2 = make_cert("reload2", "second")
        os.replace(pem2, cert)
        os.replace(key2, key)
        os.kill(p.pid, signal.SIGHUP)
        wait_log(p, "certificate reloaded")
        assert https(port, "GET", "/get-list", conn=old)[0] == 401  # still open
        assert dict(x[0] for x in old.sock.getpeercert()["subject"])["commonName"] == "first"
        new = http.client.HTTPSConnection("127.0.0.1", port, context=client_ctx(), timeout=10)
        assert https(port, "GET", "/get-list", conn=new)[0] == 401
        assert dict(x[0] for x in new.sock.getpeercert()["subject"])["commonName"] == "second"
        old.close()
        new.close()
    finally:
        assert p.stop() == 0, p.output()


@case
def test_large_files_and_pipelined_requests_over_tls():
    cert, key = make_cert("big", "big")
    root = tempfile.mkdtemp(dir=DIR)
    big = os.urandom(3 * 1024 * 1024 + 17)  # streamed, past the write queue's limit
    os.mkdir(os.path.join(root, "public"))
    with open(os.path.join(root, "public", "big.bin"), "wb") as f:
        f.write(big)
    with open(os.path.join(root, "login.html"), "w") as f:
        f.write("<p>login</p>\n")
    p, port = start("hychat-httpd", cert, key, ["--quiet", "--root", root])
    try:
        # a slow reader: the server's queue fills and drains many times
        out = subprocess.run(["curl", "-sS", "--cacert", ca_pem(), "--limit-rate", "2M",
                              "https://127.0.0.1:%d/public/big.bin" % port],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout == big, "%d bytes, not the file's %d" % (len(out.stdout), len(big))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_sock:
            with client_ctx().wrap_socket(raw_sock, server_hostname="localhost") as s:
                s.sendall(b"GET /login.html HTTP/1.1\r\nHost: x\r\n\r\n" * 20 +
                          b"GET /login.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
        assert data.count(b"HTTP/1.1 200 OK") == 21, data[:300]
        assert data.count(b"<p>login</p>") == 21
    finally:
        assert p.stop() == 0, p.output()


@case
def test_a_key_others_may_read_is_refused_at_start():
    cert, key = make_cert("mode", "mode")
    os.chmod(key, 0o644)
    for prog in ("hychat-tracker", "hychat-httpd"):
        args = [binary(prog), "--listen", "127.0.0.1:%d" % free_port(), "--tls-cert", cert,
                "--tls-key", key]
        if prog == "hychat-tracker":
            args += tracker_store(os.path.join(DIR, "mode.db"))
        r = subprocess.run(args, capture_output=True, timeout=20)
        err = r.stderr.decode()
        assert r.returncode == 1, (prog, r.returncode, err)
        assert len(err.strip().splitlines()) == 1, err
        assert key in err and "0644" in err and "chmod 600" in err, err
    r = subprocess.run([binary("hychat-httpd"), "--tls-cert", cert], capture_output=True,
                       timeout=20)
    assert r.returncode == 2 and b"--tls-key" in r.stderr, r


if __name__ == "__main__":
    run()
