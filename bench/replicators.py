"""replicators - the things bench/run compares, and how each one's full sync is timed.

Every replicator copies the source into a fresh, empty destination server that
bench/run started for it (see measure_full_sync in bench/run):

  ringsync   `ringsync sync --source URI --target URI --quiet --snapshot-only`
             (+ --ringsync-args; --snapshot-only when the binary has it);
             time = the process's wall time, start to exit; CPU and peak RSS
             from its own rusage (wait4).
  native     the destination itself becomes a replica: REPLICAOF, then timed
             until INFO replication says master_link_status:up and
             master_sync_in_progress:0 (snapshot received and loaded); CPU
             from its INFO cpu before/after, peak RSS its VmHWM (which
             includes the data set it now holds).
  native-diskless
             the same with repl-diskless-load on-empty-db (loads from the
             socket instead of a temporary RDB file); only when asked for.
  ringsync-nocp
             ringsync with --checkpoint none (no records in the destination):
             beside ringsync, what the checkpoints cost; only when asked for.
  ringsync-relay
             ringsync with --target-mode relay (src/RELAY.md: the destination
             replicates from ringsync, loading the snapshot from the socket);
             it ends once the destination acknowledged the snapshot and is
             promoted; only when asked for.
  NAME=CMDLINE
             any other command line, with {source_host} {source_port}
             {target_host} {target_port} {source_uri} {target_uri} {ringsync}
             {target_nodes} (host:port of every master of a cluster destination,
             comma-separated; {target_*}: its first node) replaced; its sync ends when it exits 0. With --until-synced NAME
             (a tool that keeps streaming after its full sync), it also ends
             when the destination holds the source's keys per database and the
             same DEBUG DIGEST: the tool is then stopped with SIGTERM and the
             time is taken when the key counts matched (the digest, which
             blocks the destination, is not counted). ringsync's checkpoint
             records (keys ringsync:cp:*, CHECKPOINTS.md) are not counted as
             keys, and are cleared (ringsync checkpoint clear --all) before
             that digest.

Checkpoint records: since the checkpoints, `ringsync sync` keeps its progress
in the destination (keys ringsync:cp:<job>:..., by default when it follows
the stream), so the destination holds a few keys more than the source.
bench/run clears them (clear_checkpoints) after every replicator that runs
ringsync (writes_checkpoints) has ended, before the key counts and the digest
are compared; the comparison itself stays strict.

A sync returns a dict of raw numbers; None means not measured.
"""

import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time

from resp_client import RespError, keyspace_counts, cpu_seconds

PROGRESS_INTERVAL_S = 0.025  # destination key-count samples (the progress plot)
NATIVE_POLL_S = 0.005  # INFO replication polls while a native replica syncs

RINGSYNC_CMDLINE = ("{ringsync} sync --source {source_uri} --target {target_uri} --quiet")
CHECKPOINT_PATTERN = "ringsync:cp:*"  # ringsync's checkpoint records (src/CHECKPOINTS.md)
CHECKPOINT_CLEAR_TIMEOUT_S = 300


class SyncFailed(Exception):
    """The replicator exited non-zero, or timed out; the message says which and how."""


class ProgressSampler(threading.Thread):
    """Samples the destination's key count and used_memory (INFO keyspace
    memory) over time, on its own connection, until stop(); samples are
    (seconds since t0, keys, used_memory bytes)."""

    def __init__(self, dest, t0):
        super().__init__(daemon=True)
        self.dest, self.t0 = dest, t0
        self.samples = []
        self.done = threading.Event()

    def run(self):
        try:
            with self.dest.client(timeout_s=5) as c:
                while not self.done.is_set():
                    try:
                        info = c.info("keyspace", "memory")
                        keys = sum(keyspace_counts(info).values())
                        mem = int(info.get("used_memory", 0))
                    except RespError:
                        keys = mem = None
                    self.samples.append((round(time.monotonic() - self.t0, 4), keys, mem))
                    self.done.wait(PROGRESS_INTERVAL_S)
        except OSError:
            pass

    def stop(self):
        self.done.set()
        self.join(timeout=5)
        return self.samples


# --- ringsync's summary line -------------------------------------------------

SUMMARY_FIELDS = [
    ("keys_written", r"(\d+) keys written", int),
    ("keys_restore", r"(\d+) with RESTORE", int),
    ("keys_native_commands", r"(\d+) with native commands", int),
    ("keys_expired_skipped", r"(\d+) expired", int),
    ("keys_empty_skipped", r"(\d+) empty skipped", int),
    ("function_libraries", r"(\d+) function librar", int),
    ("rdb_mb", r"([\d.]+) MB of RDB", float),
    ("rdb_version", r"RDB version (\d+)", int),
    ("seconds", r" in ([\d.]+) s", float),
    ("cpu_s", r"cpu ([\d.]+) s", float),
    ("peak_rss_mb", r"peak rss (\d+) MB", int),
]


def parse_ringsync_summary(stderr_text):
    """The numbers of ringsync's 'snapshot applied' line, or None if absent."""
    lines = [l for l in stderr_text.splitlines() if "snapshot applied" in l]
    if not lines:
        return None
    line = lines[-1]
    out = {"line": line.strip()}
    for name, pattern, conv in SUMMARY_FIELDS:
        m = re.search(pattern, line)
        if m:
            out[name] = conv(m.group(1))
    return out


# --- ringsync's checkpoint records in the destination ----------------------


def writes_checkpoints(rep):
    """Whether rep runs ringsync, which may leave checkpoint records (keys
    ringsync:cp:*) in its destination: ringsync itself, ringsync-nocp (which
    should leave none: the clear says how many it found), or a command line
    that runs {ringsync}."""
    return rep.kind == "ringsync" or (rep.kind == "command" and "{ringsync}" in rep.cmdline)


def checkpoints_off(argv):
    """Whether a ringsync argv turns the records off (its last --checkpoint is none)."""
    last = None
    for a, b in zip(argv, argv[1:]):
        if a == "--checkpoint":
            last = b
    for a in argv:
        if a.startswith("--checkpoint="):
            last = a.split("=", 1)[1]
    return last == "none"


def clear_checkpoints(ringsync, dest, timeout_s=CHECKPOINT_CLEAR_TIMEOUT_S):
    """`ringsync checkpoint clear --target redis://HOST:PORT --all` on the
    destination (a cluster: its first node; ringsync finds the others).
    Returns {"argv", "exit_code", "deleted" (None if its line was not found),
    "seconds", "stderr"}; never raises for a non-zero exit (the caller
    decides: bench/run fails the run)."""
    argv = [ringsync, "checkpoint", "clear", "--target",
            "redis://%s:%d" % (dest.host, dest.port), "--all"]
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout_s)
        code, text = r.returncode, (r.stdout + r.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        code, text = None, "timed out after %.0f s: %s" % (timeout_s, e)
    except OSError as e:
        code, text = None, "%s: %s" % (type(e).__name__, e)
    m = re.search(r"deleted (\d+) checkpoint record", text)
    return {"argv": argv, "exit_code": code, "deleted": int(m.group(1)) if m else None,
            "seconds": round(time.monotonic() - t0, 3), "stderr": text[-1000:]}


def count_checkpoints(dest, dbs):
    """{db: number of keys ringsync:cp:*} in the databases dbs of the
    destination (SCAN MATCH on every node; a cluster has db 0 only)."""
    nodes = getattr(dest, "nodes", None) or [dest]
    cluster = hasattr(dest, "nodes")
    out = {}
    for node in nodes:
        with node.client(timeout_s=60) as c:
            for db in dbs:
                if not cluster:
                    c.call("SELECT", db)
                cursor = b"0"
                while True:
                    cursor, keys = c.call("SCAN", cursor, "MATCH", CHECKPOINT_PATTERN,
                                          "COUNT", 10000)
                    out[db] = out.get(db, 0) + len(keys)
                    if cursor == b"0":
                        break
    return out


def _at_least(keys, want):
    """Whether every database holds at least the keys wanted (and some more)."""
    return (keys != want and set(want) <= set(keys) and
            all(n >= want.get(db, 0) for db, n in keys.items()))


# --- replicators -------------------------------------------------------------


class CommandReplicator:
    """A replicator run as a command line (ringsync itself, or a peer tool)."""

    kind = "command"
    dest_args = ()

    def __init__(self, name, cmdline, ringsync, stop_when_synced=False):
        self.name = name
        self.cmdline = cmdline
        self.ringsync = ringsync
        self.stop_when_synced = stop_when_synced
        self.cleared = []  # checkpoint clears while waiting (--until-synced)

    @property
    def checkpoints(self):
        """Whether it may write ringsync's checkpoint records."""
        return writes_checkpoints(self)

    def describe(self):
        return self.cmdline

    def argv(self, source, dest):
        values = {
            "source_host": source.host, "source_port": source.port,
            "target_host": dest.host, "target_port": dest.port,
            "source_uri": "redis://%s:%d" % (source.host, source.port),
            "target_uri": "redis://%s:%d" % (dest.host, dest.port),
            "ringsync": self.ringsync,
            # every master of a cluster destination (a standalone one: itself)
            "target_nodes": dest.seeds() if hasattr(dest, "seeds") else "%s:%d" % (
                dest.host, dest.port),
        }
        return [a.format(**values) for a in shlex.split(self.cmdline)]

    def sync(self, source, dest, source_state, timeout_s):
        argv = self.argv(source, dest)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.monotonic()
            sampler = ProgressSampler(dest, t0)
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
            sampler.start()
            self.cleared = []
            try:
                status, ru, t1, synced_early = self._wait(proc, dest, source_state, t0, timeout_s)
            finally:
                if proc.returncode is None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            samples = sampler.stop()
            out.seek(0)
            err.seek(0)
            stdout_text = out.read().decode(errors="replace")
            stderr_text = err.read().decode(errors="replace")
        exit_code = os.waitstatus_to_exitcode(status)
        result = {
            "argv": argv,
            "full_sync_s": round(t1 - t0, 4),
            "exit_code": exit_code,
            "stopped_when_synced": synced_early,
            "cpu_user_s": round(ru.ru_utime, 4),
            "cpu_sys_s": round(ru.ru_stime, 4),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
            "peak_rss_kb": ru.ru_maxrss,
            "summary": parse_ringsync_summary(stderr_text),
            "stderr_tail": stderr_text[-4000:],
            "stdout_tail": stdout_text[-2000:],
            "progress": samples,
        }
        if self.cleared:
            result["checkpoint_clears_while_waiting"] = self.cleared
        if exit_code != 0 and not synced_early:
            raise SyncFailed("%s exited with %d; stderr:\n%s" % (self.name, exit_code,
                                                                 stderr_text[-2000:]), result)
        return result

    def _wait(self, proc, dest, source_state, t0, timeout_s):
        """Waits for the process (or, for a peer tool that keeps running, for the
        destination to match the source). Returns (status, rusage, end time, early)."""
        deadline = t0 + timeout_s
        if not self.stop_when_synced:
            # Blocking wait4 in a helper thread, so the timeout still applies.
            box = {}

            def reap():
                try:
                    box["r"] = os.wait4(proc.pid, 0)
                    box["t"] = time.monotonic()
                except ChildProcessError:  # reaped by the cleanup of an interrupted run
                    pass

            th = threading.Thread(target=reap, daemon=True)
            th.start()
            th.join(timeout_s)
            if th.is_alive():
                proc.kill()
                th.join()
                proc.returncode = -9
                raise SyncFailed("%s timed out after %.0f s" % (self.name, timeout_s), None)
            _, status, ru = box["r"]
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, ru, box["t"], False
        next_check = 0.0
        with dest.client(timeout_s=60) as c:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                now = time.monotonic()
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    return status, ru, now, False
                if now > deadline:
                    proc.kill()
                    os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    raise SyncFailed("%s timed out after %.0f s" % (self.name, timeout_s), None)
                if now >= next_check:
                    next_check = now + 0.05
                    keys = keyspace_counts(c.info("keyspace"))
                    t1 = time.monotonic()
                    want = source_state["keys_per_db"]
                    records = {}
                    if self.checkpoints and _at_least(keys, want):
                        # ringsync's checkpoint records are not the source's keys
                        records = count_checkpoints(dest, sorted(keys))
                        keys = {db: n - records.get(db, 0) for db, n in keys.items()
                                if n - records.get(db, 0)}
                    if keys == want:
                        # The digest blocks the destination for a while: the sync
                        # was done when it started, so that is the time taken.
                        if sum(records.values()):
                            # the records would change the digest: cleared first (if
                            # ringsync writes one again before the digest, the
                            # digest differs and this is tried again in 1 s)
                            cl = clear_checkpoints(self.ringsync, dest)
                            self.cleared.append(cl)
                            if cl["exit_code"] != 0:
                                raise SyncFailed("%s: %s failed (exit %s): %s" % (
                                    self.name, " ".join(cl["argv"][:3]), cl["exit_code"],
                                    cl["stderr"]), None)
                        digest = c.call("DEBUG", "DIGEST").decode()
                        if digest == source_state["digest"]:
                            proc.send_signal(signal.SIGTERM)
                            status, ru = _reap(proc, 10)
                            return status, ru, t1, True
                        next_check = time.monotonic() + 1.0
                time.sleep(0.005)


def _reap(proc, grace_s):
    """Waits up to grace_s for a signalled process, then SIGKILLs it; returns
    (status, rusage) with the rusage it used up to its end."""
    end = time.monotonic() + grace_s
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, ru
        if time.monotonic() > end:
            proc.kill()
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, ru
        time.sleep(0.01)


def ringsync_has_option(ringsync, option):
    """Whether `ringsync sync --help` lists option (the binary grows options
    from one issue to the next)."""
    try:
        r = subprocess.run([ringsync, "sync", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option.encode() in r.stdout


class RingsyncReplicator(CommandReplicator):
    """ringsync sync; since the incremental sync landed, `sync` follows the
    stream after the snapshot, so the full-sync measurement adds
    --snapshot-only when the binary has it (the process then ends once the
    snapshot is applied, as before)."""

    kind = "ringsync"

    def __init__(self, ringsync, extra_args="", name="ringsync"):
        cmdline = RINGSYNC_CMDLINE
        if ringsync_has_option(ringsync, "--snapshot-only") and "--snapshot-only" not in extra_args:
            cmdline += " --snapshot-only"
        cmdline += (" " + extra_args) if extra_args else ""
        super().__init__(name, cmdline, ringsync, stop_when_synced=False)


class NativeReplicator:
    """Redis's own replica: the destination server runs REPLICAOF."""

    kind = "native"

    def __init__(self, name="native", diskless_load=None):
        self.name = name
        self.dest_args = (["--repl-diskless-load", diskless_load] if diskless_load else [])

    def describe(self):
        return "redis-server replica (REPLICAOF)%s" % (
            " " + " ".join(self.dest_args) if self.dest_args else "")

    def sync(self, source, dest, source_state, timeout_s):
        with dest.client(timeout_s=60) as c:
            cpu0, _ = cpu_seconds(c.info("cpu"))
            t0 = time.monotonic()
            sampler = ProgressSampler(dest, t0)
            c.call("REPLICAOF", source.host, source.port)
            sampler.start()
            deadline = t0 + timeout_s
            try:
                while True:
                    info = c.info("replication")
                    if (info.get("master_link_status") == "up" and
                            info.get("master_sync_in_progress") == "0"):
                        t1 = time.monotonic()
                        break
                    if time.monotonic() > deadline:
                        raise SyncFailed("native replica not in sync after %.0f s" % timeout_s,
                                         None)
                    time.sleep(NATIVE_POLL_S)
            finally:
                samples = sampler.stop()
            cpu1, _ = cpu_seconds(c.info("cpu"))
            used_memory_peak = int(c.info("memory").get("used_memory_peak", 0))
        return {
            "argv": ["REPLICAOF", source.host, str(source.port)] + list(self.dest_args),
            "full_sync_s": round(t1 - t0, 4),
            "exit_code": None,
            "stopped_when_synced": False,
            "cpu_s": round(cpu1 - cpu0, 4),
            "cpu_user_s": None,
            "cpu_sys_s": None,
            "peak_rss_kb": dest.peak_rss_kb(),
            "summary": None,
            "progress": samples,
            "used_memory_peak": used_memory_peak,
        }


BUILTINS = ("native-diskless", "ringsync-nocp", "ringsync-relay")


def builtin(name, ringsync=None, ringsync_args=""):
    """The replicators that need no command line (ringsync-nocp: ringsync
    with its --ringsync-args and --checkpoint none; ringsync-relay: with
    --target-mode relay)."""
    if name == "native":
        return NativeReplicator()
    if name == "native-diskless":
        return NativeReplicator("native-diskless", diskless_load="on-empty-db")
    if name == "ringsync-nocp" and ringsync:
        return RingsyncReplicator(ringsync, ((ringsync_args + " ") if ringsync_args else "") +
                                  "--checkpoint none", name="ringsync-nocp")
    if name == "ringsync-relay" and ringsync:
        return RingsyncReplicator(ringsync, ((ringsync_args + " ") if ringsync_args else "") +
                                  "--target-mode relay", name="ringsync-relay")
    return None


# --- catch-up (the incremental sync) -----------------------------------------
#
# catch_up(rep, source, dest, state, send_backlog, timeout_s): a full sync,
# then the consumer is paused (SIGSTOP) while send_backlog() writes the
# scenario's backlog into the source, the source's master_repl_offset is
# recorded, the consumer resumed (SIGCONT), and the time taken until the
# consumer's offset reaches it (polled every CATCH_UP_POLL_S):
#   ringsync  the offset it acknowledges (REPLCONF ACK, every 100 ms), read
#             from the source's INFO replication slave line with its
#             --listening-port; CPU from /proc/PID/stat (all threads) over the
#             catch-up, total CPU and peak RSS from wait4 after SIGINT.
#   native    the replica's own slave_repl_offset (INFO replication); its
#             redis-server process is the one paused; CPU from its INFO cpu.

CATCH_UP_POLL_S = 0.005
RINGSYNC_ACK_INTERVAL_S = 0.1  # ringsync's REPLCONF ACK period
SOURCE_OBL = "replica 1gb 1gb 0"  # a paused consumer must not be dropped


def source_repl_offset(source):
    with source.client() as c:
        return int(c.info("replication")["master_repl_offset"])


def _slave_offset(info, port):
    """The offset=... of the source's slaveN line whose port= is port, or None."""
    for k, v in info.items():
        if k.startswith("slave") and k[5:].isdigit():
            f = dict(p.split("=", 1) for p in v.split(",") if "=" in p)
            if f.get("port") == str(port):
                return int(f.get("offset", -1)), f.get("state")
    return None, None


def _proc_cpu_s(pid):
    """user+sys CPU seconds of a live process, all its threads (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thin(series):
    """The (t, offset) samples where the offset changed (and the last one)."""
    out = [p for i, p in enumerate(series) if i == 0 or p[1] != series[i - 1][1]]
    if series and out[-1] is not series[-1]:
        out.append(series[-1])
    return out


def _catch_up_result(commands, seconds, cpu_s, dest_cpu_s, m_off, backlog_info):
    out = {"seconds": round(seconds, 4), "commands": commands,
           "rate_cmd_s": round(commands / seconds, 1) if seconds > 0 else None,
           "cpu_s": round(cpu_s, 4) if cpu_s is not None else None,
           "ns_per_command": round(cpu_s / commands * 1e9, 1) if cpu_s is not None else None,
           "dest_cpu_s": round(dest_cpu_s, 4) if dest_cpu_s is not None else None,
           "source_offset": m_off}
    out.update(backlog_info)
    return out


def ringsync_follow(rep, source, dest, timeout_s, listening_port, phase):
    """Starts ringsync following the source (`sync` without --snapshot-only,
    with --listening-port so the source's slaveN line is told apart), waits
    for "snapshot applied" on its stderr (the full-sync time) and for the
    source to list it online with everything acknowledged, then runs
    phase(proc, result, deadline) (the catch-up, or the steady load) and
    stops it with SIGINT. Returns the result dict: the full-sync numbers,
    whatever phase returned merged in, its whole life's rusage."""
    argv = rep.argv(source, dest)
    argv = [a for a in argv if a != "--snapshot-only"] + ["--listening-port", str(listening_port)]
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as err:
        t0 = time.monotonic()
        sampler = ProgressSampler(dest, t0)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        sampler.start()
        proc.stopped = False  # SIGSTOPped by the phase (a catch-up)
        proc.err_path = err.name  # for _exit_reason
        result = {"argv": argv, "exit_code": None, "stopped_when_synced": False,
                  "listening_port": listening_port}
        try:
            # 1. The snapshot: until "snapshot applied" on its stderr.
            deadline = t0 + timeout_s
            while True:
                with open(err.name, "rb") as f:
                    text = f.read()
                if b"snapshot applied" in text:
                    t1 = time.monotonic()
                    break
                if proc.poll() is not None:
                    raise SyncFailed("%s exited with %d before its snapshot was applied; "
                                     "stderr:\n%s" % (rep.name, proc.returncode,
                                                      text[-2000:].decode(errors="replace")),
                                     result)
                if time.monotonic() > deadline:
                    raise SyncFailed("%s: no 'snapshot applied' after %.0f s" % (
                        rep.name, timeout_s), result)
                time.sleep(CATCH_UP_POLL_S)
            result["full_sync_s"] = round(t1 - t0, 4)
            cpu_snapshot = _proc_cpu_s(proc.pid)
            result["progress"] = sampler.stop()
            # The source must see it as an online replica that acknowledged
            # everything so far before the phase.
            m0 = source_repl_offset(source)
            with source.client() as sc:
                while True:
                    off, st = _slave_offset(sc.info("replication"), listening_port)
                    if st == "online" and off is not None and off >= m0:
                        break
                    if time.monotonic() > deadline:
                        raise SyncFailed("%s: the source never listed port %d online" % (
                            rep.name, listening_port), result)
                    time.sleep(CATCH_UP_POLL_S)
            # 2. The phase.
            result.update(phase(proc, result, deadline))
            # 3. Stop it; its whole life's rusage.
            proc.send_signal(signal.SIGINT)
            status, ru = _reap(proc, 10)
            result["exit_code"] = os.waitstatus_to_exitcode(status)
        finally:
            if proc.stopped and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if sampler.is_alive():
                result["progress"] = sampler.stop()
            out.seek(0)
            with open(err.name, "rb") as f:
                stderr_text = f.read().decode(errors="replace")
            result["stderr_tail"] = stderr_text[-4000:]
            result["stdout_tail"] = out.read().decode(errors="replace")[-2000:]
    result.update({
        "cpu_user_s": round(ru.ru_utime, 4),
        "cpu_sys_s": round(ru.ru_stime, 4),
        # cpu_s: up to "snapshot applied" (/proc/PID/stat, 10 ms ticks), as for a
        # full sync; cpu_life_s: its whole life, snapshot + phase (wait4).
        "cpu_s": round(cpu_snapshot, 4),
        "cpu_life_s": round(ru.ru_utime + ru.ru_stime, 4),
        "peak_rss_kb": ru.ru_maxrss,
        "summary": parse_ringsync_summary(stderr_text),
    })
    if result["exit_code"] not in (0, -signal.SIGINT, 130):
        raise SyncFailed("%s exited with %d after SIGINT; stderr:\n%s" % (
            rep.name, result["exit_code"], stderr_text[-2000:]), result)
    return result


def _exit_reason(proc):
    """Why a followed ringsync ended early, from its stderr: its last line, and
    a word when it says it was stopped by a signal the harness did not send
    (the harness sends SIGINT only after the phase; another program on the
    machine that signals processes by name, e.g. kill -INT $(pgrep ringsync),
    ends it cleanly in the middle)."""
    try:
        with open(proc.err_path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
    except (AttributeError, OSError):
        return ""
    stop = [l for l in lines if "stopped by SIG" in l]
    out = ": " + (stop[-1] if stop else lines[-1] if lines else "no stderr").strip()
    if stop:
        out += " (not sent by bench/run: another process signalled it)"
    return out


def ringsync_catch_up(rep, source, dest, source_state, send_backlog, timeout_s, listening_port):
    def phase(proc, result, deadline):
        # Pause, the backlog, resume, until its acknowledged offset reaches the source's.
        os.kill(proc.pid, signal.SIGSTOP)
        proc.stopped = True
        backlog_info = send_backlog()
        m_off = source_repl_offset(source)
        cpu0 = _proc_cpu_s(proc.pid)
        with dest.client() as dc:
            dest0, _ = cpu_seconds(dc.info("cpu"))
        with source.client() as sc:
            t2 = time.monotonic()
            os.kill(proc.pid, signal.SIGCONT)
            proc.stopped = False
            deadline = t2 + timeout_s
            series = []
            while True:
                off, st = _slave_offset(sc.info("replication"), listening_port)
                series.append((round(time.monotonic() - t2, 4), off))
                if off is not None and off >= m_off:
                    t3 = time.monotonic()
                    break
                if proc.poll() is not None:
                    raise SyncFailed("%s exited with %d during the catch-up%s" % (
                        rep.name, proc.returncode, _exit_reason(proc)), result)
                if time.monotonic() > deadline:
                    raise SyncFailed("%s: offset %s < %d after %.0f s of catch-up" % (
                        rep.name, off, m_off, timeout_s), result)
                time.sleep(CATCH_UP_POLL_S)
        cpu1 = _proc_cpu_s(proc.pid)
        with dest.client() as dc:
            dest1, _ = cpu_seconds(dc.info("cpu"))
        cu = _catch_up_result(backlog_info["commands"], t3 - t2, cpu1 - cpu0, dest1 - dest0,
                              m_off, backlog_info)
        cu["offset_series"] = _thin(series)
        # It acknowledges every ACK_INTERVAL_S at most: it was done somewhere
        # between the last acknowledgement short of m_off and the first one past it.
        before = [t for t, o in _thin(series) if o is not None and o < m_off]
        cu["seconds_lower_bound"] = round(before[-1], 4) if before else 0.0
        cu["ack_interval_s"] = RINGSYNC_ACK_INTERVAL_S
        return {"catch_up": cu}

    return ringsync_follow(rep, source, dest, timeout_s, listening_port, phase)


def native_follow(rep, source, dest, source_state, timeout_s, phase):
    """The native replica's full sync (NativeReplicator.sync), a wait until
    its offset is the source's, then phase(client, pid, result) on a
    connection to the replica (pid: its redis-server process). Returns the
    full sync's result with what phase returned merged in."""
    result = rep.sync(source, dest, source_state, timeout_s)
    with dest.client(timeout_s=60) as c:
        pid = int(c.info("server")["process_id"])
        # Wait for the replica's offset to settle at the source's (nothing is written).
        m0 = source_repl_offset(source)
        end = time.monotonic() + 30
        while int(c.info("replication").get("slave_repl_offset", -1)) < m0:
            if time.monotonic() > end:
                raise SyncFailed("native replica's offset never reached %d" % m0, result)
            time.sleep(CATCH_UP_POLL_S)
        result.update(phase(c, pid, result))
    return result


def native_catch_up(rep, source, dest, source_state, send_backlog, timeout_s):
    def phase(c, pid, result):
        cpu0, _ = cpu_seconds(c.info("cpu"))
        os.kill(pid, signal.SIGSTOP)
        try:
            backlog_info = send_backlog()
            m_off = source_repl_offset(source)
        finally:
            t2 = time.monotonic()
            os.kill(pid, signal.SIGCONT)
        deadline = t2 + timeout_s
        series = []
        while True:
            off = int(c.info("replication").get("slave_repl_offset", -1))
            series.append((round(time.monotonic() - t2, 4), off))
            if off >= m_off:
                t3 = time.monotonic()
                break
            if time.monotonic() > deadline:
                raise SyncFailed("native replica: offset %d < %d after %.0f s of catch-up" % (
                    off, m_off, timeout_s), result)
            time.sleep(CATCH_UP_POLL_S)
        cpu1, _ = cpu_seconds(c.info("cpu"))
        # The replica is the destination: its CPU is the applying too.
        cu = _catch_up_result(backlog_info["commands"], t3 - t2, cpu1 - cpu0, cpu1 - cpu0,
                              m_off, backlog_info)
        cu["offset_series"] = _thin(series)
        return {"catch_up": cu,
                "cpu_life_s": round(result["cpu_s"] + cpu1 - cpu0, 4)}  # snapshot + catch-up

    return native_follow(rep, source, dest, source_state, timeout_s, phase)


# --- lag under a steady load -------------------------------------------------
#
# ringsync_lag / native_lag: a full sync as for the catch-up, then the steady
# load (bench_loadgen, started by steady.start_load()) while one sampler loop
# reads, every steady.interval_s, on persistent connections:
#   the source's master_repl_offset (INFO replication on the source), and the
#   consumer's applied offset:
#     ringsync  the offset= of its slaveN line in a second INFO reply of the
#               source, right after the first (what it acknowledges with
#               REPLCONF ACK);
#     native    the replica's own slave_repl_offset (INFO replication on it,
#               right after the source's).
# Each sample's time is the middle of its request (time.monotonic()).
# Lag of a source sample (ts, s): the time of the first consumer sample at or
# after ts whose offset is >= s, minus ts: how long the writes the source had
# taken by ts waited until the consumer had applied them. See lag_stats.

LAG_DRAIN_S = 30.0  # after the load: how long the consumer may take to reach the source
LAG_SERIES_BIN_S = 0.01  # lag_series: the largest lag per bin
RATE_SERIES_BIN_S = 0.1  # throughput_series: offset rates per bin

_MASTER_OFFSET_RE = re.compile(rb"master_repl_offset:(\d+)")
_SLAVE_REPL_OFFSET_RE = re.compile(rb"slave_repl_offset:(\d+)")


def _percentile(sorted_values, q):
    """Nearest-rank percentile (q in 0..1) of an ascending list, or None."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]


def parse_loadgen(text):
    """bench_loadgen's key=value line -> dict of numbers."""
    out = {}
    for item in text.split():
        k, eq, v = item.partition("=")
        if eq:
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = float(v)
    return out


def lag_stats(src, con, t_start, t_end, skip_s):
    """Lag figures from the samples: src = [(ts, source offset)], con = [(tc,
    consumer offset)], both in time order (offsets never go down). Counted:
    the source samples with t_start + skip_s <= ts <= t_end (the steady part).

    lag(ts, s) = tc - ts for the first consumer sample (tc, c) with tc >= ts
    and c >= s: an upper bound of how long the last write the source had
    taken by ts took to be applied (it was applied between the consumer's
    sample before and tc), late by up to one sample interval (plus, for
    ringsync, its ACK delay). interp_*: the same with the moment the consumer
    passed s interpolated linearly between its two samples around it.
    A source sample the consumer never reached counts with the last sample's
    time (a lower bound) and in unresolved."""
    lags, interp, unresolved = [], [], 0
    j = 0
    for ts, s in src:
        if ts < t_start + skip_s or ts > t_end:
            continue
        while j < len(con) and (con[j][0] < ts or con[j][1] < s):
            j += 1
        if j == len(con):
            unresolved += 1
            lags.append((ts, max(0.0, con[-1][0] - ts)))
            interp.append(lags[-1][1])
            continue
        tc, c = con[j]
        lags.append((ts, tc - ts))
        t_cross = tc
        if j > 0:
            tp, cp = con[j - 1]
            if cp < s and c > cp:
                t_cross = tp + (s - cp) / (c - cp) * (tc - tp)
        interp.append(max(0.0, t_cross - ts))
    values = sorted(v for _, v in lags)
    interp.sort()
    ms = lambda v: None if v is None else round(v * 1e3, 3)  # noqa: E731
    out = {
        "p50_ms": ms(_percentile(values, 0.50)),
        "p90_ms": ms(_percentile(values, 0.90)),
        "p99_ms": ms(_percentile(values, 0.99)),
        "p999_ms": ms(_percentile(values, 0.999)),
        "max_ms": ms(values[-1] if values else None),
        "mean_ms": ms(sum(values) / len(values) if values else None),
        "interp_p50_ms": ms(_percentile(interp, 0.50)),
        "interp_p99_ms": ms(_percentile(interp, 0.99)),
        "interp_max_ms": ms(interp[-1] if interp else None),
        "samples": len(values),
        "unresolved": unresolved,
    }
    return out, lags


def _binned_max(points, t0, width):
    """[(t - t0, largest v in the bin)] over bins of width seconds."""
    bins = {}
    for t, v in points:
        b = int((t - t0) / width)
        if v > bins.get(b, -1.0):
            bins[b] = v
    return [(round(b * width, 3), round(v * 1e3, 3)) for b, v in sorted(bins.items())]


def _rates(series, t0, t_end, width, bytes_per_cmd):
    """[(t - t0, commands/s)] from an offset series, per bin of width seconds
    (the offset at a bin's edge: the last sample at or before it)."""
    out, j, prev = [], 0, None
    edge = t0
    while edge <= t_end + 1e-9:
        while j + 1 < len(series) and series[j + 1][0] <= edge:
            j += 1
        off = series[j][1] if series and series[j][0] <= edge else None
        if prev is not None and off is not None and off >= 0 and prev >= 0:
            out.append((round(edge - t0, 3), round((off - prev) / width / bytes_per_cmd, 1)))
        prev = off
        edge += width
    return out


def lag_phase(sample, steady, cpu, alive, result):
    """Runs the steady load (steady.start_load(): a bench_loadgen Popen) while
    sampling both offsets every steady.interval_s; after it, samples on until
    the consumer has the source's final offset. Returns {"lag": figures,
    "lag_series", "throughput_series"}; see lag_stats for the definition."""
    src, con = [], []
    t_cpu0 = time.monotonic()
    cpu0 = cpu()
    t_start = time.monotonic()
    load = steady.start_load()
    load_end = s_final = caught_up = None
    status = ru = None
    deadline = t_start + steady.duration_s + 60
    next_t = t_start
    try:
        while True:
            ts, s, tc, c = sample()
            src.append((ts, s))
            con.append((tc, -1 if c is None else c))
            now = time.monotonic()
            if load_end is None:
                pid, st, r = os.wait4(load.pid, os.WNOHANG)
                if pid:
                    load.returncode = os.waitstatus_to_exitcode(st)
                    status, ru, load_end = st, r, now
                elif now > deadline:
                    raise SyncFailed("bench_loadgen still running after %.0f s" % (
                        now - t_start), result)
            elif s_final is None:
                s_final = s  # the first source sample after the load
            if s_final is not None and c is not None and c >= s_final:
                caught_up = tc
                break
            if load_end is not None and now > load_end + LAG_DRAIN_S:
                break
            alive()
            next_t += steady.interval_s
            if next_t > now:
                time.sleep(next_t - now)
            else:
                next_t = now
    finally:
        if load.returncode is None and load.poll() is None:
            load.kill()
            load.wait()
    cpu1 = cpu()
    t_cpu1 = time.monotonic()
    out = load.stdout.read().decode(errors="replace")
    err = load.stderr.read().decode(errors="replace")
    lg = parse_loadgen(out)
    if load.returncode != 0 or not lg.get("commands"):
        raise SyncFailed("bench_loadgen failed (exit %s): %s %s" % (load.returncode, out, err),
                         result)
    stats, lags = lag_stats(src, con, t_start, load_end, steady.skip_s)
    bytes_per_cmd = lg["bytes"] / lg["commands"]
    # the steady part: source and consumer offset rates over it
    w0, w1 = t_start + steady.skip_s, load_end

    def rate_over(series):
        pts = [(t, o) for t, o in series if w0 <= t <= w1 and o >= 0]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return None
        return round((pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) / bytes_per_cmd, 1)

    gaps = sorted(b[0] - a[0] for a, b in zip(src, src[1:]))
    steady_con = [o for t, o in con if w0 <= t <= w1]
    changes = sum(1 for a, b in zip(steady_con, steady_con[1:]) if b != a)
    stats.update({
        "target_rate_cmd_s": steady.rate,
        "rate_source": steady.rate_source,
        "duration_s": steady.duration_s,
        "skip_s": steady.skip_s,
        "window_s": round(w1 - w0, 3),
        "written_rate_cmd_s": lg.get("rate"),
        "source_rate_cmd_s": rate_over(src),
        "applied_rate_cmd_s": rate_over(con),
        "bytes_per_command": round(bytes_per_cmd, 2),
        "sample_interval_ms": round(steady.interval_s * 1e3, 3),
        "sample_gap_ms_median": round(_percentile(gaps, 0.5) * 1e3, 3) if gaps else None,
        "sample_gap_ms_p99": round(_percentile(gaps, 0.99) * 1e3, 3) if gaps else None,
        "sample_gap_ms_max": round(gaps[-1] * 1e3, 3) if gaps else None,
        # how often the consumer's offset moved between two samples: near 1 when
        # its offset is finer than the sampling (ringsync: its ACK period)
        "consumer_offset_changes_per_s": round(changes / (w1 - w0), 1) if w1 > w0 else None,
        "consumer_offset_change_fraction": round(changes / max(1, len(steady_con) - 1), 3),
        "drain_s": round(caught_up - load_end, 4) if caught_up else None,
        "caught_up": caught_up is not None,
        "source_offset_final": s_final,
        "loadgen": lg,
        "loadgen_cpu_s": round(ru.ru_utime + ru.ru_stime, 4) if ru else None,
        "cpu_s": round(cpu1[0] - cpu0[0], 4),
        "dest_cpu_s": round(cpu1[1] - cpu0[1], 4),
        "load_s": round(load_end - t_start, 4),
    })
    # CPU over the load and the drain after it, in cores
    stats["cpu_cores"] = round(stats["cpu_s"] / (t_cpu1 - t_cpu0), 3)
    stats["dest_cpu_cores"] = round(stats["dest_cpu_s"] / (t_cpu1 - t_cpu0), 3)
    return {
        "lag": stats,
        "lag_series": _binned_max(lags, t_start, LAG_SERIES_BIN_S),
        "throughput_series": [
            (t, a, b) for (t, a), (_, b) in zip(
                _rates(con, t_start, load_end + 0.5, RATE_SERIES_BIN_S, bytes_per_cmd),
                _rates(src, t_start, load_end + 0.5, RATE_SERIES_BIN_S, bytes_per_cmd))],
    }


def follows_stream(rep):
    """Whether rep can take part in a catch-up or a steady load: ringsync,
    the native replicas, or a command-line replicator that runs `{ringsync}
    sync` (followed like ringsync, --snapshot-only dropped)."""
    if rep.kind in ("ringsync", "native"):
        return True
    words = rep.cmdline.split()
    return rep.kind == "command" and words[:2] == ["{ringsync}", "sync"]


def ringsync_lag(rep, source, dest, source_state, steady, timeout_s, listening_port):
    slave_re = re.compile(rb"slave\d+:ip=[^,\r\n]*,port=%d,state=[^,\r\n]*,offset=(\d+)" %
                          listening_port)

    def phase(proc, result, deadline):
        with source.client() as sc, dest.client() as dc:
            def sample():
                # Two requests, as for the native replica (its own INFO right
                # after the source's): the consumer's offset is read after
                # the source's, so neither side's lag is rounded up to the
                # next sample by reading both in one reply.
                t0 = time.monotonic()
                text = sc.call("INFO", "replication")
                t1 = time.monotonic()
                rtext = sc.call("INFO", "replication")
                t2 = time.monotonic()
                m = slave_re.search(rtext)
                return ((t0 + t1) / 2, int(_MASTER_OFFSET_RE.search(text).group(1)),
                        (t1 + t2) / 2, int(m.group(1)) if m else None)

            def cpu():
                return _proc_cpu_s(proc.pid), cpu_seconds(dc.info("cpu"))[0]

            def alive():
                if proc.poll() is not None:
                    raise SyncFailed("%s exited with %d under the steady load%s" % (
                        rep.name, proc.returncode, _exit_reason(proc)), result)

            return lag_phase(sample, steady, cpu, alive, result)

    return ringsync_follow(rep, source, dest, timeout_s, listening_port, phase)


def native_lag(rep, source, dest, source_state, steady, timeout_s):
    def phase(c, pid, result):
        with source.client() as sc:
            def sample():
                t0 = time.monotonic()
                text = sc.call("INFO", "replication")
                t1 = time.monotonic()
                rtext = c.call("INFO", "replication")
                t2 = time.monotonic()
                return ((t0 + t1) / 2, int(_MASTER_OFFSET_RE.search(text).group(1)),
                        (t1 + t2) / 2, int(_SLAVE_REPL_OFFSET_RE.search(rtext).group(1)))

            def cpu():
                own = cpu_seconds(c.info("cpu"))[0]
                return own, own  # the replica is the destination

            out = lag_phase(sample, steady, cpu, lambda: None, result)
        out["cpu_life_s"] = round(result["cpu_s"] + out["lag"]["cpu_s"], 4)
        return out

    return native_follow(rep, source, dest, source_state, timeout_s, phase)
