"""Encoders for the push protocols: one collection (a list of families) in,
one bytes entry per point out, newline-terminated, ready to concatenate.

Pure functions, no I/O: the pusher (push.py) stamps the time, encodes once
per format and queues the entries.  Every protocol gets the same points
from the same families:

- the point's name is the Prometheus sample name: a gauge's family name, a
  counter's family name + `_total` (Influx instead puts `_total` in the
  field name, so VictoriaMetrics rebuilds the same name);
- its tags are the family's labels with an empty value left out (Prometheus
  treats an empty label as an absent one) plus `host`, the agent's host
  name; a family label called `host` wins over the agent's;
- counters are sent raw, never as deltas, so they stay monotonic and a
  receiver computes rates as Prometheus does;
- a NaN or infinite value is left out: no protocol here can carry one.

docs/PUSH.md shows a line of each format.
"""

from __future__ import annotations

import math
import re

from agent import otlp
from agent.metrics import COUNTER, RawFamily

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Iterable, Iterator

INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def _points(families: Iterable, host: str | None) -> Iterator[tuple[str, str, bool, list[tuple[str, str]], object]]:
    """(family name, sample name, is counter, sorted tags, value) per point;
    no `host` tag where `host` is None (OTLP: a resource attribute)."""
    for family in families:
        desc = family.desc
        is_counter = desc.type == COUNTER
        if isinstance(family, RawFamily):
            yield from _raw_points(family, is_counter, host)
            continue
        sample_name = desc.name + "_total" if is_counter else desc.name
        label_names = desc.label_names
        own_host = "host" in label_names
        for label_values, value in family.samples:
            if isinstance(value, float) and not math.isfinite(value):
                continue
            tags = [(k, v) for k, v in zip(label_names, label_values) if v != ""]
            if host is not None and not own_host:
                tags.append(("host", host))
            tags.sort()
            yield desc.name, sample_name, is_counter, tags, value


def _raw_points(family: RawFamily, is_counter: bool, host: str):
    """A textfile's family: each sample names itself and carries its own
    labels (a histogram's `_bucket` with `le` ...); a counter's samples
    are grouped under the name without `_total`, as the agent's own are."""
    for (sample_name, pairs), value in family.samples:
        if isinstance(value, float) and not math.isfinite(value):
            continue
        tags = [(k, v) for k, v in pairs if v != ""]
        if host is not None and not any(k == "host" for k, _ in pairs):
            tags.append(("host", host))
        tags.sort()
        name = sample_name.removesuffix("_total") if is_counter else sample_name
        yield name, sample_name, is_counter, tags, value


def _number(value) -> str:
    """Ints in full (never through a float), floats as the shortest repr
    that round-trips."""
    if isinstance(value, int):
        return str(int(value))  # int(): a bool would print True
    return repr(float(value))


# --- InfluxDB line protocol ----------------------------------------------

_INFLUX_MEASUREMENT = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r",
                                     "\t": "\\t"})
_INFLUX_TAG = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r",
                             "\t": "\\t"})


def influx_field(is_counter: bool, value) -> str | None:
    """`total=<v>` for a counter, `value=<v>` for a gauge.

    An int counter is an integer field (`i`) so it stays exact; from 2^63
    to 2^64-1 it is unsigned (`u`, InfluxDB 2 and VictoriaMetrics; InfluxDB
    1.x refuses it); beyond (a sector count x 512 can be) it can only be a
    float.  Gauges are always float fields, even when the value is an int,
    so that InfluxDB never sees one field change type: an int gauge is
    written in full without a suffix, which the line protocol reads as a
    float."""
    if not is_counter:
        return "value=" + _number(value)
    if isinstance(value, int):
        value = int(value)
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return f"total={value}i"
        if 0 <= value <= UINT64_MAX:
            return f"total={value}u"
        try:
            return "total=" + repr(float(value))
        except OverflowError:
            return None
    return "total=" + repr(float(value))


def influx_lines(families: Iterable, host: str, timestamp_ns: int) -> list[bytes]:
    """`<family>,<tag>=<v>,... total=<counter>i|value=<gauge> <ns>`"""
    out = []
    suffix = f" {timestamp_ns}\n"
    for name, _sample, is_counter, tags, value in _points(families, host):
        field = influx_field(is_counter, value)
        if field is None:
            continue
        parts = [name.translate(_INFLUX_MEASUREMENT)]
        parts.extend(f"{k.translate(_INFLUX_TAG)}={v.translate(_INFLUX_TAG)}" for k, v in tags)
        out.append((",".join(parts) + " " + field + suffix).encode("utf-8", "replace"))
    return out


# --- Graphite plaintext --------------------------------------------------

# Graphite tag values may hold anything but `;`, must not start with `~`,
# and the plaintext protocol splits on whitespace.
_GRAPHITE_TAG_BAD = re.compile(r"[;\s\x00-\x1f\x7f]")
# One component of a dotted path.
_PATH_BAD = re.compile(r"[^A-Za-z0-9_-]")


def graphite_tag_value(value: str) -> str:
    value = _GRAPHITE_TAG_BAD.sub("_", value)
    return "_" + value[1:] if value.startswith("~") else value


def path_component(value: str) -> str:
    """A dotted-path component: letters, digits, `_` and `-`; anything else
    (dots in a host name or VLAN interface included) becomes `_`."""
    return _PATH_BAD.sub("_", value) or "_"


def sanitise_prefix(prefix: str) -> str:
    return ".".join(path_component(p) for p in prefix.split(".")) if prefix else ""


def _prefixed(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def graphite_tagged(families: Iterable, host: str, timestamp_s: int, prefix: str = "") -> list[bytes]:
    """`<name>;host=<h>;<label>=<v> <value> <seconds>` (Graphite 1.1 tags)."""
    out = []
    prefix = sanitise_prefix(prefix)
    suffix = f" {timestamp_s}\n"
    for _name, sample, _is_counter, tags, value in _points(families, host):
        parts = [_prefixed(prefix, sample)]
        parts.extend(f"{k}={graphite_tag_value(v)}" for k, v in tags)
        out.append((";".join(parts) + " " + _number(value) + suffix).encode("utf-8", "replace"))
    return out


def dotted_path(prefix: str, host: str, sample: str, label_values: list[str]) -> str:
    """`<prefix>.<host>.<name>.<label value>...`, each part sanitised."""
    parts = [path_component(host), sample]
    parts.extend(path_component(v) for v in label_values)
    return _prefixed(prefix, ".".join(parts))


def _path_points(families: Iterable, host: str, prefix: str):
    prefix = sanitise_prefix(prefix)
    for family in families:
        desc = family.desc
        if isinstance(family, RawFamily):
            for (sample, pairs), value in family.samples:
                if not (isinstance(value, float) and not math.isfinite(value)):
                    yield dotted_path(prefix, host, sample, [v for _, v in pairs]), value
            continue
        sample = desc.name + "_total" if desc.type == COUNTER else desc.name
        for label_values, value in family.samples:
            if isinstance(value, float) and not math.isfinite(value):
                continue
            # Positional: every label value, empty ones included, so that
            # one family's paths all have the same depth.
            yield dotted_path(prefix, host, sample, list(label_values)), value


def graphite_path(families: Iterable, host: str, timestamp_s: int, prefix: str = "") -> list[bytes]:
    """`<prefix>.<host>.<name>.<label values> <value> <seconds>` (classic Graphite)."""
    suffix = f" {timestamp_s}\n"
    return [(path + " " + _number(value) + suffix).encode("utf-8", "replace")
            for path, value in _path_points(families, host, prefix)]


# --- StatsD gauges -------------------------------------------------------

# DogStatsD splits tags on `,` and the packet on `|` and `#`; whitespace and
# newlines would end a line.
_STATSD_TAG_BAD = re.compile(r"[,|#\s\x00-\x1f\x7f]")


def _statsd_gauge(name: str, value, tags: str = "") -> bytes:
    number = _number(value)
    if number.startswith("-"):
        # A signed StatsD gauge value is a change, not a value: set it to 0
        # first, then subtract (what the StatsD spec prescribes).  One
        # entry, so both lines always travel in the same datagram.
        return f"{name}:0|g{tags}\n{name}:{number}|g{tags}\n".encode("utf-8", "replace")
    return f"{name}:{number}|g{tags}\n".encode("utf-8", "replace")


def statsd_dogstatsd(families: Iterable, host: str, prefix: str = "") -> list[bytes]:
    """`<name>:<value>|g|#host:<h>,<label>:<v>` (DogStatsD tags)."""
    out = []
    prefix = sanitise_prefix(prefix)
    for _name, sample, _is_counter, tags, value in _points(families, host):
        tag_text = "|#" + ",".join(f"{k}:{_STATSD_TAG_BAD.sub('_', v)}" for k, v in tags) if tags else ""
        out.append(_statsd_gauge(_prefixed(prefix, sample), value, tag_text))
    return out


def statsd_path(families: Iterable, host: str, prefix: str = "") -> list[bytes]:
    """`<prefix>.<host>.<name>.<label values>:<value>|g` (plain StatsD, no tags)."""
    return [_statsd_gauge(path, value) for path, value in _path_points(families, host, prefix)]


# --- OTLP ----------------------------------------------------------------

def otlp_entries(families: Iterable, timestamp_ns: int, encoding: str) -> list[tuple]:
    """(metric, encoded point) per point (agent/otlp.py): the host goes in the
    request's resource, not in each point."""
    make_point = otlp.point_json if encoding == "json" else otlp.point_protobuf
    out = []
    for family in families:
        metrics: dict[str, otlp.Metric] = {}
        for _name, sample, is_counter, tags, value in _points((family,), None):
            metric = metrics.get(sample)
            if metric is None:
                metric = metrics[sample] = otlp.Metric(sample, family.desc.help, is_counter)
            out.append((metric, make_point(tags, timestamp_ns, value)))
    return out
