"""A strict parser of the Prometheus text exposition format 0.0.4, for the
files of the textfile collector.  Bytes in, families out; no I/O.

What it accepts is what node_exporter 1.5.0's parser (client_golang's
expfmt.TextParser) accepts, checked by running it on the fixtures in
tests/fixtures/textfile and docs/NODE_EXPORTER_COMPAT.md, except where that
parser lets through something that is wrong, which is refused here (each
marked "1.5.0 accepts" below):

- a line is blanks, a comment, `# HELP name text`, `# TYPE name type` or a
  sample `name{label="value",...} value`; blanks (space, tab) may lead a
  line and separate its tokens, also inside the braces; a trailing comma in
  the label set and empty braces are allowed; every line ends in `\\n`
  (a file without a final newline is refused, an empty file is fine);
- `# HELP`/`# TYPE` (`#HELP` too) name a family; a second HELP or TYPE, or
  a TYPE after the family's samples, is refused; the type is one of
  counter, gauge, histogram, summary, untyped in any case (an empty type:
  1.5.0 accepts it as untyped);
- escapes: `\\\\`, `\\n` in HELP, and `\\"` too in label values; any other is
  refused;
- a value is what Go's ParseFloat takes in decimal: `1`, `-1.5e-07`, `.5`,
  `5.`, `+Inf`, `-inf`, `Infinity`, `NaN` (no sign); not hexadecimal, not
  `1_000`, not out of range (`1e400`);
- any timestamp refuses the file (node_exporter's textfile collector does
  the same after parsing), and so does a blank after the value (read as an
  empty timestamp);
- the whole file must be UTF-8 (1.5.0 accepts invalid UTF-8 in HELP);
- label names: not starting with `__` (1.5.0 crashes on one), no label
  twice in a sample;
- the same series twice is refused (1.5.0 keeps the first);
- a sample whose name is a histogram's or summary's family name plus
  `_bucket`/`_sum`/`_count` (`_sum`/`_count` for a summary) belongs to it;
  a bucket needs a numeric `le`, a summary's sample a numeric `quantile`,
  and `_sum`/`_count` have neither (1.5.0 drops such samples silently);
- values the family must not have, because the agent also serves it as
  OpenMetrics, which forbids them (1.5.0 accepts them all): a negative or
  NaN counter; a bucket or count that is not a whole number from 0 (1.5.0
  casts it to uint64), buckets that are not cumulative, a `+Inf` bucket
  other than the count, a bucket below 0 (OpenMetrics allows no sum then,
  and 1.5.0 always writes one), a negative or NaN sum, a quantile outside
  0 to 1 or with a negative value.

Families come out as node_exporter prints them: within a family a sample
lacking a label the others have gets it as "" (label names sorted, `le` or
`quantile` last); a histogram gets a `+Inf` bucket equal to its count when
it has none, and `_sum` and `_count` (0 when absent); `le` and `quantile`
values are written as Go writes floats (`1.0` becomes `1`); a family with
no samples is left out.
"""

from __future__ import annotations

import math
import re

from agent.metrics import COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED
from agent.records import record

TYPES = {t: t for t in (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED)}

_BLANKS = " \t"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TOKEN = re.compile(r"[^ \t]*")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z"
                    r"|(?i:[+-]?inf(?:inity)?\Z|nan\Z)", re.ASCII)
_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_HELP_ESCAPES = {"\\": "\\", "n": "\n"}


class TextFormatError(ValueError):
    """The file is not valid text format: `line` (1-based, 0 for the file
    as a whole) and why."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


@record
class TextFamily:
    """One family of a file: its name as written in HELP and TYPE, its type,
    its HELP (None without one) and its samples, each
    (sample name, ((label, value), ...), value) in the order to be written."""
    name: str
    type: str
    help: str | None
    samples: list


def parse_float(token: str) -> float:
    """A value as Go's strconv.ParseFloat reads a decimal one; ValueError
    otherwise."""
    if not _FLOAT.match(token):
        raise ValueError(f"expected a number, got {token!r}")
    value = float(token)
    if math.isinf(value) and "n" not in token.lower():
        raise ValueError(f"{token!r} is out of range of a float64")
    return value


def format_float(value: float) -> str:
    """A float as Go's strconv.FormatFloat(value, 'g', -1, 64) writes it,
    which is how node_exporter writes `le` and `quantile`: the shortest
    digits that read back to the same float, in exponent form when the
    exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`, `100000`)."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # The decimal exponent of the first significant digit.
    exponent = int(exp or 0) + len(whole) - 1 - (len(whole + frac) - len(digits))
    digits = digits.rstrip("0")
    if exponent < -4 or exponent >= 6:
        text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{text}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return sign + "0." + "0" * (-exponent - 1) + digits
    if len(digits) <= exponent + 1:
        return sign + digits + "0" * (exponent + 1 - len(digits))
    return sign + digits[:exponent + 1] + "." + digits[exponent + 1:]


class _Family:
    __slots__ = ("name", "type", "help", "samples")

    def __init__(self, name: str):
        self.name = name
        self.type: str | None = None
        self.help: str | None = None
        # (sample name, {label: value}, value, line)
        self.samples: list = []


def parse_text(data: bytes) -> list[TextFamily]:
    """The families of a text-format file, in the order they first appear;
    TextFormatError for anything the module's docstring refuses."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextFormatError(line, "not UTF-8") from None
    if text and not text.endswith("\n"):
        raise TextFormatError(text.count("\n") + 1, "no newline at the end of the file")
    families: dict[str, _Family] = {}
    for number, line in enumerate(text.split("\n")[:-1], 1):
        try:
            _parse_line(line.lstrip(_BLANKS), families)
        except ValueError as exc:
            raise TextFormatError(number, str(exc)) from None
    out = []
    for family in families.values():
        samples = _assemble(family)
        if samples:
            out.append(TextFamily(family.name, family.type or UNTYPED, family.help, samples))
    return out


def _parse_line(line: str, families: dict[str, _Family]) -> None:
    if not line:
        return
    if line[0] == "#":
        rest = line[1:].lstrip(_BLANKS)
        keyword = _TOKEN.match(rest).group()
        if keyword not in ("HELP", "TYPE"):
            return  # a comment
        rest = rest[len(keyword):].lstrip(_BLANKS)
        name = _METRIC_NAME.match(rest)
        if name is None or (name.end() < len(rest) and rest[name.end()] not in _BLANKS):
            raise ValueError(f"invalid metric name in {keyword} line")
        family = _family_of(name.group(), families)
        rest = rest[name.end():].lstrip(_BLANKS)
        if keyword == "HELP":
            if family.help is not None:
                raise ValueError(f"second HELP line for {family.name!r}")
            family.help = _unescape(rest, _HELP_ESCAPES, "HELP")
            return
        if family.samples:
            raise ValueError(f"TYPE line for {family.name!r} after its samples")
        if family.type is not None:
            raise ValueError(f"second TYPE line for {family.name!r}")
        kind = TYPES.get(rest.lower())
        if kind is None:
            raise ValueError(f"unknown metric type {rest!r}")
        family.type = kind
        return
    name = _METRIC_NAME.match(line)
    if name is None:
        raise ValueError("expected a metric name")
    sample_name = name.group()
    pos = name.end()
    labels: dict[str, str] = {}
    rest = line[pos:].lstrip(_BLANKS)
    if rest.startswith("{"):
        rest = _parse_labels(rest[1:], labels)
    value_token = _TOKEN.match(rest).group()
    if not value_token:
        raise ValueError("expected a value")
    value = parse_float(value_token)
    after = rest[len(value_token):]
    if after:
        if after.strip(_BLANKS):
            raise ValueError("a sample with a timestamp (client-side timestamps are not supported)")
        raise ValueError("a blank after the value (read as an empty timestamp)")
    family = _family_of(sample_name, families)
    if family.type is None:
        family.type = UNTYPED  # a TYPE line after this is refused
    family.samples.append((sample_name, labels, value))


def _family_of(name: str, families: dict[str, _Family]) -> _Family:
    """The family a HELP, TYPE or sample name belongs to: itself, or the
    summary or histogram whose name it is plus one of their suffixes."""
    family = families.get(name)
    if family is not None:
        return family
    for suffix, kinds in (("_sum", (SUMMARY, HISTOGRAM)), ("_count", (SUMMARY, HISTOGRAM)),
                          ("_bucket", (HISTOGRAM,))):
        if name.endswith(suffix):
            owner = families.get(name[:-len(suffix)])
            if owner is not None and owner.type in kinds:
                return owner
    family = families[name] = _Family(name)
    return family


def _parse_labels(rest: str, labels: dict[str, str]) -> str:
    """Reads `label="value",...}` into `labels`; returns what follows."""
    while True:
        rest = rest.lstrip(_BLANKS)
        if rest.startswith("}"):
            return rest[1:].lstrip(_BLANKS)
        name = _LABEL_NAME.match(rest)
        if name is None:
            raise ValueError("expected a label name or '}'")
        label = name.group()
        if label.startswith("__"):
            raise ValueError(f"label name {label!r}: names starting with __ are reserved")
        if label in labels:
            raise ValueError(f"label {label!r} given twice")
        rest = rest[name.end():].lstrip(_BLANKS)
        if not rest.startswith("="):
            raise ValueError(f"expected '=' after label name {label!r}")
        rest = rest[1:].lstrip(_BLANKS)
        if not rest.startswith('"'):
            raise ValueError(f"expected '\"' to start the value of label {label!r}")
        value, rest = _quoted(rest[1:], label)
        labels[label] = value
        rest = rest.lstrip(_BLANKS)
        if rest.startswith(","):
            rest = rest[1:]
        elif not rest.startswith("}"):
            raise ValueError(f"expected ',' or '}}' after the value of label {label!r}")


def _quoted(rest: str, label: str) -> tuple[str, str]:
    """The escaped string up to the closing quote, unescaped, and what
    follows the quote."""
    end = 0
    while True:
        end = rest.find('"', end)
        if end < 0:
            raise ValueError(f"unterminated value of label {label!r}")
        backslashes = len(rest[:end]) - len(rest[:end].rstrip("\\"))
        if backslashes % 2 == 0:
            break
        end += 1
    return _unescape(rest[:end], _LABEL_ESCAPES, f"label {label!r}"), rest[end + 1:]


def _unescape(raw: str, escapes: dict[str, str], where: str) -> str:
    if "\\" not in raw:
        return raw
    out = []
    i = 0
    while True:
        j = raw.find("\\", i)
        if j < 0:
            out.append(raw[i:])
            return "".join(out)
        out.append(raw[i:j])
        replacement = escapes.get(raw[j + 1:j + 2])
        if replacement is None:
            raise ValueError(f"invalid escape sequence {raw[j:j + 2]!r} in {where}")
        out.append(replacement)
        i = j + 2


def _assemble(family: _Family) -> list:
    """The family's samples in the shape node_exporter prints: every label
    of the family on every sample ("" where absent), labels sorted; a
    histogram's and a summary's series completed.  ValueError for a series
    given twice, a bucket without `le` ...; as a TextFormatError naming the
    sample's line."""
    kind = family.type or UNTYPED
    if kind in (HISTOGRAM, SUMMARY):
        return _assemble_distribution(family, kind)
    names = sorted({label for _, labels, _ in family.samples for label in labels})
    out, seen = [], set()
    for sample_name, labels, value in family.samples:
        pairs = tuple((label, labels.get(label, "")) for label in names)
        key = (sample_name, pairs)
        if key in seen:
            raise TextFormatError(0, f"the series {_series_text(sample_name, pairs)} is given twice")
        if kind == COUNTER and not value >= 0:
            raise TextFormatError(0, f"the counter {_series_text(sample_name, pairs)} is {value!r}")
        seen.add(key)
        out.append((key, value))
    return out


def _check_count(what: str, value: float) -> None:
    # client_golang keeps bucket and sample counts as uint64 (1.5.0 casts
    # whatever float it read), and OpenMetrics forbids a negative or NaN
    # one: only whole numbers from 0 pass.
    if not (value >= 0 and value == math.floor(value)):
        raise TextFormatError(0, f"{what} is {value!r}, not a count")


def _series_text(name: str, pairs: tuple) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else name


def _assemble_distribution(family: _Family, kind: str) -> list:
    special = "le" if kind == HISTOGRAM else "quantile"
    name = family.name
    names = sorted({label for _, labels, _ in family.samples for label in labels if label != special})
    # Per series (its label pairs without le/quantile), in first-seen order:
    # {bound: value} of its buckets or quantiles, its sum, its count.
    series: dict[tuple, list] = {}
    for sample_name, labels, value in family.samples:
        pairs = tuple((label, labels.get(label, "")) for label in names)
        parts = series.setdefault(pairs, [{}, None, None])
        suffix = sample_name[len(name):]
        if suffix in ("_sum", "_count"):
            if special in labels:
                raise TextFormatError(0, f"{sample_name}: {special!r} on a {suffix} sample")
            index = 1 if suffix == "_sum" else 2
            if parts[index] is not None:
                raise TextFormatError(0, f"the series {_series_text(sample_name, pairs)} is given twice")
            parts[index] = value
            continue
        if suffix != ("_bucket" if kind == HISTOGRAM else ""):
            raise TextFormatError(0, f"{sample_name}: not a sample of the {kind} {name!r}")
        if special not in labels:
            raise TextFormatError(0, f"{sample_name}: no {special!r} label")
        try:
            bound = parse_float(labels[special])
        except ValueError:
            raise TextFormatError(0, f"{sample_name}: {special}={labels[special]!r} is not a number") from None
        if bound != bound:
            raise TextFormatError(0, f"{sample_name}: {special} is NaN")
        if bound in parts[0]:
            raise TextFormatError(0, f"the series {sample_name}{{{special}={labels[special]!r}}} is given twice")
        parts[0][bound] = value
    out = []
    for pairs, (bounds, total, count) in series.items():
        where = _series_text(name, pairs)
        if total is not None and not total >= 0:
            raise TextFormatError(0, f"the sum of {where} is {total!r}")
        if count is not None:
            _check_count(f"the count of {where}", count)
        count = 0.0 if count is None else count
        if kind == HISTOGRAM:
            if math.inf not in bounds:
                bounds[math.inf] = count
            elif bounds[math.inf] != count:
                raise TextFormatError(0, f"{where}: the +Inf bucket ({bounds[math.inf]!r}) is not the count "
                                         f"({count!r})")
            if min(bounds) < 0:
                # OpenMetrics: no sum beside a negative bucket, and 1.5.0
                # always writes one.
                raise TextFormatError(0, f"{where}: a bucket below 0 (le={format_float(min(bounds))})")
            previous = 0.0
            for bound in sorted(bounds):
                _check_count(f"the bucket le={format_float(bound)} of {where}", bounds[bound])
                if bounds[bound] < previous:
                    raise TextFormatError(0, f"the buckets of {where} are not cumulative")
                previous = bounds[bound]
        elif any(not 0 <= q <= 1 for q in bounds):
            raise TextFormatError(0, f"{where}: a quantile outside 0 to 1")
        elif any(v < 0 for v in bounds.values()):
            raise TextFormatError(0, f"{where}: a quantile's value below 0")
        for bound in sorted(bounds):
            out.append(((name + ("_bucket" if kind == HISTOGRAM else ""),
                         pairs + ((special, format_float(bound)),)), bounds[bound]))
        out.append(((name + "_sum", pairs), 0.0 if total is None else total))
        out.append(((name + "_count", pairs), count))
    return out
