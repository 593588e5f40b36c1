"""hytest — helpers for the integration tests: private ports and
directories, real processes started and killed by pid, raw HTTP over
sockets, and a tiny test runner that prints one line per case."""
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BUILD = os.environ.get("HYCHAT_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("HYCHAT_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def binary(name):
    """Path of a built binary: hychat-httpd -> BUILD/src/httpd/hychat-httpd."""
    sub = {"hychat-httpd": "httpd", "hychat-tracker": "tracker",
           "hychat-proxy": "proxy", "hychat": "peer", "hychat-relay": "relay"}[name]
    return os.path.join(BUILD, "src", sub, name)


def raise_fd_limit(n):
    """Raises this process's open-file limit toward n (children inherit
    it); returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def rss_kb(pid):
    """The resident memory of a process, in kB."""
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))


class PeakRss:
    """The highest RSS of a process, sampled every 10 ms from a thread
    while the with-block runs: a body buffered whole and freed at the end
    shows, as the RSS after the fact may not."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.01):
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, AttributeError):
                return

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kb(self.pid))
        return False


def steady_memory_env():
    """The environment for a process whose RSS a test compares over time.
    Under ASan: a 1 MB quarantine, so freed memory is reused rather than
    parked, and no release of free pages to the kernel on ASan's 5 s timer,
    so RSS does not drop and rise behind the test's back. RSS then grows
    only when the program holds more memory, or fragments it."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (asan + ":" if asan else "") +
            "quarantine_size_mb=1:allocator_release_to_os_interval_ms=-1"}


def read_for(s, seconds):
    """Every byte that arrives on socket s within seconds, or until it
    closes."""
    out = bytearray()  # bytes += bytes copies the whole: quadratic
    deadline = time.monotonic() + seconds
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_exact(s, n):
    """Exactly n bytes from socket s, or None if it closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def connect_many(port, n, timeout=10):
    """n open connections to port on 127.0.0.1 (raise the fd limit first)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def count_503(socks):
    """How many of socks were answered 503 (the server's connection cap)."""
    refused = 0
    for s in socks:
        try:
            d = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            d = b""
        refused += d.startswith(b"HTTP/1.1 503")
    return refused


# Ports handed to servers come from below the kernel's ephemeral range
# (32768-60999 by default): a port the kernel picked for a bind to port 0
# is one it also picks as the source port of an outgoing connection, and
# with the suites running side by side (thousands of connections) one
# took a chaos peer's port between free_port() and the peer's bind. The
# top is kept 10000 under the range, as some tests serve on port + 10000.
FREE_PORT_RANGE = (10000, 22767)
_port_rng = random.Random(os.urandom(16))
_ports_given = set()  # never the same port twice to one test process


def free_port():
    """A loopback port nothing is bound to now, outside the ephemeral range,
    and not given before by this process: a test that takes several ports
    before starting what binds them (the chaos test's eight peers) would
    otherwise get the same one twice now and then."""
    for _ in range(1000):
        port = _port_rng.randint(*FREE_PORT_RANGE)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port in %d-%d" % FREE_PORT_RANGE)


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %d before listening" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on port %d" % port)


class Proc:
    """A process this test started; stop() kills exactly it, by pid."""

    def __init__(self, args, port=None, env=None, stdin=None, cwd=None):
        self.tmp = tempfile.TemporaryFile()
        e = dict(os.environ)
        if env:
            e.update(env)
        # The child writes through a description of its own, in append
        # mode: sharing self.tmp's, output()'s seek(0) moved the child's
        # offset too, and a line written meanwhile overwrote the start.
        out = open("/proc/self/fd/%d" % self.tmp.fileno(), "ab", buffering=0)
        try:
            self.p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                      env=e, cwd=cwd)
        finally:
            out.close()
        if port is not None:
            wait_port(port, self.p)

    @property
    def pid(self):
        return self.p.pid

    def output(self):
        self.tmp.seek(0)
        return self.tmp.read().decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        return self.p.returncode


def raw(port, data, timeout=5.0, until_close=True):
    """Sends bytes, returns every byte received until the server closes
    (or until timeout when until_close is False and something arrived)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = bytearray()  # bytes += bytes copies the whole: quadratic
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not until_close and parse_responses(bytes(out), complete_only=True):
                break
        return bytes(out)
    finally:
        s.close()


def parse_responses(data, complete_only=False):
    """Splits a byte stream into [(status, headers dict lowercased, body)]."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), v.strip())
        rest = data[end + 4:]
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(rest) < n:
                if complete_only:
                    break
            body, data = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                nl = rest.find(b"\r\n")
                if nl < 0:
                    return out
                size = int(rest[:nl].split(b";")[0], 16)
                rest = rest[nl + 2:]
                if size == 0:
                    term = rest.find(b"\r\n")
                    rest = rest[term + 2:]
                    break
                body += rest[:size]
                rest = rest[size + 2:]
            data = rest
        else:
            body, data = rest, b""
        out.append((status, hdrs, body))
    return out


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One HTTP/1.1 request on a fresh connection; returns (status, headers, body)."""
    hdrs = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
    if headers:
        hdrs.update(headers)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    if body is not None:
        hdrs["Content-Length"] = str(len(body))
    msg = "%s %s HTTP/1.1\r\n" % (method, path)
    msg += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
    data = msg.encode() + (body or b"")
    resp = parse_responses(raw(port, data, timeout))
    if not resp:
        raise AssertionError("no response to %s %s" % (method, path))
    return resp[0]


def tls_cert(d, name, cn="localhost"):
    """A test CA in directory d (made once) and a server certificate it
    signs for 127.0.0.1 and localhost, made with openssl req/x509 (ECDSA
    P-256). Returns (ca.pem, NAME.pem, NAME.key); the key is mode 0600."""
    run_ = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    cakey, capem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    if not os.path.exists(capem):
        run_("openssl", "req", "-x509", *ec, "-keyout", cakey, "-out", capem, "-days", "2",
             "-subj", "/CN=hychat test CA")
    key, csr, pem, ext = (os.path.join(d, name + e) for e in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run_("openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    run_("openssl", "x509", "-req", "-in", csr, "-CA", capem, "-CAkey", cakey,
         "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return capem, pem, key


_cases = []


def case(fn):
    """Registers a test case; run() runs them in order."""
    _cases.append(fn)
    return fn


def run(setup=None, teardown=None):
    """Runs the registered cases, one 'ok'/'FAIL' line each, and exits
    non-zero if any failed. HYTEST_ONLY=WORD runs only the cases whose
    name contains WORD."""
    only = os.environ.get("HYTEST_ONLY", "")
    cases = [fn for fn in _cases if only in fn.__name__]
    ctx = setup() if setup else None
    failed = 0
    try:
        for fn in cases:
            t0 = time.monotonic()
            try:
                fn()
                print("ok   %-60s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s" % fn.__name__, flush=True)
                traceback.print_exc(file=sys.stdout)
    finally:
        if teardown:
            teardown(ctx)
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    sys.exit(1 if failed else 0)
