"""The cgroups collector against its floor: at 100, 1,000 and 3,000
container cgroups (benchmarks/gen_cgroups.py, in a temporary directory),
the agent's CPU per scrape over loopback HTTP (gzip, Prometheus's
headers; utime+stime of the agent's process from /proc/PID/stat) against
benchmarks/floor_cgroups.c, a C program that only lists the same
directories and opens and reads the same files, once per pass.

Same run, alternating: each round runs the floor for as many passes as
the agent gets scrapes, then the agent; the figures are the medians over
the rounds.  Target (issue 14): the agent within 2x of the floor, and its
cost linear in containers (the per-container figures flat across sizes).

    python benchmarks/compare_cgroups.py                 # C backend, 100 / 1000 / 3000
    python benchmarks/compare_cgroups.py --backend python --sizes 100 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_cgroups  # noqa: E402
from compare import SCRAPE_REQUEST, Target, agent_command, cpu_times, free_port, rss_kib  # noqa: E402

MAX_SECONDS = 900  # a bound on the whole run


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (10 ms ticks)."""
    return sum(cpu_times(pid))


def build_floor(out: Path) -> Path:
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        sys.exit("compare_cgroups: no C compiler for the floor program")
    exe = out / "floor_cgroups"
    subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", str(HERE / "floor_cgroups.c"),
                    "-o", str(exe)], check=True)
    return exe


def floor_cpu(exe: Path, top: Path, listing: Path, passes: int) -> float:
    out = subprocess.run([str(exe), str(top), str(listing), str(passes)], check=True, capture_output=True,
                         text=True, timeout=300)
    return float(out.stdout.split()[0])


# The same request without Accept-Encoding: the agent's own work, without
# the deflate of a body that cAdvisor's label set makes ~330 bytes a series.
IDENTITY_REQUEST = b"\r\n".join(line for line in SCRAPE_REQUEST.split(b"\r\n")
                                 if not line.lower().startswith(b"accept-encoding"))


def agent_cpu(target: Target, scrapes: int, request: bytes = SCRAPE_REQUEST) -> float:
    before = cpu_seconds(target.proc.pid)
    for _ in range(scrapes):
        status, _, body = target.conn.get(request)
        if status != 200 or not body:
            raise RuntimeError(f"agent: HTTP {status}")
    return (cpu_seconds(target.proc.pid) - before) / scrapes


def measure(n: int, backend: str, rounds: int, work: Path, floor: Path) -> dict:
    top = work / f"tree-{n}"
    listed = gen_cgroups.generate(str(top), n)
    listing = work / f"list-{n}.txt"
    listing.write_text("".join(f"d {d}\n" for d in listed["dirs"]) + "".join(f"f {f}\n" for f in listed["files"]))
    port = free_port()
    agent = Target("agent", [*agent_command(), "--listen", f"127.0.0.1:{port}", "--backend", backend,
                             "--log-level", "warning", "--collector.disable-defaults", "--collector.cgroups",
                             "--collector.cgroups.max-containers", str(max(n, 1)),
                             "--sysfs", str(top / "sys"), "--procfs", str(top / "proc"),
                             "--rootfs", str(top / "rootfs")], port)
    try:
        # Enough scrapes per round that CPU ticks (10 ms) are a small error:
        # over a second of the agent's CPU a round, at any size (at 100
        # containers 30 scrapes made 13 ticks, and one tick 8 %).
        scrapes = max(10, 30000 // max(n, 1))
        status, _, body = agent.conn.get(SCRAPE_REQUEST)
        text = zlib.decompress(body, 31)
        series = sum(1 for line in text.splitlines() if line.startswith(b"container_"))
        assert status == 200 and series > 20 * n, f"{series} container series for {n} containers"
        agent_cpu(agent, 2)  # warm-up
        floors, agents, plain = [], [], []
        for _ in range(rounds):
            floors.append(floor_cpu(floor, top, listing, scrapes))
            agents.append(agent_cpu(agent, scrapes))
            plain.append(agent_cpu(agent, scrapes, IDENTITY_REQUEST))
        rss = rss_kib(agent.proc.pid)
    finally:
        agent.stop()
    f, a, p = statistics.median(floors), statistics.median(agents), statistics.median(plain)
    return dict(n=n, floor_ms=f * 1e3, agent_ms=a * 1e3, ratio=a / f, plain_ms=p * 1e3, plain_ratio=p / f,
                series=series, scrapes=scrapes, files=len(listed["files"]), dirs=len(listed["dirs"]),
                body_mb=len(text) / 1e6, rss_mib=rss / 1024)


def plot(rows: list, png: Path) -> None:
    """CPU per scrape against containers, the agent's and the floor's, log-log:
    parallel lines a slope of 1 are linear costs a constant ratio apart."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs = [r["n"] for r in rows]
    ax.plot(xs, [r["agent_ms"] for r in rows], "o-", label="monitoring-agent, CPU per gzip scrape")
    ax.plot(xs, [r["floor_ms"] for r in rows], "s-", label="floor: list and read the same files (C)")
    ax.plot(xs, [2 * r["floor_ms"] for r in rows], ":", color="grey", label="2 x the floor (target)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("container cgroups (12 files each read, cgroup v2 layout of a Kubernetes/Docker host)")
    ax.set_ylabel("CPU per scrape (ms)")
    ax.set_title("cgroups collector: cost against containers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot written to {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--backend", choices=["c", "python"], default="c")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--png", default=str(HERE.parent / "docs" / "cgroups_growth.png"),
                        help="the curve (needs matplotlib; empty: none)")
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="agent-cgroups-bench-") as tmp:
        work = Path(tmp)
        floor = build_floor(work)
        for n in args.sizes:
            if time.monotonic() - started > MAX_SECONDS:
                print(f"stopped before {n} containers: the run's {MAX_SECONDS} s bound")
                break
            rows.append(measure(n, args.backend, args.rounds, work, floor))
    print(f"\ncgroups, {args.backend} backend, medians of {args.rounds} alternating rounds "
          f"(CPU per scrape; floor: list and read the same files in C)\n")
    print("| containers | dirs listed + files read | series | body MB | floor ms | agent ms (gzip) | ratio "
          "| agent ms (identity) | ratio | agent us per container (gzip) | agent RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['dirs']:,} + {r['files']:,} | {r['series']:,} | {r['body_mb']:.1f} | "
              f"{r['floor_ms']:.2f} | {r['agent_ms']:.2f} | {r['ratio']:.2f} | {r['plain_ms']:.2f} | "
              f"{r['plain_ratio']:.2f} | {r['agent_ms'] * 1e3 / r['n']:.0f} | {r['rss_mib']:.1f} |")
    if args.png and rows:
        plot(rows, Path(args.png))
    worst = max((r["ratio"] for r in rows), default=0)
    print(f"\ntarget within 2x of the floor: {'met' if worst <= 2 else 'NOT met'} (worst {worst:.2f}x, gzip)")


if __name__ == "__main__":
    main()
