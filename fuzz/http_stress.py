#!/usr/bin/env python3
"""Stress and abuse of the agent's HTTP server, with faults, while a
scraper checks every answer.  The numbers in docs/SECURITY.md come from a
run of this; tests/test_limits.py runs it for a few seconds.

    .venv/bin/python fuzz/http_stress.py [--seconds 60] [--slow 100] [--silent 50]
        [--garbage 50] [--flood 100] [--readers 0] [--spread 0] [--reload-every 2]
        [--fault-every 1] [--seed N] [--tls] [--same-host] [--no-auth]
    .venv/bin/python fuzz/http_stress.py --attack {slow-readers,slowloris,flood,all}
        [--seconds 60] [--tls] [--no-auth]

It starts the real agent on 127.0.0.1 with a bearer token required (none
with --no-auth), a copy of a fixture /proc tree, and every HTTP limit at
its default; then, for SECONDS, all at once:
- slow readers: --readers connections, each sending --pipeline (30,000)
  pipelined `GET /` at once and reading none of the answers, reconnecting
  as soon as the agent closes it;
- slowloris: --slow connections, each trickling a request head a byte at a
  time (one every 0.2 s, so never finishing within header_timeout);
- silent: --silent connections that connect and send nothing;
- garbage: --garbage connections, each sending one hostile request (random
  bytes, mutations of a valid request, oversized heads, bodies, bad tokens,
  pipelines with a bad request inside, a TLS ClientHello, HTTP/2...),
  half-closing, and reading what comes back;
- flood: --flood connections a second opened and closed at once;
- faults: every --fault-every seconds a /proc file of the tree is corrupted,
  removed or restored in turn; every --reload-every seconds a SIGHUP whose
  configuration flips a limit;
- a scraper, in a process of its own, from 127.0.0.1 like the attackers
  with --same-host, else from 127.0.0.2 (another host, as Prometheus is):
  a new connection (TLS with --tls) with the right token every 0.2 s (1 s
  with --attack), timed, each answer checked whole: 200, the
  Content-Length, every line a valid sample or comment, the server's own
  families last, and for each /proc source either its families
  (agent_source_success 1) or none (0), never part.
The attackers connect from 127.0.0.1, or in turn from --spread addresses
of 127.1.0.0/16.  Every attacker but the slow readers reconnects 50 ms
after the agent closes it, so the pressure lasts.  --attack runs issue
12's attacks (ATTACKS below) from 250 addresses, without faults or
reloads.  Prints a report; exit status 1 if a scrape failed (with
--attack: fewer than --min-success of them answered 200), was slower than
--max-latency (with --attack: the 99th percentile), or the agent died or
leaked connections.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import multiprocessing
import os
import pathlib
import random
import re
import select
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from agentproc import AgentProcess  # noqa: E402

TOKEN = "stress-" + "0123456789abcdef" * 2
TREE = ROOT / "tests" / "fixtures" / "procfs" / "linux-5.15-ubuntu22"
SYSFS_TREE = ROOT / "tests" / "fixtures" / "sysfs" / "desktop"
SAMPLE = re.compile(rb'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? \S+\Z')
SUCCESS = re.compile(rb'^agent_source_success\{source="(\w+)"\} ([01])$', re.M)
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
RECONNECT_DELAY = 0.05
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2
TRICKLE_EVERY = 0.2
# A slow reader's burst: 30,000 pipelined requests (810 kB), 8 MB of 401s or
# 20 MB of landing pages, more than the kernel buffers between it and the
# agent hold.
READER_PIPELINE = 30000


def expected_families(args: list[str]) -> dict[str, tuple[str, ...]]:
    """The collectors that the agent's arguments `args` run (of
    agent.collectors.TABLE), each with the families it serves on the
    pristine trees: a scrape shows all of them or, where its source fails,
    none.  A collector with nothing there (no /proc/pressure, no mount
    table, no textfile directory) may succeed empty.  Called before the
    faults begin."""
    import logging
    from agent.cli import build_registry
    from agent.config import load
    config = load(args)
    registry = build_registry(config, logging.getLogger("http_stress"))
    try:
        return {name: tuple(f.desc.name for f in registry.collect(only=frozenset({name}))
                            if not f.desc.name.startswith("agent_"))
                for name in config.collectors}
    finally:
        registry.close()


@functools.cache
def source_files() -> dict[str, str]:
    """The file under the procfs root of each collector that reads one."""
    from agent import collectors
    from agent.config import Config
    from agent.cpu import CpuWindow
    built = collectors.build([entry.name for entry in collectors.TABLE], Config(), CpuWindow(1.0))
    return {c.source: c.relpath for c in built if hasattr(c, "relpath")}


# --- hostile requests ---------------------------------------------------------


VALID = b"GET /metrics HTTP/1.1\r\nHost: agent\r\nAccept: */*\r\n\r\n"
CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + bytes(32) + bytes.fromhex(
    "00002ac02cc02bc030c02f009f009ec024c023c028c027c00ac009c014c013009d009c003d003c0035002f000a01000069")


def hostile_request(rng: random.Random) -> bytes:
    """One malformed or unwelcome request (a few may be valid but lack the
    token: they must get 401)."""
    kind = rng.randrange(14)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 4096))
    if kind == 1:
        data = bytearray(VALID)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        pos = rng.randrange(len(VALID))
        return VALID[:pos] + rng.choice([b"\0", b"\r", b"\n", b"\x7f", b"\xff", b" ", b":", b"\t"]) + VALID[pos:]
    if kind == 3:
        return b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * rng.randrange(8000, 70000) + b"\r\n\r\n"
    if kind == 4:
        return b"GET /metrics HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(
            rng.randrange(100, 3000))) + b"\r\n"
    if kind == 5:
        return b"GET /" + b"m" * rng.randrange(8000, 40000) + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    if kind == 6:
        method = rng.choice([b"POST", b"PUT", b"DELETE", b"CONNECT", b"TRACE", b"OPTIONS", b"PATCH", b"BREW"])
        return method + b" /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    if kind == 7:
        return rng.choice([
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * rng.randrange(5, 5000) + b"\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nshort",
        ])
    if kind == 8:
        return rng.choice([b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET /\r\n\r\n", b"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
                           b"GET / HTTP/1.1\r\n\r\n", b"\r\n" * 5000])
    if kind == 9:
        return CLIENT_HELLO
    if kind == 10:
        auth = rng.choice([b"Bearer wrong", b"Bearer " + TOKEN.encode()[:-1], b"Basic dXNlcjpwYXNz",
                           b"Bearer " + b"x" * 5000, b"Bearer \xff\xfe", b"bearer", b"Bearer  " + b" " * 100])
        return b"GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: " + auth + b"\r\n\r\n"
    if kind == 11:
        reqs = [b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"] * rng.randrange(1, 50)
        reqs.insert(rng.randrange(len(reqs) + 1), b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n")
        return b"".join(reqs)
    if kind == 12:
        return rng.choice([b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n folded\r\n\r\n",
                           b"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",
                           b"GET / HTTP/1.1\r\nHost: a\r\nX: b\x00c\r\n\r\n",
                           b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                           b"GET http://evil/metrics HTTP/1.1\r\nHost: a\r\n\r\n"])
    return rng.choice([b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
                       b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx"])


# --- attackers ----------------------------------------------------------------


@dataclasses.dataclass
class Counts:
    connections: int = 0
    bad_inputs: int = 0
    bytes_sent: int = 0
    statuses: dict = dataclasses.field(default_factory=dict)
    closed_by_agent: int = 0


class _Slot:
    __slots__ = ("kind", "sock", "pending", "next_at", "sent_all", "source")

    def __init__(self, kind, source=None):
        self.kind = kind
        self.source = source  # the local address it connects from; None: any
        self.sock = None
        self.pending = b""
        self.next_at = 0.0
        self.sent_all = False


class Attackers:
    """Every attacking connection, driven from one thread by a selector."""

    def __init__(self, address, slow: int, silent: int, garbage: int, flood_per_second: int,
                 rng: random.Random, readers: int = 0, pipeline: int = READER_PIPELINE, sources=None):
        """`readers` slow readers, each sending `pipeline` requests at once
        and reading none of the answers; `sources` the local addresses the
        attackers connect from, in turn (None: 127.0.0.1)."""
        self.address = address
        self.rng = rng
        kinds = ["reader"] * readers + ["slow"] * slow + ["silent"] * silent + ["garbage"] * garbage
        self.sources = sources or [None]
        self.slots = [_Slot(kind, self.sources[i % len(self.sources)]) for i, kind in enumerate(kinds)]
        self.flood = flood_per_second
        self.flood_count = 0
        self.burst = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * pipeline
        self.counts = Counts()
        self.selector = selectors.DefaultSelector()
        # Slow readers are watched for the agent's close only (POLLRDHUP):
        # their answers are never read, so they are never readable-clean.
        self.hangups = select.poll()
        self.by_fd: dict[int, _Slot] = {}

    def _socket(self, source) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if source is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        return sock

    def _open(self, slot: _Slot, now: float) -> None:
        sock = self._socket(slot.source)
        err = sock.connect_ex(self.address)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            slot.next_at = now + RECONNECT_DELAY
            return
        slot.sock = sock
        slot.sent_all = False
        self.counts.connections += 1
        if slot.kind == "reader":
            slot.pending = self.burst
            self.counts.bad_inputs += 1
            slot.next_at = now
            self.by_fd[sock.fileno()] = slot
            self.hangups.register(sock, select.POLLRDHUP)
            return
        if slot.kind == "slow":
            slot.pending = b"GET /metrics HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: " + b"z" * 10000
            self.counts.bad_inputs += 1
        elif slot.kind == "garbage":
            slot.pending = hostile_request(self.rng)
            self.counts.bad_inputs += 1
        else:
            slot.pending = b""
            self.counts.bad_inputs += 1
        slot.next_at = now
        self.selector.register(sock, selectors.EVENT_READ, slot)

    def _close(self, slot: _Slot, now: float, by_agent: bool) -> None:
        if slot.sock is not None:
            if slot.kind == "reader":
                self.hangups.unregister(slot.sock)
                del self.by_fd[slot.sock.fileno()]
            else:
                self.selector.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None
            if by_agent:
                self.counts.closed_by_agent += 1
        # A slow reader comes back at once, as the attacker did.
        slot.next_at = now if slot.kind == "reader" else now + RECONNECT_DELAY

    def _send(self, slot: _Slot, now: float) -> None:
        if slot.kind == "slow":
            chunk, delay = slot.pending[:1], TRICKLE_EVERY
        elif slot.kind == "reader":
            chunk, delay = slot.pending[:262144], 0.0
        else:
            chunk, delay = slot.pending[:65536], 0.0
        if not chunk:
            slot.sent_all = True
            slot.next_at = float("inf")
            if slot.kind == "garbage":
                # Done: the agent answers and closes, and the slot comes back
                # with another input, instead of idling as a keep-alive
                # connection, which the agent evicts last.
                try:
                    slot.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            return
        try:
            n = slot.sock.send(chunk)
        except (BlockingIOError, InterruptedError):
            slot.next_at = now + 0.01
            return
        except OSError:
            self._close(slot, now, by_agent=True)
            return
        self.counts.bytes_sent += n
        slot.pending = slot.pending[n:]
        slot.next_at = now + delay

    def _read(self, slot: _Slot, now: float) -> None:
        try:
            data = slot.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(slot, now, by_agent=True)
            return
        for status in STATUS.findall(data):
            key = status.decode()
            self.counts.statuses[key] = self.counts.statuses.get(key, 0) + 1

    def run(self, stop: threading.Event) -> None:
        flood_credit = 0.0
        last = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                for key, _ in self.selector.select(0.02 if not self.by_fd else 0.005):
                    self._read(key.data, now)
                now = time.monotonic()
                for fd, _ in self.hangups.poll(0):
                    self._close(self.by_fd[fd], now, by_agent=True)
                for slot in self.slots:
                    if slot.sock is None:
                        if now >= slot.next_at:
                            self._open(slot, now)
                    elif now >= slot.next_at:
                        self._send(slot, now)
                flood_credit = min(flood_credit + (now - last) * self.flood, 50)
                last = now
                while flood_credit >= 1:
                    flood_credit -= 1
                    self.flood_count += 1
                    sock = self._socket(self.sources[self.flood_count % len(self.sources)])
                    sock.connect_ex(self.address)
                    sock.close()
                    self.counts.connections += 1
                    self.counts.bad_inputs += 1
        finally:
            for slot in self.slots:
                self._close(slot, time.monotonic(), by_agent=False)
            self.selector.close()


def tls_reader(address, source: str | None, context, burst: bytes, stop: threading.Event, counts: Counts) -> None:
    """A slow reader over TLS: handshakes, sends `burst`, reads nothing,
    and reconnects as soon as the agent closes the connection."""
    while not stop.is_set():
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(5.0)
        try:
            if source is not None:
                raw.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                raw.bind((source, 0))
            raw.connect(address)
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        except OSError:
            raw.close()
            stop.wait(RECONNECT_DELAY)
            continue
        counts.connections += 1
        counts.bad_inputs += 1
        with sock:
            sock.settimeout(1.0)
            try:
                sock.sendall(burst)
                counts.bytes_sent += len(burst)
            except OSError:
                pass  # the buffers are full (the agent is not reading), or it closed
            hangup = select.poll()
            hangup.register(sock.fileno(), select.POLLRDHUP)
            while not stop.is_set():
                if hangup.poll(100):
                    counts.closed_by_agent += 1
                    break


# --- the scraper ----------------------------------------------------------------


@dataclasses.dataclass
class Scrapes:
    ok: int = 0
    failed: list = dataclasses.field(default_factory=list)
    latencies: list = dataclasses.field(default_factory=list)
    sources_failing_seen: int = 0
    last_body: bytes = b""


def fetch(port: int, path: str = "/metrics", token: str | None = TOKEN, timeout: float = 10.0, tls=None,
          source: str | None = None):
    """The raw response; `tls` an ssl.SSLContext for an HTTPS agent,
    `source` the local address to connect from."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        raw.settimeout(timeout)
        if source:
            # The port at connect(), not bind(): bind() alone must find a port
            # free for every destination, a slow search among the attackers'
            # tens of thousands of TIME_WAIT sockets.
            raw.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            raw.bind((source, 0))
        raw.connect(("127.0.0.1", port))
    except BaseException:
        raw.close()
        raise
    try:
        s = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls is not None else raw
    except BaseException:
        raw.close()
        raise
    with s:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(262144)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def check_scrape(data: bytes, expected: dict[str, tuple[str, ...]]) -> tuple[str | None, int, bytes]:
    """(problem or None, failing sources, body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return f"no complete response head ({len(data)} bytes)", 0, b""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200 "):
        return f"status line {lines[0][:60]!r}", 0, b""
    length = next((int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                   if k.lower() == b"content-length"), -1)
    if length != len(body):
        return f"Content-Length {length} but {len(body)} bytes", 0, b""
    if not body.endswith(b"\n"):
        return "body does not end with a newline", 0, b""
    names = []
    for line in body.split(b"\n")[:-1]:
        if line.startswith(b"# HELP ") or line.startswith(b"# TYPE "):
            continue
        if not SAMPLE.match(line):
            return f"bad line {line[:80]!r}", 0, b""
        names.append(line.split(b"{")[0].split(b" ")[0].decode())
    if not names or not names[-1].startswith("agent_http_rejected"):
        return "the server's own families are not last", 0, b""
    success = {m.group(1).decode(): m.group(2) == b"1" for m in SUCCESS.finditer(body)}
    if set(success) != set(expected):
        return f"agent_source_success for {sorted(success)}", 0, b""
    for source, ok in success.items():
        present = any(n.startswith(expected[source]) for n in names)
        if present != ok and not (ok and not expected[source]):
            return f"{source}: success {int(ok)} but its families {'present' if present else 'absent'}", 0, b""
    return None, sum(1 for ok in success.values() if not ok), body


def scraper(port: int, stop: threading.Event, result: Scrapes, every: float, expected: dict, tls=None,
            source: str | None = None, token: str | None = TOKEN) -> None:
    next_at = time.monotonic()
    while not stop.is_set():
        start = time.monotonic()
        try:
            problem, failing, body = check_scrape(fetch(port, tls=tls, source=source, token=token), expected)
        except OSError as exc:
            problem, failing, body = f"{type(exc).__name__}: {exc}", 0, b""
        result.latencies.append(time.monotonic() - start)
        if problem is None:
            result.ok += 1
            result.sources_failing_seen += failing > 0
            result.last_body = body
        else:
            result.failed.append(problem)
        next_at += every
        stop.wait(max(0.0, next_at - time.monotonic()))


def _scraper_process(port: int, stop, sender, every: float, expected: dict, tls, source: str | None,
                     token: str | None) -> None:
    result = Scrapes()
    try:
        scraper(port, stop, result, every, expected, tls, source, token)
    finally:
        sender.send(result)
        sender.close()


# --- faults -----------------------------------------------------------------------


def faults(tree: pathlib.Path, pristine: pathlib.Path, agent: AgentProcess, conf: pathlib.Path,
           stop: threading.Event, fault_every: float, reload_every: float, rng: random.Random,
           done: dict) -> None:
    steps = [("netdev", b"Inter-|\n face |\n  eth0: 1 2 x\n"), ("meminfo", None), ("stat", b"cpu  1 2 x\n"),
             ("diskstats", b"   8 0 sda " + b"9" * 30 + b"\n"), ("uptime", b"\0\0\0\0")]
    base = conf.read_text()
    next_fault = time.monotonic() + fault_every if fault_every else float("inf")
    next_reload = time.monotonic() + reload_every if reload_every else float("inf")
    broken = None
    while not stop.wait(0.05):
        now = time.monotonic()
        if now >= next_fault:
            next_fault += fault_every
            if broken is not None:  # restore
                rel = source_files()[broken]
                shutil.copy(pristine / rel, tree / (rel + ".new"))
                os.replace(tree / (rel + ".new"), tree / rel)
                broken = None
            else:
                source, content = rng.choice(steps)
                path = tree / source_files()[source]
                if content is None:
                    path.unlink()
                else:
                    path.with_name(path.name + ".new").write_bytes(content)
                    os.replace(path.with_name(path.name + ".new"), path)
                broken = source
                done["faults"] = done.get("faults", 0) + 1
        if now >= next_reload:
            next_reload += reload_every
            flip = done.get("reloads", 0) % 2
            conf.write_text(base + f"keepalive-timeout = {75 if flip else 60}\n")
            agent.proc.send_signal(signal.SIGHUP)
            done["reloads"] = done.get("reloads", 0) + 1


# --- the run ------------------------------------------------------------------------


def status_of(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


@dataclasses.dataclass
class Report:
    seconds: float
    attackers: Counts
    scrapes: Scrapes
    faults: int
    reloads: int
    rejected: dict
    before: dict
    peak: dict
    after: dict
    connections_open_after: int
    alive: bool
    log_errors: list
    fault_log_lines: int

    @property
    def max_latency(self) -> float:
        return max(self.scrapes.latencies, default=float("inf"))

    @property
    def success(self) -> float:
        """The share of scrapes answered 200, complete."""
        total = self.scrapes.ok + len(self.scrapes.failed)
        return self.scrapes.ok / total if total else 0.0

    def percentile(self, q: float) -> float:
        values = sorted(self.scrapes.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("inf")

    def text(self) -> str:
        a, s = self.attackers, self.scrapes
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(a.statuses.items()))
        rejected = ", ".join(f"{k} {v}" for k, v in self.rejected.items() if v)
        return "\n".join([
            f"duration              {self.seconds:.0f} s",
            f"attacking connections {a.connections} ({a.connections / self.seconds:.0f}/s), "
            f"{a.closed_by_agent} closed by the agent",
            f"bad inputs tried      {a.bad_inputs} ({a.bytes_sent / 1e6:.1f} MB sent)",
            f"statuses they got     {statuses}",
            f"faults injected       {self.faults} /proc faults ({self.fault_log_lines} log lines: failed, "
            f"recovered), {self.reloads} SIGHUP reloads",
            f"scrapes               {s.ok} complete ({self.success:.1%}), {len(s.failed)} failed, "
            f"{s.sources_failing_seen} with a source failing",
            f"scrape latency        p50 {self.percentile(0.5) * 1000:.0f} ms, p99 "
            f"{self.percentile(0.99) * 1000:.0f} ms, max {self.max_latency * 1000:.0f} ms",
            f"agent rejected        {rejected}",
            f"agent RSS             {self.before['VmRSS'] / 1024:.1f} MiB before, "
            f"{self.peak['VmRSS'] / 1024:.1f} peak, {self.after['VmRSS'] / 1024:.1f} after",
            f"agent threads, fds    {self.before['Threads']}/{self.before['fds']} before, "
            f"{self.peak['Threads']}/{self.peak['fds']} peak, {self.after['Threads']}/{self.after['fds']} after",
            f"connections open      {self.connections_open_after} after the attack",
            f"agent alive           {self.alive}; {len(self.log_errors)} error lines in its log",
        ] + [f"  failed scrape: {p}" for p in s.failed[:10]] + [f"  log: {line}" for line in self.log_errors[:10]])


def attacker_sources(count: int) -> list[str] | None:
    """`count` loopback addresses in 127.1.0.0/16 (None for 0: 127.0.0.1),
    apart from the scraper's 127.0.0.x."""
    if count <= 0:
        return None
    return [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(count)]


def run(seconds: float = 60, slow: int = 100, silent: int = 50, garbage: int = 50, flood: int = 100,
        reload_every: float = 2.0, fault_every: float = 1.0, seed: int = 1, scrape_every: float = 0.2,
        tls: bool = False, scraper_source: str | None = "127.0.0.2", extra_args: tuple = (),
        readers: int = 0, pipeline: int = READER_PIPELINE, spread: int = 0, auth: bool = True) -> Report:
    """With `tls`, the agent serves HTTPS (a self-signed certificate made with
    the openssl command) and the scraper and the slow readers speak TLS;
    the other attackers do not, so to the agent they are stalled or failed
    handshakes.  The attackers connect from 127.0.0.1, or
    from `spread` addresses of 127.1.0.0/16, and the scraper from
    `scraper_source` (another host, as Prometheus is; None: the attackers'
    own address).  Without `auth` the agent requires no token."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="agent-stress-") as tmp:
        tmp = pathlib.Path(tmp)
        tree = tmp / "proc"
        shutil.copytree(TREE, tree)
        tokens = tmp / "tokens"
        tokens.write_text(f"# stress\n{TOKEN}\n")
        tokens.chmod(0o600)
        conf = tmp / "agent.conf"
        conf.write_text(f"[agent]\nprocfs = {tree}\nsysfs = {SYSFS_TREE}\n" +
                        (f"auth-token-file = {tokens}\n" if auth else ""))
        context = None
        if tls:
            import ssl
            import subprocess
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=agent",
                            "-addext", "subjectAltName=IP:127.0.0.1"], cwd=tmp, check=True, capture_output=True,
                           timeout=30)
            with conf.open("a") as f:
                f.write(f"tls-cert = {tmp / 'cert.pem'}\ntls-key = {tmp / 'key.pem'}\n")
            context = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
        # Each collector the agent runs, checked for all of its families or none.
        expected = expected_families(["--config", str(conf), *extra_args])
        with AgentProcess("--config", str(conf), *extra_args) as agent:
            pid = agent.proc.pid
            before = status_of(pid)
            peak = dict(before)
            stop = threading.Event()
            sources = attacker_sources(spread)
            # Over TLS, the slow readers speak it (a thread each, blocking
            # sockets); the other attackers don't.
            attackers = Attackers(("127.0.0.1", agent.port), slow, silent, garbage, flood, rng,
                                  readers=0 if tls else readers, pipeline=pipeline, sources=sources)
            done: dict = {}
            token = TOKEN if auth else None
            threads = [
                threading.Thread(target=attackers.run, args=(stop,), daemon=True),
                *(threading.Thread(target=tls_reader, daemon=True, args=(
                    ("127.0.0.1", agent.port), (sources or [None])[i % len(sources or [None])], context,
                    attackers.burst, stop, attackers.counts)) for i in range(readers if tls else 0)),
                threading.Thread(target=faults, args=(tree, TREE, agent, conf, stop, fault_every, reload_every,
                                                      random.Random(seed + 1), done), daemon=True),
            ]
            # The scraper in a process of its own: in this one, the attackers'
            # thread would hold the interpreter and delay it, and its
            # latencies would be partly ours.
            fork = multiprocessing.get_context("fork")
            scrape_stop = fork.Event()
            receiver, sender = fork.Pipe(duplex=False)
            scraping = fork.Process(target=_scraper_process, daemon=True, args=(
                agent.port, scrape_stop, sender, scrape_every, expected, context, scraper_source, token))
            start = time.monotonic()
            scraping.start()
            for t in threads:
                t.start()
            while time.monotonic() - start < seconds and agent.proc.poll() is None:
                time.sleep(0.1)
                try:
                    now = status_of(pid)
                except OSError:
                    break
                for key, value in now.items():
                    peak[key] = max(peak[key], value)
            stop.set()
            scrape_stop.set()
            scrapes = receiver.recv() if receiver.poll(30) else Scrapes(failed=["the scraper sent no result"])
            scraping.join(15)
            for t in threads:
                t.join(15)
            elapsed = time.monotonic() - start
            alive = agent.proc.poll() is None
            # Back to rest: the attackers' connections closed, the tree whole.
            for rel in source_files().values():
                shutil.copy(TREE / rel, tree / rel)
            rejected, open_after, after = {}, -1, before
            deadline = time.monotonic() + 15
            while alive and time.monotonic() < deadline:
                problem, _, body = check_scrape(fetch(agent.port, tls=context, token=token), expected)
                if problem is None:
                    rejected = {m.group(1).decode(): int(m.group(2)) for m in re.finditer(
                        rb'agent_http_rejected_total\{reason="(\w+)"\} (\d+)', body)}
                    open_after = int(re.search(rb"agent_http_connections_open (\d+)", body).group(1))
                    if open_after == 1:
                        break
                time.sleep(0.2)
            if alive:
                after = status_of(pid)
            lines = agent.log().splitlines()
            # The injected faults are meant to log one line each ("source X
            # failed", then "recovered"); anything else at ERROR is a finding.
            fault_lines = [line for line in lines if re.search(r"source \w+ (failed|recovered)", line)]
            log_errors = [line for line in lines if line not in fault_lines and (
                " ERROR " in line or "Traceback" in line or "unexpected error" in line)]
        return Report(elapsed, attackers.counts, scrapes, done.get("faults", 0), done.get("reloads", 0),
                      rejected, before, peak, after, open_after, alive, log_errors, len(fault_lines))


# The attacks of issue 12, alone and together, from many source addresses;
# the scraper once a second from 127.0.0.2, with no /proc faults or reloads.
ATTACKS = {
    "slow-readers": dict(readers=80),
    "slowloris": dict(slow=150),
    "flood": dict(flood=300),
    "all": dict(readers=80, slow=150, flood=300),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--attack", choices=["mixed", *ATTACKS], default="mixed",
                   help="mixed: the options below; the others: issue 12's attacks over --spread addresses, "
                        "one scrape a second, judged by --min-success and the p99 latency")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--slow", type=int, default=100)
    p.add_argument("--silent", type=int, default=50)
    p.add_argument("--garbage", type=int, default=50)
    p.add_argument("--flood", type=int, default=100, help="connections a second opened and closed at once")
    p.add_argument("--readers", type=int, default=0,
                   help="slow readers: each sends --pipeline requests at once and reads nothing")
    p.add_argument("--pipeline", type=int, default=READER_PIPELINE)
    p.add_argument("--spread", type=int, default=0,
                   help="attack from this many addresses of 127.1.0.0/16 (0: 127.0.0.1); --attack: 250")
    p.add_argument("--no-auth", action="store_true", help="the agent requires no bearer token")
    p.add_argument("--reload-every", type=float, default=2.0)
    p.add_argument("--fault-every", type=float, default=1.0)
    p.add_argument("--max-latency", type=float, default=1.0)
    p.add_argument("--min-success", type=float, default=0.99, help="with --attack: the share of 200s required")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tls", action="store_true", help="the agent serves HTTPS; the attackers don't speak TLS")
    p.add_argument("--same-host", action="store_true",
                   help="scrape from the attackers' address (127.0.0.1) instead of 127.0.0.2")
    args = p.parse_args(argv)
    source = None if args.same_host else "127.0.0.2"
    if args.attack == "mixed":
        report = run(args.seconds, args.slow, args.silent, args.garbage, args.flood, args.reload_every,
                     args.fault_every, args.seed, tls=args.tls, scraper_source=source, readers=args.readers,
                     pipeline=args.pipeline, spread=args.spread, auth=not args.no_auth)
    else:
        counts = dict(dict(slow=0, silent=0, garbage=0, flood=0, readers=0), **ATTACKS[args.attack])
        report = run(args.seconds, reload_every=0, fault_every=0, seed=args.seed, scrape_every=1.0, tls=args.tls,
                     scraper_source=source, pipeline=args.pipeline, spread=args.spread or 250,
                     auth=not args.no_auth, **counts)
    print(report.text())
    if args.attack == "mixed":
        bad = report.scrapes.failed or report.max_latency > args.max_latency
    else:
        bad = report.success < args.min_success or report.percentile(0.99) > args.max_latency
    bad = bad or not report.alive or report.connections_open_after != 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
