#!/usr/bin/env python3
"""bench_files — a file sent between two headless hychat peers on
127.0.0.1, beside a raw TCP copy of the same file between two plain
sockets in the same run (read, send, receive, write, 1 MiB at a time):
the throughput ratio (target >= 0.5x the raw copy), how much each peer's
RSS grows during the transfer (target < 16 MB), and the one-way latency
of chat messages sent during it (from the send command to the receive
event; target p99 <= 50 ms).

Usage: python3 bench/bench_files.py [--mib 1024] [--no-build]
HYCHAT_BENCH_BUILD picks another build directory (default build-bench:
release, LTO, no sanitizers)."""
import argparse
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402

os.environ["HYCHAT_BUILD"] = benchlib.BUILD
sys.path.insert(0, os.path.join(benchlib.ROOT, "tests", "integration"))
import peer_harness  # noqa: E402
from hytest import PeakRss, rss_kb  # noqa: E402

MiB = 1024 * 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def make_file(path, size):
    block = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        for i in range(0, size, len(block)):
            f.write((i.to_bytes(8, "big") + block)[:min(len(block), size - i)])


def b2(path):
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(4 * MiB), b""):
            h.update(blk)
    return h.hexdigest()


def cpu_s(pid):
    """User + system CPU seconds of a process, all its threads."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def raw_copy(src, dst):
    """Seconds to copy src to dst through a TCP connection on 127.0.0.1."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    done = threading.Event()

    def receive():
        c, _ = srv.accept()
        buf = bytearray(MiB)
        with open(dst, "wb") as f:
            while True:
                n = c.recv_into(buf)
                if n == 0:
                    break
                f.write(memoryview(buf)[:n])
        c.close()
        done.set()

    threading.Thread(target=receive, daemon=True).start()
    t0 = time.perf_counter()
    s = socket.create_connection(srv.getsockname())
    with open(src, "rb") as f:
        for blk in iter(lambda: f.read(MiB), b""):
            s.sendall(blk)
    s.close()
    done.wait()
    t = time.perf_counter() - t0
    srv.close()
    return t


class TimedPeer(peer_harness.Peer):
    """A peer whose events carry the time they were read ("_t")."""

    def _read(self):
        import json
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"type": "unparsable"}
            ev["_t"] = time.perf_counter()
            with self._cv:
                self._events.append(ev)
                self._cv.notify_all()
        with self._cv:
            self._events.append({"type": "_eof"})
            self._cv.notify_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        benchlib.build()
    size = a.mib * MiB
    tmp = tempfile.mkdtemp(prefix="hychat-bench-files-")
    peers = []
    tracker = None
    try:
        src = os.path.join(tmp, "big.bin")
        make_file(src, size)
        want = b2(src)
        c0 = time.process_time()
        raw_s = raw_copy(src, os.path.join(tmp, "raw.bin"))
        raw_cpu = time.process_time() - c0
        os.unlink(os.path.join(tmp, "raw.bin"))
        tracker, tport = peer_harness.start_tracker(tmp)
        for u in ("alice", "bob"):
            peer_harness.register(tport, u, "bench " + u)
        for u in ("alice", "bob"):
            p = TimedPeer(u, benchlib.free_port(), tport, os.path.join(tmp, "peer-" + u),
                          "bench " + u, env={"XDG_DOWNLOAD_DIR": os.path.join(tmp, "dl-" + u)})
            p.wait_type("tracker", 20, state="online")
            peers.append(p)
        alice, bob = peers
        m = bob.mark()
        alice.cmd("send bob hello")  # the link up before the clock starts
        bob.wait_type("chat", 20, m)
        time.sleep(0.5)
        rss0 = [rss_kb(p.p.pid) for p in peers]
        m = bob.mark()
        alice.cmd("sendfile bob " + src)
        off = bob.wait_type("file_offer", 120, m)
        tid = off["id"]
        lat = []
        cpu0 = [cpu_s(p.p.pid) for p in peers]
        with PeakRss(alice.p.pid) as pa, PeakRss(bob.p.pid) as pb:
            m = bob.mark()
            t0 = time.perf_counter()
            bob.cmd("accept " + tid)
            i = 0
            while True:
                text = "chat %d" % i
                sent = time.perf_counter()
                alice.cmd("send bob " + text)
                ev = bob.wait(lambda e: e.get("type") == "chat" and e.get("message") == text or
                              (e.get("type") == "transfer" and e.get("state") in ("done", "failed")),
                              120, m, text)
                if ev["type"] == "transfer":
                    break
                lat.append((ev["_t"] - sent) * 1000)
                i += 1
                time.sleep(0.02)
            done = ev
            t1 = done["_t"]
            cpu1 = [cpu_s(p.p.pid) for p in peers]
        if done["state"] != "done":
            sys.exit("bench: the transfer failed: %s" % done.get("error"))
        assert b2(done["path"]) == want, "the file received differs"
        hy_s = t1 - t0
        grow = [(pa.peak - rss0[0]) / 1024.0, (pb.peak - rss0[1]) / 1024.0]
        ratio = raw_s / hy_s
        print("hychat file benchmark, %s, %d MiB, build %s, load %.1f" % (
            time.strftime("%Y-%m-%d %H:%M"), a.mib, benchlib.BUILD, os.getloadavg()[0]))
        print("%-40s %8.1f MB/s  (%.2f s)" % ("raw TCP copy (read, send, recv, write)",
                                            size / raw_s / 1e6, raw_s))
        print("%-40s %8.1f MB/s  (%.2f s, accept to done, hash checked)" % (
            "hychat sendfile, encrypted", size / hy_s / 1e6, hy_s))
        print("%-40s %8.2fx     target >= 0.5x: %s" % ("throughput ratio", ratio,
                                                   "met" if ratio >= 0.5 else "NOT met"))
        gib = size / float(1 << 30)
        print("%-40s hychat alice %.2f s + bob %.2f s, raw copy %.2f s (both ends)" % (
            "CPU per GiB", (cpu1[0] - cpu0[0]) / gib,
            (cpu1[1] - cpu0[1]) / gib, raw_cpu / gib))
        print("%-40s alice +%.1f MB, bob +%.1f MB  target < 16 MB: %s" % (
            "peak RSS growth during the transfer", grow[0], grow[1],
            "met" if max(grow) < 16 else "NOT met"))
        if lat:
            print("%-40s n %d  p50 %.1f ms  p99 %.1f ms  target p99 <= 50 ms: %s" % (
                "chat one-way latency during it", len(lat), pct(lat, 50), pct(lat, 99),
                "met" if pct(lat, 99) <= 50 else "NOT met"))
    finally:
        for p in peers:
            p.stop()
        if tracker is not None:
            tracker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
