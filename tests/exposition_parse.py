"""A strict little reader of the text formats that keeps each value's exact
text, so tests can check that counters come out as exact integers."""

from __future__ import annotations

import re

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_samples(text: str) -> dict[tuple[str, tuple], str]:
    """{(name, ((label, value), ...)): value text}; duplicate series fail."""
    out: dict[tuple[str, tuple], str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"unparseable sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = []
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, f"bad labels in {line!r}"
                labels.append((lm.group(1), unescape(lm.group(2))))
                pos = lm.end()
        key = (name, tuple(labels))
        assert key not in out, f"duplicate series {key}"
        out[key] = value
    return out
