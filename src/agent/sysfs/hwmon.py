"""/sys/class/hwmon: node_exporter 1.5.0's rules for chip names, sensor
file names, values and metric names (docs/NODE_EXPORTER_COMPAT.md, "hwmon").

Everything here takes bytes or str and does no I/O.
"""

from __future__ import annotations

import functools
import math
import re

# The sensor types node_exporter reads; any other file is ignored.
SENSOR_TYPES = frozenset(("vrm", "beep_enable", "update_interval", "in", "cpu", "fan", "pwm", "temp",
                          "curr", "power", "energy", "humidity", "intrusion"))

# type, number, property; Go's regexp and Python's re prefer the same
# submatches here (leftmost, greedy), so `beep_enable` is one type.
_FILENAME = re.compile(r"([^0-9]+)([0-9]*)(?:_(.+))?", re.DOTALL)
# Go's strconv.Atoi: a sensor number beyond int64 makes the file no sensor.
_INT64_MAX = (1 << 63) - 1

_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9:_]")
_INVALID_BYTES = re.compile(r"[\udc80-\udcff]+")

# Go's strconv.ParseFloat, which is stricter than float() about white space
# (none) and as lenient about digit separators (`_` between digits, and
# after a hexadecimal prefix: seen with node_exporter 1.5.0); hexadecimal
# needs its p exponent; only an unsigned nan.
_D = rb"[0-9](?:_?[0-9])*"
_X = rb"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_DECIMAL = re.compile(rb"[+-]?(?:%s(?:\.(?:%s)?)?|\.%s)(?:[eE][+-]?%s)?" % (_D, _D, _D, _D))
_HEX = re.compile(rb"[+-]?0[xX]_?(?:%s(?:\.(?:%s)?)?|\.%s)[pP][+-]?%s" % (_X, _X, _X, _D))
_SPECIAL = {b"inf": math.inf, b"+inf": math.inf, b"-inf": -math.inf, b"infinity": math.inf,
            b"+infinity": math.inf, b"-infinity": -math.inf, b"nan": math.nan}


def _text(raw: bytes) -> str:
    # One lone surrogate per byte that is not UTF-8, as Go sees one
    # RuneError per such byte.
    return raw.decode("utf-8", "surrogateescape")


def clean_name(raw: bytes | str) -> str:
    """Lower-case, every character outside [a-z0-9:_] one `_`, `_` trimmed
    from both ends (node_exporter's cleanMetricName)."""
    text = _text(raw) if isinstance(raw, bytes) else raw
    # Go lower-cases rune by rune (simple case mapping); Python's full
    # mapping turns a dotted capital I into i and a combining dot, the one
    # unconditional difference between the two.
    text = text.replace("\u0130", "i").lower()
    return _INVALID_NAME_CHARS.sub("_", text).strip("_")


def label_text(raw: bytes) -> str:
    """A label's value: each run of bytes that are not UTF-8 becomes one
    U+FFFD (Go's strings.ToValidUTF8)."""
    return _INVALID_BYTES.sub("\ufffd", _text(raw))


@functools.lru_cache(maxsize=4096)  # see element_metric
def explode_filename(name: bytes) -> tuple[str, str, str] | None:
    """(type, sensor, property) of a sensor file name (`temp1_crit` ->
    ("temp", "temp1", "crit")), or None when node_exporter ignores it: no
    match, a type it does not read, a number beyond int64."""
    m = _FILENAME.fullmatch(_text(name))
    if m is None:
        return None
    kind, number, prop = m.groups()
    if kind not in SENSOR_TYPES:
        return None
    num = int(number) if number else 0
    if num > _INT64_MAX:
        return None
    return kind, f"{kind}{num}", prop or ""


def parse_value(raw: bytes) -> float | None:
    """A value as strconv.ParseFloat(x, 64) reads it, or None where it
    fails (node_exporter then skips the file): `N/A`, `41000 `, an empty
    file, a value that overflows a double."""
    if _DECIMAL.fullmatch(raw):
        value = float(raw)
    elif _HEX.fullmatch(raw):
        try:
            value = float.fromhex(raw.replace(b"_", b"").decode("ascii"))
        except OverflowError:
            return None
    else:
        return _SPECIAL.get(raw.lower())
    return None if math.isinf(value) else value


def chip_from_device(device_path: str) -> str:
    """The chip label from the resolved `device` path: `<parent>_<device>`,
    each cleaned, or the device alone; "" when that cleans to nothing."""
    head, _, dev_name = device_path.rpartition("/")
    dev_type = head.rstrip("/").rpartition("/")[2]
    clean_dev, clean_type = clean_name(dev_name), clean_name(dev_type)
    if clean_dev and clean_type:
        return f"{clean_type}_{clean_dev}"
    return clean_dev


# (metric name suffix, help, scale) of a sensor type's elements;
# the help's `{}` is the element.
_UNITS = {
    "in": ("_volts", "Hardware monitor for voltage ({})", "milli"),
    "cpu": ("_volts", "Hardware monitor for voltage ({})", "milli"),
    "curr": ("_amps", "Hardware monitor for current ({})", "milli"),
    # A counter: the renderer adds node_exporter's _total.
    "energy": ("_joule", "Hardware monitor for joules used so far ({})", "micro"),
    "humidity": ("", "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity "
                     "as a percentage) ({})", "micro"),
}
_FAN_RPM = frozenset(("input", "min", "max", "target"))
_POWER_INTERVALS = frozenset(("average_interval", "average_interval_min", "average_interval_max"))

GAUGE, COUNTER = "gauge", "counter"


def _milli(v: float) -> float:
    return v * 0.001  # node_exporter's arithmetic: not v / 1000


def _micro(v: float) -> float:
    return v / 1000000.0


_SCALE = {"milli": _milli, "micro": _micro}


def sensor_metrics(kind: str, props: dict[str, bytes]):
    """(metric name, type, help, value) for one sensor's files, `props`
    mapping property ("" for a bare file) to the file's content with `\\n`
    trimmed; the label (`props["label"]`) is the caller's."""
    if kind == "beep_enable":
        yield "node_hwmon_beep_enabled", GAUGE, "Hardware beep enabled", 1.0 if props.get("") == b"1" else 0.0
        return
    if kind in ("vrm", "update_interval"):
        value = parse_value(props.get("", b""))
        if value is None:
            return
        if kind == "vrm":
            yield "node_hwmon_voltage_regulator_version", GAUGE, "Hardware voltage regulator", value
        else:
            yield "node_hwmon_update_interval_seconds", GAUGE, "Hardware monitor update interval", _milli(value)
        return
    bare = "" in props
    for element, raw in props.items():
        if element == "label":
            continue
        value = parse_value(raw)
        if value is None:
            continue
        name, kind_type, help_text, scale = element_metric(kind, element, bare and element == "input")
        yield name, kind_type, help_text, scale(value)


def _same(v: float) -> float:
    return v


# A chip's files are the same from scrape to scrape, and so are the names
# made from them: remembering them took the collect on sysfs/desktop from
# 1,006 to 905 us of CPU, and explode_filename's from 905 to 786
# (docs/BENCHMARKS.md).  Bounded: a host has a few hundred sensor files.
@functools.lru_cache(maxsize=4096)
def element_metric(kind: str, element: str, input_beside_bare: bool):
    """(metric name, type, help, scale) of a sensor file of type `kind` and
    property `element`; `input_beside_bare` for an `_input` file next to a
    bare one (`temp6` and `temp6_input`), which keeps `_input` in its name."""
    name = "node_hwmon_" + kind
    if element == "input":
        if input_beside_bare:
            name += "_input"
    elif element:
        name += "_" + clean_name(element)
    # The element goes into HELP as the file name has it (node_exporter's
    # way), but as valid UTF-8: 1.5.0 copies bytes that are not.
    help_name = _INVALID_BYTES.sub("\ufffd", element)
    if element in ("fault", "alarm"):
        return name, GAUGE, f"Hardware sensor {help_name} status ({kind})", _same
    if element == "beep":
        return name + "_enabled", GAUGE, "Hardware monitor sensor has beeping enabled", _same
    unit = _UNITS.get(kind)
    if unit is not None:
        suffix, help_text, scale = unit
        kind_type = COUNTER if kind == "energy" else GAUGE
        return name + suffix, kind_type, help_text.format(help_name), _SCALE[scale]
    if kind == "temp" and element != "type":
        return name + "_celsius", GAUGE, f"Hardware monitor for temperature ({help_name or 'input'})", _milli
    if kind == "power":
        if element == "accuracy":
            return name, GAUGE, "Hardware monitor power meter accuracy, as a ratio", _micro
        if element in _POWER_INTERVALS:
            return name + "_seconds", GAUGE, f"Hardware monitor power usage update interval ({help_name})", _milli
        return name + "_watt", GAUGE, f"Hardware monitor for power usage in watts ({help_name})", _micro
    if kind == "fan" and element in _FAN_RPM:
        return name + "_rpm", GAUGE, f"Hardware monitor for fan revolutions per minute ({help_name})", _same
    return name, GAUGE, f"Hardware monitor {kind} element {help_name}", _same
