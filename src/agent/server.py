"""The HTTP/1.1 server: /metrics, /health and a landing page.

It knows nothing about /proc: it calls `scrape()` for a list of families
and `health()` for a dict, and asks `agent.exposition` how to encode them.

Why not http.server: BaseHTTPRequestHandler reads headers through
email.parser with only per-line (64 KiB) and count (100) limits, so it has
no total header bound to answer 431 with; it uses one socket timeout for an
idle keep-alive connection and a half-sent request, so it can't tell a slow
client from an idle one; ThreadingHTTPServer starts a thread per connection
without a cap; and it writes a response in pieces through a buffered file.
This server is small instead: one acceptor thread, one thread per
connection up to a cap, the request head read into one buffer and parsed
with a few regular expressions, the response written with one sendall.

Limits (each a keyword argument):
- a request head (request line and headers) is at most 8 KiB: past it,
  431 (414 when the request line alone is longer);
- a head must arrive within `header_timeout` seconds of its first byte
  (else 408); an idle keep-alive connection is closed after `idle_timeout`;
- a request body is read and discarded only up to 1 KiB (Content-Length
  beyond that: 413; Transfer-Encoding: 411), then the connection closes;
- at most `max_connections` connections are served at once; one more is
  answered 503 by the acceptor and closed.
"""

from __future__ import annotations

import email.utils
import errno
import json
import logging
import re
import selectors
import socket
import threading
import time
from typing import Callable, NamedTuple

from agent import __version__
from agent.exposition import choose_encoder, choose_gzip, gzip_encode

MAX_HEAD_BYTES = 8192
MAX_BODY_BYTES = 1024
# Closing a socket with unread input makes Linux send RST, which can destroy
# a response the client has not read yet.  So after a response we half-close
# and read what the client still sends, for at most this long and this much.
LINGER_SECONDS = 1.0
LINGER_BYTES = 65536
MAX_LINGERING_REJECTS = 256

ALLOW = "GET, HEAD"

_REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
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


def _http_date() -> str:
    # One formatdate per second at most; a tuple assignment is atomic.
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = (now, email.utils.formatdate(now, usegmt=True))
        _date_cache = cached
    return cached[1]


class _Request(NamedTuple):
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


class _Connection:
    __slots__ = ("sock", "peer", "idle", "thread")

    def __init__(self, sock: socket.socket, peer):
        self.sock = sock
        self.peer = peer
        # True while waiting for the first byte of a request: shutdown()
        # may wake such a connection, never one in the middle of a request.
        self.idle = True
        self.thread: threading.Thread | None = None


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
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
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """`Server(host, port, scrape, health)` binds at once (an OSError here
    is a start-up error); `serve_forever()` serves until `shutdown()`."""

    def __init__(self, host: str, port: int, scrape: Callable[[], list], health: Callable[[], dict], *,
                 logger: logging.Logger | None = None, max_connections: int = 64,
                 header_timeout: float = 5.0, idle_timeout: float = 75.0, write_timeout: float = 10.0):
        self._scrape = scrape
        self._health = health
        self._log = logger or logging.getLogger(__name__)
        self._max_connections = max_connections
        self._header_timeout = header_timeout
        # Prometheus's default scrape interval is one minute: 75 s keeps its
        # connection open between scrapes, plus jitter.
        self._idle_timeout = idle_timeout
        self._write_timeout = write_timeout

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
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._deadline = 0.0
        self._state = "new"  # -> "serving" -> "closed"
        self._serving_thread: int | None = None
        self._thread_count = 0
        self._last_accept_error = 0.0

    @property
    def address(self) -> tuple:
        """The bound (host, port); port 0 resolved."""
        return self._address

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
            with self._lock:
                full = len(self._connections) >= self._max_connections
                if not full:
                    conn = _Connection(sock, peer)
                    self._connections.add(conn)
                    self._thread_count += 1
                    name = f"agent-http-{self._thread_count}"
            if full:
                self._reject_busy(selector, lingering, sock)
                continue
            conn.thread = threading.Thread(target=self._serve_connection, args=(conn,), name=name,
                                           daemon=True)
            try:
                conn.thread.start()
            except RuntimeError as exc:  # can't start new thread
                self._log.warning("cannot start a connection thread: %s", exc)
                with self._lock:
                    self._connections.discard(conn)
                sock.close()

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
                try:
                    conn.sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # already closed by its thread

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
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # its thread closed it meanwhile
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

    def _serve_connection(self, conn: _Connection) -> None:
        sock = conn.sock
        linger = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            while True:
                try:
                    request = self._read_request(conn, buf)
                except _Reject as reject:
                    self._send_error(sock, reject.status, reject.detail)
                    linger = True
                    return
                if request is None:
                    return
                if not self._respond(sock, request, self._keep_alive(request)):
                    linger = True
                    return
        except OSError as exc:
            # The client went away or stopped reading (write timeout).
            self._log.debug("connection from %s: %s", conn.peer, exc)
        except Exception:  # noqa: BLE001 -- a bug here must not kill the thread silently
            self._log.exception("connection from %s: unexpected error", conn.peer)
        finally:
            if linger:
                self._close_gracefully(sock)
            sock.close()
            with self._lock:
                self._connections.discard(conn)

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

    def _read_request(self, conn: _Connection, buf: bytearray) -> _Request | None:
        """The next request from `buf` and the socket, with its body (if any)
        consumed from `buf`; None when the client closed or stayed idle."""
        sock = conn.sock
        deadline = None  # set at the request's first byte
        while True:
            # RFC 9112 2.2: ignore empty lines before a request line.
            while buf[:1] in (b"\r", b"\n"):
                del buf[:1]
            match = _HEAD_END.search(buf, 0, MAX_HEAD_BYTES + 4)
            if match is not None:
                head = bytes(buf[:match.start()])
                del buf[:match.end()]
                break
            if len(buf) > MAX_HEAD_BYTES:
                if buf.find(b"\n", 0, MAX_HEAD_BYTES) < 0:
                    raise _Reject(414, "request line too long")
                raise _Reject(431, f"request head over {MAX_HEAD_BYTES} bytes")
            now = time.monotonic()
            if deadline is None and buf:
                deadline = now + self._header_timeout
            if deadline is None:
                conn.idle = True
                if self._stopping.is_set():
                    return None
                timeout = self._idle_timeout
            else:
                conn.idle = False
                timeout = deadline - now
                if timeout <= 0:
                    raise _Reject(408, "request head not received in time")
            sock.settimeout(timeout)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if deadline is None:
                    return None  # idle keep-alive connection: close quietly
                raise _Reject(408, "request head not received in time") from None
            conn.idle = False
            if not data:
                return None
            if deadline is None:
                deadline = time.monotonic() + self._header_timeout
            buf += data

        request = self._parse_head(head)
        self._consume_body(sock, request, buf, deadline)
        return request

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

    def _consume_body(self, sock: socket.socket, request: _Request, buf: bytearray, deadline) -> None:
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
                sock.settimeout(self._write_timeout)
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(buf) < length:
            if deadline is None:
                deadline = time.monotonic() + self._header_timeout
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

    def _respond(self, sock: socket.socket, request: _Request, keep_alive: bool) -> bool:
        """Answer one request; True when the connection stays open."""
        path = request.path
        extra = ""
        if path not in ("/metrics", "/health", "/"):
            status, content_type, body = 404, _TEXT_PLAIN, b"404 Not Found\n"
        elif request.method not in ("GET", "HEAD"):
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
        sock.settimeout(self._write_timeout)
        sock.sendall(head if request.method == "HEAD" else head + body)
        return keep_alive

    def _metrics(self, request: _Request) -> tuple[int, str, bytes, str]:
        render, content_type = choose_encoder(request.headers.get("accept"))
        try:
            body = render(self._scrape())
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            self._log.exception("scrape failed: %s", exc)
            return 500, _TEXT_PLAIN, b"500 Internal Server Error: scrape failed, see the agent's log\n", ""
        extra = "Vary: Accept, Accept-Encoding\r\n"
        if choose_gzip(request.headers.get("accept-encoding")):
            body = gzip_encode(body)
            extra = "Content-Encoding: gzip\r\n" + extra
        return 200, content_type, body, extra

    def _health_page(self) -> tuple[int, str, bytes]:
        try:
            body = json.dumps(self._health(), sort_keys=True).encode("utf-8") + b"\n"
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            self._log.exception("health check failed: %s", exc)
            return 500, _TEXT_PLAIN, b"500 Internal Server Error: health check failed, see the agent's log\n"
        return 200, "application/json", body

    def _send_error(self, sock: socket.socket, status: int, detail: str) -> None:
        body = f"{status} {_REASONS[status]}: {detail}\n".encode("utf-8")
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nDate: {_http_date()}\r\n{_SERVER_HEADER}"
                f"Content-Type: {_TEXT_PLAIN}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        sock.settimeout(self._write_timeout)
        sock.sendall(head.encode("latin-1") + body)
