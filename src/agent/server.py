"""The HTTP/1.1 server: connections in, requests to a router, answers out.

It knows nothing about /proc nor about what the paths mean: it reads a
`Request` (agent.server_request), hands it to a `Router`
(agent.server_routes, whose standard routes call `scrape()` and `health()`
and append the server's own families, agent_http_*), and writes the
`Response`.  Which connection to close when the slots are full is the
connection table's business (agent.server_table).  Nor does it know how
access control is configured: `Settings` carries ready-made objects (an
allowlist with `permits(host)`, bearer tokens with `check(authorization)`,
a TLS listener with `wrap(sock)` and `handshake(sock, deadline)`), so the
server never imports ssl, hashlib or hmac, which cost a few MiB of RSS to
an agent that uses none of them.

Why not http.server: BaseHTTPRequestHandler reads headers through
email.parser with only per-line (64 KiB) and count (100) limits, so it has
no total header bound to answer 431 with; it uses one socket timeout for an
idle keep-alive connection and a half-sent request, so it can't tell a slow
client from an idle one; ThreadingHTTPServer starts a thread per connection
without a cap; and it writes a response in pieces through a buffered file.
This server is small instead: one acceptor thread, one thread per
connection up to a cap, the request head read into one buffer, the
response written by one loop that notices a client not reading.

`Settings` is one immutable value that `configure()` swaps whole (a SIGHUP
reload): the acceptor reads it once per connection (allowlist, TLS, the
cap), a connection thread once per request (limits, tokens), so no thread
ever sees half the old and half the new values.

Limits and controls, in the order a connection meets them:
- a peer the allowlist does not permit is closed at accept, before a byte
  is read, with no response;
- at most `max_connections` connections at once.  Past it, one is evicted
  to make room: first one making no progress on its client's side (a
  write blocked, an answered pipeline, lingering after an error), then one
  without a request in progress (handshaking, sending a head, idle between
  keep-alive requests) of the peer address holding the most connections;
  agent.server_table has the order.  Only when every slot is busy
  answering a client that reads is the newcomer answered 503 (closed
  without a response over TLS);
- one answer in flight per connection: a connection's next (pipelined)
  request is read only once the previous answer is written, and a write
  waits while more than NOTSENT_BYTES of answers are unsent to the client
  (TCP_NOTSENT_LOWAT), so a client that sends thousands of requests and
  reads nothing gets only as many answers as its receive window holds;
  a write that moves no byte for STALL_STEP marks the connection stalled
  (evictable first); one not done within `write_timeout` closes it;
- a pipelined request waits while another client's request is answered,
  and pipelined requests are answered one at a time, at most 1,000 a
  second (agent.server_table), so that pipelines nobody reads cannot take
  the interpreter from a scraper;
- over TLS, the handshake happens in the connection's thread, never on the
  accept path, and must finish within `header_timeout`;
- a new connection's first request head must arrive within `header_timeout`
  (else it is closed, with 408 if it sent part of one); a later head within
  `header_timeout` of its first byte; an idle keep-alive connection is
  closed after `keepalive_timeout`;
- a request head (request line and headers) is at most `max_header_bytes`
  and MAX_HEADER_FIELDS fields: past it, 431 (414 when the request line
  alone is longer); it is parsed in time linear in its size, whatever its
  shape (agent.server_request);
- a request body is read only up to 1 KiB (Content-Length beyond that:
  413; Transfer-Encoding: 411);
- with bearer tokens, every path answers 401 with WWW-Authenticate unless
  the request carries a valid `Authorization: Bearer` (/health is exempt
  unless `health_requires_auth`);
- methods a route does not take get 405.
Every refusal is counted in agent_http_rejected_total{reason}.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
import time

from agent import __version__, metrics
from agent.metrics import Family, Series
from agent.records import record
from agent.server_request import (MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADER_FIELDS, Reject, SilentTimeout,
                                  holds_a_head, read_request)
from agent.server_routes import TEXT_PLAIN, Router, standard_routes
from agent.server_table import STALL_STEP, Connection, ConnectionTable

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Any, Callable

    from agent.server_request import Request
    from agent.server_routes import Response

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "MAX_HEADER_FIELDS", "REJECT_REASONS", "Server", "Settings"]

# Closing a socket with unread input makes Linux send RST, which can destroy
# a response the client has not read yet.  So after a response we half-close
# and read what the client still sends, for at most this long and this much.
LINGER_SECONDS = 1.0
LINGER_BYTES = 65536
MAX_LINGERING_REJECTS = 256
# A full accept queue drops SYNs, and the client retries only after a second:
# a deep queue lets a scraper's connection wait behind a burst instead.
LISTEN_BACKLOG = 1024
# At most one warning this often while the connection cap is being hit.
PRESSURE_WARNING_SECONDS = 60.0
# Answers the kernel holds unsent for a connection before a write waits
# (TCP_NOTSENT_LOWAT).  Only unsent bytes count, not those in flight, so a
# client that reads gets its answer as fast as without it.
NOTSENT_BYTES = 16384
# One send() at most this much: a TLS record is 16 KiB, and a write that
# waits is retried with the same bytes.
WRITE_CHUNK = 262144

# Every reason is exposed from the start (at 0), so a rate() never misses
# the first refusal.
REJECT_REASONS = (
    "not_allowed",           # peer not in the allowlist: closed at accept
    "too_many_connections",  # every slot busy with a request: 503 or closed
    "evicted",               # a waiting, stalled or pipelining connection closed to make room
    "tls_handshake",         # handshake failed or timed out
    "header_timeout",        # no complete request head in time (408, or closed if silent)
    "header_too_large",      # 431 or 414
    "body_too_large",        # 413
    "malformed",             # 400, 411, 417, 505
    "unauthorized",          # 401: no or wrong bearer token
    "method_not_allowed",    # 405
)

HTTP_REJECTED = metrics.counter(
    "agent_http_rejected", "Connections and requests the HTTP server refused, by reason.", ("reason",))
# One label tuple per reason for the life of the process, in the order of
# the counts' dict: the render plan matches them by identity.
_REJECTED_LABELS = tuple((reason,) for reason in REJECT_REASONS)
HTTP_CONNECTIONS_OPEN = metrics.gauge(
    "agent_http_connections_open", "HTTP connections open, the scrape's own included.")

_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    414: "URI Too Long", 417: "Expectation Failed", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

_SERVER_HEADER = f"Server: monitoring-agent/{__version__}\r\n"

_date_cache: tuple[int, str] = (0, "")
# RFC 9110's IMF-fixdate names, spelled out: email.utils would do it but
# costs ~1.5 MiB of RSS (email, datetime, random, urllib) for one header.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imf_fixdate(seconds: int) -> str:
    t = time.gmtime(seconds)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def _http_date() -> str:
    # Formatted once a second at most; a tuple assignment is atomic.
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = (now, _imf_fixdate(now))
        _date_cache = cached
    return cached[1]


def _encode(status: int, content_type: str, body: bytes, extra: str) -> bytes:
    """An answer's bytes; `extra` header lines, each ending in CRLF."""
    return (f"HTTP/1.1 {status} {_REASONS[status]}\r\nDate: {_http_date()}\r\n{_SERVER_HEADER}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode("latin-1") + body


@record
class Settings:
    """What a reload may change without rebinding.  The access-control
    objects are duck-typed so that this module imports nothing for them."""

    max_connections: int = 64
    header_timeout: float = 5.0
    max_header_bytes: int = MAX_HEAD_BYTES
    # Prometheus's default scrape interval is one minute: 75 s keeps its
    # connection open between scrapes, plus jitter.
    keepalive_timeout: float = 75.0
    write_timeout: float = 10.0
    allow: Any = None    # .permits(host) -> bool; None lets every peer in
    tokens: Any = None   # .check(authorization header or None) -> bool; None: no auth
    write_tokens: Any = None  # the same, for PUT and PATCH; None: no writes (405)
    health_requires_auth: bool = False
    tls: Any = None      # .wrap(sock) -> TLS socket, .handshake(sock, deadline); None: plain HTTP


def _shutdown(sock: socket.socket, how: int) -> None:
    """shutdown(2) on the descriptor.  The base class's method, because
    SSLSocket.shutdown also drops its TLS state, under the feet of the
    thread that is reading from it."""
    try:
        socket.socket.shutdown(sock, how)
    except OSError:
        pass  # already closed, or never connected


def _bind(host: str, port: int) -> socket.socket:
    # An ASCII name or address goes as bytes: given a str, getaddrinfo
    # encodes it with the idna codec, whose import (encodings.idna,
    # stringprep, unicodedata) is ~0.9 MiB of RSS.
    name = (host.encode("ascii") if host.isascii() else host) if host else None
    infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, socktype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and sockaddr[0] == "::":
            # `::` means every address, IPv4 included, as node_exporter's
            # `:9100` does; an explicit IPv6 address stays IPv6 only.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """`Server(host, port, scrape, health, settings=Settings())` binds at once
    (an OSError here is a start-up error); `serve_forever()` serves until
    `shutdown()`; `configure(settings)` applies new settings to the
    connections that come next and the requests that come next on open
    ones.  Keyword arguments named like Settings fields override it.
    `router` replaces the standard routes (agent.server_routes), which
    serve what `scrape()` returns, the server's own families appended."""

    def __init__(self, host: str, port: int, scrape: Callable[[], list], health: Callable[[], dict], *,
                 logger: logging.Logger | None = None, settings: Settings | None = None,
                 router: Router | None = None, extra_routes: dict | None = None, **overrides):
        self._log = logger or logging.getLogger(__name__)
        self._settings = (settings or Settings())._replace(**overrides)
        # A new list: scrape() may hand every concurrent scraper the same one.
        # Routes besides the standard ones (the REST API's), kept so that a
        # reload's new server serves them too.
        self.extra_routes = dict(extra_routes or {})
        self._router = router or Router({
            **standard_routes(lambda **how: [*scrape(**how), *self.metric_families()], health, self._log),
            **self.extra_routes})

        self._listener = _bind(host, port)
        self._address = tuple(self._listener.getsockname()[:2])
        try:
            # shutdown() writes a byte here to wake serve_forever's select.
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            self._listener.close()
            raise
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

        self._table = ConnectionTable()
        self._lock = self._table.lock  # also guards the serving state below
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._deadline = 0.0
        self._state = "new"  # -> "serving" -> "closed"
        self._serving_thread: int | None = None
        self._thread_count = 0
        self._last_accept_error = 0.0
        self._last_pressure_warning = -PRESSURE_WARNING_SECONDS
        self._stats_lock = threading.Lock()
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)

    @property
    def address(self) -> tuple:
        """The bound (host, port); port 0 resolved."""
        return self._address

    @property
    def settings(self) -> Settings:
        return self._settings

    def configure(self, settings: Settings) -> None:
        """Swap the settings (one reference assignment: atomic).  Open
        connections follow at once where it matters: one from a peer the new
        allowlist refuses is closed, even mid-request; one accepted under
        other TLS settings (a reload always loads them afresh) is closed if
        idle after a response, else after its next response, so that its
        next request handshakes with the new certificate and client CAs."""
        self._settings = settings
        cut = []
        with self._lock:
            for conn in self._table.snapshot_locked():
                refused = settings.allow is not None and not settings.allow.permits(conn.peer[0])
                # `is not` also catches a plain connection once TLS is turned
                # on (None is not the new context): it must not go on in
                # cleartext.
                if refused or (conn.served and conn.state != "busy" and conn.tls is not settings.tls):
                    conn.evicted = True
                    self._table.remove_locked(conn)
                    cut.append((conn, refused))
                elif conn.tls is not settings.tls:
                    # Handshaking, before its first request, or busy: it
                    # closes after its next response.
                    conn.retire = True
        for conn, refused in cut:
            if refused:
                self._count("not_allowed")
                self._log.debug("connection from %s closed: not in the new allowlist", conn.peer[0])
            _shutdown(conn.sock, socket.SHUT_RDWR)

    # --- self-metrics -----------------------------------------------------

    def _count(self, reason: str) -> None:
        with self._stats_lock:
            self._rejected[reason] += 1

    def rejected(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._rejected)

    def connections_open(self) -> int:
        return len(self._table)

    def metric_families(self) -> list[Family]:
        """The server's own families, appended to every scrape."""
        with self._stats_lock:
            counts = list(self._rejected.values())  # REJECT_REASONS order: dict.fromkeys
        return [Family(HTTP_CONNECTIONS_OPEN, [((), self.connections_open())]),
                Series(HTTP_REJECTED, _REJECTED_LABELS, counts)]

    # --- acceptor -------------------------------------------------------

    def serve_forever(self) -> None:
        with self._lock:
            if self._state == "closed":
                return  # shut down before it started: nothing to serve
            if self._state == "serving":
                raise RuntimeError("serve_forever() is already running")
            self._state = "serving"
            self._serving_thread = threading.get_ident()
        selector = selectors.DefaultSelector()
        lingering: dict[socket.socket, float] = {}
        try:
            selector.register(self._listener, selectors.EVENT_READ, "accept")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stopping.is_set():
                timeout = None
                if lingering:
                    timeout = max(0.0, min(lingering.values()) - time.monotonic())
                for key, _ in selector.select(timeout):
                    if key.data == "accept":
                        self._accept(selector, lingering)
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._linger_read(selector, lingering, key.fileobj)
                now = time.monotonic()
                for sock in [s for s, deadline in lingering.items() if deadline <= now]:
                    self._linger_close(selector, lingering, sock)
        finally:
            for sock in list(lingering):
                self._linger_close(selector, lingering, sock)
            selector.close()
            self._finish()

    def _accept(self, selector, lingering) -> None:
        # Accept what is queued now, in a bounded batch so lingering rejects
        # and the wake-up are still looked at under a connection storm.
        for _ in range(64):
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    now = time.monotonic()
                    if now - self._last_accept_error > 10:
                        self._last_accept_error = now
                        self._log.warning("accept failed: %s; backing off", exc)
                    # The pending connection stays queued; don't spin on it.
                    time.sleep(0.05)
                else:
                    self._log.debug("accept failed: %s", exc)
                return
            settings = self._settings
            if settings.allow is not None and not settings.allow.permits(peer[0]):
                self._count("not_allowed")
                self._log.debug("connection from %s refused: not in the allowlist", peer[0])
                sock.close()
                continue
            now = time.monotonic()
            victims = []
            table = self._table
            with self._lock:
                while len(table) >= settings.max_connections:
                    victim = table.evict_locked()
                    if victim is None:
                        break
                    victims.append(victim)
                full = len(table) >= settings.max_connections
                if not full:
                    conn = Connection(sock, peer, now, settings.tls)
                    table.add_locked(conn)
                    self._thread_count += 1
                    name = f"agent-http-{self._thread_count}"
            for victim in victims:
                self._count("evicted")
                _shutdown(victim.sock, socket.SHUT_RDWR)
            if victims or full:
                self._warn_pressure(settings.max_connections, now)
            if full:
                self._count("too_many_connections")
                if settings.tls is not None:
                    sock.close()  # a plain-text 503 would be noise to a TLS client
                else:
                    self._reject_busy(selector, lingering, sock)
                continue
            conn.thread = threading.Thread(target=self._serve_connection, args=(conn, settings),
                                           name=name, daemon=True)
            try:
                conn.thread.start()
            except RuntimeError as exc:  # can't start new thread
                self._log.warning("cannot start a connection thread: %s", exc)
                with self._lock:
                    table.remove_locked(conn)
                sock.close()

    def _warn_pressure(self, cap: int, now: float) -> None:
        if now - self._last_pressure_warning >= PRESSURE_WARNING_SECONDS:
            self._last_pressure_warning = now
            self._log.warning("%d connections open (max_connections): closing stalled, slow or idle ones "
                              "for new ones, 503 when all are busy "
                              "(agent_http_rejected_total counts them)", cap)

    def _reject_busy(self, selector, lingering, sock: socket.socket) -> None:
        answer = _encode(503, TEXT_PLAIN, b"503 Service Unavailable: too many connections\n",
                         "Retry-After: 1\r\nConnection: close\r\n")
        try:
            sock.setblocking(False)
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._log.debug("503 to a connection past the cap failed: %s", exc)
            sock.close()
            return
        if len(lingering) >= MAX_LINGERING_REJECTS:
            sock.close()
            return
        lingering[sock] = time.monotonic() + LINGER_SECONDS
        selector.register(sock, selectors.EVENT_READ, "linger")

    def _linger_read(self, selector, lingering, sock) -> None:
        try:
            data = sock.recv(LINGER_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._linger_close(selector, lingering, sock)

    @staticmethod
    def _linger_close(selector, lingering, sock) -> None:
        del lingering[sock]
        selector.unregister(sock)
        sock.close()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(256):
                pass
        except (BlockingIOError, InterruptedError):
            return

    # --- shutdown -------------------------------------------------------

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish for up to `timeout`
        seconds, close every connection, and return once serve_forever()
        has.  From the thread running serve_forever() (a signal handler),
        it only asks: serve_forever() finishes the job when it resumes."""
        with self._lock:
            if not self._stopping.is_set():
                self._deadline = time.monotonic() + timeout
                self._stopping.set()
            state = self._state
            if state == "new":
                self._state = "closed"
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # the wake-up socket is full (already woken) or closed (already stopped)
        self._wake_idle_connections()
        if state == "new":
            self._finish()
        elif self._serving_thread != threading.get_ident():
            # serve_forever() drains until the deadline; a little slack for it
            # to return.
            self._stopped.wait(max(0.0, self._deadline - time.monotonic()) + 2.0)

    def _wake_idle_connections(self) -> None:
        # _stopping is set before reading `idle`, and a connection sets
        # `idle` before testing _stopping: one of the two sees the other.
        for conn in self._table.snapshot():
            if conn.idle:
                _shutdown(conn.sock, socket.SHUT_RD)

    def _finish(self) -> None:
        """Close the listener, wait for the connections until the deadline,
        then cut the rest."""
        with self._lock:
            if not self._stopping.is_set():
                # serve_forever() failed: stop the connections now.
                self._deadline = time.monotonic()
                self._stopping.set()
        self._wake_idle_connections()
        self._listener.close()
        for conn in self._table.snapshot():
            if conn.thread is not None:
                conn.thread.join(max(0.0, self._deadline - time.monotonic()))
        late = self._table.snapshot()
        for conn in late:
            self._log.warning("closing a connection from %s still busy at shutdown", conn.peer)
            _shutdown(conn.sock, socket.SHUT_RDWR)
        cut_deadline = time.monotonic() + 1.0
        for conn in late:
            if conn.thread is not None:
                conn.thread.join(max(0.0, cut_deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()
        with self._lock:
            self._state = "closed"
        self._stopped.set()

    # --- one connection -------------------------------------------------

    def _serve_connection(self, conn: Connection, settings: Settings) -> None:
        table = self._table
        linger = False
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_BYTES)
            # The first request head is due header_timeout after accept, or
            # after the TLS handshake, which has as long again.
            deadline = conn.accepted + settings.header_timeout
            if settings.tls is not None:
                with self._lock:  # so the acceptor's eviction sees the socket in use
                    if conn.evicted:
                        return
                    conn.sock = settings.tls.wrap(conn.sock)
                try:
                    settings.tls.handshake(conn.sock, deadline)
                except OSError as exc:
                    if not conn.evicted:
                        self._count("tls_handshake")
                    self._log.debug("TLS handshake with %s failed: %s", conn.peer, exc)
                    return
                deadline = time.monotonic() + settings.header_timeout
            buf = bytearray()
            pipelined = False
            while True:
                current = self._settings
                if pipelined and not table.take_turn(conn, self._stopping):
                    return
                try:
                    request = read_request(conn, buf, current, deadline, self._stopping)
                except (Reject, SilentTimeout) as refusal:
                    if pipelined:
                        table.give_turn()
                    if conn.evicted:
                        return
                    if isinstance(refusal, SilentTimeout):
                        self._count("header_timeout")
                        return
                    self._count(refusal.reason)
                    self._log.debug("%d to %s: %s", refusal.status, conn.peer[0], refusal.detail)
                    if not table.claim(conn):
                        return
                    table.answered(conn)
                    body = f"{refusal.status} {_REASONS[refusal.status]}: {refusal.detail}\n".encode("utf-8")
                    self._write(conn, _encode(refusal.status, TEXT_PLAIN, body, "Connection: close\r\n"), current)
                    linger = True
                    return
                deadline = None
                if request is None or not table.claim(conn, pipelined):
                    if pipelined:
                        table.give_turn()
                    return
                keep_alive = _keep_alive(request) and not conn.retire
                if pipelined:
                    try:
                        answer, keep_alive = self._answer(conn, request, keep_alive, current)
                    finally:
                        table.give_turn()
                else:
                    try:
                        answer, keep_alive = self._answer(conn, request, keep_alive, current)
                    finally:
                        table.answered(conn)
                self._write(conn, answer, current)
                if not keep_alive:
                    linger = True
                    return
                conn.served += 1
                # The next request had arrived, whole, before this answer was
                # written.  Its turn covers its parse, and the read of its
                # body if that has not all arrived: only pipelines wait then.
                pipelined = holds_a_head(buf)
                if conn.retire or not table.release(conn, pipelined=pipelined):
                    return
        except OSError as exc:
            # The client went away or stopped reading (write timeout), or
            # was evicted.
            self._log.debug("connection from %s: %s", conn.peer, exc)
        except Exception:  # noqa: BLE001 -- a bug here must not kill the thread silently
            self._log.exception("connection from %s: unexpected error", conn.peer)
        finally:
            if linger and table.release(conn, lingering=True):
                self._close_gracefully(conn.sock)
            conn.sock.close()
            table.close(conn)

    def _answer(self, conn: Connection, request: Request, keep_alive: bool,
                settings: Settings) -> tuple[bytes, bool]:
        """The bytes that answer `request`, and whether the connection stays
        open after them."""
        response: Response = self._router.dispatch(request, settings)
        if response.refusal is not None:
            self._count(response.refusal)
            self._log.debug("%d to %s: %s %s", response.status, conn.peer[0], request.method, request.path)
        extra = response.headers
        # Decided after the work: a shutdown that began meanwhile closes.
        keep_alive = keep_alive and not self._stopping.is_set()
        if not keep_alive:
            extra += "Connection: close\r\n"
        elif request.minor == 0:
            extra += "Connection: keep-alive\r\n"
        answer = _encode(response.status, response.content_type, response.body, extra)
        if request.method == "HEAD":
            answer = answer[:len(answer) - len(response.body)]
        return answer, keep_alive

    def _write(self, conn: Connection, data: bytes, settings: Settings) -> None:
        """Send all of `data` within write_timeout.  A step that moves no
        byte for STALL_STEP tells the table the connection is stalled (its
        client is not reading), so that it can be evicted; a moving one
        that it is not.  Raises OSError (TimeoutError past the deadline,
        EPIPE once evicted)."""
        sock = conn.sock
        sent = 0
        stalled = False
        if len(data) <= WRITE_CHUNK:
            # Most answers go at once.  After a timeout the loop below sends
            # the same bytes again, as TLS requires.
            sock.settimeout(STALL_STEP)
            try:
                sent = sock.send(data)
            except socket.timeout:
                stalled = True
                self._table.stalled(conn, time.monotonic() - STALL_STEP)
            if sent == len(data):
                return
        view = memoryview(data)
        deadline = time.monotonic() + settings.write_timeout
        while sent < len(view):
            started = time.monotonic()
            remaining = deadline - started
            if remaining <= 0:
                raise TimeoutError("write timed out: the client is not reading")
            sock.settimeout(min(remaining, STALL_STEP))
            try:
                # The same bytes again after a timeout, as TLS requires.
                sent += sock.send(view[sent:sent + WRITE_CHUNK])
            except socket.timeout:
                if not stalled:
                    stalled = True
                    self._table.stalled(conn, started)
                continue
            if stalled:
                stalled = False
                self._table.moving(conn)

    def _close_gracefully(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(remaining)
                data = sock.recv(16384)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass  # the peer reset or timed out: nothing left to protect


def _keep_alive(request: Request) -> bool:
    field = request.headers.get("connection")
    if field is None:  # Prometheus sends none
        return request.minor != 0
    tokens = {t.strip().lower() for t in field.split(",")}
    if "close" in tokens:
        return False
    return request.minor != 0 or "keep-alive" in tokens
