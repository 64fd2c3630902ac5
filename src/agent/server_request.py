"""Reading HTTP/1.1 requests: the head from a socket into a buffer, within
a deadline and a size bound, parsed into a `Request`; then the body.

Every step is linear in the bytes received, whatever their shape: the end
of the head is searched for only in what a read added (not the whole buffer
again), control bytes in one scan of the whole head, header lines are cut
at their colon and stripped with str methods (a regular expression with
two white-space runs around a lazy group backtracked quadratically on
`x<spaces and tabs>y`), repeated fields are collected and joined once, and
a head holds at most MAX_HEADER_FIELDS fields, so that a head of many tiny
lines costs no more than a benign head of the same size.
tests/test_limits.py bounds the agent's CPU time for each hostile shape at
the largest head allowed.
"""

from __future__ import annotations

import re
import socket
import time

from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    import threading

# The default of Settings.max_header_bytes.
MAX_HEAD_BYTES = 8192
# Bodies are read whole into the Request: the REST API's JSON changes, a few
# hundred bytes each; 64 connections at most hold 1 MiB.
MAX_BODY_BYTES = 16384
# Header fields in one head.  http.server has the same bound; Prometheus
# sends 5.  Past it: 431, before a line is parsed.
MAX_HEADER_FIELDS = 100
READ_BYTES = 65536

_STATUS_REJECT_REASON = {408: "header_timeout", 414: "header_too_large", 431: "header_too_large",
                         413: "body_too_large"}

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(r"(" + _TOKEN.pattern + r") ([!-~]+) HTTP/([0-9])\.([0-9])\r?\Z")
# The bytes a head may hold: obs-text (0x80-0xff) in values, but no control
# byte except HT, CR and LF (and CR only before LF: parse_head counts them).
# bytes.translate deletes them in one table-driven pass; what is left is bad.
_HEAD_BYTES = bytes(b for b in range(256) if b in (9, 10, 13) or 32 <= b != 127)


@record
class Request:
    """One request as the router sees it."""

    method: str
    path: str    # without the query and fragment; absolute-form reduced to its path
    query: str   # what followed `?`, undecoded; "" without one
    minor: int   # HTTP/1.<minor>
    headers: dict[str, str]  # lower-case names; repeated fields joined by ", "
    body: bytes = b""
    peer: str = ""  # the client's address, for the log lines of changes it makes


class Reject(Exception):
    """A request answered with an error status, after which the connection
    closes."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.reason = _STATUS_REJECT_REASON.get(status, "malformed")


def read_request(conn, buf: bytearray, settings, deadline: float | None,
                 stopping: threading.Event) -> Request | None:
    """The next request from `buf` and `conn.sock`, its body consumed from
    `buf`; None when the client closed, stayed idle past the keep-alive
    timeout, or a shutdown began while it was idle.  `deadline` is the
    first request's (from accept); a later request's head is due
    header_timeout after its first byte.  `conn.idle` is kept True while no
    byte of the next request has arrived (shutdown() may then close it; the
    connection table ranks it as idle).  Raises Reject, or SilentTimeout."""
    sock = conn.sock
    head = _read_head(sock, buf, settings, deadline, conn, stopping)
    if head is None:
        return None
    method, target, minor, headers = parse_head(head)
    path, query = split_target(target)
    body = _read_body(sock, minor, headers, buf, deadline, settings)
    return Request(method, path, query, minor, headers, body, conn.peer[0])


def holds_a_head(buf: bytearray) -> bool:
    """Whether `buf` holds a whole request head (a pipelined request)."""
    return bool(buf) and _head_end(buf, 0, len(buf)) is not None


def _head_end(buf: bytearray, start: int, stop: int) -> tuple[int, int] | None:
    """(where the head ends, where the next bytes begin) for the first empty
    line in buf[start:stop] (CRLF or a bare LF, RFC 9112 2.2), or None.
    Two memchr-speed scans: the equivalent regular expression,
    \\r?\\n\\r?\\n, tried a match at every byte and cost 3.4 us on
    Prometheus's 225-byte head, ~2 % of a scrape."""
    lf_lf = buf.find(b"\n\n", start, stop)
    # An LF CR LF that starts before the first LF LF may end inside it.
    lf_crlf = buf.find(b"\n\r\n", start, stop if lf_lf < 0 else min(stop, lf_lf + 2))
    if lf_crlf >= 0:
        newline, after = lf_crlf, lf_crlf + 3
    elif lf_lf >= 0:
        newline, after = lf_lf, lf_lf + 2
    else:
        return None
    return (newline - 1 if newline > 0 and buf[newline - 1] == 13 else newline), after


def _read_head(sock, buf: bytearray, settings, deadline: float | None, conn, stopping) -> bytes | None:
    limit = settings.max_header_bytes
    fresh = deadline is not None
    searched = 0  # buf[:searched] holds no head end, except across its last 3 bytes
    while True:
        if buf[:1] in (b"\r", b"\n"):
            # RFC 9112 2.2: ignore empty lines before a request line.
            del buf[:len(buf) - len(buf.lstrip(b"\r\n"))]
            searched = 0
        end = _head_end(buf, searched - 3 if searched > 3 else 0, limit + 4)
        if end is not None:
            head = bytes(buf[:end[0]])
            del buf[:end[1]]
            return head
        searched = len(buf)
        if len(buf) > limit:
            if buf.find(b"\n", 0, limit) < 0:
                raise Reject(414, "request line too long")
            raise Reject(431, f"request head over {limit} bytes")
        now = time.monotonic()
        if deadline is None and buf:
            deadline = now + settings.header_timeout
        conn.idle = not buf
        if conn.idle and stopping.is_set():
            return None
        if deadline is None:
            timeout = settings.keepalive_timeout
        else:
            timeout = deadline - now
            if timeout <= 0:
                return _head_timeout(buf, fresh)
        sock.settimeout(timeout)
        try:
            data = sock.recv(READ_BYTES)
        except socket.timeout:
            if deadline is None:
                return None  # idle keep-alive connection: close quietly
            return _head_timeout(buf, fresh)
        conn.idle = False
        if not data:
            return None
        if deadline is None:
            deadline = time.monotonic() + settings.header_timeout
        buf += data


class SilentTimeout(Exception):
    """A new connection sent nothing in time: closed without a word, as a
    408 would only tell a port scanner what answers here."""


def _head_timeout(buf: bytearray, fresh: bool) -> None:
    if buf:
        raise Reject(408, "request head not received in time")
    if fresh:
        raise SilentTimeout()
    return None


def parse_head(head: bytes) -> tuple[str, str, int, dict[str, str]]:
    """(method, target, minor version, headers) of a head without its final
    empty line.  Raises Reject."""
    if head.count(b"\n") > MAX_HEADER_FIELDS:
        raise Reject(431, f"more than {MAX_HEADER_FIELDS} header fields")
    if head.translate(None, _HEAD_BYTES) or head.count(b"\r") != head.count(b"\r\n"):
        raise Reject(400, "control character in the request head")
    lines = head.decode("latin-1").split("\n")
    match = _REQUEST_LINE.match(lines[0])
    if match is None:
        raise Reject(400, "malformed request line")
    method, target, major, minor = match.groups()
    if major != "1":
        raise Reject(505, "only HTTP/1.x is served")
    headers: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        # No name, or white space in or before it: obs-fold (a line starting
        # with white space) and `Name :` are both refused by RFC 9112.
        if not colon or _TOKEN.fullmatch(name) is None:
            raise Reject(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t\r")  # a CR is only ever the line's last byte
        if name in headers:
            if name == "host" or (name == "content-length" and headers[name] != value):
                raise Reject(400, f"conflicting {name} headers")
            if name != "content-length":
                repeated.setdefault(name, [headers[name]]).append(value)
        else:
            headers[name] = value
    for name, values in repeated.items():
        headers[name] = ", ".join(values)
    if minor != "0" and "host" not in headers:
        raise Reject(400, "HTTP/1.1 request without Host")
    return method, target, int(minor), headers


def split_target(target: str) -> tuple[str, str]:
    """(path, query) of a request target; absolute-form (RFC 9112 3.2.2)
    keeps its path."""
    if target[:1] != "/":
        lowered = target[:8].lower()
        if lowered.startswith("http://") or lowered.startswith("https://"):
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash >= 0 else "/"
    if "#" in target:
        target = target.partition("#")[0]
    path, _, query = target.partition("?")
    return path, query


def _read_body(sock, minor: int, headers: dict[str, str], buf: bytearray, deadline: float | None,
               settings) -> bytes:
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise Reject(400, "both Transfer-Encoding and Content-Length")
        raise Reject(411, "request bodies need a Content-Length")
    length_text = headers.get("content-length")
    if length_text is None:
        return b""
    if not (length_text.isascii() and length_text.isdigit()):
        raise Reject(400, "malformed Content-Length")
    # The length check on the text first: int() of a huge digit string is
    # quadratic.
    if len(length_text) > 18 or int(length_text) > MAX_BODY_BYTES:
        raise Reject(413, f"request body over {MAX_BODY_BYTES} bytes")
    length = int(length_text)
    expect = headers.get("expect")
    if expect is not None:
        if expect.lower() != "100-continue":
            raise Reject(417, "only 100-continue is understood")
        if minor >= 1 and length > len(buf):
            sock.settimeout(settings.write_timeout)
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    while len(buf) < length:
        if deadline is None:
            deadline = time.monotonic() + settings.header_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Reject(408, "request body not received in time")
        sock.settimeout(remaining)
        try:
            data = sock.recv(READ_BYTES)
        except socket.timeout:
            raise Reject(408, "request body not received in time") from None
        if not data:
            raise ConnectionError("client closed during the request body")
        buf += data
    body = bytes(buf[:length])
    del buf[:length]
    return body
