"""resp_client - the smallest Redis client bench/run needs (stdlib only).

One blocking connection, RESP2 replies. Commands are sent as arrays of bulk
strings; replies come back as bytes, int, list or None; an error reply raises
RespError unless the caller asks for errors as values (pipelines).
"""

import socket


class RespError(Exception):
    """An error reply from the server (-ERR ..., -LOADING ...)."""


def encode_command(args):
    """Returns the RESP array of bulk strings for args (str, bytes or int)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespClient:
    def __init__(self, host, port, timeout_s=10.0):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- reading ---------------------------------------------------------

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("%s:%d closed the connection" % (self.host, self.port))
        if self.pos:
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0
        else:
            self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = self.buf[self.pos:self.pos + n]
        self.pos += n + 2
        return data

    def _reply(self, errors_as_values):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            err = RespError(rest.decode(errors="replace"))
            if errors_as_values:
                return err
            raise err
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply(True) for _ in range(n)]
        raise ConnectionError("%s:%d sent %r, not RESP" % (self.host, self.port, line[:40]))

    # --- commands --------------------------------------------------------

    def call(self, *args):
        """Sends one command and returns its reply; an error reply raises RespError."""
        self.sock.sendall(encode_command(args))
        return self._reply(False)

    def pipeline(self, commands):
        """Sends every command (a list of arg tuples) at once and returns the
        replies in order, error replies as RespError values."""
        self.sock.sendall(b"".join(encode_command(c) for c in commands))
        return [self._reply(True) for _ in commands]

    def info(self, *sections):
        """INFO as a dict of str -> str (every section merged)."""
        text = self.call("INFO", *sections).decode(errors="replace")
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            out[k] = v
        return out


def keyspace_counts(info):
    """{db_index: keys} from an INFO keyspace dict ('db0': 'keys=3,expires=0,...')."""
    out = {}
    for k, v in info.items():
        if k.startswith("db") and k[2:].isdigit():
            fields = dict(p.split("=", 1) for p in v.split(","))
            out[int(k[2:])] = int(fields.get("keys", 0))
    return out


def keyspace_expires(info):
    """{db_index: keys with a TTL} from an INFO keyspace dict."""
    out = {}
    for k, v in info.items():
        if k.startswith("db") and k[2:].isdigit():
            fields = dict(p.split("=", 1) for p in v.split(","))
            out[int(k[2:])] = int(fields.get("expires", 0))
    return out


def cpu_seconds(info):
    """(self, children) CPU seconds from an INFO cpu dict."""
    own = float(info.get("used_cpu_sys", 0)) + float(info.get("used_cpu_user", 0))
    kids = float(info.get("used_cpu_sys_children", 0)) + float(info.get("used_cpu_user_children", 0))
    return own, kids
