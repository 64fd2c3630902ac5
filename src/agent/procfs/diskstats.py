"""/proc/diskstats -> rows of struct agent_diskstats bytes (docs/PARSERS.md, "/proc/diskstats")."""

from __future__ import annotations

from struct import error as StructError

from ._scan import counters, split_lines
from .layout import DISK_BIT, DISKSTATS, EFORMAT, ENAME, NAME_MAX, ParseError

_NSTATS = len(DISK_BIT)  # 17: flushes since Linux 5.5
_MIN_STATS = 11          # every kernel since 2.6.25 (15 with discards in 4.18)
_PARTITION_STATS = 4     # 2.6 partition lines before 2.6.25

# The 4-field partition layout: reads, sectors read, writes, sectors written.
_PARTITION_PRESENT = sum(1 << DISK_BIT[f] for f in (
    "reads_completed", "sectors_read", "writes_completed", "sectors_written"))
# By the number k of stats fields given: the present mask and the zeros that
# pad the row to all 17 fields.
_PRESENT = [(1 << k) - 1 for k in range(_NSTATS + 1)]
_PADDING = [(0,) * (_NSTATS - k) for k in range(_NSTATS + 1)]


def _row(fields: list[bytes], lineno: int) -> bytes | None:
    """One line's fields, every check in the documented order: the row, None
    for a blank line, or ParseError."""
    n = len(fields)
    if n < 3:
        if n:
            raise ParseError(EFORMAT, lineno)
        return None
    major, minor = counters(fields[:2], lineno)
    name = fields[2]
    if len(name) > NAME_MAX:
        raise ParseError(ENAME, lineno)
    s = n - 3
    if s >= _MIN_STATS:
        stats = counters(fields[3:3 + _NSTATS], lineno)
        present = _PRESENT[len(stats)]
        stats += _PADDING[len(stats)]
    elif s == _PARTITION_STATS:
        reads, sectors_read, writes, sectors_written = counters(fields[3:], lineno)
        stats = (reads, 0, sectors_read, 0, writes, 0, sectors_written) + _PADDING[7]
        present = _PARTITION_PRESENT
    else:
        raise ParseError(EFORMAT, lineno)
    return DISKSTATS.pack(present, major, minor, *stats, len(name), name)


def parse_diskstats(data: bytes) -> bytes:
    rows = []
    append = rows.append
    pack = DISKSTATS.pack
    # A well-formed line of a kernel since 2.6.25 takes a fast path: one digit
    # check over all its counters, and struct.pack doing the range check;
    # anything else goes through _row, which repeats the checks one by one in
    # the documented order.
    for lineno, line in enumerate(split_lines(data), 1):
        fields = line.split()
        k = len(fields) - 3
        if k >= _MIN_STATS:
            name = fields[2]
            stats = fields[3:3 + _NSTATS]
            k = len(stats)
            if len(name) <= NAME_MAX and (fields[0] + fields[1] + b"".join(stats)).isdigit():
                try:
                    append(pack(_PRESENT[k], int(fields[0]), int(fields[1]),
                                *map(int, stats), *_PADDING[k], len(name), name))
                    continue
                except (ValueError, StructError):
                    # A value above 2**64-1, or more digits than int() converts.
                    pass
        row = _row(fields, lineno)
        if row is not None:
            append(row)
    return b"".join(rows)
