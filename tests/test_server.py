"""The HTTP server, over real sockets on 127.0.0.1 (port 0), with
http.client and raw sockets.  Every wait is bounded by a socket timeout,
a join timeout or a loop with a deadline."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import re
import socket
import threading
import time

import pytest

from agent.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, render_openmetrics, render_text
from agent.metrics import Family, counter, gauge
from agent.server import MAX_BODY_BYTES, MAX_HEAD_BYTES, Server

TIMEOUT = 5.0

UP = gauge("agent_test_up", "Up.")
READS = counter("agent_test_reads", "Reads.", ("device",))


def families():
    return [
        Family(UP, [((), 1)]),
        Family(READS, [((f"sd{c}",), (2**64 - 1) * 512 + i) for i, c in enumerate("abcdefghij" * 30)]),
    ]


HEALTH = {"status": "ok", "sources": {"stat": {"ok": True, "seconds": 0.001}}}

# The server appends its own families (agent_http_*) to every scrape.
_OWN_LINE = re.compile(rb"(# (HELP|TYPE) )?agent_http_")


def scraped(body: bytes) -> bytes:
    """The body without the server's own families."""
    return b"".join(line for line in body.splitlines(keepends=True) if not _OWN_LINE.match(line))


PROMETHEUS_2_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                       "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.fixture
def make_server():
    started = []

    def make(scrape=families, health=lambda: HEALTH, **kwargs):
        kwargs.setdefault("logger", logging.getLogger("test.server"))
        server = Server("127.0.0.1", 0, scrape, health, **kwargs)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield make
    for server, thread in started:
        server.shutdown(timeout=2)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


@pytest.fixture
def server(make_server):
    return make_server()


def connect(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(*server.address, timeout=TIMEOUT)


def get(server, path, method="GET", headers=None):
    conn = connect(server)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


class Raw:
    """A raw socket client that parses responses itself, for pipelining,
    HEAD framing and malformed requests."""

    def __init__(self, server, timeout=TIMEOUT):
        self.sock = socket.create_connection(server.address, timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, head_only=False):
        status_line = self.file.readline(65537)
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        status = int(status_line.split()[1])
        headers = {}
        for _ in range(100):
            line = self.file.readline(65537)
            assert line.endswith(b"\r\n"), line
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            pytest.fail("too many header lines")
        length = 0 if head_only or status < 200 else int(headers["content-length"])
        body = self.file.read(length)
        assert len(body) == length
        return status, headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw(server):
    clients = []

    def make(srv=server, timeout=TIMEOUT):
        client = Raw(srv, timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def request(path="/metrics", method="GET", extra=b"", version=b"HTTP/1.1") -> bytes:
    return method.encode() + b" " + path.encode() + b" " + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


# --- routes ------------------------------------------------------------------


def test_address_resolves_port(server):
    host, port = server.address
    assert host == "127.0.0.1" and port > 0


def test_metrics_default_is_text(server):
    resp, body = get(server, "/metrics")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == TEXT_CONTENT_TYPE
    assert int(resp.getheader("Content-Length")) == len(body)
    assert resp.getheader("Vary") == "Accept, Accept-Encoding"
    assert resp.getheader("Content-Encoding") is None
    assert resp.getheader("Date")
    assert scraped(body) == render_text(families())


def test_metrics_openmetrics_for_prometheus(server):
    resp, body = get(server, "/metrics", headers={"Accept": PROMETHEUS_2_ACCEPT})
    assert resp.status == 200
    assert resp.getheader("Content-Type") == OPENMETRICS_CONTENT_TYPE
    assert scraped(body) == render_openmetrics(families())


@pytest.mark.parametrize("accept", [None, PROMETHEUS_2_ACCEPT])
def test_gzip_decoded_equals_plain(server, accept):
    headers = {"Accept": accept} if accept else {}
    plain_resp, plain = get(server, "/metrics", headers=headers)
    resp, packed = get(server, "/metrics", headers={**headers, "Accept-Encoding": "gzip"})
    assert plain_resp.getheader("Content-Encoding") is None
    assert resp.getheader("Content-Encoding") == "gzip"
    assert resp.getheader("Content-Type") == plain_resp.getheader("Content-Type")
    assert int(resp.getheader("Content-Length")) == len(packed) < len(plain)
    # The server's own families may differ (the first connection may not be
    # closed yet); the rest is the same.
    assert scraped(gzip.decompress(packed)) == scraped(plain)


def test_gzip_refused(server):
    resp, body = get(server, "/metrics", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert resp.getheader("Content-Encoding") is None
    assert scraped(body) == render_text(families())


def test_health_is_json(server):
    resp, body = get(server, "/health")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/json"
    assert json.loads(body) == HEALTH


def test_landing_page_links(server):
    resp, body = get(server, "/")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b'href="/metrics"' in body and b'href="/health"' in body


@pytest.mark.parametrize("path", ["/nope", "/metrics/", "/METRICS", "/metricsx", "/health/x", "//metrics"])
def test_unknown_path_404(server, path):
    resp, body = get(server, path)
    assert resp.status == 404
    assert body == b"404 Not Found\n"


@pytest.mark.parametrize("path", ["/metrics?debug=1", "/health?x=y&z", "/?q", "/metrics#frag"])
def test_query_string_ignored(server, path):
    resp, _ = get(server, path)
    assert resp.status == 200


def test_absolute_form_target(server, raw):
    client = raw()
    client.send(b"GET http://127.0.0.1/metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _, body = client.response()
    assert status == 200 and scraped(body) == render_text(families())


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", "BREW"])
@pytest.mark.parametrize("path", ["/metrics", "/health", "/"])
def test_other_methods_405_with_allow(server, method, path):
    resp, body = get(server, path, method=method)
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"
    assert body == b"405 Method Not Allowed\n"


@pytest.mark.parametrize("path,headers", [
    ("/metrics", {}),
    ("/metrics", {"Accept": PROMETHEUS_2_ACCEPT, "Accept-Encoding": "gzip"}),
    ("/health", {}),
    ("/", {}),
    ("/nope", {}),
])
def test_head_same_status_and_headers_no_body(server, raw, path, headers):
    resp, body = get(server, path, headers=headers)
    extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
    client = raw()
    # HEAD then GET on one connection: if HEAD sent a body, the GET's
    # response would not parse.
    client.send(request(path, "HEAD", extra) + request(path, "GET", extra))
    status, head_headers, head_body = client.response(head_only=True)
    status_get, get_headers, get_body = client.response()
    assert head_body == b""
    assert status == status_get == resp.status
    head_headers.pop("date"), get_headers.pop("date")
    assert head_headers == get_headers
    assert int(head_headers["content-length"]) == len(body) == len(get_body)


# --- keep-alive and pipelining ------------------------------------------------------


def test_keep_alive_several_requests_one_connection(server):
    conn = connect(server)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        resp.read()
        sock = conn.sock
        for path in ["/health", "/", "/nope", "/metrics", "/metrics"]:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status in (200, 404)
            assert conn.sock is sock, "the connection was reopened"
    finally:
        conn.close()


def test_pipelined_requests_answered_in_order(server, raw):
    client = raw()
    client.send(request("/health") + request("/nope") + request("/metrics") + request("/", "POST")
                + request("/"))
    statuses = [client.response()[0] for _ in range(5)]
    assert statuses == [200, 404, 200, 405, 200]
    client.send(request("/health"))
    assert client.response()[0] == 200


def test_pipelined_request_after_small_body(server, raw):
    client = raw()
    client.send(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + request("/health"))
    assert client.response()[0] == 405
    status, _, body = client.response()
    assert status == 200 and json.loads(body) == HEALTH


def test_leading_empty_lines_ignored(server, raw):
    client = raw()
    client.send(b"\r\n\r\n" + request("/health"))
    assert client.response()[0] == 200


def test_connection_close_honoured(server, raw):
    client = raw()
    client.send(request("/health", extra=b"Connection: close\r\n"))
    status, headers, _ = client.response()
    assert status == 200 and headers["connection"] == "close"
    assert client.closed_by_server()


def test_http10_closes_by_default(server, raw):
    client = raw()
    client.send(b"GET /health HTTP/1.0\r\n\r\n")
    status, headers, _ = client.response()
    assert status == 200 and headers["connection"] == "close"
    assert client.closed_by_server()


def test_close_wins_over_keep_alive(server, raw):
    client = raw()
    client.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
    status, headers, _ = client.response()
    assert status == 200 and headers["connection"] == "close"
    assert client.closed_by_server()


def test_http10_keep_alive_when_asked(server, raw):
    client = raw()
    for _ in range(3):
        client.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, _ = client.response()
        assert status == 200 and headers["connection"] == "keep-alive"


def test_expect_100_continue(server, raw):
    client = raw()
    client.send(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert client.response()[0] == 100
    client.send(b"abc")
    assert client.response()[0] == 405


# --- malformed requests and limits ------------------------------------------------


@pytest.mark.parametrize("data,status", [
    (b"HELLO\r\n\r\n", 400),
    (b"GET /metrics\r\n\r\n", 400),
    (b"GET  /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400),
    (b"GET /metrics HTTP/x.y\r\nHost: t\r\n\r\n", 400),
    (b"G(T /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /m\xc3\xa9trics HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET /metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-A: b\r\n folded\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-A: b\x00c\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-A: b\rc\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\n: empty-name\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx", 417),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
], ids=lambda v: v if isinstance(v, int) else v[:40].decode("latin-1"))
def test_malformed_requests_get_4xx_and_close(server, raw, data, status):
    client = raw()
    client.send(data)
    got, headers, body = client.response()
    assert got == status
    assert headers["connection"] == "close"
    assert body.count(b"\n") == 1
    assert client.closed_by_server()


def test_header_bound_431(server, raw):
    client = raw()
    client.send(request("/metrics", extra=b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 100) + b"\r\n"))
    status, headers, _ = client.response()
    assert status == 431 and headers["connection"] == "close"
    assert client.closed_by_server()


def test_many_headers_431(server, raw):
    client = raw()
    client.send(request("/metrics", extra=b"".join(b"X-H%d: v\r\n" % i for i in range(2000))))
    assert client.response()[0] == 431


def test_header_fields_bound_431(server, raw):
    # Host and 99 more: served; one more: 431, however short the lines.
    fields = [b"X-H%d: v\r\n" % i for i in range(100)]
    client = raw()
    client.send(request("/health", extra=b"".join(fields[:99])))
    assert client.response()[0] == 200
    client.send(request("/health", extra=b"".join(fields)))
    status, headers, body = client.response()
    assert status == 431 and b"more than 100 header fields" in body
    assert client.closed_by_server()


def test_head_just_under_the_bound_is_served(server, raw):
    client = raw()
    base = len(request("/metrics", extra=b"X-Pad: \r\n"))
    client.send(request("/metrics", extra=b"X-Pad: " + b"p" * (MAX_HEAD_BYTES - base) + b"\r\n"))
    assert client.response()[0] == 200


def test_request_line_bound_414(server, raw):
    client = raw()
    client.send(b"GET /" + b"m" * (MAX_HEAD_BYTES + 10) + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    status, headers, _ = client.response()
    assert status == 414 and headers["connection"] == "close"


def test_big_body_413_and_close(server, raw):
    client = raw()
    client.send(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1))
    status, headers, _ = client.response()
    assert status == 413 and headers["connection"] == "close"
    assert client.closed_by_server()


def test_huge_content_length_413(server, raw):
    client = raw()
    client.send(b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
    assert client.response()[0] == 413


# --- failures of the callbacks ---------------------------------------------------


def test_scrape_error_is_500_one_line_and_logged(make_server, caplog):
    def broken():
        raise RuntimeError("secret detail from /proc")

    server = make_server(scrape=broken)
    with caplog.at_level(logging.ERROR, logger="test.server"):
        resp, body = get(server, "/metrics")
    assert resp.status == 500
    assert body.count(b"\n") == 1 and body.endswith(b"\n")
    assert b"Traceback" not in body and b"secret" not in body
    assert any("scrape failed" in r.getMessage() and r.exc_info for r in caplog.records)
    # The server lives on.
    resp, _ = get(server, "/health")
    assert resp.status == 200


def test_render_error_is_500(make_server):
    server = make_server(scrape=lambda: [Family(UP, [((), "not a number")])])
    resp, body = get(server, "/metrics")
    assert resp.status == 500 and body.count(b"\n") == 1


def test_health_error_is_500(make_server):
    def broken():
        raise RuntimeError("boom")

    server = make_server(health=broken)
    resp, body = get(server, "/health")
    assert resp.status == 500 and b"Traceback" not in body


# --- timeouts, caps and concurrency ---------------------------------------------------


def test_slow_client_does_not_block_another(make_server):
    server = make_server(header_timeout=30, keepalive_timeout=30)
    silent = socket.create_connection(server.address, timeout=TIMEOUT)
    partial = socket.create_connection(server.address, timeout=TIMEOUT)
    try:
        partial.sendall(b"GET /metr")
        start = time.monotonic()
        resp, body = get(server, "/metrics")
        assert resp.status == 200 and scraped(body) == render_text(families())
        assert time.monotonic() - start < 2.0
    finally:
        silent.close()
        partial.close()


def test_partial_head_times_out_408(make_server):
    server = make_server(header_timeout=0.5)
    client = Raw(server)
    try:
        start = time.monotonic()
        client.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n")
        status, headers, _ = client.response()
        assert status == 408 and headers["connection"] == "close"
        assert 0.4 < time.monotonic() - start < 3.0
        assert client.closed_by_server()
    finally:
        client.close()


def test_trickling_client_is_cut_at_the_header_deadline(make_server):
    server = make_server(header_timeout=0.5)
    client = Raw(server)
    try:
        start = time.monotonic()
        with pytest.raises(OSError):
            for _ in range(40):  # a byte every 0.1 s would take 4 s
                client.send(b"X")
                time.sleep(0.1)
        assert time.monotonic() - start < 3.0
    finally:
        client.close()


def test_idle_keep_alive_connection_closed(make_server):
    server = make_server(keepalive_timeout=0.5)
    client = Raw(server)
    try:
        client.send(request("/health"))
        assert client.response()[0] == 200
        start = time.monotonic()
        assert client.closed_by_server()
        assert 0.4 < time.monotonic() - start < 3.0
    finally:
        client.close()


def test_connection_cap_503_when_every_slot_is_busy(make_server):
    release = threading.Event()
    busy = threading.Semaphore(0)

    def stuck():
        busy.release()
        release.wait(TIMEOUT)
        return families()

    server = make_server(scrape=stuck, max_connections=2)
    holders = [Raw(server) for _ in range(2)]
    try:
        for holder in holders:  # both in the middle of a request: not evictable
            holder.send(request("/metrics"))
            assert busy.acquire(timeout=TIMEOUT)
        extra = Raw(server)
        try:
            extra.send(request("/health"))
            status, headers, _ = extra.response()
            assert status == 503 and headers["connection"] == "close"
            assert headers["retry-after"] == "1"
            assert extra.closed_by_server()
        finally:
            extra.close()
        assert server.rejected()["too_many_connections"] == 1
        assert server.rejected()["evicted"] == 0
        release.set()
        for holder in holders:
            assert holder.response()[0] == 200
        holders[0].close()
        deadline = time.monotonic() + TIMEOUT
        while True:  # the freed slot is reusable once its thread has ended
            again = Raw(server)
            try:
                again.send(request("/health"))
                if again.response()[0] == 200:
                    break
            finally:
                again.close()
            assert time.monotonic() < deadline, "slot never freed"
            time.sleep(0.05)
    finally:
        release.set()
        for holder in holders:
            holder.close()


def handed_back(server, raw: Raw, timeout: float = TIMEOUT) -> bool:
    """Whether the server's thread for `raw`'s connection has come back to
    waiting, idle, for its next request."""
    local = raw.sock.getsockname()[:2]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.peer[:2] == local and c.state == "waiting" and c.idle for c in server._table.snapshot()):
            return True
        time.sleep(0.01)
    return False


def test_connection_cap_evicts_the_longest_waiting_idle_connection(make_server):
    server = make_server(max_connections=2)
    first, second = Raw(server), Raw(server)
    try:
        for holder in (first, second):  # served, then idle in keep-alive
            holder.send(request("/health"))
            assert holder.response()[0] == 200
            # The answer reaches the client a moment before its thread hands
            # the connection back (a loaded host stretches that moment);
            # until then it is busy, which no eviction takes.
            assert handed_back(server, holder)
        newcomer = Raw(server)
        try:
            newcomer.send(request("/health"))
            assert newcomer.response()[0] == 200
            assert first.closed_by_server()
            second.send(request("/health"))
            assert second.response()[0] == 200
        finally:
            newcomer.close()
        assert server.rejected()["evicted"] == 1
        assert server.rejected()["too_many_connections"] == 0
    finally:
        first.close()
        second.close()


def test_concurrent_scrapes_all_answered(make_server):
    clients = 6
    # Each scrape waits for all the others: only concurrent serving passes.
    barrier = threading.Barrier(clients, timeout=TIMEOUT)

    def scrape():
        barrier.wait()
        return families()

    server = make_server(scrape=scrape)
    results = [None] * clients

    def one(i):
        resp, body = get(server, "/metrics", headers={"Accept-Encoding": "gzip"} if i % 2 else {})
        results[i] = (resp.status, body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
        assert not t.is_alive()
    plain = render_text(families())
    for i, (status, body) in enumerate(results):
        assert status == 200
        assert scraped(gzip.decompress(body) if i % 2 else body) == plain


def test_many_sequential_connections(server):
    for _ in range(50):
        resp, _ = get(server, "/health")
        assert resp.status == 200


# --- start and shutdown ------------------------------------------------------------


def test_bind_error_at_construction(server):
    with pytest.raises(OSError):
        Server("127.0.0.1", server.address[1], families, lambda: HEALTH)


def test_shutdown_finishes_in_flight_request():
    started = threading.Event()
    release = threading.Event()

    def slow_scrape():
        started.set()
        release.wait(TIMEOUT)
        return families()

    server = Server("127.0.0.1", 0, slow_scrape, lambda: HEALTH)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    result = {}

    def client():
        resp, body = get(server, "/metrics")
        result["resp"], result["body"] = resp, body

    requester = threading.Thread(target=client)
    requester.start()
    assert started.wait(TIMEOUT)
    stopper = threading.Thread(target=server.shutdown, kwargs={"timeout": TIMEOUT})
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive(), "shutdown returned before the in-flight request finished"
    # No new connections once shutdown has begun.
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=1).close()
    release.set()
    requester.join(TIMEOUT)
    stopper.join(TIMEOUT)
    serving.join(TIMEOUT)
    assert not (requester.is_alive() or stopper.is_alive() or serving.is_alive())
    assert result["resp"].status == 200
    assert result["resp"].getheader("Connection") == "close"
    assert scraped(result["body"]) == render_text(families())


def test_shutdown_closes_idle_keep_alive_connections_promptly():
    server = Server("127.0.0.1", 0, families, lambda: HEALTH, keepalive_timeout=60)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    idle = [Raw(server) for _ in range(3)]
    try:
        for client in idle:
            client.send(request("/health"))
            assert client.response()[0] == 200
        start = time.monotonic()
        server.shutdown(timeout=TIMEOUT)
        assert time.monotonic() - start < 2.0
        serving.join(TIMEOUT)
        assert not serving.is_alive()
        for client in idle:
            assert client.closed_by_server()
    finally:
        for client in idle:
            client.close()


def test_shutdown_is_bounded_when_a_request_hangs():
    release = threading.Event()

    def stuck():
        release.wait(30)
        return families()

    server = Server("127.0.0.1", 0, stuck, lambda: HEALTH, logger=logging.getLogger("test.server"))
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    client = Raw(server)
    try:
        client.send(request("/metrics"))
        time.sleep(0.2)
        start = time.monotonic()
        server.shutdown(timeout=0.5)
        assert time.monotonic() - start < 3.0
        serving.join(TIMEOUT)
        assert not serving.is_alive()
    finally:
        release.set()
        client.close()


def test_shutdown_before_serve_forever():
    server = Server("127.0.0.1", 0, families, lambda: HEALTH)
    server.shutdown(timeout=1)
    done = threading.Event()
    threading.Thread(target=lambda: (server.serve_forever(), done.set()), daemon=True).start()
    assert done.wait(TIMEOUT), "serve_forever() after shutdown() should return at once"
    server.shutdown(timeout=1)  # twice is harmless


def test_date_header_is_an_imf_fixdate():
    import email.utils

    from agent.server import _imf_fixdate
    for seconds in (0, 951782400, 1795494647, 4102444799):  # incl. a leap day
        assert _imf_fixdate(seconds) == email.utils.formatdate(seconds, usegmt=True)
