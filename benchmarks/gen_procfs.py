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
