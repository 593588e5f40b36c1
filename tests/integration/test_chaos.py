#!/usr/bin/env python3
"""test_chaos — nothing lost, nothing twice. A tracker and 8 headless peers
on 127.0.0.1 exchange direct and #general messages, each with its own id,
while the driver SIGKILLs and restarts random peers, restarts the tracker
once, and stalls then cuts a link that runs through a relay. At the end,
with every peer back, each message an outbox accepted reaches every one of
its recipients exactly once.

Who a message was for is the sender's word: the recipient of a direct
message; for a channel message, the members its "delivered" events name
plus the rows its outbox still holds. The figures: sent, deliveries owed,
delivered, duplicates, lost.

Usage: test_chaos.py [--peers 8] [--seconds 30]   (CI runs the defaults;
HYCHAT_CHAOS_PEERS and HYCHAT_CHAOS_SECONDS set a longer run)."""
import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import free_port  # noqa: E402
from peer_harness import Relay, register, start_peer, start_tracker  # noqa: E402

SETTLE_S = 45


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=int(os.environ.get("HYCHAT_CHAOS_PEERS", 8)))
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("HYCHAT_CHAOS_SECONDS", 30)))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    print("chaos: %d peers, %.0f s, seed %d" % (args.peers, args.seconds, args.seed))

    tmp = tempfile.mkdtemp(prefix="hychat-chaos-")
    names = ["p%d" % i for i in range(args.peers)]
    pw = {n: "pw-" + n for n in names}
    ports = {n: free_port() for n in names}
    incarnations = {n: [] for n in names}  # every process a name has had
    live = {}
    tracker = None
    relay = None
    ok = False
    try:
        tracker, tport = start_tracker(tmp)
        for n in names:
            register(tport, n, pw[n])
        for n in names:
            live[n] = start_peer(n, tport, tmp, pw[n], port=ports[n], ready=False)
            incarnations[n].append(live[n])
        for n in names:
            live[n].wait_type("tracker", 30, state="online")

        # p0 reaches p1 through a relay the driver stalls and cuts.
        relay = Relay(ports["p1"])
        live["p0"].cmd("connect p1 127.0.0.1 %d" % relay.port)

        t0 = time.monotonic()
        end = t0 + args.seconds
        next_kill = t0 + 3
        tracker_restart_at = t0 + args.seconds / 2
        stall_at = t0 + args.seconds / 3
        cut_at = None
        dead = {}  # name -> time to restart
        counter = 0
        events_log = []
        while time.monotonic() < end:
            now = time.monotonic()
            # Restart those whose time has come.
            for n, when in list(dead.items()):
                if now >= when:
                    live[n] = start_peer(n, tport, tmp, pw[n], port=ports[n], ready=False)
                    incarnations[n].append(live[n])
                    del dead[n]
                    events_log.append("%.1fs restart %s" % (now - t0, n))
            if now >= next_kill and len(dead) < 2:
                n = rnd.choice([x for x in names if x not in dead])
                live[n].kill()
                dead[n] = now + rnd.uniform(1.5, 4.0)
                next_kill = now + rnd.uniform(2.0, 5.0)
                events_log.append("%.1fs kill %s" % (now - t0, n))
            if tracker_restart_at is not None and now >= tracker_restart_at:
                tracker.stop()
                time.sleep(0.5)
                tracker, _ = start_tracker(tmp, port=tport)
                tracker_restart_at = None
                events_log.append("%.1fs tracker restarted" % (now - t0))
            if stall_at is not None and now >= stall_at:
                relay.stall()
                events_log.append("%.1fs relay p0->p1 stalled" % (now - t0))
                stall_at = None
                cut_at = now + 3
            elif stall_at is None and cut_at is not None and now >= cut_at:
                relay.cut()
                cut_at = None
                events_log.append("%.1fs relay p0->p1 cut" % (now - t0))
            # Traffic from those alive.
            senders = [n for n in names if n not in dead]
            s = rnd.choice(senders)
            counter += 1
            if rnd.random() < 0.7:
                to = rnd.choice([n for n in names if n != s])
                live[s].cmd("send %s chaos-%d from %s" % (to, counter, s))
            else:
                live[s].cmd("sendchannel general chaos-%d from %s" % (counter, s))
            time.sleep(0.02)
        for n, _ in list(dead.items()):
            live[n] = start_peer(n, tport, tmp, pw[n], port=ports[n], ready=False)
            incarnations[n].append(live[n])
            del dead[n]
        relay.close()
        for line in events_log:
            print("  " + line)

        def evs(n):
            out = []
            for p in incarnations[n]:
                out += p.events()
            return out

        def tally():
            sent = {}  # id -> (sender, "direct"/"channel", to)
            owed = set()
            for n in names:
                for e in evs(n):
                    if e.get("type") in ("chat", "broadcast") and e.get("outgoing") and e.get("id"):
                        kind = "direct" if e["type"] == "chat" else "channel"
                        sent[e["id"]] = (n, kind, e.get("to"))
                        if kind == "direct":
                            owed.add((e["id"], e["to"]))
                    elif e.get("type") == "delivered" and e.get("id"):
                        owed.add((e["id"], e["to"]))
            # What outboxes still hold is owed too.
            for n in names:
                db = os.path.join(tmp, "peer-" + n, "hychat.db")
                try:
                    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
                    for peer, msgid in c.execute("SELECT peer, msgid FROM outbox"):
                        if msgid in sent:
                            owed.add((msgid, peer))
                    c.close()
                except sqlite3.Error:
                    pass
            got = {}
            for n in names:
                for e in evs(n):
                    if e.get("type") in ("chat", "broadcast") and not e.get("outgoing") \
                            and e.get("id") in sent:
                        got[(e["id"], n)] = got.get((e["id"], n), 0) + 1
            delivered = sum(1 for k in owed if got.get(k, 0) >= 1)
            dups = sum(v - 1 for v in got.values() if v > 1)
            lost = sorted(k for k in owed if got.get(k, 0) == 0)
            return len(sent), len(owed), delivered, dups, lost

        deadline = time.monotonic() + SETTLE_S
        while True:
            sent, owed, delivered, dups, lost = tally()
            if (not lost and dups == 0) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        print("chaos: sent %d, deliveries owed %d, delivered %d, duplicates %d, lost %d"
              % (sent, owed, delivered, dups, len(lost)))
        if lost:
            print("lost (id, recipient), first 10: %r" % lost[:10])
        ok = sent > 100 and owed >= sent and dups == 0 and not lost
    finally:
        bad = []
        for n in names:
            for p in incarnations[n]:
                if p.alive():
                    rc = p.stop("quit")
                    err = p.stderr()
                    if rc != 0 or "AddressSanitizer" in err or "runtime error" in err:
                        bad.append("%s exited %s:\n%s" % (n, rc, err[-3000:]))
        if tracker is not None:
            tracker.stop()
        if relay is not None:
            relay.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if bad:
            print("\n".join(bad))
            ok = False
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
