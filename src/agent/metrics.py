"""The data model between collectors and the renderer.

A Desc (name, type, help, label names) is built once, at import; a scrape
yields Family(desc, samples) with only the values new.  The renderer caches
what it derives from a Desc, so per scrape it formats values and label values
only.
"""

from __future__ import annotations

from array import array

from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Union

    Number = Union[int, float]


GAUGE = "gauge"
COUNTER = "counter"
# The text format's other types, for families the agent passes on from
# files (RawFamily); its own families are gauges and counters.
UNTYPED = "untyped"
HISTOGRAM = "histogram"
SUMMARY = "summary"


@record
class Desc:
    """A metric family's identity.  For a counter, `name` is the OpenMetrics
    family name, without `_total`; its samples are named `name + "_total"`."""

    name: str
    type: str
    help: str
    label_names: tuple[str, ...] = ()


@record
class Family:
    desc: Desc
    # (label values in desc.label_names order, value); ints are rendered
    # exactly, floats as the shortest repr that round-trips.
    samples: list[tuple[tuple[str, ...], Number]]


# Every Desc made by gauge() and counter(), by name: the families the agent
# itself may expose, which a family read from a file must not clash with
# (collectors/textfile.py).  Filled as the modules that declare them are
# imported, once each; never per scrape.
_declared: dict[str, Desc] = {}


def gauge(name: str, help: str, labels: tuple[str, ...] = ()) -> Desc:
    return _declare(Desc(name, GAUGE, help, labels))


def counter(name: str, help: str, labels: tuple[str, ...] = ()) -> Desc:
    if name.endswith("_total"):
        raise ValueError(f"counter family {name!r}: give the name without _total")
    return _declare(Desc(name, COUNTER, help, labels))


def _declare(desc: Desc) -> Desc:
    _declared.setdefault(desc.name, desc)
    return desc


def declared() -> tuple[Desc, ...]:
    """The Descs declared so far through gauge() and counter()."""
    return tuple(_declared.values())


def exposed_names(name: str, type: str) -> frozenset[str]:
    """Every name a family called `name` (as text 0.0.4 writes it in HELP and
    TYPE) takes in either format: its family name and sample names, in
    0.0.4 and in OpenMetrics (where a counter's family drops `_total` and
    its samples add it).  Two families whose sets meet would write the same
    name twice in one format or the other."""
    if type == COUNTER:
        base = name[:-len("_total")] if name.endswith("_total") else name
        return frozenset((name, base, base + "_total", base + "_created"))
    if type == HISTOGRAM:
        return frozenset((name, name + "_bucket", name + "_sum", name + "_count", name + "_created"))
    if type == SUMMARY:
        return frozenset((name, name + "_sum", name + "_count", name + "_created"))
    return frozenset((name,))


def desc_names(desc: Desc) -> frozenset[str]:
    """exposed_names of one of the agent's own Descs (a counter's Desc has
    no `_total`)."""
    return exposed_names(desc.name + "_total" if desc.type == COUNTER else desc.name, desc.type)


@record
class Series:
    """A family in columns, for per-device rows: `labels` holds one tuple of
    label values per sample and `values` the numbers, in the same order.

    Collectors build `labels` once per set of devices and pass the same
    tuple to every family of those rows, scrape after scrape, so the
    renderer can keep each family's rendered `name{label="..."} ` prefixes
    and, per scrape, format only the values.  Values must be ints or finite
    floats (the collectors' counters and ratios); anything else goes in a
    Family.  `samples` gives the Family view for code that wants pairs."""

    desc: Desc
    labels: tuple[tuple[str, ...], ...] | LabelColumn
    values: list[Number] | array  # array: a large table's counters (collectors.filters.Columns)

    @property
    def samples(self) -> list[tuple[tuple[str, ...], Number]]:
        return list(zip(self.labels, self.values))


# Rows joined into one str at a time by LabelColumn.
_JOIN_ROWS = 4096


class LabelColumn:
    """Series.labels of a large table with one label (a host's interfaces
    or disks by the tens of thousands): the values in one str, cut at
    `ends`, instead of a tuple and a str per row.  It reads as the tuple of
    1-tuples it stands for (length, index, iteration, equality), one small
    tuple at a time.  100,000 interfaces held 200,000 such objects from one
    scrape to the next, spread over the interpreter's 1 MiB object arenas;
    a few objects of later scrapes landing among them kept those arenas
    from going back, a little more with each swing of the table's size
    (docs/BENCHMARKS.md, "Memory after an oversized file")."""

    __slots__ = ("text", "ends")

    def __init__(self, values):
        """`values`: the label values, an iterable of str (a generator
        keeps them from all existing at once)."""
        ends = array("Q")
        blocks: list[str] = []
        block: list[str] = []
        end = 0
        for value in values:
            end += len(value)
            ends.append(end)
            block.append(value)
            if len(block) == _JOIN_ROWS:
                blocks.append("".join(block))
                block.clear()
        blocks.append("".join(block))
        self.text = "".join(blocks)
        self.ends = ends

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> tuple[str]:
        ends = self.ends
        if i < 0:
            i += len(ends)
        if not 0 <= i < len(ends):
            raise IndexError("label index out of range")
        return (self.text[ends[i - 1] if i else 0:ends[i]],)

    def __iter__(self):
        text, start = self.text, 0
        for end in self.ends:
            yield (text[start:end],)
            start = end

    def __eq__(self, other) -> bool:
        # Equal only to another LabelColumn: a renderer's cached format
        # for a tuple of the same labels is merely rebuilt.
        if other.__class__ is LabelColumn:
            return self.ends == other.ends and self.text == other.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.text, len(self.ends)))

    def __repr__(self) -> str:
        return f"LabelColumn({len(self.ends)} values)"


@record
class RawFamily:
    """A family passed on from outside the agent (the textfile collector),
    of any of the text format's types, whose samples name themselves.

    `desc.name` is the family's name as text 0.0.4 writes it in HELP and
    TYPE (a counter's keeps the `_total` it was given, or has none),
    `desc.label_names` is empty, and each sample is
    `((sample name, ((label, value), ...)), value)`: a histogram's
    `_bucket`, `_sum` and `_count` samples, with `le` among a bucket's
    labels, and a summary's samples with `quantile`, in the order they are
    to be written.  `le` and `quantile` hold numbers as Go writes them
    (`1`, `0.5`, `1e+06`, `+Inf`): text 0.0.4 takes them as they are,
    OpenMetrics adds `.0` to a whole number."""

    desc: Desc
    samples: list[tuple[tuple[str, tuple[tuple[str, str], ...]], Number]]
