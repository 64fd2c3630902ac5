"""/proc/uptime -> struct agent_uptime bytes (docs/PARSERS.md, "/proc/uptime")."""

from __future__ import annotations

from ._scan import decimal, first_line
from .layout import EFORMAT, UPTIME, UPTIME_BIT, ParseError

_NFIELDS = 2  # seconds since boot, idle seconds summed over all CPUs
_PRESENT = (1 << len(UPTIME_BIT)) - 1


def parse_uptime(data: bytes) -> bytes:
    # Only line 1 counts; an empty file is an empty line 1.
    fields = first_line(data).split(None, _NFIELDS)
    if len(fields) < _NFIELDS:
        raise ParseError(EFORMAT, 1)
    return UPTIME.pack(_PRESENT, decimal(fields[0], 1), decimal(fields[1], 1))
