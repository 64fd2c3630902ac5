"""/proc/meminfo -> struct agent_meminfo bytes (docs/PARSERS.md, "/proc/meminfo")."""

from __future__ import annotations

from ._scan import counter
from .layout import EFORMAT, EMISSING, MEMINFO, MEMINFO_BIT, ParseError

# The kernel's key for each stored field, in field order.
_KEYS = {
    b"MemTotal": MEMINFO_BIT["mem_total_kb"],
    b"MemFree": MEMINFO_BIT["mem_free_kb"],
    b"MemAvailable": MEMINFO_BIT["mem_available_kb"],  # Linux >= 3.14
    b"Buffers": MEMINFO_BIT["buffers_kb"],
    b"Cached": MEMINFO_BIT["cached_kb"],
    b"SwapCached": MEMINFO_BIT["swap_cached_kb"],
    b"Active": MEMINFO_BIT["active_kb"],
    b"Inactive": MEMINFO_BIT["inactive_kb"],
    b"Active(file)": MEMINFO_BIT["active_file_kb"],
    b"Inactive(file)": MEMINFO_BIT["inactive_file_kb"],
    b"SwapTotal": MEMINFO_BIT["swap_total_kb"],
    b"SwapFree": MEMINFO_BIT["swap_free_kb"],
    b"Dirty": MEMINFO_BIT["dirty_kb"],
    b"Writeback": MEMINFO_BIT["writeback_kb"],
    b"Shmem": MEMINFO_BIT["shmem_kb"],
    b"Slab": MEMINFO_BIT["slab_kb"],
    b"SReclaimable": MEMINFO_BIT["sreclaimable_kb"],
    b"SUnreclaim": MEMINFO_BIT["sunreclaim_kb"],
}
_NFIELDS = len(MEMINFO_BIT)
_MEM_TOTAL_BIT = 1 << MEMINFO_BIT["mem_total_kb"]


def parse_meminfo(data: bytes) -> bytes:
    values = [0] * _NFIELDS
    present = 0
    keys = _KEYS
    for lineno, line in enumerate(data.split(b"\n"), 1):
        # No trimming: " MemTotal" or "MemTotal " is an unknown key.  A line
        # without ":" (including the empty string after a final newline,
        # which is not a line) is skipped.
        key, colon, rest = line.partition(b":")
        index = keys.get(key)
        if index is None or not colon:
            continue
        bit = 1 << index
        value = rest.split(None, 1)
        if present & bit or not value:
            raise ParseError(EFORMAT, lineno)
        values[index] = counter(value[0], lineno)
        present |= bit
    if not present & _MEM_TOTAL_BIT:
        raise ParseError(EMISSING, 0)
    return MEMINFO.pack(present, *values)
