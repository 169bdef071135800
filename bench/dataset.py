"""dataset - fills a source Redis from a scenario's description, fast.

The description (see bench/scenarios/*.json and bench/README.md):

  keys          small keys in all, spread evenly over `dbs` databases
  dbs           number of databases used (0 .. dbs-1)
  ttl_fraction  share of small keys given an expiry 1-2 hours ahead
  seed          the generator's seed: same seed, same data
  types         {type: {weight, size: [lo, hi], elements: [lo, hi], ...}} for
                string, hash, list, set (int_fraction: share of all-integer
                sets, stored as intsets), zset
  big_keys      [{type, size, elements}] in database 0, after the small keys
  fill          "resp" (default): generated RESP piped through redis-cli --pipe;
                "populate": DEBUG POPULATE (strings only, values mostly zero
                bytes, so the RDB compresses them)

Values are random base64 text (incompressible for LZF, as real data mostly
is); collections reuse a pool of pre-encoded element blocks, so generating
500k mixed keys costs about a second of Python. Key names say their type
(`str:17`, `hash:18`, `big:list`) so a digest mismatch is easy to read.
"""

import base64
import random
import subprocess
import time

POOL_VARIANTS = 64  # pre-built element blocks per (type, element count)
STRING_POOL = 4096  # pre-built string values
MSET_BATCH = 100
BIG_BATCH = 1000  # elements per command for big collections
CHUNK_BYTES = 1 << 20


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


class Generator:
    def __init__(self, spec):
        self.spec = spec
        self.rng = random.Random(spec.get("seed", 1))
        self.blocks = {}
        self.now_ms = int(time.time() * 1000)
        self.items = 0  # strings + collection elements generated (the "elements" of a report)
        types = spec.get("types", {})
        self.type_names = [t for t in types if types[t].get("weight", 0) > 0]
        self.type_weights = [types[t]["weight"] for t in self.type_names]
        s = types.get("string", {}).get("size", [64, 64])
        self.string_pool = [bulk(self.text(self.rng.randint(*s))) for _ in range(STRING_POOL)]

    def text(self, n):
        """n bytes of random base64 text."""
        return base64.b64encode(self.rng.randbytes(n * 3 // 4 + 3))[:n]

    def ttl_ms(self):
        return self.now_ms + 3_600_000 + self.rng.randrange(3_600_000)

    # --- element blocks for small collections ------------------------------

    def block(self, kind, n):
        """Pre-encoded elements (fields+values, members, scores+members) of one
        collection of n elements, chosen among POOL_VARIANTS variants."""
        variant = self.rng.randrange(POOL_VARIANTS)
        key = (kind, n, variant)
        b = self.blocks.get(key)
        if b is None:
            b = self.blocks[key] = self._make_block(kind, n)
        return b

    def _make_block(self, kind, n):
        t = self.spec["types"][kind]
        lo, hi = t.get("size", [8, 32])
        rng = self.rng
        parts = []
        if kind == "hash":
            for j in range(n):
                parts.append(bulk(b"f%d" % j) + bulk(self.text(rng.randint(lo, hi))))
        elif kind == "list":
            for _ in range(n):
                parts.append(bulk(self.text(rng.randint(lo, hi))))
        elif kind == "set":
            if rng.random() < t.get("int_fraction", 0.0):
                for m in rng.sample(range(1_000_000_000), n):
                    parts.append(bulk(b"%d" % m))
            else:
                for j in range(n):
                    parts.append(bulk(b"%d:" % j + self.text(rng.randint(lo, hi))))
        elif kind == "zset":
            for j in range(n):
                parts.append(bulk(b"%.3f" % (rng.random() * 1000)) +
                             bulk(b"%d:" % j + self.text(rng.randint(lo, hi))))
        else:
            raise ValueError("unknown type %r" % kind)
        return b"".join(parts)

    # --- the stream ----------------------------------------------------------

    def small_keys(self):
        """Yields RESP for the scenario's small keys, database by database."""
        spec = self.spec
        total, dbs = spec.get("keys", 0), spec.get("dbs", 1)
        ttl_fraction = spec.get("ttl_fraction", 0.0)
        types = spec.get("types", {})
        rng = self.rng
        index = 0
        for db in range(dbs):
            n_db = total // dbs + (1 if db < total % dbs else 0)
            yield b"*2\r\n$6\r\nSELECT\r\n" + bulk(b"%d" % db)
            kinds = rng.choices(self.type_names, self.type_weights, k=n_db)
            mset = []
            for kind in kinds:
                index += 1
                self.items += 1
                has_ttl = ttl_fraction > 0 and rng.random() < ttl_fraction
                if kind == "string":
                    key = bulk(b"str:%d" % index)
                    val = self.string_pool[rng.randrange(STRING_POOL)]
                    if has_ttl:
                        yield (b"*5\r\n$3\r\nSET\r\n" + key + val + b"$4\r\nPXAT\r\n" +
                               bulk(b"%d" % self.ttl_ms()))
                        continue
                    mset.append(key + val)
                    if len(mset) == MSET_BATCH:
                        yield b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * len(mset)) + b"".join(mset)
                        mset = []
                    continue
                n = rng.randint(*types[kind].get("elements", [1, 8]))
                self.items += n - 1
                key = bulk(b"%s:%d" % (kind.encode(), index))
                body = self.block(kind, n)
                if kind == "hash":
                    yield b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * n) + key + body
                elif kind == "list":
                    yield b"*%d\r\n$5\r\nRPUSH\r\n" % (2 + n) + key + body
                elif kind == "set":
                    yield b"*%d\r\n$4\r\nSADD\r\n" % (2 + n) + key + body
                elif kind == "zset":
                    yield b"*%d\r\n$4\r\nZADD\r\n" % (2 + 2 * n) + key + body
                if has_ttl:
                    yield b"*3\r\n$9\r\nPEXPIREAT\r\n" + key + bulk(b"%d" % self.ttl_ms())
            if mset:
                yield b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * len(mset)) + b"".join(mset)

    def big_keys(self):
        """Yields RESP for the big keys, in database 0."""
        bigs = self.spec.get("big_keys", [])
        if not bigs:
            return
        yield b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
        seen = {}
        for big in bigs:
            kind = big["type"]
            seen[kind] = seen.get(kind, 0) + 1
            name = b"big:%s" % kind.encode()
            if seen[kind] > 1:
                name += b":%d" % seen[kind]
            key = bulk(name)
            size = big.get("size", 16)
            self.items += 1 if kind == "string" else big.get("elements", 1000)
            if kind == "string":
                yield b"*3\r\n$3\r\nSET\r\n" + key + bulk(self.rng.randbytes(size))
                continue
            n = big.get("elements", 1000)
            cmd = {"list": b"RPUSH", "set": b"SADD", "zset": b"ZADD", "hash": b"HSET"}[kind]
            per = 2 if kind in ("zset", "hash") else 1
            done = 0
            while done < n:
                m = min(BIG_BATCH, n - done)
                blob = self.text(size * m)
                parts = []
                for j in range(m):
                    v = blob[j * size:(j + 1) * size]
                    i = done + j
                    if kind == "list":
                        parts.append(bulk(v))
                    elif kind == "set":
                        parts.append(bulk(b"%d:" % i + v))
                    elif kind == "zset":
                        parts.append(bulk(b"%d" % i) + bulk(b"%d:" % i + v))
                    else:
                        parts.append(bulk(b"f%d" % i) + bulk(v))
                yield (b"*%d\r\n$%d\r\n%s\r\n" % (2 + per * m, len(cmd), cmd) + key +
                       b"".join(parts))
                done += m

    def stream(self):
        """The whole fill as chunks of about CHUNK_BYTES."""
        pending, size = [], 0
        for gen in (self.small_keys(), self.big_keys()):
            for piece in gen:
                pending.append(piece)
                size += len(piece)
                if size >= CHUNK_BYTES:
                    yield b"".join(pending)
                    pending, size = [], 0
        if pending:
            yield b"".join(pending)


def expected_keys(spec):
    """{db: keys} the fill must leave (big keys in db 0)."""
    total, dbs = spec.get("keys", 0), spec.get("dbs", 1)
    out = {db: total // dbs + (1 if db < total % dbs else 0) for db in range(dbs)}
    if spec.get("big_keys"):
        out[0] = out.get(0, 0) + len(spec["big_keys"])
    return {db: n for db, n in out.items() if n}


def fill(server, spec, redis_cli="redis-cli"):
    """Fills server from spec; returns a dict of what was done (seconds, bytes)."""
    t0 = time.monotonic()
    if spec.get("fill", "resp") == "populate":
        return _fill_populate(server, spec, t0)
    proc = subprocess.Popen([redis_cli, "-h", server.host, "-p", str(server.port), "--pipe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    sent = 0
    gen = Generator(spec)
    try:
        for chunk in gen.stream():
            proc.stdin.write(chunk)
            sent += len(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    out = proc.stdout.read().decode(errors="replace")
    rc = proc.wait()
    last = [line for line in out.splitlines() if "errors:" in line]
    if rc != 0 or not last or not last[-1].startswith("errors: 0,"):
        raise RuntimeError("filling the source failed (redis-cli --pipe rc=%d):\n%s" % (rc, out))
    return {"method": "redis-cli --pipe", "resp_bytes": sent, "elements": gen.items,
            "seconds": round(time.monotonic() - t0, 3)}


def _fill_populate(server, spec, t0):
    size = spec.get("types", {}).get("string", {}).get("size", [64, 64])[1]
    with server.client(timeout_s=300) as c:
        for db, n in expected_keys(spec).items():
            c.call("SELECT", db)
            c.call("DEBUG", "POPULATE", n, "str%d" % db, size)
    return {"method": "DEBUG POPULATE", "elements": sum(expected_keys(spec).values()),
            "seconds": round(time.monotonic() - t0, 3)}


# --- the backlog of a catch-up scenario -------------------------------------

BACKLOG_KEYS = {  # command -> key prefix (one type per prefix, so no WRONGTYPE)
    "SET": b"bl:str:", "INCR": b"bl:cnt:", "LPUSH": b"bl:list:", "RPUSH": b"bl:list:",
    "SADD": b"bl:set:", "HSET": b"bl:hash:", "ZADD": b"bl:zset:",
}


def backlog_commands(spec):
    """How many commands the scenario's backlog has (spec["backlog"]["commands"])."""
    return int(spec.get("backlog", {}).get("commands", 0))


def write_backlog(spec, path):
    """Writes the scenario's backlog as RESP to path: spec["backlog"] =
    {commands, mix: {CMD: weight}, keyspace, value_size}; DEL deletes a random
    key of a random other command's key space. Keys are `bl:<type>:N`, apart
    from the fill's keys. Same spec and seed, same file. Returns
    {"commands", "bytes", "per_command"}."""
    bl = spec["backlog"]
    n = int(bl["commands"])
    keyspace = int(bl.get("keyspace", 1000000))
    vsize = bl.get("value_size", [3, 3])
    if isinstance(vsize, int):
        vsize = [vsize, vsize]
    rng = random.Random(spec.get("seed", 1) * 7919 + 17)
    mix = bl.get("mix", {"SET": 100})
    names = list(mix)
    weights = [mix[c] for c in names]
    for c in names:
        if c not in BACKLOG_KEYS and c != "DEL":
            raise ValueError("backlog command %r not supported (%s, DEL)" %
                             (c, ", ".join(BACKLOG_KEYS)))
    prefixes = sorted(set(BACKLOG_KEYS[c] for c in names if c in BACKLOG_KEYS)) or [b"bl:str:"]
    pool = [bulk(base64.b64encode(rng.randbytes(vsize[1]))[:rng.randint(*vsize)])
            for _ in range(STRING_POOL)]
    members = [bulk(b"m%d" % i) for i in range(64)]
    count = dict.fromkeys(names, 0)
    cmd_heads = {c: b"*%d\r\n" % {"SET": 3, "INCR": 2, "LPUSH": 3, "RPUSH": 3, "SADD": 3,
                                    "HSET": 4, "ZADD": 4, "DEL": 2}[c] + bulk(c.encode())
                 for c in names}
    size = 0
    with open(path, "wb") as f:
        out = []
        for c in rng.choices(names, weights, k=n):
            count[c] += 1
            k = rng.randrange(keyspace)
            if c == "DEL":
                out.append(cmd_heads[c] + bulk(rng.choice(prefixes) + b"%d" % k))
                continue
            key = bulk(BACKLOG_KEYS[c] + b"%d" % k)
            if c == "SET":
                piece = key + pool[rng.randrange(STRING_POOL)]
            elif c == "INCR":
                piece = key
            elif c in ("LPUSH", "RPUSH"):
                piece = key + pool[rng.randrange(STRING_POOL)]
            elif c == "SADD":
                piece = key + members[rng.randrange(64)]
            elif c == "HSET":
                piece = key + members[rng.randrange(64)] + pool[rng.randrange(STRING_POOL)]
            else:  # ZADD
                piece = key + bulk(b"%d" % rng.randrange(1000)) + members[rng.randrange(64)]
            out.append(cmd_heads[c] + piece)
            if len(out) >= 10000:
                chunk = b"".join(out)
                f.write(chunk)
                size += len(chunk)
                out = []
        chunk = b"".join(out)
        f.write(chunk)
        size += len(chunk)
    return {"commands": n, "bytes": size, "per_command": count}


def pipe_file(server, path, redis_cli="redis-cli"):
    """Sends a RESP file through redis-cli --pipe; returns its wall seconds."""
    t0 = time.monotonic()
    with open(path, "rb") as f:
        r = subprocess.run([redis_cli, "-h", server.host, "-p", str(server.port), "--pipe"],
                           stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    last = [line for line in out.splitlines() if "errors:" in line]
    if r.returncode != 0 or not last or not last[-1].startswith("errors: 0,"):
        raise RuntimeError("sending the backlog failed (redis-cli --pipe rc=%d):\n%s" %
                           (r.returncode, out[-2000:]))
    return round(time.monotonic() - t0, 3)
