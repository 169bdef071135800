#!/usr/bin/python3
"""bench/soak.py - a long, randomized soak of `ringsync sync` under hundreds of
faults, checked against Redis's own replica (issue 15).

  bench/soak.py [--duration S | --faults N] [--seed N] [--check-every K]
                [--ringsync PATH] [--cluster] [--rate CMD/S] [--keys N] ...

It starts its own redis-server processes on free loopback ports, each in its
own temporary directory (bench/redis_server.py): a source, a native replica of
the source (the oracle) and a destination (AOF, so that it can be killed and
restarted with its data; or, with --cluster, a 3-master cluster). It runs
`ringsync sync --source ... --target ... --workers 1|2 --source-timeout 1`,
started again whenever it exits or is killed, a write load on the source
(counters, lists, appends, hashes, sorted sets, sets, SETs, DELs, EXPIREs,
MULTI/EXEC blocks) and a fault every 0.5-3 s. Every K faults and at the end
it pauses the load, waits until ringsync and the replica have applied
everything the source wrote, and compares the destination with the replica
key by key (DEBUG DIGEST-VALUE; ringsync's own `ringsync:cp:` records left
out) and the keys' expiries (PEXPIRETIME; ringsync writes them
--expiry-margin late while it runs). See bench/README.md, "Soak".

Exit status: 0 when every check found the destination equal to the replica,
1 otherwise (or on a hang or a crash of ringsync), 130 when interrupted.
Every process it started is stopped on the way out, by its PID.
"""

import argparse
import collections
import datetime
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

from redis_server import RedisServer, ServerSet, SOURCE_ARGS, BASE_ARGS, HOST  # noqa: E402
from resp_client import RespClient, RespError  # noqa: E402

ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_RINGSYNC = os.path.join(ROOT, "build", "release", "ringsync")
CP_PREFIX = b"ringsync:cp:"
ZERO_DIGEST = b"0" * 40

FAULTS = ["kill9_ringsync", "sigint_ringsync", "kill_source_replicas", "kill_dest_clients",
          "stop_source", "restart_dest", "replicaof_flip"]
CLUSTER_SKIPS = {"restart_dest"}  # out of scope with a cluster destination

# The write load's key kinds; each key is soak:<kind>:<i> in a bounded space.
KINDS = ["cnt", "list", "app", "hash", "zset", "set", "str"]
DAY_S = 86400
TTL_RANGE_S = (30 * DAY_S, 300 * DAY_S)  # long: no key expires during a run


class Failure(Exception):
    """A run-ending finding (a hang, a check that timed out)."""


# --- logging -----------------------------------------------------------------------

class Log:
    """Timestamped lines on stdout and in WORKDIR/soak.log (wall clock UTC and
    seconds since the start)."""

    def __init__(self, path):
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1)

    def stamp(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        return "%s +%8.3fs" % (now.strftime("%H:%M:%S.%f")[:-3], time.monotonic() - self.t0)

    def __call__(self, msg, quiet=False):
        line = "[%s] %s" % (self.stamp(), msg)
        with self.lock:
            self.f.write(line + "\n")
            if not quiet:
                print(line, flush=True)

    def close(self):
        self.f.close()


# --- a destination that can be killed and restarted with its data -----------------

class DurableServer(RedisServer):
    """A RedisServer that kill -9 and restart() keep on the same port and
    directory (the AOF brings its data back)."""

    def kill9(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its session: the server and any child
        except ProcessLookupError:
            pass
        self.proc.wait()

    def restart(self, timeout_s=60):
        args = [self.redis_server, "--port", str(self.port), "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log")] + BASE_ARGS + self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("destination redis-server did not restart on port %d (exit %s); "
                              "log:\n%s" % (self.port, self.proc.returncode, self.log_tail()))
            try:
                with RespClient(HOST, self.port, timeout_s=1) as c:
                    if c.call("PING") == b"PONG":  # -LOADING raises until the AOF is in
                        return
            except (OSError, RespError):
                time.sleep(0.05)
        raise Failure("destination redis-server on port %d not ready after %d s" %
                      (self.port, timeout_s))


# --- ringsync, started again whenever it stops -------------------------------------

class Ringsync:
    """ringsync sync, run by a supervisor thread: started again (same command
    line, 1 or 2 workers at random) whenever it exits or is killed. Its stderr
    goes, timestamped, to WORKDIR/ringsync.log and to a ring of recent lines."""

    def __init__(self, base_cmd, log_path, rng, log):
        self.base_cmd = base_cmd
        self.rng = rng
        self.log = log
        self.logf = open(log_path, "a", buffering=1)
        self.loglock = threading.Lock()
        self.recent = collections.deque(maxlen=2000)
        self.nlines = 0
        self.lock = threading.Lock()
        self.proc = None
        self.restart_at = time.monotonic()
        self.backoff = 0.5
        self.started_at = 0
        self.starts = 0
        self.own_exits = collections.Counter()   # exits we did not cause, by status
        self.crashes = []                        # (status, tail) of deaths by a signal we did not send
        self.sigint_status = collections.Counter()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="ringsync-supervisor", daemon=True)

    def start(self):
        self.thread.start()

    def line(self, text):
        with self.loglock:
            t = "[%s] %s" % (self.log.stamp(), text)
            self.recent.append(t)
            self.nlines += 1
            self.logf.write(t + "\n")

    def tail(self, n=40):
        with self.loglock:
            return list(self.recent)[-n:]

    def since(self, mark, limit=400):
        """Its lines after the mark'th (self.nlines then), at most the last `limit`."""
        with self.loglock:
            n = min(self.nlines - mark, len(self.recent), limit)
            return list(self.recent)[-n:] if n > 0 else []

    def _reader(self, proc):
        for raw in proc.stderr:
            self.line("  %d| %s" % (proc.pid, raw.decode(errors="replace").rstrip("\r\n")))
        proc.stderr.close()

    def _spawn(self):
        workers = self.rng.choice([1, 2])
        cmd = self.base_cmd + ["--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.proc.soak_expected = False
        self.proc.soak_workers = workers
        self.starts += 1
        self.started_at = time.monotonic()
        self.line("=== start #%d: pid %d, %d worker(s): %s" % (self.starts, self.proc.pid, workers,
                                                              " ".join(cmd)))
        threading.Thread(target=self._reader, args=(self.proc,), daemon=True).start()

    def _reap(self):
        """Under self.lock: notes an exit of self.proc, if any; True if it exited."""
        p = self.proc
        if p is None or p.poll() is None:
            return False
        rc = p.returncode
        self.proc = None
        if p.soak_expected:
            return True
        ran = time.monotonic() - self.started_at
        self.backoff = 0.5 if ran > 10 else min(self.backoff * 2, 5.0)
        self.restart_at = time.monotonic() + self.backoff
        self.own_exits[rc] += 1
        time.sleep(0.05)  # let the reader take its last lines
        tail = self.tail(4)
        self.line("=== pid %d exited on its own with status %d after %.1f s" % (p.pid, rc, ran))
        self.log("ringsync pid %d exited on its own, status %d, after %.1f s; last lines:\n    %s"
                 % (p.pid, rc, ran, "\n    ".join(tail)))
        if rc < 0 and -rc not in (signal.SIGINT, signal.SIGTERM):
            self.crashes.append((rc, self.tail(60)))
            self.log("ringsync CRASHED (signal %d)" % -rc)
        return True

    def _run(self):
        while True:
            with self.lock:
                if self.stopping:
                    return
                self._reap()
                if self.proc is None and self.restart_at is not None and \
                        time.monotonic() >= self.restart_at:
                    self._spawn()
            time.sleep(0.02)

    def pid(self):
        with self.lock:
            return self.proc.pid if self.proc else None

    def wait_running(self, timeout_s=15):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.proc is not None and self.proc.poll() is None:
                    return self.proc
            time.sleep(0.02)
        return None

    def kill9(self, restart_after_s):
        p = self.wait_running()
        if p is None:
            return None
        with self.lock:
            p.soak_expected = True
            self.restart_at = None
            p.kill()
            p.wait()
            self.proc = None
            self.line("=== pid %d killed (SIGKILL) by the soak; restart in %.2f s" %
                      (p.pid, restart_after_s))
            self.restart_at = time.monotonic() + restart_after_s
        return p.pid

    def sigint(self, timeout_s):
        """A clean stop, then a restart at once. Returns (pid, status, seconds);
        raises Failure when it does not exit within timeout_s (a hang)."""
        p = self.wait_running()
        if p is None:
            return None, None, 0
        with self.lock:
            p.soak_expected = True
            self.restart_at = None  # the supervisor leaves it alone until we are done
            self.line("=== pid %d sent SIGINT by the soak" % p.pid)
            p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            rc = p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            tail = self.tail(60)
            p.kill()
            p.wait()
            with self.lock:
                self.proc = None
                self.restart_at = time.monotonic()
            raise Failure("HANG: ringsync pid %d did not exit within %d s of SIGINT (killed); "
                          "its last lines:\n    %s" % (p.pid, timeout_s, "\n    ".join(tail)))
        el = time.monotonic() - t0
        with self.lock:
            if self.proc is p:
                self.proc = None
            self.restart_at = time.monotonic()
        self.sigint_status[rc] += 1
        self.line("=== pid %d exited with status %d %.2f s after SIGINT" % (p.pid, rc, el))
        return p.pid, rc, el

    def shutdown(self):
        with self.lock:
            self.stopping = True
            p = self.proc
            if p is not None and p.poll() is None:
                p.soak_expected = True
                p.kill()
            if p is not None:
                p.wait()
            self.proc = None
        self.thread.join(timeout=5)
        self.logf.close()


# --- the write load --------------------------------------------------------------

class Load(threading.Thread):
    """Pipelined writes on the source at about `rate` commands/s, in batches
    every 20 ms, over a bounded key space. Error replies (READONLY while the
    source is a replica) and lost connections are counted, not fatal: the
    native replica is the oracle, whatever the source took."""

    PERIOD_S = 0.02

    def __init__(self, port, seed, rate, keys, dbs):
        super().__init__(name="load", daemon=True)
        self.port = port
        self.rng = random.Random(seed)
        self.per_batch = max(1, int(round(rate * self.PERIOD_S)))
        self.keys = keys
        self.dbs = dbs
        self.seq = 0
        self.sent = 0
        self.errors = collections.Counter()
        self.conn_errors = 0
        self.transactions = 0
        self.stop_flag = threading.Event()
        self.want_pause = threading.Event()
        self.paused = threading.Event()
        self.resumed = threading.Event()

    def key(self, kind=None):
        kind = kind or self.rng.choice(KINDS)
        return "soak:%s:%d" % (kind, self.rng.randrange(self.keys))

    def command(self):
        r = self.rng
        self.seq += 1
        op = r.choices(["INCR", "INCRBY", "LPUSH", "APPEND", "HINCRBY", "ZINCRBY", "SADD",
                        "SET", "DEL", "EXPIRE"],
                       weights=[12, 8, 12, 10, 12, 10, 10, 12, 4, 5])[0]
        if op == "INCR":
            return ("INCR", self.key("cnt"))
        if op == "INCRBY":
            return ("INCRBY", self.key("cnt"), r.randint(-5, 100))
        if op == "LPUSH":
            return ("LPUSH", self.key("list"), "e%d" % self.seq)
        if op == "APPEND":
            return ("APPEND", self.key("app"), "%d," % self.seq)
        if op == "HINCRBY":
            return ("HINCRBY", self.key("hash"), "f%d" % r.randrange(10), r.randint(1, 50))
        if op == "ZINCRBY":
            return ("ZINCRBY", self.key("zset"), r.randint(1, 20), "m%d" % r.randrange(20))
        if op == "SADD":
            return ("SADD", self.key("set"), "m%d" % r.randrange(200))
        if op == "SET":
            v = "v%d-%s" % (self.seq, "x" * r.randrange(60))
            if r.random() < 0.2:
                return ("SET", self.key("str"), v, "EX", r.randint(*TTL_RANGE_S))
            return ("SET", self.key("str"), v)
        if op == "DEL":
            return ("DEL", self.key())
        return ("EXPIRE", self.key(), r.randint(*TTL_RANGE_S))

    def batch(self):
        r = self.rng
        cmds = []
        if self.dbs > 1:
            cmds.append(("SELECT", 0 if r.random() < 0.75 else r.randrange(1, self.dbs)))
        while len(cmds) < self.per_batch:
            if r.random() < 0.04:
                cmds.append(("MULTI",))
                cmds.extend(self.command() for _ in range(r.randint(2, 5)))
                cmds.append(("EXEC",))
                self.transactions += 1
            else:
                cmds.append(self.command())
        return cmds

    def pause(self, timeout_s=60):
        self.resumed.clear()
        self.want_pause.set()
        if not self.paused.wait(timeout_s):
            raise Failure("the write load did not pause within %d s" % timeout_s)

    def resume(self):
        self.want_pause.clear()
        self.paused.clear()
        self.resumed.set()

    def run(self):
        conn = None
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            if self.want_pause.is_set():
                self.paused.set()
                while not self.resumed.wait(0.1):
                    if self.stop_flag.is_set():
                        break
                next_t = time.monotonic()
                continue
            if conn is None:
                try:
                    conn = RespClient(HOST, self.port, timeout_s=30)
                except OSError:
                    self.conn_errors += 1
                    time.sleep(0.2)
                    continue
            cmds = self.batch()
            try:
                for rep in conn.pipeline(cmds):
                    if isinstance(rep, RespError):
                        self.errors[str(rep).split(" ", 1)[0]] += 1
                self.sent += len(cmds)
            except (OSError, ConnectionError):
                self.conn_errors += 1
                conn.close()
                conn = None
                time.sleep(0.1)
            next_t += self.PERIOD_S
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                next_t = time.monotonic()  # fell behind (a stopped source): no burst to catch up
        if conn is not None:
            conn.close()


# --- the stream, recorded with its offsets -------------------------------------------

class StreamRecorder(threading.Thread):
    """A replica of the native replica (chained replication passes the
    source's stream on byte for byte, with the source's replid and offsets),
    which writes every command of the stream with its end offset to a file:

      <end offset> db<N> tx|- <COMMAND> <args, each cut at 48 bytes>

(tx: inside a MULTI ... EXEC of the source)
    so that a differing key's history can be set beside ringsync's checkpoint
    offsets. It reconnects (PSYNC replid offset+1) whenever the replica drops
    it (the source changed replid, a restart...)."""

    def __init__(self, port, path, log):
        super().__init__(name="stream-recorder", daemon=True)
        self.port = port
        self.path = path
        self.log = log
        self.out = open(path, "w", buffering=1 << 20)
        self.stop_flag = threading.Event()
        self.replid = None
        self.offset = -1
        self.db = 0
        self.in_tx = False
        self.commands = 0
        self.full_syncs = 0
        self.reconnects = 0
        self.lock = threading.Lock()

    def flush(self):
        with self.lock:
            self.out.flush()

    def _read_line(self, s, buf):
        while b"\r\n" not in buf:
            if self.stop_flag.is_set():
                raise ConnectionError("stopped")
            self._recv(s, buf)
        i = buf.index(b"\r\n")
        line = bytes(buf[:i])
        del buf[:i + 2]
        return line

    def _recv(self, s, buf):
        try:
            chunk = s.recv(1 << 20)
        except TimeoutError:
            self._ack(s)
            return
        except OSError as e:
            if "timed out" in str(e):
                self._ack(s)
                return
            raise
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        self._ack(s, lazy=True)

    def _ack(self, s, lazy=False):
        now = time.monotonic()
        if lazy and now - self.last_ack < 1:
            return
        self.last_ack = now
        if self.offset >= 0 and self.streaming:
            from resp_client import encode_command
            s.sendall(encode_command(("REPLCONF", "ACK", self.offset)))

    def _parse(self, buf):
        """One command off buf: (args, bytes used), or None if incomplete."""
        if not buf:
            return None
        if buf[0:1] != b"*":  # an inline newline keepalive, before the stream
            i = buf.find(b"\n")
            return None if i < 0 else (None, i + 1)
        i = buf.find(b"\r\n")
        if i < 0:
            return None
        n = int(buf[1:i])
        pos = i + 2
        args = []
        for _ in range(n):
            j = buf.find(b"\r\n", pos)
            if j < 0:
                return None
            ln = int(buf[pos + 1:j])
            if len(buf) < j + 2 + ln + 2:
                return None
            args.append(bytes(buf[j + 2:j + 2 + ln]))
            pos = j + 2 + ln + 2
        return args, pos

    def _session(self):
        import socket as socketmod
        s = socketmod.create_connection((HOST, self.port), timeout=1)
        self.streaming = False
        self.last_ack = time.monotonic()
        buf = bytearray()
        try:
            from resp_client import encode_command
            s.sendall(encode_command(("REPLCONF", "listening-port", "1")) +
                      encode_command(("REPLCONF", "capa", "psync2")))
            for _ in range(2):
                line = self._read_line(s, buf)
                if line.startswith(b"-"):
                    raise ConnectionError(line.decode(errors="replace"))
            if self.replid:
                s.sendall(encode_command(("PSYNC", self.replid, self.offset + 1)))
            else:
                s.sendall(encode_command(("PSYNC", "?", -1)))
            while True:
                line = self._read_line(s, buf)
                if line:  # newlines may come while the replica prepares
                    break
            if line.startswith(b"+FULLRESYNC"):
                _, replid, off = line.split()
                with self.lock:
                    self.out.write("# FULLRESYNC %s %s\n" % (replid.decode(), off.decode()))
                self.full_syncs += 1
                while True:
                    line = self._read_line(s, buf)
                    if line:
                        break
                if line.startswith(b"$EOF:"):
                    mark = line[5:]
                    while buf.find(mark) < 0:
                        self._recv(s, buf)
                    del buf[:buf.find(mark) + len(mark)]
                else:
                    n = int(line[1:])
                    while len(buf) < n:
                        self._recv(s, buf)
                    del buf[:n]
                self.replid, self.offset, self.db = replid.decode(), int(off), 0
            elif line.startswith(b"+CONTINUE"):
                parts = line.split()
                if len(parts) > 1:
                    self.replid = parts[1].decode()
                with self.lock:
                    self.out.write("# CONTINUE %s from %d\n" % (self.replid, self.offset + 1))
            else:
                raise ConnectionError(line.decode(errors="replace"))
            self.streaming = True
            while not self.stop_flag.is_set():
                p = self._parse(buf)
                if p is None:
                    self._recv(s, buf)
                    continue
                args, used = p
                del buf[:used]
                self.offset += used
                if args is None:
                    continue
                name = args[0].upper()
                if name == b"SELECT":
                    self.db = int(args[1])
                if name == b"EXEC":
                    self.in_tx = False
                text = " ".join(a[:48].decode(errors="replace").replace(" ", "\\x20")
                                for a in args)
                with self.lock:
                    self.out.write("%d db%d %s %s\n" % (self.offset, self.db,
                                                        "tx" if self.in_tx else "-", text))
                if name == b"MULTI":
                    self.in_tx = True
                self.commands += 1
        finally:
            s.close()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self._session()
            except (OSError, ConnectionError, ValueError) as e:
                if self.stop_flag.is_set():
                    break
                self.reconnects += 1
                with self.lock:
                    self.out.write("# link lost at offset %d: %s\n" % (self.offset, e))
                time.sleep(0.2)
        with self.lock:
            self.out.close()

    def history(self, db, key, last=25):
        """The recorded commands that name key (in db), the last `last` of them."""
        self.flush()
        want = key.decode(errors="replace").replace(" ", "\\x20")
        dbtag = "db%d" % db
        hits = []
        in_multi = []
        with open(self.path, errors="replace") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) < 5 or parts[1] != dbtag:
                    continue
                if want in parts[4:]:
                    hits.append(line.rstrip("\n"))
                    if len(hits) > last * 4:
                        del hits[:-last]
        return hits[-last:]


# --- the comparison ----------------------------------------------------------------

def scan_keys(c):
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = c.call("SCAN", cursor, "COUNT", 1000)
        keys.update(k for k in batch if not k.startswith(CP_PREFIX))
        if cursor == b"0":
            return keys


def digests(c, keys, chunk=200):
    """{key: (DEBUG DIGEST-VALUE, PEXPIRETIME)} on c's current db."""
    keys = list(keys)
    out = {}
    for i in range(0, len(keys), 2000):
        part = keys[i:i + 2000]
        cmds = [("DEBUG", "DIGEST-VALUE") + tuple(part[j:j + chunk])
                for j in range(0, len(part), chunk)]
        cmds += [("PEXPIRETIME", k) for k in part]
        reps = c.pipeline(cmds)
        for r in reps:
            if isinstance(r, RespError):
                raise r
        digs = [d for r in reps[:len(cmds) - len(part)] for d in r]
        for k, d, t in zip(part, digs, reps[len(cmds) - len(part):]):
            out[k] = (d, t)
    return out


def describe(c, key):
    """A short text of one key's value and expiry, for a report."""
    try:
        t = c.call("TYPE", key).decode()
        ttl = c.call("PEXPIRETIME", key)
        if t == "none":
            return "(none)"
        if t == "string":
            v = c.call("GET", key)
            if len(v) > 120:
                v = v[:60] + b"...(%d bytes)..." % len(v) + v[-40:]
            body = repr(v)
        elif t == "list":
            n = c.call("LLEN", key)
            body = "len %d, head %r" % (n, c.call("LRANGE", key, 0, 5))
        elif t == "hash":
            body = repr(c.call("HGETALL", key))
        elif t == "zset":
            body = repr(c.call("ZRANGE", key, 0, -1, "WITHSCORES"))
        elif t == "set":
            m = sorted(c.call("SMEMBERS", key))
            body = "card %d %r" % (len(m), m[:12])
        else:
            body = ""
        return "%s %s, pexpiretime %s" % (t, body, ttl)
    except (RespError, OSError) as e:
        return "(could not read: %s)" % e


class Checker:
    def __init__(self, args, source, replica, dest, cluster, rs, load, log, recorder):
        self.args, self.source, self.replica, self.dest = args, source, replica, dest
        self.recorder = recorder
        self.mark = 0  # ringsync's log lines before the last check that passed
        self.cluster, self.rs, self.load, self.log = cluster, rs, load, log
        self.margin_ms = args.expiry_margin * 1000
        self.checks = 0
        self.keys_compared = 0
        self.bad = collections.Counter()   # missing / extra / differing / expiry
        self.failed_checks = 0

    def offsets(self):
        """(source master_repl_offset, [ringsync's offsets], replica's offset)."""
        with self.source.client(timeout_s=10) as c:
            info = c.info("replication")
        master = int(info["master_repl_offset"])
        rs = []
        for k, v in info.items():
            if k.startswith("slave") and k[5:].isdigit():
                f = dict(p.split("=", 1) for p in v.split(","))
                if f.get("port") == "0" and f.get("state") == "online":
                    rs.append(int(f["offset"]))
        with self.replica.client(timeout_s=10) as c:
            rinfo = c.info("replication")
        return master, rs, int(rinfo.get("master_repl_offset", -1)), rinfo.get("master_link_status")

    def wait_caught_up(self, target):
        deadline = time.monotonic() + self.args.check_timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.offsets()
                _, rs, rep, _ = last
                if rs and min(rs) >= target and rep >= target:
                    return last
            except (OSError, RespError) as e:
                last = ("error", str(e))
            time.sleep(0.05)
        raise Failure("CHECK TIMEOUT: after %d s, not every consumer reached the source's offset "
                      "%d: (source offset, ringsync's, replica's, replica link) = %r; ringsync's "
                      "last lines:\n    %s" % (self.args.check_timeout, target, last,
                                               "\n    ".join(self.rs.tail(60))))

    def dest_shards(self):
        """[(label, client factory, db)] where the destination's keys are."""
        if self.cluster:
            return [("node %d" % n.port, n.client, 0) for n in self.dest.nodes]
        return [("db %d" % db, self.dest.client, db) for db in range(self.args.dbs)]

    def compare(self):
        """Returns (keys compared, [problem lines])."""
        problems = []
        compared = 0
        dbs = [0] if self.cluster else range(self.args.dbs)
        for db in dbs:
            with self.replica.client(timeout_s=60) as rc:
                rc.call("SELECT", db)
                rkeys = scan_keys(rc)
                if self.cluster:
                    from cluster import key_slot
                    dkeys_at = {}
                    for node in self.dest.nodes:
                        with node.client(timeout_s=60) as nc:
                            for k in scan_keys(nc):
                                dkeys_at[k] = node
                    dkeys = set(dkeys_at)
                else:
                    with self.dest.client(timeout_s=60) as dc:
                        dc.call("SELECT", db)
                        dkeys = scan_keys(dc)
                allk = rkeys | dkeys
                compared += len(allk)
                rdig = digests(rc, allk)
                if self.cluster:
                    ddig, by_node = {}, collections.defaultdict(list)
                    for k in allk:
                        by_node[dkeys_at.get(k) or self.dest.node_for_slot(key_slot(k))].append(k)
                    for node, ks in by_node.items():
                        with node.client(timeout_s=60) as nc:
                            ddig.update(digests(nc, ks))
                else:
                    with self.dest.client(timeout_s=60) as dc:
                        dc.call("SELECT", db)
                        ddig = digests(dc, allk)
                bad = []
                for k in sorted(allk):
                    (rd, rt), (dd, dt) = rdig[k], ddig[k]
                    if rd == ZERO_DIGEST and dd != ZERO_DIGEST:
                        bad.append(("extra", k))
                    elif dd == ZERO_DIGEST and rd != ZERO_DIGEST:
                        bad.append(("missing", k))
                    elif rd != dd:
                        bad.append(("differing", k))
                    elif self.args.ttl_check != "off" and rt > 0 and dt > 0 and \
                            abs(dt - rt) > 2 and abs(dt - rt - self.margin_ms) > 2:
                        bad.append(("expiry", k))
                for kind, _ in bad:
                    self.bad[kind] += 1
                off = [k for kind, k in bad if kind == "expiry"]
                if off:
                    drift = collections.Counter(
                        round((ddig[k][1] - rdig[k][1]) / 1000.0) for k in off)
                    text = "db %d: %d keys' expiries are neither the replica's nor the " \
                        "replica's + the margin (%d s); destination - replica, seconds: %s" % (
                            db, len(off), self.args.expiry_margin, ", ".join(
                                "%+d x%d" % kv for kv in sorted(drift.items())))
                    if self.args.ttl_check == "warn":
                        self.log("warning (--ttl-check warn): " + text)
                        bad = [b for b in bad if b[0] != "expiry"]
                    else:
                        problems.append(text)
                order = {"missing": 0, "extra": 1, "differing": 2, "expiry": 3}
                bad.sort(key=lambda b: (order[b[0]], b[1]))
                if bad:
                    problems.append("db %d: %s; keys: %s" % (
                        db, ", ".join("%s %d" % kv for kv in sorted(
                            collections.Counter(b[0] for b in bad).items())),
                        " ".join("%s:%s" % (kind, k.decode(errors="replace"))
                                 for kind, k in bad[:500])))
                described = [b for b in bad if b[0] != "expiry"][:self.args.report_keys]
                described += [b for b in bad if b[0] == "expiry"][:3]
                for kind, k in described:
                    rt, dt = rdig[k][1], ddig[k][1]
                    extra = ""
                    if kind == "expiry":
                        extra = " (destination - replica = %+.3f s; margin %d s)" % (
                            (dt - rt) / 1000.0, self.args.expiry_margin)
                    with self.replica.client(timeout_s=10) as rc2:
                        rc2.call("SELECT", db)
                        rdesc = describe(rc2, k)
                    if self.cluster:
                        node = dkeys_at.get(k) or self.dest.node_for_slot(key_slot(k))
                        with node.client(timeout_s=10) as dc2:
                            ddesc = describe(dc2, k)
                    else:
                        with self.dest.client(timeout_s=10) as dc2:
                            dc2.call("SELECT", db)
                            ddesc = describe(dc2, k)
                    problems.append("%s key db %d %r%s\n        replica:     %s\n"
                                    "        destination: %s" % (kind.upper(), db, k, extra,
                                                                 rdesc, ddesc))
                    if self.recorder is not None:
                        hist = self.recorder.history(db, k)
                        problems.append("      its last %d commands in the source's stream "
                                        "(end offset, db, tx, command):\n        %s" % (
                                            len(hist), "\n        ".join(hist)))
                if len(bad) > len(described):
                    problems.append("... and %d more in db %d, not described" % (
                        len(bad) - len(described), db))
        return compared, problems

    def run(self, why):
        self.checks += 1
        n = self.checks
        t0 = time.monotonic()
        self.load.pause()
        try:
            with self.source.client(timeout_s=10) as c:
                target = int(c.info("replication")["master_repl_offset"])
            master, rs, rep, _ = self.wait_caught_up(target)
            waited = time.monotonic() - t0
            if self.recorder is not None:  # its history of a key must reach M too
                deadline = time.monotonic() + 5
                while self.recorder.offset < target and time.monotonic() < deadline:
                    time.sleep(0.02)
            compared, problems = self.compare()
            self.keys_compared += compared
            took = time.monotonic() - t0
            if problems:
                self.failed_checks += 1
                self.log("CHECK %d (%s) FAILED: source offset %d, ringsync %s, replica %d; "
                         "%d keys compared in %.2f s (caught up in %.2f s):\n    %s" % (
                             n, why, target, rs, rep, compared, took, waited,
                             "\n    ".join(problems)))
                self.log("ringsync's lines since the last check that passed:\n    %s" %
                         "\n    ".join(self.rs.since(self.mark)))
                self.mark = self.rs.nlines
                return False
            self.mark = self.rs.nlines
            self.log("check %d (%s): equal, %d keys; source offset %d, ringsync %s, replica %d; "
                     "caught up in %.2f s, %.2f s in all" % (n, why, compared, target, rs, rep,
                                                             waited, took))
            return True
        finally:
            self.load.resume()


# --- the run -----------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="ringsync-soak-")
        self.log = Log(os.path.join(self.work, "soak.log"))
        self.servers = ServerSet()
        self.source = self.replica = self.dest = None
        self.rs = self.load = self.checker = self.recorder = None
        self.source_stopped = False
        self.faults = collections.Counter()
        self.nfaults = 0
        self.fault_errors = 0
        self.fault_log = collections.deque(maxlen=30)
        self.failures = []

    def uri(self, port):
        return "redis://%s:%d" % (HOST, port)

    def setup(self):
        a = self.args
        self.source = self.servers.start("soak-source", SOURCE_ARGS + [
            "--repl-backlog-size", a.backlog, "--repl-ping-replica-period", "1"])
        self.log("source redis-server pid %d on port %d (%s)" % (
            self.source.proc.pid, self.source.port, self.source.dir))
        self.replica = self.servers.start("soak-replica", [
            "--replicaof", HOST, str(self.source.port), "--repl-backlog-size", "64mb"])
        self.log("native replica (the oracle) pid %d on port %d" % (
            self.replica.proc.pid, self.replica.port))
        if not a.no_record:
            self.recorder = StreamRecorder(self.replica.port,
                                           os.path.join(self.work, "stream.log"), self.log)
            self.recorder.start()
            deadline = time.monotonic() + 30
            while self.recorder.offset < 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.recorder.offset < 0:
                raise Failure("the stream recorder did not attach to the replica in 30 s")
        if a.cluster:
            self.dest = self.servers.start_cluster("soak-dest", 3)
            self.log("destination: %s" % self.dest.describe())
        else:
            d = DurableServer("soak-dest", ["--appendonly", "yes", "--appendfsync", "everysec"],
                              self.servers.redis_server)
            self.servers.servers.append(d)
            d.start()
            self.dest = d
            self.log("destination redis-server pid %d on port %d (AOF, %s)" % (
                d.proc.pid, d.port, d.dir))
        # a first data set, so that the first start is a full sync of something
        load = Load(self.source.port, a.seed + 1, a.rate, a.keys, a.dbs)
        with self.source.client() as c:
            for db in range(a.dbs):
                cmds = [("SELECT", db)] + [load.command() for _ in range(a.keys * 4)]
                c.pipeline(cmds)
            c.call("SELECT", 0)
        self.load = Load(self.source.port, a.seed + 2, a.rate, a.keys, a.dbs)
        cmd = [a.ringsync, "sync", "--source", self.uri(self.source.port),
               "--target", self.uri(self.dest.port), "--source-timeout", str(a.source_timeout)]
        if a.cluster:
            cmd += ["--checkpoint", "target"]
        if a.expiry_margin_given:
            cmd += ["--expiry-margin", str(a.expiry_margin)]
        cmd += a.ringsync_args.split()
        self.rs = Ringsync(cmd, os.path.join(self.work, "ringsync.log"),
                           random.Random(a.seed + 3), self.log)
        self.checker = Checker(a, self.source, self.replica, self.dest, a.cluster, self.rs,
                               self.load, self.log, self.recorder)
        self.rs.start()
        self.load.start()

    # --- faults ---

    def dest_clients(self):
        if self.args.cluster:
            return [n.client(timeout_s=10) for n in self.dest.nodes]
        return [self.dest.client(timeout_s=10)]

    def fault(self, kind):
        r = self.rng
        if kind == "kill9_ringsync":
            delay = r.uniform(0, 1)
            pid = self.rs.kill9(delay)
            return "pid %s, restarted after %.2f s" % (pid, delay) if pid else "not running"
        if kind == "sigint_ringsync":
            pid, rc, el = self.rs.sigint(self.args.stop_timeout)
            if pid is None:
                return "not running"
            return "pid %d exited %d after %.2f s, restarted" % (pid, rc, el)
        if kind == "kill_source_replicas":
            with self.source.client(timeout_s=10) as c:
                n = c.call("CLIENT", "KILL", "TYPE", "replica")
            return "%d replica links closed" % n
        if kind == "kill_dest_clients":
            n = 0
            for c in self.dest_clients():
                with c:
                    n += c.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            return "%d destination connections closed" % n
        if kind == "stop_source":
            d = r.uniform(0.5, 3)
            os.kill(self.source.proc.pid, signal.SIGSTOP)
            self.source_stopped = True
            try:
                time.sleep(d)
            finally:
                os.kill(self.source.proc.pid, signal.SIGCONT)
                self.source_stopped = False
            return "SIGSTOP for %.2f s" % d
        if kind == "restart_dest":
            d = r.uniform(0, 1)
            pid = self.dest.proc.pid
            self.dest.kill9()
            time.sleep(d)
            t0 = time.monotonic()
            self.dest.restart()
            return "pid %d killed, restarted after %.2f s as pid %d (AOF loaded in %.2f s)" % (
                pid, d, self.dest.proc.pid, time.monotonic() - t0)
        if kind == "replicaof_flip":
            d = r.uniform(0.1, 2)
            with self.source.client(timeout_s=10) as c:
                c.call("REPLICAOF", HOST, 1)
                time.sleep(d)
                c.call("REPLICAOF", "NO", "ONE")
                replid = c.info("replication").get("master_replid")
            return "replica of %s:1 for %.2f s, then NO ONE: replid %s" % (HOST, d, replid)
        raise ValueError(kind)

    def run(self):
        a = self.args
        kinds = [k for k in FAULTS if k not in a.skip_fault and
                 not (a.cluster and k in CLUSTER_SKIPS)]
        t_end = time.monotonic() + a.duration if a.duration else None
        self.t0 = time.monotonic()
        ok = True
        while True:
            if a.faults and self.nfaults >= a.faults:
                break
            wait = self.rng.uniform(0.5, 3)
            if t_end is not None and time.monotonic() + wait >= t_end:
                time.sleep(max(0, t_end - time.monotonic()))
                break
            time.sleep(wait)
            kind = self.rng.choice(kinds)
            self.nfaults += 1
            t = time.monotonic()
            self.rs.line("=== fault #%d %s" % (self.nfaults, kind))
            try:
                what = self.fault(kind)
            except (OSError, RespError) as e:  # the harness's own call failed: say so, go on
                what = "the soak's call failed: %s" % e
                self.fault_errors += 1
            self.faults[kind] += 1
            line = "fault #%d %s: %s (%.2f s)" % (self.nfaults, kind, what, time.monotonic() - t)
            self.fault_log.append("[%s] %s" % (self.log.stamp(), line))
            self.log(line)
            if self.rs.crashes:
                raise Failure("CRASH: ringsync died of signal %d; its last lines:\n    %s" % (
                    -self.rs.crashes[0][0], "\n    ".join(self.rs.crashes[0][1])))
            if a.check_every and self.nfaults % a.check_every == 0:
                if not self.checker.run("after fault #%d" % self.nfaults):
                    ok = False
                    self.report_context()
                    if not a.keep_going:
                        return False
        if not self.checker.run("final"):
            ok = False
            self.report_context()
        if self.rs.crashes:
            raise Failure("CRASH: ringsync died of signal %d" % -self.rs.crashes[0][0])
        return ok

    def report_context(self):
        self.log("the faults before it:\n    %s\nringsync's last lines:\n    %s" % (
            "\n    ".join(list(self.fault_log)[-12:]), "\n    ".join(self.rs.tail(60))))

    def summary(self, ok, interrupted=False):
        a = self.args
        el = time.monotonic() - self.t0 if hasattr(self, "t0") else 0
        c = self.checker
        bad = c.bad if c else collections.Counter()
        lost = bad["missing"] + bad["extra"] + bad["differing"]
        rs = self.rs
        own = ", ".join("status %d x%d" % kv for kv in sorted(rs.own_exits.items())) if rs else ""
        line = ("soak seed %d%s: %d faults (%s); %d checks (%d failed), %d keys compared; "
                "%d lost/doubled keys (missing %d, extra %d, differing %d), %d expiry-off keys; "
                "ringsync started %d times (%s); %d writes (%d refused, %d reconnects); "
                "%.0f s: %s" % (
                    a.seed, " cluster" if a.cluster else "", self.nfaults,
                    ", ".join("%s %d" % (k, self.faults[k]) for k in FAULTS if self.faults[k]),
                    c.checks if c else 0, c.failed_checks if c else 0,
                    c.keys_compared if c else 0, lost, bad["missing"], bad["extra"],
                    bad["differing"], bad["expiry"], rs.starts if rs else 0,
                    "exits on its own: " + own if own else "no exits on its own",
                    self.load.sent if self.load else 0,
                    sum(self.load.errors.values()) if self.load else 0,
                    self.load.conn_errors if self.load else 0, el,
                    "INTERRUPTED" if interrupted else ("PASS" if ok else "FAIL")))
        if rs and rs.sigint_status:
            self.log("SIGINT exit statuses: %s" % ", ".join(
                "%d x%d" % kv for kv in sorted(rs.sigint_status.items())))
        if self.load and self.load.errors:
            self.log("load error replies: %s" % dict(self.load.errors))
        self.log(line)
        return line

    def teardown(self, keep):
        if self.load:
            self.load.stop_flag.set()
            self.load.resumed.set()
        if self.rs:
            self.rs.shutdown()
        if self.recorder:
            self.recorder.stop_flag.set()
            self.recorder.join(timeout=5)
        if self.source is not None and self.source.proc is not None:
            try:
                os.kill(self.source.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.servers.stop_all()
        if self.load:
            self.load.join(timeout=5)
        self.log.close()
        if keep:
            print("logs kept in %s (soak.log, ringsync.log, stream.log)" % self.work, flush=True)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/soak.py",
        description="ringsync sync under hundreds of random faults, checked key by key "
                    "against a native replica (bench/README.md, Soak)")
    p.add_argument("--duration", type=float, help="seconds of faults (default 60 unless --faults)")
    p.add_argument("--faults", type=int, help="stop after this many faults")
    p.add_argument("--seed", type=int, help="the random seed (printed; default: from the clock)")
    p.add_argument("--check-every", type=int, default=20, metavar="K",
                   help="compare after every K faults (default 20; 0: only at the end)")
    p.add_argument("--ringsync", default=DEFAULT_RINGSYNC, help="the binary (default %(default)s)")
    p.add_argument("--ringsync-args", default="", help="more `ringsync sync` arguments")
    p.add_argument("--cluster", action="store_true",
                   help="a 3-master cluster destination (--checkpoint target; no restart_dest)")
    p.add_argument("--rate", type=int, default=3000, help="load, commands/s (default 3000)")
    p.add_argument("--keys", type=int, default=500, help="keys per kind and db (default 500)")
    p.add_argument("--dbs", type=int, help="databases written (default 2; 1 with --cluster)")
    p.add_argument("--backlog", default="512mb", help="the source's repl-backlog-size")
    p.add_argument("--source-timeout", type=float, default=1,
                   help="ringsync's --source-timeout (default 1)")
    p.add_argument("--expiry-margin", type=int,
                   help="ringsync's --expiry-margin, seconds (default: ringsync's, 3600)")
    p.add_argument("--skip-fault", action="append", default=[], choices=FAULTS,
                   help="leave a kind of fault out (repeatable)")
    p.add_argument("--check-timeout", type=int, default=120,
                   help="seconds a check waits for ringsync and the replica to catch up")
    p.add_argument("--stop-timeout", type=int, default=60,
                   help="seconds ringsync has to exit after SIGINT before it counts as a hang")
    p.add_argument("--report-keys", type=int, default=20,
                   help="differing keys described per check and db (default 20)")
    p.add_argument("--ttl-check", choices=["fail", "warn", "off"], default="fail",
                   help="a key whose expiry on the destination is neither the replica's nor "
                        "the replica's + the margin: a failed check (default), a warning, or "
                        "not looked at")
    p.add_argument("--keep-going", action="store_true", help="go on after a failed check")
    p.add_argument("--no-record", action="store_true",
                   help="no stream.log (the source's stream with offsets, from a sub-replica)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the work directory (soak.log, ringsync.log) even when it passes")
    a = p.parse_args(argv)
    if a.duration is None and a.faults is None:
        a.duration = 60
    if a.seed is None:
        a.seed = int(time.time() * 1000) % 1000000007
    if a.dbs is None:
        a.dbs = 1 if a.cluster else 2
    if a.cluster and a.dbs != 1:
        p.error("--cluster writes db 0 only")
    a.expiry_margin_given = a.expiry_margin is not None
    if a.expiry_margin is None:
        a.expiry_margin = 3600
    if not os.access(a.ringsync, os.X_OK):
        p.error("no ringsync binary at %s (build it, or pass --ringsync)" % a.ringsync)
    return a


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    soak = Soak(args)
    soak.log("ringsync soak: seed %d (repeat with --seed %d); %s; %s destination; load %d "
             "cmd/s over %d keys x %d kinds x %d db(s); a check every %d faults; binary %s" % (
                 args.seed, args.seed,
                 ("%g s" % args.duration) if args.duration else ("%d faults" % args.faults),
                 "cluster" if args.cluster else "standalone", args.rate, args.keys, len(KINDS),
                 args.dbs, args.check_every, args.ringsync))
    ok, interrupted, keep = False, False, args.keep_logs
    try:
        soak.setup()
        ok = soak.run()
    except KeyboardInterrupt:
        interrupted = True
        soak.log("interrupted: stopping every process started")
    except Failure as e:
        soak.failures.append("FAILURE: %s" % e)
        soak.log("FAILURE: %s" % e)
        soak.report_context()
    except Exception as e:  # a harness error: still stop everything, say what
        import traceback
        soak.log("soak error: %s\n%s" % (e, traceback.format_exc()))
    finally:
        try:
            soak.summary(ok, interrupted)
        except Exception as e:
            print("summary failed: %s" % e, flush=True)
        keep = keep or not ok
        soak.teardown(keep)
    if interrupted:
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
