"""/proc/stat: CPU percentages over the window, seconds per CPU and mode
(node_exporter's cpu collector), and the file's other lines (node_exporter's
stat collector), all from one read of the file per scrape.

The per-CPU counters follow node_exporter 1.5.0 exactly
(docs/NODE_EXPORTER_COMPAT.md, "cpu"): a CPU missing below the highest one
(offline) is shown with zeros; a counter lower than the one shown last
keeps the last value (the kernel's idle and iowait can step back), except
that an idle drop of 3 s or more resets that CPU, and a change in the
number of CPU entries resets them all.
"""

from __future__ import annotations

from agent import metrics
from agent.cpu import CpuTicks, CpuWindow
from agent.metrics import Family, Series
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
# node_exporter's names and help texts.
INTERRUPTS = metrics.counter("node_intr", "Total number of interrupts serviced.")
CONTEXT_SWITCHES = metrics.counter("node_context_switches", "Total number of context switches.")
FORKS = metrics.counter("node_forks", "Total number of forks.")
BOOT_TIME = metrics.gauge("node_boot_time_seconds", "Node boot time, in unixtime.")
CPU_SECONDS = metrics.counter(
    "node_cpu_seconds", "Seconds the CPUs spent in each mode.", ("cpu", "mode"))
CPU_GUEST_SECONDS = metrics.counter(
    "node_cpu_guest_seconds", "Seconds the CPUs spent in guests (VMs) for each mode.", ("cpu", "mode"))

# The columns of a cpuN line, in order: the first eight are the modes of
# node_cpu_seconds_total, the last two those of node_cpu_guest_seconds_total
# (guest time is also inside user and nice, as the kernel counts it).
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
GUEST_MODES = ("user", "nice")
COLUMNS = len(MODES) + len(GUEST_MODES)
IDLE = MODES.index("idle")
# The kernel's USER_HZ, which /proc/stat's ticks are in on every
# architecture (node_exporter divides by it too).
USER_HZ = 100.0
# An idle counter this many seconds lower than the one shown last is taken
# for a CPU that went offline and came back (node_exporter's jumpBackSeconds).
JUMP_BACK_SECONDS = 3.0

_RUNNING_BIT = 1 << layout.STAT_BIT["procs_running"]
_BLOCKED_BIT = 1 << layout.STAT_BIT["procs_blocked"]
_CPU_COUNT_BIT = 1 << layout.STAT_BIT["cpu_count"]
_SCALARS = tuple((desc, 1 << layout.STAT_BIT[field], field) for desc, field in (
    (INTERRUPTS, "intr"), (CONTEXT_SWITCHES, "ctxt"), (FORKS, "processes"), (BOOT_TIME, "btime")))
# Word positions in a packed struct agent_cpu row.
_ROW_WORDS = layout.CPU.size // 8
_CPU_W = layout.Cpu._fields.index("cpu")
_FIRST_COLUMN_W = layout.Cpu._fields.index("user")
NO_LABELS = ()


class PerCpuSeconds:
    """The seconds shown for each CPU entry and column, kept between scrapes
    to hide counters that go backwards, as node_exporter 1.5.0 does."""

    def __init__(self):
        # shown[column][cpu]: what the last scrape showed.
        self.shown: list[list[float]] = [[] for _ in range(COLUMNS)]
        # (mode, guest mode) label tuples per number of CPU entries: the
        # same tuples scrape after scrape (the renderer's plan keys on them).
        self._labels: tuple[int, tuple, tuple] = (-1, (), ())

    def update(self, rows: bytes) -> list[list[float]]:
        """The columns to show for these struct agent_cpu rows (ascending
        CPU numbers), one list per column indexed by CPU number."""
        words = memoryview(rows).cast("Q")
        cpus = words[_CPU_W::_ROW_WORDS].tolist()
        entries = cpus[-1] + 1 if cpus else 0
        # Ticks to seconds as node_exporter computes them: float64 ticks
        # divided by 100.0 (for counters past 2**53 this is not int / 100).
        new = [[float(t) / USER_HZ for t in words[_FIRST_COLUMN_W + c::_ROW_WORDS].tolist()]
               for c in range(COLUMNS)]
        if len(cpus) != entries:  # offline CPUs below the highest: zeros
            for c, column in enumerate(new):
                full = [0.0] * entries
                for cpu, value in zip(cpus, column):
                    full[cpu] = value
                new[c] = full
        shown = self.shown
        if len(shown[0]) != entries:
            shown = [[0.0] * entries for _ in range(COLUMNS)]
        reset = [cpu for cpu, (old, now) in enumerate(zip(shown[IDLE], new[IDLE]))
                 if old - now >= JUMP_BACK_SECONDS]
        out = []
        for old_column, new_column in zip(shown, new):
            for cpu in reset:
                old_column[cpu] = 0.0
            out.append([now if now >= old else old for old, now in zip(old_column, new_column)])
        self.shown = out
        return out

    def labels(self, entries: int) -> tuple[tuple, tuple]:
        """The label sets of the two families, mode by mode, each mode's
        CPUs in order (the order of PerCpuSeconds.update's columns)."""
        if self._labels[0] != entries:
            names = [str(cpu) for cpu in range(entries)]
            self._labels = (entries,
                            tuple((cpu, mode) for mode in MODES for cpu in names),
                            tuple((cpu, mode) for mode in GUEST_MODES for cpu in names))
        return self._labels[1], self._labels[2]


class StatCollector:
    source = "stat"
    relpath = "stat"

    def __init__(self, cpu_window: CpuWindow, per_cpu: bool = True):
        self.cpu_window = cpu_window
        self.per_cpu = PerCpuSeconds() if per_cpu else None

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
        for desc, bit, field in _SCALARS:
            if stat.present & bit:
                # The kernel's integer, printed exactly: a reader's float64
                # of it is node_exporter's float64(uint64) of it.
                out.append(Family(desc, [(NO_LABELS, getattr(stat, field))]))
        if self.per_cpu is not None:
            # Updated even with no cpuN line (the next one then resets all,
            # as in node_exporter), but no family without a sample.
            columns = self.per_cpu.update(memoryview(data)[layout.STAT.size:])
            if not columns[0]:
                return out
            labels, guest_labels = self.per_cpu.labels(len(columns[0]))
            out.append(Series(CPU_SECONDS, labels, [v for column in columns[:len(MODES)] for v in column]))
            out.append(Series(CPU_GUEST_SECONDS, guest_labels,
                              [v for column in columns[len(MODES):] for v in column]))
        return out
