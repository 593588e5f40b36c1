#!/usr/bin/env python3
"""One hychat-tracker on SQLite against three on one Redis behind
hychat-proxy, side by side in one run on this machine: 1,000 online peers
(100 in #general) in each; wrk against GET /get-list?channel=general and
POST /heartbeat with a bearer token, req/s, p99 and the ratio
cluster/single. Both setups run at once (idle while the other is
measured), and the runs alternate, single then cluster, for --rounds
rounds: on a machine shared with other work, what the load does to one
side in a round it does to the other, and the median of the rounds' ratios
is the figure (each round's is printed too). Then Redis's memory (INFO memory, used_memory) as
100,000 users register, log in and come online through the cluster:
bytes per online peer for the presence alone (submit-info) and for
everything a user holds (account, token, presence).

Redis runs as the project ships it: AOF on, appendfsync everysec.
Accounts use --kdf-cost min, so that 100,000 logins take seconds; what
is measured is the online path, which does not hash."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import BUILD, Server, build, free_port, need, row, wrk  # noqa: E402
from bench_tracker import load, pipelined, req  # noqa: E402

TRACKER = os.path.join(BUILD, "src/tracker/hychat-tracker")
# The loader logs in thousands of users from one address: the login
# throttle is off, and the hash queue deep.
UNTHROTTLED = ["--login-addr-burst", "0", "--login-pair-burst", "0", "--login-account-burst", "0",
               "--max-hash-jobs-per-addr", "100000", "--max-hash-jobs", "100000"]


def redis_cmd(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=60)
    return out.stdout


def used_memory(port):
    for line in redis_cmd(port, "INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO memory")


def script_time(port):
    """(EVALSHA calls, their µs) so far, by INFO commandstats."""
    for line in redis_cmd(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            f = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(f["calls"]), int(f["usec"])
    return 0, 0


def scripts(tmp, tokens):
    auth = os.path.join(tmp, "auth.lua")
    with open(auth, "w") as f:
        f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % tokens[0])
    hb = os.path.join(tmp, "hb.lua")
    with open(hb, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = "{}"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Authorization"] = "Bearer %s"\n' % tokens[1])
    return auth, hb


def measure(port, tokens, tmp, a, what):
    auth, hb = scripts(tmp, tokens)
    if what == "get-list":
        return wrk("http://127.0.0.1:%d/get-list?channel=general" % port, a.conns, a.seconds,
                   script=auth)
    return wrk("http://127.0.0.1:%d/heartbeat" % port, a.conns, a.seconds, script=hb)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def compare(name, single, cluster, target=None):
    """The rounds' runs of one call: medians, and the median ratio."""
    ratios = [c[0] / s[0] for s, c in zip(single, cluster)]
    p99s = [c[1] / s[1] for s, c in zip(single, cluster)]
    row("single  " + name, median([r[0] for r in single]), median([r[1] for r in single]),
        sum(r[2] for r in single), sum(r[3] for r in single))
    row("cluster " + name, median([r[0] for r in cluster]), median([r[1] for r in cluster]),
        sum(r[2] for r in cluster), sum(r[3] for r in cluster))
    print("ratio cluster/single %-19s req/s %.2fx   p99 %.2fx%s" % (
        name, median(ratios), median(p99s), ("   (target >= %.1fx)" % target) if target else ""))
    print("  each round: %s" % "  ".join("%.2fx" % r for r in ratios))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--peers", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    need("wrk", "redis-server", "redis-cli")
    build()
    tmp = tempfile.mkdtemp(prefix="hychat-bench-cluster-")
    procs = []
    try:
        # One tracker, in-memory state on SQLite, both cores' worth of loops.
        sp = free_port()
        single = Server([TRACKER, "--listen", "127.0.0.1:%d" % sp, "--db",
                         os.path.join(tmp, "t.db"), "--workers", "2", "--quiet", "--ttl", "3600",
                         "--kdf-cost", "min"] + UNTHROTTLED, sp)
        procs.append(single)
        stokens = load(sp, 0, 1000, general=100)

        # Redis, three trackers, the proxy.
        rp = free_port()
        rdir = os.path.join(tmp, "redis")
        os.mkdir(rdir)
        redis = Server(["redis-server", "--port", str(rp), "--bind", "127.0.0.1", "--dir", rdir,
                        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                        "--protected-mode", "no"], rp)
        procs.append(redis)
        time.sleep(0.3)
        url = "redis://127.0.0.1:%d" % rp
        tps = [free_port() for _ in range(3)]
        for p in tps:
            procs.append(Server([TRACKER, "--listen", "127.0.0.1:%d" % p, "--store", url,
                                 "--quiet", "--ttl", "3600", "--kdf-cost", "min"] + UNTHROTTLED,
                                p))
        pp = free_port()
        conf = os.path.join(tmp, "cluster.conf")
        with open(conf, "w") as f:
            f.write('host "127.0.0.1" default {\n' +
                    "".join("    proxy_pass http://127.0.0.1:%d;\n" % p for p in tps) +
                    "    dist_policy round-robin;\n}\n")
        # The proxy, the front of the cluster as the single tracker is of
        # its side, gets a loop per core like it: with one, every request
        # waits on one thread, which the scheduler gives one share of the
        # two cores however many threads compete for them.
        procs.append(Server([os.path.join(BUILD, "src/proxy/hychat-proxy"), "-c", conf,
                             "--listen", "127.0.0.1:%d" % pp, "--quiet", "--workers", "2"], pp))
        tokens = load(pp, 0, 1000, general=100)
        runs = {(w, side): [] for w in ("get-list", "heartbeat") for side in ("s", "c")}
        for w in ("get-list", "heartbeat"):
            measure(sp, stokens, tmp, argparse.Namespace(conns=a.conns, seconds=2), w)
            measure(pp, tokens, tmp, argparse.Namespace(conns=a.conns, seconds=2), w)
        redis_us = {"get-list": [], "heartbeat": []}
        for _ in range(a.rounds):
            for w in ("get-list", "heartbeat"):
                runs[(w, "s")].append(measure(sp, stokens, tmp, a, w))
                c0 = script_time(rp)
                runs[(w, "c")].append(measure(pp, tokens, tmp, a, w))
                c1 = script_time(rp)
                redis_us[w].append((c1[1] - c0[1]) / max(1, c1[0] - c0[0]))
        single.stop()
        procs.remove(single)

        # Memory: accounts and tokens first, then presence, as INFO sees it.
        n = a.peers - 1000
        names = ["u%06d" % i for i in range(1000, 1000 + n)]
        m0 = used_memory(rp)
        t0 = time.monotonic()
        toks = []
        step = 10000
        for lo in range(0, n, step):
            chunk = names[lo:lo + step]
            r = pipelined(tps[0], [req("POST", "/register", {"username": u, "password": "pw-" + u})
                                   for u in chunk])
            assert all(x[0] == 201 for x in r), r[:3]
            r = pipelined(tps[0], [req("POST", "/login", {"username": u, "password": "pw-" + u})
                                   for u in chunk])
            toks += [json.loads(x[1])["token"] for x in r]
        m1 = used_memory(rp)
        key = "A" * 43 + "="
        for lo in range(0, n, step):
            r = pipelined(tps[0], [req("POST", "/submit-info",
                                       {"ip": "127.0.0.1", "port": 10000 + (lo + i) % 50000,
                                        "pubkey": key}, t)
                                   for i, t in enumerate(toks[lo:lo + step])])
            assert all(x[0] == 200 for x in r), r[:3]
        m2 = used_memory(rp)
        load_s = time.monotonic() - t0
        stats = json.loads(pipelined(pp, [req("GET", "/stats", token=tokens[0])])[0][1])
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("one tracker (SQLite, 2 workers) vs three trackers on one Redis (1 worker each) behind"
          " hychat-proxy (2 workers); wrk -t1 -c%d -d%ds, %d rounds alternating, medians;"
          " 1,000 online, 100 in #general" % (a.conns, a.seconds, a.rounds))
    compare("GET /get-list?channel=general", runs[("get-list", "s")], runs[("get-list", "c")])
    compare("POST /heartbeat", runs[("heartbeat", "s")], runs[("heartbeat", "c")], 0.5)
    print("redis time per script (INFO commandstats): get-list %.0f us, heartbeat %.1f us"
          % (median(redis_us["get-list"]), median(redis_us["heartbeat"])))
    print("redis memory: %d users added (%.1f s), %d online in all" % (n, load_s, stats["peers"]))
    print("  accounts and tokens: %.0f bytes per user" % ((m1 - m0) / n))
    print("  presence (submit-info with a key): %.0f bytes per online peer   (target <= 600)"
          % ((m2 - m1) / n))
    print("  everything a user holds: %.0f bytes" % ((m2 - m0) / n))


if __name__ == "__main__":
    main()
