"""Generate a /proc tree of N processes for the processes benchmarks, and age it.

    python benchmarks/gen_processes.py OUTDIR --pids 10000 [--seed N]
    python benchmarks/gen_processes.py OUTDIR --bump SECONDS

Every process directory holds what the three programs compared read from
it: `stat` (all 52 fields of a 6.x kernel), `status`, `io`, `limits`,
`wchan`, `cmdline`, `cgroup`, `fd/` (four links) and `task/TID/stat` for
each thread (the leader's is its own `stat`); one process in ten has 2 to 8
threads.  Comms come from about
200 names, so process-exporter's groups (one per comm) number about 200, as
on a real dense host; pids are spread over 1 .. pid_max the way a host that
has run a while spreads them.  The tree also has `stat`, `uptime`,
`loadavg`, `meminfo` and `sys/kernel/{pid_max,threads-max}`.

`bump(outdir, seconds)` adds CPU ticks to every process (a busy tenth gains
most), so a scrape after it has rates to rank.  The same seed gives the
same bytes.  Nothing here imports the agent.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

USER_HZ = 100
PID_MAX = 4194304
NAMES = (["nginx", "php-fpm8.2", "java", "python3", "node", "postgres", "redis-server", "sshd", "bash",
          "containerd-shim", "pause", "envoy", "kworker/u16:3", "ksoftirqd/1", "systemd", "dockerd", "gunicorn",
          "celery", "ruby", "sidekiq"] + [f"svc-{i:03d}" for i in range(180)])
STATUS = """Name:\t{comm}
Umask:\t0022
State:\t{state_long}
Tgid:\t{pid}
Ngid:\t0
Pid:\t{pid}
PPid:\t1
TracerPid:\t0
Uid:\t1000\t1000\t1000\t1000
Gid:\t1000\t1000\t1000\t1000
FDSize:\t64
Groups:\t1000
NStgid:\t{pid}
NSpid:\t{pid}
NSpgid:\t{pid}
NSsid:\t{pid}
Kthread:\t0
VmPeak:\t  {vm} kB
VmSize:\t  {vm} kB
VmLck:\t       0 kB
VmPin:\t       0 kB
VmHWM:\t  {rss_kb} kB
VmRSS:\t  {rss_kb} kB
RssAnon:\t  {rss_kb} kB
RssFile:\t       0 kB
RssShmem:\t       0 kB
VmData:\t  {rss_kb} kB
VmStk:\t     132 kB
VmExe:\t     800 kB
VmLib:\t    2048 kB
VmPTE:\t      64 kB
VmSwap:\t       0 kB
HugetlbPages:\t       0 kB
CoreDumping:\t0
THP_enabled:\t1
untag_mask:\t0xffffffffffffffff
Threads:\t{threads}
SigQ:\t0/63658
SigPnd:\t0000000000000000
ShdPnd:\t0000000000000000
SigBlk:\t0000000000000000
SigIgn:\t0000000000001000
SigCgt:\t0000000188004002
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t0
Seccomp:\t0
Seccomp_filters:\t0
Speculation_Store_Bypass:\tthread vulnerable
SpeculationIndirectBranch:\tconditional enabled
Cpus_allowed:\tff
Cpus_allowed_list:\t0-7
Mems_allowed:\t00000000,00000001
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t{vcs}
nonvoluntary_ctxt_switches:\t{nvcs}
"""
LIMITS = ("Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max cpu time              unlimited            unlimited            seconds   \n"
          "Max file size             unlimited            unlimited            bytes     \n"
          "Max data size             unlimited            unlimited            bytes     \n"
          "Max stack size            8388608              unlimited            bytes     \n"
          "Max core file size        0                    unlimited            bytes     \n"
          "Max resident set          unlimited            unlimited            bytes     \n"
          "Max processes             63658                63658                processes \n"
          "Max open files            1024                 524288               files     \n"
          "Max locked memory         8388608              8388608              bytes     \n"
          "Max address space         unlimited            unlimited            bytes     \n"
          "Max file locks            unlimited            unlimited            locks     \n"
          "Max pending signals       63658                63658                signals   \n"
          "Max msgqueue size         819200               819200               bytes     \n"
          "Max nice priority         0                    0                    \n"
          "Max realtime priority     0                    0                    \n"
          "Max realtime timeout      unlimited            unlimited            us        \n")
LONG_STATE = {"S": "S (sleeping)", "R": "R (running)", "D": "D (disk sleep)", "I": "I (idle)"}


def stat_line(pid: int, comm: str, state: str, threads: int, utime: int, stime: int, start: int,
              rss_pages: int) -> str:
    """stat(5)'s 52 fields, as fs/proc/array.c prints them."""
    fields = [state, 1, pid, pid, 0, -1, 4194560, 7413, 0, 12, 0, utime, stime, 0, 0, 20, 0, threads, 0, start,
              rss_pages * 4096 * 3, rss_pages, 18446744073709551615, 94000000000000, 94000000800000,
              140700000000000, 0, 0, 0, 0, 4096, 134234626, 0, 0, 0, 17, pid % 8, 0, 0, 3, 0, 0,
              94000001000000, 94000001100000, 94000002000000, 140700000100000, 140700000100040,
              140700000100040, 140700000101000, 0]
    return f"{pid} ({comm}) " + " ".join(map(str, fields)) + "\n"


def _pids(rng: random.Random, count: int) -> list[int]:
    if count > PID_MAX // 2:
        raise ValueError(f"at most {PID_MAX // 2} processes")
    chosen = set(range(1, min(count, 200) + 1))  # the boot-time processes
    while len(chosen) < count:
        chosen.add(rng.randrange(201, PID_MAX))
    return sorted(chosen)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def generate(outdir, pids: int = 1000, seed: int = 0) -> Path:
    rng = random.Random(seed)
    out = Path(outdir)
    (out / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
    _write(out / "sys" / "kernel" / "pid_max", f"{PID_MAX}\n")
    _write(out / "sys" / "kernel" / "threads-max", "254419\n")
    uptime = 86400 * 30
    _write(out / "uptime", f"{uptime}.00 {uptime * 7}.00\n")
    _write(out / "loadavg", f"1.00 0.90 0.80 2/{pids * 2} {PID_MAX - 1}\n")
    _write(out / "stat", "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 100 0 100 1000 0 0 0 0 0 0\n"
                         f"intr 0\nctxt 0\nbtime 1764000000\nprocesses {pids * 3}\nprocs_running 2\n"
                         "procs_blocked 0\n")
    _write(out / "meminfo", "MemTotal:       65536000 kB\nMemFree:        32768000 kB\n"
                            "MemAvailable:   48000000 kB\n")
    # Files whose bytes do not depend on the pid are hard links to one copy
    # per variant (a block each, not one per process): a 30,000-process
    # tree then takes about 600 MB and a minute to write, not 2 GB.
    shared = out / ".shared"  # not a number: no reader takes it for a process
    shared.mkdir(exist_ok=True)
    _write(shared / "limits", LIMITS)
    _write(shared / "wchan", "0")
    for i in range(8):
        _write(shared / f"io{i}", f"rchar: {rng.randint(0, 10**9)}\nwchar: {rng.randint(0, 10**9)}\n"
                                  f"syscr: {rng.randint(0, 10**6)}\nsyscw: {rng.randint(0, 10**6)}\n"
                                  f"read_bytes: {rng.randint(0, 10**9)}\nwrite_bytes: {rng.randint(0, 10**9)}\n"
                                  "cancelled_write_bytes: 0\n")
    for n, comm in enumerate(NAMES):
        _write(shared / f"cmdline{n}", f"/usr/bin/{comm}\0--serve\0")
        _write(shared / f"cgroup{n}", f"0::/system.slice/{comm.replace('/', '-')}.service\n")
        # One status per comm: the readers take the state and the thread
        # count from stat.
        _write(shared / f"status{n}", STATUS.format(comm=comm, state_long=LONG_STATE["S"], pid=1000 + n, vm=120000,
                                                    rss_kb=40000, threads=1, vcs=n * 1000, nvcs=n))
    for pid in _pids(rng, pids):
        n = rng.randrange(len(NAMES))
        comm = NAMES[n]
        threads = rng.randint(2, 8) if rng.random() < 0.1 else 1
        state = rng.choice("SSSSSSSSRDI")
        utime, stime = rng.randint(0, 10 ** 6), rng.randint(0, 10 ** 5)
        start = rng.randint(100, uptime * USER_HZ)
        rss = rng.randint(100, 200000)
        d = out / str(pid)
        (d / "fd").mkdir(parents=True, exist_ok=True)
        _write(d / "stat", stat_line(pid, comm, state, threads, utime, stime, start, rss))
        for name, source in (("status", f"status{n}"), ("io", f"io{pid % 8}"), ("limits", "limits"),
                             ("wchan", "wchan"), ("cmdline", f"cmdline{n}"), ("cgroup", f"cgroup{n}")):
            os.link(shared / source, d / name)
        for fd in range(4):
            os.symlink("/dev/null", d / "fd" / str(fd))
        (d / "task" / str(pid)).mkdir(parents=True)
        # The leader's task stat is the process's own (one inode: bump ages both).
        os.link(d / "stat", d / "task" / str(pid) / "stat")
        for i in range(1, threads):
            tid = pid + i  # a thread is listed only under task/, so pid + i never clashes
            (d / "task" / str(tid)).mkdir()
            _write(d / "task" / str(tid) / "stat", stat_line(tid, comm, rng.choice("SSSR"), threads, utime // 4,
                                                             stime // 4, start, rss))
    return out


def bump(outdir, seconds: float, seed: int = 1) -> None:
    """Add CPU ticks to every process: a tenth of them busy (up to a CPU),
    the rest a little."""
    out = Path(outdir)
    rng = random.Random(seed)
    for d in out.iterdir():
        if not d.name.isdigit():
            continue
        path = d / "stat"
        data = path.read_text()
        head, _, rest = data.rpartition(") ")
        fields = rest.split(" ")
        busy = rng.random() < 0.1
        gain = int(seconds * USER_HZ * (rng.uniform(0.2, 1.0) if busy else rng.uniform(0, 0.02)))
        fields[11] = str(int(fields[11]) + gain)        # utime, field 14
        fields[12] = str(int(fields[12]) + gain // 5)   # stime, field 15
        # Rewritten in place: task/PID/stat, the same inode, follows.
        with open(path, "r+") as f:
            f.write(head + ") " + " ".join(fields))
            f.truncate()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--pids", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bump", type=float, help="age an existing tree by this many seconds instead")
    args = p.parse_args(argv)
    if args.bump is not None:
        bump(args.outdir, args.bump)
    else:
        generate(args.outdir, args.pids, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
