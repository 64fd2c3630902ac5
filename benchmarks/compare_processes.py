"""The processes collector against its peers on the same generated trees:
Debian's prometheus-process-exporter (-threads=false -gather-smaps=false,
every process grouped by comm) and node_exporter's processes collector, at
1,000, 10,000 and 30,000 processes.

For each tree size, every program is started on the tree, scraped over
loopback HTTP as Prometheus scrapes (compare.py's request), and then, round
after round, the tree is aged (gen_processes.bump, outside any measurement:
the next scrapes have CPU rates to rank) and each program is scraped k times
in turn; its CPU per scrape in the round is the utime+stime it spent
(/proc/PID/stat) divided by k, where k makes a block at least --block-cpu
seconds long (a tick is 10 ms).  Reported: the median over the rounds, the
ratios peer / agent, and CPU per process (cost linear in processes: that
figure stays flat across sizes).

    make bench-compare        # runs it with the defaults below
    python benchmarks/compare_processes.py --sizes 1000,10000 --rounds 5
    python benchmarks/compare_processes.py --png docs/processes.png

Each round also runs benchmarks/floor_processes.c (built with cc) on the
same tree, as many passes as the agent's block has scrapes: it only lists
the directories and opens, reads once and closes the stat files the agent's
walk reads (task/ and the other threads' stat files of multi-threaded
processes too, unless the agent runs with threads off), with raw system
calls and nothing else: the kernel's floor under the collector.

--real N measures on this machine's /proc instead: benchmarks/idle_processes.c
(built with cc) starts enough sleeping processes (one in ten with 2 to 8
threads, as the generated trees) to make N, and they exit with it; the
tree is not aged (the sleepers use no CPU), and the programs' process counts
are checked within 2 % (other work starts and ends processes meanwhile).

A peer that is not installed is left out with one line.  Trees go to
/dev/shm when it is there (a 30,000-process tree takes ~250 MB and a few
seconds there, against ~800 MB and two minutes on ext4), else the temp dir;
they are removed at the end.  Only 127.0.0.1 is used; every loop is bounded.
"""

from __future__ import annotations

import argparse
import math
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

import gen_processes  # noqa: E402
from compare import (NODE_EXPORTER, SCRAPE_REQUEST, ScrapeConnection, Target, agent_command,  # noqa: E402
                     cpu_times, free_port, rss_kib)

PROCESS_EXPORTER = shutil.which("prometheus-process-exporter") or shutil.which("process-exporter")
# process-exporter's documented way to group every process by its comm;
# '.*' rather than '.+' so kernel threads (an empty cmdline) count too.
PROCESS_EXPORTER_CONFIG = 'process_names:\n  - name: "{{.Comm}}"\n    cmdline:\n    - ".*"\n'
# A round's block of scrapes is at least this much CPU, and at most this many scrapes.
MAX_SCRAPES_PER_BLOCK = 400
MAX_SECONDS_PER_SIZE = 900


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def start_agent(tree: Path, backend: str, *extra: str) -> Target:
    port = free_port()
    return Target("agent", [*agent_command(), "--procfs", str(tree), "--listen", f"127.0.0.1:{port}",
                            "--backend", backend, "--log-level", "warning", "--collector.disable-defaults",
                            "--collector.processes", *extra], port)


def start_node_exporter(tree: Path) -> Target | None:
    if NODE_EXPORTER is None:
        return None
    port = free_port()
    return Target("node_exporter", [NODE_EXPORTER, "--collector.disable-defaults", "--collector.processes",
                                    f"--path.procfs={tree}", f"--web.listen-address=127.0.0.1:{port}"], port)


def start_process_exporter(tree: Path, config: Path) -> Target | None:
    if PROCESS_EXPORTER is None:
        return None
    port = free_port()
    return Target("process-exporter", [PROCESS_EXPORTER, "-procfs", str(tree), "-config.path", str(config),
                                       "-threads=false", "-gather-smaps=false",
                                       "-web.listen-address", f"127.0.0.1:{port}"], port)


def build(name: str, out: Path) -> Path | None:
    """benchmarks/NAME.c compiled into out; None (and one line) without a C compiler."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        print(f"no C compiler: {name} left out")
        return None
    exe = out / name
    subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", str(HERE / f"{name}.c"), "-o", str(exe),
                    "-lpthread"], check=True)
    return exe


def agent_threads(agent_args: tuple) -> bool:
    """Whether the agent reads thread states with these flags (its default: yes)."""
    args = list(agent_args)
    for i, a in enumerate(args):
        value = a.partition("=")[2] if a.startswith("--collector.processes.threads=") else (
            args[i + 1] if a == "--collector.processes.threads" and i + 1 < len(args) else None)
        if value is not None:
            return value.lower() not in ("false", "0", "no", "off")
    return True


def floor_cpu(floor: Path, tree: Path, passes: int, threads: bool) -> float:
    """CPU seconds per pass of floor_processes over the tree."""
    out = subprocess.run([str(floor), str(tree), str(passes), *(["--threads"] if threads else [])],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split("cpu_ms_per_pass")[1]) / 1e3


def check(target: Target, pids: int, tolerance: float = 0.0) -> None:
    """One scrape looked at: every process of the tree counted."""
    status, _, body = target.conn.get(SCRAPE_REQUEST)
    text = zlib.decompress(body, 31).decode("utf-8", "replace")
    if status != 200:
        raise RuntimeError(f"{target.name}: HTTP {status}")
    if target.name == "process-exporter":
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("namedprocess_namegroup_num_procs{"))
    else:
        counted = next(float(line.split()[1]) for line in text.splitlines()
                       if line.startswith("node_processes_pids "))
    if abs(counted - pids) > tolerance * pids:
        raise RuntimeError(f"{target.name} counted {counted} processes of {pids}")
    if target.name == "agent" and "node_top_process_resident_memory_bytes{" not in text:
        raise RuntimeError("agent: no top processes")


def measure(tree: Path, pids: int, rounds: int, block_cpu: float, backend: str, config: Path,
            agent_args: tuple = (), peers: bool = True, floor: Path | None = None, real: bool = False) -> dict:
    targets = [start_agent(tree, backend, *agent_args)]
    if peers:
        targets += [t for t in (start_node_exporter(tree), start_process_exporter(tree, config)) if t is not None]
    threads = agent_threads(agent_args)
    try:
        blocks = {}
        for t in targets:
            t.conn.close()
            t.conn = ScrapeConnection(t.port)
            t.scrape()  # the first scrape: process-exporter reads cmdlines, cgroups once
            check(t, pids, 0.02 if real else 0.0)
            cpu0 = cpu_seconds(t.proc.pid)
            t.scrape()
            t.scrape()
            per_scrape = max((cpu_seconds(t.proc.pid) - cpu0) / 2, 0.001)
            blocks[t.name] = max(1, min(MAX_SCRAPES_PER_BLOCK, math.ceil(block_cpu / per_scrape)))
        per_round = {t.name: [] for t in targets}
        if floor is not None:
            per_round["floor"] = []
        deadline = time.monotonic() + MAX_SECONDS_PER_SIZE
        for r in range(rounds):
            if not real:
                gen_processes.bump(tree, 5.0, seed=r + 1)
            if floor is not None:
                per_round["floor"].append(floor_cpu(floor, tree, blocks["agent"], threads))
            for t in targets:  # in turn, so all see the same machine noise
                k = blocks[t.name]
                # A fresh connection: one left idle while a slow peer is
                # scraped (a minute at 30,000 processes) may have been closed.
                t.conn.close()
                t.conn = ScrapeConnection(t.port)
                cpu0 = cpu_seconds(t.proc.pid)
                for _ in range(k):
                    t.scrape()
                per_round[t.name].append((cpu_seconds(t.proc.pid) - cpu0) / k)
            if time.monotonic() > deadline:
                break
        rss = {t.name: rss_kib(t.proc.pid) for t in targets}
        return {name: dict(cpu_ms=statistics.median(v) * 1e3, rounds=len(v),
                           scrapes_per_round=blocks.get(name, blocks["agent"]),
                           cpu_ms_all=[round(x * 1e3, 2) for x in v], rss_mib=rss.get(name, 0) / 1024)
                for name, v in per_round.items()}
    finally:
        for t in targets:
            t.stop()


def tree_parent() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,30000", help="process counts, comma-separated")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block-cpu", type=float, default=0.3, help="CPU seconds a round's block lasts at least")
    p.add_argument("--backend", default="c", choices=("c", "python"))
    p.add_argument("--png", type=Path, help="draw CPU per scrape against processes into this file")
    p.add_argument("--agent-args", default="", help="more flags for the agent, e.g. "
                   "'--collector.processes.threads false'")
    p.add_argument("--no-peers", action="store_true", help="the agent alone (and the floor)")
    p.add_argument("--real", type=int, metavar="N", help="on this machine's /proc with sleeping processes "
                   "started to make N processes, instead of generated trees")
    args = p.parse_args(argv)
    sizes = [args.real] if args.real else [int(s) for s in args.sizes.split(",")]
    for name, exe in (("node_exporter", NODE_EXPORTER), ("process-exporter", PROCESS_EXPORTER)):
        if exe is None:
            print(f"{name} is not installed: left out (scripts/install-test-packages.sh installs it)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="agent-procs-", dir=tree_parent()) as tmp:
        config = Path(tmp) / "process-exporter.yml"
        config.write_text(PROCESS_EXPORTER_CONFIG)
        floor = build("floor_processes", Path(tmp))
        for n in sizes:
            if args.real:
                results[n] = measure_real(n, Path(tmp), args, config, floor)
            else:
                tree = Path(tmp) / f"proc-{n}"
                start = time.monotonic()
                gen_processes.generate(tree, pids=n, seed=n)
                print(f"\n{n} processes (tree written in {time.monotonic() - start:.1f} s), backend "
                      f"{args.backend}, {args.rounds} rounds{', agent ' + args.agent_args if args.agent_args else ''}")
                results[n] = measure(tree, n, args.rounds, args.block_cpu, args.backend, config,
                                     tuple(args.agent_args.split()), not args.no_peers, floor)
            agent = results[n]["agent"]["cpu_ms"]
            print(f"  {'program':<18}{'CPU/scrape ms':>14}{'us/process':>12}{'x agent':>9}{'RSS MiB':>9}"
                  "  scrapes/round  rounds (ms)")
            for name, r in results[n].items():
                print(f"  {name:<18}{r['cpu_ms']:>14.2f}{r['cpu_ms'] * 1e3 / n:>12.2f}{r['cpu_ms'] / agent:>9.1f}"
                      f"{r['rss_mib']:>9.1f}  {r['scrapes_per_round']:>13}  {r['cpu_ms_all']}")
            if not args.real:
                shutil.rmtree(tree)
    print("\nsummary: CPU per scrape, median of rounds (ms); target: agent <= 1/50 of process-exporter at "
          "10,000, <= 1/10 of node_exporter")
    names = list(next(iter(results.values())))
    print("  " + f"{'processes':>10}" + "".join(f"{n:>18}" for n in names))
    for n, r in results.items():
        print("  " + f"{n:>10}" + "".join(f"{r[name]['cpu_ms']:>18.2f}" for name in names))
    if args.png:
        plot(results, args.png)
    return 0


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def measure_real(n: int, tmp: Path, args, config: Path, floor: Path | None) -> dict:
    """The three programs (and the floor) on this machine's /proc, with
    sleeping processes started to make about n."""
    idle = build("idle_processes", tmp)
    if idle is None:
        raise SystemExit("--real needs a C compiler")
    more = n - count_processes()
    if more < 0:
        raise SystemExit(f"--real {n}: this machine has {count_processes()} processes already")
    sleepers = subprocess.Popen([str(idle), str(more)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if sleepers.stdout.readline().strip() != b"ready":
            raise RuntimeError("idle_processes did not start")
        pids = count_processes()
        print(f"\n{pids} processes on this machine's /proc ({more} sleeping ones started), backend {args.backend}, "
              f"{args.rounds} rounds{', agent ' + args.agent_args if args.agent_args else ''}")
        return measure(Path("/proc"), pids, args.rounds, args.block_cpu, args.backend, config,
                       tuple(args.agent_args.split()), not args.no_peers, floor, real=True)
    finally:
        sleepers.stdin.close()
        sleepers.wait(30)


def plot(results: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in results[sizes[0]]:
        ax.plot(sizes, [results[n][name]["cpu_ms"] for n in sizes], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("processes")
    ax.set_ylabel("CPU per scrape (ms, median of rounds)")
    ax.set_title("processes: CPU per scrape against the number of processes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


if __name__ == "__main__":
    sys.exit(main())
