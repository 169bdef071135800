#!/usr/bin/python3
"""bench/proxy.py - SET throughput through nutcracker (twemproxy): ringsync's
catch-up on a SET backlog written through the proxy, against redis-benchmark
-P 32 through the same proxy, in the same run (issue 16; the design:
src/PROXY_DESTINATION.md §10). Nutcracker's one thread is the ceiling: its CPU
is shown beside each figure.

    bench/proxy.py [--servers 2] [--sets 500000] [--repeat 2] [--connections 1,2,4]

Starts its own redis-servers (a source and the servers behind the proxy) and
nutcracker on free loopback ports, and stops them. For each repeat:
  1. redis-benchmark -t set -P 32 -r 1000000 -n SETS through the proxy with
     -c 4 and -c 50 (the best is the reference);
  2. for each --proxy-connections C: the servers flushed, ringsync started
     from the (empty) source into the proxy, paused (SIGSTOP) once it
     follows, SETS random SETs written to the source (redis-benchmark -P 32
     on the source), resumed: the rate is SETS over the time until the
     source sees ringsync's acknowledged offset reach its own; the servers
     must then hold as many keys as the source.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
from redis_server import ServerSet, free_port  # noqa: E402

HOST = "127.0.0.1"


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_proxy(servers, tmp):
    port, stats = free_port(), free_port()
    conf = os.path.join(tmp, "nutcracker.yml")
    with open(conf, "w") as f:
        f.write("bench:\n  listen: %s:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
                "  redis: true\n  auto_eject_hosts: false\n  timeout: 10000\n  servers:\n" % (HOST, port))
        for i, s in enumerate(servers):
            f.write("   - %s:%d:1 s%d\n" % (HOST, s.port, i))
    proc = subprocess.Popen(["nutcracker", "-c", conf, "-s", str(stats), "-a", HOST, "-o",
                             os.path.join(tmp, "nutcracker.log")], start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "SET", "bench:probe", "1"],
                             capture_output=True, text=True).stdout
        if out.strip() == "OK":
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nutcracker did not start")


def redis_benchmark(port, n, clients):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-P", "32", "-r",
                          "1000000", "-n", str(n), "-c", str(clients), "-q"],
                         capture_output=True, text=True).stdout
    m = re.findall(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
    return float(m[-1]) if m else 0.0


def info_offsets(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"],
                         capture_output=True, text=True).stdout
    master = int(re.search(r"master_repl_offset:(\d+)", out).group(1))
    acks = [int(x) for x in re.findall(r"slave\d+:ip=[^,]+,port=0,state=\w+,offset=(\d+)", out)]
    return master, (acks[0] if acks else -1)


def dbsize(port):
    return int(subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True,
                              text=True).stdout.strip())


def ringsync_catch_up(ringsync, source, proxy_port, proxy_pid, servers, sets, conns):
    for s in servers:
        subprocess.run(["redis-cli", "-p", str(s.port), "FLUSHALL"], capture_output=True)
    subprocess.run(["redis-cli", "-p", str(source.port), "FLUSHALL"], capture_output=True)
    p = subprocess.Popen([ringsync, "sync", "--source", "redis://%s:%d" % (HOST, source.port),
                          "--target", "redis://%s:%d" % (HOST, proxy_port), "--target-nonempty",
                          "keep", "--quiet", "--proxy-connections", str(conns)],
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m, a = info_offsets(source.port)
        if a >= m and a >= 0:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGSTOP)
    subprocess.run(["redis-benchmark", "-p", str(source.port), "-t", "set", "-P", "32", "-r",
                    "1000000", "-n", str(sets), "-c", "4", "-q"], capture_output=True)
    target, _ = info_offsets(source.port)
    nc0, rs0 = cpu_s(proxy_pid), cpu_s(p.pid)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGCONT)
    while True:
        _, a = info_offsets(source.port)
        if a >= target:
            break
        if p.poll() is not None or time.monotonic() - t0 > 300:
            raise RuntimeError("ringsync stopped or stalled: %s" % p.stderr.read())
        time.sleep(0.01)
    el = time.monotonic() - t0
    nc, rs = cpu_s(proxy_pid) - nc0, cpu_s(p.pid) - rs0
    want = dbsize(source.port)
    got = sum(dbsize(s.port) for s in servers)
    if got != want:
        raise RuntimeError("the servers hold %d keys, the source %d" % (got, want))
    p.send_signal(signal.SIGINT)
    p.wait(30)
    return sets / el, nc / el, rs / el


def main(argv):
    ap = argparse.ArgumentParser(prog="bench/proxy.py")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--sets", type=int, default=500000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--connections", default="1,2,4")
    ap.add_argument("--ringsync", default=os.path.join(BENCH_DIR, "..", "build", "release",
                                                        "ringsync"))
    a = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="ringsync-bench-proxy-")
    ss = ServerSet()
    proxy = None
    try:
        source = ss.start("source")
        servers = [ss.start("server%d" % i) for i in range(a.servers)]
        proxy, port = start_proxy(servers, tmp)
        print("%d servers behind nutcracker, %d SETs per measure" % (a.servers, a.sets))
        for r in range(a.repeat):
            best = 0.0
            for c in (4, 50):
                nc0 = cpu_s(proxy.pid)
                t0 = time.monotonic()
                rate = redis_benchmark(port, a.sets, c)
                ncpu = (cpu_s(proxy.pid) - nc0) / (time.monotonic() - t0)
                print("repeat %d: redis-benchmark -P 32 -c %d through the proxy: %.0f SET/s "
                      "(nutcracker %.2f CPU)" % (r + 1, c, rate, ncpu))
                best = max(best, rate)
            for conns in [int(x) for x in a.connections.split(",")]:
                rate, ncpu, rcpu = ringsync_catch_up(a.ringsync, source, port, proxy.pid,
                                                     servers, a.sets, conns)
                print("repeat %d: ringsync --proxy-connections %d: %.0f SET/s = %.2fx the best "
                      "redis-benchmark (nutcracker %.2f CPU, ringsync %.2f CPU)"
                      % (r + 1, conns, rate, rate / best if best else 0, ncpu, rcpu))
            sys.stdout.flush()
    finally:
        if proxy is not None:
            proxy.kill()
            proxy.wait()
        ss.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
