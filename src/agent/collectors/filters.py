"""Device-name filters shared by the disk and network collectors."""

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
