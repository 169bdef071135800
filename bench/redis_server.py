"""redis_server - redis-server processes on free loopback ports, owned by bench/run.

Each server is a child of this process, in its own session (a Ctrl-C at the
terminal reaches bench/run only, which then stops its servers itself), with
its own temporary directory, bound to 127.0.0.1 and nothing else.

  server = RedisServer("source", extra_args=[...]); server.start()
  ... server.client() ...
  server.stop()            # SHUTDOWN NOSAVE, then SIGTERM, then SIGKILL

ServerSet tracks every server started, so one try/finally stops them all;
ServerSet.start_cluster starts a Redis Cluster destination (bench/cluster.py).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from resp_client import RespClient, RespError

HOST = "127.0.0.1"

# Every server: no persistence, debug commands for DEBUG DIGEST / POPULATE.
BASE_ARGS = [
    "--bind", HOST, "--save", "", "--appendonly", "no",
    "--enable-debug-command", "yes", "--protected-mode", "no",
]
# The source, as issue 9 asks: diskless replication that starts at once.
SOURCE_ARGS = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]


def free_port():
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_status_kb(pid, field):
    """VmHWM / VmRSS of a live process, in kB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class RedisServer:
    def __init__(self, role, extra_args=(), redis_server="redis-server", tmp_root=None):
        self.role = role
        self.extra_args = list(extra_args)
        self.redis_server = redis_server
        self.tmp_root = tmp_root
        self.port = None
        self.proc = None
        self.dir = None

    @property
    def host(self):
        return HOST

    def start(self, attempts=5):
        self.dir = tempfile.mkdtemp(prefix="ringsync-bench-%s-" % self.role, dir=self.tmp_root)
        last = None
        for _ in range(attempts):
            self.port = free_port()
            args = [self.redis_server, "--port", str(self.port), "--dir", self.dir,
                    "--logfile", os.path.join(self.dir, "redis.log")] + BASE_ARGS + self.extra_args
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # lost the port race, or a bad argument: retry, then report
                try:
                    with RespClient(HOST, self.port, timeout_s=1) as c:
                        if c.call("PING") == b"PONG":
                            return self
                except (OSError, RespError):
                    time.sleep(0.02)
            last = self.log_tail()
            self._kill()
        raise RuntimeError("redis-server (%s) did not start; log:\n%s" % (self.role, last))

    def client(self, timeout_s=30.0):
        return RespClient(HOST, self.port, timeout_s=timeout_s)

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def peak_rss_kb(self):
        return proc_status_kb(self.proc.pid, "VmHWM") if self.proc else None

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                with RespClient(HOST, self.port, timeout_s=2) as c:
                    c.sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill()
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class ServerSet:
    """Every server started in a run, so that a finally: can stop them all."""

    def __init__(self, redis_server="redis-server", tmp_root=None):
        self.redis_server = redis_server
        self.tmp_root = tmp_root
        self.servers = []

    def start(self, role, extra_args=()):
        s = RedisServer(role, extra_args, self.redis_server, self.tmp_root)
        self.servers.append(s)
        s.start()
        return s

    def start_cluster(self, role, masters, extra_args=()):
        """A cluster of `masters` masters (bench/cluster.py), stopped like a server."""
        from cluster import RedisCluster  # cluster.py builds on this module
        c = RedisCluster(role, masters, extra_args, self.redis_server, self.tmp_root)
        self.servers.append(c)
        c.start()
        return c

    def stop(self, server):
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def stop_all(self):
        while self.servers:
            self.servers.pop().stop()
