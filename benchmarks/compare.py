"""Side by side with node_exporter: the same procfs tree, the same headers
Prometheus 2.x sends, scrapes alternated between the two servers.

For each server: client-side wall time per scrape (median), server CPU per
scrape (utime+stime from /proc/PID/stat over the whole series, divided by
the number of scrapes), resident memory (VmRSS) after warm-up, its median
and maximum over 50 readings through the series, and at the end, and the
ratios node_exporter / agent.

    make bench-compare                       # this machine's /proc and the dense tree
    python benchmarks/compare.py --tree proc --scrapes 10000
    python benchmarks/compare.py --curve     # cost growth, 10 ... 10,000 interfaces, docs/growth.png
    python benchmarks/compare.py --tree proc --floor   # and a server that does nothing (floor_server.py)
    python benchmarks/compare.py --tree both --concurrent 64 --scrapes 10   # peak RSS, 64 scrapers at once

node_exporter (Debian's prometheus-node-exporter) is skipped with one line
when it is not installed.  Only 127.0.0.1 is used; every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_procfs  # noqa: E402

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
# The six sources, as the issue measures node_exporter: no netlink, so it
# reads /proc/net/dev like we do.
NODE_EXPORTER_FLAGS = [
    "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
    "--collector.diskstats", "--collector.netdev", "--no-collector.netdev.netlink",
    "--collector.loadavg", "--collector.stat",
]
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
DENSE = dict(cpus=256, interfaces=2000, disks=300)
MAX_SERIES_SECONDS = 600  # a bound on any one series of scrapes
RSS_SAMPLES = 50  # readings of each server's RSS over a series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line; 12 and 13 after ")".
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# The request line and headers as Prometheus 2.x sends them, on one
# keep-alive connection.
SCRAPE_REQUEST = ("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in PROMETHEUS_HEADERS.items())
                  + "\r\n").encode("latin-1")


class ScrapeConnection:
    """A minimal HTTP/1.1 client on a raw socket: sends the request, reads
    the head, then the body by Content-Length or chunked coding (Go's
    server chunks node_exporter's gzip body).  http.client parses headers
    through email.parser, ~100 us of the client's CPU a scrape: that is
    the client's cost, not the server's latency, and it would be added to
    both servers alike (Prometheus's own client is Go's, a few us)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # What was received, and how far it has been read: consumed bytes
        # are dropped once per response, not copied away per chunk.
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self._fill()
        line = bytes(self.buf[self.pos:end])
        self.pos = end + 2
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def get(self, request: bytes) -> tuple[int, dict, bytes]:
        del self.buf[:self.pos]
        self.pos = 0
        self.sock.sendall(request)
        status = int(self._line().split(b" ", 2)[1])
        headers = {}
        while line := self._line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            return status, headers, self._take(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            raise RuntimeError("response without Content-Length or chunked coding")
        chunks = []
        while size := int(self._line().split(b";", 1)[0], 16):
            chunks.append(self._take(size))
            self._line()
        while self._line():  # trailers
            pass
        return status, headers, b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


class Target:
    def __init__(self, name: str, argv: list[str], port: int):
        self.name = name
        self.port = port
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start")
                time.sleep(0.05)
        self.conn = ScrapeConnection(port)
        self.walls: list[float] = []

    def scrape(self) -> int:
        start = time.perf_counter()
        status, headers, body = self.conn.get(SCRAPE_REQUEST)
        self.walls.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"{self.name}: HTTP {status}")
        if headers.get(b"content-encoding") != b"gzip" or not body.startswith(b"\x1f\x8b"):
            raise RuntimeError(f"{self.name}: the body is not gzip")
        return len(body)

    def check_body(self) -> None:
        """One scrape, its body decompressed and looked at (outside the timed series)."""
        status, _, body = self.conn.get(SCRAPE_REQUEST)
        text = zlib.decompress(body, 31)
        if status != 200 or b"# TYPE node_load1 gauge" not in text:
            raise RuntimeError(f"{self.name}: unexpected exposition")

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def agent_command() -> list[str]:
    """The agent as its users start it: the installed console script (the
    systemd unit's and the image's ExecStart), on bytecode compiled ahead.

    A wheel's install writes the .pyc files; an editable install writes them
    at the first import, unless PYTHONDONTWRITEBYTECODE is set, and then
    every start compiles the sources again: 2.2 MiB more RSS, the
    compiler's heap left fragmented (measured 17.4 against 15.2 MiB at
    start).  So the benchmark compiles them first, whatever its environment."""
    import compileall

    import agent
    package = os.path.dirname(agent.__file__)
    if os.access(package, os.W_OK):
        # force: a source rewritten within the second its .pyc was written
        # passes the mtime check with the stale bytecode.
        if not compileall.compile_dir(package, quiet=2, force=True):
            raise RuntimeError(f"could not compile the agent's bytecode in {package}")
    else:
        print(f"note: {package} is not writable: the agent runs on the bytecode installed with it")
    script = Path(sys.executable).with_name("monitoring-agent")
    if script.exists():
        return [str(script)]
    print(f"note: no {script}: the agent runs as `python -m agent` (runpy: a little more RSS)")
    return [sys.executable, "-m", "agent"]


# The agent with the collectors that read what node_exporter reads above
# (its cpu and stat collectors are the agent's stat).
AGENT_FLAGS = ["--collector.disable-defaults", "--collector.stat", "--collector.meminfo",
               "--collector.diskstats", "--collector.netdev", "--collector.loadavg", "--collector.uptime"]


def start_agent(tree: Path, backend: str, *extra: str) -> Target:
    port = free_port()
    exe = agent_command()
    return Target("agent", [*exe, "--procfs", str(tree), "--listen", f"127.0.0.1:{port}",
                            "--backend", backend, "--log-level", "warning", *AGENT_FLAGS, *extra], port)


def start_node_exporter(tree: Path) -> Target | None:
    if NODE_EXPORTER is None:
        return None
    port = free_port()
    return Target("node_exporter", [NODE_EXPORTER, *NODE_EXPORTER_FLAGS, f"--path.procfs={tree}",
                                    f"--web.listen-address=127.0.0.1:{port}"], port)


def start_floor(tree: Path, read: bool) -> Target:
    port = free_port()
    argv = [sys.executable, str(HERE / "floor_server.py"), str(port)]
    return Target("floor+reads" if read else "floor", argv + ["--read", str(tree)] if read else argv, port)


def measure(tree: Path, scrapes: int, warmup: int, backend: str, with_node_exporter: bool = True,
            with_floor: bool = False) -> dict:
    targets = [start_agent(tree, backend)]
    ne = start_node_exporter(tree) if with_node_exporter else None
    if ne is not None:
        targets.append(ne)
    if with_floor:
        targets += [start_floor(tree, read=False), start_floor(tree, read=True)]
    try:
        for t in targets:
            t.check_body()
            for _ in range(warmup):
                t.scrape()
            t.walls.clear()
        before = {t.name: (cpu_seconds(t.proc.pid), rss_kib(t.proc.pid)) for t in targets}
        sizes = {}
        # RSS sampled through the series: Go's heap grows and shrinks with
        # its collector, so one reading at the end is a matter of timing.
        rss_samples = {t.name: [] for t in targets}
        every = max(1, scrapes // RSS_SAMPLES)
        deadline = time.monotonic() + MAX_SERIES_SECONDS
        done = 0
        for done in range(1, scrapes + 1):
            for t in targets:  # alternate, so both see the same machine noise
                sizes[t.name] = t.scrape()
            if done % every == 0:
                for t in targets:
                    rss_samples[t.name].append(rss_kib(t.proc.pid))
            if time.monotonic() > deadline:
                break
        out = {}
        for t in targets:
            cpu0, rss0 = before[t.name]
            out[t.name] = dict(
                scrapes=done,
                wall_ms=statistics.median(t.walls) * 1e3,
                cpu_ms=(cpu_seconds(t.proc.pid) - cpu0) / done * 1e3,
                rss_start_kib=rss0,
                rss_end_kib=rss_kib(t.proc.pid),
                rss_median_kib=statistics.median(rss_samples[t.name] or [rss0]),
                rss_max_kib=max(rss_samples[t.name] or [rss0]),
                body_bytes=sizes[t.name],
            )
        return out
    finally:
        for t in targets:
            t.stop()


def concurrent_peak(tree: Path, scrapers: int, scrapes: int, backend: str) -> tuple[int, int]:
    """The agent's peak and final RSS (KiB) after `scrapers` connections
    have each scraped `scrapes` times, all at once."""
    import threading
    # Room for every scraper and the connection check_body keeps open.
    agent = start_agent(tree, backend, "--max-connections", str(max(64, scrapers + 1)))
    errors = []

    def scraper():
        try:
            conn = ScrapeConnection(agent.port)
            for _ in range(scrapes):
                if conn.get(SCRAPE_REQUEST)[0] != 200:
                    raise RuntimeError("not 200")
            conn.close()
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    try:
        agent.check_body()
        threads = [threading.Thread(target=scraper) for _ in range(scrapers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(MAX_SERIES_SECONDS)
        if errors:
            raise RuntimeError(f"{len(errors)} scrapers failed: {errors[0]}")
        with open(f"/proc/{agent.proc.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        return int(status["VmHWM"].split()[0]), int(status["VmRSS"].split()[0])
    finally:
        agent.stop()


def print_table(title: str, result: dict) -> None:
    print(f"\n{title}")
    print(f"{'server':15s} {'scrapes':>8s} {'wall ms (median)':>17s} {'CPU ms/scrape':>14s} "
          f"{'RSS MiB: start':>15s} {'median':>7s} {'max':>6s} {'end':>6s} {'gzip bytes':>11s}")
    for name, r in result.items():
        print(f"{name:15s} {r['scrapes']:8d} {r['wall_ms']:17.3f} {r['cpu_ms']:14.3f} "
              f"{r['rss_start_kib'] / 1024:15.1f} {r['rss_median_kib'] / 1024:7.1f} "
              f"{r['rss_max_kib'] / 1024:6.1f} {r['rss_end_kib'] / 1024:6.1f} {r['body_bytes']:11d}")
    if "node_exporter" in result:
        a, n = result["agent"], result["node_exporter"]
        ratio = lambda x, y: f"{x / y:.1f}x" if y > 0 else "inf (agent below clock-tick resolution)"
        print(f"node_exporter / agent: wall {ratio(n['wall_ms'], a['wall_ms'])}, "
              f"CPU {ratio(n['cpu_ms'], a['cpu_ms'])}, "
              f"RSS {ratio(n['rss_median_kib'], a['rss_median_kib'])} (median of the series), "
              f"{ratio(n['rss_end_kib'], a['rss_end_kib'])} (at the end)")
    else:
        print("node_exporter: not installed (apt-get install prometheus-node-exporter); agent only")


def curve(points: list[int], scrapes: int, backend: str, png: Path | None) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in points:
            tree = Path(tmp) / f"if{n}"
            gen_procfs.generate(tree, cpus=16, interfaces=n, disks=16)
            # Enough scrapes that CPU time (counted in clock ticks) resolves.
            r = measure(tree, max(scrapes, min(500, 20_000 // n)), warmup=5, backend=backend)
            ne = r.get("node_exporter")
            rows.append((n, r["agent"]["cpu_ms"], r["agent"]["wall_ms"],
                         ne["cpu_ms"] if ne else None, ne["wall_ms"] if ne else None))
            print(f"{n:6d} interfaces: agent CPU {rows[-1][1]:.3f} ms wall {rows[-1][2]:.3f} ms"
                  + (f"; node_exporter CPU {rows[-1][3]:.3f} ms wall {rows[-1][4]:.3f} ms" if ne else ""),
                  flush=True)
    if len(rows) >= 2:
        (n0, c0, *_), (n1, c1, *_) = rows[-2], rows[-1]
        print(f"agent: {(c1 - c0) / (n1 - n0) * 1e3:.2f} us of CPU per additional interface "
              f"between {n0} and {n1}")
    if png is not None:
        plot(rows, png)
    return rows


def plot(rows, png: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs = [r[0] for r in rows]
    ax.plot(xs, [r[1] for r in rows], "o-", label="monitoring-agent, CPU per scrape")
    if all(r[3] is not None for r in rows):
        ax.plot(xs, [r[3] for r in rows], "s-", label="node_exporter 1.5, CPU per scrape")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network interfaces in /proc/net/dev (16 CPUs, 16 disks)")
    ax.set_ylabel("server CPU per gzip scrape (ms)")
    ax.set_title("Cost growth with the number of interfaces")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot written to {png}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="both", help="proc, dense, both, or a procfs directory")
    p.add_argument("--scrapes", type=int, default=1000)
    p.add_argument("--dense-scrapes", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--backend", default="c")
    p.add_argument("--curve", action="store_true", help="the growth curve instead")
    p.add_argument("--floor", action="store_true",
                   help="also alternate with benchmarks/floor_server.py (fixed body; and with the six reads)")
    p.add_argument("--curve-points", default="10,30,100,300,1000,3000,10000")
    p.add_argument("--curve-scrapes", type=int, default=50)
    p.add_argument("--png", default=str(HERE.parent / "docs" / "growth.png"))
    p.add_argument("--concurrent", metavar="N", type=int,
                   help="instead: the agent's peak RSS with N scrapers at once, --scrapes each")
    args = p.parse_args(argv)
    if args.concurrent:
        trees = {"proc": Path("/proc")}
        with tempfile.TemporaryDirectory() as tmp:
            if args.tree in ("dense", "both"):
                trees = {} if args.tree == "dense" else trees
                trees["dense"] = Path(tmp) / "proc"
                gen_procfs.generate(trees["dense"], **DENSE)
            elif args.tree != "proc":
                trees = {args.tree: Path(args.tree)}
            for name, tree in trees.items():
                peak, end = concurrent_peak(tree, args.concurrent, args.scrapes, args.backend)
                print(f"{name}: {args.concurrent} scrapers x {args.scrapes} scrapes at once: "
                      f"peak RSS {peak / 1024:.1f} MiB, after {end / 1024:.1f} MiB")
        return 0
    if NODE_EXPORTER is None:
        print("node_exporter: not installed (apt-get install prometheus-node-exporter); measuring the agent only")
    if args.curve:
        curve([int(x) for x in args.curve_points.split(",")], args.curve_scrapes, args.backend, Path(args.png))
        return 0
    if args.tree in ("proc", "both"):
        print_table(f"this machine's /proc, {args.scrapes} scrapes each",
                    measure(Path("/proc"), args.scrapes, args.warmup, args.backend, with_floor=args.floor))
    if args.tree in ("dense", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "proc"
            gen_procfs.generate(tree, **DENSE)
            print_table(f"dense tree ({DENSE['cpus']} CPUs, {DENSE['interfaces']} interfaces, "
                        f"{DENSE['disks']} disks), {args.dense_scrapes} scrapes each",
                        measure(tree, args.dense_scrapes, args.warmup, args.backend, with_floor=args.floor))
    if args.tree not in ("proc", "dense", "both"):
        print_table(f"{args.tree}, {args.scrapes} scrapes each",
                    measure(Path(args.tree), args.scrapes, args.warmup, args.backend, with_floor=args.floor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
