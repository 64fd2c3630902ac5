"""Push mode (agent.push): the encoders line by line, then the Pusher fed by
a real Registry on a fixture tree against real receivers on 127.0.0.1:
VictoriaMetrics (Debian's victoria-metrics: Influx line protocol over HTTP
and UDP, Graphite plaintext over TCP, read back through its export and
query APIs), StatsD receivers that are UDP sockets here, a receiver that is
down and then comes up, and one that accepts and never answers."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agent import metrics, push_formats
from agent.cli import build_registry
from agent.config import Config
from agent.metrics import Family, Series
from agent.push import PushError, PushTarget, Pusher, packed, parse_push_url
from trees import PROCFS_TREES
from test_e2e import NETDEV_HEADER, copy_tree, netdev_line, write_in_place

VICTORIA = shutil.which("victoria-metrics")
HOST = "test-host.example"
HOST_PATH = "test-host_example"  # the same as a dotted-path component
ODD = "br,x=1"  # an interface name that needs escaping in every protocol


# --- URLs ------------------------------------------------------------------

@pytest.mark.parametrize("url, want", [
    ("influx://127.0.0.1:8428", PushTarget("influx", "127.0.0.1", 8428, "/write")),
    ("influx://db.example/write?db=agent&rp=week&timeout=2.5",
     PushTarget("influx", "db.example", 8086, "/write?db=agent&rp=week", timeout=2.5)),
    ("influx://vm:8428/influx/write", PushTarget("influx", "vm", 8428, "/influx/write")),
    ("influx+udp://[::1]:8089", PushTarget("influx+udp", "::1", 8089)),
    ("graphite://carbon", PushTarget("graphite", "carbon", 2003, format="tagged")),
    ("graphite://carbon:2003?format=path&prefix=agent.eu",
     PushTarget("graphite", "carbon", 2003, format="path", prefix="agent.eu")),
    ("statsd://127.0.0.1:8125", PushTarget("statsd", "127.0.0.1", 8125, format="dogstatsd")),
    ("STATSD://h/?format=path", PushTarget("statsd", "h", 8125, format="path")),
])
def test_parse_push_url(url, want):
    assert parse_push_url(url) == want


def test_target_names_are_canonical_urls():
    assert parse_push_url("influx://h:8428").name == "influx://h:8428"
    assert parse_push_url("influx://h:8428/write?db=a&timeout=3").name == "influx://h:8428/write?db=a"
    assert parse_push_url("influx+udp://[::1]").name == "influx+udp://[::1]:8089"
    assert parse_push_url("graphite://h?format=tagged").name == "graphite://h:2003"
    assert parse_push_url("statsd://h?format=path&prefix=a.b").name == "statsd://h:8125?format=path&prefix=a.b"


@pytest.mark.parametrize("url, reason", [
    ("http://h:8086", "unknown scheme 'http'"),
    ("h:8086", "unknown scheme"),
    ("influx://", "no host"),
    ("influx://:8086", "no host"),
    ("influx://h:0", "port 0"),
    ("influx://h:70000", "out of range"),
    ("influx://h:port", "port"),
    ("influx://user:secret@h", "credentials"),
    ("graphite://h/metrics", "a path means nothing"),
    ("statsd://h?format=etsy", "format must be dogstatsd or path"),
    ("graphite://h?prefix=a..b", "prefix"),
    ("graphite://h?prefix=a%20b", "prefix"),
    ("influx://h?timeout=0", "timeout"),
    ("influx://h?timeout=nan", "timeout"),
    ("influx://h?timeout=soon", "timeout"),
    ("influx://h?db=", "must not be empty"),
    ("influx://h?db=a&db=b", "given twice"),
    ("influx+udp://h?db=a", "unknown option 'db'"),
    ("statsd://h#x", "fragment"),
])
def test_parse_push_url_refuses_with_one_line_naming_the_url(url, reason):
    with pytest.raises(PushError) as info:
        parse_push_url(url)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"--push {url!r}: ") and reason in message and "\n" not in message


# --- encoders ----------------------------------------------------------------

BYTES = metrics.counter("node_disk_read_bytes", "", ("device", "kind"))
SECS = metrics.counter("node_disk_io_time_seconds", "", ("device",))
LOAD = metrics.gauge("node_load1", "")
MEM = metrics.gauge("node_memory_total_bytes", "")
OWN_HOST = metrics.gauge("info", "", ("host",))
SAMPLE_FAMILIES = [
    Series(BYTES, (("sda", ""), ("a b,c=d\\", "x"), ("big", "u"), ("huge", "f")),
           [2**63 - 1, 5, 2**64 - 1, 2**64 * 512]),
    Family(SECS, [(("sda",), 1.5), (("nan",), math.nan)]),
    Family(LOAD, [((), 0.25)]),
    Family(MEM, [((), 270143954944)]),
    Family(OWN_HOST, [(("other",), -3)]),
]


def test_influx_line_protocol():
    got = b"".join(push_formats.influx_lines(SAMPLE_FAMILIES, "h.x", 1700000000123456789)).decode()
    assert got == (
        # Integer counters exact: `i`, then `u` past 2^63-1, then a float.
        "node_disk_read_bytes,device=sda,host=h.x total=9223372036854775807i 1700000000123456789\n"
        "node_disk_read_bytes,device=a\\ b\\,c\\=d\\\\,host=h.x,kind=x total=5i 1700000000123456789\n"
        "node_disk_read_bytes,device=big,host=h.x,kind=u total=18446744073709551615u 1700000000123456789\n"
        "node_disk_read_bytes,device=huge,host=h.x,kind=f total=9.44473296573929e+21 1700000000123456789\n"
        "node_disk_io_time_seconds,device=sda,host=h.x total=1.5 1700000000123456789\n"
        # Gauges are float fields, an int one written in full.
        "node_load1,host=h.x value=0.25 1700000000123456789\n"
        "node_memory_total_bytes,host=h.x value=270143954944 1700000000123456789\n"
        "info,host=other value=-3 1700000000123456789\n")


def test_graphite_tagged_and_dotted_path():
    tagged = b"".join(push_formats.graphite_tagged(SAMPLE_FAMILIES, "h.x", 1700000000)).decode()
    assert tagged.splitlines() == [
        "node_disk_read_bytes_total;device=sda;host=h.x 9223372036854775807 1700000000",
        "node_disk_read_bytes_total;device=a_b,c=d\\;host=h.x;kind=x 5 1700000000",
        "node_disk_read_bytes_total;device=big;host=h.x;kind=u 18446744073709551615 1700000000",
        f"node_disk_read_bytes_total;device=huge;host=h.x;kind=f {2**64 * 512} 1700000000",
        "node_disk_io_time_seconds_total;device=sda;host=h.x 1.5 1700000000",
        "node_load1;host=h.x 0.25 1700000000",
        "node_memory_total_bytes;host=h.x 270143954944 1700000000",
        "info;host=other -3 1700000000",
    ]
    path = b"".join(push_formats.graphite_path(SAMPLE_FAMILIES, "h.x", 1700000000, "agent.eu")).decode()
    assert path.splitlines()[:3] == [
        "agent.eu.h_x.node_disk_read_bytes_total.sda._ 9223372036854775807 1700000000",
        "agent.eu.h_x.node_disk_read_bytes_total.a_b_c_d_.x 5 1700000000",
        "agent.eu.h_x.node_disk_read_bytes_total.big.u 18446744073709551615 1700000000",
    ]
    assert "agent.eu.h_x.node_load1 0.25 1700000000" in path.splitlines()
    assert push_formats.graphite_tag_value("~x;y z\n") == "_x_y_z_"


def test_statsd_gauges():
    lines = push_formats.statsd_dogstatsd(SAMPLE_FAMILIES, "h.x")
    assert lines[1] == b"node_disk_read_bytes_total:5|g|#device:a_b_c=d\\,host:h.x,kind:x\n"
    assert b"node_load1:0.25|g|#host:h.x\n" in lines
    # A negative gauge is set to 0 and then decremented, in one entry.
    assert lines[-1] == b"info:0|g|#host:other\ninfo:-3|g|#host:other\n"
    plain = push_formats.statsd_path(SAMPLE_FAMILIES, "h.x", "agent")
    assert plain[0] == b"agent.h_x.node_disk_read_bytes_total.sda._:9223372036854775807|g\n"


def test_datagrams_hold_whole_entries():
    entries = [b"a" * 600 + b"\n", b"b" * 600 + b"\n", b"c" * 600 + b"\n", b"d" * 2000 + b"\n", b"e\n"]
    got = list(packed(entries, 1400))
    assert [n for n, _ in got] == [2, 1, 1, 1]
    assert b"".join(d for _, d in got) == b"".join(entries)


# --- real registry, real receivers -------------------------------------------


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ListLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log():
    logger = logging.getLogger(f"test_push.{time.monotonic_ns()}")
    handler = ListLog()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.lines = handler.lines
    return logger


class Source:
    """A real Registry on a copy of a fixture tree whose net/dev is
    rewritten before each collection: eth0's received bytes grow by 1000 a
    collection (base + k x 1000 on the k-th), with counters past 2^53, 2^63
    and at 2^64-1 on the side.  Records each collection as pushed."""

    def __init__(self, tmp_path: Path, base: int = 2**53 - 10_001):
        self.tree = copy_tree(PROCFS_TREES / "linux-5.15-ubuntu22", tmp_path / "proc")
        self.base = base
        self.registry = build_registry(Config(procfs=str(self.tree)), logging.getLogger("test_push.registry"))
        self.collections: list[list] = []
        self.lock = threading.Lock()

    def netdev(self, k: int) -> str:
        return (NETDEV_HEADER + netdev_line("eth0", self.base + 1000 * k, 2**53 + 1)
                + netdev_line(ODD, 2**63 + 5, 2**64 - 1))

    def collect(self) -> list:
        with self.lock:
            write_in_place(self.tree / "net" / "dev", self.netdev(len(self.collections)))
            families = self.registry.collect()
            self.collections.append(families)
            return families

    def close(self):
        self.registry.close()


@pytest.fixture
def source(tmp_path):
    s = Source(tmp_path)
    yield s
    s.close()


def points(families) -> list[tuple[str, bool, dict, object]]:
    """(sample name, is counter, labels without empty ones, value) per sample."""
    out = []
    for f in families:
        counter = f.desc.type == metrics.COUNTER
        name = f.desc.name + "_total" if counter else f.desc.name
        for values, value in f.samples:
            labels = {k: v for k, v in zip(f.desc.label_names, values) if v}
            out.append((name, counter, labels, value))
    return out


def wait_for(condition, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    return condition()


def stat(pusher: Pusher, family: str, target: str):
    for f in pusher.families():
        if f.desc.name == family:
            return dict(f.samples)[(target,)]
    raise KeyError(family)


# VictoriaMetrics -----------------------------------------------------------


class Victoria:
    def __init__(self, tmp_path: Path):
        self.http, self.graphite, self.influx_udp = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp_path / "vm.log"
        self.proc = subprocess.Popen(
            [VICTORIA, f"-httpListenAddr=127.0.0.1:{self.http}",
             f"-graphiteListenAddr=127.0.0.1:{self.graphite}",
             f"-influxListenAddr=127.0.0.1:{self.influx_udp}",
             f"-storageDataPath={tmp_path / 'vm-data'}", "-retentionPeriod=1",
             "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"))
        if not wait_for(self.healthy, 20, 0.1):
            self.stop()
            raise RuntimeError("victoria-metrics did not start: " + self.log_path.read_text())

    def healthy(self) -> bool:
        try:
            return self.get("/health") == b"OK"
        except OSError:
            return False

    def get(self, path: str, **params) -> bytes:
        url = f"http://127.0.0.1:{self.http}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read()

    def export(self, match: str) -> dict:
        """{(name, frozenset(labels)): [values by time]}, flushed first so
        the newest points are searchable."""
        self.get("/internal/force_flush")
        out = {}
        for line in self.get("/api/v1/export", **{"match[]": match}).splitlines():
            row = json.loads(line)
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            values = [v for _, v in sorted(zip(row["timestamps"], row["values"]))]
            out[(name, frozenset(labels.items()))] = values
        return out

    def query(self, promql: str):
        # At a time past the newest point: its own default, now, is
        # rounded down to the second and can miss the last Influx point.
        body = json.loads(self.get("/api/v1/query", query=promql, time=f"{time.time() + 2:.3f}"))
        assert body["status"] == "success", body
        return body["data"]["result"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def victoria(tmp_path):
    if VICTORIA is None:
        if os.environ.get("CI") == "true":
            pytest.fail("victoria-metrics is required in CI")
        pytest.skip("victoria-metrics not installed")
    # Ports are picked free, then bound by another process: another test's
    # server may take one in between (the Influx port is TCP and UDP both).
    for attempt in range(3):
        try:
            vm = Victoria(tmp_path / f"vm{attempt}")
            break
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    yield vm
    vm.stop()


def assert_kept(got, sent, where):
    """What VictoriaMetrics keeps: it parses every value into a float64 and
    stores it as a decimal with at most 12 significant digits for a
    fraction; an integer is exact while the float64 is (up to 2^53), is
    the float64 up to 2^63, and drifts by about 1e-16 relative beyond."""
    if isinstance(sent, int) and abs(sent) <= 2**53:
        assert got == sent and isinstance(got, int), where
    elif isinstance(sent, int) and abs(sent) < 2**63:
        assert float(got) == float(sent), where  # its JSON writes the float64's shortest decimal
    else:
        assert got == pytest.approx(float(sent), rel=1e-11), where


def test_victoriametrics_round_trip_influx_http_and_graphite(victoria, tmp_path, log):
    # Two agents, so that Influx's counters (named as Graphite's tagged
    # ones in VictoriaMetrics) are separate series: one pushes Influx, the
    # other Graphite tagged and Graphite dotted paths.
    influx_source, graphite_source = Source(tmp_path / "a"), Source(tmp_path / "b")
    influx = parse_push_url(f"influx://127.0.0.1:{victoria.http}")
    tagged = parse_push_url(f"graphite://127.0.0.1:{victoria.graphite}")
    path = parse_push_url(f"graphite://127.0.0.1:{victoria.graphite}?format=path&prefix=agent")
    pushers = [Pusher([influx], 1.0, influx_source.collect, "influx-host", log),
               Pusher([tagged, path], 1.0, graphite_source.collect, HOST, log)]
    try:
        for p in pushers:
            p.start()
        assert wait_for(lambda: min(len(influx_source.collections), len(graphite_source.collections)) >= 3, 10)
    finally:
        for p in pushers:
            p.stop()
        influx_source.close()
        graphite_source.close()
    runs = ((pushers[0], [influx], influx_source), (pushers[1], [tagged, path], graphite_source))
    for pusher, targets, src in runs:
        for t in targets:
            produced = sum(len(points(c)) for c in src.collections)
            assert stat(pusher, "agent_push_sent", t.name) == produced
            assert stat(pusher, "agent_push_queue_length", t.name) == 0
            assert stat(pusher, "agent_push_dropped", t.name) == stat(pusher, "agent_push_errors", t.name) == 0

    # Influx: <measurement>_<field>, so counters keep their Prometheus name
    # and gauges gain _value.  Graphite tagged: the Prometheus names.
    # Graphite path: agent.<host>.<name>.<label values>.
    def influx_key(name, counter, labels):
        return (name if counter else name + "_value"), frozenset({**labels, "host": "influx-host"}.items())

    def tagged_key(name, counter, labels):
        return name, frozenset({**labels, "host": HOST}.items())

    def path_key(name, counter, labels):
        parts = ["agent", HOST_PATH, name, *(push_formats.path_component(v) for v in labels.values())]
        return ".".join(parts), frozenset()

    expected = {}
    for src, keys in ((influx_source, [influx_key]), (graphite_source, [tagged_key, path_key])):
        for families in src.collections:
            for name, counter, labels, value in points(families):
                for key in keys:
                    expected.setdefault(key(name, counter, labels), []).append(value)

    def everything():
        got = victoria.export('{host=~"influx-host|%s"}' % HOST)
        got.update(victoria.export('{__name__=~"agent[.].*"}'))
        return got if all(len(got.get(k, ())) == len(v) for k, v in expected.items()) else None

    got = wait_for(everything, 15, 0.3)
    assert got, "not every point arrived: " + victoria.log_path.read_text()
    assert set(got) == set(expected)
    for key, sent in expected.items():
        assert len(got[key]) == len(sent), key
        for g, s in zip(got[key], sent):
            assert_kept(g, s, key)

    # The raw counter every collection, never a delta: exact below 2^53.
    eth0 = frozenset({"interface": "eth0", "host": "influx-host"}.items())
    assert got[("node_network_receive_bytes_total", eth0)] == \
        [influx_source.base + 1000 * k for k in range(len(influx_source.collections))]
    assert got[(f"agent.{HOST_PATH}.node_network_receive_bytes_total.eth0", frozenset())] == \
        [graphite_source.base + 1000 * k for k in range(len(graphite_source.collections))]
    # Past 2^53 VictoriaMetrics keeps the float64; 2^64-1 drifts a little more.
    odd = frozenset({"interface": ODD, "host": HOST}.items())
    assert float(got[("node_network_receive_bytes_total", odd)][0]) == float(2**63 + 5) == 2**63
    assert got[("node_network_transmit_bytes_total", odd)][0] == pytest.approx(2**64, rel=1e-15)

    # PromQL over what was pushed, both protocols under the same names.
    result = victoria.query('sum by (host) (node_network_receive_bytes_total{interface="eth0"})')
    assert {r["metric"]["host"]: int(r["value"][1]) for r in result} == {
        "influx-host": influx_source.base + 1000 * (len(influx_source.collections) - 1),
        HOST: graphite_source.base + 1000 * (len(graphite_source.collections) - 1)}
    last = {name: value for name, _, _, value in points(influx_source.collections[-1])}
    assert float(victoria.query('node_memory_total_bytes_value{host="influx-host"}')[0]["value"][1]) == \
        last["node_memory_total_bytes"]


def test_victoriametrics_influx_over_udp(victoria, source, log):
    target = parse_push_url(f"influx+udp://127.0.0.1:{victoria.influx_udp}")
    pusher = Pusher([target], 60, source.collect, "udp-host", log)
    pusher.start()
    try:
        assert wait_for(lambda: stat(pusher, "agent_push_sent", target.name) > 0, 5)
    finally:
        pusher.stop()
    sent = points(source.collections[0])
    assert stat(pusher, "agent_push_sent", target.name) == len(sent)
    want = {("node_memory_total_bytes_value", ()), ("node_network_transmit_bytes_total", (("interface", ODD),)),
            ("agent_process_cpu_seconds_total", ())}

    def arrived():
        got = victoria.export('{host="udp-host"}')
        return got if len(got) == len(sent) else None

    got = wait_for(arrived, 10, 0.3)
    assert got, "not every point arrived over UDP"
    names = {(name, tuple(sorted((k, v) for k, v in labels if k != "host"))) for name, labels in got}
    assert want <= names


def test_victoriametrics_refusal_drops_the_batch_without_backoff(victoria, source, log):
    target = parse_push_url(f"influx://127.0.0.1:{victoria.http}/no/such/path")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    pusher.start()
    try:
        assert wait_for(lambda: stat(pusher, "agent_push_errors", target.name) >= 3, 5)
    finally:
        pusher.stop()
    per = len(points(source.collections[0]))
    assert stat(pusher, "agent_push_sent", target.name) == 0
    assert stat(pusher, "agent_push_dropped", target.name) == per * stat(pusher, "agent_push_errors", target.name)
    failing = [line for line in log.lines if "failing" in line]
    assert len(failing) == 1 and "HTTP 400" in failing[0] and "refused" in failing[0], log.lines


# StatsD ----------------------------------------------------------------------


def receive_lines(sock: socket.socket, count: int, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            datagram = sock.recv(65536)
        except socket.timeout:
            break
        assert len(datagram) <= 1400
        lines.extend(datagram.decode().splitlines())
    return lines


def test_statsd_receivers_get_every_point_as_a_gauge(source, log):
    tagged = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with tagged, plain:
        tagged.bind(("127.0.0.1", 0))
        plain.bind(("127.0.0.1", 0))
        targets = [parse_push_url(f"statsd://127.0.0.1:{tagged.getsockname()[1]}"),
                   parse_push_url(f"statsd://127.0.0.1:{plain.getsockname()[1]}?format=path&prefix=agent")]
        pusher = Pusher(targets, 60, source.collect, HOST, log)
        pusher.start()
        try:
            assert wait_for(lambda: source.collections, 5)
            sent = points(source.collections[0])
            got_tagged = receive_lines(tagged, len(sent), 5)
            got_plain = receive_lines(plain, len(sent), 5)
        finally:
            pusher.stop()
    assert stat(pusher, "agent_push_sent", targets[0].name) == len(sent) == len(got_tagged) == len(got_plain)

    parsed = {}
    for line in got_tagged:
        name_value, kind, tags = line.split("|")
        name, value = name_value.split(":")
        assert kind == "g" and tags.startswith("#")
        parsed[(name, frozenset(tuple(t.split(":", 1)) for t in tags[1:].split(",")))] = value
    for name, _counter, labels, value in sent:
        tags = {k: v.replace(",", "_") for k, v in labels.items()}
        tags["host"] = HOST
        assert parsed[(name, frozenset(tags.items()))] == (str(value) if isinstance(value, int) else repr(value))
    assert f"node_network_transmit_bytes_total:{2**64 - 1}|g|#host:{HOST},interface:br_x=1" in got_tagged
    assert f"agent.{HOST_PATH}.node_network_receive_bytes_total.br_x_1:{2**63 + 5}|g" in got_plain
    assert f"agent.{HOST_PATH}.node_network_receive_bytes_total.eth0:{source.base}|g" in got_plain


# Down, then up ----------------------------------------------------------------


def test_receiver_down_buffers_drops_the_oldest_then_delivers_when_up(source, log):
    # Bound but not listening: connections are refused, and the port stays
    # ours until listen() brings the receiver up.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    target = parse_push_url(f"graphite://127.0.0.1:{server.getsockname()[1]}?timeout=2")
    per = len(points(source.collect()))  # the number of points a collection makes
    source.collections.clear()
    limit = 2 * per + per // 2
    pusher = Pusher([target], 0.2, source.collect, HOST, log, buffer_limit=limit)
    pusher.backoff_initial, pusher.backoff_max = 0.1, 0.3
    received = bytearray()
    reader = None
    with server:
        pusher.start()
        try:
            assert wait_for(lambda: len(source.collections) >= 5, 5)
            assert stat(pusher, "agent_push_sent", target.name) == 0
            assert stat(pusher, "agent_push_errors", target.name) >= 2
            assert stat(pusher, "agent_push_queue_length", target.name) == limit
            assert stat(pusher, "agent_push_dropped", target.name) >= 5 * per - limit

            server.settimeout(5)  # accept() gives up if the pusher never comes
            server.listen()

            def read():
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(10)
                    while chunk := conn.recv(65536):
                        received.extend(chunk)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            assert wait_for(lambda: stat(pusher, "agent_push_sent", target.name) >= limit, 5)
        finally:
            pusher.stop()
        reader.join(5)  # the pusher closed the connection: EOF
    assert not reader.is_alive()
    produced = per * len(source.collections)
    sent, dropped = stat(pusher, "agent_push_sent", target.name), stat(pusher, "agent_push_dropped", target.name)
    assert stat(pusher, "agent_push_queue_length", target.name) == 0
    assert sent + dropped == produced and dropped > 0
    lines = received.decode().splitlines()
    assert len(lines) == sent
    # Oldest dropped first: eth0's counter (base + 1000 k in collection k)
    # shows which collections arrived, each once: the newest, in order.
    ks = [(int(line.split()[1]) - source.base) // 1000 for line in lines
          if line.startswith("node_network_receive_bytes_total;host=test-host.example;interface=eth0 ")]
    assert ks == list(range(ks[0], len(source.collections))) and ks[0] >= 2
    assert [line for line in log.lines if "failing" in line][0].startswith(f"push to {target.name} failing: ")
    assert sum("buffer full" in line for line in log.lines) == 1
    assert sum("recovered" in line for line in log.lines) == 1, log.lines


# A receiver that never answers ---------------------------------------------------


def test_silent_receiver_delays_neither_collections_nor_other_targets(source, log):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    silent.settimeout(5)  # accept() gives up if the pusher never comes
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    accepted = []
    stuck = parse_push_url(f"influx://127.0.0.1:{silent.getsockname()[1]}?timeout=3")
    other = parse_push_url(f"statsd://127.0.0.1:{statsd.getsockname()[1]}")
    pusher = Pusher([stuck, other], 0.1, source.collect, HOST, log)
    with silent, statsd:
        pusher.start()
        try:
            conn, _ = silent.accept()  # the request arrives and is never answered
            accepted.append(conn)
            started = len(source.collections)
            scrape_times = []
            for _ in range(10):
                t0 = time.monotonic()
                source.registry.collect()  # what a scrape does, concurrently
                scrape_times.append(time.monotonic() - t0)
                time.sleep(0.05)
            assert max(scrape_times) < 0.25, scrape_times
            assert len(source.collections) - started >= 4  # the collector kept going
            assert stat(pusher, "agent_push_sent", other.name) >= 4 * len(points(source.collections[0]))
            assert stat(pusher, "agent_push_sent", stuck.name) == 0
            assert stat(pusher, "agent_push_errors", stuck.name) == 0
            t0 = time.monotonic()
        finally:
            pusher.stop(timeout=0.5)
        assert time.monotonic() - t0 < 1.0  # a stuck sender is abandoned, not waited for
        assert any("still sending at stop" in line for line in log.lines), log.lines
        for st in pusher.states:
            st.thread.join(5)  # the send's own timeout (3 s) ends it
            assert not st.thread.is_alive()
        assert stat(pusher, "agent_push_errors", stuck.name) == 1
        for conn in accepted:
            conn.close()


def test_self_metrics_families():
    pusher = Pusher([parse_push_url("statsd://127.0.0.1:9"), parse_push_url("influx://127.0.0.1:9")], 10,
                    list, HOST, logging.getLogger("test_push"))
    families = pusher.families()
    assert [(f.desc.name, f.desc.type, f.desc.label_names) for f in families] == [
        ("agent_push_sent", "counter", ("target",)), ("agent_push_dropped", "counter", ("target",)),
        ("agent_push_errors", "counter", ("target",)), ("agent_push_queue_length", "gauge", ("target",))]
    assert families[0].samples == [(("statsd://127.0.0.1:9",), 0), (("influx://127.0.0.1:9",), 0)]
    with pytest.raises(ValueError):
        Pusher([], 0, list, HOST, logging.getLogger("test_push"))


# An Influx receiver that closes each kept-alive connection after answering
# (as servers do with idle ones) -------------------------------------------------


def test_influx_http_retries_once_on_a_connection_the_server_closed(source, log):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    bodies: list[bytes] = []
    connections = []
    done = threading.Event()

    def serve():
        while not done.is_set() and len(connections) < 50:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            connections.append(conn)
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                while len(body) < length and (chunk := conn.recv(65536)):
                    body += chunk
                assert head.startswith(b"POST /write?db=agent HTTP/1.1\r\n")
                bodies.append(body)
                conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")  # keep-alive, then closed

    target = parse_push_url(f"influx://127.0.0.1:{server.getsockname()[1]}?db=agent")
    pusher = Pusher([target], 0.2, source.collect, HOST, log)
    thread = threading.Thread(target=serve, daemon=True)
    with server:
        thread.start()
        pusher.start()
        try:
            assert wait_for(lambda: len(bodies) >= 3, 5)
        finally:
            pusher.stop()
            done.set()
            thread.join(5)
    assert not thread.is_alive()
    lines = b"".join(bodies).decode().splitlines()
    assert stat(pusher, "agent_push_errors", target.name) == 0, log.lines
    assert stat(pusher, "agent_push_sent", target.name) == len(lines) == \
        sum(len(points(c)) for c in source.collections)
    assert len(connections) == len(bodies)  # a new connection after each close
    assert f"node_network_receive_bytes,host={HOST},interface=br\\,x\\=1 total={2**63 + 5}u" in \
        {line.rsplit(" ", 1)[0] for line in lines}


def test_textfile_families_are_pushed_sample_by_sample(victoria, tmp_path):
    """A textfile's samples name themselves and carry their own labels: each
    arrives as its own series (a histogram's buckets by `le`), through the
    Influx protocol and Graphite paths, from the real agent."""
    from agentproc import AgentProcess
    from test_e2e import copy_tree
    from trees import FIXTURES
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    agent = AgentProcess("--procfs", str(tree), "--push-interval", "0.5",
                         "--collector.textfile.directory", str(FIXTURES / "textfile" / "good"),
                         "--push", f"influx://127.0.0.1:{victoria.http}",
                         "--push", f"graphite://127.0.0.1:{victoria.graphite}?format=path&prefix=tf")
    host = socket.gethostname()
    try:
        def arrived():
            got = victoria.export('{__name__=~"apt_upgrades_pending_value|backup_runs_total|'
                                  'request_duration_seconds_bucket_value|tf[.].*apt_upgrades_pending.*"}')
            return got if len(got) >= 2 + 3 + 4 + 2 else None
        got = wait_for(arrived, 15, 0.3)
    finally:
        agent.stop()
    assert got, victoria.log_path.read_text()

    def last(name, **labels):
        return got[(name, frozenset({**labels, "host": host}.items()))][-1]

    assert last("apt_upgrades_pending_value", origin="Ubuntu:24.04/noble-security", arch="amd64") == 4
    assert last("apt_upgrades_pending_value", origin="Ubuntu:24.04/noble-updates", arch="amd64") == 17
    assert last("backup_runs_total", job="db", result="failed") == 3
    assert last("backup_runs_total", job="home", result="ok") == 998
    assert last("request_duration_seconds_bucket_value", handler="/", le="0.1") == 33444
    assert last("request_duration_seconds_bucket_value", handler="/", le="+Inf") == 144320
    paths = {name for name, tags in got if name.startswith("tf.")}
    assert len([p for p in paths if ".apt_upgrades_pending." in p]) == 2, paths
    assert "Traceback" not in agent.log()
