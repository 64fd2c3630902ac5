"""A deliberately naive, independent reading of a procfs tree: what the
agent's exposition must contain, computed straight from the text with
str.split, as a cross-check of both parser backends and the collectors
(psutil's habit of checking one source against another)."""

from __future__ import annotations

import re
from pathlib import Path

STAT_COUNTERS = {"intr": "node_intr_total", "ctxt": "node_context_switches_total",
                 "processes": "node_forks_total", "btime": "node_boot_time_seconds"}
DEFAULT_DISK_EXCLUDE = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")


def expected_samples(root: Path) -> dict[tuple[str, tuple], object]:
    """{(sample name, ((label, value), ...)): int or float} for the /proc
    metrics (not the agent_* ones).  CPU values are the since-boot ones that
    a first scrape reports."""
    out: dict[tuple[str, tuple], object] = {}

    stat = (root / "stat").read_bytes().decode("latin-1")
    cpus = sum(1 for line in stat.splitlines()
               if line.split() and line.split()[0][:3] == "cpu" and line.split()[0][3:].isdigit())
    if cpus:
        out[("node_cpus_online", ())] = cpus
    for line in stat.splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            v = [int(x) for x in f[1:9]] + [0] * (8 - len(f[1:9]))
            user, nice, system, idle, iowait = v[0], v[1], v[2], v[3], v[4]
            total = sum(v)
            out[("node_cpu_usage_percent", ())] = 100.0 * (1.0 - (idle + iowait) / total)
            out[("node_cpu_user_percent", ())] = 100.0 * user / total
            out[("node_cpu_system_percent", ())] = 100.0 * system / total
            out[("node_cpu_idle_percent", ())] = 100.0 * idle / total
            out[("node_cpu_iowait_percent", ())] = 100.0 * iowait / total
        elif f and f[0] in ("procs_running", "procs_blocked"):
            out[("node_" + f[0], ())] = int(f[1])
    # Lines end at \n only (str.splitlines would also cut at \v and \f).
    lines = [line.split() for line in stat.split("\n")]
    for f in lines:
        if f and f[0] in STAT_COUNTERS:
            out[(STAT_COUNTERS[f[0]], ())] = float(int(f[1]))
    # Per-CPU seconds (a first scrape: nothing kept yet); a CPU missing
    # below the highest one shows zeros, as node_exporter 1.5.0 does.
    per_cpu = {int(f[0][3:]): [int(x) for x in f[1:11]] + [0] * (10 - len(f[1:11]))
               for f in lines if f and f[0][:3] == "cpu" and f[0][3:].isdigit()}
    for cpu in range(max(per_cpu) + 1 if per_cpu else 0):
        ticks = per_cpu.get(cpu, [0] * 10)
        for mode, t in zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"), ticks):
            out[("node_cpu_seconds_total", (("cpu", str(cpu)), ("mode", mode)))] = t / 100
        for mode, t in zip(("user", "nice"), ticks[8:]):
            out[("node_cpu_guest_seconds_total", (("cpu", str(cpu)), ("mode", mode)))] = t / 100

    mem = {}
    for line in (root / "meminfo").read_text(encoding="latin-1").splitlines():
        key, _, rest = line.partition(":")
        if rest.split() and rest.split()[0].isdigit():
            mem[key] = int(rest.split()[0])
    available = mem.get("MemAvailable")
    if available is None:
        available = (mem.get("MemFree", 0) + mem.get("Active(file)", 0)
                     + mem.get("Inactive(file)", 0) + mem.get("SReclaimable", 0))
    out[("node_memory_total_bytes", ())] = mem["MemTotal"] * 1024
    out[("node_memory_available_bytes", ())] = available * 1024
    out[("node_memory_used_bytes", ())] = max(mem["MemTotal"] - available, 0) * 1024
    out[("node_memory_cached_bytes", ())] = mem.get("Cached", 0) * 1024
    out[("node_swap_total_bytes", ())] = mem.get("SwapTotal", 0) * 1024
    out[("node_swap_used_bytes", ())] = max(mem.get("SwapTotal", 0) - mem.get("SwapFree", 0), 0) * 1024

    seen = set()
    for line in (root / "diskstats").read_bytes().splitlines():
        f = line.split()
        if not f:
            continue
        name = f[2].decode("utf-8", "replace")
        if DEFAULT_DISK_EXCLUDE.search(name) or name in seen:
            continue
        seen.add(name)
        s = [int(x) for x in f[3:]]
        labels = (("device", name),)
        if len(s) == 4:
            reads, sectors_read, writes, sectors_written = s
            io_ms = None
        else:
            reads, sectors_read, writes, sectors_written, io_ms = s[0], s[2], s[4], s[6], s[9]
        out[("node_disk_reads_completed_total", labels)] = reads
        out[("node_disk_writes_completed_total", labels)] = writes
        out[("node_disk_read_bytes_total", labels)] = sectors_read * 512
        out[("node_disk_written_bytes_total", labels)] = sectors_written * 512
        if io_ms is not None:
            out[("node_disk_io_time_seconds_total", labels)] = io_ms / 1000

    seen = set()
    for line in (root / "net" / "dev").read_bytes().splitlines()[2:]:
        if not line.strip():
            continue
        name_raw, _, rest = line.rpartition(b":")
        name = name_raw.strip().decode("utf-8", "replace")
        if name in seen:
            continue
        seen.add(name)
        v = [int(x) for x in rest.split()[:16]]
        labels = (("interface", name),)
        out[("node_network_receive_bytes_total", labels)] = v[0]
        out[("node_network_receive_packets_total", labels)] = v[1]
        out[("node_network_receive_errors_total", labels)] = v[2]
        out[("node_network_transmit_bytes_total", labels)] = v[8]
        out[("node_network_transmit_packets_total", labels)] = v[9]
        out[("node_network_transmit_errors_total", labels)] = v[10]

    load = (root / "loadavg").read_text().split()
    out[("node_load1", ())] = float(load[0])
    out[("node_load5", ())] = float(load[1])
    out[("node_load15", ())] = float(load[2])
    out[("node_uptime_seconds", ())] = float((root / "uptime").read_text().split()[0])
    return out
