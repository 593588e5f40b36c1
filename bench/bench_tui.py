"""bench_tui — the terminal client on a conversation of 100,000 stored
messages: from a key press (PgUp, PgDn, the jumps to either end, a search)
to the redrawn screen.

The history is written straight into the peer's database, in the schema of
src/peer/history.c, after a first run of hychat has made the data
directory. The client runs in tmux on a private socket (-L), from the
release build, with HYCHAT_TUI_TIMING set: it logs, for each batch of keys
it reads, the time from reading them to the end of doupdate(), the screen
handed to the terminal. Beside that, the benchmark times each key from
tmux send-keys to the moment capture-pane shows a new screen: that one
includes two tmux round trips and the polling, an upper bound of what a
person sees. Memory (VmRSS) is read before and after paging, to show that
the client does not take the history in.

Run: python3 bench/bench_tui.py [--messages 100000] [--presses 200]
"""
import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import sqlite3
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

SENDERS = ["alice", "bob", "carol", "dave", "phát"]
TEXTS = [
    "short one",
    "Xin chào, tôi là Phát — thế giới!",
    "你好，世界。这是一条比较长的消息，用来测试宽字符的换行是否正确。",
    "a longer line that will need to wrap on a narrow terminal because it goes on and on "
    "about nothing in particular, as chat messages sometimes do, with words of every length",
    "emoji 🎉🚀 and combining e\u0301 marks",
]


class Tmux:
    def __init__(self):
        self.socket = "hychat-bench-tui-%d" % os.getpid()

    def run(self, *args):
        env = dict(os.environ, LANG="C.UTF-8")
        env.pop("TMUX", None)
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null"] + list(args),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=True).stdout.decode("utf-8", "replace")

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "bench")

    def wait(self, text, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.screen()
            if text in s:
                return s
            time.sleep(0.05)
        raise RuntimeError("no %r on the screen:\n%s" % (text, self.screen()))

    def kill(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], stderr=subprocess.DEVNULL)


def make_history(data, n):
    """n messages in #general, in the database hychat made."""
    db = sqlite3.connect(os.path.join(data, "hychat.db"))
    cur = db.cursor()
    cur.execute("INSERT OR IGNORE INTO conversations (name) VALUES ('#general')")
    conv = cur.execute("SELECT id FROM conversations WHERE name = '#general'").fetchone()[0]
    t0 = time.time() - n * 60

    def rows():
        for i in range(n):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 60)) + ".000000"
            sender = SENDERS[i % len(SENDERS)]
            text = "#%06d %s" % (i, TEXTS[(i * 7) % len(TEXTS)])
            yield (conv, "%032x" % i, sender, text, ts, 0, 0, 1)

    cur.executemany("INSERT INTO messages (conv, msgid, sender, text, time, kind, outgoing,"
                    " encrypted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows())
    last = cur.execute("SELECT max(seq) FROM messages").fetchone()[0]
    cur.execute("UPDATE conversations SET last_seq = ?, unread = 0 WHERE id = ?", (last, conv))
    db.commit()
    db.close()


class Pty:
    """The client on a pseudo-terminal of our own: a key written, then
    every byte of the redraw read back as it comes."""

    KEYS = {"PPage": b"\x1b[5~", "NPage": b"\x1b[6~", "M-<": b"\x1b<", "M->": b"\x1b>",
            "Escape": b"\x1b"}

    def __init__(self, args, env, width, height):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self.seen = bytearray()

    def drain(self, quiet=0.1, limit=10.0):
        """Reads until nothing comes for `quiet` s; returns (first, last)
        arrival times of what came, or None."""
        first = last = None
        end = time.perf_counter() + limit
        while time.perf_counter() < end:
            r, _, _ = select.select([self.fd], [], [], quiet)
            if not r:
                break
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                break
            now = time.perf_counter()
            first = first or now
            last = now
            self.seen += data
        return (first, last) if first is not None else None

    def wait(self, text, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text.encode() in self.seen:
                return
            self.drain(0.05, 0.5)
        raise RuntimeError("no %r from the client" % text)

    def press(self, key, quiet=0.05):
        """ms from writing the key to the last byte of the redraw, which
        is followed by `quiet` seconds of nothing."""
        self.drain(0.05)
        self.seen.clear()
        t0 = time.perf_counter()
        os.write(self.fd, self.KEYS.get(key, key.encode() if isinstance(key, str) else key))
        got = self.drain(quiet)
        return (got[1] - t0) * 1e3 if got else None

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                break
            self.drain(0.05, 0.2)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def rss_kb(pid):
    m = re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read())
    return int(m.group(1))


def log_times(path, since):
    """The client's own figures logged after byte `since` of its log."""
    with open(path, "rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    return [float(x) for x in re.findall(r"tui: key to screen ([0-9.]+) ms", text)]


def size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def stats(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return "-"
    p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
    return "median %.2f, p95 %.2f, max %.2f ms (n=%d)" % (statistics.median(xs), p95, xs[-1],
                                                        len(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--jumps", type=int, default=10)
    ap.add_argument("--width", type=int, default=120)
    ap.add_argument("--height", type=int, default=40)
    a = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("bench: tmux is missing (scripts/deps)")
    benchlib.build()
    hychat = os.path.join(benchlib.BUILD, "src", "peer", "hychat")
    tmp = tempfile.mkdtemp(prefix="hychat-bench-tui-")
    data = os.path.join(tmp, "data")
    log = os.path.join(data, "hychat.log")
    # No tracker answers there: the client stays offline, which is all
    # rendering needs.
    common = [hychat, "--username", "bench", "--listen", "127.0.0.1", "--tracker",
              "http://127.0.0.1:%d" % benchlib.free_port(), "--data-dir", data]
    subprocess.run(common + ["--headless", "--peer-port", str(benchlib.free_port())],
                   input=b"/quit\n", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=30)
    t = time.monotonic()
    make_history(data, a.messages)
    print("history: %d messages in #general written in %.1f s (%.1f MB database)"
          % (a.messages, time.monotonic() - t, size(os.path.join(data, "hychat.db")) / 1e6))

    env = dict(os.environ, LANG="C.UTF-8", HYCHAT_TUI_TIMING="1")
    results = {}

    def record(how, name, xs):
        results.setdefault(name, {})[how] = xs

    # 1. In tmux: the client's own figure for each key.
    tmux = Tmux()
    try:
        cmd = " ".join(["env", "HYCHAT_TUI_TIMING=1"] + common +
                       ["--peer-port", str(benchlib.free_port())])
        tmux.run("new-session", "-d", "-s", "bench", "-x", str(a.width), "-y", str(a.height),
                 cmd)
        pid = int(tmux.run("display", "-p", "-t", "bench", "#{pane_pid}").strip())
        tmux.wait("password for bench")
        tmux.run("send-keys", "-t", "bench", "Escape")
        newest = "#%06d" % (a.messages - 1)
        tmux.wait(newest)
        rss0 = rss_kb(pid)

        def phase(name, keys):
            time.sleep(0.3)
            mark = size(log)
            for k in keys:
                tmux.run("send-keys", "-t", "bench", k)
                time.sleep(0.02)
            time.sleep(0.5)
            record("in", name, log_times(log, mark))

        phase(PGUP, ["PPage"] * a.presses)
        deepest = re.findall(r"#(\d{6})", tmux.screen())
        phase(PGDN, ["NPage"] * (a.presses // 4))
        phase(OLDEST, ["M-<", "M->"] * a.jumps)
        rss1 = rss_kb(pid)
        tmux.run("send-keys", "-t", "bench", "-l", "/search #000003")
        phase(SEARCH, ["Enter"])
        tmux.wait("-- more")
        tmux.run("send-keys", "-t", "bench", "Escape")
        tmux.wait(newest)
        tmux.run("send-keys", "-t", "bench", "-l", "/quit")
        tmux.run("send-keys", "-t", "bench", "Enter")
        time.sleep(1)
    finally:
        tmux.kill()

    # 2. On a pseudo-terminal: from writing the key to the last byte of
    # the redraw, what a terminal emulator would get.
    env["TERM"] = "xterm-256color"
    env.pop("HYCHAT_TUI_TIMING")
    term = Pty(common + ["--peer-port", str(benchlib.free_port())], env, a.width, a.height)
    try:
        term.wait("password for bench")
        term.wait("#%06d" % (a.messages - 1))
        term.press("Escape")
        record("pty", PGUP, [term.press("PPage") for _ in range(a.presses)])
        record("pty", PGDN, [term.press("NPage") for _ in range(a.presses // 4)])
        record("pty", OLDEST, [term.press(k) for k in ["M-<", "M->"] * a.jumps])
        for ch in "/search #000003":
            term.press(ch)
        record("pty", SEARCH, [term.press("\r", quiet=1.0)])
    finally:
        term.stop()

    print("terminal %dx%d, release build, %d messages of 1 to 3 lines in #general"
          % (a.width, a.height, a.messages))
    print("PgUp paged back %d pages, to message #%s"
          % (a.presses, deepest[0] if deepest else "?"))
    for name in (PGUP, PGDN, OLDEST, SEARCH):
        print("%s:\n  in the client, key read to doupdate(): %s\n  on a pty, key written to "
              "the redraw's last byte: %s" % (name, stats(results[name].get("in", [])),
                                               stats(results[name].get("pty", []))))
    print("VmRSS: %d kB at the newest message, %d kB after paging back and jumping"
          % (rss0, rss1))
    shutil.rmtree(tmp, ignore_errors=True)


PGUP = "PgUp, paging back through the stored history"
PGDN = "PgDn, paging forward"
OLDEST = "Alt-< and Alt->, to the oldest message and back to the newest"
SEARCH = "/search of the oldest message (a scan of the whole conversation), Enter"


if __name__ == "__main__":
    main()
