"""Generate a high-density /proc tree for the benchmarks, and age it.

    python benchmarks/gen_procfs.py OUTDIR --cpus 256 --interfaces 2000 --disks 300 [--seed N]
    python benchmarks/gen_procfs.py OUTDIR --bump SECONDS

`generate()` writes `stat`, `meminfo`, `diskstats`, `net/dev`, `loadavg` and
`uptime` in the formats of a current (6.x) kernel: 10-field `cpu` lines and a
`softirq` line, the 6.x meminfo key set, 20-field diskstats lines (discards
and flushes), the `"%6s: %7llu …"` net/dev rows.  The same seed always gives
the same bytes.  The counters are large (months of uptime on a busy host)
and consistent: each CPU's ticks add up to uptime × USER_HZ, the `cpu` line
is the sum of the `cpuN` lines, `uptime`'s idle is the summed idle ticks,
`bond0` is the sum of its slaves, `lo` receives what it sends.

`bump(outdir, seconds)` rewrites the tree as if `seconds` had passed: every
CPU gains exactly seconds × USER_HZ ticks, split by that CPU's own mix with
some jitter (so CPU percentages between two scrapes are non-trivial), and
every other counter grows at about its average rate since boot, so rates
come out plausible; idle devices stay idle.  It reads the tree back, so it
can age a tree any number of times; the jitter is a function of the tree's
uptime, so aging is deterministic too.

Nothing here imports the agent: the generator must not share a parser with
the code it feeds.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

USER_HZ = 100
PID_MAX = 4194304
NET_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
# Column widths of net/core/net-procfs.c's dev_seq_printf_stats.
NET_WIDTHS = (7, 7, 4, 4, 4, 5, 10, 9, 8, 7, 4, 4, 4, 5, 7, 10)
CPU_FIELDS = 10          # user nice system idle iowait irq softirq steal guest guest_nice
DISK_STATS = 17          # since 5.5: 11 + 4 discard + 2 flush
DISK_IN_FLIGHT = 8       # the one gauge among the diskstats fields
SOFTIRQS = 10            # HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU


# -- generation -------------------------------------------------------------

def generate(outdir, cpus: int = 256, interfaces: int = 2000, disks: int = 300,
             seed: int = 0) -> Path:
    """Write a tree with `cpus` cpuN lines, `interfaces` net/dev rows and
    `disks` diskstats rows into `outdir` (created if needed)."""
    if cpus < 1 or interfaces < 0 or disks < 0:
        raise ValueError("need cpus >= 1, interfaces >= 0, disks >= 0")
    rng = random.Random(seed)
    out = Path(outdir)
    (out / "net").mkdir(parents=True, exist_ok=True)

    uptime_cs = rng.randint(60, 120) * 86400 * 100 + rng.randint(0, 8639999)   # 2-4 months
    now = 1735689600 + rng.randint(0, 10**7)
    rows = [_cpu_row(rng, uptime_cs) for _ in range(cpus)]
    busy = sum(1 - r[3] / uptime_cs for r in rows)
    up_s = uptime_cs / 100
    n_irqs = 512 + 8 * cpus
    irqs = [0] * n_irqs
    for irq in rng.sample(range(24, n_irqs), min(n_irqs - 24, 4 * cpus)):
        irqs[irq] = int(up_s * rng.uniform(10, 20000))
    irqs[0] = 38
    processes = int(up_s * rng.uniform(20, 200))
    scalars = dict(ctxt=int(up_s * cpus * rng.uniform(2000, 20000)), btime=now - int(up_s),
                   processes=processes, procs_running=max(1, round(busy)), procs_blocked=rng.randint(0, 3))
    arch = int(up_s * cpus * rng.uniform(200, 1200))          # LOC, RES, … counted in the total only
    softirq = [int(up_s * cpus * rng.uniform(0.01, 500)) for _ in range(SOFTIRQS)]
    softirq[5] = 0                                            # IRQ_POLL
    _write_stat(out, rows, irqs, arch, scalars, softirq)
    _write_uptime(out, uptime_cs, sum(r[3] for r in rows))
    _write_loadavg(out, busy, rng.randint(2000, 20000), processes % (PID_MAX - 300) + 300)

    mem_total = rng.choice([256, 512, 1024, 2048]) * 1024 * 1024 - rng.randint(100000, 900000)
    _write_meminfo(out, mem_total, uptime_cs)

    _write_lines(out / "diskstats", [_disk_line(*d) for d in _disks(rng, disks, up_s)])
    _write_lines(out / "net" / "dev", [_net_line(n, v) for n, v in _interfaces(rng, interfaces, up_s)],
                 NET_HEADER)
    _write_pressure(out, rng, up_s, cpus)
    return out


def _cpu_row(rng, uptime_cs: int) -> list:
    load = rng.uniform(0.05, 0.9)
    user = int(uptime_cs * load * rng.uniform(0.6, 0.8))
    nice = int(uptime_cs * load * rng.uniform(0.0, 0.02))
    system = int(uptime_cs * load * rng.uniform(0.15, 0.3))
    iowait = int(uptime_cs * rng.uniform(0.0, 0.02))
    softirq = int(uptime_cs * load * rng.uniform(0.01, 0.05))
    steal = int(uptime_cs * rng.uniform(0.0, 0.005))
    guest = int(user * rng.uniform(0.0, 0.1))                 # also counted in user
    idle = uptime_cs - (user + nice + system + iowait + softirq + steal) - rng.randint(0, 50)
    return [user, nice, system, idle, iowait, 0, softirq, steal, guest, 0]


def _disks(rng, count: int, up_s: float) -> list:
    """(major, minor, name, 17 stats): NVMe drives with two partitions each,
    then device-mapper volumes, then loop devices."""
    out = []
    n_nvme = (count * 3 // 5 + 2) // 3
    for i in range(n_nvme):
        disk = _disk_stats(rng, up_s, busy=rng.uniform(0.01, 0.4))
        small = rng.uniform(1e-7, 1e-5)                       # a /boot-sized p1
        p1 = [int(v * small) for v in disk]
        p1[DISK_IN_FLIGHT] = p1[15] = p1[16] = 0              # flushes: whole disks only
        p2 = [d - p for d, p in zip(disk, p1)]
        p2[15] = p2[16] = 0
        base = 3 * i
        for minor, name, stats in ((base, f"nvme{i}n1", disk), (base + 1, f"nvme{i}n1p1", p1),
                                   (base + 2, f"nvme{i}n1p2", p2)):
            out.append((259, minor, name, stats))
    del out[count:]
    n_dm = (count - len(out)) * 5 // 8
    for i in range(n_dm):
        stats = _disk_stats(rng, up_s, busy=rng.uniform(0.0, 0.2))
        stats[1] = stats[5] = stats[12] = 0                   # dm does not merge
        out.append((253, i, f"dm-{i}", stats))
    for i in range(count - len(out)):
        reads = rng.choice([0, 0, rng.randint(10, 100000)])
        stats = [0] * DISK_STATS
        stats[0], stats[2], stats[3], stats[9], stats[10] = reads, reads * 9, reads // 3, reads // 2, reads // 3
        out.append((7, i, f"loop{i}", stats))
    return out


def _disk_stats(rng, up_s: float, busy: float) -> list:
    reads = int(up_s * rng.uniform(1, 3000))
    writes = int(up_s * rng.uniform(1, 5000))
    discards = int(up_s * rng.uniform(0, 2))
    flushes = int(writes * rng.uniform(0.01, 0.1))
    io_ms = int(up_s * 1000 * busy)
    s = [reads, int(reads * rng.uniform(0, 0.3)), reads * rng.choice([8, 16, 64, 256]), int(reads * rng.uniform(0.05, 2)),
         writes, int(writes * rng.uniform(0, 1)), writes * rng.choice([8, 16, 64]), int(writes * rng.uniform(0.02, 3)),
         rng.randint(0, 4), io_ms, 0,
         discards, 0, discards * rng.choice([2048, 65536]), int(discards * rng.uniform(0.1, 5)),
         flushes, int(flushes * rng.uniform(0.1, 2))]
    s[10] = s[3] + s[7] + s[14] + s[16]                       # weighted time: all requests' waits
    return s


def _interfaces(rng, count: int, up_s: float) -> list:
    """(name, 16 counters): lo, two bonded ports and their bond, then
    Calico and veth interfaces with names as their CNIs make them (15 bytes
    at most, IFNAMSIZ − 1)."""
    out = []
    if count >= 1:
        pkts = int(up_s * rng.uniform(100, 5000))
        lo_bytes = pkts * rng.randint(200, 4000)
        out.append(("lo", [lo_bytes, pkts, 0, 0, 0, 0, 0, 0, lo_bytes, pkts, 0, 0, 0, 0, 0, 0]))
    if count >= 4:
        slaves = [("eno1np0", _nic(rng, up_s, 2e5)), ("eno2np1", _nic(rng, up_s, 2e5))]
        out += slaves + [("bond0", [a + b for a, b in zip(slaves[0][1], slaves[1][1])])]
    seen = {name for name, _ in out}
    while len(out) < count:
        prefix, width = rng.choice([("cali", 11), ("cali", 11), ("cali", 11), ("veth", 8)])
        name = prefix + "".join(rng.choice("0123456789abcdef") for _ in range(width))
        if name not in seen:
            seen.add(name)
            out.append((name, _nic(rng, up_s, rng.choice([0, 10, 1000, 20000]))))
    return out[:count]


def _nic(rng, up_s: float, pps: float) -> list:
    rx = int(up_s * pps * rng.uniform(0.2, 1.0))
    tx = int(up_s * pps * rng.uniform(0.2, 1.0))
    drops = int(rx * rng.choice([0, 0, 1e-6, 1e-4]))
    return [rx * rng.randint(80, 1450), rx, 0, drops, 0, 0, 0, int(rx * rng.choice([0, 1e-4, 1e-2])),
            tx * rng.randint(80, 1450), tx, 0, 0, 0, 0, 0, 0]


# -- aging ------------------------------------------------------------------

def bump(outdir, seconds: float) -> None:
    """Rewrite the tree in `outdir` as if `seconds` had passed."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    out = Path(outdir)
    up_text = (out / "uptime").read_text().split()
    uptime_cs, idle_cs = _centis(up_text[0]), _centis(up_text[1])
    new_up = uptime_cs + round(seconds * 100)
    delta_cs = new_up - uptime_cs
    ratio = delta_cs / uptime_cs                      # growth at the average rate since boot

    def jitter(key: str) -> float:
        return random.Random(f"{key}@{new_up}").uniform(0.5, 1.5)

    # stat
    lines = (out / "stat").read_text().splitlines()
    cpus = [[int(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("cpu") and ln[3].isdigit()]
    old_idle = sum(r[3] for r in cpus)
    cpus = [_advance_cpu(r, delta_cs, random.Random(f"cpu{i}@{new_up}")) for i, r in enumerate(cpus)]
    scalars, irqs, arch, softirq = {}, [], 0, []
    for ln in lines:
        key, *vals = ln.split()
        if key == "intr":
            per = [int(v) for v in vals[1:]]
            arch = int(vals[0]) - sum(per)
            irqs = [v + round(v * ratio * jitter(f"irq{i}")) for i, v in enumerate(per)]
            arch += round(arch * ratio * jitter("arch"))
        elif key == "softirq":
            softirq = [int(v) + round(int(v) * ratio * jitter(f"softirq{i}")) for i, v in enumerate(vals[1:])]
        elif key in ("ctxt", "processes"):
            scalars[key] = int(vals[0]) + round(int(vals[0]) * ratio * jitter(key))
        elif key in ("btime", "procs_blocked"):
            scalars[key] = int(vals[0])
    busy_now = sum(1 - (r[3] - o[3]) / delta_cs for r, o in zip(cpus, _previous(lines)))
    scalars["procs_running"] = max(1, round(busy_now))
    scalars = {k: scalars[k] for k in ("ctxt", "btime", "processes", "procs_running", "procs_blocked")}
    _write_stat(out, cpus, irqs, arch, scalars, softirq)
    _write_uptime(out, new_up, idle_cs + sum(r[3] for r in cpus) - old_idle)

    load = (out / "loadavg").read_text().split()
    threads = int(load[3].split("/")[1])
    forks = scalars["processes"] - int(next(ln for ln in lines if ln.startswith("processes ")).split()[1])
    last_pid = (int(load[4]) + forks - 300) % (PID_MAX - 300) + 300
    _write_loadavg(out, busy_now, max(1, round(threads * jitter("threads") ** 0.1)), last_pid,
                   previous=[float(v) for v in load[:3]], seconds=delta_cs / 100)

    mem_total = int((out / "meminfo").read_text().split()[1])
    _write_meminfo(out, mem_total, new_up)

    disk_rows = []
    for ln in (out / "diskstats").read_text().splitlines():
        f = ln.split()
        stats = [int(v) for v in f[3:]]
        j = jitter(f[2].partition("p")[0] if f[2].startswith("nvme") else f[2])   # a partition moves with its disk
        grown = [v if i == DISK_IN_FLIGHT else v + round(v * ratio * j) for i, v in enumerate(stats)]
        grown[9] = min(grown[9], stats[9] + delta_cs * 10)    # busy at most 100% of the time
        disk_rows.append(_disk_line(int(f[0]), int(f[1]), f[2], grown))
    _write_lines(out / "diskstats", disk_rows)

    nets = []
    for ln in (out / "net" / "dev").read_text().splitlines()[2:]:
        name, _, rest = ln.rpartition(":")
        name = name.strip()
        vals = [int(v) for v in rest.split()]
        j = jitter(name)
        vals = [v + round(v * ratio * j) for v in vals]
        if name == "lo":
            vals[8:10] = vals[0:2]
        nets.append([name, vals])
    by_name = {n: v for n, v in nets}
    if {"bond0", "eno1np0", "eno2np1"} <= by_name.keys():
        by_name["bond0"][:] = [a + b for a, b in zip(by_name["eno1np0"], by_name["eno2np1"])]
    _write_lines(out / "net" / "dev", [_net_line(n, v) for n, v in nets], NET_HEADER)
    _bump_pressure(out, ratio, jitter)


def _previous(lines: list) -> list:
    return [[int(v) for v in ln.split()[1:]] for ln in lines if ln.startswith("cpu") and ln[3].isdigit()]


def _advance_cpu(row: list, delta: int, rng) -> list:
    """Exactly `delta` more ticks, split by the CPU's own mix (jittered)."""
    parts = [0, 1, 2, 3, 4, 6, 7]                             # guest fields are inside user/nice
    weights = [max(row[i], 1) * rng.uniform(0.3, 1.7) for i in parts]
    shares = [int(delta * w / sum(weights)) for w in weights]
    shares[3] += delta - sum(shares)                          # rounding goes to idle
    new = list(row)
    for i, s in zip(parts, shares):
        new[i] += s
    new[8] += min(shares[0], int(shares[0] * row[8] / max(row[0], 1)))
    return new


def _centis(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac.ljust(2, "0")[:2])


# -- writers (the kernel's printf formats) ----------------------------------

def _write_lines(path: Path, lines: list, header: str = "") -> None:
    path.write_text(header + "".join(lines))


def _write_stat(out: Path, rows: list, irqs: list, arch: int, scalars: dict, softirq: list) -> None:
    total = [sum(col) for col in zip(*rows)]
    parts = ["cpu  " + " ".join(map(str, total)) + "\n"]
    parts += [f"cpu{i} " + " ".join(map(str, r)) + "\n" for i, r in enumerate(rows)]
    parts.append(f"intr {sum(irqs) + arch} " + " ".join(map(str, irqs)) + "\n")
    parts += [f"{k} {v}\n" for k, v in scalars.items()]
    parts.append(f"softirq {sum(softirq)} " + " ".join(map(str, softirq)) + "\n")
    (out / "stat").write_text("".join(parts))


def _write_uptime(out: Path, uptime_cs: int, idle_ticks: int) -> None:
    # idle ticks are USER_HZ = 100 per second: hundredths already
    (out / "uptime").write_text(f"{uptime_cs // 100}.{uptime_cs % 100:02d} "
                                f"{idle_ticks // 100}.{idle_ticks % 100:02d}\n")


def _write_loadavg(out: Path, busy: float, threads: int, last_pid: int,
                   previous: list | None = None, seconds: float = 0.0) -> None:
    if previous is None:
        loads = [busy * f for f in (1.05, 1.0, 0.97)]
    else:       # the kernel's exponential decay towards the current run-queue length
        loads = [old * math.exp(-seconds / tau) + busy * (1 - math.exp(-seconds / tau))
                 for old, tau in zip(previous, (60, 300, 900))]
    text = " ".join(f"{v:.2f}" for v in loads)
    (out / "loadavg").write_text(f"{text} {max(1, round(busy))}/{max(threads, round(busy) + 1)} {last_pid}\n")


MEMINFO_6X = [
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)", "Unevictable", "Mlocked",
    "SwapTotal", "SwapFree", "Zswap", "Zswapped", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
    "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "SecPageTables",
    "NFS_Unstable", "Bounce", "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal",
    "VmallocUsed", "VmallocChunk", "Percpu", "HardwareCorrupted", "AnonHugePages", "ShmemHugePages",
    "ShmemPmdMapped", "FileHugePages", "FilePmdMapped"]


def _write_meminfo(out: Path, total: int, uptime_cs: int) -> None:
    """A consistent snapshot: the host's mix (fixed by MemTotal) drifting
    slowly, a few per cent over hours, with uptime."""
    rng = random.Random(f"meminfo@{total}")
    phase = 2 * math.pi * uptime_cs / (100 * 3 * 3600)

    def share(lo: float, hi: float, k: int) -> int:
        return int(total * rng.uniform(lo, hi) * (1 + 0.03 * math.sin(phase + k)))

    anon_a, anon_i = share(0.2, 0.3, 0), share(0.005, 0.02, 1)
    file_a, file_i = share(0.1, 0.2, 2), share(0.1, 0.2, 3)
    srec, sunrec = share(0.02, 0.04, 4), share(0.01, 0.02, 5)
    buffers = int(total * 0.005)
    shmem = int(total * 0.01)
    cached = file_a + file_i - buffers + shmem
    anon = anon_a + anon_i - shmem
    free = total - (anon + cached + buffers + srec + sunrec + int(total * 0.01))
    swap = 8388604
    v = dict.fromkeys(MEMINFO_6X, 0)
    v.update({
        "MemTotal": total, "MemFree": free, "MemAvailable": free + file_i + file_a // 2 + srec // 2,
        "Buffers": buffers, "Cached": cached, "Active": anon_a + file_a, "Inactive": anon_i + file_i,
        "Active(anon)": anon_a, "Inactive(anon)": anon_i, "Active(file)": file_a, "Inactive(file)": file_i,
        "SwapTotal": swap, "SwapFree": swap - 2311, "Dirty": share(1e-5, 1e-3, 6),
        "Writeback": uptime_cs % 64, "AnonPages": anon, "Mapped": int(total * 0.02), "Shmem": shmem,
        "KReclaimable": srec + 4096, "Slab": srec + sunrec, "SReclaimable": srec, "SUnreclaim": sunrec,
        "KernelStack": 65536, "PageTables": int(total * 0.003), "CommitLimit": swap + total // 2,
        "Committed_AS": share(0.3, 0.9, 7), "VmallocTotal": 34359738367,
        "VmallocUsed": 812332, "Percpu": 1048576, "AnonHugePages": int(anon * 0.3) // 2048 * 2048})
    text = "".join(f"{(k + ':'):<16}{v[k]:>8} kB\n" if k != "HardwareCorrupted"
                   else f"HardwareCorrupted: {v[k]:>5} kB\n" for k in MEMINFO_6X)
    text += ("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n"
             "HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n"
             f"DirectMap4k:    {total // 64:>8} kB\nDirectMap2M:    {total // 4:>8} kB\n"
             f"DirectMap1G:    {total - total // 64 - total // 4 + 4194304:>8} kB\n")
    (out / "meminfo").write_text(text)


def _disk_line(major: int, minor: int, name: str, stats: list) -> str:
    return f"{major:4d} {minor:7d} {name} " + " ".join(map(str, stats)) + "\n"


def _net_line(name: str, vals: list) -> str:
    return f"{name:>6}: " + " ".join(f"{v:>{w}}" for v, w in zip(vals, NET_WIDTHS)) + "\n"


PSI_FILES = ("cpu", "io", "memory", "irq")


def _write_pressure(out: Path, rng, up_s: float, cpus: int) -> None:
    """/proc/pressure as a 6.x kernel with CONFIG_IRQ_TIME_ACCOUNTING
    prints it (psi_show): `some` and `full` lines for cpu, io and memory
    (cpu's `full` all zeros at system level since 5.18.3), only `full`
    for irq.  Totals in microseconds."""
    (out / "pressure").mkdir(exist_ok=True)
    us = up_s * 1e6
    io, memory = rng.uniform(0.001, 0.05), rng.uniform(0.0, 0.01)
    # `full` (every task stalled) is a part of `some` (at least one).
    shares = {"cpu": (rng.uniform(0.01, 0.2), 0.0), "io": (io, io * rng.uniform(0.3, 0.9)),
              "memory": (memory, memory * rng.uniform(0.3, 0.9)), "irq": (None, rng.uniform(0.0, 0.002))}
    for name in PSI_FILES:
        lines = []
        for kind, share in zip(("some", "full"), shares[name]):
            if share is None:
                continue
            avgs = [0.0, 0.0, 0.0] if share == 0 else [round(share * 100 * rng.uniform(0.5, 1.5), 2)
                                                       for _ in range(3)]
            lines.append(_psi_line(kind, avgs, int(us * share)))
        _write_lines(out / "pressure" / name, lines)


def _psi_line(kind: str, avgs: list, total: int) -> str:
    return f"{kind} avg10={avgs[0]:.2f} avg60={avgs[1]:.2f} avg300={avgs[2]:.2f} total={total}\n"


def _bump_pressure(out: Path, ratio: float, jitter) -> None:
    if not (out / "pressure").is_dir():
        return
    for name in PSI_FILES:
        lines = []
        for ln in (out / "pressure" / name).read_text().splitlines():
            kind, *fields = ln.split()
            avgs = [float(f.partition("=")[2]) for f in fields[:3]]
            total = int(fields[3].partition("=")[2])
            lines.append(_psi_line(kind, avgs, total + round(total * ratio * jitter(f"psi-{name}-{kind}"))))
        _write_lines(out / "pressure" / name, lines)


# -- a whole host: procfs, sysfs, rootfs, textfile directory ------------------

def generate_host(root, cpus: int = 256, interfaces: int = 2000, disks: int = 300, mounts: int = 2000,
                  sockets: int = 2, textfiles: int = 20, seed: int = 0) -> dict:
    """A host's four trees under `root`: `proc` (generate()'s files, and
    `1/mountinfo` and `1/mounts` with `mounts` lines: the agent reads the
    first, node_exporter 1.5 the second), `sys` (class/hwmon: a coretemp
    chip per socket with a sensor per core, an nvme chip per NVMe drive in
    diskstats, a Super I/O chip, two PSUs and a power meter; class/thermal:
    a zone per socket and an ACPI one, a cooling device per CPU), `root`
    (every mount point a directory, so a statfs under it answers from the
    one file system they all live on) and `textfile` (`*.prom` files).
    Returns the four paths by those names."""
    if sockets < 1 or cpus % sockets or mounts < 0 or textfiles < 0:
        raise ValueError("need sockets >= 1 dividing cpus, mounts >= 0, textfiles >= 0")
    base = Path(root)
    paths = {name: base / name for name in ("proc", "sys", "root", "textfile")}
    generate(paths["proc"], cpus=cpus, interfaces=interfaces, disks=disks, seed=seed)
    rng = random.Random(f"host@{seed}")
    nvme = sorted({ln.split()[2] for ln in (paths["proc"] / "diskstats").read_text().splitlines()
                   if ln.split()[2].startswith("nvme") and "p" not in ln.split()[2]}, key=lambda n: int(n[4:-2]))
    table = _mounts(rng, mounts, nvme)
    _write_mounts(paths["proc"] / "1", table)
    for _source, mount_point, *_ in table:
        # mountinfo escapes a space as \040; the directory has the space.
        (paths["root"] / mount_point.replace("\\040", " ").lstrip("/")).mkdir(parents=True, exist_ok=True)
    paths["root"].mkdir(parents=True, exist_ok=True)
    _write_hwmon(paths["sys"], rng, cpus, sockets, nvme)
    _write_thermal(paths["sys"], rng, cpus, sockets)
    write_textfiles(paths["textfile"], textfiles, nvme, seed=seed)
    return paths


# Assorted host mounts: (source, mount point, fstype, mount options, super options).
_HOST_MOUNTS = [
    ("proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("sysfs", "/sys", "sysfs", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("udev", "/dev", "devtmpfs", "rw,nosuid,relatime", "rw,size=131811224k,nr_inodes=32952806,mode=755"),
    ("devpts", "/dev/pts", "devpts", "rw,nosuid,noexec,relatime", "rw,gid=5,mode=620,ptmxmode=000"),
    ("tmpfs", "/run", "tmpfs", "rw,nosuid,nodev,noexec,relatime", "rw,size=26372596k,mode=755"),
    ("/dev/nvme0n1p2", "/", "ext4", "rw,relatime", "rw,errors=remount-ro"),
    ("securityfs", "/sys/kernel/security", "securityfs", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("tmpfs", "/dev/shm", "tmpfs", "rw,nosuid,nodev", "rw,inode64"),
    ("tmpfs", "/run/lock", "tmpfs", "rw,nosuid,nodev,noexec,relatime", "rw,size=5120k,inode64"),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", "rw,nosuid,nodev,noexec,relatime", "rw,nsdelegate,memory_recursiveprot"),
    ("pstore", "/sys/fs/pstore", "pstore", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("bpf", "/sys/fs/bpf", "bpf", "rw,nosuid,nodev,noexec,relatime", "rw,mode=700"),
    ("systemd-1", "/proc/sys/fs/binfmt_misc", "autofs", "rw,relatime", "rw,fd=29,pgrp=1,timeout=0"),
    ("hugetlbfs", "/dev/hugepages", "hugetlbfs", "rw,relatime", "rw,pagesize=2M"),
    ("mqueue", "/dev/mqueue", "mqueue", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("debugfs", "/sys/kernel/debug", "debugfs", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("tracefs", "/sys/kernel/tracing", "tracefs", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("fusectl", "/sys/fs/fuse/connections", "fusectl", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("configfs", "/sys/kernel/config", "configfs", "rw,nosuid,nodev,noexec,relatime", "rw"),
    ("/dev/nvme0n1p1", "/boot/efi", "vfat", "rw,relatime", "rw,fmask=0077,dmask=0077,codepage=437,errors=remount-ro"),
    ("lxcfs", "/var/lib/lxcfs", "fuse.lxcfs", "rw,nosuid,nodev,relatime", "rw,user_id=0,group_id=0,allow_other"),
    ("/dev/loop0", "/snap/core20/2379", "squashfs", "ro,nodev,relatime", "ro,errors=continue"),
    ("/dev/loop1", "/snap/lxd/29619", "squashfs", "ro,nodev,relatime", "ro,errors=continue"),
    ("tmpfs", "/run/user/1000", "tmpfs", "rw,nosuid,nodev,relatime", "rw,size=26372592k,nr_inodes=6593148,mode=700"),
    ("/dev/nvme1n1", "/mnt/backup\\040copies", "xfs", "ro,relatime", "rw,attr2,inode64,logbufs=8,noquota"),
]


def _mounts(rng, count: int, nvme: list) -> list:
    """A Kubernetes node's mount table: the host's own mounts, an xfs file
    system per data drive and a few NFS shares, then per pod an overlay
    root (left out by type), a sandbox shm and a projected service-account
    token (tmpfs), its network namespace (nsfs) and on some a CSI volume
    (ext4), until `count` lines."""
    table = list(_HOST_MOUNTS)
    for i, disk in enumerate(nvme[2:]):
        table.append((f"/dev/{disk}", f"/srv/data{i:02d}", "xfs", "rw,noatime",
                      "rw,attr2,inode64,logbufs=8,logbsize=32k,noquota"))
    for i in range(4):
        table.append((f"nfs{i}.storage.example:/export/share{i}", f"/mnt/nfs/share{i}", "nfs4",
                      "rw,relatime", f"rw,vers=4.2,rsize=1048576,wsize=1048576,hard,proto=tcp,addr=10.0.{i}.2"))
    del table[count:]
    pod = 0
    while len(table) < count:
        uid = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-" \
              f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
        sandbox = f"{rng.getrandbits(128):032x}{rng.getrandbits(128):032x}"
        pod_mounts = [
            ("overlay", f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{sandbox}/rootfs", "overlay",
             "rw,relatime", f"rw,lowerdir=/var/lib/containerd/snapshots/{pod}/fs,upperdir=/var/lib/containerd/"
             f"snapshots/{pod + 1}/fs,workdir=/var/lib/containerd/snapshots/{pod + 1}/work"),
            ("shm", f"/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{sandbox}/shm", "tmpfs",
             "rw,nosuid,nodev,noexec,relatime", "rw,size=65536k,inode64"),
            ("tmpfs", f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~projected/kube-api-access-"
             f"{rng.getrandbits(20):05x}", "tmpfs", "rw,relatime", "rw,size=262144k,inode64"),
            ("nsfs", f"/run/netns/cni-{uid}", "nsfs", "rw", "rw"),
        ]
        if pod % 3 == 0:
            pod_mounts.append((f"/dev/rbd{pod // 3}", f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/"
                               f"pvc-{uid}/mount", "ext4", "rw,relatime", "rw,stripe=16"))
        table += pod_mounts[:count - len(table)]
        pod += 1
    return table


def _write_mounts(proc1: Path, table: list) -> None:
    """`mountinfo` (the kernel's show_mountinfo) and `mounts` (show_vfsmnt:
    the mount's and the superblock's options in one list)."""
    proc1.mkdir(parents=True, exist_ok=True)
    info, mounts = [], []
    for i, (source, mount_point, fstype, options, super_options) in enumerate(table):
        parent = 1 if mount_point == "/" else 30
        info.append(f"{30 + i} {parent} {0 if i < 20 else 259}:{i} / {mount_point} {options} shared:{i + 1} - "
                    f"{fstype} {source} {super_options}\n")
        extra = [o for o in super_options.split(",") if o not in ("rw", "ro")]
        mounts.append(f"{source} {mount_point} {fstype} {','.join([options] + extra)} 0 0\n")
    _write_lines(proc1 / "mountinfo", info)
    _write_lines(proc1 / "mounts", mounts)


def _chip(sys_root: Path, index: int, device: str, name: str, files: dict) -> None:
    """class/hwmon/hwmonN -> devices/<device>/hwmon/hwmonN, with its
    `device` link back to the device directory, as the kernel lays it out."""
    device_dir = sys_root / "devices" / device
    chip_dir = device_dir / "hwmon" / f"hwmon{index}"
    chip_dir.mkdir(parents=True)
    (device_dir / "uevent").write_text("")
    (chip_dir / "device").symlink_to(Path("../..") / ".." / Path(device).name)
    files = {"name": name, **files}
    for file_name, value in files.items():
        (chip_dir / file_name).write_text(f"{value}\n")
    link = sys_root / "class" / "hwmon" / f"hwmon{index}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path("../../devices") / device / "hwmon" / f"hwmon{index}")


def _write_hwmon(sys_root: Path, rng, cpus: int, sockets: int, nvme: list) -> None:
    index = 0
    cores = max(1, cpus // sockets // 2)            # two hardware threads per core
    for socket_id in range(sockets):
        files = {}
        for sensor in range(1, cores + 2):
            label = f"Package id {socket_id}" if sensor == 1 else f"Core {sensor - 2}"
            files.update({f"temp{sensor}_input": rng.randint(35, 85) * 1000, f"temp{sensor}_max": 94000,
                          f"temp{sensor}_crit": 104000, f"temp{sensor}_crit_alarm": 0,
                          f"temp{sensor}_label": label})
        _chip(sys_root, index, f"platform/coretemp.{socket_id}", "coretemp", files)
        index += 1
    for i, disk in enumerate(nvme):
        controller = disk[:-2]                      # nvme3n1 -> nvme3
        files = {"temp1_input": rng.randint(30, 70) * 1000 + 850, "temp1_alarm": 0, "temp1_crit": 84850,
                 "temp1_max": 81850, "temp1_min": -273150, "temp1_label": "Composite"}
        for sensor in (2, 3):
            files.update({f"temp{sensor}_input": rng.randint(30, 80) * 1000 + 850, f"temp{sensor}_max": 65261850,
                          f"temp{sensor}_min": -273150, f"temp{sensor}_label": f"Sensor {sensor - 1}"})
        _chip(sys_root, index, f"pci0000:{0x40 + i // 16:02x}/0000:{0x40 + i // 16:02x}:{i % 16 + 1:02x}.0/"
              f"0000:{0x41 + i:02x}:00.0/nvme/{controller}", "nvme", files)
        index += 1
    files = {"beep_enable": 0, "cpu0_vid": 0, "intrusion0_alarm": 1, "intrusion1_alarm": 0}
    for n in range(15):
        millivolts = rng.choice([1008, 1800, 3312, 1200, 5080, 12096])
        files.update({f"in{n}_input": millivolts, f"in{n}_min": millivolts * 9 // 10,
                      f"in{n}_max": millivolts * 11 // 10, f"in{n}_alarm": 0, f"in{n}_beep": 0})
    for n in range(1, 8):
        files.update({f"fan{n}_input": rng.choice([0, rng.randint(600, 3000)]), f"fan{n}_min": 0,
                      f"fan{n}_alarm": 0, f"fan{n}_beep": 0, f"fan{n}_pulses": 2,
                      f"pwm{n}": rng.randint(60, 255), f"pwm{n}_enable": 5, f"pwm{n}_mode": 1})
    for n, label in enumerate(("SYSTIN", "CPUTIN", "AUXTIN0", "AUXTIN1", "PECI Agent 0", "PCH_CHIP_TEMP"), 1):
        files.update({f"temp{n}_input": rng.randint(25, 60) * 1000, f"temp{n}_max": 80000,
                      f"temp{n}_max_hyst": 75000, f"temp{n}_type": 4, f"temp{n}_label": label,
                      f"temp{n}_alarm": 0, f"temp{n}_beep": 0})
    _chip(sys_root, index, "platform/nct6775.656", "nct6798", files)
    index += 1
    for psu in range(2):
        files = {}
        for n, (kind, label) in enumerate((("in", "vin"), ("in", "vout1")), 1):
            files.update({f"{kind}{n}_input": 230000 if n == 1 else 12100, f"{kind}{n}_label": label,
                          f"{kind}{n}_crit": 264000 if n == 1 else 13000, f"{kind}{n}_crit_alarm": 0})
        for n, label in enumerate(("iin", "iout1"), 1):
            files.update({f"curr{n}_input": rng.randint(500, 80000), f"curr{n}_label": label,
                          f"curr{n}_max": 100000, f"curr{n}_max_alarm": 0})
        for n, label in enumerate(("pin", "pout1"), 1):
            files.update({f"power{n}_input": rng.randint(100, 900) * 1000000, f"power{n}_label": label,
                          f"power{n}_alarm": 0})
        for n in range(1, 4):
            files.update({f"temp{n}_input": rng.randint(25, 55) * 1000, f"temp{n}_max": 85000,
                          f"temp{n}_max_alarm": 0})
        files.update({"fan1_input": rng.randint(3000, 9000), "fan1_alarm": 0, "fan1_fault": 0})
        _chip(sys_root, index, f"pci0000:00/0000:00:1f.4/i2c-0/0-00{0x58 + psu:02x}", "pmbus", files)
        index += 1
    _chip(sys_root, index, "LNXSYSTM:00/LNXSYBUS:00/ACPI000D:00", "power_meter",
          {"power1_average": rng.randint(300, 1500) * 1000000, "power1_average_interval": 1000,
           "power1_average_interval_min": 1000, "power1_average_interval_max": 60000,
           "power1_cap": 2000000000, "power1_is_battery": 0})


def _write_thermal(sys_root: Path, rng, cpus: int, sockets: int) -> None:
    """An ACPI zone and an x86_pkg_temp zone per socket; a `Processor`
    cooling device per CPU (the ACPI processor driver makes one each) and
    intel_powerclamp (its cur_state is -1 while idle)."""
    virtual = sys_root / "devices" / "virtual" / "thermal"
    links = sys_root / "class" / "thermal"
    links.mkdir(parents=True, exist_ok=True)

    def entry(name: str, files: dict) -> None:
        (virtual / name).mkdir(parents=True)
        for file_name, value in files.items():
            (virtual / name / file_name).write_text(f"{value}\n")
        (links / name).symlink_to(Path("../../devices/virtual/thermal") / name)

    zones = [("acpitz", "step_wise")] + [("x86_pkg_temp", "user_space")] * sockets
    for n, (kind, policy) in enumerate(zones):
        entry(f"thermal_zone{n}", {"type": kind, "temp": rng.randint(27, 80) * 1000, "policy": policy,
                                   "mode": "enabled", "available_policies": "step_wise user_space"})
    for n in range(cpus):
        entry(f"cooling_device{n}", {"type": "Processor", "cur_state": 0, "max_state": 3})
    entry(f"cooling_device{cpus}", {"type": "intel_powerclamp", "cur_state": -1, "max_state": 50})


def write_textfiles(directory, count: int, disks: list, seed: int = 0) -> Path:
    """`*.prom` files as the usual cron scripts write them: pending
    package upgrades, SMART attributes per drive in `disks`, a role
    annotation, then `count` jobs' last success and duration."""
    rng = random.Random(f"textfile@{seed}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "apt.prom").write_text(
        "# HELP apt_upgrades_pending Apt packages pending updates by origin.\n"
        "# TYPE apt_upgrades_pending gauge\n"
        + "".join(f'apt_upgrades_pending{{origin="{o}",arch="amd64"}} {rng.randint(0, 40)}\n'
                  for o in ("Debian:bookworm/stable", "Debian:bookworm-security/stable"))
        + "# HELP node_reboot_required Node reboot is required for software updates.\n"
          "# TYPE node_reboot_required gauge\nnode_reboot_required 0\n")
    attributes = ("temperature_celsius", "available_spare_ratio", "percentage_used_ratio",
                  "data_units_read_total", "data_units_written_total", "power_on_hours_total",
                  "unsafe_shutdowns_total", "media_errors_total")
    smart = []
    for attribute in (attributes if disks else ()):
        smart.append(f"# HELP nvme_{attribute} SMART metric {attribute}\n# TYPE nvme_{attribute} gauge\n")
        smart += [f'nvme_{attribute}{{device="{d}"}} {rng.randint(0, 10**6)}\n' for d in disks]
    if smart:
        (out / "smartmon.prom").write_text("".join(smart))
    (out / "role.prom").write_text('# HELP node_role_info The host\'s role.\n# TYPE node_role_info gauge\n'
                                   'node_role_info{role="kubernetes-worker",rack="r12"} 1\n')
    for n in range(count):
        job = f"job{n:03d}"
        (out / f"cron_{job}.prom").write_text(
            f"# HELP cron_{job}_last_success_seconds When the job last succeeded.\n"
            f"# TYPE cron_{job}_last_success_seconds gauge\n"
            f"cron_{job}_last_success_seconds {1735689600 + rng.randint(0, 10**6)}\n"
            f"# HELP cron_{job}_duration_seconds How long its last run took.\n"
            f"# TYPE cron_{job}_duration_seconds gauge\n"
            f"cron_{job}_duration_seconds {rng.uniform(0.1, 600):.3f}\n")
    return out


# -- command line -----------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--cpus", type=int, default=256)
    p.add_argument("--interfaces", type=int, default=2000)
    p.add_argument("--disks", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bump", type=float, metavar="SECONDS",
                   help="age the existing tree in OUTDIR instead of generating one")
    args = p.parse_args(argv)
    try:
        if args.bump is not None:
            bump(args.outdir, args.bump)
        else:
            generate(args.outdir, cpus=args.cpus, interfaces=args.interfaces, disks=args.disks, seed=args.seed)
    except (OSError, ValueError) as exc:
        print(f"gen_procfs: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
