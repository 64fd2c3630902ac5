"""Side by side with node_exporter: the same host trees, the same
collectors, the same headers Prometheus 2.x sends, scrapes alternated
between the two servers.

Both run every collector of the agent's registration table and
node_exporter's collectors that read the same files
(NODE_EXPORTER_COLLECTORS), with the same device and mount filters, on
this machine's /proc, /sys and / (and a small textfile directory), and on
a generated dense host (benchmarks/gen_procfs.py: generate_host).

For each server: client-side wall time per scrape (median and p99), server
CPU per scrape (utime+stime from /proc/PID/stat over the whole series,
divided by the number of scrapes) and per series, the series it exposes,
resident memory (VmRSS) after warm-up, its median and maximum over 50
readings through the series, and at the end; the ratios node_exporter /
agent against TARGETS, and a warning table of the families both expose
with different series counts (the collectors would not match).

    make bench-compare                       # this machine and the dense host, then the growth curve
    python benchmarks/compare.py --tree proc --scrapes 10000
    python benchmarks/compare.py --curve     # cost growth, 10 ... 10,000 interfaces, docs/growth.png
    python benchmarks/compare.py --tree proc --floor   # and a server that does nothing (floor_server.py)
    python benchmarks/compare.py --tree both --concurrent 64 --scrapes 10   # peak RSS, 64 scrapers at once
    python benchmarks/compare.py --tree dense --per-collector   # one collector at a time on both sides

node_exporter (Debian's prometheus-node-exporter) is skipped with one line
when it is not installed.  Only 127.0.0.1 is used; every loop is bounded.
"""

from __future__ import annotations

import argparse
import collections
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
from benchutil import CURVE_HOST, DENSE_HOST  # noqa: E402

from agent.collectors import TABLE  # noqa: E402
from agent.collectors import filesystem as _filesystem  # noqa: E402
from agent.config import Config  # noqa: E402

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
# Each of the agent's collectors (agent.collectors.TABLE) and node_exporter
# 1.5's collectors that read the same files (docs/NODE_EXPORTER_COMPAT.md).
# The agent's stat is node_exporter's cpu and stat; its uptime has no
# collector of its own there (node_boot_time_seconds comes from stat).
NODE_EXPORTER_COLLECTORS = {
    "stat": ("cpu", "stat"),
    "meminfo": ("meminfo",),
    "diskstats": ("diskstats",),
    "netdev": ("netdev",),
    "loadavg": ("loadavg",),
    "uptime": (),
    "pressure": ("pressure",),
    "thermal_zone": ("thermal_zone",),
    "textfile": ("textfile",),
    "hwmon": ("hwmon",),
    "filesystem": ("filesystem",),
    # Compared in runs of their own, against their own peers and trees:
    # benchmarks/compare_processes.py (process-exporter, node_exporter's
    # processes), compare_cgroups.py (a C floor), test_bench_systemd.py.
    "processes": None,
    "cgroups": None,
    "systemd": None,
}
if set(NODE_EXPORTER_COLLECTORS) != {entry.name for entry in TABLE}:
    # A collector added to the table must be given its node_exporter
    # counterpart here, or the comparison is of different work.
    raise SystemExit(f"compare.py: NODE_EXPORTER_COLLECTORS {sorted(NODE_EXPORTER_COLLECTORS)} does not "
                     f"match agent.collectors.TABLE {[entry.name for entry in TABLE]}")
# What node_exporter / agent must reach, per tree (issue 13): CPU per
# scrape, and RSS on the dense host.
TARGETS = {"proc": {"cpu": 5.0}, "dense": {"cpu": 25.0, "rss": 2.0}}
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
DENSE = DENSE_HOST
MAX_SERIES_SECONDS = 600  # a bound on any one series of scrapes
RSS_SAMPLES = 50  # readings of each server's RSS over a series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) seconds of a process."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line; 12 and 13 after ")".
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


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
        """One scrape, its body decompressed and its series counted per
        sample name (outside the timed series): `families`, `series`."""
        status, _, body = self.conn.get(SCRAPE_REQUEST)
        if status != 200:
            raise RuntimeError(f"{self.name}: HTTP {status}")
        self.families = count_series(zlib.decompress(body, 31))
        self.series = sum(self.families.values())

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


def count_series(text: bytes) -> collections.Counter:
    """Samples per sample name in an exposition (either format)."""
    counts = collections.Counter()
    for line in text.split(b"\n"):
        if line and not line.startswith(b"#"):
            counts[line.split(b"{", 1)[0].split(b" ", 1)[0].decode()] += 1
    return counts


class Host:
    """Where both servers read: procfs, sysfs, rootfs and a textfile directory."""

    def __init__(self, name: str, procfs, sysfs, rootfs, textfile):
        self.name = name
        self.procfs, self.sysfs, self.rootfs, self.textfile = map(str, (procfs, sysfs, rootfs, textfile))


def machine_host(tmp: Path) -> Host:
    """This machine's /proc, /sys and /, and a textfile directory of a few files."""
    return Host("proc", "/proc", "/sys", "/", gen_procfs.write_textfiles(tmp / "textfile-proc", 3, []))


def dense_host(tmp: Path, **sizes) -> Host:
    paths = gen_procfs.generate_host(tmp / "dense", **(sizes or DENSE))
    return Host("dense", paths["proc"], paths["sys"], paths["root"], paths["textfile"])


def shared_filters() -> dict:
    """The device and mount filters both servers get, by meaning: the
    agent's defaults (Debian's node_exporter has its own: all of /run, /mnt
    and /media and the interface lo left out)."""
    config = Config()
    return dict(disk_exclude=config.disk_exclude, net_exclude=config.net_exclude,
                mount_points_exclude=_filesystem.DEFAULT_MOUNT_POINTS_EXCLUDE,
                fs_types_exclude=_filesystem.DEFAULT_FS_TYPES_EXCLUDE)


def agent_flags(host: Host, collectors) -> list[str]:
    f = shared_filters()
    return ["--procfs", host.procfs, "--sysfs", host.sysfs, "--rootfs", host.rootfs,
            "--collector.disable-defaults", *(f"--collector.{name}" for name in collectors),
            f"--collector.textfile.directory={host.textfile}",
            f"--disk-exclude={f['disk_exclude']}", f"--net-exclude={f['net_exclude']}",
            f"--collector.filesystem.mount-points-exclude={f['mount_points_exclude']}",
            f"--collector.filesystem.fs-types-exclude={f['fs_types_exclude']}"]


def node_exporter_flags(host: Host, collectors) -> list[str]:
    f = shared_filters()
    names = [ne for name in collectors for ne in NODE_EXPORTER_COLLECTORS[name]]
    # No netlink: it asks the running kernel for its interfaces, where the
    # agent (and node_exporter without it) read <procfs>/net/dev.
    return ["--collector.disable-defaults", *(f"--collector.{name}" for name in names),
            "--no-collector.netdev.netlink",
            f"--path.procfs={host.procfs}", f"--path.sysfs={host.sysfs}", f"--path.rootfs={host.rootfs}",
            f"--collector.textfile.directory={host.textfile}",
            f"--collector.diskstats.device-exclude={f['disk_exclude']}",
            f"--collector.netdev.device-exclude={f['net_exclude']}",
            f"--collector.filesystem.mount-points-exclude={f['mount_points_exclude']}",
            f"--collector.filesystem.fs-types-exclude={f['fs_types_exclude']}"]


ALL = tuple(name for name, theirs in NODE_EXPORTER_COLLECTORS.items() if theirs is not None)


def start_agent(host: Host, backend: str, *extra: str, collectors=ALL) -> Target:
    port = free_port()
    exe = agent_command()
    return Target("agent", [*exe, "--listen", f"127.0.0.1:{port}", "--backend", backend,
                            "--log-level", "warning", *agent_flags(host, collectors), *extra], port)


def start_node_exporter(host: Host, collectors=ALL) -> Target | None:
    if NODE_EXPORTER is None:
        return None
    port = free_port()
    return Target("node_exporter", [NODE_EXPORTER, *node_exporter_flags(host, collectors),
                                    f"--web.listen-address=127.0.0.1:{port}"], port)


def start_floor(host: Host, read: bool) -> Target:
    port = free_port()
    argv = [sys.executable, str(HERE / "floor_server.py"), str(port)]
    return Target("floor+reads" if read else "floor", argv + ["--read", host.procfs] if read else argv, port)


def measure(host: Host, scrapes: int, warmup: int, backend: str, with_node_exporter: bool = True,
            with_floor: bool = False, collectors=ALL) -> dict:
    targets = [start_agent(host, backend, collectors=collectors)]
    ne = start_node_exporter(host, collectors) if with_node_exporter else None
    if ne is not None:
        targets.append(ne)
    if with_floor:
        targets += [start_floor(host, read=False), start_floor(host, read=True)]
    try:
        for t in targets:
            t.check_body()
            for _ in range(warmup):
                t.scrape()
            t.walls.clear()
        before = {t.name: (cpu_times(t.proc.pid), rss_kib(t.proc.pid)) for t in targets}
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
            (user0, sys0), rss0 = before[t.name]
            user, system = cpu_times(t.proc.pid)
            cpu_ms = (user + system - user0 - sys0) / done * 1e3
            walls = sorted(t.walls)
            out[t.name] = dict(
                scrapes=done,
                wall_ms=statistics.median(walls) * 1e3,
                wall_p99_ms=walls[min(len(walls) - 1, int(len(walls) * 0.99))] * 1e3,
                cpu_ms=cpu_ms,
                # The kernel's share: system calls (reads, statfs, the socket).
                cpu_sys_ms=(system - sys0) / done * 1e3,
                series=t.series,
                cpu_us_per_series=cpu_ms * 1e3 / max(t.series, 1),
                rss_start_kib=rss0,
                rss_end_kib=rss_kib(t.proc.pid),
                rss_median_kib=statistics.median(rss_samples[t.name] or [rss0]),
                rss_max_kib=max(rss_samples[t.name] or [rss0]),
                body_bytes=sizes[t.name],
                families=t.families,
            )
        return out
    finally:
        for t in targets:
            t.stop()


def family_mismatches(result: dict, tolerance: float = 0.1) -> list[tuple[str, int, int]]:
    """Families both servers expose whose series counts differ by more
    than `tolerance` (a share of the larger): (name, agent, node_exporter)."""
    if "node_exporter" not in result:
        return []
    a, n = result["agent"]["families"], result["node_exporter"]["families"]
    return [(name, a[name], n[name]) for name in sorted(a.keys() & n.keys())
            if abs(a[name] - n[name]) > tolerance * max(a[name], n[name])]


def ratios(result: dict) -> dict:
    """node_exporter / agent: CPU and wall per scrape, RSS at the end and
    over the series (median)."""
    a, n = result["agent"], result["node_exporter"]

    def ratio(x, y):
        return x / y if y > 0 else float("inf")
    return dict(cpu=ratio(n["cpu_ms"], a["cpu_ms"]), wall=ratio(n["wall_ms"], a["wall_ms"]),
                rss=ratio(n["rss_end_kib"], a["rss_end_kib"]),
                rss_median=ratio(n["rss_median_kib"], a["rss_median_kib"]))


def concurrent_peak(host: Host, scrapers: int, scrapes: int, backend: str) -> tuple[int, int]:
    """The agent's peak and final RSS (KiB) after `scrapers` connections
    have each scraped `scrapes` times, all at once."""
    import threading
    # Room for every scraper and the connection check_body keeps open.
    agent = start_agent(host, backend, "--max-connections", str(max(64, scrapers + 1)))
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


def print_table(title: str, result: dict, tree: str | None = None) -> list[str]:
    """The table, the ratios against TARGETS[tree], and the warning table;
    returns the targets not met."""
    print(f"\n{title}")
    print(f"{'server':14s} {'scrapes':>7s} {'series':>7s} {'wall ms':>8s} {'p99 ms':>8s} {'CPU ms':>8s} "
          f"{'of it sys':>9s} {'CPU us/series':>13s} {'RSS MiB: start':>14s} {'median':>7s} {'max':>6s} {'end':>6s} {'gzip bytes':>10s}")
    for name, r in result.items():
        print(f"{name:14s} {r['scrapes']:7d} {r['series']:7d} {r['wall_ms']:8.3f} {r['wall_p99_ms']:8.3f} "
              f"{r['cpu_ms']:8.3f} {r['cpu_sys_ms']:9.3f} {r['cpu_us_per_series']:13.3f} {r['rss_start_kib'] / 1024:14.1f} "
              f"{r['rss_median_kib'] / 1024:7.1f} {r['rss_max_kib'] / 1024:6.1f} {r['rss_end_kib'] / 1024:6.1f} "
              f"{r['body_bytes']:10d}")
    if "node_exporter" not in result:
        print("node_exporter: not installed (apt-get install prometheus-node-exporter); agent only")
        return []
    r = ratios(result)
    print(f"node_exporter / agent: CPU per scrape {r['cpu']:.1f}x, wall (median) {r['wall']:.1f}x, "
          f"RSS {r['rss']:.2f}x at the end ({r['rss_median']:.2f}x median of the series)")
    missed = []
    for key, target in TARGETS.get(tree, {}).items():
        met = r[key] >= target
        print(f"  target {key}: at least {target:g}x: {'met' if met else 'NOT MET'} ({r[key]:.2f}x)")
        if not met:
            missed.append(f"{tree} {key} {r[key]:.2f}x < {target:g}x")
    a, n = result["agent"]["families"], result["node_exporter"]["families"]
    shared = a.keys() & n.keys()
    print(f"  families: {len(shared)} on both sides ({sum(a[k] for k in shared)} series in the agent, "
          f"{sum(n[k] for k in shared)} in node_exporter); agent only {len(a.keys() - shared)} "
          f"({sum(a[k] for k in a.keys() - shared)} series), node_exporter only {len(n.keys() - shared)} "
          f"({sum(n[k] for k in n.keys() - shared)} series)")
    mismatches = family_mismatches(result)
    if mismatches:
        print("  WARNING: families both expose with different series counts (are the collectors the same?):")
        print(f"  {'family':60s} {'agent':>7s} {'node_exporter':>13s}")
        for name, x, y in mismatches:
            print(f"  {name:60s} {x:7d} {y:13d}")
    return missed


def curve(points: list[int], scrapes: int, backend: str, png: Path | None) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in points:
            host = dense_host(Path(tmp) / f"if{n}", interfaces=n, **CURVE_HOST)
            # Enough scrapes that CPU time (counted in clock ticks) resolves.
            r = measure(host, max(scrapes, min(500, 20_000 // n)), warmup=5, backend=backend)
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


def per_collector(host: Host, scrapes: int, warmup: int, backend: str) -> None:
    """Each collector alone on both sides (with node_exporter's
    counterparts), alternated as measure() does: where the time goes."""
    print(f"\n{host.name}: one collector at a time, {scrapes} scrapes each")
    print(f"{'collector':14s} {'agent series':>12s} {'CPU ms':>8s} {'of it sys':>9s} {'us/series':>9s} "
          f"{'node_exporter series':>20s} {'CPU ms':>8s} {'of it sys':>9s} {'us/series':>9s} {'ratio':>6s}")
    for name in ALL:
        r = measure(host, scrapes, warmup, backend, collectors=(name,))
        a, n = r["agent"], r.get("node_exporter")
        line = f"{name:14s} {a['series']:12d} {a['cpu_ms']:8.3f} {a['cpu_sys_ms']:9.3f} {a['cpu_us_per_series']:9.3f}"
        if n is not None:
            line += (f" {n['series']:20d} {n['cpu_ms']:8.3f} {n['cpu_sys_ms']:9.3f} {n['cpu_us_per_series']:9.3f} "
                     f"{n['cpu_ms'] / max(a['cpu_ms'], 1e-9):6.1f}")
        print(line, flush=True)


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
    ax.set_xlabel("network interfaces in /proc/net/dev ({cpus} CPUs, {disks} disks, {mounts} mounts; "
                  "every collector)".format(**CURVE_HOST))
    ax.set_ylabel("server CPU per gzip scrape (ms)")
    ax.set_title("Cost growth with the number of interfaces")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot written to {png}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default="both", choices=("proc", "dense", "both"),
                   help="this machine (proc), the generated dense host, or both")
    p.add_argument("--scrapes", type=int, default=1000)
    p.add_argument("--dense-scrapes", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--backend", default="c")
    p.add_argument("--curve", action="store_true", help="the growth curve instead")
    p.add_argument("--per-collector", action="store_true", help="instead: one collector at a time")
    p.add_argument("--collectors", default=",".join(ALL),
                   help="the agent's collectors to run (node_exporter's counterparts on its side); default all")
    p.add_argument("--floor", action="store_true",
                   help="also alternate with benchmarks/floor_server.py (fixed body; and with the six reads)")
    p.add_argument("--curve-points", default="10,30,100,300,1000,3000,10000")
    p.add_argument("--curve-scrapes", type=int, default=50)
    p.add_argument("--png", default=str(HERE.parent / "docs" / "growth.png"))
    p.add_argument("--concurrent", metavar="N", type=int,
                   help="instead: the agent's peak RSS with N scrapers at once, --scrapes each")
    args = p.parse_args(argv)
    collectors = tuple(name for name in args.collectors.split(",") if name)
    if not collectors or set(collectors) - set(ALL):
        p.error(f"--collectors: a comma-separated list of {', '.join(ALL)}")
    if NODE_EXPORTER is None:
        print("node_exporter: not installed (apt-get install prometheus-node-exporter); measuring the agent only")
    if args.curve:
        curve([int(x) for x in args.curve_points.split(",")], args.curve_scrapes, args.backend, Path(args.png))
        return 0
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        hosts = []
        if args.tree in ("proc", "both"):
            hosts.append((machine_host(Path(tmp)), args.scrapes))
        if args.tree in ("dense", "both"):
            hosts.append((dense_host(Path(tmp)), args.dense_scrapes))
        for host, scrapes in hosts:
            if args.concurrent:
                peak, end = concurrent_peak(host, args.concurrent, args.scrapes, args.backend)
                print(f"{host.name}: {args.concurrent} scrapers x {args.scrapes} scrapes at once: "
                      f"peak RSS {peak / 1024:.1f} MiB, after {end / 1024:.1f} MiB")
            elif args.per_collector:
                per_collector(host, scrapes, args.warmup, args.backend)
            else:
                title = ("this machine's /proc, /sys and /" if host.name == "proc" else
                         "dense host ({cpus} CPUs, {interfaces} interfaces, {disks} disks, {mounts} mounts, "
                         "{sockets} sockets' sensors, {textfiles} cron textfiles)".format(**DENSE))
                which = "every collector" if collectors == ALL else "collectors " + ", ".join(collectors)
                missed += print_table(f"{title}, {which}, {scrapes} scrapes each",
                                      measure(host, scrapes, args.warmup, args.backend, with_floor=args.floor,
                                              collectors=collectors),
                                      host.name)
    if missed:
        print("\ntargets not met: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
