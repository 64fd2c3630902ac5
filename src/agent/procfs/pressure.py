"""/proc/pressure/{cpu,io,memory,irq} -> the cumulative stall times
(docs/PARSERS.md, "/proc/pressure/*").

Python only: four lines of at most ~60 bytes a scrape are not worth a
trip into C.
"""

from __future__ import annotations

from agent.records import record

from ._scan import counter, decimal, split_lines
from .layout import EFORMAT, EMISSING, ParseError

# The kernel's psi_show(): "%s avg10=%lu.%02lu avg60=%lu.%02lu
# avg300=%lu.%02lu total=%llu", the total in microseconds since boot.
_AVERAGES = (b"avg10=", b"avg60=", b"avg300=")
_TOTAL = b"total="


@record
class Pressure:
    """Total stall time in microseconds of the `some` line (at least one
    task stalled) and of the `full` line (every non-idle task stalled);
    None where the file has no such line (cpu before 5.13 has no `full`,
    irq has only `full`)."""
    some_total_us: int | None
    full_total_us: int | None


def _total(fields: list[bytes], line: int) -> int:
    if len(fields) < 5:
        raise ParseError(EFORMAT, line)
    for field, key in zip(fields[1:4], _AVERAGES):
        if not field.startswith(key):
            raise ParseError(EFORMAT, line)
        decimal(field[len(key):], line)
    if not fields[4].startswith(_TOTAL):
        raise ParseError(EFORMAT, line)
    return counter(fields[4][len(_TOTAL):], line)


def parse_pressure(data: bytes) -> Pressure:
    some = full = None
    for number, text in enumerate(split_lines(data), 1):
        fields = text.split()
        if not fields:
            continue
        kind = fields[0]
        # Other line kinds are left for a later kernel to define.
        if kind == b"some":
            if some is not None:
                raise ParseError(EFORMAT, number)
            some = _total(fields, number)
        elif kind == b"full":
            if full is not None:
                raise ParseError(EFORMAT, number)
            full = _total(fields, number)
    if some is None and full is None:
        raise ParseError(EMISSING)
    return Pressure(some, full)
