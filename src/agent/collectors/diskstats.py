"""/proc/diskstats: per-device I/O counters in base units."""

from __future__ import annotations

from agent import metrics
from agent.collectors.filters import NameFilter, label_value
from agent.metrics import Family
from agent.procfs import layout

# node_exporter's default: partitions and pseudo-devices.
DEFAULT_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"

# The kernel counts diskstats sectors in 512-byte units whatever the
# device's logical block size (Documentation/admin-guide/iostats.rst).
SECTOR_BYTES = 512

LABELS = ("device",)
READ_BYTES = metrics.counter("node_disk_read_bytes", "Bytes read (sectors read x 512).", LABELS)
WRITTEN_BYTES = metrics.counter("node_disk_written_bytes", "Bytes written (sectors written x 512).", LABELS)
READS = metrics.counter("node_disk_reads_completed", "Reads completed successfully.", LABELS)
WRITES = metrics.counter("node_disk_writes_completed", "Writes completed successfully.", LABELS)
IO_TIME = metrics.counter("node_disk_io_time_seconds", "Time spent doing I/Os.", LABELS)

_BIT = {name: 1 << i for name, i in layout.DISK_BIT.items()}
_READS, _SECTORS_READ = _BIT["reads_completed"], _BIT["sectors_read"]
_WRITES, _SECTORS_WRITTEN = _BIT["writes_completed"], _BIT["sectors_written"]
_IO_TIME = _BIT["io_time_ms"]


class DiskstatsCollector:
    source = "diskstats"
    relpath = "diskstats"

    def __init__(self, name_filter: NameFilter):
        self.name_filter = name_filter

    def families(self, data: bytes) -> list[Family]:
        read_bytes, written_bytes, reads, writes, io_time = [], [], [], [], []
        seen = set()
        for row in layout.decode_diskstats(data, len(data) // layout.DISKSTATS.size):
            name = label_value(row.name)
            if name in seen or not self.name_filter(name):
                continue  # a duplicate name would be a duplicate series
            seen.add(name)
            labels = (name,)
            present = row.present
            if present & _SECTORS_READ:
                read_bytes.append((labels, row.sectors_read * SECTOR_BYTES))
            if present & _SECTORS_WRITTEN:
                written_bytes.append((labels, row.sectors_written * SECTOR_BYTES))
            if present & _READS:
                reads.append((labels, row.reads_completed))
            if present & _WRITES:
                writes.append((labels, row.writes_completed))
            if present & _IO_TIME:
                io_time.append((labels, row.io_time_ms / 1000))
        return [
            Family(READ_BYTES, read_bytes),
            Family(WRITTEN_BYTES, written_bytes),
            Family(READS, reads),
            Family(WRITES, writes),
            Family(IO_TIME, io_time),
        ]
