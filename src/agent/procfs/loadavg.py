"""/proc/loadavg -> struct agent_loadavg bytes (docs/PARSERS.md, "/proc/loadavg")."""

from __future__ import annotations

from ._scan import counter, decimal, first_line
from .layout import EFORMAT, LOADAVG, LOADAVG_BIT, ParseError

_NFIELDS = 5  # load1 load5 load15 R/T last_pid
_PRESENT = (1 << len(LOADAVG_BIT)) - 1


def parse_loadavg(data: bytes) -> bytes:
    # Only line 1 counts; an empty file is an empty line 1.
    fields = first_line(data).split(None, _NFIELDS)
    if len(fields) < _NFIELDS:
        raise ParseError(EFORMAT, 1)
    load1 = decimal(fields[0], 1)
    load5 = decimal(fields[1], 1)
    load15 = decimal(fields[2], 1)
    runnable, slash, threads = fields[3].partition(b"/")
    if not slash:
        raise ParseError(EFORMAT, 1)
    runnable = counter(runnable, 1)
    threads = counter(threads, 1)
    last_pid = counter(fields[4], 1)
    return LOADAVG.pack(_PRESENT, load1, load5, load15, runnable, threads, last_pid)
