"""The packed struct layouts that both backends fill, mirrored from csrc/agent_api.h.

Each parser, C or Python, turns a /proc file's bytes into these exact bytes;
one decoder (below) turns them into named tuples.  tests/test_layout.py checks
every size and offset against cffi's view of the C header.
"""

from __future__ import annotations

import struct

from agent.records import record


ABI_VERSION = 9
NAME_MAX = 64
# A cpuN line's N is below this (AGENT_MAX_CPUS).
MAX_CPUS = 65536

# Status codes, as in agent_api.h.
OK = 0
ETRUNC = -1
EROWS = -2
EFORMAT = -3
ERANGE = -4
ENAME = -5
EMISSING = -6
EIO = -7

ERROR_TEXT = {
    ETRUNC: "file larger than the read buffer",
    EROWS: "more rows than the row buffer holds",
    EFORMAT: "malformed line",
    ERANGE: "counter does not fit in 64 bits",
    ENAME: "device name empty or longer than 64 bytes",
    EMISSING: "required line missing",
    EIO: "read failed",
}

U64_MAX = (1 << 64) - 1


class ParseError(Exception):
    """A /proc file that does not have the documented shape (docs/PARSERS.md)."""

    def __init__(self, code: int, line: int = 0):
        self.code = code
        self.line = line
        text = ERROR_TEXT.get(code, f"error {code}")
        super().__init__(f"line {line}: {text}" if line else text)

    def __eq__(self, other):
        return (isinstance(other, ParseError)
                and (self.code, self.line) == (other.code, other.line))

    def __hash__(self):
        return hash((self.code, self.line))


@record
class Stat:
    present: int
    cpu_user: int
    cpu_nice: int
    cpu_system: int
    cpu_idle: int
    cpu_iowait: int
    cpu_irq: int
    cpu_softirq: int
    cpu_steal: int
    cpu_guest: int
    cpu_guest_nice: int
    intr: int
    ctxt: int
    btime: int
    processes: int
    procs_running: int
    procs_blocked: int
    cpu_count: int


@record
class Cpu:
    """One cpuN line of /proc/stat: its number and its columns."""
    present: int
    cpu: int
    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int
    guest: int
    guest_nice: int


@record
class Meminfo:
    present: int
    mem_total_kb: int
    mem_free_kb: int
    mem_available_kb: int
    buffers_kb: int
    cached_kb: int
    swap_cached_kb: int
    active_kb: int
    inactive_kb: int
    active_file_kb: int
    inactive_file_kb: int
    swap_total_kb: int
    swap_free_kb: int
    dirty_kb: int
    writeback_kb: int
    shmem_kb: int
    slab_kb: int
    sreclaimable_kb: int
    sunreclaim_kb: int


@record
class DiskStats:
    present: int
    major: int
    minor: int
    reads_completed: int
    reads_merged: int
    sectors_read: int
    read_time_ms: int
    writes_completed: int
    writes_merged: int
    sectors_written: int
    write_time_ms: int
    io_in_progress: int
    io_time_ms: int
    weighted_io_time_ms: int
    discards_completed: int
    discards_merged: int
    sectors_discarded: int
    discard_time_ms: int
    flushes_completed: int
    flush_time_ms: int
    name_len: int
    name_raw: bytes

    @property
    def name(self) -> bytes:
        return self.name_raw[:self.name_len]


@record
class NetDev:
    present: int
    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    rx_fifo: int
    rx_frame: int
    rx_compressed: int
    rx_multicast: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int
    tx_fifo: int
    tx_colls: int
    tx_carrier: int
    tx_compressed: int
    name_len: int
    name_raw: bytes

    @property
    def name(self) -> bytes:
        return self.name_raw[:self.name_len]


@record
class LoadAvg:
    present: int
    load1: float
    load5: float
    load15: float
    runnable: int
    threads: int
    last_pid: int


@record
class Proc:
    """One process: a row of agent_walk_procs (comm travels apart, as
    offset and length into the walk's comms buffer)."""
    pid: int
    state: int
    threads: int
    utime: int
    stime: int
    starttime: int
    rss_pages: int
    comm_off: int
    comm_len: int


@record
class Uptime:
    present: int
    uptime_seconds: float
    idle_seconds: float


# Native byte order and no alignment padding ('=' ), as the C compiler lays
# out structs made only of 8-byte fields.
STAT = struct.Struct("=18Q")
CPU = struct.Struct("=12Q")
MEMINFO = struct.Struct("=19Q")
DISKSTATS = struct.Struct("=21Q64s")
NETDEV = struct.Struct("=18Q64s")
LOADAVG = struct.Struct("=Q3d3Q")
UPTIME = struct.Struct("=Q2d")
# csrc/read_files.c: struct agent_file_entry (name_off, name_len, data_off,
# data_len, status, err) and struct agent_dir_entry (name_off, name_len,
# d_type).
FILE_ENTRY = struct.Struct("=4QqQ")
# csrc/walk_procs.c: struct agent_proc rows and struct agent_proc_walk.
PROC = struct.Struct("=9Q")
PROC_WALK = struct.Struct("=5Q256Q256Q")
PROC_WALK_HEAD = struct.Struct("=5Q")
PROCS_THREADS = 1
PROC_STAT_MAX = 4096
DIR_ENTRY = struct.Struct("=3Q")
READ_ONCE = 1
# csrc/walk_cgroups.c: struct agent_cgroup (present, values[] in this
# order, runtime, path_off, path_len, id_off, id_len, pod_off, pod_len,
# io_first, io_count, net_first, net_count) and struct agent_cgroup_io (major, minor, present,
# rbytes, wbytes); the files a container's row is read from, in order
# (AGENT_CGROUP_FILE_*).
CGROUP_FIELDS = (
    "usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled", "throttled_usec",
    "cpu_quota_usec", "memory_current", "memory_max", "memory_anon", "memory_file", "memory_inactive_file",
    "oom_kill", "cpu_some_usec", "cpu_full_usec", "memory_some_usec", "memory_full_usec", "io_some_usec",
    "io_full_usec", "pid",
)
CGROUP = struct.Struct(f"={1 + len(CGROUP_FIELDS) + 11}Q")
CGROUP_IO = struct.Struct("=5Q")
CGROUP_FILES = (
    b"cpu.stat", b"cpu.max", b"memory.current", b"memory.max", b"memory.stat", b"memory.events",
    b"io.stat", b"cpu.pressure", b"memory.pressure", b"io.pressure", b"cgroup.procs",
)

# Field bit positions: the index of the field after `present`.
STAT_CPU_FIELDS = Stat._fields[1:11]
STAT_BIT = {name: i for i, name in enumerate(Stat._fields[1:])}
CPU_BIT = {name: i for i, name in enumerate(Cpu._fields[2:])}
MEMINFO_BIT = {name: i for i, name in enumerate(Meminfo._fields[1:])}
DISK_BIT = {name: i for i, name in enumerate(DiskStats._fields[3:20])}
NETDEV_BIT = {name: i for i, name in enumerate(NetDev._fields[1:17])}
LOADAVG_BIT = {name: i for i, name in enumerate(LoadAvg._fields[1:])}
UPTIME_BIT = {name: i for i, name in enumerate(Uptime._fields[1:])}


def decode_stat(buf) -> Stat:
    """The struct agent_stat at the start of a stat parser's output."""
    return Stat._make(STAT.unpack_from(buf))


def decode_cpus(buf) -> list[Cpu]:
    """The struct agent_cpu rows that follow it, one per cpuN line."""
    make = Cpu._make
    return [make(t) for t in CPU.iter_unpack(memoryview(buf)[STAT.size:])]


def decode_meminfo(buf) -> Meminfo:
    return Meminfo._make(MEMINFO.unpack_from(buf))


def decode_loadavg(buf) -> LoadAvg:
    return LoadAvg._make(LOADAVG.unpack_from(buf))


def decode_uptime(buf) -> Uptime:
    return Uptime._make(UPTIME.unpack_from(buf))


def decode_diskstats(buf, count: int) -> list[DiskStats]:
    make = DiskStats._make
    return [make(t) for t in DISKSTATS.iter_unpack(memoryview(buf)[:count * DISKSTATS.size])]


def decode_netdev(buf, count: int) -> list[NetDev]:
    make = NetDev._make
    return [make(t) for t in NETDEV.iter_unpack(memoryview(buf)[:count * NETDEV.size])]


def decode_procs(buf) -> list[Proc]:
    make = Proc._make
    return [make(t) for t in PROC.iter_unpack(buf)]
