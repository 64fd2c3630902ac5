"""Push mode: every interval, collect once and send the points to InfluxDB,
Graphite, StatsD or OTLP/HTTP receivers, for hosts that no Prometheus
scrapes.

    targets = [parse_push_url(u) for u in urls]        # PushError: bad URL
    pusher = Pusher(targets, interval, registry.collect, hostname, log)
    pusher.start(); ...; pusher.stop()

One thread collects (the same shared collection a scrape uses; it holds no
lock of the scrape path beyond the collect() call) and stamps, encodes and
queues the points for each target.  Each target has its own sender thread
and its own bounded buffer, so a receiver that is down or slow delays only
its own points: never a scrape, never the collection, never another target.
A full buffer drops its oldest points and counts them; a failed send keeps
the points and retries after an exponential, capped, jittered backoff.
Every network operation has a timeout.  docs/PUSH.md has the details.
"""

from __future__ import annotations

import collections
import errno
import logging
import math
import random
import select
import socket
import threading
import time
import urllib.parse

from agent import metrics, otlp, push_formats
from agent.metrics import Family
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

PUSH_SENT = metrics.counter("agent_push_sent", "Points the push target accepted.", ("target",))
PUSH_DROPPED = metrics.counter(
    "agent_push_dropped", "Points given up: the oldest when the buffer was full, or refused by the receiver.",
    ("target",))
PUSH_ERRORS = metrics.counter("agent_push_errors", "Failed attempts to send to the push target.", ("target",))
PUSH_QUEUE = metrics.gauge("agent_push_queue_length", "Points waiting to be sent to the push target.", ("target",))

DEFAULT_PORTS = {"influx": 8086, "influx+udp": 8089, "graphite": 2003, "statsd": 8125, "otlp": 4318}
# The `format` option's values, the default first (OTLP's is `encoding`).
FORMATS = {"graphite": ("tagged", "path"), "statsd": ("dogstatsd", "path"), "otlp": otlp.ENCODINGS}
FORMAT_OPTION = {"graphite": "format", "statsd": "format", "otlp": "encoding"}
OPTIONS = {
    "influx": ("timeout", "db", "rp"),
    "influx+udp": ("timeout",),
    "graphite": ("timeout", "format", "prefix"),
    "statsd": ("timeout", "format", "prefix"),
    "otlp": ("timeout", "encoding"),
}
DEFAULT_PATHS = {"influx": "/write", "otlp": "/v1/metrics"}
# OTLP/HTTP: the statuses a client retries (with Retry-After when given);
# any other failure status drops the batch.
OTLP_RETRY_STATUSES = (429, 502, 503, 504)
RETRY_AFTER_MAX = 300.0
DEFAULT_TIMEOUT = 5.0
# Entries per HTTP request or TCP write; a UDP datagram's payload, small
# enough for one unfragmented Ethernet frame.
BATCH_ENTRIES = 5000
DATAGRAM_BYTES = 1400
BACKOFF_MAX = 30.0


class PushError(ValueError):
    """A bad --push URL: one line naming it."""


@record
class PushTarget:
    scheme: str  # influx, influx+udp, graphite, statsd, otlp
    host: str
    port: int
    path: str = ""  # influx: the write path and query, e.g. /write?db=agent; otlp: /v1/metrics
    format: str = ""  # graphite: tagged|path; statsd: dogstatsd|path; otlp: protobuf|json
    prefix: str = ""
    timeout: float = DEFAULT_TIMEOUT

    @property
    def name(self) -> str:
        """The `target` label: the URL without the timeout."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.scheme}://{host}:{self.port}"
        if self.scheme in DEFAULT_PATHS and self.path != DEFAULT_PATHS[self.scheme]:
            text += self.path
        if self.scheme == "influx":
            return text
        options = []
        if self.scheme in FORMATS and self.format != FORMATS[self.scheme][0]:
            options.append((FORMAT_OPTION[self.scheme], self.format))
        if self.prefix:
            options.append(("prefix", self.prefix))
        return text + ("?" + urllib.parse.urlencode(options) if options else "")

    def __str__(self) -> str:
        return self.name


def parse_push_url(url: str) -> PushTarget:
    """influx://host[:port][/path][?db=&rp=&timeout=] (HTTP POST, /write by
    default), influx+udp://host[:port], graphite://host[:port][?format=tagged|path&prefix=],
    statsd://host[:port][?format=dogstatsd|path&prefix=],
    otlp://host[:port][/path][?encoding=protobuf|json] (OTLP/HTTP, port 4318
    and /v1/metrics by default); any of them ?timeout=SECONDS.  IPv6 hosts
    in brackets."""

    def bad(reason: str) -> PushError:
        return PushError(f"--push {url!r}: {reason}")

    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad(f"unknown scheme {parts.scheme!r} (use influx, influx+udp, graphite, statsd or otlp)")
    if parts.username is not None or parts.password is not None:
        raise bad("credentials in the URL are not supported")
    host = parts.hostname
    if not host:
        raise bad("no host")
    if port == 0:
        raise bad("port 0")
    if parts.fragment:
        raise bad("a fragment (#...) means nothing here")
    if parts.path not in ("", "/") and scheme not in DEFAULT_PATHS:
        raise bad(f"a path means nothing for {scheme}")
    try:
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise bad(f"malformed query {parts.query!r}") from None
    options: dict[str, str] = {}
    for key, value in query:
        if key not in OPTIONS[scheme]:
            raise bad(f"unknown option {key!r} for {scheme} (known: {', '.join(OPTIONS[scheme])})")
        if key in options:
            raise bad(f"option {key!r} given twice")
        options[key] = value
    timeout = DEFAULT_TIMEOUT
    if "timeout" in options:
        try:
            timeout = float(options.pop("timeout"))
        except ValueError:
            raise bad("timeout must be a number of seconds") from None
        if not (math.isfinite(timeout) and 0 < timeout <= 300):
            raise bad("timeout must be more than 0 and at most 300 seconds")
    fmt = prefix = path = ""
    if scheme in FORMATS:
        option = FORMAT_OPTION[scheme]
        fmt = options.pop(option, FORMATS[scheme][0])
        if fmt not in FORMATS[scheme]:
            raise bad(f"{option} must be {' or '.join(FORMATS[scheme])}")
        prefix = options.pop("prefix", "")
        if prefix != push_formats.sanitise_prefix(prefix):
            raise bad("prefix: dot-separated parts of letters, digits, _ and -")
    if scheme == "influx":
        query_out = [(k, options[k]) for k in ("db", "rp") if k in options]
        if any(v == "" for _, v in query_out):
            raise bad("db and rp must not be empty")
        path = (parts.path if parts.path not in ("", "/") else DEFAULT_PATHS[scheme])
        path += "?" + urllib.parse.urlencode(query_out) if query_out else ""
    elif scheme == "otlp":
        path = parts.path if parts.path not in ("", "/") else DEFAULT_PATHS[scheme]
    return PushTarget(scheme, host, port or DEFAULT_PORTS[scheme], path, fmt, prefix, timeout)


# --- transports ----------------------------------------------------------


class SendFailed(Exception):
    """A send that did not (wholly) succeed.  Of the batch, the first
    `delivered` entries went (UDP goes datagram by datagram), the next
    `refused` were refused for good (dropped, never retried), and the rest
    are kept and retried after a backoff if nothing was refused."""

    def __init__(self, reason: str, delivered: int = 0, refused: int = 0, retry_after: float = 0.0):
        super().__init__(reason)
        self.delivered = delivered
        self.refused = refused
        self.retry_after = retry_after  # the receiver's Retry-After, in seconds (0: none)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, OSError) and exc.errno else f"{type(exc).__name__}: {text}"


class KeptAliveHTTP:
    """POSTs on a kept-alive connection; a request that fails on a reused
    connection (the server closed it while idle) is retried once at once on
    a new one: the points carry their timestamps, so twice is harmless."""

    def __init__(self, target: PushTarget, headers: dict[str, str]):
        # Only with an HTTP target: http.client imports ssl, which costs
        # about 5 MiB of resident memory (docs/PUSH.md, footprint).
        import http.client
        self.http = http.client
        self.target = target
        self.conn = None
        self.headers = headers

    def post(self, body: bytes):
        """The response of a 2xx, or (response, one-line reason) otherwise;
        SendFailed when no answer came."""
        for attempt in (0, 1):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self.http.HTTPConnection(self.target.host, self.target.port,
                                                       timeout=self.target.timeout)
            try:
                self.conn.request("POST", self.target.path, body, self.headers)
                resp = self.conn.getresponse()
                detail = resp.read(512)
                complete = resp.isclosed()
            except (OSError, self.http.HTTPException) as exc:
                self.close()
                if reused and attempt == 0 and isinstance(
                        exc, (self.http.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    continue
                raise SendFailed(_reason(exc)) from None
            if not complete or resp.will_close:
                self.close()
            if 200 <= resp.status < 300:
                return resp, ""
            self.close()
            return resp, f"HTTP {resp.status} {resp.reason}: {detail.decode('utf-8', 'replace').strip()[:200]}"
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class InfluxHTTP(KeptAliveHTTP):
    """POST line protocol."""

    def __init__(self, target: PushTarget):
        super().__init__(target, {"Content-Type": "text/plain; charset=utf-8"})

    def send(self, entries: list[bytes]) -> None:
        resp, message = self.post(b"".join(entries))
        if message:
            # 4xx: the receiver refused these points (bad line, unknown
            # database, authorisation) and would refuse them again.
            retry = resp.status >= 500 or resp.status in (408, 429)
            raise SendFailed(message, refused=0 if retry else len(entries))


class OtlpHTTP(KeptAliveHTTP):
    """OTLP/HTTP export: POST of an ExportMetricsServiceRequest, gzipped.
    As the OTLP specification says: 429, 502, 503 and 504 and failures to
    connect or send are retried (after the receiver's Retry-After if it gave
    one); any other status drops the batch, which the receiver would refuse
    again."""

    def __init__(self, target: PushTarget, hostname: str):
        from agent import __version__
        super().__init__(target, {"Content-Type": otlp.CONTENT_TYPES[target.format], "Content-Encoding": "gzip"})
        self.resource = [("host.name", hostname), ("service.name", "monitoring-agent"),
                         ("service.version", __version__)]
        self.scope = ("monitoring-agent", __version__)

    def send(self, entries: list) -> None:
        import zlib
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip member
        payload = otlp.request(entries, self.resource, self.scope, self.target.format)
        resp, message = self.post(compressor.compress(payload) + compressor.flush())
        if message:
            if resp.status in OTLP_RETRY_STATUSES:
                raise SendFailed(message, retry_after=retry_after_seconds(resp.getheader("Retry-After")))
            raise SendFailed(message, refused=len(entries))


def retry_after_seconds(value: str | None, now: float | None = None) -> float:
    """An HTTP Retry-After (delay-seconds or an HTTP date) in seconds from
    now, at most RETRY_AFTER_MAX; 0 without a usable one."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_MAX)
    from email.utils import parsedate_to_datetime  # only for a receiver that sends a date
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
    return min(max(0.0, when - (time.time() if now is None else now)), RETRY_AFTER_MAX)


class GraphiteTCP:
    """Plaintext over one kept TCP connection.  A Graphite receiver never
    writes, so a readable socket means the peer closed it: reconnect before
    writing rather than lose a batch into a dead connection."""

    def __init__(self, target: PushTarget):
        self.target = target
        self.sock: socket.socket | None = None

    def send(self, entries: list[bytes]) -> None:
        if self.sock is not None and self._peer_gone():
            self.close()
        try:
            if self.sock is None:
                self.sock = socket.create_connection((self.target.host, self.target.port), self.target.timeout)
            # Since Python 3.5 the timeout bounds the whole sendall.
            self.sock.sendall(b"".join(entries))
        except OSError as exc:
            # Part of the batch may have gone: resending it may repeat some
            # points, with their timestamps: at least once.
            self.close()
            raise SendFailed(_reason(exc)) from None

    def _peer_gone(self) -> bool:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class UDP:
    """Datagrams of up to DATAGRAM_BYTES, whole entries only, on a connected
    socket: a receiver that is down is reported (ECONNREFUSED, from the
    ICMP answer to an earlier datagram) and the points are kept; a datagram
    sent just before is lost, as UDP allows."""

    def __init__(self, target: PushTarget):
        self.target = target
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        last: OSError | None = None
        for family, kind, proto, _, addr in socket.getaddrinfo(
                self.target.host, self.target.port, type=socket.SOCK_DGRAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.target.timeout)
                sock.connect(addr)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError(errno.EADDRNOTAVAIL, "no address")

    def send(self, entries: list[bytes]) -> None:
        delivered = 0
        try:
            if self.sock is None:
                self.sock = self._connect()
            for count, datagram in packed(entries, DATAGRAM_BYTES):
                try:
                    self.sock.send(datagram)
                except OSError as exc:
                    if exc.errno == errno.EMSGSIZE and count == 1:
                        raise SendFailed(f"a {len(datagram)}-byte point is too large for a datagram",
                                         delivered=delivered, refused=1) from None
                    raise
                delivered += count
        except OSError as exc:
            self.close()
            raise SendFailed(_reason(exc), delivered=delivered) from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def packed(entries: list[bytes], limit: int):
    """(entries in it, datagram) pairs, never splitting an entry."""
    chunk: list[bytes] = []
    size = 0
    for entry in entries:
        if chunk and size + len(entry) > limit:
            yield len(chunk), b"".join(chunk)
            chunk, size = [], 0
        chunk.append(entry)
        size += len(entry)
    if chunk:
        yield len(chunk), b"".join(chunk)


def make_transport(target: PushTarget, hostname: str):
    if target.scheme == "influx":
        return InfluxHTTP(target)
    if target.scheme == "otlp":
        return OtlpHTTP(target, hostname)
    if target.scheme == "graphite":
        return GraphiteTCP(target)
    return UDP(target)


def encoder_for(target: PushTarget) -> Callable[[list, str, int], list[bytes]]:
    """(families, host, timestamp in ns) -> entries; targets with equal
    encoders share one encoding per collection."""
    if target.scheme in ("influx", "influx+udp"):
        return push_formats.influx_lines
    if target.scheme == "otlp":
        encoding = target.format
        return lambda families, host, ts_ns: push_formats.otlp_entries(families, ts_ns, encoding)
    prefix = target.prefix
    if target.scheme == "graphite":
        fn = push_formats.graphite_tagged if target.format == "tagged" else push_formats.graphite_path
        return lambda families, host, ts_ns: fn(families, host, ts_ns // 1_000_000_000, prefix)
    fn = push_formats.statsd_dogstatsd if target.format == "dogstatsd" else push_formats.statsd_path
    return lambda families, host, ts_ns: fn(families, host, prefix)


def encoder_key(target: PushTarget) -> tuple:
    if target.scheme in ("influx", "influx+udp"):
        return ("influx",)
    return (target.scheme, target.format, target.prefix)


# --- the pusher ----------------------------------------------------------


class TargetState:
    """One target's buffer, counters and backoff.  `lock` guards the buffer
    and counters only; no I/O ever happens under it."""

    def __init__(self, target: PushTarget, limit: int, hostname: str = ""):
        self.target = target
        self.name = target.name
        self.limit = max(1, limit)
        self.transport = make_transport(target, hostname)
        self.encode = encoder_for(target)
        self.key = encoder_key(target)
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.buffer: collections.deque[bytes] = collections.deque()
        self.in_flight = 0
        self.sent = self.dropped = self.errors = 0
        self.backoff = 0.0
        self.next_try = 0.0
        self.failing_since: float | None = None
        self.failed_attempts = 0
        self.dropped_before_failing = 0
        self.overflowing = False  # a "buffer full" line was logged; cleared once it drains
        self.thread: threading.Thread | None = None

    def queue_length(self) -> int:
        with self.lock:
            return len(self.buffer) + self.in_flight

    def _trim(self) -> int:
        """Drop the oldest waiting points past the limit (in-flight ones count)."""
        over = len(self.buffer) + self.in_flight - self.limit
        for _ in range(max(0, over)):
            self.buffer.popleft()
        if over > 0:
            self.dropped += over
        return max(0, over)

    def enqueue(self, entries: list[bytes]) -> bool:
        """Queue a collection's entries; True the first time they overflow."""
        with self.lock:
            self.buffer.extend(entries)
            over = self._trim()
            self.ready.notify()
            first = over > 0 and not self.overflowing
            self.overflowing = self.overflowing or over > 0
            return first

    def take(self, n: int) -> list[bytes]:
        with self.lock:
            batch = [self.buffer.popleft() for _ in range(min(n, len(self.buffer)))]
            self.in_flight = len(batch)
            return batch

    def delivered(self, batch: list[bytes]) -> None:
        with self.lock:
            self.in_flight = 0
            self.sent += len(batch)
            if not self.buffer:
                self.overflowing = False

    def failed(self, batch: list[bytes], exc: SendFailed) -> None:
        with self.lock:
            self.in_flight = 0
            self.errors += 1
            self.sent += exc.delivered
            self.dropped += exc.refused
            # The rest goes back in front, oldest first, and past the limit
            # the oldest go.
            self.buffer.extendleft(reversed(batch[exc.delivered + exc.refused:]))
            self._trim()


class Pusher:
    def __init__(self, targets: list[PushTarget], interval: float, collect: Callable[[], list], hostname: str,
                 log: logging.Logger, buffer_limit: int = 10_000):
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError(f"push interval must be a positive number of seconds, not {interval!r}")
        self.interval = float(interval)
        self.collect = collect
        self.hostname = hostname
        self.log = log
        self.buffer_limit = buffer_limit
        self.states = [TargetState(t, buffer_limit, hostname) for t in targets]
        # The first retry comes after about this long, doubling to the cap,
        # each delay jittered to 50-100 % so a fleet does not retry in step.
        self.backoff_initial = min(1.0, self.interval)
        self.backoff_max = max(BACKOFF_MAX, self.interval)
        self.collections = 0
        self._stop = threading.Event()  # the collector's
        self._stopping = threading.Event()  # the senders', set once the collector is done
        self._stop_deadline = math.inf
        self._collector: threading.Thread | None = None
        self._collect_failing = False

    # -- public ------------------------------------------------------------

    def start(self) -> None:
        if self._collector is not None:
            raise RuntimeError("Pusher already started")
        for st in self.states:
            st.thread = threading.Thread(target=self._send_loop, args=(st,), daemon=True,
                                         name=f"push {st.name}")
            st.thread.start()
        self._collector = threading.Thread(target=self._collect_loop, daemon=True, name="push collect")
        self._collector.start()
        self.log.info("pushing every %gs to %s", self.interval, ", ".join(st.name for st in self.states))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop collecting; give the senders until `timeout` to send what is
        buffered (a target in backoff is not retried), then return.  A sender
        still stuck in a send is abandoned (a daemon thread, bounded by the
        target's timeout)."""
        deadline = time.monotonic() + timeout
        self._stop_deadline = deadline
        self._stop.set()
        # The collector first, so the senders see its last points.
        if self._collector is not None:
            self._collector.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        for st in self.states:
            with st.lock:
                st.ready.notify_all()
        for st in self.states:
            if st.thread is not None:
                st.thread.join(max(0.0, deadline - time.monotonic()))
        for st in self.states:
            if st.thread is not None and st.thread.is_alive():
                self.log.warning("push to %s: still sending at stop, %d points abandoned",
                                 st.name, st.queue_length())
            elif st.queue_length():
                self.log.warning("push to %s: %d points not sent at stop", st.name, st.queue_length())

    def families(self) -> list[Family]:
        sent, dropped, errors, queued = [], [], [], []
        for st in self.states:
            with st.lock:
                labels = (st.name,)
                sent.append((labels, st.sent))
                dropped.append((labels, st.dropped))
                errors.append((labels, st.errors))
                queued.append((labels, len(st.buffer) + st.in_flight))
        return [Family(PUSH_SENT, sent), Family(PUSH_DROPPED, dropped), Family(PUSH_ERRORS, errors),
                Family(PUSH_QUEUE, queued)]

    # -- collection ----------------------------------------------------------

    def _collect_loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._collect_once()
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # a slow collection: skip the ticks it missed
                next_at = now + self.interval - (now - next_at) % self.interval
            self._stop.wait(next_at - now)

    def _collect_once(self) -> None:
        try:
            families = self.collect()
        except Exception as exc:  # the loop must outlive a bad collection; it is logged
            if not self._collect_failing:
                self.log.error("push: collection failed: %s: %s", type(exc).__name__, exc)
            self._collect_failing = True
            return
        if self._collect_failing:
            self.log.info("push: collection recovered")
            self._collect_failing = False
        self.collections += 1
        timestamp_ns = time.time_ns()
        encoded: dict[tuple, list[bytes]] = {}
        for st in self.states:
            entries = encoded.get(st.key)
            if entries is None:
                entries = encoded[st.key] = st.encode(families, self.hostname, timestamp_ns)
            if st.enqueue(entries):
                self.log.warning("push to %s: buffer full (%d points), dropping the oldest", st.name, st.limit)

    # -- sending ---------------------------------------------------------------

    def _send_loop(self, st: TargetState) -> None:
        try:
            while True:
                with st.lock:
                    # Read under the lock: stop() notifies under it, so a
                    # stop is either seen here or wakes the wait below.
                    stopping = self._stopping.is_set()
                    if stopping and time.monotonic() >= self._stop_deadline:
                        return
                    wait = st.next_try - time.monotonic()
                    if wait > 0:
                        if stopping:
                            return  # in backoff: do not hold up the stop
                        st.ready.wait(wait)
                        continue
                    if not st.buffer:
                        if stopping:
                            return
                        st.ready.wait()
                        continue
                batch = st.take(BATCH_ENTRIES)
                try:
                    st.transport.send(batch)
                except SendFailed as exc:
                    st.failed(batch, exc)
                    self._on_failure(st, exc)
                else:
                    st.delivered(batch)
                    self._on_success(st)
        finally:
            st.transport.close()

    def _on_failure(self, st: TargetState, exc: SendFailed) -> None:
        with st.lock:
            st.failed_attempts += 1
            first = st.failing_since is None
            if first:
                st.failing_since = time.monotonic()
                st.dropped_before_failing = st.dropped - exc.refused
            if not exc.refused:
                st.backoff = self.backoff_initial if st.backoff == 0 else min(st.backoff * 2, self.backoff_max)
                delay = max(st.backoff * random.uniform(0.5, 1.0), exc.retry_after)
                st.next_try = time.monotonic() + delay
        if first:
            what = f"{exc.refused} points refused, dropped" if exc.refused else "retrying with backoff"
            self.log.error("push to %s failing: %s (%s)", st.name, exc, what)

    def _on_success(self, st: TargetState) -> None:
        with st.lock:
            was_failing = st.failing_since is not None
            attempts, dropped = st.failed_attempts, st.dropped - st.dropped_before_failing
            st.failing_since = None
            st.failed_attempts = 0
            st.backoff = st.next_try = 0.0
        if was_failing:
            self.log.info("push to %s recovered after %d failed attempts (%d points dropped meanwhile)",
                          st.name, attempts, dropped)
