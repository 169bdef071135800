#!/usr/bin/python3
"""bench/verify.py - how fast `ringsync verify` compares two data sets (issue 17).

  bench/verify.py [--keys N] [--repeat K] [--ringsync PATH] [--json OUT]
                  [--hashes N --fields F] [--modes quick,full]

Starts a source redis-server on a free loopback port, fills it with N small
strings (DEBUG POPULATE: "key:i" -> "value:i", 10 bytes) and optionally N2
small hashes, copies it into an empty target with `ringsync sync
--snapshot-only` (timed: the time the data set took to sync), then runs
`ringsync verify` in each mode K times and prints keys/s (the source's keys
over pass 1's time, as verify reports it), wall time, and the CPU seconds
of ringsync and of each server, per million keys. Every server is stopped on
the way out. Both sides equal: a verify that does not exit 0 is a failure.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

from redis_server import ServerSet, SOURCE_ARGS  # noqa: E402
from resp_client import cpu_seconds  # noqa: E402

ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_RINGSYNC = os.path.join(ROOT, "build", "release", "ringsync")


def server_cpu(server):
    with server.client() as c:
        own, _ = cpu_seconds(c.info("cpu"))
    return own


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fill_hashes(server, n, fields):
    with server.client() as c:
        batch = []
        for i in range(n):
            args = ["HSET", "hash:%d" % i]
            for f in range(fields):
                args += ["f%d" % f, "v%d" % (i + f)]
            batch.append(args)
            if len(batch) == 1000:
                c.pipeline(batch)
                batch = []
        if batch:
            c.pipeline(batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--hashes", type=int, default=0, help="small hashes besides the strings")
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="quick,full")
    ap.add_argument("--ringsync", default=DEFAULT_RINGSYNC)
    ap.add_argument("--json")
    a = ap.parse_args()

    servers = ServerSet()
    results = {"keys": a.keys, "hashes": a.hashes, "fields": a.fields, "runs": []}
    try:
        src = servers.start("source", SOURCE_ARGS)
        dst = servers.start("target")
        with src.client(timeout_s=300) as c:
            c.call("DEBUG", "POPULATE", str(a.keys), "key", "10")
        if a.hashes:
            fill_hashes(src, a.hashes, a.fields)
        total = a.keys + a.hashes
        su = "redis://%s:%d" % (src.host, src.port)
        tu = "redis://%s:%d" % (dst.host, dst.port)
        t0 = time.monotonic()
        subprocess.run([a.ringsync, "sync", "--snapshot-only", "--quiet", "--source", su,
                        "--target", tu], check=True, stdout=subprocess.DEVNULL)
        sync_s = time.monotonic() - t0
        results["sync_seconds"] = sync_s
        print("%d keys synced in %.2f s (%.0f keys/s)" % (total, sync_s, total / sync_s))
        for mode in a.modes.split(","):
            for _ in range(a.repeat):
                c0, s0, d0 = children_cpu(), server_cpu(src), server_cpu(dst)
                t0 = time.monotonic()
                p = subprocess.run([a.ringsync, "verify", "--source", su, "--target", tu,
                                    "--mode", mode, "--json", "--passes", "1"],
                                   capture_output=True, text=True)
                wall = time.monotonic() - t0
                if p.returncode != 0:
                    raise RuntimeError("verify --mode %s exited %d: %s %s" % (mode, p.returncode, p.stdout, p.stderr))
                rep = json.loads(p.stdout)
                run = {
                    "mode": mode,
                    "keys_per_s": rep["source_keys"] / rep["seconds"],
                    "pass1_s": rep["seconds"],
                    "wall_s": wall,
                    "ringsync_cpu_s": children_cpu() - c0,
                    "source_cpu_s": server_cpu(src) - s0,
                    "target_cpu_s": server_cpu(dst) - d0,
                }
                results["runs"].append(run)
                m = total / 1e6
                print("%-5s %8.0f keys/s  pass 1 %.2f s (sync took %.2f s)  CPU per 1M keys: "
                      "ringsync %.2f s, source %.2f s, target %.2f s"
                      % (mode, run["keys_per_s"], run["pass1_s"], sync_s,
                         run["ringsync_cpu_s"] / m, run["source_cpu_s"] / m, run["target_cpu_s"] / m))
                sys.stdout.flush()
    finally:
        servers.stop_all()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
