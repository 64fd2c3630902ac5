"""The data model between collectors and the renderer.

A Desc (name, type, help, label names) is built once, at import; a scrape
yields Family(desc, samples) with only the values new.  The renderer caches
what it derives from a Desc, so per scrape it formats values and label values
only.
"""

from __future__ import annotations

from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Union

    Number = Union[int, float]


GAUGE = "gauge"
COUNTER = "counter"


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


def gauge(name: str, help: str, labels: tuple[str, ...] = ()) -> Desc:
    return Desc(name, GAUGE, help, labels)


def counter(name: str, help: str, labels: tuple[str, ...] = ()) -> Desc:
    if name.endswith("_total"):
        raise ValueError(f"counter family {name!r}: give the name without _total")
    return Desc(name, COUNTER, help, labels)


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
    labels: tuple[tuple[str, ...], ...]
    values: list[Number]

    @property
    def samples(self) -> list[tuple[tuple[str, ...], Number]]:
        return list(zip(self.labels, self.values))
