"""/proc/stat: CPU percentages over the window, and the procs_* gauges."""

from __future__ import annotations

from agent import metrics
from agent.cpu import CpuTicks, CpuWindow
from agent.metrics import Family
from agent.procfs import layout

CPU_USAGE = metrics.gauge(
    "node_cpu_usage_percent",
    "Busy CPU time (all but idle and iowait) as a percent of all CPU time, over the CPU window, all CPUs.")
CPU_USER = metrics.gauge(
    "node_cpu_user_percent", "CPU time in user mode (guest time included), percent, over the CPU window.")
CPU_SYSTEM = metrics.gauge(
    "node_cpu_system_percent", "CPU time in kernel mode, percent, over the CPU window.")
CPU_IDLE = metrics.gauge(
    "node_cpu_idle_percent", "CPU time idle, percent, over the CPU window.")
CPU_IOWAIT = metrics.gauge(
    "node_cpu_iowait_percent", "CPU time idle waiting for I/O, percent, over the CPU window.")
CPU_COUNT = metrics.gauge(
    "node_cpus_online", "Online CPUs (the cpuN lines of /proc/stat); compare node_load1 with it.")
PROCS_RUNNING = metrics.gauge(
    "node_procs_running", "Runnable threads, from procs_running in /proc/stat.")
PROCS_BLOCKED = metrics.gauge(
    "node_procs_blocked", "Threads blocked waiting for I/O, from procs_blocked in /proc/stat.")

_RUNNING_BIT = 1 << layout.STAT_BIT["procs_running"]
_BLOCKED_BIT = 1 << layout.STAT_BIT["procs_blocked"]
_CPU_COUNT_BIT = 1 << layout.STAT_BIT["cpu_count"]
NO_LABELS = ()


class StatCollector:
    source = "stat"
    relpath = "stat"

    def __init__(self, cpu_window: CpuWindow):
        self.cpu_window = cpu_window

    def families(self, data: bytes) -> list[Family]:
        stat = layout.decode_stat(data)
        # Fields a kernel lacks (steal before 2.6.11) are 0 in the struct.
        pct = self.cpu_window.update(CpuTicks(
            stat.cpu_user, stat.cpu_nice, stat.cpu_system, stat.cpu_idle,
            stat.cpu_iowait, stat.cpu_irq, stat.cpu_softirq, stat.cpu_steal))
        out = [
            Family(CPU_USAGE, [(NO_LABELS, pct.usage)]),
            Family(CPU_USER, [(NO_LABELS, pct.user)]),
            Family(CPU_SYSTEM, [(NO_LABELS, pct.system)]),
            Family(CPU_IDLE, [(NO_LABELS, pct.idle)]),
            Family(CPU_IOWAIT, [(NO_LABELS, pct.iowait)]),
        ]
        if stat.present & _CPU_COUNT_BIT:
            out.append(Family(CPU_COUNT, [(NO_LABELS, stat.cpu_count)]))
        if stat.present & _RUNNING_BIT:
            out.append(Family(PROCS_RUNNING, [(NO_LABELS, stat.procs_running)]))
        if stat.present & _BLOCKED_BIT:
            out.append(Family(PROCS_BLOCKED, [(NO_LABELS, stat.procs_blocked)]))
        return out
