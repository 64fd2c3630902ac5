"""/proc/net/dev -> rows of struct agent_netdev bytes (docs/PARSERS.md, "/proc/net/dev")."""

from __future__ import annotations

from struct import error as StructError

from ._scan import counters, numbered_lines
from .layout import EFORMAT, ENAME, NAME_MAX, NETDEV, NETDEV_BIT, ParseError

_NSTATS = len(NETDEV_BIT)  # 8 receive + 8 transmit counters
_PRESENT = (1 << _NSTATS) - 1
_HEADER_LINES = 2


def _row(line: bytes, lineno: int) -> bytes | None:
    """One line, every check in the documented order: the row, None for a
    blank line, or ParseError."""
    # The last colon: old kernels print alias names like "team0:1:", and a
    # counter too wide for its column leaves no space after the colon
    # ("eth1:18446744073709551615 ...").
    name, colon, rest = line.rpartition(b":")
    if not colon:
        if line.split():
            raise ParseError(EFORMAT, lineno)
        return None
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise ParseError(ENAME, lineno)
    fields = rest.split(None, _NSTATS)
    if len(fields) < _NSTATS:
        raise ParseError(EFORMAT, lineno)
    return NETDEV.pack(_PRESENT, *counters(fields[:_NSTATS], lineno), len(name), name)


# Rows are joined a block at a time: a file of 100,000 interfaces then never
# holds 100,000 row objects at once (20 MiB of the interpreter's small-object
# arenas, which a few later objects could keep from going back).
_BLOCK_ROWS = 4096


def parse_netdev(data: bytes) -> bytes:
    blocks, rows = [], []
    append = rows.append
    pack = NETDEV.pack
    # Dense hosts have thousands of interfaces, so a well-formed line takes a
    # fast path: one digit check over its 16 counters, and struct.pack doing
    # the range check; anything unusual goes through _row, which repeats the
    # checks one by one in the documented order.
    for lineno, line in numbered_lines(data, _HEADER_LINES + 1):
        if len(rows) == _BLOCK_ROWS:
            blocks.append(b"".join(rows))
            rows.clear()
        name, colon, rest = line.rpartition(b":")
        name = name.strip()
        fields = rest.split(None, _NSTATS)
        if len(fields) > _NSTATS:
            del fields[_NSTATS:]
        if (len(fields) == _NSTATS and name and len(name) <= NAME_MAX
                and b"".join(fields).isdigit()):
            try:
                append(pack(_PRESENT, *map(int, fields), len(name), name))
                continue
            except (ValueError, StructError):
                # A value above 2**64-1, or more digits than int() converts.
                pass
        row = _row(line, lineno)
        if row is not None:
            append(row)
    blocks.append(b"".join(rows))
    return b"".join(blocks)
