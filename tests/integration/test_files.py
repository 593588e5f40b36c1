#!/usr/bin/env python3
"""File transfer between headless peers (hychat(1), "File transfer"): an
offer, accept, the file landing with its hash checked; resuming after
kill -9 of either side with little resent; a file changed during a pause
failing cleanly; hostile offers and frames from a Python Noise peer
refused; chat flowing during a transfer; reject, cancel, autoaccept and
name collisions."""
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import case, free_port, run  # noqa: E402
from peer_harness import Peer, register, start_tracker, stop_checked  # noqa: E402

S = {}
PW = {"alice": "alice pw", "bob": "bob-s3cret", "carol": "carol pass", "mallory": "mal pw"}
MiB = 1024 * 1024


def setup():
    S["tmp"] = tempfile.mkdtemp(prefix="hychat-files-test-")
    S["tracker"], S["tport"] = start_tracker(S["tmp"])
    for u, p in PW.items():
        register(S["tport"], u, p)
    S["peers"] = []
    S["ports"] = {}


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


def downloads(name):
    return os.path.join(S["tmp"], "dl-" + name)


def peer(name, tag="", ready=True):
    """A peer with a data and download directory of its own; the same
    name and tag again is the same peer restarted (same port, same data)."""
    key = name + tag
    port = S["ports"].setdefault(key, free_port())
    data = os.path.join(S["tmp"], "peer-" + key)
    p = Peer(name, port, S["tport"], data, PW[name],
             env={"XDG_DOWNLOAD_DIR": downloads(key)})
    S["peers"].append(p)
    if ready:
        p.wait_type("tracker", 20, state="online")
    return p


def quit_all():
    bad = stop_checked([p for p in S["peers"] if p.alive()])
    S["peers"] = []
    assert not bad, "\n".join(bad)


def make_file(path, size, seed=b"hychat"):
    block = hashlib.sha512(seed).digest() * 1024  # 64 KiB of pattern
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            chunk = hashlib.sha256(seed + i.to_bytes(8, "big")).digest() + block
            f.write(chunk[:left])
            left -= len(chunk[:left])
            i += 1
    return path


def b2(path):
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(MiB), b""):
            h.update(blk)
    return h.hexdigest()


def offer(a, b, path, m_b=None):
    """a offers path to b; returns the file_offer event b got."""
    m = b.mark() if m_b is None else m_b
    a.cmd("sendfile %s %s" % (b.name, path))
    return b.wait_type("file_offer", 30, m, **{"from": a.name})


def wait_state(p, tid, states, timeout=60, since=0):
    states = (states,) if isinstance(states, str) else states
    return p.wait(lambda e: e.get("type") == "transfer" and e.get("id") == tid and
                  e.get("state") in states, timeout, since, "transfer %s %s" % (tid, states))


@case
def a_file_is_offered_accepted_and_lands_with_its_hash():
    a, b = peer("alice", "1"), peer("bob", "1")
    src = make_file(os.path.join(S["tmp"], "report v1.pdf"), 3 * MiB + 123)
    m_a = a.mark()
    off = offer(a, b, src)
    assert off["name"] == "report v1.pdf" and off["size"] == 3 * MiB + 123, off
    assert off["hash"] == b2(src), off
    m_b = b.mark()
    b.cmd("accept " + off["id"][:6])
    done = wait_state(b, off["id"], ("done", "failed"), 60, m_b)
    assert done["state"] == "done", done
    dst = os.path.join(downloads("bob1"), "hychat", "report v1.pdf")
    assert done["path"] == dst, done
    assert b2(dst) == off["hash"]
    assert not [f for f in os.listdir(os.path.dirname(dst)) if f.endswith((".part", ".hychat"))]
    sent = wait_state(a, off["id"], "done", 30, m_a)
    assert sent["direction"] == "out" and sent["bytes"] == off["size"], sent
    # Progress: "transfer" events at most every 250 ms, with a rate.
    evs = [e for e in b.events(m_b, "transfer") if e["id"] == off["id"]]
    assert [e["state"] for e in evs][-1] == "done"
    m = b.mark()
    b.cmd("@label=t transfers")
    lst = b.wait_type("transfers", 10, m, label="t")
    assert any(t["id"] == off["id"] and t["state"] == "done" for t in lst["transfers"]), lst
    quit_all()


if __name__ == "__main__":
    run(setup, teardown)
