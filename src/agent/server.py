"""The HTTP/1.1 server: /metrics, /health and a landing page.

It knows nothing about /proc: it calls `scrape()` for a list of families
and `health()` for a dict, asks `agent.exposition` how to encode them, and
appends its own families (agent_http_*) to what scrape() returned.  Nor
does it know how access control is configured: `Settings` carries ready-made
objects (an allowlist with `permits(host)`, bearer tokens with
`check(authorization)`, a TLS listener with `wrap(sock)` and
`handshake(sock, deadline)`), so this module never imports ssl, hashlib or
hmac, which cost a few MiB of RSS to an agent that uses none of them.

Why not http.server: BaseHTTPRequestHandler reads headers through
email.parser with only per-line (64 KiB) and count (100) limits, so it has
no total header bound to answer 431 with; it uses one socket timeout for an
idle keep-alive connection and a half-sent request, so it can't tell a slow
client from an idle one; ThreadingHTTPServer starts a thread per connection
without a cap; and it writes a response in pieces through a buffered file.
This server is small instead: one acceptor thread, one thread per
connection up to a cap, the request head read into one buffer and parsed
with a few regular expressions, the response written with one sendall.

`Settings` is one immutable value that `configure()` swaps whole (a SIGHUP
reload): the acceptor reads it once per connection (allowlist, TLS, the
cap), a connection thread once per request (limits, tokens), so no thread
ever sees half the old and half the new values.

Limits and controls, in the order a connection meets them:
- a peer the allowlist does not permit is closed at accept, before a byte
  is read, with no response;
- at most `max_connections` connections at once.  Past it, a connection
  without a request in progress (handshaking, sending its first head, idle
  between keep-alive requests, lingering after an error) is evicted to make
  room: of the peer address holding the most connections, the one that has
  waited longest.  So slow or silent clients can't starve a scraper, and
  one on another host than the attacker is never the one evicted; only when
  every slot is busy with a request is the newcomer answered 503 (closed
  without a response over TLS);
- over TLS, the handshake happens in the connection's thread, never on the
  accept path, and must finish within `header_timeout`;
- a new connection's first request head must arrive within `header_timeout`
  (else it is closed, with 408 if it sent part of one); a later head within
  `header_timeout` of its first byte; an idle keep-alive connection is
  closed after `keepalive_timeout`;
- a request head (request line and headers) is at most `max_header_bytes`:
  past it, 431 (414 when the request line alone is longer);
- a request body is read and discarded only up to 1 KiB (Content-Length
  beyond that: 413; Transfer-Encoding: 411), then the connection closes;
- with bearer tokens, every path answers 401 with WWW-Authenticate unless
  the request carries a valid `Authorization: Bearer` (/health is exempt
  unless `health_requires_auth`);
- methods other than GET and HEAD get 405.
Every refusal is counted in agent_http_rejected_total{reason}.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import re
import selectors
import socket
import threading
import time

from agent import __version__, metrics
from agent.exposition import choose_encoder, choose_gzip, render_gzip
from agent.metrics import Family, Series
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Any, Callable

# The default of Settings.max_header_bytes.
MAX_HEAD_BYTES = 8192
MAX_BODY_BYTES = 1024
# Closing a socket with unread input makes Linux send RST, which can destroy
# a response the client has not read yet.  So after a response we half-close
# and read what the client still sends, for at most this long and this much.
LINGER_SECONDS = 1.0
LINGER_BYTES = 65536
MAX_LINGERING_REJECTS = 256
# A full accept queue drops SYNs, and the client retries only after a second:
# a deep queue lets a scraper's connection wait behind a burst instead.
LISTEN_BACKLOG = 1024
# The parsed-head cache (Server._heads): how many, and how long each may be.
MAX_CACHED_HEADS = 64
MAX_CACHED_HEAD_BYTES = 2048
# At most one warning this often while the connection cap is being hit.
PRESSURE_WARNING_SECONDS = 60.0

ALLOW = "GET, HEAD"
WWW_AUTHENTICATE = 'Bearer realm="monitoring-agent"'

# Every reason is exposed from the start (at 0), so a rate() never misses
# the first refusal.
REJECT_REASONS = (
    "not_allowed",           # peer not in the allowlist: closed at accept
    "too_many_connections",  # every slot busy with a request: 503 or closed
    "evicted",               # a waiting connection closed to make room for a new one
    "tls_handshake",         # handshake failed or timed out
    "header_timeout",        # no complete request head in time (408, or closed if silent)
    "header_too_large",      # 431 or 414
    "body_too_large",        # 413
    "malformed",             # 400, 411, 417, 505
    "unauthorized",          # 401: no or wrong bearer token
    "method_not_allowed",    # 405
)
_STATUS_REJECT_REASON = {408: "header_timeout", 414: "header_too_large", 431: "header_too_large",
                         413: "body_too_large"}

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

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([!-~]+) HTTP/([0-9])\.([0-9])\Z")
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*\Z")
# Header values may hold obs-text (0x80-0xff) but no control byte except HT.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_LANDING_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>monitoring-agent</title></head>
<body>
<h1>monitoring-agent</h1>
<p>A Linux /proc exporter for Prometheus.</p>
<ul>
<li><a href="/metrics">/metrics</a>: the metrics</li>
<li><a href="/health">/health</a>: the agent's own health, as JSON</li>
</ul>
</body>
</html>
"""

_TEXT_PLAIN = "text/plain; charset=utf-8"
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
    health_requires_auth: bool = False
    tls: Any = None      # .wrap(sock) -> TLS socket, .handshake(sock, deadline); None: plain HTTP


@record
class _Request:
    method: str
    path: str
    minor: int  # HTTP/1.<minor>
    headers: dict[str, str]  # lower-case names; repeated fields joined by ", "


class _Reject(Exception):
    """A request we answer with an error status and then close."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.reason = _STATUS_REJECT_REASON.get(status, "malformed")


class _Connection:
    __slots__ = ("sock", "peer", "idle", "thread", "accepted", "evicted", "retire", "served", "tls")

    def __init__(self, sock: socket.socket, peer, accepted: float, tls):
        self.sock = sock
        self.peer = peer
        self.tls = tls  # the TLS listener it was accepted with, or None
        # True while waiting for the first byte of a request: shutdown()
        # may wake such a connection, never one in the middle of a request.
        self.idle = True
        self.thread: threading.Thread | None = None
        self.accepted = accepted
        # Set (under the server's lock) when the acceptor closes it to make
        # room; its thread then leaves without answering.
        self.evicted = False
        # Set by configure(): close after the response in progress or next.
        self.retire = False
        self.served = 0  # responses sent


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
    ones.  Keyword arguments named like Settings fields override it."""

    def __init__(self, host: str, port: int, scrape: Callable[[], list], health: Callable[[], dict], *,
                 logger: logging.Logger | None = None, settings: Settings | None = None, **overrides):
        self._scrape = scrape
        self._health = health
        self._log = logger or logging.getLogger(__name__)
        self._settings = (settings or Settings())._replace(**overrides)

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

        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        # The connections that may be evicted, longest waiting first.
        self._evictable: collections.OrderedDict[_Connection, None] = collections.OrderedDict()
        # Connections per peer address: eviction takes from the greediest.
        self._per_peer: dict[str, int] = {}
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
        # Parsed request heads by their bytes: a scraper sends the same head
        # every time, so parsing is skipped (~10 us of a ~30 us request).
        # Nothing mutates a _Request; bounded, and cleared when full, so a
        # client sending a new head every time only costs the parse.
        self._heads: dict[bytes, _Request] = {}

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
            for conn in list(self._connections):
                refused = settings.allow is not None and not settings.allow.permits(conn.peer[0])
                # `is not` also catches a plain connection once TLS is turned
                # on (None is not the new context): it must not go on in
                # cleartext.
                if refused or (conn.served and conn in self._evictable
                               and conn.tls is not settings.tls):
                    conn.evicted = True
                    self._remove(conn)
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

    # --- the connection table (callers hold self._lock) ---------------------

    def _add(self, conn: _Connection) -> None:
        self._connections.add(conn)
        self._evictable[conn] = None
        host = conn.peer[0]
        self._per_peer[host] = self._per_peer.get(host, 0) + 1

    def _remove(self, conn: _Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            host = conn.peer[0]
            left = self._per_peer[host] - 1
            if left:
                self._per_peer[host] = left
            else:
                del self._per_peer[host]
        self._evictable.pop(conn, None)

    def _pick_victim(self) -> _Connection | None:
        """The longest-waiting evictable connection of the peer that holds
        the most connections among those with one to evict: a scraper on
        another host than the attacker keeps its slot whatever the attacker
        does, and among equals the one waiting longest goes."""
        if not self._evictable:
            return None
        per_peer = self._per_peer
        greediest = max(per_peer.get(c.peer[0], 0) for c in self._evictable)
        for conn in self._evictable:
            if per_peer.get(conn.peer[0], 0) == greediest:
                return conn
        return None  # not reached: the max came from one of them

    # --- self-metrics -----------------------------------------------------

    def _count(self, reason: str) -> None:
        with self._stats_lock:
            self._rejected[reason] += 1

    def rejected(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._rejected)

    def connections_open(self) -> int:
        return len(self._connections)

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
            with self._lock:
                while len(self._connections) >= settings.max_connections:
                    victim = self._pick_victim()
                    if victim is None:
                        break
                    victim.evicted = True
                    self._remove(victim)
                    victims.append(victim)
                full = len(self._connections) >= settings.max_connections
                if not full:
                    conn = _Connection(sock, peer, now, settings.tls)
                    self._add(conn)
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
                    self._remove(conn)
                sock.close()

    def _warn_pressure(self, cap: int, now: float) -> None:
        if now - self._last_pressure_warning >= PRESSURE_WARNING_SECONDS:
            self._last_pressure_warning = now
            self._log.warning("%d connections open (max_connections): closing the longest-waiting "
                              "idle or slow ones for new ones, 503 when all are busy "
                              "(agent_http_rejected_total counts them)", cap)

    def _reject_busy(self, selector, lingering, sock: socket.socket) -> None:
        body = b"503 Service Unavailable: too many connections\n"
        head = (f"HTTP/1.1 503 Service Unavailable\r\nDate: {_http_date()}\r\n{_SERVER_HEADER}"
                f"Content-Type: {_TEXT_PLAIN}\r\nContent-Length: {len(body)}\r\n"
                f"Retry-After: 1\r\nConnection: close\r\n\r\n")
        try:
            sock.setblocking(False)
            sock.send(head.encode("latin-1") + body)
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
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
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
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(max(0.0, self._deadline - time.monotonic()))
        with self._lock:
            late = list(self._connections)
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

    def _claim(self, conn: _Connection) -> bool:
        """A request is complete: the connection may no longer be evicted.
        False when it was evicted meanwhile."""
        with self._lock:
            if conn.evicted:
                return False
            self._evictable.pop(conn, None)
            return True

    def _release(self, conn: _Connection, first: bool = False) -> bool:
        """The connection waits again (for the next request, or lingers
        after an error, `first` in line for eviction)."""
        with self._lock:
            if conn.evicted:
                return False
            self._evictable[conn] = None
            self._evictable.move_to_end(conn, last=not first)
            return True

    def _serve_connection(self, conn: _Connection, settings: Settings) -> None:
        linger = False
        try:
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
            sock = conn.sock
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            while True:
                current = self._settings
                try:
                    request = self._read_request(conn, buf, current, deadline)
                except _Reject as reject:
                    if conn.evicted:
                        return
                    self._count(reject.reason)
                    self._log.debug("%d to %s: %s", reject.status, conn.peer[0], reject.detail)
                    self._send_error(sock, reject.status, reject.detail, current)
                    linger = True
                    return
                deadline = None
                if request is None or not self._claim(conn):
                    return
                keep_alive = self._keep_alive(request) and not conn.retire
                if not self._respond(sock, request, keep_alive, current, conn.peer):
                    linger = True
                    return
                conn.served += 1
                if conn.retire or not self._release(conn):
                    return
        except OSError as exc:
            # The client went away or stopped reading (write timeout), or
            # was evicted.
            self._log.debug("connection from %s: %s", conn.peer, exc)
        except Exception:  # noqa: BLE001 -- a bug here must not kill the thread silently
            self._log.exception("connection from %s: unexpected error", conn.peer)
        finally:
            if linger and self._release(conn, first=True):
                self._close_gracefully(conn.sock)
            conn.sock.close()
            with self._lock:
                self._remove(conn)

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

    def _read_request(self, conn: _Connection, buf: bytearray, settings: Settings,
                      deadline: float | None) -> _Request | None:
        """The next request from `buf` and the socket, with its body (if any)
        consumed from `buf`; None when the client closed or stayed idle.
        `deadline` is the first request's (from accept); a later request's
        head is due header_timeout after its first byte."""
        sock = conn.sock
        limit = settings.max_header_bytes
        fresh = deadline is not None
        while True:
            # RFC 9112 2.2: ignore empty lines before a request line.
            while buf[:1] in (b"\r", b"\n"):
                del buf[:1]
            match = _HEAD_END.search(buf, 0, limit + 4)
            if match is not None:
                head = bytes(buf[:match.start()])
                del buf[:match.end()]
                break
            if len(buf) > limit:
                if buf.find(b"\n", 0, limit) < 0:
                    raise _Reject(414, "request line too long")
                raise _Reject(431, f"request head over {limit} bytes")
            now = time.monotonic()
            if deadline is None and buf:
                deadline = now + settings.header_timeout
            # Waiting for a request's first byte: shutdown() may wake us.
            conn.idle = not buf
            if conn.idle and self._stopping.is_set():
                return None
            if deadline is None:
                timeout = settings.keepalive_timeout
            else:
                timeout = deadline - now
                if timeout <= 0:
                    return self._head_timeout(buf, fresh)
            sock.settimeout(timeout)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if deadline is None:
                    return None  # idle keep-alive connection: close quietly
                return self._head_timeout(buf, fresh)
            conn.idle = False
            if not data:
                return None
            if deadline is None:
                deadline = time.monotonic() + settings.header_timeout
            buf += data

        request = self._heads.get(head)
        if request is None:
            request = self._parse_head(head)  # raises _Reject: never cached
            if len(head) <= MAX_CACHED_HEAD_BYTES:
                if len(self._heads) >= MAX_CACHED_HEADS:
                    self._heads.clear()
                self._heads[head] = request
        self._consume_body(sock, request, buf, deadline, settings)
        return request

    def _head_timeout(self, buf: bytearray, fresh: bool) -> None:
        if buf:
            raise _Reject(408, "request head not received in time")
        if fresh:
            # Connected and said nothing: closed without a word, as a 408
            # would only tell a port scanner what answers here.
            self._count("header_timeout")
        return None

    @staticmethod
    def _parse_head(head: bytes) -> _Request:
        lines = head.split(b"\n")
        request_line = lines[0].removesuffix(b"\r")
        match = _REQUEST_LINE.match(request_line)
        if match is None:
            raise _Reject(400, "malformed request line")
        method, target, major, minor = match.groups()
        if major != b"1":
            raise _Reject(505, "only HTTP/1.x is served")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            line = raw.removesuffix(b"\r")
            header = _HEADER_LINE.match(line)
            if header is None:
                # Includes obs-fold (a line starting with white space) and
                # white space before the colon, both refused by RFC 9112.
                raise _Reject(400, "malformed header line")
            name_bytes, value_bytes = header.groups()
            if _BAD_VALUE_BYTE.search(value_bytes):
                raise _Reject(400, "control character in a header value")
            name = name_bytes.decode("ascii").lower()
            value = value_bytes.decode("latin-1")
            if name in headers:
                if name in ("content-length", "host"):
                    if name == "host" or headers[name] != value:
                        raise _Reject(400, f"conflicting {name} headers")
                    continue
                headers[name] = headers[name] + ", " + value
            else:
                headers[name] = value
        if minor != b"0" and "host" not in headers:
            raise _Reject(400, "HTTP/1.1 request without Host")

        path = target.decode("ascii")
        lowered = path[:8].lower()
        if lowered.startswith("http://") or lowered.startswith("https://"):
            # absolute-form (RFC 9112 3.2.2): keep the path.
            slash = path.find("/", path.find("//") + 2)
            path = path[slash:] if slash >= 0 else "/"
        for sep in ("?", "#"):
            cut = path.find(sep)
            if cut >= 0:
                path = path[:cut]
        return _Request(method.decode("ascii"), path, int(minor), headers)

    def _consume_body(self, sock: socket.socket, request: _Request, buf: bytearray, deadline,
                      settings: Settings) -> None:
        headers = request.headers
        if "transfer-encoding" in headers:
            if "content-length" in headers:
                raise _Reject(400, "both Transfer-Encoding and Content-Length")
            raise _Reject(411, "request bodies need a Content-Length")
        length_text = headers.get("content-length")
        if length_text is None:
            return
        if not (length_text.isascii() and length_text.isdigit()):
            raise _Reject(400, "malformed Content-Length")
        # The length check on the text first: int() of a huge digit string
        # is quadratic.
        if len(length_text) > 18 or int(length_text) > MAX_BODY_BYTES:
            raise _Reject(413, f"request body over {MAX_BODY_BYTES} bytes")
        length = int(length_text)
        expect = headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise _Reject(417, "only 100-continue is understood")
            if request.minor >= 1 and length > len(buf):
                sock.settimeout(settings.write_timeout)
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(buf) < length:
            if deadline is None:
                deadline = time.monotonic() + settings.header_timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Reject(408, "request body not received in time")
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                raise _Reject(408, "request body not received in time") from None
            if not data:
                raise ConnectionError("client closed during the request body")
            buf += data
        del buf[:length]

    @staticmethod
    def _keep_alive(request: _Request) -> bool:
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        if "close" in tokens:
            return False
        return request.minor != 0 or "keep-alive" in tokens

    # --- responses ------------------------------------------------------

    def _respond(self, sock: socket.socket, request: _Request, keep_alive: bool, settings: Settings,
                 peer) -> bool:
        """Answer one request; True when the connection stays open."""
        path = request.path
        extra = ""
        if (settings.tokens is not None and (path != "/health" or settings.health_requires_auth)
                and not settings.tokens.check(request.headers.get("authorization"))):
            # Before the routes: without a token nothing, not even which
            # paths exist, is told.
            self._count("unauthorized")
            self._log.debug("401 to %s: no valid bearer token for %s", peer[0], path)
            status, content_type, body = 401, _TEXT_PLAIN, b"401 Unauthorized: a valid bearer token is required\n"
            extra = f"WWW-Authenticate: {WWW_AUTHENTICATE}\r\n"
        elif path not in ("/metrics", "/health", "/"):
            status, content_type, body = 404, _TEXT_PLAIN, b"404 Not Found\n"
        elif request.method not in ("GET", "HEAD"):
            self._count("method_not_allowed")
            status, content_type, body = 405, _TEXT_PLAIN, b"405 Method Not Allowed\n"
            extra = f"Allow: {ALLOW}\r\n"
        elif path == "/metrics":
            status, content_type, body, extra = self._metrics(request)
        elif path == "/health":
            status, content_type, body = self._health_page()
        else:
            status, content_type, body = 200, "text/html; charset=utf-8", _LANDING_PAGE
        # Decided after the work: a shutdown that began meanwhile closes.
        keep_alive = keep_alive and not self._stopping.is_set()
        if not keep_alive:
            extra += "Connection: close\r\n"
        elif request.minor == 0:
            extra += "Connection: keep-alive\r\n"
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nDate: {_http_date()}\r\n{_SERVER_HEADER}"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
                ).encode("latin-1")
        sock.settimeout(settings.write_timeout)
        sock.sendall(head if request.method == "HEAD" else head + body)
        return keep_alive

    def _metrics(self, request: _Request) -> tuple[int, str, bytes, str]:
        render, content_type = choose_encoder(request.headers.get("accept"))
        gzip = choose_gzip(request.headers.get("accept-encoding"))
        try:
            # A new list: scrape() may hand every concurrent scraper the same one.
            families = [*self._scrape(), *self.metric_families()]
            body = render_gzip(render, families) if gzip else render(families)
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            self._log.exception("scrape failed: %s", exc)
            return 500, _TEXT_PLAIN, b"500 Internal Server Error: scrape failed, see the agent's log\n", ""
        extra = "Vary: Accept, Accept-Encoding\r\n"
        if gzip:
            extra = "Content-Encoding: gzip\r\n" + extra
        return 200, content_type, body, extra

    def _health_page(self) -> tuple[int, str, bytes]:
        try:
            body = json.dumps(self._health(), sort_keys=True).encode("utf-8") + b"\n"
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            self._log.exception("health check failed: %s", exc)
            return 500, _TEXT_PLAIN, b"500 Internal Server Error: health check failed, see the agent's log\n"
        return 200, "application/json", body

    def _send_error(self, sock: socket.socket, status: int, detail: str, settings: Settings) -> None:
        body = f"{status} {_REASONS[status]}: {detail}\n".encode("utf-8")
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nDate: {_http_date()}\r\n{_SERVER_HEADER}"
                f"Content-Type: {_TEXT_PLAIN}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        sock.settimeout(settings.write_timeout)
        sock.sendall(head.encode("latin-1") + body)
