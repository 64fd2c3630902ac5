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

    def select(self, data: bytes, row_size: int, name_len_word: int, name_offset: int):
        """Label tuples of the rows the filter keeps (first row of each name:
        a second one would be a duplicate series), and the indexes of those
        rows, or None when every row is kept (the common case)."""
        words = memoryview(data).cast("Q")
        row_words = row_size // 8
        name_lens = words[name_len_word::row_words].tolist()
        names = [data[off:off + n] for off, n in zip(range(name_offset, len(data), row_size), name_lens)]
        memo = self._memo
        labels = [memo[raw] if raw in memo else self(raw) for raw in names]
        self.trim(len(names))
        if None not in labels and len(set(labels)) == len(labels):
            return labels, None
        kept, keep, seen = [], [], set()
        for i, lab in enumerate(labels):
            if lab is not None and lab not in seen:
                seen.add(lab)
                kept.append(lab)
                keep.append(i)
        return kept, keep


class Columns:
    """Fields of packed rows as lists, one column at a time: a slice of a
    memoryview over the row buffer, with no tuple per row (on a host with
    thousands of interfaces the per-row tuples cost more than the C parse)."""

    def __init__(self, data: bytes, row_size: int, keep: list[int] | None):
        self._words = memoryview(data).cast("Q")
        self._row_words = row_size // 8
        self._keep = keep

    def __getitem__(self, word: int) -> list[int]:
        column = self._words[word::self._row_words].tolist()
        if self._keep is None:
            return column
        return [column[i] for i in self._keep]
