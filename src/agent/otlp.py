"""OTLP metrics, encoded by hand: protobuf or JSON, as OTLP/HTTP carries
them (opentelemetry-proto's metrics.proto; OTLP 1.x specification).

No OpenTelemetry SDK or protobuf runtime at run time (the SDK is 14 MB and
176 modules): the handful of messages the agent sends are written here
field by field.  The tests decode what the agent sends with the official
`opentelemetry-proto` classes, for both encodings.

The pusher queues one entry per point, `(metric, point)`: `metric` is a
`Metric` shared by the points of one family in one collection, `point` the
encoded NumberDataPoint (bytes, or a dict for JSON).  `request()` groups a
batch's points by metric, in first-seen order, into one
ExportMetricsServiceRequest:

- a gauge (and an untyped or textfile sample) is a Gauge; a counter a Sum,
  cumulative and monotonic;
- the metric's name is the Prometheus sample name (a counter's with
  `_total`), its description the HELP text, no unit (the name carries it);
- labels are attributes; the host name, `service.name` and
  `service.version` are resource attributes;
- ints in int64 go as as_int, others (uint64 counters past 2**63, floats)
  as as_double; no start time (unknown, which OTLP allows: a backend sees
  a reset where a value goes down, as Prometheus does).
"""

from __future__ import annotations

import json
import struct

from agent.records import record

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
ENCODINGS = ("protobuf", "json")
CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}

_FIXED64 = struct.Struct("<Q")
_SFIXED64 = struct.Struct("<q")
_DOUBLE = struct.Struct("<d")


@record
class Metric:
    name: str
    description: str
    is_sum: bool


# --- protobuf wire format --------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _str_field(number: int, text: str) -> bytes:
    return _len_field(number, text.encode("utf-8"))


def _key_value(key: str, value: str) -> bytes:
    # KeyValue{key = 1, value = 2: AnyValue{string_value = 1}}
    return _str_field(1, key) + _len_field(2, _str_field(1, value))


# Field numbers: NumberDataPoint time_unix_nano = 3 (fixed64), as_double = 4
# (double), as_int = 6 (sfixed64), attributes = 7; wire type 1 is 64-bit.
_TIME_TAG = _varint(3 << 3 | 1)
_DOUBLE_TAG = _varint(4 << 3 | 1)
_INT_TAG = _varint(6 << 3 | 1)


def point_protobuf(attributes: list[tuple[str, str]], time_ns: int, value) -> bytes:
    """A NumberDataPoint's bytes (the message, without its own tag)."""
    out = b"".join(_len_field(7, _key_value(k, v)) for k, v in attributes)
    out += _TIME_TAG + _FIXED64.pack(time_ns)
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return out + _INT_TAG + _SFIXED64.pack(value)
    return out + _DOUBLE_TAG + _DOUBLE.pack(float(value))


def point_json(attributes: list[tuple[str, str]], time_ns: int, value) -> dict:
    """A NumberDataPoint in OTLP/JSON: 64-bit integers as decimal strings
    (proto3's JSON mapping)."""
    point = {"attributes": [_json_key_value(k, v) for k, v in attributes], "timeUnixNano": str(time_ns)}
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        point["asInt"] = str(value)
    else:
        point["asDouble"] = float(value)
    return point


def _json_key_value(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def _grouped(entries: list) -> dict:
    points: dict[Metric, list] = {}
    for metric, point in entries:
        points.setdefault(metric, []).append(point)
    return points


def request(entries: list, resource: list[tuple[str, str]], scope: tuple[str, str], encoding: str) -> bytes:
    """An ExportMetricsServiceRequest of the entries' points, in `encoding`."""
    if encoding == "json":
        return _request_json(entries, resource, scope)
    metrics = []
    for metric, points in _grouped(entries).items():
        data = b"".join(_len_field(1, p) for p in points)
        if metric.is_sum:
            # Sum{data_points = 1, aggregation_temporality = 2, is_monotonic = 3}
            data += _varint(2 << 3) + _varint(CUMULATIVE) + _varint(3 << 3) + _varint(1)
            body = _len_field(7, data)
        else:
            body = _len_field(5, data)  # Gauge{data_points = 1}
        # Metric{name = 1, description = 2, gauge = 5 | sum = 7}
        metrics.append(_len_field(2, _str_field(1, metric.name) + _str_field(2, metric.description) + body))
    scope_bytes = _len_field(1, _str_field(1, scope[0]) + _str_field(2, scope[1]))
    resource_bytes = _len_field(1, b"".join(_len_field(1, _key_value(k, v)) for k, v in resource))
    # ExportMetricsServiceRequest{resource_metrics = 1: ResourceMetrics{
    #   resource = 1, scope_metrics = 2: ScopeMetrics{scope = 1, metrics = 2}}}
    return _len_field(1, resource_bytes + _len_field(2, scope_bytes + b"".join(metrics)))


def _request_json(entries: list, resource: list[tuple[str, str]], scope: tuple[str, str]) -> bytes:
    metrics = []
    for metric, points in _grouped(entries).items():
        entry = {"name": metric.name, "description": metric.description}
        if metric.is_sum:
            entry["sum"] = {"dataPoints": points, "aggregationTemporality": CUMULATIVE, "isMonotonic": True}
        else:
            entry["gauge"] = {"dataPoints": points}
        metrics.append(entry)
    document = {"resourceMetrics": [{
        "resource": {"attributes": [_json_key_value(k, v) for k, v in resource]},
        "scopeMetrics": [{"scope": {"name": scope[0], "version": scope[1]}, "metrics": metrics}],
    }]}
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
