"""Device-name filters and label values, shared by the disk and network
collectors."""

from __future__ import annotations

import re
from array import array

from agent.metrics import LabelColumn


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


def regex(text: str) -> str:
    """An include/exclude option's text, checked: ValueError (the reason)
    for a pattern that does not compile; "" for none."""
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return text


def label_value(raw: bytes) -> str:
    """A device name as a label value: bytes that are not UTF-8 are replaced
    (U+FFFD), because one invalid byte makes Prometheus reject the scrape."""
    return raw.decode("utf-8", "replace")


# A table of more rows than this is a large one: its labels are a
# LabelColumn and its counters arrays of 64-bit words (Columns), so that
# nothing is kept per row from one scrape to the next but those.  Below it,
# tuples and lists: 5 % cheaper a scrape of this machine's /proc (8
# interfaces); even at 300 interfaces and 100 disks; at 2,000 interfaces the
# large form is 95 us a scrape cheaper and 0.6 MiB smaller
# (docs/BENCHMARKS.md, "Memory after an oversized file").
LARGE_ROWS = 1000


class DeviceLabels:
    """Label tuples for the devices of a rows buffer, through the filter.

    Names are stable from scrape to scrape, so the result for the last set
    of names is kept: when the names have not changed, the very same labels
    tuple is returned, and the renderer's cached prefixes for it still hold.
    Otherwise each new name is decoded and filtered once (memo), and the
    memo is dropped whenever it outgrows the devices present (container
    veths come and go)."""

    def __init__(self, name_filter: NameFilter, slack: int = 1024):
        self.name_filter = name_filter
        self._memo: dict[bytes, tuple[str] | None] = {}
        self._slack = slack
        self._last_names: tuple[bytes, ...] | None = None
        self._last_key: bytes | None = None  # a large table's names, as one bytes
        self._last: tuple[tuple, list[int] | None] = ((), None)

    def _labels(self, raw: bytes) -> tuple[str] | None:
        try:
            return self._memo[raw]
        except KeyError:
            name = label_value(raw)
            labels = (name,) if self.name_filter(name) else None
            self._memo[raw] = labels
            return labels

    def select(self, data: bytes, row_size: int, name_len_word: int, name_offset: int):
        """(labels, keep): the label tuples of the rows the filter keeps
        (the first row of each name: a second would be a duplicate series),
        and the indexes of those rows, or None when every row is kept."""
        words = memoryview(data).cast("Q")
        if len(data) > LARGE_ROWS * row_size:
            return self._select_large(data, words, row_size, name_len_word, name_offset)
        self._last_key = None
        name_lens = words[name_len_word::row_size // 8].tolist()
        names = tuple([data[off:off + n] for off, n in zip(range(name_offset, len(data), row_size), name_lens)])
        if names == self._last_names:
            return self._last
        memo = self._memo
        all_labels = [memo[raw] if raw in memo else self._labels(raw) for raw in names]
        if len(memo) > len(names) + self._slack:
            memo.clear()
        if None not in all_labels and len(set(all_labels)) == len(all_labels):
            result = (tuple(all_labels), None)
        else:
            kept, keep, seen = [], [], set()
            for i, lab in enumerate(all_labels):
                if lab is not None and lab not in seen:
                    seen.add(lab)
                    kept.append(lab)
                    keep.append(i)
            result = (tuple(kept), keep)
        self._last_names, self._last = names, result
        return result

    def _select_large(self, data: bytes, words: memoryview, row_size: int, name_len_word: int,
                      name_offset: int):
        """select() for a large table: (LabelColumn, keep as an array, or
        None), with no object per row kept once it returns.  The names are
        compared as one bytes: the name lengths' column and the name field's
        columns (the name field ends the row, zero-padded past the name)."""
        row_words = row_size // 8
        columns = (name_len_word, *range(name_offset // 8, row_words))
        key = b"".join([words[w::row_words].tobytes() for w in columns])
        if key == self._last_key:
            return self._last
        self._memo.clear()
        self._last_names = None
        name_lens = words[name_len_word::row_words]
        name_filter = self.name_filter
        every = name_filter.include is None and name_filter.exclude is None
        keep = array("Q")
        seen: set[str] = set()

        def kept():
            for i, off in enumerate(range(name_offset, len(data), row_size)):
                name = label_value(data[off:off + name_lens[i]])
                if name not in seen and (every or name_filter(name)):
                    seen.add(name)
                    keep.append(i)
                    yield name

        labels = LabelColumn(kept())
        seen.clear()
        result = (labels, None if len(keep) == len(name_lens) else keep)
        self._last_names, self._last_key, self._last = None, key, result
        return result


class Columns:
    """Fields of packed rows, one column at a time: a strided slice of the
    row buffer, with no tuple per row (on a host with thousands of
    interfaces the per-row tuples cost more than the C parse).  A column of
    more than LARGE_ROWS rows is an array of unsigned 64-bit words, so that
    no int object exists per value until the render formats that one
    family: a host of 100,000 interfaces held 600,000 ints at once, ~19 MiB
    of the interpreter's small-object arenas, which a few later objects
    then kept from going back to the kernel (0.7 to 1.7 MiB for good).
    Other columns are lists."""

    def __init__(self, data: bytes, row_size: int, keep: list[int] | None):
        self._words = memoryview(data).cast("Q")
        self._row_words = row_size // 8
        self._keep = keep
        self._arrays = len(data) > LARGE_ROWS * row_size

    def __getitem__(self, word: int) -> list[int] | array:
        column = self._words[word::self._row_words]
        if self._arrays:
            column = array("Q", column.tobytes())
            return column if self._keep is None else array("Q", map(column.__getitem__, self._keep))
        column = column.tolist()
        return column if self._keep is None else [column[i] for i in self._keep]
