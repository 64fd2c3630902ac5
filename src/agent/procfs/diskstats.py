"""/proc/diskstats -> rows of struct agent_diskstats bytes (docs/PARSERS.md, "/proc/diskstats")."""

from __future__ import annotations

from ._scan import counters, split_lines
from .layout import DISK_BIT, DISKSTATS, EFORMAT, ENAME, NAME_MAX, ParseError

_NSTATS = len(DISK_BIT)  # 17: flushes since Linux 5.5
_MIN_STATS = 11          # every kernel since 2.6.25 (15 with discards in 4.18)
_PARTITION_STATS = 4     # 2.6 partition lines before 2.6.25

# The 4-field partition layout: reads, sectors read, writes, sectors written.
_PARTITION_PRESENT = sum(1 << DISK_BIT[f] for f in (
    "reads_completed", "sectors_read", "writes_completed", "sectors_written"))
_ZERO_STATS = [0] * _NSTATS


def parse_diskstats(data: bytes) -> bytes:
    rows = []
    pack = DISKSTATS.pack
    for lineno, line in enumerate(split_lines(data), 1):
        fields = line.split()
        n = len(fields)
        if n < 3:
            if n:
                raise ParseError(EFORMAT, lineno)
            continue
        major, minor = counters(fields[:2], lineno)
        name = fields[2]
        if len(name) > NAME_MAX:
            raise ParseError(ENAME, lineno)
        s = n - 3
        if s >= _MIN_STATS:
            stats = counters(fields[3:3 + _NSTATS], lineno)
            k = len(stats)
            present = (1 << k) - 1
            if k < _NSTATS:
                stats += _ZERO_STATS[k:]
        elif s == _PARTITION_STATS:
            reads, sectors_read, writes, sectors_written = counters(fields[3:], lineno)
            stats = [reads, 0, sectors_read, 0, writes, 0, sectors_written] + _ZERO_STATS[7:]
            present = _PARTITION_PRESENT
        else:
            raise ParseError(EFORMAT, lineno)
        rows.append(pack(present, major, minor, *stats, len(name), name))
    return b"".join(rows)
