"""test_tui_files — file transfer in the terminal client, driven in tmux as
a person would: alice completes a path with Tab ("~" and a directory),
sends it with /sendfile; bob's terminal shows the offer with how to answer
it, /accept puts a progress bar in the conversation line (rewritten in
place) and a summary on the status bar, and the file arrives with the same
hash; /transfers lists them, /reject and /cancel end others. A tracker and
both clients run on 127.0.0.1 with private ports, directories and a
private tmux server (test_tui.py's World)."""
import hashlib
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_tui  # noqa: E402
from test_tui import World  # noqa: E402
from peer_harness import register  # noqa: E402

PASSWORD = test_tui.PASSWORD
SIZE = 96 * 1024 * 1024  # big enough to see the bar between 0 and 100%
BAR = re.compile(r"\[[\u2588\u2591]+\]\s+(\d+)% ")
W = None


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def setup():
    global W
    W = World()
    test_tui.W = W
    for u in ("alice", "bob"):
        register(W.tport, u, PASSWORD)
    W.home = os.path.join(W.tmp, "home-alice")
    W.src = os.path.join(W.home, "outbox")
    W.down = os.path.join(W.tmp, "down-bob")
    os.makedirs(W.src)
    os.makedirs(os.path.join(W.home, "other"))
    os.makedirs(W.down)
    with open(os.path.join(W.src, "report.bin"), "wb") as f:
        f.write(os.urandom(SIZE))
    for name in ("small one.txt", "small two.txt"):
        with open(os.path.join(W.src, name), "w") as f:
            f.write(name * 100)
    W.client("alice", width=120, env="env HOME=%s " % W.home)
    # bob's client logs each key's time to the screen (HYCHAT_TUI_TIMING).
    W.client("bob", width=120,
             env="env XDG_DOWNLOAD_DIR=%s HYCHAT_TUI_TIMING=1 " % W.down)
    for u in ("alice", "bob"):
        W.tmux.wait(u, lambda s: "[#general]" in s, 10, "the #general prompt")


def offer_id(screen, name):
    m = re.search(r"offers %s \([^)]*\): /accept ([0-9a-f]{8}) \[PATH\]" % re.escape(name),
                  screen)
    assert m, screen
    return m.group(1)


def tab_completes_a_path_with_tilde_and_directories():
    W.tmux.type("alice", "/sendfile bob ~/out")
    W.tmux.keys("alice", "Tab")
    W.tmux.wait("alice", "/sendfile bob %s/" % W.src, 5, "~/out completed to the directory")
    W.tmux.type("alice", "rep")
    W.tmux.keys("alice", "Tab")
    W.tmux.wait("alice", "/sendfile bob %s/report.bin" % W.src, 5, "the file's name")
    W.tmux.keys("alice", "C-u")
    # Two names that part: both on the status bar, Tab again takes each.
    W.tmux.type("alice", "/sendfile bob ~/outbox/sm")
    W.tmux.keys("alice", "Tab")
    s = W.tmux.wait("alice", "2 matches", 5)
    assert "small one.txt" in s and "small two.txt" in s, s
    assert "/sendfile bob %s/small" % W.src in s, s
    W.tmux.keys("alice", "Tab")
    W.tmux.wait("alice", "/sendfile bob %s/small one.txt" % W.src, 5)
    W.tmux.keys("alice", "Tab")
    W.tmux.wait("alice", "/sendfile bob %s/small two.txt" % W.src, 5)
    W.tmux.keys("alice", "C-u")


def an_offer_is_accepted_and_the_bar_moves_in_place():
    W.tmux.line("alice", "/sendfile bob %s/report.bin" % W.src)
    # alice is shown the conversation with bob, her line in it.
    W.tmux.wait("alice", lambda s: "report.bin (96 MiB) to bob: offered" in s, 30,
                "alice's offer line")
    s = W.tmux.wait("bob", "alice offers report.bin", 20, "the offer on bob's status bar")
    W.tmux.line("bob", "/query alice")
    s = W.tmux.wait("bob", lambda s: "\u2190 alice offers report.bin (96 MiB)" in s, 10,
                    "the offer in the conversation")
    xid = offer_id(s, "report.bin")
    W.tmux.line("bob", "/accept %s" % xid)
    seen, summary, lines, typed = set(), False, 0, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # bob types while the file comes in: a key each turn.
        W.tmux.type("bob", "x")
        typed += 1
        s = W.tmux.screen("bob")
        for m in BAR.finditer(s):
            seen.add(int(m.group(1)))
        summary |= bool(re.search(r"\u21c5 1 file \d+%", s))
        # One line for the transfer, however many events: rewritten in place.
        lines = max(lines, len(BAR.findall(s)) + s.count("report.bin (96 MiB) from alice"))
        if "report.bin (96 MiB) from alice: done, 100%" in s:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no end of the transfer:\n" + s)
    assert any(0 < p < 100 for p in seen), "never saw the bar between 0 and 100: %s" % seen
    assert summary, "never saw the status bar's summary"
    assert lines == 1, "the transfer took %d lines" % lines
    # Typing kept its pace during the transfer: each key on the screen soon.
    W.tmux.keys("bob", "C-u")
    log = open(os.path.join(W.tmp, "data-bob", "hychat.log"), encoding="utf-8").read()
    ms = [float(x) for x in re.findall(r"tui: key to screen ([0-9.]+) ms", log)][-typed:]
    assert len(ms) >= typed // 2, "%d keys timed of %d typed" % (len(ms), typed)
    ms.sort()
    print("     %d keys typed during the transfer: median %.1f ms, max %.1f ms"
          % (len(ms), ms[len(ms) // 2], ms[-1]), flush=True)
    assert ms[-1] < 100, "a key took %.1f ms to show" % ms[-1]
    got = os.path.join(W.down, "hychat", "report.bin")
    assert sha(got) == sha(os.path.join(W.src, "report.bin"))
    W.tmux.wait("alice", "report.bin (96 MiB) to bob: done, 100%", 10)
    # Nothing under way: no summary left.
    assert "\u21c5" not in W.tmux.screen("bob").splitlines()[-2]


def transfers_lists_and_reject_and_cancel_end_offers():
    W.tmux.line("alice", "/sendfile bob %s/small one.txt" % W.src)
    s = W.tmux.wait("bob", "alice offers small one.txt", 20)
    one = offer_id(s, "small one.txt")
    W.tmux.line("bob", "/reject %s" % one)
    W.tmux.wait("alice", "small one.txt (1.3 KiB) to bob: rejected", 20)
    W.tmux.line("alice", "/sendfile bob %s/small two.txt" % W.src)
    s = W.tmux.wait("bob", "alice offers small two.txt", 20)
    two = offer_id(s, "small two.txt")
    W.tmux.line("alice", "/cancel %s" % two)
    W.tmux.wait("bob", "small two.txt (1.3 KiB) from alice: cancelled", 20)
    W.tmux.line("bob", "/transfers")
    s = W.tmux.wait("bob", "file transfers:", 10)
    for text in ("%s \u2190 small one.txt from alice: rejected" % one,
                 "%s \u2190 small two.txt from alice: cancelled" % two,
                 "\u2190 report.bin from alice: done, 100% of 96 MiB"):
        assert text in s, "%r not in\n%s" % (text, s)


def teardown(_):
    if W is not None:
        for u in ("alice", "bob"):
            try:
                print("---- %s's screen at the end:\n%s" % (u, W.tmux.screen(u)), flush=True)
            except AssertionError as e:
                print(e)
        W.close()


CASES = [
    tab_completes_a_path_with_tilde_and_directories,
    an_offer_is_accepted_and_the_bar_moves_in_place,
    transfers_lists_and_reject_and_cancel_end_offers,
]


def main():
    failed = 0
    try:
        setup()
        for case in CASES:
            t0 = time.monotonic()
            try:
                case()
                print("ok   %s (%.1fs)" % (case.__name__, time.monotonic() - t0), flush=True)
            except Exception as e:  # noqa: BLE001 -- report and go on
                failed += 1
                print("FAIL %s: %s" % (case.__name__, e), flush=True)
    finally:
        teardown(None)
    print("%d passed, %d failed" % (len(CASES) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
