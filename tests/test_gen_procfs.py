"""benchmarks/gen_procfs.py: the generated tree parses on each backend with
the requested row counts, is deterministic and internally consistent, and
bump() ages it consistently."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agent.procfs import layout as L

_SPEC = importlib.util.spec_from_file_location(
    "gen_procfs", Path(__file__).parent.parent / "benchmarks" / "gen_procfs.py")
gen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gen)

FILES = ("stat", "meminfo", "diskstats", "net/dev", "loadavg", "uptime")


def parse_tree(backend, root: Path) -> dict:
    def rows(source, rel):
        out = getattr(backend, "parse_" + source)((root / rel).read_bytes())
        size = getattr(L, source.upper()).size
        assert len(out) % size == 0
        return getattr(L, "decode_" + source)(out, len(out) // size)
    return dict(
        stat=L.decode_stat(backend.parse_stat((root / "stat").read_bytes())),
        cpus=L.decode_cpus(backend.parse_stat((root / "stat").read_bytes())),
        meminfo=L.decode_meminfo(backend.parse_meminfo((root / "meminfo").read_bytes())),
        diskstats=rows("diskstats", "diskstats"),
        netdev=rows("netdev", "net/dev"),
        loadavg=L.decode_loadavg(backend.parse_loadavg((root / "loadavg").read_bytes())),
        uptime=L.decode_uptime(backend.parse_uptime((root / "uptime").read_bytes())),
    )


def per_cpu(root: Path) -> list:
    return [list(map(int, ln.split()[1:])) for ln in (root / "stat").read_text().splitlines()
            if ln.startswith("cpu") and ln[3].isdigit()]


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Path:
    """The benchmarks' tree: 256 CPUs, 2,000 interfaces, 300 disks."""
    return gen.generate(tmp_path_factory.mktemp("dense") / "proc", cpus=256, interfaces=2000, disks=300)


def test_dense_tree_parses_with_the_requested_rows(backend, dense):
    t = parse_tree(backend, dense)
    assert len(per_cpu(dense)) == 256
    assert len(t["netdev"]) == 2000
    assert len(t["diskstats"]) == 300
    assert t["stat"].present == (1 << 17) - 1               # 10 cpu fields, intr, 5 scalars, cpu count
    assert t["stat"].cpu_count == 256
    assert [[r.cpu, r.present] for r in t["cpus"]] == [[i, (1 << 10) - 1] for i in range(256)]
    assert t["meminfo"].present == (1 << 18) - 1            # the 6.x key set has them all
    assert all(r.present == (1 << 17) - 1 for r in t["diskstats"])   # 20-field lines
    assert len({r.name for r in t["netdev"]}) == 2000
    assert max(r.name_len for r in t["netdev"]) <= 15      # IFNAMSIZ - 1


@pytest.mark.parametrize("cpus, interfaces, disks", [(1, 0, 0), (1, 1, 1), (2, 3, 2), (4, 4, 3), (12, 50, 40)])
def test_small_trees(backend, tmp_path, cpus, interfaces, disks):
    t = parse_tree(backend, gen.generate(tmp_path, cpus=cpus, interfaces=interfaces, disks=disks))
    assert len(per_cpu(tmp_path)) == cpus == t["stat"].cpu_count
    assert (len(t["netdev"]), len(t["diskstats"])) == (interfaces, disks)


def test_consistent(backend, dense):
    t = parse_tree(backend, dense)
    cpus = per_cpu(dense)
    stat = t["stat"]
    assert [getattr(stat, f) for f in L.STAT_CPU_FIELDS] == [sum(c) for c in zip(*cpus)]
    up_cs = round(t["uptime"].uptime_seconds * 100)
    for c in cpus:
        assert up_cs - 100 <= sum(c[:8]) <= up_cs           # guest is inside user
        assert c[8] <= c[0]
    assert round(t["uptime"].idle_seconds * 100) == stat.cpu_idle
    m = t["meminfo"]
    assert m.slab_kb == m.sreclaimable_kb + m.sunreclaim_kb
    assert m.active_kb > m.active_file_kb and m.inactive_kb > m.inactive_file_kb
    assert 0 < m.mem_free_kb < m.mem_available_kb < m.mem_total_kb
    nets = {r.name: r for r in t["netdev"]}
    assert nets[b"lo"].rx_bytes == nets[b"lo"].tx_bytes
    for f in L.NETDEV_BIT:
        assert getattr(nets[b"bond0"], f) == getattr(nets[b"eno1np0"], f) + getattr(nets[b"eno2np1"], f)
    for r in t["diskstats"]:
        assert r.io_time_ms <= t["uptime"].uptime_seconds * 1000
    assert t["loadavg"].runnable == stat.procs_running


def test_deterministic(tmp_path):
    a = gen.generate(tmp_path / "a", cpus=16, interfaces=40, disks=20, seed=7)
    b = gen.generate(tmp_path / "b", cpus=16, interfaces=40, disks=20, seed=7)
    c = gen.generate(tmp_path / "c", cpus=16, interfaces=40, disks=20, seed=8)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in FILES)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in FILES)
    gen.bump(a, 30)
    gen.bump(b, 30)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in FILES)


def test_bump_advances_every_counter_consistently(backend, tmp_path):
    root = gen.generate(tmp_path, cpus=32, interfaces=120, disks=60, seed=3)
    before, cpus_before = parse_tree(backend, root), per_cpu(root)
    gen.bump(root, 10)
    after, cpus_after = parse_tree(backend, root), per_cpu(root)

    assert round((after["uptime"].uptime_seconds - before["uptime"].uptime_seconds) * 100) == 1000
    idle_delta = 0
    for b, a in zip(cpus_before, cpus_after):
        d = [y - x for x, y in zip(b, a)]
        assert min(d) >= 0
        assert sum(d[:8]) == 1000                            # exactly 10 s of USER_HZ ticks
        assert 0 < d[3] < 1000                               # neither idle nor saturated
        idle_delta += d[3]
    assert round((after["uptime"].idle_seconds - before["uptime"].idle_seconds) * 100) == idle_delta
    assert after["stat"].btime == before["stat"].btime
    assert [getattr(after["stat"], f) for f in L.STAT_CPU_FIELDS] == [sum(c) for c in zip(*cpus_after)]
    for f in ("ctxt", "processes"):
        assert getattr(after["stat"], f) > getattr(before["stat"], f)

    # A counter grows at about its average rate since boot (x 0.5 to 1.5), so
    # any counter that averaged more than 1 per 2.5 s must have moved in 10 s.
    moving = before["uptime"].uptime_seconds / 2.5
    checked = 0
    for rows in ("diskstats", "netdev"):
        assert [r.name for r in after[rows]] == [r.name for r in before[rows]]
        for b, a in zip(before[rows], after[rows]):
            for f in (L.DISK_BIT if rows == "diskstats" else L.NETDEV_BIT):
                if f == "io_in_progress":
                    continue
                assert getattr(a, f) >= getattr(b, f), (b.name, f)
                if getattr(b, f) > moving:
                    assert getattr(a, f) > getattr(b, f), (b.name, f)
                    checked += 1
    assert checked > 500
    for a, b in zip(after["diskstats"], before["diskstats"]):
        assert a.io_time_ms - b.io_time_ms <= 10_000         # busy at most 100% of 10 s
    nets = {r.name: r for r in after["netdev"]}
    assert nets[b"lo"].rx_bytes == nets[b"lo"].tx_bytes
    for f in L.NETDEV_BIT:
        assert getattr(nets[b"bond0"], f) == getattr(nets[b"eno1np0"], f) + getattr(nets[b"eno2np1"], f)
    assert after["meminfo"].mem_total_kb == before["meminfo"].mem_total_kb
    assert after["meminfo"].slab_kb == after["meminfo"].sreclaimable_kb + after["meminfo"].sunreclaim_kb


def test_command_line(tmp_path, capsys):
    assert gen.main([str(tmp_path), "--cpus", "3", "--interfaces", "5", "--disks", "4", "--seed", "1"]) == 0
    assert all((tmp_path / f).is_file() for f in FILES)
    before = (tmp_path / "uptime").read_text()
    assert gen.main([str(tmp_path), "--bump", "2.5"]) == 0
    assert float((tmp_path / "uptime").read_text().split()[0]) == pytest.approx(float(before.split()[0]) + 2.5)
    assert gen.main([str(tmp_path / "missing"), "--bump", "1"]) == 1
    assert "gen_procfs:" in capsys.readouterr().err


# -- the whole host of the side-by-side comparison ----------------------------

HOST = dict(cpus=16, interfaces=20, disks=30, mounts=150, sockets=2, textfiles=3)


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> dict:
    return gen.generate_host(tmp_path_factory.mktemp("host"), **HOST)


def collect(name: str, paths: dict, backend=None) -> dict:
    """The agent's collector on the host: {family name: samples}."""
    import time

    from agent.collectors import BY_NAME, Context, default_options
    from agent.config import Config
    from agent.cpu import CpuWindow

    entry = BY_NAME[name]
    options = dict(default_options(entry), directory=str(paths["textfile"])) if name == "textfile" \
        else default_options(entry)
    collector = entry.build(Config(), CpuWindow(1.0), options)
    families = collector.collect(Context(str(paths["proc"]), str(paths["sys"]), str(paths["root"]), backend,
                                         time.monotonic() + 30))
    return {family.desc.name: family.samples for family in families}


def test_pressure_has_every_resource_and_full_within_some(tmp_path):
    root = gen.generate(tmp_path, cpus=8, interfaces=4, disks=4)
    families = collect("pressure", {"proc": root, "sys": tmp_path, "root": tmp_path, "textfile": tmp_path})
    totals = {name: samples[0][1] for name, samples in families.items()}
    assert set(totals) == {f"node_pressure_{n}_seconds" for n in (
        "cpu_waiting", "io_waiting", "io_stalled", "memory_waiting", "memory_stalled", "irq_stalled")}
    assert 0 < totals["node_pressure_io_stalled_seconds"] <= totals["node_pressure_io_waiting_seconds"]
    assert totals["node_pressure_memory_stalled_seconds"] <= totals["node_pressure_memory_waiting_seconds"]
    assert (root / "pressure" / "irq").read_text().startswith("full ")   # irq has no `some` line
    gen.bump(root, 10)
    later = {name: samples[0][1] for name, samples in collect(
        "pressure", {"proc": root, "sys": tmp_path, "root": tmp_path, "textfile": tmp_path}).items()}
    assert all(later[name] >= totals[name] for name in totals)
    assert later["node_pressure_cpu_waiting_seconds"] > totals["node_pressure_cpu_waiting_seconds"]


def test_host_mounts_exist_under_the_rootfs_and_both_tables_agree(host):
    info = (host["proc"] / "1" / "mountinfo").read_text().splitlines()
    mounts = (host["proc"] / "1" / "mounts").read_text().splitlines()
    assert len(info) == len(mounts) == HOST["mounts"]
    assert [ln.split()[4] for ln in info] == [ln.split()[1] for ln in mounts]
    assert len({ln.split()[4] for ln in info}) == HOST["mounts"]
    assert len({ln.split(" - ")[1].split()[0] for ln in info}) >= 10          # assorted types
    families = collect("filesystem", host)
    errors = families["node_filesystem_device_error"]
    kept = [labels for labels, _ in errors]
    assert 40 < len(kept) < HOST["mounts"]                  # the default exclusions leave some out
    assert all(value == 0 for _, value in errors)           # every kept mount point is there to statfs
    readonly = dict(families["node_filesystem_readonly"])
    assert readonly[("/dev/nvme1n1", "/mnt/backup copies", "xfs")] == 1     # \040 decoded; ro mount
    assert readonly[("/dev/nvme0n1p2", "/", "ext4")] == 0


def test_host_sysfs_has_a_chip_per_socket_and_drive_and_a_cooling_device_per_cpu(backend, host):
    hwmon = collect("hwmon", host, backend)
    chips = {labels[0] for labels, _ in hwmon["node_hwmon_chip_names"]}
    drives = HOST["disks"] * 3 // 5 // 3                    # whole NVMe disks in diskstats
    assert len(chips) == HOST["sockets"] + drives + 4       # coretemp, nvme, Super I/O, 2 PSUs, power meter
    cores = HOST["cpus"] // HOST["sockets"] // 2
    assert sum(labels[0] == "platform_coretemp_0" for labels, _ in hwmon["node_hwmon_temp_celsius"]) == cores + 1
    thermal = collect("thermal_zone", host)
    assert len(thermal["node_thermal_zone_temp"]) == 1 + HOST["sockets"]
    assert len(thermal["node_cooling_device_cur_state"]) == HOST["cpus"] + 1
    assert (("16", "intel_powerclamp"), -1) in thermal["node_cooling_device_cur_state"]
    textfile = collect("textfile", host)
    assert len(textfile["nvme_temperature_celsius"]) == drives
    assert textfile["node_textfile_scrape_error"] == [((), 0)]


def test_host_deterministic(tmp_path):
    a = gen.generate_host(tmp_path / "a", **HOST, seed=4)
    b = gen.generate_host(tmp_path / "b", **HOST, seed=4)
    for rel in ("proc/1/mountinfo", "sys/class/hwmon/hwmon0/temp2_input", "textfile/smartmon.prom",
                "proc/pressure/io"):
        assert (a["proc"].parent / rel).read_bytes() == (b["proc"].parent / rel).read_bytes(), rel
