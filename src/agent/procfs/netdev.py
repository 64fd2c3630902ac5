"""/proc/net/dev -> rows of struct agent_netdev bytes (docs/PARSERS.md, "/proc/net/dev")."""

from __future__ import annotations

from ._scan import counters, split_lines
from .layout import EFORMAT, ENAME, NAME_MAX, NETDEV, NETDEV_BIT, ParseError

_NSTATS = len(NETDEV_BIT)  # 8 receive + 8 transmit counters
_PRESENT = (1 << _NSTATS) - 1
_HEADER_LINES = 2


def parse_netdev(data: bytes) -> bytes:
    rows = []
    pack = NETDEV.pack
    lines = split_lines(data)
    for lineno, line in enumerate(lines[_HEADER_LINES:], _HEADER_LINES + 1):
        # The last colon: old kernels print alias names like "team0:1:", and a
        # counter too wide for its column leaves none after the colon
        # ("eth1:18446744073709551615 ...").
        name, colon, rest = line.rpartition(b":")
        if not colon:
            if line.split():
                raise ParseError(EFORMAT, lineno)
            continue
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise ParseError(ENAME, lineno)
        fields = rest.split(None, _NSTATS)
        if len(fields) < _NSTATS:
            raise ParseError(EFORMAT, lineno)
        rows.append(pack(_PRESENT, *counters(fields[:_NSTATS], lineno), len(name), name))
    return b"".join(rows)
