"""cluster - a Redis Cluster destination of N masters (no replicas), owned by bench/run.

  cluster = RedisCluster("dest-ringsync", masters=3); cluster.start()
  ... cluster.host, cluster.port        # its first node: the entry point
  ... cluster.client()                  # one view of all its masters (below)
  cluster.stop()                        # every node, as RedisServer.stop()

start(): N redis-server processes (redis_server.RedisServer, so the same
loopback port, temporary directory and shutdown rules) with `cluster-enabled
yes`, a cluster bus port of their own (`cluster-port`, chosen free like the
client port: port+10000 may be past 65535 or taken), the 16384 slots split
evenly (`CLUSTER ADDSLOTSRANGE`: 0-5460, 5461-10921, 10922-16383 for three),
`CLUSTER MEET` from every node to the first, then a wait until every node
knows the N nodes and says `cluster_state:ok` (about 1-2 s: a master that
was in the fail state waits before it takes writes again).

client() returns a ClusterClient: the calls bench/run makes on a destination,
answered for the whole cluster as a standalone server holding the same data
would answer them:

  info(*sections)     every master's INFO merged: the CPU counters, used_memory,
                      used_memory_peak, used_memory_rss, the dbN keyspace
                      lines (keys, expires) and the cmdstat_* lines (calls,
                      usec) summed; any other field kept only when every
                      master says the same
  call("DEBUG", "DIGEST")   the masters' digests combined into the digest a
                      standalone server with all their keys would give (see
                      combine_digests), so it compares with the source's
  call("DBSIZE")      the sum; call("SELECT", 0) accepted (a cluster has db 0 only)
  pipeline(commands)  each command sent to the master of its key's slot
                      (the key: the third word of DEBUG DIGEST-VALUE, else the second)

Anything else raises RespError: a harness call that is not listed here must
be thought through for a cluster first.
"""

import hashlib
import time

from redis_server import RedisServer, HOST, free_port
from resp_client import RespError

SLOTS = 16384
START_TIMEOUT_S = 30
NODE_TIMEOUT_MS = 5000
CLUSTER_ARGS = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-require-full-coverage", "yes"]

# INFO fields summed over the masters (the rest: kept when they all agree).
SUMMED_INFO = {"used_cpu_sys", "used_cpu_user", "used_cpu_sys_children",
               "used_cpu_user_children", "used_cpu_sys_main_thread", "used_cpu_user_main_thread",
               "used_memory", "used_memory_peak", "used_memory_rss", "used_memory_dataset",
               "connected_clients", "total_commands_processed", "keyspace_hits",
               "keyspace_misses", "expired_keys", "evicted_keys"}


# --- hash slots ----------------------------------------------------------------

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key):
    """The hash slot of a key (bytes), hash tags included."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % SLOTS


def slot_ranges(n):
    """n contiguous, even ranges of the 16384 slots: [(first, last), ...]."""
    return [(i * SLOTS // n, (i + 1) * SLOTS // n - 1) for i in range(n)]


# --- DEBUG DIGEST of a data set split over several servers ---------------------
#
# A server's DEBUG DIGEST (computeDatasetDigest, Redis 7.0): 20 zero bytes; for
# every non-empty db j, mixDigest(final, htonl(j)) (final ^= SHA1(htonl(j)),
# then final = SHA1(final)), then final ^= the digest of each of its keys. So
# for keys in db 0 only: final = C0 ^ XOR(key digests), C0 = SHA1(SHA1(0x00000000)),
# and all-zero when the server holds no key. A standalone server holding the
# union of the masters' keys gives C0 ^ XOR(all key digests) = the XOR of the
# masters' digests, with C0 XORed once more when an even number of them hold keys.

ZERO_DIGEST = "0" * 40
_C0 = hashlib.sha1(hashlib.sha1(b"\0\0\0\0").digest()).hexdigest()


def combine_digests(digests):
    """The DEBUG DIGEST a standalone server holding the keys of all these
    servers (db 0 only) would give, from each server's DEBUG DIGEST (hex)."""
    nonempty = [d for d in digests if d != ZERO_DIGEST]
    if not nonempty:
        return ZERO_DIGEST
    acc = 0
    for d in nonempty:
        acc ^= int(d, 16)
    if len(nonempty) % 2 == 0:
        acc ^= int(_C0, 16)
    return "%040x" % acc


# --- the cluster -----------------------------------------------------------------

class RedisCluster:
    """N masters on loopback, slots split evenly; the interface of
    redis_server.RedisServer that bench/run uses on a destination."""

    kind = "cluster"

    def __init__(self, role, masters=3, extra_args=(), redis_server="redis-server",
                 tmp_root=None):
        self.role = role
        self.masters = masters
        self.extra_args = list(extra_args)
        self.redis_server = redis_server
        self.tmp_root = tmp_root
        self.nodes = []
        self.ranges = slot_ranges(masters)
        self.start_s = None

    @property
    def host(self):
        return HOST

    @property
    def port(self):
        return self.nodes[0].port

    @property
    def proc(self):  # a process for "is it up" checks: the first node's
        return self.nodes[0].proc if self.nodes else None

    def describe(self):
        return "%d-master cluster on %s" % (self.masters, ", ".join(
            "%d (slots %d-%d)" % (n.port, a, b) for n, (a, b) in zip(self.nodes, self.ranges)))

    def start(self):
        t0 = time.monotonic()
        try:
            for i in range(self.masters):
                bus = free_port()
                node = RedisServer("%s-n%d" % (self.role, i),
                                   CLUSTER_ARGS + ["--cluster-port", str(bus)] + self.extra_args,
                                   self.redis_server, self.tmp_root)
                node.bus_port = bus
                self.nodes.append(node)
                node.start()
            for node, (a, b) in zip(self.nodes, self.ranges):
                with node.client() as c:
                    c.call("CLUSTER", "ADDSLOTSRANGE", a, b)
            first = self.nodes[0]
            for node in self.nodes[1:]:
                with node.client() as c:
                    c.call("CLUSTER", "MEET", HOST, first.port, first.bus_port)
            self._wait_ok(t0 + START_TIMEOUT_S)
        except Exception:
            self.stop()
            raise
        self.start_s = round(time.monotonic() - t0, 2)
        return self

    def _wait_ok(self, deadline):
        want = str(self.masters)
        while True:
            states = []
            for node in self.nodes:
                with node.client() as c:
                    info = _cluster_info(c)
                states.append((info.get("cluster_state"), info.get("cluster_known_nodes"),
                               info.get("cluster_slots_ok")))
            if all(s == ("ok", want, str(SLOTS)) for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("cluster %s not ok after %d s: %s; first node's log:\n%s" % (
                    self.role, START_TIMEOUT_S,
                    ", ".join("%d: state %s, %s nodes, %s slots ok" % ((n.port,) + s)
                              for n, s in zip(self.nodes, states)),
                    self.nodes[0].log_tail() if self.nodes else ""))
            time.sleep(0.05)

    def client(self, timeout_s=30.0):
        return ClusterClient(self, timeout_s)

    def node_for_slot(self, slot):
        for node, (a, b) in zip(self.nodes, self.ranges):
            if a <= slot <= b:
                return node
        raise ValueError("slot %d" % slot)

    def peak_rss_kb(self):
        """The sum of the masters' VmHWM."""
        vals = [n.peak_rss_kb() for n in self.nodes]
        return sum(vals) if vals and None not in vals else None

    def keys_per_node(self):
        """[DBSIZE of each master], in node order."""
        out = []
        for node in self.nodes:
            with node.client(timeout_s=60) as c:
                out.append(c.call("DBSIZE"))
        return out

    def ports(self):
        return [n.port for n in self.nodes]

    def seeds(self):
        """host:port of every master, comma-separated (for a --replicator's
        {target_nodes})."""
        return ",".join("%s:%d" % (HOST, n.port) for n in self.nodes)

    def log_tail(self, lines=20):
        return "\n".join("--- %s ---\n%s" % (n.role, n.log_tail(lines)) for n in self.nodes)

    def stop(self):
        while self.nodes:
            self.nodes.pop().stop()


def _cluster_info(c):
    text = c.call("CLUSTER", "INFO").decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class ClusterClient:
    """One connection per master; see the module's docstring for what it answers."""

    def __init__(self, cluster, timeout_s=30.0):
        self.cluster = cluster
        self.clients = []
        try:
            for node in cluster.nodes:
                self.clients.append(node.client(timeout_s=timeout_s))
        except Exception:
            self.close()
            raise

    def close(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def info(self, *sections):
        merged, first = {}, True
        for c in self.clients:
            d = c.info(*sections)
            for k, v in d.items():
                if k in SUMMED_INFO:
                    merged[k] = _add(merged.get(k), v)
                elif k.startswith("db") and k[2:].isdigit():
                    merged[k] = _add_keyspace(merged.get(k), v)
                elif k.startswith("cmdstat_"):
                    merged[k] = _add_cmdstat(merged.get(k), v)
                elif first:
                    merged[k] = v
                elif merged.get(k) != v:
                    merged.pop(k, None)
            if not first:
                for k in list(merged):
                    if k not in d and k not in SUMMED_INFO and not (
                            k.startswith("db") and k[2:].isdigit()) and not (
                            k.startswith("cmdstat_")):
                        merged.pop(k)
            first = False
        return merged

    def call(self, *args):
        words = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        head = [w.upper() for w in words[:2]]
        if head == ["DEBUG", "DIGEST"]:
            return combine_digests([c.call("DEBUG", "DIGEST").decode()
                                    for c in self.clients]).encode()
        if head[:1] == ["DBSIZE"]:
            return sum(c.call("DBSIZE") for c in self.clients)
        if head[:1] == ["SELECT"] and words[1:] == ["0"]:
            return b"OK"
        if head[:1] == ["INFO"]:
            raise RespError("ClusterClient: use info(), which merges the masters' INFO")
        raise RespError("ClusterClient: %s is not answered for a whole cluster "
                        "(bench/cluster.py)" % " ".join(words[:2]))

    def pipeline(self, commands):
        """Each command to the master of its key's slot; replies in order."""
        by_node = {}
        for i, cmd in enumerate(commands):
            words = [a.decode() if isinstance(a, bytes) else str(a) for a in cmd[:2]]
            key = cmd[2] if [w.upper() for w in words] == ["DEBUG", "DIGEST-VALUE"] else cmd[1]
            node = self.cluster.node_for_slot(key_slot(key if isinstance(key, bytes)
                                                       else str(key).encode()))
            by_node.setdefault(self.cluster.nodes.index(node), []).append((i, cmd))
        replies = [None] * len(commands)
        for n, items in by_node.items():
            for (i, _), r in zip(items, self.clients[n].pipeline([c for _, c in items])):
                replies[i] = r
        return replies


def _add(a, b):
    if a is None:
        return b
    try:
        return str(int(a) + int(b))
    except ValueError:
        return "%.6f" % (float(a) + float(b))


def _add_cmdstat(a, b):
    """Sums calls, usec, rejected_calls and failed_calls of two INFO
    commandstats values (usec_per_call recomputed)."""
    if a is None:
        return b
    fa = dict(p.split("=", 1) for p in a.split(","))
    fb = dict(p.split("=", 1) for p in b.split(","))
    for f in ("calls", "usec", "rejected_calls", "failed_calls"):
        fa[f] = str(int(fa.get(f, 0)) + int(fb.get(f, 0)))
    fa["usec_per_call"] = "%.2f" % (int(fa["usec"]) / max(1, int(fa["calls"])))
    return ",".join("%s=%s" % kv for kv in fa.items())


def _add_keyspace(a, b):
    """Sums keys= and expires= of two INFO keyspace values (avg_ttl: the first's)."""
    fb = dict(p.split("=", 1) for p in b.split(","))
    if a is None:
        return b
    fa = dict(p.split("=", 1) for p in a.split(","))
    for f in ("keys", "expires"):
        fa[f] = str(int(fa.get(f, 0)) + int(fb.get(f, 0)))
    return ",".join("%s=%s" % kv for kv in fa.items())
