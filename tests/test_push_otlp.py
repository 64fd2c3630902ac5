"""OTLP/HTTP export (--push otlp://...): what the agent sends, decoded with
the official opentelemetry-proto message classes (protobuf and JSON), from
a real Registry on a fixture tree and from the agent's own process; and the
OTLP retry rules against a receiver that answers what each test scripts."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time

import pytest

from agent import __version__, metrics
from agent.push import PushError, PushTarget, Pusher, parse_push_url, retry_after_seconds
from agentproc import AgentProcess
from test_push import ODD, Source, log, points, source, stat, wait_for  # noqa: F401 -- fixtures
from trees import PROCFS_TREES

metrics_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
    reason="opentelemetry-proto not installed (pip install -e '.[test]')")
json_format = pytest.importorskip("google.protobuf.json_format")

HOST = "test-host.example"
CUMULATIVE = 2


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1: records every request (arrival
    time, path, headers, the decoded ExportMetricsServiceRequest) and
    answers each with the next of `answers` ((status, headers) pairs; 200
    once they run out)."""

    def __init__(self, answers=()):
        self.requests: list[dict] = []
        self.answers = list(answers)
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                    receiver.requests.append({"at": time.monotonic(), "path": self.path,
                                              "headers": dict(self.headers), "body": body, "status": status})
                payload = b"{}" if status == 200 else b"try again"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=()):
        r = Receiver(answers)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def decode(request: dict):
    assert request["headers"]["Content-Encoding"] == "gzip"
    raw = gzip.decompress(request["body"])
    message = metrics_service_pb2.ExportMetricsServiceRequest()
    content_type = request["headers"]["Content-Type"]
    if content_type == "application/json":
        json_format.Parse(raw, message)
    else:
        assert content_type == "application/x-protobuf"
        message.ParseFromString(raw)
    return message


def decoded_points(message) -> dict[int, set]:
    """{time_unix_nano: {(name, is counter, attributes, value)}}, checking the
    envelope on the way."""
    (resource_metrics,) = message.resource_metrics
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "monitoring-agent" and scope_metrics.scope.version == __version__
    out: dict[int, set] = {}
    names = [m.name for m in scope_metrics.metrics]
    assert len(names) == len(set(names)), "one Metric per name in a request"
    for metric in scope_metrics.metrics:
        kind = metric.WhichOneof("data")
        assert kind in ("gauge", "sum"), metric
        if kind == "sum":
            assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == CUMULATIVE
        for point in getattr(metric, kind).data_points:
            attributes = {a.key: a.value.string_value for a in point.attributes}
            value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
            out.setdefault(point.time_unix_nano, set()).add(
                (metric.name, kind == "sum", tuple(sorted(attributes.items())), value))
        assert metric.description, metric.name
    return out


def expected(families) -> set:
    out = set()
    for name, counter, labels, value in points(families):
        if isinstance(value, int) and value >= 2**63:
            value = float(value)  # past int64: as_double
        out.add((name, counter, tuple(sorted(labels.items())), value))
    return out


def resource_of(message) -> dict:
    return {a.key: a.value.string_value for a in message.resource_metrics[0].resource.attributes}


# --- URLs -------------------------------------------------------------------

@pytest.mark.parametrize("url, want", [
    ("otlp://127.0.0.1", PushTarget("otlp", "127.0.0.1", 4318, "/v1/metrics", "protobuf")),
    ("otlp://collector:4318/v1/metrics?encoding=json&timeout=2",
     PushTarget("otlp", "collector", 4318, "/v1/metrics", "json", timeout=2.0)),
    ("otlp://[::1]:9999/otlp/v1/metrics", PushTarget("otlp", "::1", 9999, "/otlp/v1/metrics", "protobuf")),
])
def test_parse_otlp_url(url, want):
    assert parse_push_url(url) == want


def test_otlp_target_names():
    assert parse_push_url("otlp://c").name == "otlp://c:4318"
    assert parse_push_url("otlp://c/x/v1/metrics?encoding=json").name == "otlp://c:4318/x/v1/metrics?encoding=json"


@pytest.mark.parametrize("url, reason", [
    ("otlp://c?encoding=xml", "encoding must be protobuf or json"),
    ("otlp://c?format=json", "unknown option 'format' for otlp"),
    ("otlp://c?prefix=a", "unknown option 'prefix' for otlp"),
])
def test_parse_otlp_url_refuses_with_one_line(url, reason):
    with pytest.raises(PushError) as info:
        parse_push_url(url)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_retry_after_seconds():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) == 0.0 and retry_after_seconds("soon") == 0.0
    assert retry_after_seconds("100000") == 300.0  # capped
    # An HTTP date, 20 s after `now`.
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:57 GMT", now=784111777.0) == 20.0


# --- what is sent -------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_every_collection_arrives_with_the_same_names_labels_and_values(encoding, receiver, source, log):
    r = receiver()
    target = parse_push_url(f"otlp://127.0.0.1:{r.port}?encoding={encoding}")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    pusher.start()
    try:
        assert wait_for(lambda: len(r.requests) >= 3, 10)
    finally:
        pusher.stop()
    got: dict[int, set] = {}
    for request in r.requests:
        assert request["path"] == "/v1/metrics"
        message = decode(request)
        assert resource_of(message) == {"host.name": HOST, "service.name": "monitoring-agent",
                                        "service.version": __version__}
        for stamp, pts in decoded_points(message).items():
            got.setdefault(stamp, set()).update(pts)
    # Each collection's points, stamped with one time, in collection order.
    stamps = sorted(got)
    assert len(stamps) == len(source.collections)
    for stamp, families in zip(stamps, source.collections):
        assert got[stamp] == expected(families)
    first = got[stamps[0]]
    # A gauge is a Gauge, a counter a monotonic cumulative Sum named with
    # _total; a counter past 2**63 is a double, an int64 one exact.
    assert any(p[0] == "node_load1" and not p[1] for p in first)
    assert ("node_network_receive_bytes_total", True, (("interface", "eth0"),), source.base) in first
    assert ("node_network_receive_bytes_total", True, (("interface", ODD),), float(2**63 + 5)) in first
    assert stat(pusher, "agent_push_sent", target.name) == sum(len(expected(f)) for f in source.collections)
    assert stat(pusher, "agent_push_dropped", target.name) == 0


def test_the_agent_process_pushes_with_its_host_name(receiver, tmp_path):
    r = receiver()
    with AgentProcess("--procfs", str(PROCFS_TREES / "linux-5.15-ubuntu22"), "--push",
                      f"otlp://127.0.0.1:{r.port}/v1/metrics?encoding=json", "--push-interval", "0.2"):
        assert wait_for(lambda: len(r.requests) >= 1, 20)
    message = decode(r.requests[0])
    assert resource_of(message)["host.name"] == socket.gethostname()
    names = {p[0] for p in set().union(*decoded_points(message).values())}
    assert {"node_memory_total_bytes", "node_cpu_seconds_total", "agent_source_success"} <= names


# --- retry rules ----------------------------------------------------------------

def stamps_of(request) -> set[int]:
    return set(decoded_points(decode(request)))


@pytest.mark.parametrize("status, retry_after", [(503, "1"), (429, "1"), (502, None), (504, None)])
def test_retryable_statuses_keep_the_batch_and_honour_retry_after(status, retry_after, receiver, source, log):
    answers = [(status, {"Retry-After": retry_after} if retry_after else {})]
    r = receiver(answers)
    target = parse_push_url(f"otlp://127.0.0.1:{r.port}")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    pusher.start()
    try:
        assert wait_for(lambda: len(r.requests) >= 2, 10)
    finally:
        pusher.stop()
    refused, retried = r.requests[0], r.requests[1]
    assert refused["status"] == status and retried["status"] == 200
    # The refused batch's points went again, with their own time stamps.
    assert stamps_of(refused) <= stamps_of(retried)
    gap = retried["at"] - refused["at"]
    if retry_after:
        assert gap >= 0.95, gap  # the backoff alone would be 0.1-0.2 s
    else:
        assert gap < 0.9, gap
    assert stat(pusher, "agent_push_errors", target.name) == 1
    assert stat(pusher, "agent_push_dropped", target.name) == 0
    assert sum("failing" in line for line in log.lines) == 1


@pytest.mark.parametrize("status", [400, 404, 413, 500])
def test_other_statuses_drop_the_batch(status, receiver, source, log):
    r = receiver([(status, {})])
    target = parse_push_url(f"otlp://127.0.0.1:{r.port}")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    pusher.start()
    try:
        assert wait_for(lambda: len(r.requests) >= 2, 10)
    finally:
        pusher.stop()
    refused = r.requests[0]
    dropped_points = sum(len(p) for p in decoded_points(decode(refused)).values())
    assert dropped_points > 0
    later = set().union(*(stamps_of(q) for q in r.requests[1:]))
    assert not stamps_of(refused) & later  # never sent again
    assert stat(pusher, "agent_push_dropped", target.name) == dropped_points
    failing = [line for line in log.lines if "failing" in line]
    assert len(failing) == 1 and f"HTTP {status}" in failing[0] and "refused" in failing[0], log.lines


def test_a_receiver_that_is_down_is_retried_until_it_is_up(source, log):
    # Nothing listens on the port at first: connection refused, retried.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = parse_push_url(f"otlp://127.0.0.1:{port}")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    pusher.start()
    r = None
    try:
        assert wait_for(lambda: stat(pusher, "agent_push_errors", target.name) >= 2, 10)
        r = Receiver()
        r.server.server_close()
        r.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), r.server.RequestHandlerClass)
        r.thread = threading.Thread(target=r.server.serve_forever, daemon=True)
        r.thread.start()
        assert wait_for(lambda: len(r.requests) >= 1, 40)
    finally:
        pusher.stop()
        if r is not None:
            r.close()
    # The collections made while it was down arrived in the end.
    assert min(stamps_of(r.requests[0])) == min(
        min(decoded_points(decode(q))) for q in r.requests)
    assert stat(pusher, "agent_push_dropped", target.name) == 0
    assert len(stamps_of(r.requests[0])) >= 2


def test_metric_types_follow_the_family_types():
    from agent import otlp, push_formats
    from agent.metrics import Family
    gauge = metrics.gauge("test_otlp_gauge", "A gauge.")
    counter = metrics.counter("test_otlp_counter", "A counter.")
    entries = push_formats.otlp_entries([Family(gauge, [((), -1)]), Family(counter, [((), 2**64 - 1)])],
                                        5, "protobuf")
    message = metrics_service_pb2.ExportMetricsServiceRequest()
    message.ParseFromString(otlp.request(entries, [("host.name", "h")], ("monitoring-agent", "x"), "protobuf"))
    g, c = message.resource_metrics[0].scope_metrics[0].metrics
    assert (g.name, g.WhichOneof("data"), g.gauge.data_points[0].as_int) == ("test_otlp_gauge", "gauge", -1)
    assert (c.name, c.WhichOneof("data"), c.sum.data_points[0].as_double) == (
        "test_otlp_counter_total", "sum", float(2**64 - 1))
    assert c.sum.data_points[0].time_unix_nano == 5
