"""/proc/stat -> struct agent_stat bytes (docs/PARSERS.md, "/proc/stat")."""

from __future__ import annotations

from ._scan import counter, counters, split_lines
from .layout import EFORMAT, EMISSING, STAT, STAT_BIT, ParseError

_CPU = b"cpu"
_CPU_MIN_FIELDS = 4   # user nice system idle: every 2.6+ kernel
_CPU_MAX_FIELDS = 10  # up to guest_nice (2.6.33); later ones are ignored
_NFIELDS = len(STAT_BIT)
_CPU_COUNT = STAT_BIT["cpu_count"]

# The scalar lines stored, by the index of their field (and present bit).
_SCALARS = {
    b"ctxt": STAT_BIT["ctxt"],
    b"btime": STAT_BIT["btime"],
    b"processes": STAT_BIT["processes"],
    b"procs_running": STAT_BIT["procs_running"],
    b"procs_blocked": STAT_BIT["procs_blocked"],
}


def parse_stat(data: bytes) -> bytes:
    values = [0] * _NFIELDS
    present = 0
    cpus = 0
    for lineno, line in enumerate(split_lines(data), 1):
        # A dense host has hundreds of per-CPU lines: "cpu" and digits,
        # counted and never parsed, found with one split at most.
        if line.startswith(_CPU) and line[3:4].isdigit():
            if line.split(None, 1)[0][3:].isdigit():
                cpus += 1
            continue
        # At most one split: the intr and softirq lines carry thousands of
        # fields that are never looked at.
        parts = line.split(None, 1)
        if not parts:
            continue
        key = parts[0]
        if key.startswith(_CPU) and key[3:].isdigit():  # after leading white space
            cpus += 1
            continue
        if key == _CPU:
            # Bit 0 (user) is set by every accepted cpu line.
            if present & 1:
                raise ParseError(EFORMAT, lineno)
            fields = parts[1].split() if len(parts) > 1 else []
            if len(fields) < _CPU_MIN_FIELDS:
                raise ParseError(EFORMAT, lineno)
            cpu = counters(fields[:_CPU_MAX_FIELDS], lineno)
            values[:len(cpu)] = cpu
            present |= (1 << len(cpu)) - 1
            continue
        index = _SCALARS.get(key)
        if index is None:
            continue
        bit = 1 << index
        if present & bit or len(parts) < 2:
            raise ParseError(EFORMAT, lineno)
        # split(None, 1) strips the white space after the key, so the rest
        # starts with the second field.
        values[index] = counter(parts[1].split(None, 1)[0], lineno)
        present |= bit
    if not present & 1:
        raise ParseError(EMISSING, 0)
    if cpus:
        values[_CPU_COUNT] = cpus
        present |= 1 << _CPU_COUNT
    return STAT.pack(present, *values)
