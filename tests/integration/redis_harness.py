"""Real redis-server and redis-sentinel processes for the tests: each on a
free loopback port in its own temporary directory, with the AOF on and
fsync every second (the configuration the project ships), stopped by pid;
a redis-server may be a one-node Redis Cluster. Also a minimal RESP
client, so that a test can look into Redis without any Python package,
and the map from a tracker's database to the Redis standing for it under
HYTEST_STORE."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from hytest import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock, raw=False):
        self.sock, self.buf, self.raw = sock, b"", raw

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("redis closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("redis closed the connection")
            self.buf += d
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.exact(n)
            return data if self.raw else data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad RESP line %r" % line)


class RedisError(Exception):
    pass


def command(port, *args, db=0, timeout=5.0, raw=False):
    """Sends one command (after SELECT db) and returns its reply (with raw,
    bulk strings as bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        r = _Reader(s, raw)
        if db:
            s.sendall(_encode(["SELECT", db]))
            r.reply()
        s.sendall(_encode(list(args)))
        return r.reply()


def _wait_ping(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("redis on port %d exited with %d" % (port, proc.returncode))
        try:
            if command(port, "PING", timeout=0.5) == "PONG":
                return
        except (OSError, RedisError):
            pass
        time.sleep(0.05)
    raise RuntimeError("redis on port %d does not answer" % port)


CLUSTER_SLOTS = 16384
# A cluster node stays in cluster_state:fail for 2 s after it starts
# (CLUSTER_WRITABLE_DELAY), slots or not: allow for a loaded machine.
CLUSTER_OK_TIMEOUT = 20.0


def cluster_info(port):
    """CLUSTER INFO as a dict of strings."""
    text = command(port, "CLUSTER", "INFO")
    return dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l)


class RedisServer:
    """One redis-server; restart() runs it again on the same directory and
    port, so that it loads its AOF. With cluster, a one-node Redis Cluster:
    its nodes.conf in its directory, its bus on a port of its own, every
    slot its own; start() waits for cluster_state:ok unless wait is false
    (then wait_cluster_ok() does). Across a restart nodes.conf keeps the
    node's id and slots."""

    def __init__(self, extra=(), port=None, directory=None, cluster=False, wait=True):
        self.dir = directory or tempfile.mkdtemp(prefix="hychat-redis-")
        self.port = port or free_port()
        self.extra = list(extra)
        self.cluster = cluster
        self.cluster_port = free_port() if cluster else None
        self.proc = None
        self.start(wait)

    def start(self, wait=True):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--databases", "256", "--daemonize", "no",
                "--protected-mode", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.cluster:  # the bus port given, not port + 10000 (maybe taken)
            args += ["--cluster-enabled", "yes", "--cluster-port", str(self.cluster_port),
                     "--cluster-config-file", os.path.join(self.dir, "nodes.conf")]
        self.proc = subprocess.Popen(args + self.extra, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     preexec_fn=lambda: os.umask(0o077))
        _wait_ping(self.port, self.proc)
        if self.cluster:
            if int(cluster_info(self.port)["cluster_slots_assigned"]) == 0:
                self.cmd("CLUSTER", "ADDSLOTSRANGE", 0, CLUSTER_SLOTS - 1)
            if wait:
                self.wait_cluster_ok()

    def wait_cluster_ok(self, timeout=CLUSTER_OK_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            info = cluster_info(self.port)
            if info.get("cluster_state") == "ok":
                return info
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis cluster node on port %d: %r" % (self.port, info))
            time.sleep(0.05)

    def url(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def cmd(self, *args, db=0, raw=False):
        assert not (self.cluster and db), "a cluster node has only database 0"
        return command(self.port, *args, db=db, raw=raw)

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)

    def restart(self, wait=True):
        self.kill()
        self.start(wait)

    def aof_bytes(self):
        data = b""
        for root, _, files in os.walk(self.dir):
            for f in files:
                if "appendonly" in f or root.endswith("appendonlydir"):
                    with open(os.path.join(root, f), "rb") as fh:
                        data += fh.read()
        return data

    def close(self, remove=True):
        self.kill()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


class Sentinel:
    """One redis-sentinel watching the primary at (host, port) as name,
    with quorum 2 and short timeouts so that a failover takes seconds."""

    def __init__(self, name, primary_port, port=None, down_ms=1000, failover_ms=3000):
        self.dir = tempfile.mkdtemp(prefix="hychat-sentinel-")
        self.port = port or free_port()
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
                    "logfile %s\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, os.path.join(self.dir, "sentinel.log"), name,
                       primary_port, name, down_ms, name, failover_ms, name))
        self.proc = subprocess.Popen([REDIS_SENTINEL, conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _wait_ping(self.port, self.proc)

    def cmd(self, *args):
        return command(self.port, *args)

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


STORE_MODES = ("sqlite", "redis", "redis-cluster")


def store_mode():
    """HYTEST_STORE: sqlite (the default), redis or redis-cluster."""
    mode = os.environ.get("HYTEST_STORE") or "sqlite"
    if mode not in STORE_MODES:
        raise SystemExit("HYTEST_STORE=%s: expected one of %s" % (mode, ", ".join(STORE_MODES)))
    return mode


class StoreMap:
    """The Redis standing for each tracker database (the SQLite file the
    SQLite run gives it), as (server, db number): with cluster false, a
    database of its own (1, 2, ...) on one shared redis-server; with
    cluster true, database 0 of a one-node Redis Cluster of its own. The
    servers start on first use (cluster nodes are started SPARES ahead, so
    that their 2 s wait for cluster_state:ok passes while the tests run:
    the mailbox suite asks for 14 in a row); close() stops them all."""

    SPARES = 2

    def __init__(self, cluster):
        self.cluster = cluster
        self.dbs = {}
        self.shared = None
        self.spares = []

    def get(self, db):
        if db in self.dbs:
            return self.dbs[db]
        if not self.cluster:
            if self.shared is None:
                self.shared = RedisServer()
            pair = (self.shared, len(self.dbs) + 1)
        else:
            while len(self.spares) < self.SPARES + 1:  # they age while this one waits
                self.spares.append(RedisServer(cluster=True, wait=False))
            server = self.spares.pop(0)
            self.dbs[db] = pair = (server, 0)  # closed by close() from now on
            server.wait_cluster_ok()
            return pair
        self.dbs[db] = pair
        return pair

    def url(self, db):
        server, n = self.get(db)
        return server.url(n)

    def find(self, db):
        """(server, db number) for db if it was given one, else None."""
        return self.dbs.get(db)

    def close(self):
        servers = {id(s): s for s, _ in self.dbs.values()}
        servers.update((id(s), s) for s in self.spares)
        for s in servers.values():
            s.close()
        self.dbs, self.shared, self.spares = {}, None, []
