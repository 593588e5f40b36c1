#!/usr/bin/env python3
"""hychat's user-facing state, headless: settings (/set lists, changes, saves
atomically and survives a restart; a bad line in hychat.conf is named and
skipped; flags win over the file), typing notices (rate-limited, "active"
then "stopped", cleared by the message, none with typing off) and contacts
(listed, blocked users' messages, typing and presence dropped before they
are stored)."""
import json
import os
import sqlite3
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, free_port, request, run  # noqa: E402
from peer_harness import Peer, end_suite, login, register, start_peer, start_tracker  # noqa: E402

S = {}
PW = {"alice": "alice pw", "bob": "bob-s3cret", "carol": "carol pass", "dave": "dave pw"}


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-social-test-")
    S["tracker"], S["tport"] = start_tracker(S["tmp"])
    for u, p in PW.items():
        register(S["tport"], u, p)
    S["peers"] = []


def teardown(_):
    end_suite(S, alive_only=True)


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


def linked_pair():
    """alice and bob, running, linked by a direct message each way."""
    if "pair" not in S:
        a, b = peer("alice"), peer("bob")
        m = b.mark()
        a.cmd("send bob hello bob")
        b.wait(lambda e: e.get("type") == "chat" and e.get("from") == "alice", 15, m)
        m = a.mark()
        b.cmd("send alice hello alice")
        a.wait(lambda e: e.get("type") == "chat" and e.get("from") == "bob", 15, m)
        S["pair"] = (a, b)
    return S["pair"]


def typing_ev(user, conv, state):
    return lambda e: (e.get("type") == "typing" and e.get("user") == user and
                      e.get("conversation") == conv and e.get("state") == state)


@case
def typing_is_shown_rate_limited_and_cleared():
    a, b = linked_pair()
    # Active within a second; one notice per 3 s: keys at 0 s and 2 s
    # send one notice, so "stopped" comes 6 s after the first key.
    m = a.mark()
    t0 = time.monotonic()
    b.cmd("typing alice")
    a.wait(typing_ev("bob", "bob", "active"), 5, m)
    assert time.monotonic() - t0 < 1.0, "typing shown after %.2fs" % (time.monotonic() - t0)
    time.sleep(2)
    b.cmd("typing alice")
    a.wait(typing_ev("bob", "bob", "stopped"), 10, m)
    took = time.monotonic() - t0
    assert 5.5 <= took <= 7.5, "stopped after %.2fs, not 6" % took
    assert len([e for e in a.events(m, "typing") if e["state"] == "active"]) == 1
    # Typing then the message: "stopped" at once, before the message.
    m = a.mark()
    b.cmd("typing alice")
    a.wait(typing_ev("bob", "bob", "active"), 5, m)
    b.cmd("send alice done typing")
    a.wait(lambda e: e.get("type") == "chat" and e.get("message") == "done typing", 10, m)
    evs = [e for e in a.events(m) if e.get("type") in ("typing", "chat")]
    assert [e["type"] + e.get("state", "") for e in evs] == \
        ["typingactive", "typingstopped", "chat"], evs
    # After his message the next key tells her at once, 3 s or not.
    m = a.mark()
    b.cmd("typing alice")
    a.wait(typing_ev("bob", "bob", "active"), 1, m)
    # A wrong conversation is the typist's error, nobody else's event.
    mb = b.mark()
    b.cmd("typing #nosuchchannel")
    b.wait_type("error", 5, mb)


@case
def typing_in_a_channel_and_typing_off():
    a, b = linked_pair()
    # The member lists of #general, as a channel message brings them.
    m = a.mark()
    b.cmd("sendchannel general hi channel")
    a.wait(lambda e: e.get("type") == "broadcast" and e.get("message") == "hi channel", 15, m)
    m = a.mark()
    a.cmd("sendchannel general hi back")
    time.sleep(0.5)
    m = a.mark()
    b.cmd("typing #general")
    a.wait(typing_ev("bob", "#general", "active"), 5, m)
    # Typing off: no notice at all.
    mb = b.mark()
    b.cmd("set typing off")
    b.wait_type("setting", 5, mb, name="typing", value="off")
    time.sleep(6.5)  # the channel's "stopped", and the 3 s limit, behind us
    m = a.mark()
    b.cmd("typing alice")
    b.cmd("typing #general")
    time.sleep(2)
    assert not a.events(m, "typing"), a.events(m, "typing")
    b.cmd("set typing on")


def db_rows(name, sql, args=()):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(S["tmp"], "peer-" + name, "hychat.db"),
                         uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def db_settles(name, sql, want, timeout=5.0):
    """db_rows once it equals want: a peer writes an event to its front
    end just before the turn's commit that stores what the event reports,
    so a read right after the event may come a moment early. Fails with
    the last rows if they never equal want."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(name, sql)
        if rows == want or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


@case
def a_blocked_users_messages_typing_and_presence_never_appear():
    a, b = linked_pair()
    c = peer("carol")
    # carol and alice linked, carol shown online to alice.
    m = a.mark()
    c.cmd("send alice hi alice, carol here")
    hi = a.wait(lambda e: e.get("type") == "chat" and e.get("from") == "carol", 15, m)
    a.cmd("@label=b block carol")
    ev = a.wait_type("contact", 10, m, user="carol")
    assert ev["blocked"] is True and ev["contact"] is False, ev
    # What was shown before the block is stored by a commit that may come
    # a few turns after it (hychat(1)): counted once it is.
    assert db_settles("alice", "SELECT count(*) FROM messages WHERE msgid = '%s'" % hi["id"],
                      [(1,)]) == [(1,)]
    seen = db_rows("alice", "SELECT count(*) FROM messages WHERE sender = 'carol'")[0][0]
    m = a.mark()
    mc = c.mark()
    c.cmd("send alice you cannot see this")
    # Acknowledged all the same: carol's outbox empties, she learns nothing.
    c.wait_type("delivered", 15, mc, to="alice")
    c.cmd("typing alice")
    c.cmd("away gone fishing")
    c.cmd("sendchannel general carol in general")
    # bob, not blocked, goes on being heard: the yardstick of "long enough".
    b.cmd("send alice bob still here")
    a.wait(lambda e: e.get("type") == "chat" and e.get("message") == "bob still here", 15, m)
    b.wait(lambda e: e.get("message") == "carol in general", 15)
    time.sleep(1)
    leaks = [e for e in a.events(m) if "carol" in (e.get("from"), e.get("user"))]
    assert not leaks, leaks
    assert "cannot see this" not in "".join(l.decode("utf-8", "replace") for l in a.raw_lines())
    rows = db_rows("alice", "SELECT count(*) FROM messages WHERE sender = 'carol'")[0][0]
    assert rows == seen, "%d stored from carol after the block" % (rows - seen)
    assert db_settles("alice", "SELECT contact, blocked FROM contacts WHERE user = 'carol'",
                      [(0, 1)]) == [(0, 1)]
    # Contacts: listed with their presence; a blocked one too.
    a.cmd("add bob")
    a.wait_type("contact", 10, m, user="bob", contact=True)
    a.cmd("@label=c contacts")
    ev = a.wait_type("contacts", 10, m, label="c")
    got = {k["user"]: (k["contact"], k["blocked"], k["state"]) for k in ev["contacts"]}
    assert got == {"bob": (True, False, "online"), "carol": (False, True, "offline")}, got
    # Unblocked: heard again (what came meanwhile stays dropped).
    c.cmd("back")
    a.cmd("unblock carol")
    a.wait_type("contact", 10, m, user="carol", blocked=False)
    m = a.mark()
    c.cmd("send alice now you see me")
    a.wait(lambda e: e.get("type") == "chat" and e.get("message") == "now you see me", 15, m)
    a.cmd("remove bob")
    a.wait_type("contact", 10, m, user="bob", contact=False)
    assert db_settles("alice", "SELECT * FROM contacts", []) == []
    a.cmd("block alice")
    a.wait(lambda e: e.get("type") == "error" and "is you" in e["message"], 10, m)


@case
def a_contact_coming_online_is_pushed_without_a_shared_conversation():
    a, _ = linked_pair()
    m = a.mark()
    a.cmd("add dave")
    a.wait_type("contact", 10, m, user="dave", contact=True)
    d = peer("dave")
    # The engine learns it from the tracker's lists on its own refresh
    # (15 s); no front end asks anything.
    ev = a.wait(lambda e: e.get("type") == "presence" and e.get("user") == "dave", 25, m)
    assert ev["state"] == "online", ev
    d.stop()
    S["peers"].remove(d)
    a.cmd("remove dave")


@case
def read_receipts_reach_the_sender_unless_off():
    a, b = linked_pair()
    m = b.mark()
    b.cmd("send alice please read this")
    sent = b.wait(lambda e: e.get("type") == "chat" and e.get("outgoing") and
                  e.get("message") == "please read this", 10, m)
    a.wait(lambda e: e.get("type") == "chat" and e.get("message") == "please read this", 15)
    a.cmd("read bob")
    ev = b.wait_type("receipt", 10, m, user="alice")
    assert ev["id"] == sent["id"] and ev["conversation"] == "alice", ev
    # Off: reading tells nobody.
    ma = a.mark()
    a.cmd("set receipts off")
    a.wait_type("setting", 10, ma, name="receipts", value="off")
    m = b.mark()
    b.cmd("send alice and this one")
    a.wait(lambda e: e.get("type") == "chat" and e.get("message") == "and this one", 15, ma)
    a.cmd("read bob")
    a.wait_type("read", 10, ma, conversation="bob")
    time.sleep(1.5)
    assert not b.events(m, "receipt"), b.events(m, "receipt")
    a.cmd("set receipts on")


@case
def profiles_are_kept_by_the_tracker_and_shown():
    a, b = linked_pair()
    m = a.mark()
    a.cmd("/set name Alice Liddell")
    a.cmd("/set status down the rabbit hole, Phát")
    a.wait_type("setting", 10, m, name="status")
    time.sleep(0.5)
    m = b.mark()
    b.cmd("@label=w whois alice")
    ev = b.wait_type("whois", 10, m, label="w")
    assert ev["display_name"] == "Alice Liddell", ev
    assert ev["status_line"] == "down the rabbit hole, Phát", ev
    assert ev["online"] is True and ev["state"] == "online", ev
    b.cmd("@label=l list")
    ev = b.wait_type("peer_list", 10, m, label="l")
    alice = [p for p in ev["peers"] if p["username"] == "alice"][0]
    assert alice["display_name"] == "Alice Liddell", alice
    b.cmd("whois nosuchuser")
    b.wait(lambda e: e.get("type") == "error" and "no such user" in e["message"], 10, m)
    # The tracker checks what it keeps: bytes, length, and its owner.
    tok = login(S["tport"], "carol", PW["carol"])
    auth = {"Authorization": "Bearer " + tok}
    for bad in ({"status_line": "x" * 141}, {"display_name": "a\u0007b"},
                {"display_name": 5}, {"username": "alice", "status_line": "mine now"}):
        status, _, body = request(S["tport"], "POST", "/profile", bad, auth)
        assert status in (400, 403), (bad, status, body)
    status, _, _ = request(S["tport"], "POST", "/profile", {"status_line": "x"})
    assert status == 401, status
    status, _, body = request(S["tport"], "GET", "/peers/alice", None, auth)
    assert json.loads(body)["status_line"] == "down the rabbit hole, Phát", body
    # Cleared with the empty value.
    m = a.mark()
    a.cmd('/set name ""')
    a.wait_type("setting", 10, m, name="name", value="")
    time.sleep(0.5)
    status, _, body = request(S["tport"], "GET", "/peers/alice", None, auth)
    assert json.loads(body)["display_name"] == "", body


if __name__ == "__main__":
    run(setup, teardown)
