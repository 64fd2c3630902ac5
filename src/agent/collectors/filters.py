"""Device-name filters and label values, shared by the disk and network
collectors."""

from __future__ import annotations

import re


class NameFilter:
    """include/exclude regexes, searched (not anchored) like node_exporter's
    --collector.*.device-include/exclude; an empty pattern means none."""

    def __init__(self, include: str | None = None, exclude: str | None = None):
        self.include = re.compile(include) if include else None
        self.exclude = re.compile(exclude) if exclude else None

    def __call__(self, name: str) -> bool:
        if self.include is not None and self.include.search(name) is None:
            return False
        return self.exclude is None or self.exclude.search(name) is None


def label_value(raw: bytes) -> str:
    """A device name as a label value: bytes that are not UTF-8 are replaced
    (U+FFFD), because one invalid byte makes Prometheus reject the scrape."""
    return raw.decode("utf-8", "replace")


class DeviceLabels:
    """Raw device name -> label tuple, or None when the filter drops it.

    Names are stable from scrape to scrape, so decoding and two regex
    searches per device per scrape become one dict lookup.  Devices come and
    go (container veths), so the memo is dropped whenever it outgrows the
    devices actually present."""

    def __init__(self, name_filter: NameFilter, slack: int = 1024):
        self.name_filter = name_filter
        self._memo: dict[bytes, tuple[str] | None] = {}
        self._slack = slack

    def __call__(self, raw: bytes) -> tuple[str] | None:
        try:
            return self._memo[raw]
        except KeyError:
            name = label_value(raw)
            labels = (name,) if self.name_filter(name) else None
            self._memo[raw] = labels
            return labels

    def trim(self, present: int) -> None:
        if len(self._memo) > present + self._slack:
            self._memo.clear()

    def select(self, rows, name_len_index: int, name_index: int) -> list:
        """[(labels, row)] for the rows the filter keeps, first of each name."""
        out = []
        seen = set()
        n = 0
        for row in rows:
            n += 1
            labels = self(row[name_index][:row[name_len_index]])
            if labels is not None and labels not in seen:
                seen.add(labels)  # a second row of the same name would be a duplicate series
                out.append((labels, row))
        self.trim(n)
        return out
