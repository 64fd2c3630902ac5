"""/proc/stat -> struct agent_stat bytes, then one struct agent_cpu per
cpuN line (docs/PARSERS.md, "/proc/stat")."""

from __future__ import annotations

from ._scan import counter, counters, split_lines
from .layout import CPU, EFORMAT, EMISSING, MAX_CPUS, STAT, STAT_BIT, ParseError

_CPU = b"cpu"
_COLUMNS_MIN = 4    # user nice system idle: every 2.6+ kernel
_COLUMNS_MAX = 10   # up to guest_nice (2.6.33); later ones are ignored
_NFIELDS = len(STAT_BIT)
_CPU_COUNT = STAT_BIT["cpu_count"]
# The digits of a cpuN key longer than this (leading zeros aside) are a
# number of MAX_CPUS or more.
_INDEX_DIGITS = len(str(MAX_CPUS))

# The lines whose first number is stored, by the index of their field (and
# present bit).  intr's first number is the total; the per-IRQ counts after
# it (thousands on a large host) are not looked at.
_SCALARS = {
    b"intr": STAT_BIT["intr"],
    b"ctxt": STAT_BIT["ctxt"],
    b"btime": STAT_BIT["btime"],
    b"processes": STAT_BIT["processes"],
    b"procs_running": STAT_BIT["procs_running"],
    b"procs_blocked": STAT_BIT["procs_blocked"],
}


def _columns(parts: list, lineno: int) -> list[int]:
    fields = parts[1].split() if len(parts) > 1 else []
    if len(fields) < _COLUMNS_MIN:
        raise ParseError(EFORMAT, lineno)
    return counters(fields[:_COLUMNS_MAX], lineno)


def _cpu_index(digits: bytes) -> int:
    digits = digits.lstrip(b"0")
    if len(digits) > _INDEX_DIGITS:
        return MAX_CPUS
    return int(digits) if digits else 0


def parse_stat(data: bytes) -> bytes:
    values = [0] * _NFIELDS
    present = 0
    rows = []
    last = -1
    for lineno, line in enumerate(split_lines(data), 1):
        # At most one split: the intr and softirq lines carry thousands of
        # fields that are never looked at.
        parts = line.split(None, 1)
        if not parts:
            continue
        key = parts[0]
        if key.startswith(_CPU) and key[3:].isdigit():
            # A per-CPU line: online CPUs in ascending order.
            index = _cpu_index(key[3:])
            if index >= MAX_CPUS or index <= last:
                raise ParseError(EFORMAT, lineno)
            cpu = _columns(parts, lineno)
            n = len(cpu)
            rows.append(CPU.pack((1 << n) - 1, index, *cpu, *[0] * (_COLUMNS_MAX - n)))
            last = index
            continue
        if key == _CPU:
            # Bit 0 (user) is set by every accepted cpu line.
            if present & 1:
                raise ParseError(EFORMAT, lineno)
            cpu = _columns(parts, lineno)
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
    if rows:
        values[_CPU_COUNT] = len(rows)
        present |= 1 << _CPU_COUNT
    return STAT.pack(present, *values) + b"".join(rows)
