"""/proc/meminfo: memory and swap in bytes (the kernel's "kB" is KiB)."""

from __future__ import annotations

from agent import metrics
from agent.metrics import Family
from agent.procfs import layout

MEM_TOTAL = metrics.gauge("node_memory_total_bytes", "Usable RAM (MemTotal).")
MEM_AVAILABLE = metrics.gauge(
    "node_memory_available_bytes",
    "Memory available for new work without swapping (MemAvailable; before Linux 3.14, "
    "estimated as MemFree + Active(file) + Inactive(file) + SReclaimable).")
MEM_USED = metrics.gauge("node_memory_used_bytes", "MemTotal minus available memory.")
MEM_CACHED = metrics.gauge("node_memory_cached_bytes", "Page cache (Cached).")
SWAP_TOTAL = metrics.gauge("node_swap_total_bytes", "Swap space (SwapTotal).")
SWAP_USED = metrics.gauge("node_swap_used_bytes", "Swap in use (SwapTotal minus SwapFree).")

KIB = 1024
_AVAILABLE_BIT = 1 << layout.MEMINFO_BIT["mem_available_kb"]
NO_LABELS = ()


def available_kb(m: layout.Meminfo) -> int:
    if m.present & _AVAILABLE_BIT:
        return m.mem_available_kb
    # Linux < 3.14 has no MemAvailable: the estimate the kernel's own commit
    # (34e431b0ae39) describes, the free and reclaimable page cache and slab.
    return m.mem_free_kb + m.active_file_kb + m.inactive_file_kb + m.sreclaimable_kb


class MeminfoCollector:
    source = "meminfo"
    relpath = "meminfo"

    def families(self, data: bytes) -> list[Family]:
        m = layout.decode_meminfo(data)
        total = m.mem_total_kb
        available = available_kb(m)
        swap_total = m.swap_total_kb
        return [
            Family(MEM_TOTAL, [(NO_LABELS, total * KIB)]),
            Family(MEM_AVAILABLE, [(NO_LABELS, available * KIB)]),
            Family(MEM_USED, [(NO_LABELS, max(total - available, 0) * KIB)]),
            Family(MEM_CACHED, [(NO_LABELS, m.cached_kb * KIB)]),
            Family(SWAP_TOTAL, [(NO_LABELS, swap_total * KIB)]),
            Family(SWAP_USED, [(NO_LABELS, max(swap_total - m.swap_free_kb, 0) * KIB)]),
        ]
