#!/usr/bin/python3
"""bench/two_way.py - two-way sync's catch-up rate per direction against a
one-way job's on the same backlog, in the same run (issue 18; the design:
src/BIDIRECTIONAL.md).

    bench/two_way.py [--sets 500000] [--repeat 2] [--ringsync PATH]

Starts its own redis-servers A and B on free loopback ports and stops them.
Each repeat:
  1. one-way: ringsync sync A -> B follows A; paused (SIGSTOP) once caught
     up; SETS random SETs written to A (redis-benchmark -P 32, keys
     a:<rand>); resumed: the rate is SETS over the time until A sees
     ringsync's acknowledged offset reach its own;
  2. two-way: ringsync sync --topology bidirectional between a fresh A and
     B; paused once both directions caught up; SETS SETs written to A (a:...)
     and SETS to B (b:...); resumed: each direction's rate as above.
Both sides must end with the same number of keys.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
from redis_server import ServerSet  # noqa: E402

ARGS = ["--repl-diskless-sync-delay", "0", "--repl-backlog-size", "512mb"]


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True,
                          text=True).stdout.strip()


def offsets(port):
    out = cli(port, "INFO", "replication")
    master = int(re.search(r"master_repl_offset:(\d+)", out).group(1))
    acks = [int(x) for x in re.findall(r"slave\d+:ip=[^,]+,port=0,state=\w+,offset=(\d+)", out)]
    return master, (acks[0] if acks else -1)


def caught_up(ports):
    for p in ports:
        m, a = offsets(p)
        if a < m:
            return False
    return True


def wait(pred, what, timeout=300):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.01)
    return time.monotonic() - t0


def load(port, prefix, n):
    subprocess.run(["redis-benchmark", "-p", str(port), "-P", "32", "-c", "4", "-r", "1000000",
                    "-n", str(n), "-q", "SET", prefix + ":__rand_int__", "v" * 16],
                   capture_output=True)


def run(ringsync, a, b, sets, two_way):
    for s in (a, b):
        cli(s.port, "FLUSHALL")
    cmd = [ringsync, "sync", "--source", "redis://127.0.0.1:%d" % a.port, "--target",
           "redis://127.0.0.1:%d" % b.port, "--quiet", "--status-addr", "none",
           "--expiry-margin", "0", "--target-nonempty", "keep"]
    if two_way:
        cmd += ["--topology", "bidirectional", "--job-id", "bench%d" % time.time_ns()]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ports = [a.port, b.port] if two_way else [a.port]
    time.sleep(0.5)
    wait(lambda: all(offsets(x)[1] >= 0 for x in ports) and caught_up(ports), "the start", 60)
    os.kill(p.pid, signal.SIGSTOP)
    load(a.port, "a", sets)
    if two_way:
        load(b.port, "b", sets)
    target = {x: offsets(x)[0] for x in ports}
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGCONT)
    done = {}
    while len(done) < len(ports):
        for x in ports:
            if x not in done and offsets(x)[1] >= target[x]:
                done[x] = time.monotonic() - t0
        if p.poll() is not None or time.monotonic() - t0 > 300:
            raise RuntimeError("ringsync stopped or stalled: " + p.stderr.read())
        time.sleep(0.005)
    wait(lambda: caught_up(ports), "the last records", 30)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    ka, kb = int(cli(a.port, "DBSIZE")), int(cli(b.port, "DBSIZE"))
    if two_way and ka != kb:
        raise RuntimeError("A holds %d keys, B %d" % (ka, kb))
    return {("A->B" if x == a.port else "B->A"): sets / t for x, t in done.items()}


def main(argv):
    ap = argparse.ArgumentParser(prog="bench/two_way.py")
    ap.add_argument("--sets", type=int, default=500000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--ringsync", default=os.path.join(BENCH_DIR, "..", "build", "release",
                                                        "ringsync"))
    a = ap.parse_args(argv)
    ss = ServerSet()
    try:
        for r in range(a.repeat):
            sa, sb = ss.start("a", ARGS), ss.start("b", ARGS)
            one = run(a.ringsync, sa, sb, a.sets, False)
            ss.stop(sa)
            ss.stop(sb)
            sa, sb = ss.start("a", ARGS), ss.start("b", ARGS)
            two = run(a.ringsync, sa, sb, a.sets, True)
            ss.stop(sa)
            ss.stop(sb)
            print("repeat %d: one-way A->B %.0f SET/s; two-way A->B %.0f (%.2fx), B->A %.0f "
                  "(%.2fx), total %.0f" % (r + 1, one["A->B"], two["A->B"],
                                           two["A->B"] / one["A->B"], two["B->A"],
                                           two["B->A"] / one["A->B"], two["A->B"] + two["B->A"]))
            sys.stdout.flush()
    finally:
        ss.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
