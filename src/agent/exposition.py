"""The exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0.0.

This is the only module that knows the formats and their content types.
`choose_encoder` returns the renderer and its content type as one pair, so
the two can't be mismatched; `choose_gzip` and `gzip_encode` handle the
Content-Encoding side.

Speed: a dense host exposes ~4,000 samples and may be scraped every second.
Everything derived from a Desc (the HELP/TYPE header and a `%`-template
holding the metric name and label names) is built once and cached, keyed by
the Desc; per scrape only values and label values are formatted, into one
list of str that is joined and encoded once.
"""

from __future__ import annotations

import math
import re
import zlib

from agent.metrics import COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED, Desc, Family, RawFamily, Series
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable, Iterable

    Renderer = Callable[[Iterable[Family]], bytes]


TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

# A Desc is built once at import, so the caches stay as small as the set of
# metric families; the bound only guards against a caller that builds Descs
# per scrape (the cache is then rebuilt, never wrong).
_CACHE_LIMIT = 4096


# --- value and string formatting ---------------------------------------------

def _escape_label_value(value: str) -> str:
    # Both formats: backslash, double quote and line feed, in that order (the
    # backslash first, or the escapes themselves would be escaped again).
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help_text(help_text: str) -> str:
    # Text 0.0.4: only backslash and line feed are escaped in HELP.
    return help_text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_help_openmetrics(help_text: str) -> str:
    # OpenMetrics: HELP is an escaped-string like a label value, so `"` too.
    return _escape_label_value(help_text)


def _format_value(value) -> str:
    """The slow path for values that are not a plain int or a finite float:
    bool and other int subclasses print as exact integers; NaN and the
    infinities are spelled as both formats (and Prometheus's Go parser)
    accept; anything else numeric goes through float()."""
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, (str, bytes)):
        # float() would parse "12"; a string here is a collector bug.
        raise TypeError(f"value {value!r} is not a number")
    value = float(value)
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return repr(value)


# --- per-Desc cache ----------------------------------------------------------

def _check_desc(desc: Desc) -> None:
    # Run once per Desc (on a cache miss), so an invalid name is an error at
    # the first scrape, not malformed output at every scrape.
    if desc.type not in (COUNTER, GAUGE):
        raise ValueError(f"metric {desc.name!r}: unknown type {desc.type!r}")
    if not _METRIC_NAME_RE.match(desc.name):
        raise ValueError(f"invalid metric name {desc.name!r}")
    if desc.type == COUNTER and desc.name.endswith("_total"):
        raise ValueError(f"counter family {desc.name!r}: give the name without _total")
    seen = set()
    for label in desc.label_names:
        if not _LABEL_NAME_RE.match(label) or label.startswith("__"):
            raise ValueError(f"metric {desc.name!r}: invalid label name {label!r}")
        if label in seen:
            raise ValueError(f"metric {desc.name!r}: duplicate label name {label!r}")
        seen.add(label)


def _sample_template(sample_name: str, label_names: tuple[str, ...]) -> str:
    # Names are validated, so they hold no `%`; the template's `%s` slots
    # are the label values, then the value.
    if not label_names:
        return sample_name + " %s\n"
    labels = ",".join(f'{label}="%s"' for label in label_names)
    return sample_name + "{" + labels + "} %s\n"


def _text_entry(desc: Desc) -> tuple[str, str, int]:
    _check_desc(desc)
    # In 0.0.4 a counter's HELP and TYPE name the sample, `name_total`, as
    # prometheus_client writes them.
    name = desc.name + "_total" if desc.type == COUNTER else desc.name
    header = f"# HELP {name} {_escape_help_text(desc.help)}\n# TYPE {name} {desc.type}\n"
    return header, _sample_template(name, desc.label_names), len(desc.label_names)


def _openmetrics_entry(desc: Desc) -> tuple[str, str, int]:
    _check_desc(desc)
    # In OpenMetrics a counter's HELP and TYPE name the family, and its
    # samples carry the `_total` suffix.
    family = desc.name
    sample = family + "_total" if desc.type == COUNTER else family
    header = (f"# HELP {family} {_escape_help_openmetrics(desc.help)}\n"
              f"# TYPE {family} {desc.type}\n")
    return header, _sample_template(sample, desc.label_names), len(desc.label_names)


# A RawFamily (a family read from a file) in either format: its header, and
# the name every sample takes instead of its own (OpenMetrics: a counter's
# samples are `family_total` whatever the file called them), or None.
_RAW_TYPES = (COUNTER, GAUGE, UNTYPED, HISTOGRAM, SUMMARY)


def _check_raw_desc(desc: Desc) -> None:
    if desc.type not in _RAW_TYPES:
        raise ValueError(f"metric {desc.name!r}: unknown type {desc.type!r}")
    if not _METRIC_NAME_RE.match(desc.name):
        raise ValueError(f"invalid metric name {desc.name!r}")
    if desc.label_names:
        raise ValueError(f"metric {desc.name!r}: a raw family's labels are in its samples")


def _raw_text_entry(desc: Desc) -> tuple[str, str | None, str | None]:
    _check_raw_desc(desc)
    return (f"# HELP {desc.name} {_escape_help_text(desc.help)}\n"
            f"# TYPE {desc.name} {desc.type}\n", None, None)


def _raw_openmetrics_entry(desc: Desc) -> tuple[str, str | None, str | None]:
    _check_raw_desc(desc)
    family, rename = desc.name, None
    if desc.type == COUNTER:
        family = family.removesuffix("_total")
        rename = family + "_total"
    kind = "unknown" if desc.type == UNTYPED else desc.type
    canonical = "le" if desc.type == HISTOGRAM else "quantile" if desc.type == SUMMARY else None
    return (f"# HELP {family} {_escape_help_openmetrics(desc.help)}\n"
            f"# TYPE {family} {kind}\n", rename, canonical)


def _openmetrics_number(text: str) -> str:
    # OpenMetrics writes `le` and `quantile` as canonical numbers: Go's
    # shortest form (which a RawFamily carries) with `.0` on a whole number
    # (`1.0`, `1e+06`), as client_golang's OpenMetrics encoder does; a
    # Prometheus 2 scraping either format then stores the same series.
    if text.lstrip("+-").isdigit():
        return text + ".0"
    return text


def _raw_line(name: str, labels: tuple, canonical: str | None = None) -> str:
    """A sample line up to its value: `name{label="value",...} `."""
    if not labels:
        return name + " "
    return name + "{" + ",".join(
        f'{label}="{_openmetrics_number(value) if label == canonical else _escape_label_value(value)}"'
        for label, value in labels) + "} "


def _render_raw(family: RawFamily, entry: tuple, append) -> None:
    header, rename, canonical = entry
    append(header)
    for (name, labels), v in family.samples:
        if v.__class__ is not float or v - v != 0:
            v = _format_value(v)
        append(_raw_line(rename or name, labels, canonical) + str(v) + "\n")


_text_cache: dict[Desc, tuple[str, str, int]] = {}
_openmetrics_cache: dict[Desc, tuple[str, str, int]] = {}
_RAW_ENTRY = {id(_text_cache): _raw_text_entry, id(_openmetrics_cache): _raw_openmetrics_entry}
# Series fast path: per format, per Desc, the label tuples last seen and
# one %-format string holding every sample line of the family with a `%s`
# for each value.  One `fmt % values` formats a whole family in C: about
# 80 ns a sample, against ~270 ns for per-sample str() and concatenation
# (2,000 interfaces, measured on the 2-core build machine).  When a family
# comes with other label sets, or none, its entry goes from every format's
# cache (a format no scraper asks for any more would otherwise keep a
# family of 100,000 interfaces, ~40 MB of text, for good); a family absent
# from a render keeps its entry (a scrape with collect[] does not mean the
# others went), and a reconfiguration clears them all (clear_caches).
_FORMAT_BLOCK_LINES = 4096
_series_caches: dict[int, dict[Desc, tuple[tuple, str]]] = {id(_text_cache): {}, id(_openmetrics_cache): {}}


def _series_blocks(template: str, n_labels: int, labels) -> list[str]:
    """The format strings of a Series' sample lines, one per block of
    _FORMAT_BLOCK_LINES lines: a family of 100,000 label sets never holds
    100,000 line strings, nor its values as 100,000 ints, at once."""
    # The template ends in "%s\n": fill the label slots and keep the value
    # slot; a `%` in a label value is doubled so that it stays literal.
    blocks, lines = [], []
    for values in labels:
        if len(values) != n_labels:
            raise ValueError("label value count")
        escaped = tuple(_escape_label_value(v).replace("%", "%%") for v in values)
        lines.append(template % (*escaped, "%s"))
        if len(lines) == _FORMAT_BLOCK_LINES:
            blocks.append("".join(lines))
            lines.clear()
    if lines or not blocks:
        blocks.append("".join(lines))
    return blocks


def _series_format(template: str, n_labels: int, labels) -> str:
    return "".join(_series_blocks(template, n_labels, labels))


def _render_series(series: Series, series_cache: dict, template: str, n_labels: int, append) -> None:
    """Append the samples of a Series: the cached format strings filled
    with str() of each value (exact for ints; repr for finite floats, which
    is what a Family gives)."""
    labels, values = series.labels, series.values
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} label sets for {len(values)} values")
    desc = series.desc
    cached = series_cache.get(desc)
    if cached is None or (cached[0] is not labels and cached[0] != labels):
        for cache in _series_caches.values():
            other = cache.get(desc)
            if other is not None and other[0] is not labels:
                cache.pop(desc, None)  # another thread may have popped it meanwhile
        cached = None
    if not values:
        return
    if cached is None:
        cached = (labels, _series_blocks(template, n_labels, labels))
        if len(series_cache) >= _CACHE_LIMIT:
            series_cache.clear()
        series_cache[desc] = cached
    blocks = cached[1]
    if len(blocks) == 1:
        append(blocks[0] % tuple(values))
        return
    # A large table (its values an array: agent.collectors.filters.Columns),
    # a block of lines at a time.
    for start, block in zip(range(0, len(values), _FORMAT_BLOCK_LINES), blocks):
        append(block % tuple(values[start:start + _FORMAT_BLOCK_LINES]))


def _render(families: Iterable[Family], cache: dict, make_entry, append=None) -> list[str]:
    """The body's pieces, in a list, or each handed to `append` (and an
    empty list returned)."""
    out: list[str] = []
    if append is None:
        append = out.append
    cache_id = id(cache)
    series_cache = _series_caches[cache_id]
    for family in families:
        desc = family.desc
        if family.__class__ is RawFamily:
            key = (RawFamily, desc)
            entry = cache.get(key)
            if entry is None:
                entry = _RAW_ENTRY[cache_id](desc)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[key] = entry
            try:
                _render_raw(family, entry, append)
            except (TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"metric {desc.name!r}: bad raw sample: {exc}") from exc
            continue
        entry = cache.get(desc)
        if entry is None:
            entry = make_entry(desc)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[desc] = entry
        header, template, n_labels = entry
        append(header)
        if family.__class__ is Series:
            try:
                _render_series(family, series_cache, template, n_labels, append)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"metric {desc.name!r}: bad series: {exc}") from exc
            continue
        try:
            # The loops are specialised by label count (0, 1, 2 cover nearly
            # every family) so a sample costs one `%` and no tuple building
            # beyond the one it formats.  A plain int or finite float is
            # passed to `%s` as is: str() of an int is exact at any size,
            # and str() of a float is its repr().  `v - v != 0` is true only
            # for NaN and the infinities.
            if n_labels == 0:
                for values, v in family.samples:
                    if values:
                        raise ValueError("label value count")
                    if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                        v = _format_value(v)
                    append(template % (v,))
            elif n_labels == 1:
                for (a,), v in family.samples:
                    if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                        v = _format_value(v)
                    if "\\" in a or '"' in a or "\n" in a:
                        a = _escape_label_value(a)
                    append(template % (a, v))
            elif n_labels == 2:
                for (a, b), v in family.samples:
                    if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                        v = _format_value(v)
                    if "\\" in a or '"' in a or "\n" in a:
                        a = _escape_label_value(a)
                    if "\\" in b or '"' in b or "\n" in b:
                        b = _escape_label_value(b)
                    append(template % (a, b, v))
            else:
                for values, v in family.samples:
                    if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                        v = _format_value(v)
                    if len(values) != n_labels:
                        raise ValueError("label value count")
                    # One scan of them all: most label values need no escape.
                    joined = "".join(values)
                    if "\\" in joined or '"' in joined or "\n" in joined:
                        values = map(_escape_label_value, values)
                    append(template % (*values, v))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"metric {desc.name!r}: bad sample for labels {desc.label_names!r}: {exc}"
            ) from exc
    return out


def clear_caches() -> None:
    """Forget what the renderer keeps between scrapes (the Series formats
    and the plans): after a reconfiguration, families it held may never
    come back."""
    for cache in _series_caches.values():
        cache.clear()
    _plans.clear()


# --- the whole-body plan ------------------------------------------------------
#
# A scrape of a small host is ~35 families of one to a few samples each, and
# the same families with the same label sets come back scrape after scrape:
# per family, the loop above spends more on its own bookkeeping than on the
# values.  So after a render, the whole body is kept as the text between its
# values (every header and label set filled in) with the shape it was made
# from: each family's Desc and its label sets.  The next render that has
# the same shape only checks it, gathers the values and joins their str()
# with that text.  Anything else (a family or a device that came or went, a value the
# plan can't take) renders through the loop above, which raises the usual
# errors, and plans anew.  One plan per format; a body past PLAN_LIMIT
# characters (a dense host, where the Series path already formats a family
# at a time) is not planned, so no second copy of a large body's text is
# kept.  On this machine's /proc (63 samples) the plan renders 1.23x as
# fast as the loop (median of 30 alternating runs).
PLAN_LIMIT = 64 * 1024


@record
class _Plan:
    shape: tuple  # per family: (Desc, its class, and the labels tuple of a
    #               Series, the label tuples of a Family's samples or the
    #               (name, label pairs) keys of a RawFamily's)
    # The text between the values, len(values) + 1 pieces, interleaved with
    # the values' str() in a list that is joined.  Cheaper than one
    # `fmt % values`, which scans the whole format a character at a time
    # (59,000 of 336,000 instructions for a 6.5 KB body).
    pieces: list


_plans: dict[int, _Plan] = {}


def _plan_values(plan: _Plan, families: list) -> list | None:
    """The values to place between plan.pieces, or None when the families do not
    have the plan's shape or hold a value the plain path must judge."""
    # Runs on every scrape: fields by index (cheaper than by name on a
    # NamedTuple), and the one-sample family, most of them, on its own path.
    shape = plan.shape
    if len(families) != len(shape):
        return None
    values: list = []
    append, extend = values.append, values.extend
    series_class = Series
    for family, (desc, cls, labels) in zip(families, shape):
        if family.__class__ is not cls:
            return None
        d = family[0]
        if d is not desc and d != desc:
            return None
        if cls is series_class:
            got = family[1]
            if got is not labels and got != labels:
                return None
            series_values = family[2]
            if len(series_values) != len(labels):
                return None
            extend(series_values)
            continue
        # A Family's or a RawFamily's samples: (labels, value) pairs, the
        # labels of a RawFamily's being (sample name, label pairs).
        samples = family[1]
        if len(samples) != len(labels):
            return None
        if len(labels) == 1:
            got, v = samples[0]
            want = labels[0]
            if got is not want and got != want:
                return None
            if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                if v.__class__ is not float:
                    return None  # a bool, a bad value: the plain path
                # NaN or an infinity (a textfile's), spelled as the plain
                # path spells it: a body holding one is still planned.
                v = _format_value(v)
            append(v)
            continue
        for (got, v), want in zip(samples, labels):
            if got is not want and got != want:
                return None
            if v.__class__ is not int and (v.__class__ is not float or v - v != 0):
                if v.__class__ is not float:
                    return None
                v = _format_value(v)
            append(v)
    return values


def _plannable(labels) -> bool:
    # Label sets a plan may keep and later match by identity: tuples of
    # plain str (a str subclass prints through its own __str__ on the plain
    # path; a list could change under the plan).
    return labels.__class__ is tuple and all(
        lab.__class__ is tuple and all(v.__class__ is str for v in lab) for lab in labels)


def _plannable_raw(keys) -> bool:
    # A RawFamily's (sample name, ((label, value), ...)) keys, likewise.
    return all(name.__class__ is str and pairs.__class__ is tuple and
               all(pair.__class__ is tuple and len(pair) == 2 and
                   pair[0].__class__ is str and pair[1].__class__ is str for pair in pairs)
               for name, pairs in keys)


def _make_plan(families: list, cache: dict, tail: str) -> _Plan | None:
    """The plan of families that just rendered without error, or None for
    families it can't describe (label sets that are not tuples of str, a
    Desc the cache has dropped since)."""
    shape, parts = [], []
    for family in families:
        desc = family.desc
        cls = family.__class__
        if cls is RawFamily:
            # Planned too: with the textfile fixture `good` on this
            # machine's /proc, 6.8 % of a scrape's CPU (collect and render,
            # median of 11 alternating runs) against leaving such a body
            # to the plain path.
            entry = cache.get((RawFamily, desc))
            if entry is None:
                return None
            header, rename, canonical = entry
            keys = tuple(key for key, _ in family.samples)
            if not _plannable_raw(keys):
                return None
            shape.append((desc, cls, keys))
            parts.append(header.replace("%", "%%"))
            parts.extend(_raw_line(rename or name, labels, canonical).replace("%", "%%") + "%s\n"
                         for name, labels in keys)
            continue
        entry = cache.get(desc)  # another render may have cleared the cache
        if entry is None:
            return None
        header, template, n_labels = entry
        parts.append(header.replace("%", "%%"))
        if cls is Series:
            labels = family.labels
        else:
            labels = tuple(lab for lab, _ in family.samples)
        if not _plannable(labels):
            return None
        shape.append((desc, cls, labels))
        parts.append(_series_format(template, n_labels, labels))
    parts.append(tail)
    fmt = "".join(parts)
    if len(fmt) > PLAN_LIMIT:
        return None
    # Split at the value slots, `%s`; a literal `%` is `%%` here.
    pieces, start, i = [], 0, 0
    while True:
        i = fmt.find("%", i)
        if i < 0:
            break
        if fmt[i + 1] == "%":
            i += 2
            continue
        pieces.append(fmt[start:i].replace("%%", "%"))  # fmt[i + 1] is "s"
        start = i = i + 2
    pieces.append(fmt[start:].replace("%%", "%"))
    return _Plan(tuple(shape), pieces)


def _planned_text(families: list, cache: dict) -> str | None:
    """The body through the plan of this format, or None when there is no
    plan or the families do not fit it."""
    plan = _plans.get(id(cache))
    if plan is None:
        return None
    try:
        values = _plan_values(plan, families)
        if values is None:
            return None
        pieces = plan.pieces
        out = [""] * (2 * len(pieces) - 1)
        out[0::2] = pieces
        out[1::2] = map(str, values)  # as `%s` does
    except (TypeError, ValueError, AttributeError):
        # A malformed family, or a value str() refuses (an int past the
        # digit limit): the plain path raises its own error.
        return None
    return "".join(out)


def _render_planned(families: Iterable[Family], cache: dict, make_entry, tail: str) -> list[str]:
    families = families if families.__class__ is list else list(families)
    text = _planned_text(families, cache)
    if text is not None:
        return [text]
    key = id(cache)
    out = _render(families, cache, make_entry)
    out.append(tail)
    # A large body is never planned: judged on the rendered text (values
    # included, so a little early), before any work on a plan.
    plan = None
    if sum(map(len, out)) <= PLAN_LIMIT:
        try:
            plan = _make_plan(families, cache, tail)
        except (TypeError, ValueError, AttributeError):
            plan = None  # samples the plain loop takes but a plan can't describe
    if plan is None:
        _plans.pop(key, None)
    else:
        _plans[key] = plan
    return out


def _text_chunks(families: Iterable[Family]) -> list[str]:
    return _render_planned(families, _text_cache, _text_entry, "")


def _openmetrics_chunks(families: Iterable[Family]) -> list[str]:
    return _render_planned(families, _openmetrics_cache, _openmetrics_entry, "# EOF\n")


def render_text(families: Iterable[Family]) -> bytes:
    """Prometheus text exposition format 0.0.4, UTF-8."""
    return "".join(_text_chunks(families)).encode("utf-8")


def render_openmetrics(families: Iterable[Family]) -> bytes:
    """OpenMetrics text 1.0.0, UTF-8, ending with `# EOF`."""
    return "".join(_openmetrics_chunks(families)).encode("utf-8")


# --- content negotiation -----------------------------------------------------
#
# choose_encoder's rules (RFC 9110 section 12.5.1, made deterministic):
#
# * We offer two representations: OpenMetrics (application/openmetrics-text)
#   and text (text/plain).  A media range matches an offer when its type and
#   subtype match (or are `*`) and its parameters don't contradict it:
#   `version` must be one our output satisfies -- absent, 0.0.1 or 1.0.0
#   for OpenMetrics (Prometheus 2.5-2.48 ask for 0.0.1 and pick their parser
#   by the media type alone), absent, 0.0.4 or 1.0.0 for text (text 1.0.0
#   only adds quoted UTF-8 names, which we never emit, so our 0.0.4 body is
#   a valid 1.0.0 body) -- and `charset`, when given, must be utf-8.  We
#   always label the body with the version we wrote (OpenMetrics 1.0.0,
#   text 0.0.4).  `escaping` (Prometheus 3) is accepted whatever its value:
#   every name we expose is a legacy Prometheus name, which all escaping
#   schemes leave unchanged.  Other parameters are ignored.
# * Each offer takes its q from the most specific matching range (a range
#   with parameters beats type/subtype, which beats type/*, which beats
#   */*); among equally specific ranges the first listed counts.  q=0 means
#   "not acceptable".  A malformed element (no `/`, q outside 0..1 or not a
#   number) is ignored as if absent.
# * The offer with the higher q wins.  On a tie, the one matched by the more
#   specific range wins, then the one whose range is listed first; when one
#   wildcard matched both (curl's `*/*`, a browser's `text/*`-less list),
#   text wins, as the format every consumer parses.
# * When no offer is acceptable (or no Accept header at all), text 0.0.4 is
#   the last resort, as Prometheus's content-negotiation spec asks; we never
#   answer 406.

_TEXT = (render_text, TEXT_CONTENT_TYPE)
_OPENMETRICS = (render_openmetrics, OPENMETRICS_CONTENT_TYPE)

_OFFERS = (
    # (pair, type, subtype, acceptable versions); text first: it wins ties.
    (_TEXT, "text", "plain", frozenset({"0.0.4", "1.0.0"})),
    (_OPENMETRICS, "application", "openmetrics-text", frozenset({"0.0.1", "1.0.0"})),
)

_NEGOTIATION_CACHE_LIMIT = 256
_encoder_cache: dict[str, tuple[Renderer, str]] = {}
_gzip_cache: dict[str, bool] = {}


def _split_list(header: str, sep: str) -> list[str]:
    """Split at `sep`, except inside a quoted-string (RFC 9110 5.6.4)."""
    if '"' not in header:
        return header.split(sep)
    parts = []
    start = 0
    in_quotes = False
    escaped = False
    for i, ch in enumerate(header):
        if escaped:
            escaped = False
        elif in_quotes:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == sep:
            parts.append(header[start:i])
            start = i + 1
    parts.append(header[start:])
    return parts


def _parse_qvalue(text: str) -> float | None:
    # RFC 9110 allows 0, 0.xxx, 1, 1.000; we also take other decimals in
    # 0..1 ("0.1234"), and refuse anything else so a hostile value can't
    # outrank a real one.
    text = text.strip()
    if not text or len(text) > 8 or not all(c in "0123456789." for c in text):
        return None
    try:
        q = float(text)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None


def _parse_params(items: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(name, value)
    return params


def _parse_accept(header: str):
    """Yield (type, subtype, params, q, position) per well-formed element."""
    for position, element in enumerate(_split_list(header, ",")):
        pieces = _split_list(element, ";")
        media_range = pieces[0].strip().lower()
        mtype, slash, subtype = media_range.partition("/")
        mtype, subtype = mtype.strip(), subtype.strip()
        if not slash or not mtype or not subtype or (mtype == "*" and subtype != "*"):
            continue
        params = _parse_params(pieces[1:])
        if params is None:
            continue
        q = 1.0
        if "q" in params:
            q = _parse_qvalue(params.pop("q"))
            if q is None:
                continue
        yield mtype, subtype, params, q, position


def _negotiate(header: str) -> tuple[Renderer, str]:
    ranges = list(_parse_accept(header))
    best_rank = None  # (q, specificity, -position): higher is better
    best_pair = _TEXT
    for pair, otype, osubtype, versions in _OFFERS:
        match = None  # (specificity, position, q) of the most specific range
        for mtype, subtype, params, q, position in ranges:
            if mtype == "*":
                specificity = 0
            elif mtype != otype:
                continue
            elif subtype == "*":
                specificity = 1
            elif subtype != osubtype:
                continue
            else:
                version = params.get("version")
                if version is not None and version not in versions:
                    continue
                charset = params.get("charset")
                if charset is not None and charset.lower() != "utf-8":
                    continue
                specificity = 3 if params else 2
            if match is None or specificity > match[0]:
                match = (specificity, position, q)
        if match is None or match[2] <= 0.0:
            continue
        specificity, position, q = match
        # The later offer replaces the earlier only when strictly better, so
        # a full tie keeps text, the first offer.
        rank = (q, specificity, -position)
        if best_rank is None or rank > best_rank:
            best_rank, best_pair = rank, pair
    return best_pair


def choose_encoder(accept_header: str | None) -> tuple[Renderer, str]:
    """(render function, Content-Type) for a request's Accept header.
    Never raises; falls back to text 0.0.4."""
    if not accept_header:
        return _TEXT
    pair = _encoder_cache.get(accept_header)
    if pair is None:
        try:
            pair = _negotiate(accept_header)
        except Exception:  # noqa: BLE001 -- the contract is "never raise"
            pair = _TEXT
        if len(_encoder_cache) >= _NEGOTIATION_CACHE_LIMIT:
            _encoder_cache.clear()
        _encoder_cache[accept_header] = pair
    return pair


def _negotiate_gzip(header: str) -> bool:
    gzip_q = None
    star_q = None
    for element in _split_list(header, ","):
        pieces = element.split(";")
        coding = pieces[0].strip().lower()
        if not coding:
            continue
        params = _parse_params(pieces[1:])
        if params is None:
            continue
        q = 1.0
        if "q" in params:
            q = _parse_qvalue(params["q"])
            if q is None:
                continue
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q if star_q is None else max(star_q, q)
    # An explicit gzip entry overrides `*` (RFC 9110 12.5.3).
    if gzip_q is not None:
        return gzip_q > 0.0
    return star_q is not None and star_q > 0.0


def choose_gzip(accept_encoding: str | None) -> bool:
    """True when the Accept-Encoding header makes gzip acceptable (q > 0),
    explicitly or through `*`.  Never raises."""
    if not accept_encoding:
        return False
    use = _gzip_cache.get(accept_encoding)
    if use is None:
        try:
            use = _negotiate_gzip(accept_encoding)
        except Exception:  # noqa: BLE001 -- the contract is "never raise"
            use = False
        if len(_gzip_cache) >= _NEGOTIATION_CACHE_LIMIT:
            _gzip_cache.clear()
        _gzip_cache[accept_encoding] = use
    return use


# --- gzip --------------------------------------------------------------------
#
# GZIP_LEVEL is measured, not guessed.  A realistic 3,965-sample text body
# (64 CPUs, 30 disks, 60 interfaces, per-CPU softirqs and interrupts;
# 229,174 bytes) compressed on the 2-core build machine, median of 50:
#
#   level   time     size     ratio        level   time      size     ratio
#     1    0.92 ms  43,381   18.9%           6     2.94 ms  37,943   16.6%
#     2    1.03 ms  42,520   18.6%           7     4.32 ms  36,707   16.0%
#     3    1.36 ms  42,111   18.4%           9    11.05 ms  36,554   16.0%
#     4    1.64 ms  39,700   17.3%
#
# Rendering the same body takes ~1.6 ms, so level 1 keeps compression below
# the render cost and already removes 81% of the bytes; level 6 (zlib's
# default) would triple the time to save 5,400 bytes more, and level 9
# (gzip.compress's default) would cost 12x for 6,800 bytes.  Scrapes run
# over a LAN every few seconds: CPU on the monitored host is the scarcer
# resource.
GZIP_LEVEL = 1

# On a dense host's 886 KB body (256 CPUs, 2,000 interfaces, 300 disks)
# zlib level 1 takes 4.4 ms, more than collecting and rendering together;
# ISA-L's deflate (the `isal` package, where its wheel installs) takes
# 1.0 ms at its level 1 and writes 11% fewer bytes.  On a small host's
# ~7 KB body zlib level 1 is the largest single cost of a scrape: 408,000
# instructions (callgrind), 30 us, where ISA-L's level 0 takes 9.6 us
# (2,115 bytes against zlib's 1,817) and its level 1 16 us (1,793 bytes).
# So ISA-L does every body where it is installed: level 0 below LARGE_BODY,
# where 300 bytes more a scrape are nothing, level 1 above.  Its two
# modules cost ~0.7 MiB of RSS, nearly all shared library pages; without
# them zlib level 1 does the work.
LARGE_BODY = 64 * 1024
ISAL_LEVEL = 1
ISAL_SMALL_LEVEL = 0
_isal_zlib = None  # the module once loaded, False when not installed


def _compressor(size: int):
    """A gzip compressor (wbits 31: header and trailer written by it) for a
    body of about `size` bytes."""
    global _isal_zlib
    if _isal_zlib is None:
        try:
            from isal import isal_zlib
            _isal_zlib = isal_zlib
        except ImportError:
            _isal_zlib = False
    if _isal_zlib:
        level = ISAL_LEVEL if size >= LARGE_BODY else ISAL_SMALL_LEVEL
        return _isal_zlib.compressobj(level, _isal_zlib.DEFLATED, 31)
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)


# A family list with at least this many samples renders to LARGE_BODY or
# more (~60 to 110 bytes a sample line, headers apart): render_gzip streams
# it instead of rendering it whole first.
STREAM_SAMPLES = LARGE_BODY // 64
# How much rendered text render_gzip gathers before it encodes and
# compresses it: few compress() calls (each allocates a 32 KiB output
# block), and never much of the body uncompressed at once.
STREAM_CHUNK = 64 * 1024


class _CompressingSink:
    """Takes rendered pieces; every STREAM_CHUNK characters, encodes and
    compresses what it holds and lets it go."""

    __slots__ = ("_compress", "_flush", "_held", "_size", "_out")

    def __init__(self, compressor):
        self._compress, self._flush = compressor.compress, compressor.flush
        self._held: list[str] = []
        self._size = 0
        self._out: list[bytes] = []

    def append(self, piece: str) -> None:
        self._held.append(piece)
        self._size += len(piece)
        if self._size >= STREAM_CHUNK:
            self._out.append(self._compress("".join(self._held).encode("utf-8")))
            self._held.clear()
            self._size = 0

    def finish(self) -> bytes:
        self._out.append(self._compress("".join(self._held).encode("utf-8")))
        self._out.append(self._flush())
        return b"".join(self._out)


def _sample_count(families: list) -> int | None:
    """How many samples, or None when a family's samples have no length
    (a generator): the caller then takes the path that renders first."""
    try:
        return sum(len(f.values) if f.__class__ is Series else len(f.samples) for f in families)
    except (TypeError, AttributeError):
        return None


def render_gzip(render: Renderer, families: Iterable[Family]) -> bytes:
    """gzip_encode(render(families)), without ever holding a large
    uncompressed body in one piece: it is encoded and compressed 64 KiB of
    text at a time, as it is rendered.  On a dense host (900 KB of text)
    that saves the whole rendered text, its UTF-8 copy and their share of
    the resident memory the allocator keeps after the scrape."""
    families = families if families.__class__ is list else list(families)
    cache, make_entry, tail = _FORMATS[render]
    text = _planned_text(families, cache)  # a plan exists only for a small body
    if text is not None:
        compressor = _compressor(len(text))
        return compressor.compress(text.encode("utf-8")) + compressor.flush()
    count = _sample_count(families)
    if count is None or count < STREAM_SAMPLES:
        # A small body, through the plan when it has one, compressed in
        # one call: every compress() call allocates a 32 KiB output block,
        # and on a small host's ~7 KB body (35 families) per-family calls
        # cost more than the deflate itself (116 -> 71 us, measured on the
        # 2-core machine).
        chunks = _CHUNKS[render](families)
        # For ASCII, which is nearly all of it, a str's length is its size.
        compressor = _compressor(sum(map(len, chunks)))
        return compressor.compress("".join(chunks).encode("utf-8")) + compressor.flush()
    # A large body is never planned (as in _render_planned): a plan kept
    # from before would serve the next small body and leave this body's
    # series formats in their cache, unused.
    _plans.pop(id(cache), None)
    sink = _CompressingSink(_compressor(LARGE_BODY))
    _render(families, cache, make_entry, sink.append)
    sink.append(tail)
    return sink.finish()


def gzip_encode(body: bytes) -> bytes:
    """A gzip member (RFC 1952) of `body`, mtime 0."""
    # wbits=31: the compressor writes the gzip header and trailer itself,
    # in one C call on every Python version (gzip.compress builds a
    # GzipFile on 3.10).
    compressor = _compressor(len(body))
    return compressor.compress(body) + compressor.flush()


_CHUNKS = {render_text: _text_chunks, render_openmetrics: _openmetrics_chunks}
_FORMATS = {render_text: (_text_cache, _text_entry, ""),
            render_openmetrics: (_openmetrics_cache, _openmetrics_entry, "# EOF\n")}
