"""The exposition renderers and content negotiation.

Three independent checks of the renderers: a plain reference renderer in
this file must give byte-identical output; prometheus_client must render
the same families to text that its own parsers read back as the same
samples as ours; promtool must find nothing to report in our text output.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    choose_encoder,
    choose_gzip,
    gzip_encode,
    render_openmetrics,
    render_text,
)
from agent.metrics import COUNTER, GAUGE, Desc, Family, Series, counter, gauge

# --- the reference renderer ---------------------------------------------------


def _ref_value(value) -> str:
    if isinstance(value, int):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _ref_escape(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def reference_render(families, openmetrics: bool) -> bytes:
    """One line at a time, straight from the two specs."""
    lines = []
    for family in families:
        desc = family.desc
        sample_name = desc.name + "_total" if desc.type == COUNTER else desc.name
        meta_name = desc.name if openmetrics else sample_name
        lines.append(f"# HELP {meta_name} {_ref_escape(desc.help, quote=openmetrics)}")
        lines.append(f"# TYPE {meta_name} {desc.type}")
        for label_values, value in family.samples:
            assert len(label_values) == len(desc.label_names)
            labels = ""
            if desc.label_names:
                pairs = [f'{name}="{_ref_escape(v, quote=True)}"'
                         for name, v in zip(desc.label_names, label_values)]
                labels = "{" + ",".join(pairs) + "}"
            lines.append(f"{sample_name}{labels} {_ref_value(value)}")
    if openmetrics:
        lines.append("# EOF")
    return "".join(line + "\n" for line in lines).encode("utf-8")


# --- families ------------------------------------------------------------------

WEIRD_LABEL_VALUES = [
    "", " ", "sda", 'say "hi"', "back\\slash", "trailing\\", "new\nline", "\\n literal",
    "\\\"", "}", "{", ",", "=", "a=\"b\",c=\"d\"", "# HELP", "tab\there", "é", "日本語",
    "emoji 🦀", "\u2028", "\x7f", "cr\rreturn", "\ufffd",
]


def sample_families() -> list[Family]:
    """Gauges and counters, 0-3 labels, weird label values and help text,
    big ints, float corner cases."""
    rnd = random.Random(42)
    uint64_max = 2**64 - 1
    fams = [
        Family(gauge("agent_load1", "1-minute load average."), [((), 0.5)]),
        Family(gauge("agent_empty", "A family with no samples."), []),
        Family(counter("agent_boot", 'Help with \\ backslash, "quotes" and a\nnewline.'), [((), 1)]),
        Family(counter("agent_disk_read_bytes", "Bytes read.", ("device",)), [
            (("sda",), uint64_max * 512),
            (("sdb",), uint64_max),
            (("sdc",), 2**64),
            (("sdd",), 0),
            (("nvme0n1",), 2**100 + 1),
        ]),
        Family(gauge("agent_weird", "Weird label values.", ("value",)),
               [((v,), i) for i, v in enumerate(WEIRD_LABEL_VALUES)]),
        Family(gauge("agent_pairs", "Two labels.", ("a", "b")),
               [((a, b), rnd.randint(-10**6, 10**6))
                for a in WEIRD_LABEL_VALUES[:6] for b in WEIRD_LABEL_VALUES[-6:]]),
        Family(gauge("agent_three", "Three labels.", ("x", "y", "z")),
               [(("1", "2", 'q"q'), 3), (("a\\b", "c\nd", ""), -4.25)]),
        Family(gauge("agent_floats", "Float corner cases.", ("case",)), [
            (("tenth",), 0.1), (("big",), 1e20), (("small",), 5e-324), (("neg_zero",), -0.0),
            (("max",), 1.7976931348623157e308), (("third",), 1 / 3), (("int_float",), 3.0),
            (("nan",), math.nan), (("inf",), math.inf), (("ninf",), -math.inf),
            (("negative",), -12.5),
        ]),
        Family(gauge("agent_odd_types", "bool and other int subclasses.", ("case",)), [
            (("true",), True), (("false",), False),
        ]),
        Family(counter("agent_cpu_seconds", "CPU time.", ("cpu", "mode")),
               [((str(c), m), round(rnd.uniform(0, 1e6), 2))
                for c in range(4) for m in ("user", "system", "idle")]),
    ]
    return fams


def dense_families(n_cpus=64, n_disks=30, n_ifaces=60) -> list[Family]:
    """A dense host's ~4,000 samples, lint-clean names."""
    rnd = random.Random(7)
    fams = []
    cpus = [str(i) for i in range(n_cpus)]
    fams.append(Family(counter("node_cpu_seconds", "Seconds the CPUs spent in each mode.", ("cpu", "mode")),
                       [((c, m), round(rnd.uniform(0, 5e6), 2)) for c in cpus
                        for m in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")]))
    disks = [f"sd{chr(97 + i % 26)}{i // 26 or ''}" for i in range(n_disks)]
    for stat in ("reads_completed", "reads_merged", "writes_completed", "writes_merged", "io_now",
                 "discards_completed", "discards_merged", "discarded_sectors", "flush_requests"):
        fams.append(Family(counter(f"node_disk_{stat}", f"Disk statistic {stat}.", ("device",)),
                           [((d,), rnd.randint(0, 10**10)) for d in disks]))
    for stat in ("read_bytes", "written_bytes"):
        fams.append(Family(counter(f"node_disk_{stat}", f"Disk statistic {stat}.", ("device",)),
                           [((d,), rnd.randint(0, 2**64 - 1) * 512) for d in disks]))
    for stat in ("read_time_seconds", "write_time_seconds", "io_time_seconds"):
        fams.append(Family(counter(f"node_disk_{stat}", f"Disk statistic {stat}.", ("device",)),
                           [((d,), round(rnd.uniform(0, 1e6), 3)) for d in disks]))
    ifaces = ["lo", "eth0"] + [f"veth{i:07x}" for i in range(n_ifaces - 2)]
    for stat in ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"):
        for direction in ("receive", "transmit"):
            fams.append(Family(
                counter(f"node_network_{direction}_{stat}", f"Network device statistic {direction}_{stat}.",
                        ("device",)),
                [((i,), rnd.randint(0, 2**40)) for i in ifaces]))
    fams.append(Family(counter("node_softirqs", "Softirqs per CPU and type.", ("cpu", "type")),
                       [((c, t), rnd.randint(0, 10**9)) for c in cpus
                        for t in ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED",
                                  "HRTIMER", "RCU")]))
    fams.append(Family(counter("node_interrupts", "Interrupts per CPU.", ("cpu", "irq")),
                       [((c, str(i)), rnd.randint(0, 10**8)) for c in cpus for i in range(20)]))
    for k in range(60):
        fams.append(Family(gauge(f"node_memory_field{k}_bytes", f"Memory information field {k}."),
                           [((), rnd.randint(0, 2**36) * 1024)]))
    for name in ("node_load1", "node_load5", "node_load15"):
        fams.append(Family(gauge(name, "Load average."), [((), round(rnd.uniform(0, 64), 2))]))
    return fams


def test_dense_families_have_about_4000_samples():
    assert 3800 <= sum(len(f.samples) for f in dense_families()) <= 4200


# --- byte identity with the reference ------------------------------------------


@pytest.mark.parametrize("make", [sample_families, dense_families])
def test_text_matches_reference(make):
    families = make()
    assert render_text(families) == reference_render(families, openmetrics=False)


@pytest.mark.parametrize("make", [sample_families, dense_families])
def test_openmetrics_matches_reference(make):
    families = make()
    assert render_openmetrics(families) == reference_render(families, openmetrics=True)


def test_second_render_uses_cache_and_stays_identical():
    families = sample_families()
    first = render_text(families), render_openmetrics(families)
    second = render_text(families), render_openmetrics(families)
    assert first == second


_names = st.sampled_from(["m", "agent_x", "a:b", "_u", "x9"])
_label_names = st.lists(st.sampled_from(["a", "b", "device", "_l", "x1", "mode"]),
                        unique=True, max_size=4).map(tuple)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


@st.composite
def _families(draw):
    out = []
    for i in range(draw(st.integers(0, 4))):
        labels = draw(_label_names)
        kind = draw(st.sampled_from([COUNTER, GAUGE]))
        desc = Desc(f"{draw(_names)}{i}", kind, draw(_text), labels)
        samples = draw(st.lists(
            st.tuples(st.tuples(*[_text] * len(labels)), _values), max_size=6))
        out.append(Family(desc, samples))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_families())
def test_generated_families_match_reference(families):
    assert render_text(families) == reference_render(families, openmetrics=False)
    assert render_openmetrics(families) == reference_render(families, openmetrics=True)


# --- exact values, layout, errors ------------------------------------------------


def test_big_counters_are_exact_integers():
    desc = counter("agent_sectors_bytes", "Bytes.", ("device",))
    values = [2**64 - 1, (2**64 - 1) * 512, 2**64, 10**30]
    body = render_text([Family(desc, [((str(i),), v) for i, v in enumerate(values)])]).decode()
    for i, v in enumerate(values):
        assert f'agent_sectors_bytes_total{{device="{i}"}} {v}\n' in body
    assert "e+" not in body


def test_counter_and_gauge_layout():
    fams = [Family(counter("agent_forks", "Forks since boot."), [((), 7)]),
            Family(gauge("agent_up", "Up."), [((), 1)])]
    assert render_text(fams) == (
        b"# HELP agent_forks_total Forks since boot.\n"
        b"# TYPE agent_forks_total counter\n"
        b"agent_forks_total 7\n"
        b"# HELP agent_up Up.\n"
        b"# TYPE agent_up gauge\n"
        b"agent_up 1\n")
    assert render_openmetrics(fams) == (
        b"# HELP agent_forks Forks since boot.\n"
        b"# TYPE agent_forks counter\n"
        b"agent_forks_total 7\n"
        b"# HELP agent_up Up.\n"
        b"# TYPE agent_up gauge\n"
        b"agent_up 1\n"
        b"# EOF\n")


def test_escaping_per_format():
    desc = gauge("agent_e", 'a\\b "c"\nd', ("l",))
    fam = [Family(desc, [(('x\\y "z"\nw',), 1)])]
    assert render_text(fam) == (
        b'# HELP agent_e a\\\\b "c"\\nd\n# TYPE agent_e gauge\n'
        b'agent_e{l="x\\\\y \\"z\\"\\nw"} 1\n')
    assert render_openmetrics(fam) == (
        b'# HELP agent_e a\\\\b \\"c\\"\\nd\n# TYPE agent_e gauge\n'
        b'agent_e{l="x\\\\y \\"z\\"\\nw"} 1\n# EOF\n')


def test_special_floats_spelling():
    desc = gauge("agent_f", "F.", ("c",))
    fam = [Family(desc, [(("n",), math.nan), (("p",), math.inf), (("m",), -math.inf), (("r",), 0.1)])]
    assert render_text(fam).endswith(
        b'agent_f{c="n"} NaN\nagent_f{c="p"} +Inf\nagent_f{c="m"} -Inf\nagent_f{c="r"} 0.1\n')


def test_utf8_label_values_encoded():
    fam = [Family(gauge("agent_u", "U.", ("l",)), [(("日本",), 1)])]
    assert 'agent_u{l="日本"} 1\n'.encode() in render_text(fam)


def test_empty_input():
    assert render_text([]) == b""
    assert render_openmetrics([]) == b"# EOF\n"


@pytest.mark.parametrize("family", [
    Family(gauge("agent_x", "X.", ("a",)), [(("1", "2"), 1)]),
    Family(gauge("agent_x", "X.", ("a", "b")), [(("1",), 1)]),
    Family(gauge("agent_x", "X.", ("a", "b", "c")), [(("1",), 1)]),
    Family(gauge("agent_x", "X."), [(("1",), 1)]),
    Family(gauge("agent_x", "X.", ("a",)), [((1,), 1)]),
    Family(gauge("agent_x", "X."), [((), None)]),
    Family(gauge("agent_x", "X."), [((), "12")]),
], ids=["too-many", "too-few", "too-few-3", "labels-on-unlabelled", "int-label", "none-value",
        "str-value"])
def test_bad_samples_raise_valueerror_naming_the_family(family):
    for render in (render_text, render_openmetrics):
        with pytest.raises(ValueError, match="agent_x"):
            render([family])


@pytest.mark.parametrize("desc", [
    Desc("1bad", GAUGE, "h"),
    Desc("bad-name", GAUGE, "h"),
    Desc("agent_x_total", COUNTER, "h"),
    Desc("agent_x", "histogram", "h"),
    Desc("agent_x", GAUGE, "h", ("bad-label",)),
    Desc("agent_x", GAUGE, "h", ("__reserved",)),
    Desc("agent_x", GAUGE, "h", ("a", "a")),
], ids=["digit-first", "dash", "counter-total", "unknown-type", "bad-label", "reserved-label",
        "duplicate-label"])
def test_invalid_descs_are_refused(desc):
    with pytest.raises(ValueError):
        render_text([Family(desc, [])])
    with pytest.raises(ValueError):
        render_openmetrics([Family(desc, [])])


# --- prometheus_client cross-check ------------------------------------------------


def _to_client_families(families):
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    out = []
    for family in families:
        desc = family.desc
        cls = CounterMetricFamily if desc.type == COUNTER else GaugeMetricFamily
        metric = cls(desc.name, desc.help, labels=list(desc.label_names))
        for label_values, value in family.samples:
            metric.add_metric(list(label_values), value)
        out.append(metric)
    return out


class _StaticCollector:
    def __init__(self, metrics):
        self._metrics = metrics

    def collect(self):
        return iter(self._metrics)


def _client_output(families, openmetrics: bool) -> str:
    from prometheus_client import CollectorRegistry
    from prometheus_client import generate_latest as text_latest
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StaticCollector(_to_client_families(families)))
    return (om_latest if openmetrics else text_latest)(registry).decode("utf-8")


def _parsed(text: str, openmetrics: bool):
    """{family: (type, help, {(sample name, labels): value as float})}."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for metric in text_string_to_metric_families(text):
        samples = {}
        for sample in metric.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples
            samples[key] = float(sample.value)
        out[metric.name] = (metric.type, metric.documentation, samples)
    return out


def _same_samples(ours: dict, theirs: dict):
    assert ours.keys() == theirs.keys()
    for name in ours:
        our_type, our_help, our_samples = ours[name]
        their_type, their_help, their_samples = theirs[name]
        assert (our_type, our_help) == (their_type, their_help), name
        assert our_samples.keys() == their_samples.keys(), name
        for key, value in our_samples.items():
            other = their_samples[key]
            assert value == other or (math.isnan(value) and math.isnan(other)), (key, value, other)


def _client_comparable(families):
    # The OpenMetrics parser refuses a NaN or negative counter and an
    # empty family is legal but carries nothing to compare; keep the rest.
    out = []
    for family in families:
        samples = family.samples
        if family.desc.type == COUNTER:
            samples = [(lv, v) for lv, v in samples if not (v != v or v < 0)]
        out.append(Family(family.desc, samples))
    return out


@pytest.mark.parametrize("make", [sample_families, dense_families])
def test_text_parses_like_prometheus_client(make):
    families = make()
    ours = _parsed(render_text(families).decode("utf-8"), openmetrics=False)
    theirs = _parsed(_client_output(families, openmetrics=False), openmetrics=False)
    _same_samples(ours, theirs)
    assert sum(len(s) for _, _, s in ours.values()) == sum(len(f.samples) for f in families)


@pytest.mark.parametrize("make", [sample_families, dense_families])
def test_openmetrics_parses_like_prometheus_client(make):
    families = _client_comparable(make())
    ours = _parsed(render_openmetrics(families).decode("utf-8"), openmetrics=True)
    theirs = _parsed(_client_output(families, openmetrics=True), openmetrics=True)
    _same_samples(ours, theirs)
    assert sum(len(s) for _, _, s in ours.values()) == sum(len(f.samples) for f in families)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_client_parser_reads_big_integers_exactly(openmetrics):
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        body = render_openmetrics
    else:
        from prometheus_client.parser import text_string_to_metric_families
        body = render_text
    value = (2**64 - 1) * 512
    fam = [Family(counter("agent_bytes", "B."), [((), value)])]
    (metric,) = text_string_to_metric_families(body(fam).decode())
    assert metric.samples[0].value == value


# --- promtool --------------------------------------------------------------------


def _promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI")
        pytest.skip("promtool not installed")
    return path


def test_promtool_check_metrics_reports_nothing():
    promtool = _promtool()
    body = render_text(dense_families() + [
        Family(gauge("agent_weird_labels", "Weird label values.", ("value",)),
               [((v,), i) for i, v in enumerate(WEIRD_LABEL_VALUES)]),
        Family(counter("agent_boot", 'Help with \\ backslash, "quotes" and a\nnewline.'), [((), 1)]),
    ])
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"" and result.stderr == b"", (result.stdout + result.stderr).decode(
        errors="replace")


# --- choose_encoder ----------------------------------------------------------------

TEXT = (render_text, TEXT_CONTENT_TYPE)
OM = (render_openmetrics, OPENMETRICS_CONTENT_TYPE)

# The headers Prometheus sends, from its scrape code across versions.
PROMETHEUS_ACCEPT = {
    # 2.0-2.4: text only.
    "prometheus-2.0": ("text/plain;version=0.0.4;q=1,*/*;q=0.1", TEXT),
    # 2.5-2.30: the OpenMetrics draft first.
    "prometheus-2.5": ("application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                       OM),
    # 2.31-2.40: OpenMetrics 1.0.0.
    "prometheus-2.31": ("application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                        OM),
    # 2.41-2.48: both OpenMetrics versions, then text.
    "prometheus-2.41": ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", OM),
    # 2.41-2.48 with native histograms: protobuf first, which we don't offer.
    "prometheus-2.41-protobuf": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
        "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", OM),
    # 2.49+: scrape_protocols, descending q from 0.5.
    "prometheus-2.49": ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
                        "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OM),
    "prometheus-2.49-protobuf": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,"
        "application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,"
        "text/plain;version=0.0.4;q=0.2,*/*;q=0.1", OM),
    # 2.49+ with scrape_protocols: [PrometheusText0.0.4].
    "prometheus-2.49-text-only": ("text/plain;version=0.0.4;q=0.5,*/*;q=0.4", TEXT),
    # 3.0: text 1.0.0 added, escaping on every element.
    "prometheus-3.0": (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
        "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.5,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
        "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2", OM),
    # 3.x: escaping only on the 1.0.0 formats; underscores when configured.
    "prometheus-3.x": (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
        "application/openmetrics-text;version=0.0.1;q=0.5,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OM),
    "prometheus-3.x-underscores": (
        "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
        "application/openmetrics-text;version=0.0.1;q=0.5,"
        "text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OM),
    "prometheus-3.x-protobuf": (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,"
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", OM),
    # 3.x with scrape_protocols: [PrometheusText1.0.0]: our 0.0.4 output is
    # valid text 1.0.0 (legacy names only), so text beats */*.
    "prometheus-3.x-text1-only": ("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5", TEXT),
}

OTHER_ACCEPT = {
    "none": (None, TEXT),
    "empty": ("", TEXT),
    "curl": ("*/*", TEXT),
    "browser": ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", TEXT),
    "python-requests": ("*/*", TEXT),
    "openmetrics-bare": ("application/openmetrics-text", OM),
    "openmetrics-quoted-version": ('application/openmetrics-text; version="1.0.0"', OM),
    "openmetrics-upper-case": ("APPLICATION/OPENMETRICS-TEXT; VERSION=1.0.0; CHARSET=UTF-8", OM),
    "openmetrics-spaces": ("  application/openmetrics-text ;  version = 1.0.0 ; q = 0.9 , text/plain ; q=0.5 ", OM),
    "openmetrics-refused": ("application/openmetrics-text;q=0", TEXT),
    "openmetrics-refused-star": ("application/openmetrics-text;q=0,*/*", TEXT),
    "openmetrics-q-zero-decimals": ("application/openmetrics-text;q=0.000,*/*;q=0.1", TEXT),
    "text-refused-star": ("text/plain;q=0,*/*", OM),
    "text-version-refused": ("text/plain;version=0.0.4;q=0,text/plain;q=1,application/openmetrics-text;q=0.5", OM),
    "both-refused": ("text/plain;q=0,application/openmetrics-text;q=0", TEXT),
    "all-refused": ("*/*;q=0", TEXT),
    "text-preferred": ("text/plain;version=0.0.4,application/openmetrics-text;q=0.9", TEXT),
    "om-preferred-by-q": ("text/plain;q=0.4,application/openmetrics-text;q=0.6", OM),
    "tie-first-listed-om": ("application/openmetrics-text,text/plain", OM),
    "tie-first-listed-text": ("text/plain,application/openmetrics-text", TEXT),
    "tie-explicit-beats-wildcard": ("*/*,text/plain", TEXT),
    "tie-explicit-om-beats-wildcard": ("*/*,application/openmetrics-text", OM),
    "application-wildcard": ("application/*", OM),
    "text-wildcard": ("text/*", TEXT),
    "wildcards-tie": ("application/*,text/*", OM),
    "more-specific-range-wins": ("application/openmetrics-text;version=1.0.0;q=0,application/*;q=1,*/*;q=0.5",
                                 TEXT),
    "openmetrics-unknown-version": ("application/openmetrics-text;version=2.0.0", TEXT),
    "openmetrics-unknown-version-star": ("application/openmetrics-text;version=2.0.0,*/*;q=0.1", TEXT),
    "text-unknown-version": ("text/plain;version=0.0.1,application/openmetrics-text;q=0.1", OM),
    "openmetrics-latin1": ("application/openmetrics-text;charset=iso-8859-1", TEXT),
    "openmetrics-unknown-escaping": ("application/openmetrics-text;escaping=bogus", OM),
    "protobuf-only": ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
                      TEXT),
    "json-only": ("application/json", TEXT),
    "quoted-comma": ('text/plain;foo="a,b";q=0,application/openmetrics-text', OM),
}

HOSTILE_ACCEPT = [
    ";;;,,,", ",", ";", "/", "*/plain", "text/", "/plain", "application/openmetrics-text;q=abc",
    "application/openmetrics-text;q=1.5", "application/openmetrics-text;q=-1", "application/openmetrics-text;q=nan",
    "application/openmetrics-text;q=inf", "application/openmetrics-text;q=1e0", "application/openmetrics-text;q",
    "application/openmetrics-text;=1", 'application/openmetrics-text;version="1.0.0', '"""', '\\',
    "\x00\x01\x02", "ápplication/openmetrics-text", "application/openmetrics-text" * 400,
    ",".join(["text/plain;q=0"] * 500), "a/b;" * 1000, "=" * 5000, "application/openmetrics-text;q=0." + "0" * 300 + "1",
]


@pytest.mark.parametrize("header,expected", list(PROMETHEUS_ACCEPT.values()), ids=list(PROMETHEUS_ACCEPT))
def test_choose_encoder_prometheus_headers(header, expected):
    assert choose_encoder(header) == expected


@pytest.mark.parametrize("header,expected", list(OTHER_ACCEPT.values()), ids=list(OTHER_ACCEPT))
def test_choose_encoder_table(header, expected):
    assert choose_encoder(header) == expected


@pytest.mark.parametrize("header", HOSTILE_ACCEPT)
def test_choose_encoder_hostile_headers_fall_back_to_text(header):
    assert choose_encoder(header) == TEXT


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_choose_encoder_never_raises(header):
    assert choose_encoder(header) in (TEXT, OM)


def test_choose_encoder_pair_is_consistent():
    for header in ("application/openmetrics-text", "*/*"):
        render, content_type = choose_encoder(header)
        body = render([Family(gauge("agent_up", "Up."), [((), 1)])])
        assert body.endswith(b"# EOF\n") == content_type.startswith("application/openmetrics-text")


# --- choose_gzip ------------------------------------------------------------------

GZIP_TABLE = {
    "none": (None, False),
    "empty": ("", False),
    "prometheus": ("gzip", True),
    "prometheus-no-compression": ("identity", False),
    "curl-compressed": ("deflate, gzip, br, zstd", True),
    "browser": ("gzip, deflate, br", True),
    "upper-case": ("GZIP", True),
    "x-gzip": ("x-gzip", True),
    "spaces": ("  gzip ; q = 0.5 ", True),
    "tiny-q": ("gzip;q=0.001", True),
    "refused": ("gzip;q=0", False),
    "refused-decimals": ("gzip;q=0.000", False),
    "refused-overrides-star": ("gzip;q=0, *", False),
    "star": ("*", True),
    "star-refused": ("*;q=0", False),
    "identity-only": ("identity;q=1, *;q=0", False),
    "deflate-only": ("deflate", False),
    "preferences": ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    "garbage-q": ("gzip;q=abc", False),
    "garbage-q-star": ("gzip;q=abc, *;q=0.5", True),
    "q-too-big": ("gzip;q=2", False),
    "empty-q": ("gzip;q=", False),
    "garbage": (";;,,", False),
    "binary": ("\x00gzip\xff", False),
    "gzip-substring": ("gzipx, xgzip", False),
    "long": ("identity, " * 800 + "gzip", True),
}


@pytest.mark.parametrize("header,expected", list(GZIP_TABLE.values()), ids=list(GZIP_TABLE))
def test_choose_gzip_table(header, expected):
    assert choose_gzip(header) is expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_choose_gzip_never_raises(header):
    assert choose_gzip(header) in (True, False)


def test_gzip_encode_round_trips():
    body = render_text(dense_families())
    packed = gzip_encode(body)
    assert packed[:2] == b"\x1f\x8b"
    assert zlib.decompress(packed, 31) == body
    assert len(packed) < len(body) // 3


def test_gzip_encode_large_bodies_round_trip_through_the_fast_compressor():
    from agent import exposition
    body = render_text(dense_families()) * (exposition.LARGE_BODY // 10_000 + 2)
    assert len(body) >= exposition.LARGE_BODY
    packed = gzip_encode(body)
    assert packed[:2] == b"\x1f\x8b"
    import gzip
    assert gzip.decompress(packed) == body
    assert len(packed) < len(body) // 3


@pytest.mark.parametrize("isal", [True, False], ids=["isal", "zlib"])
@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])  # about LARGE_BODY
def test_either_compressor_writes_gzip_of_the_body(monkeypatch, isal, large):
    import gzip

    from agent import exposition
    if isal:
        pytest.importorskip("isal")
    else:  # as where the isal wheel does not install
        monkeypatch.setattr(exposition, "_isal_zlib", False)
    families = dense_families() if large else sample_families()
    for render in (render_text, render_openmetrics):
        body = render(families)
        assert (len(body) >= exposition.LARGE_BODY) == large
        for packed in (gzip_encode(body), exposition.render_gzip(render, families)):
            assert packed[:2] == b"\x1f\x8b"
            assert gzip.decompress(packed) == body
            assert len(packed) < len(body) // 2


# --- the Series fast path -----------------------------------------------------

_finite_values = st.one_of(st.integers(min_value=0, max_value=2**80),
                           st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def _series_and_families(draw):
    series, families = [], []
    for i in range(draw(st.integers(0, 4))):
        labels = draw(_label_names)
        kind = draw(st.sampled_from([COUNTER, GAUGE]))
        desc = Desc(f"{draw(_names)}{i}", kind, draw(_text), labels)
        label_sets = draw(st.lists(st.tuples(*[_text] * len(labels)), max_size=6))
        values = draw(st.lists(_finite_values, min_size=len(label_sets), max_size=len(label_sets)))
        s = Series(desc, tuple(label_sets), values)
        series.append(s)
        families.append(Family(desc, list(zip(label_sets, values))))
    return series, families


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_series_and_families())
def test_series_fast_path_is_byte_identical_to_the_plain_path(pair):
    series, families = pair
    for render in (render_text, render_openmetrics):
        expected = render(families)
        assert render(series) == expected
        assert render(series) == expected  # second time from the prefix cache


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_families(), _series_and_families().map(lambda pair: pair[0])),
                min_size=2, max_size=5))
def test_the_whole_body_plan_follows_every_change_of_shape(scrapes):
    # Renders in a row, as scrapes are: each one through the plan the one
    # before left (same shape) or through the plain path (any change), and
    # each one exactly the reference.
    for families in scrapes:
        for _ in range(2):
            assert render_text(families) == reference_render(families, openmetrics=False)
            assert render_openmetrics(families) == reference_render(families, openmetrics=True)


def test_the_plan_takes_new_values_and_leaves_odd_ones_to_the_plain_path():
    desc = Desc("node_y", GAUGE, "100% of %s", ("cpu",))
    labels = (("0",), ("50%",))
    for values in ([1, 2.5], [3, 4.25], [float("nan"), True], [2**70, -0.0], [5, 6]):
        families = [Family(desc, list(zip(labels, values))), Series(desc, labels, [7, 8])]
        assert render_text(families) == reference_render(families, openmetrics=False)
    with pytest.raises(ValueError):  # a bad value after a planned render still fails
        render_text([Family(desc, [(("0",), "12")])])
    one = Desc("node_z", GAUGE, "h")
    assert render_text([Family(one, [((), 1)])]) == render_text([Family(one, [((), 2)])]).replace(b"2", b"1")
    for malformed in ([((), 1, 2)], [(("x",), 1)], [[(), 1]]):  # the plan's one-sample path
        try:
            expected = reference_render([Family(one, malformed)], openmetrics=False)
        except (AssertionError, ValueError):
            with pytest.raises(ValueError, match="bad sample"):
                render_text([Family(one, malformed)])
        else:
            assert render_text([Family(one, malformed)]) == expected


def _twice_alike(families):
    """Renders twice (the second through a plan, where one is made) and
    returns the body; both renders must agree."""
    first = render_text(families)
    assert render_text(families) == first
    return first


def test_the_plan_leaves_odd_inputs_as_the_plain_path_renders_them(monkeypatch):
    import enum
    import gzip

    from agent import exposition
    g0, g1 = Desc("g0", GAUGE, "h"), Desc("g1", GAUGE, "h", ("a",))

    class Dev(str, enum.Enum):
        ETH0 = "eth0"

    # A falsy non-tuple label set where there are no labels; a str subclass
    # as a label value; label sets in a list that the caller then changes.
    assert _twice_alike([Family(g0, [(None, 1)])]).endswith(b"g0 1\n")
    _twice_alike([Family(g1, [((Dev.ETH0,), 1)])])
    labels = ["eth0"]
    families = [Family(g1, [(labels, 1)])]
    assert render_text(families).endswith(b'g1{a="eth0"} 1\n')
    labels[0] = "eth1"
    assert render_text(families).endswith(b'g1{a="eth1"} 1\n')
    # An int str() refuses, after a planned render: the plain path's error.
    _twice_alike([Family(g0, [((), 1)])])
    with pytest.raises(ValueError, match="bad sample"):
        render_text([Family(g0, [((), 10**5000)])])
    # The Desc cache cleared while a body renders (a caller building Descs
    # per scrape): no plan, the right body.
    monkeypatch.setattr(exposition, "_CACHE_LIMIT", 1)
    descs = [Desc(f"n{i}", GAUGE, "h") for i in range(3)]
    families = [Family(d, [((), i)]) for i, d in enumerate(descs)]
    assert _twice_alike(families) == reference_render(families, openmetrics=False)
    # Samples in a generator: render_gzip takes them as render does.
    make = lambda: [Family(g1, (((str(i),), i) for i in range(3)))]  # noqa: E731
    assert gzip.decompress(exposition.render_gzip(render_text, make())) == render_text(make())


def test_series_prefix_cache_follows_changed_label_sets():
    desc = Desc("node_x", COUNTER, "h", ("device",))
    first = Series(desc, (("a",), ("b",)), [1, 2])
    assert render_text([first]).endswith(b'node_x_total{device="a"} 1\nnode_x_total{device="b"} 2\n')
    second = Series(desc, (("a",), ("c",)), [3, 4])
    assert render_text([second]).endswith(b'node_x_total{device="a"} 3\nnode_x_total{device="c"} 4\n')
    with pytest.raises(ValueError):
        render_text([Series(desc, (("a",),), [1, 2])])


@pytest.mark.parametrize("scale", [1, 40])  # below and above the fast compressor's threshold
def test_render_gzip_decompresses_to_the_rendered_body(scale):
    import gzip

    from agent.exposition import render_gzip
    families = dense_families() * scale
    for render in (render_text, render_openmetrics):
        packed = render_gzip(render, families)
        assert packed[:2] == b"\x1f\x8b"
        assert gzip.decompress(packed) == render(families)


# --- families read from files (RawFamily) ---------------------------------------

from agent.metrics import HISTOGRAM, SUMMARY, UNTYPED, RawFamily  # noqa: E402
from agent.textformat import format_float, parse_text  # noqa: E402


def test_raw_families_in_both_formats():
    families = [
        RawFamily(Desc("runs_total", COUNTER, 'Runs, "all" \\ of\nthem.'),
                  [(("runs_total", (("job", 'a"b'),)), 3.0)]),
        RawFamily(Desc("k", COUNTER, "No _total."), [(("k", ()), 5)]),
        RawFamily(Desc("u", UNTYPED, "Untyped."), [(("u", (("x", ""),)), math.nan)]),
        RawFamily(Desc("h", HISTOGRAM, "H."), [
            (("h_bucket", (("le", "1"),)), 1.0), (("h_bucket", (("le", "1e+06"),)), 2.0),
            (("h_bucket", (("le", "+Inf"),)), 2.0), (("h_sum", ()), 0.5), (("h_count", ()), 2.0)]),
        RawFamily(Desc("s", SUMMARY, "S."), [
            (("s", (("quantile", "0"),)), 1.0), (("s", (("quantile", "0.5"),)), 1.5),
            (("s_sum", ()), 3.0), (("s_count", ()), 2.0)]),
    ]
    assert render_text(families).decode() == (
        '# HELP runs_total Runs, "all" \\\\ of\\nthem.\n# TYPE runs_total counter\n'
        'runs_total{job="a\\"b"} 3.0\n'
        "# HELP k No _total.\n# TYPE k counter\nk 5\n"
        '# HELP u Untyped.\n# TYPE u untyped\nu{x=""} NaN\n'
        '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1.0\nh_bucket{le="1e+06"} 2.0\n'
        'h_bucket{le="+Inf"} 2.0\nh_sum 0.5\nh_count 2.0\n'
        '# HELP s S.\n# TYPE s summary\ns{quantile="0"} 1.0\ns{quantile="0.5"} 1.5\ns_sum 3.0\ns_count 2.0\n')
    assert render_openmetrics(families).decode() == (
        '# HELP runs Runs, \\"all\\" \\\\ of\\nthem.\n# TYPE runs counter\n'
        'runs_total{job="a\\"b"} 3.0\n'
        "# HELP k No _total.\n# TYPE k counter\nk_total 5\n"
        '# HELP u Untyped.\n# TYPE u unknown\nu{x=""} NaN\n'
        '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1.0"} 1.0\nh_bucket{le="1e+06"} 2.0\n'
        'h_bucket{le="+Inf"} 2.0\nh_sum 0.5\nh_count 2.0\n'
        '# HELP s S.\n# TYPE s summary\ns{quantile="0.0"} 1.0\ns{quantile="0.5"} 1.5\ns_sum 3.0\ns_count 2.0\n'
        "# EOF\n")


@pytest.mark.parametrize("desc", [
    Desc("x", "info", "h"), Desc("1x", GAUGE, "h"), Desc("x", GAUGE, "h", ("a",)),
])
def test_invalid_raw_descs_are_refused(desc):
    with pytest.raises(ValueError):
        render_text([RawFamily(desc, [(("x", ()), 1)])])


_bounds = st.floats(min_value=0, allow_infinity=False)
_float_values = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def _file_like_families(draw):
    """Families as the agent serves them (its own and files'): each series
    once, counters and counts from 0, names that no two families share."""
    out = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([COUNTER, GAUGE, UNTYPED, HISTOGRAM, SUMMARY]))
        labels = draw(_label_names)
        label_sets = draw(st.lists(st.tuples(*[_text] * len(labels)), max_size=4, unique=True))
        counter_values = st.one_of(st.integers(0, 2**80), st.floats(min_value=0, allow_infinity=True))
        if kind in (COUNTER, GAUGE) and draw(st.booleans()):
            desc = Desc(f"{draw(_names)}{i}", kind, draw(_text), labels)
            values = counter_values if kind == COUNTER else _values
            out.append(Family(desc, [(ls, draw(values)) for ls in label_sets]))
            continue
        name = f"{draw(_names)}{i}" + ("_total" if kind == COUNTER and draw(st.booleans()) else "")
        samples = []
        for values in label_sets:
            pairs = tuple(zip(labels, values))
            if kind in (COUNTER, GAUGE, UNTYPED):
                samples.append(((name, pairs), draw(counter_values if kind == COUNTER else _float_values)))
                continue
            if kind == HISTOGRAM:
                bounds = sorted(draw(st.sets(_bounds, max_size=4))) + [math.inf]
                counts = sorted(draw(st.lists(st.integers(0, 2**40), min_size=len(bounds), max_size=len(bounds))))
                samples += [((name + "_bucket", pairs + (("le", format_float(b)),)), c)
                            for b, c in zip(bounds, counts)]
            else:
                quantiles = sorted(draw(st.sets(st.floats(0, 1), max_size=3)))
                counts = [draw(st.integers(0, 2**40))]
                samples += [((name, pairs + (("quantile", format_float(q)),)),
                             draw(st.one_of(st.just(math.nan), st.floats(min_value=0))))
                            for q in quantiles]
            samples.append(((name + "_sum", pairs), draw(st.floats(min_value=0))))
            samples.append(((name + "_count", pairs), counts[-1]))
        out.append(RawFamily(Desc(name, kind, draw(_text)), samples))
    return out


def _written_samples(families) -> dict:
    """{(sample name, label pairs as a set): repr of the float} of what the
    families hold."""
    out = {}
    for family in families:
        if family.__class__ is RawFamily:
            for (name, pairs), value in family.samples:
                out[(name, frozenset(pairs))] = repr(float(value))
            continue
        desc = family.desc
        name = desc.name + "_total" if desc.type == COUNTER else desc.name
        for values, value in family.samples:
            out[(name, frozenset(zip(desc.label_names, values)))] = repr(float(value))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_file_like_families())
def test_text_output_parses_back_to_the_same_samples(families):
    # The textfile collector's parser reads what the renderer writes: the
    # same samples, the same types; and the OpenMetrics body parses too.
    body = render_text(families)
    parsed = parse_text(body)
    got = {(name, frozenset(pairs)): repr(value) for family in parsed for (name, pairs), value in family.samples}
    assert got == _written_samples(families)
    assert {f.name: f.type for f in parsed} == {
        (f.desc.name + "_total" if f.__class__ is Family and f.desc.type == COUNTER else f.desc.name): f.desc.type
        for f in families if f.samples}
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    list(text_string_to_metric_families(render_openmetrics(families).decode()))


def test_the_plan_renders_raw_families_as_the_plain_path_does():
    from agent import exposition
    desc = Desc("h", HISTOGRAM, "100% of %s")

    def families(count, le="+Inf"):
        return [RawFamily(desc, [(("h_bucket", (("x", "5%"), ("le", le))), count),
                                 (("h_count", (("x", "5%"),)), count)]),
                Family(gauge("g", "G."), [((), 1)])]
    for render, cache in ((render_text, exposition._text_cache),
                          (render_openmetrics, exposition._openmetrics_cache)):
        render(families(1))
        for count, le in ((2, "+Inf"), (math.nan, "+Inf"), (3, "1"), (4, "1")):
            through_plan = exposition._planned_text(families(count, le), cache)
            planned = render(families(count, le))
            exposition._plans.clear()
            assert render(families(count, le)) == planned
            # The plan served every render of the shape it was made from,
            # NaN included (a textfile's value; re-planning at every scrape
            # cost 4x the plain render), and not the changed shape.
            assert (through_plan is not None) == (count != 3)


from agent import exposition  # noqa: E402

# What the renderer keeps between scrapes for a large family goes once the
# family comes back with other label sets or none, whichever format it was
# rendered in: 100,000 interfaces' formats are ~40 MB of text.
def _big_family_memory(render_big, render_after) -> int:
    import tracemalloc

    from agent.metrics import Series, counter
    desc = counter("test_kept_formats_bytes", "Formats kept between renders.", ("interface",))
    small = Series(desc, (("lo",), ("eth0",)), [1, 2])
    big = Series(desc, tuple((f"veth{i:06d}",) for i in range(20_000)), list(range(20_000)))
    empty = Series(desc, (), [])
    exposition.clear_caches()
    render_big(small)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        render_big(big)
        kept_big = tracemalloc.get_traced_memory()[0] - base
        del big
        render_after(small, empty)
        return kept_big, tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        exposition.clear_caches()


@pytest.mark.parametrize("after", ["fewer labels", "no labels"])
@pytest.mark.parametrize("formats", ["same", "text then openmetrics", "gzip text then openmetrics"])
def test_a_large_family_is_not_kept_once_it_shrinks(formats, after):
    first = {"same": exposition.render_text, "text then openmetrics": exposition.render_text,
             "gzip text then openmetrics": lambda f: exposition.render_gzip(exposition.render_text, f)}[formats]
    then = exposition.render_text if formats == "same" else exposition.render_openmetrics

    def render_after(small, empty):
        for _ in range(3):
            then([small if after == "fewer labels" else empty])

    kept_big, kept_after = _big_family_memory(lambda f: first([f]), render_after)
    assert kept_big > 1_000_000  # the format of 20,000 lines was kept while they were there
    # (What stays is the interpreter's free list of 1-tuples, ~96 KB.)
    assert kept_after < 200_000, kept_after


def test_a_family_left_out_of_one_render_keeps_its_format():
    # A scrape with collect[] leaves families out; they are not gone, and
    # the next full scrape must not build their formats again.
    from agent.metrics import Series, counter
    a = Series(counter("test_kept_a", "a", ("x",)), (("1",), ("2",)), [1, 2])
    b = Series(counter("test_kept_b", "b", ("x",)), tuple((str(i),) for i in range(5000)), list(range(5000)))
    exposition.clear_caches()
    exposition.render_text([a, b])
    kept = exposition._series_caches[id(exposition._text_cache)][b.desc]
    exposition.render_text([a])
    exposition.render_text([a, b])
    assert exposition._series_caches[id(exposition._text_cache)][b.desc] is kept
    exposition.clear_caches()
