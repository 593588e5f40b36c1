#!/usr/bin/env python3
"""test_chaos — nothing lost, nothing twice, counted from the driver's side.

A tracker and 8 headless peers on 127.0.0.1 exchange direct and channel
messages while the driver SIGKILLs and restarts random peers (some right
after a channel send, as when a laptop dies mid-sentence), stops the
tracker twice for a few seconds, and stalls then cuts a link that runs
through a relay. Two sleepers go away for long stretches (SLEEP_S, three
times the heartbeat that carries the mailbox's hint, one and a half times
the tracker's TTL: one quits, one is killed) while the others keep sending to them,
direct and in their channels: what they are owed reaches them through
the tracker's mailbox, the senders' outboxes and the channel backlog,
once each.

The accounting is the driver's, not the peers':
- every command carries a unique tag (chaos-N);
- sent: the tags the sender accepted, read from its history database (a
  database error fails the test);
- owed: a direct message to its recipient; a channel message to every
  member of the channel when it was sent (the driver issued the joins, so
  it knows: everyone is in #general, half the peers in #ops);
- at the end, with every peer back, the driver waits until every outbox is
  empty and nothing new was shown for a quiet period, then requires each
  owed (tag, recipient) pair to be stored exactly once in the recipient's
  history (shared by all its incarnations, read with errors failing) and
  shown at most once by all of them together (or once more by a later
  incarnation when a kill came between showing it and committing it, a
  case checked for its shape), nothing stored or shown that
  is not owed, no tag that was never sent, nothing shown and not stored;
- every incarnation's exit status and standard error (ASan, UBSan) are
  checked, the tracker's too: a peer that died before the driver killed it
  fails the test.

Figures printed: commands, sent, deliveries owed, delivered, duplicates,
lost, unexpected.

Usage: test_chaos.py [--peers 8] [--seconds 30] [--seed N]  (CI runs the
defaults; HYCHAT_CHAOS_PEERS and HYCHAT_CHAOS_SECONDS set a longer run)."""
import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from hytest import free_port  # noqa: E402
from peer_harness import Relay, register, start_peer, start_tracker  # noqa: E402

DRAIN_S = 120  # for every outbox to empty (link backoff is at most 30 s)
QUIET_S = 4  # nothing new shown for this long after the outboxes drained
TRACKER_DOWN_S = 3.0
TRACKER_TTL_S = 8  # heartbeats (and the mailbox's hint) every 4 s
SLEEP_S = 12.0  # a sleeper's stretch away: 3 heartbeats, 1.5 TTLs
SLEEP_SEND = 0.15  # of the driver's commands, a direct message to a sleeper
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
             "runtime error:", "ThreadSanitizer")
TAG = re.compile(r"^chaos-(\d+) ")
# Tables holding what a peer still owes others (the pending channel sends
# too, where the peer has such a table).
PENDING_TABLES = ("outbox", "outbox_channel")


def history_sent(db):
    """{tag: conversation} of the outgoing messages in a peer's history.
    Any sqlite3 error propagates: an unreadable history fails the test."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        rows = c.execute("SELECT c.name, m.text FROM messages m JOIN conversations c"
                         " ON m.conv = c.id WHERE m.outgoing = 1").fetchall()
    finally:
        c.close()
    out = {}
    for conv, text in rows:
        m = TAG.match(text)
        if m:
            tag = int(m.group(1))
            if tag in out:
                raise AssertionError("tag %d twice in a sender's history" % tag)
            out[tag] = conv
    return out


def history_received(db):
    """{tag: [conversation, ...]} of the incoming messages in a peer's
    history; errors propagate."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        rows = c.execute("SELECT c.name, m.text FROM messages m JOIN conversations c"
                         " ON m.conv = c.id WHERE m.outgoing = 0").fetchall()
    finally:
        c.close()
    out = {}
    for conv, text in rows:
        m = TAG.match(text)
        if m:
            out.setdefault(int(m.group(1)), []).append(conv)
    return out


def pending_rows(db):
    """The number of rows a peer still has to send; errors propagate."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return sum(c.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                   for t in PENDING_TABLES if t in have)
    finally:
        c.close()


def dump(keep, tmp, incarnations, trackers, intent, log):
    """For a failed run (HYCHAT_CHAOS_KEEP=DIR): the peers' data
    directories, every incarnation's events and standard error, the
    trackers' output, the driver's log and what it issued, all in DIR."""
    os.makedirs(keep, exist_ok=True)
    for d in os.listdir(tmp):
        if d.startswith("peer-"):
            shutil.copytree(os.path.join(tmp, d), os.path.join(keep, d), dirs_exist_ok=True)
    for n, ps in incarnations.items():
        for i, p in enumerate(ps):
            with open(os.path.join(keep, "%s.%d.events" % (n, i)), "w") as f:
                for e in p.events():
                    f.write(json.dumps(e) + "\n")
            with open(os.path.join(keep, "%s.%d.stderr" % (n, i)), "w") as f:
                f.write(p.stderr())
    for i, t in enumerate(trackers):
        with open(os.path.join(keep, "tracker.%d.out" % i), "w") as f:
            f.write(t.output())
    with open(os.path.join(keep, "driver.log"), "w") as f:
        f.write("\n".join(log) + "\n")
        for tag in sorted(intent):
            f.write("chaos-%d %s -> %s\n" % (tag, intent[tag][0], intent[tag][1]))
    print("chaos: the run's files are in %s" % keep)


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
    killed = set()  # the processes the driver SIGKILLed (by id)
    quitted = set()  # the processes the driver told to quit (by id)
    trackers = []
    live = {}
    relay = None
    bad = []
    ok = False

    def spawn(n):
        live[n] = start_peer(n, tport, tmp, pw[n], port=ports[n], ready=False)
        incarnations[n].append(live[n])

    def kill(n):
        p = live[n]
        if not p.alive():
            bad.append("%s died before the driver killed it (status %s)" % (n, p.p.returncode))
        p.kill()
        killed.add(id(p))

    def tracker_start(port=None):
        return start_tracker(tmp, port=port, extra=["--ttl", str(TRACKER_TTL_S)])

    try:
        tracker, tport = tracker_start()
        trackers.append(tracker)
        for n in names:
            register(tport, n, pw[n])
        for n in names:
            spawn(n)
        for n in names:
            live[n].wait_type("tracker", 30, state="online")
        # Memberships: everyone is in #general (a default channel); the
        # driver has the first half join #ops.
        members = {"general": set(names), "ops": set(names[:max(2, args.peers // 2)])}
        for n in sorted(members["ops"]):
            mark = live[n].mark()
            live[n].cmd("join ops")
            live[n].wait_type("channel", 20, since=mark, channel="ops", joined=True)

        # p0 reaches p1 through a relay the driver stalls and cuts.
        relay = Relay(ports["p1"])
        live["p0"].cmd("connect p1 127.0.0.1 %d" % relay.port)

        t0 = time.monotonic()
        end = t0 + args.seconds
        next_kill = t0 + 3
        next_sendkill = t0 + 2
        tracker_down = [t0 + args.seconds * 0.3, t0 + args.seconds * 0.7]
        tracker_up_at = None
        stall_at = t0 + args.seconds / 3
        cut_at = None
        dead = {}  # name -> time to restart
        started = {n: t0 for n in names}
        counter = 0
        intent = {}  # tag -> (sender, conversation)
        log = []
        # The sleepers: one in #ops, one not; each away once for SLEEP_S,
        # back before the end. asleep: name -> time to wake.
        sleepers = [names[len(members["ops"]) - 1], names[-1]]
        sleep_at = {sleepers[0]: t0 + 2, sleepers[1]: t0 + 5}
        asleep = {}
        to_sleepers = 0

        def issue(s, chan=None, to=None):
            nonlocal counter
            counter += 1
            if chan is None:
                to = to or rnd.choice([n for n in names if n != s])
                intent[counter] = (s, to)
                live[s].cmd("send %s chaos-%d from %s" % (to, counter, s))
            else:
                intent[counter] = (s, "#" + chan)
                live[s].cmd("sendchannel %s chaos-%d from %s" % (chan, counter, s))

        while time.monotonic() < end:
            now = time.monotonic()
            for n, when in list(sleep_at.items()):
                if now >= when and n not in dead:
                    del sleep_at[n]
                    if n == sleepers[0]:
                        p = live[n]
                        rc = p.stop("quit")
                        quitted.add(id(p))
                        if rc != 0:
                            bad.append("%s exited %s on quit" % (n, rc))
                    else:
                        kill(n)
                    asleep[n] = now + SLEEP_S
                    log.append("%.1fs %s away for %.0f s (%s)"
                               % (now - t0, n, SLEEP_S, "quit" if n == sleepers[0] else "kill"))
            for n, when in list(asleep.items()):
                if now >= when:
                    spawn(n)
                    started[n] = now
                    del asleep[n]
                    log.append("%.1fs %s back" % (now - t0, n))
            for n, when in list(dead.items()):
                if now >= when:
                    spawn(n)
                    started[n] = now
                    del dead[n]
                    log.append("%.1fs restart %s" % (now - t0, n))
            if now >= next_kill and len(dead) < 2:
                n = rnd.choice([x for x in names if x not in dead and x not in asleep])
                kill(n)
                dead[n] = now + rnd.uniform(1.5, 4.0)
                next_kill = now + rnd.uniform(2.0, 5.0)
                log.append("%.1fs kill %s" % (now - t0, n))
            # A peer that has just come back sends to a channel and dies
            # at once, before the tracker can have named the members.
            if now >= next_sendkill and len(dead) < 3:
                fresh = [x for x in names if x not in dead and x not in asleep and
                         now - started[x] < 3.0]
                if fresh:
                    n = rnd.choice(fresh)
                    chan = rnd.choice([c for c in members if n in members[c]])
                    issue(n, chan)
                    time.sleep(rnd.uniform(0.0, 0.15))
                    kill(n)
                    dead[n] = time.monotonic() + rnd.uniform(1.0, 3.0)
                    log.append("%.1fs %s sent to #%s and was killed" % (now - t0, n, chan))
                next_sendkill = now + rnd.uniform(1.0, 3.0)
            if tracker_down and now >= tracker_down[0] and tracker_up_at is None:
                tracker_down.pop(0)
                rc = trackers[-1].stop()
                if rc != 0:
                    bad.append("tracker exited %s on SIGTERM:\n%s"
                               % (rc, trackers[-1].output()[-3000:]))
                tracker_up_at = now + TRACKER_DOWN_S
                log.append("%.1fs tracker stopped" % (now - t0))
            if tracker_up_at is not None and now >= tracker_up_at:
                tracker, _ = tracker_start(tport)
                trackers.append(tracker)
                tracker_up_at = None
                log.append("%.1fs tracker restarted" % (now - t0))
            if stall_at is not None and now >= stall_at:
                relay.stall()
                log.append("%.1fs relay p0->p1 stalled" % (now - t0))
                stall_at = None
                cut_at = now + 3
            elif cut_at is not None and now >= cut_at:
                relay.cut()
                cut_at = None
                log.append("%.1fs relay p0->p1 cut" % (now - t0))
            s = rnd.choice([n for n in names if n not in dead and n not in asleep])
            r = rnd.random()
            if asleep and r < SLEEP_SEND:
                issue(s, to=rnd.choice(sorted(asleep)))
                to_sleepers += 1
            elif r < 0.6:
                issue(s)
            else:
                issue(s, rnd.choice([c for c in members if s in members[c]]))
            time.sleep(0.02)
        if tracker_up_at is not None:
            tracker, _ = tracker_start(tport)
            trackers.append(tracker)
        for n in list(dead):
            spawn(n)
            del dead[n]
        for n in list(asleep):
            spawn(n)
            del asleep[n]
            log.append("%.1fs %s back" % (time.monotonic() - t0, n))
        relay.close()
        for line in log:
            print("  " + line)

        def db(n):
            return os.path.join(tmp, "peer-" + n, "hychat.db")

        def shown():
            """{(tag, recipient): times shown} over every incarnation."""
            got = {}
            for n in names:
                for p in incarnations[n]:
                    for e in p.events():
                        if e.get("type") in ("chat", "broadcast") and not e.get("outgoing"):
                            m = TAG.match(e.get("message", ""))
                            if m:
                                k = (int(m.group(1)), n)
                                got[k] = got.get(k, 0) + 1
            return got

        def shown_again_after_a_kill():
            """(tag, recipient) pairs shown by an incarnation the driver
            killed before the turn's commit stored them, then shown again
            by a later one: a peer shows a turn's messages just before its
            commit and acknowledges them only after it, so a message shown
            and not yet committed when the kill came is sent again. Only
            that case is excused, and it has a shape: commits follow the
            order of the output, so the showings a kill left uncommitted
            are the end of that incarnation's output. Every message it
            showed from the first such one on must have been shown again;
            one after it that was not shows that the first was committed,
            and its second showing is a true duplicate."""
            excused = set()
            for n in names:
                shows, per_inc = {}, []
                for i, p in enumerate(incarnations[n]):
                    tags = []
                    for e in p.events():
                        if e.get("type") in ("chat", "broadcast") and not e.get("outgoing"):
                            m = TAG.match(e.get("message", ""))
                            if m:
                                tags.append(int(m.group(1)))
                    per_inc.append(tags)
                    for pos, t in enumerate(tags):
                        shows.setdefault(t, []).append((i, pos))
                for t, where in shows.items():
                    if len(where) < 2:
                        continue
                    ok = all(a[0] < b[0] for a, b in zip(where, where[1:]))
                    for i, pos in where[:-1]:
                        ok = ok and id(incarnations[n][i]) in killed and all(
                            any(j > i for j, _ in shows[t2]) for t2 in per_inc[i][pos:])
                    if ok:
                        excused.add((t, n))
            return excused

        # Drain: every outbox empty, then nothing new for QUIET_S.
        drain_t0 = time.monotonic()
        deadline = drain_t0 + DRAIN_S
        left = None
        while time.monotonic() < deadline:
            left = {n: pending_rows(db(n)) for n in names}
            if not any(left.values()):
                break
            time.sleep(1.0)
        else:
            print("outboxes not drained after %d s: %r" % (DRAIN_S, left))
        drained = not any(left.values())
        print("chaos: outboxes drained %.1f s after the end" % (time.monotonic() - drain_t0))
        before = shown()
        quiet_until = time.monotonic() + DRAIN_S
        while time.monotonic() < quiet_until:
            time.sleep(QUIET_S)
            after = shown()
            if after == before:
                break
            before = after

        # The tally.
        sent = {}  # tag -> conversation, from the senders' histories
        for n in names:
            for tag, conv in history_sent(db(n)).items():
                if tag not in intent or intent[tag] != (n, conv):
                    raise AssertionError("%s's history holds tag %d as %s; the driver sent %r"
                                         % (n, tag, conv, intent.get(tag)))
                sent[tag] = conv
        owed = set()
        for tag, conv in sent.items():
            sender = intent[tag][0]
            if conv.startswith("#"):
                owed |= {(tag, m) for m in members[conv[1:]] if m != sender}
            else:
                owed.add((tag, conv))
        # Delivered: stored in the recipient's history (which every
        # incarnation shares), in the conversation it belongs to. Shown:
        # printed as an event by some incarnation; a peer killed between
        # its commit and the write of its output stores a message it never
        # shows, which is delivered (the history shows it after the
        # restart); one killed between showing a message and committing it
        # shows it again after the restart (shown_again_after_a_kill);
        # shown twice otherwise, or shown and not stored, is a fault.
        got = {}
        misfiled = []
        for n in names:
            for tag, convs in history_received(db(n)).items():
                got[(tag, n)] = len(convs)
                if tag in intent:
                    s_, to = intent[tag]
                    want = to if to.startswith("#") else s_
                    if any(c != want for c in convs):
                        misfiled.append((tag, n, convs))
        seen = shown()
        again = shown_again_after_a_kill()
        delivered = sum(1 for k in owed if got.get(k, 0) >= 1)
        dups = sorted(set(k for k, v in got.items() if v > 1) |
                      set(k for k, v in seen.items() if v > 1 and k not in again))
        lost = sorted(k for k in owed if k not in got)
        unexpected = sorted(set(k for k in got if k not in owed) |
                            set(k for k in seen if k not in owed)) + misfiled
        never_sent = sorted(({t for t, _ in got} | {t for t, _ in seen}) - set(sent))
        unstored = sorted(k for k in seen if k not in got)
        unshown = sum(1 for k in got if k not in seen)
        lost_channel = [k for k in lost if sent[k[0]].startswith("#")]
        stored = sum(1 for n in names for p in incarnations[n]
                     for e in p.events(0, "delivery") if e.get("state") == "stored")
        backlog = sum(e.get("count", 0) for n in names for p in incarnations[n]
                      for e in p.events(0, "backlog"))
        print("chaos: %d direct messages to sleepers while away; %d stored at the tracker's"
              " mailbox, %d taken from channel backlogs" % (to_sleepers, stored, backlog))
        print("chaos: commands %d, sent %d, deliveries owed %d, delivered %d, duplicates %d,"
              " lost %d (%d of channel messages), unexpected %d, never sent %d,"
              " shown but not stored %d; stored but not shown (killed before its output) %d;"
              " shown again after a kill before its commit %d"
              % (counter, len(sent), len(owed), delivered, len(dups), len(lost),
                 len(lost_channel), len(unexpected), len(never_sent), len(unstored), unshown,
                 len(again)))
        for what, v in (("lost", lost), ("duplicated", dups), ("unexpected", unexpected),
                        ("shown but never sent", never_sent),
                        ("shown but not stored", unstored)):
            if v:
                print("%s (tag, recipient), first 10: %r" % (what, v[:10]))
                for k in v[:3]:
                    if isinstance(k, tuple):
                        print("  tag %d: %r -> %s" % (k[0], intent.get(k[0]), sent.get(k[0])))
        # The driver issued about one command per 20 ms: most must be sent.
        ok = (drained and len(sent) >= counter // 2 and not lost and not dups
              and not unexpected and not never_sent and not unstored)
    finally:
        for n in names:
            for p in incarnations[n]:
                if p.alive():
                    rc = p.stop("quit")
                    if rc != 0:
                        bad.append("%s exited %s on quit" % (n, rc))
                elif id(p) in quitted:
                    pass  # its exit status was checked when it quit
                elif id(p) in killed:
                    if p.p.returncode != -signal.SIGKILL:
                        bad.append("%s: killed, but exited %s" % (n, p.p.returncode))
                else:
                    bad.append("%s died by itself (status %s)" % (n, p.p.returncode))
                err = p.stderr()
                if any(s in err for s in SANITIZER):
                    bad.append("%s: sanitizer report:\n%s" % (n, err[-3000:]))
        for t in trackers:
            rc = t.stop()
            out = t.output()
            if rc != 0 or any(s in out for s in SANITIZER):
                bad.append("tracker exited %s:\n%s" % (rc, out[-3000:]))
        if relay is not None:
            relay.close()
        keep = os.environ.get("HYCHAT_CHAOS_KEEP")
        if keep and not ok:
            dump(keep, tmp, incarnations, trackers, intent, log)
        shutil.rmtree(tmp, ignore_errors=True)
        if bad:
            print("\n".join(bad))
            ok = False
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
