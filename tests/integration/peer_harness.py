"""peer_harness — drives headless hychat peers for the integration tests
and benchmarks: a peer is a process with a pipe on stdin (command lines)
and a pipe on stdout (one JSON event per line), read by a thread into a
list that tests wait on with a deadline. Also: a tracker (plain, or behind
TLS), test certificates, accounts, and a TCP relay that records the bytes
it passes."""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import Proc, binary, free_port, request, wait_port  # noqa: E402


def short(ev, n=300):
    s = json.dumps(ev, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


class Peer:
    """A headless hychat; events() and wait() see what it printed."""

    def __init__(self, name, port, tracker_port, data_dir, password=None, extra=(),
                 env=None, wrap=()):
        """tracker_port: a port on 127.0.0.1 (plain HTTP), or a whole URL."""
        self.name = name
        self.port = port
        self.data_dir = data_dir
        url = tracker_port if isinstance(tracker_port, str) else \
            "http://127.0.0.1:%d" % tracker_port
        args = list(wrap) + [binary("hychat"), "--headless", "--username", name, "--peer-port", str(port),
                "--listen", "127.0.0.1",
                "--tracker", url, "--data-dir", data_dir]
        args += list(extra)
        e = dict(os.environ)
        e.pop("HYCHAT_PASSWORD", None)
        # Settings of its own, never the user's ~/.config.
        e["XDG_CONFIG_HOME"] = os.path.join(data_dir, "config")
        if password is not None:
            e["HYCHAT_PASSWORD"] = password
        if env:
            e.update(env)
        self.log = tempfile.TemporaryFile()
        # stderr through a description of its own, in append mode (see
        # hytest.Proc): stderr()'s seek(0) must not move the writer's offset
        err = open("/proc/self/fd/%d" % self.log.fileno(), "ab", buffering=0)
        try:
            self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=err, env=e)
        finally:
            err.close()
        self._events = []
        self._raw = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"type": "unparsable", "line": line.decode("utf-8", "replace")}
            with self._cv:
                self._raw.append(line)
                self._events.append(ev)
                self._cv.notify_all()
        with self._cv:
            self._events.append({"type": "_eof"})
            self._cv.notify_all()

    def cmd(self, line):
        self.p.stdin.write(line.encode("utf-8") + b"\n")
        self.p.stdin.flush()

    def mark(self):
        with self._cv:
            return len(self._events)

    def events(self, since=0, type=None):
        with self._cv:
            evs = list(self._events[since:])
        return [e for e in evs if type is None or e.get("type") == type]

    def wait(self, pred, timeout=10.0, since=0, what="an event"):
        """The first event after `since` for which pred holds."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cv:
            while True:
                while i < len(self._events):
                    ev = self._events[i]
                    i += 1
                    if pred(ev):
                        return ev
                    if ev.get("type") == "_eof":
                        raise AssertionError("%s exited while waiting for %s; stderr:\n%s"
                                             % (self.name, what, self.stderr()[-3000:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    last = [short(e) for e in self._events[-8:]]
                    raise AssertionError("%s: no %s within %.0fs; last events:\n  %s\nstderr:\n%s"
                                         % (self.name, what, timeout, "\n  ".join(last),
                                            self.stderr()[-3000:]))
                self._cv.wait(left)

    def wait_type(self, type, timeout=10.0, since=0, **fields):
        def pred(ev):
            return ev.get("type") == type and all(ev.get(k) == v for k, v in fields.items())
        return self.wait(pred, timeout, since, "%s %s" % (type, fields))

    def raw_lines(self):
        with self._cv:
            return list(self._raw)

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self._reader.join(5)

    def stop(self, how="quit", timeout=15):
        """Stops the peer ("quit" command, "eof", or a signal number) and
        returns its exit status."""
        if self.p.poll() is None:
            try:
                if how == "quit":
                    self.cmd("/quit")
                elif how == "eof":
                    self.p.stdin.close()
                else:
                    os.kill(self.p.pid, how)
            except (BrokenPipeError, OSError):
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self._reader.join(5)
        try:
            self.p.stdin.close()
        except OSError:
            pass
        return self.p.returncode


def stop_checked(peers):
    """Stops every peer with /quit; returns a line for each that exited
    non-zero or with a sanitizer report, with the end of its stderr."""
    bad = []
    for p in peers:
        rc = p.stop("quit")
        err = p.stderr()
        if rc != 0 or "ERROR: AddressSanitizer" in err or "runtime error" in err:
            bad.append("%s exited %s:\n%s" % (p.name, rc, err[-4000:]))
    return bad


def end_suite(S, alive_only=False):
    """The teardown of a suite of peers on one tracker (S["peers"],
    S["tracker"], S["tmp"]): stops the peers with stop_checked (only those
    still running if alive_only), then the tracker, removes the directory,
    and fails the run if a peer did not exit cleanly."""
    bad = []
    try:
        peers = S.get("peers", [])
        bad = stop_checked([p for p in peers if p.alive()] if alive_only else peers)
        if "tracker" in S:
            S["tracker"].stop()
    finally:
        shutil.rmtree(S["tmp"], ignore_errors=True)
    if bad:
        print("\n".join(bad))
        print("FAIL teardown: a peer did not exit cleanly")
        sys.exit(1)


_STORES = {}


def _store_map():
    """The StoreMap of this process under HYTEST_STORE=redis or
    redis-cluster (made on first use, closed at exit), else None."""
    from redis_harness import StoreMap, store_mode
    mode = store_mode()
    if mode == "sqlite":
        return None
    if "map" not in _STORES:
        import atexit
        _STORES["map"] = StoreMap(cluster=mode == "redis-cluster")
        atexit.register(_STORES["map"].close)
    return _STORES["map"]


def tracker_store(db):
    """--db db, or with HYTEST_STORE=redis a database of one redis-server
    (started on first use, stopped at exit) standing for it, or with
    HYTEST_STORE=redis-cluster database 0 of a one-node Redis Cluster of
    its own."""
    stores = _store_map()
    if stores is None:
        return ["--db", db]
    return ["--store", stores.url(db)]


def tracker_redis(db):
    """The redis-server and database number standing for db (after
    tracker_store(db) with HYTEST_STORE=redis or redis-cluster), else
    None."""
    stores = _STORES.get("map")
    return stores.find(db) if stores is not None else None


def start_tracker(tmp, port=None, extra=()):
    port = port or free_port()
    args = [binary("hychat-tracker"), "--listen", "127.0.0.1:%d" % port, "--quiet"] + \
        tracker_store(os.path.join(tmp, "tracker.db")) + list(extra)
    return Proc(args, port=port), port


def openssl(*args, stdin=None):
    """Runs openssl; its standard output (bytes)."""
    r = subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


def cert_pin(cert):
    """The pin of cert's public key, as hychat(1) says to compute it:
    sha256// and the base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
    pub = openssl("x509", "-pubkey", "-noout", "-in", cert)
    der = openssl("pkey", "-pubin", "-outform", "der", stdin=pub)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_test_certs(tmp):
    """ECDSA P-256 certificates in tmp/certs: a test CA ("ca"), a server
    certificate for 127.0.0.1 it signed ("cert", "key"), a self-signed one
    for 127.0.0.1 ("self_cert", "self_key"), and the pins of both and of
    a key that no server holds ("pin", "self_pin", "other_pin")."""
    d = os.path.join(tmp, "certs")
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, v) for k, v in [
        ("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"), ("key", "server.key"),
        ("csr", "server.csr"), ("ext", "server.ext"), ("self_cert", "self.pem"),
        ("self_key", "self.key"), ("other_cert", "other.pem"), ("other_key", "other.key")]}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    openssl("req", "-x509", *ec, "-keyout", f["ca_key"], "-out", f["ca"],
            "-subj", "/CN=hychat test CA")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", f["key"])
    openssl("req", "-new", "-key", f["key"], "-subj", "/CN=127.0.0.1", "-out", f["csr"])
    with open(f["ext"], "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                  "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f["csr"], "-CA", f["ca"], "-CAkey", f["ca_key"],
            "-CAcreateserial", "-days", "2", "-out", f["cert"], "-extfile", f["ext"])
    for name in ("self", "other"):
        openssl("req", "-x509", *ec, "-keyout", f[name + "_key"], "-out", f[name + "_cert"],
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    for k in ("ca_key", "key", "self_key", "other_key"):
        os.chmod(f[k], 0o600)  # as a TLS server wants its key
    f["pin"] = cert_pin(f["cert"])
    f["self_pin"] = cert_pin(f["self_cert"])
    f["other_pin"] = cert_pin(f["other_cert"])
    return f


class TlsTracker:
    """A tracker reached over TLS on 127.0.0.1:port; stop() ends it."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    def url(self, host="127.0.0.1"):
        return "https://%s:%d" % (host, self.port)

    def output(self):
        return self.proc.output()

    def stop(self):
        self.proc.stop()


def start_tls_tracker(tmp, cert, key, extra=()):
    """A tracker on a fresh port that speaks TLS with cert and key."""
    port = free_port()
    own = tempfile.mkdtemp(prefix="tls-tracker-", dir=tmp)  # its database
    args = [binary("hychat-tracker"), "--listen", "127.0.0.1:%d" % port,
            "--tls-cert", cert, "--tls-key", key, "--quiet",
            "--db", os.path.join(own, "tracker.db")] + list(extra)
    return TlsTracker(Proc(args, port=port), port)


def register(tracker_port, user, password):
    status, _, body = request(tracker_port, "POST", "/register",
                              {"username": user, "password": password})
    if status not in (201, 409):
        raise AssertionError("register %s: %d %s" % (user, status, body))


def login(tracker_port, user, password):
    """Logs user in; returns its bearer token."""
    status, _, body = request(tracker_port, "POST", "/login",
                              {"username": user, "password": password})
    if status != 200:
        raise AssertionError("login %s: %d %s" % (user, status, body))
    return json.loads(body)["token"]


def submit_info(tracker_port, token, user, port, pubkey_b64=None):
    """Registers user's address at the tracker as a peer of the original
    protocol does (no key), or with pubkey_b64."""
    info = {"username": user, "ip": "127.0.0.1", "port": port}
    if pubkey_b64 is not None:
        info["pubkey"] = pubkey_b64
    status, _, body = request(tracker_port, "POST", "/submit-info", info,
                              {"Authorization": "Bearer " + token})
    if status != 200:
        raise AssertionError("submit-info %s: %d %s" % (user, status, body))


def ws_unix(path, timeout=10.0):
    """A WebSocket on the web bridge's Unix socket (mode 0600: greeted at
    once, no Host, cookie or secret); returns the socket after the 101."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(5)
    u.connect(path)
    key = base64.b64encode(os.urandom(16)).decode()
    u.sendall(("GET /ws HTTP/1.1\r\nHost: tool\r\nConnection: Upgrade\r\n"
               "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Protocol: hychat\r\n\r\n" % key).encode())
    got = b""
    while b"\r\n\r\n" not in got and time.monotonic() < deadline:
        got += u.recv(1)
    assert got.startswith(b"HTTP/1.1 101"), got
    return u


def start_peer(name, tracker_port, tmp, password, extra=(), port=None, ready=True, timeout=20):
    """Starts a peer and, with ready, waits until the tracker lists it."""
    port = port or free_port()
    data = os.path.join(tmp, "peer-" + name)
    p = Peer(name, port, tracker_port, data, password, extra)
    if ready:
        p.wait_type("tracker", timeout, state="online")
    return p


class Relay:
    """Forwards TCP connections from its port to a target port, keeping a
    copy of every byte, both ways. stall() stops forwarding (the sockets
    stay open: a link that hangs); cut() then closes every connection.
    hold_answers() stops only what comes back from the target (requests
    still go: a server slow to answer) until release()."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = bytearray()
        self.sent = {"to": 0, "from": 0}  # bytes forwarded to the target, and back
        self.lock = threading.Lock()
        self.go = threading.Event()
        self.go.set()
        self.answers = threading.Event()
        self.answers.set()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u, "to"), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, "from"), daemon=True).start()

    def _pump(self, a, b, way):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            self.go.wait()
            if way == "from":
                self.answers.wait()
            with self.lock:
                self.seen += data
                self.sent[way] += len(data)
            try:
                b.sendall(data)
            except OSError:
                break
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def counts(self):
        """(bytes forwarded to the target, bytes forwarded back)."""
        with self.lock:
            return self.sent["to"], self.sent["from"]

    def bytes(self):
        with self.lock:
            return bytes(self.seen)

    def stall(self):
        self.go.clear()

    def hold_answers(self):
        self.answers.clear()

    def release(self):
        self.answers.set()

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.go.set()
        self.answers.set()

    def close(self):
        self.sock.close()
        self.cut()


__all__ = ["Peer", "Relay", "start_tracker", "start_tls_tracker", "make_test_certs",
           "cert_pin", "start_peer", "register", "free_port", "wait_port"]
