"""/proc/pressure: the parser's table of docs/PARSERS.md cases, then the
agent (on both backends) against node_exporter 1.5.0 on every fixture tree
that has the files and on a copy of this machine's /proc/pressure, and
what a user sees where a file is missing, short or malformed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.procfs import layout as L
from agent.procfs.pressure import Pressure, parse_pressure
from agentproc import AgentProcess
from oracle import agent_once, assert_same_families, node_exporter_on
from test_e2e import promtool_check
from trees import FIXTURES, procfs_trees

HOST_TREES = sorted(p for p in (FIXTURES / "procfs-host").iterdir() if (p / "pressure").is_dir())
U64 = 2**64 - 1
LINE = b"avg10=0.00 avg60=0.05 avg300=0.11 total="
NODE_EXPORTER_FAMILIES = {
    "node_pressure_cpu_waiting_seconds_total", "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total", "node_pressure_memory_waiting_seconds_total",
    "node_pressure_memory_stalled_seconds_total",
}
IRQ = "node_pressure_irq_stalled_seconds_total"


def some(total: int) -> bytes:
    return b"some " + LINE + str(total).encode() + b"\n"


def full(total: int) -> bytes:
    return b"full " + LINE + str(total).encode() + b"\n"


CASES = [
    ("empty", b"", (L.EMISSING, 0)),
    ("blank lines only", b"\n\n", (L.EMISSING, 0)),
    ("only unknown line kinds", b"none " + LINE + b"5\n", (L.EMISSING, 0)),
    ("valid some and full", some(91233122) + full(81233123), Pressure(91233122, 81233123)),
    ("cpu before 5.13: some only", some(312331229), Pressure(312331229, None)),
    ("irq: full only", full(71233123), Pressure(None, 71233123)),
    ("full before some", full(2) + some(1), Pressure(1, 2)),
    ("largest total", some(U64), Pressure(U64, None)),
    ("total past 64 bits", some(U64 + 1), (L.ERANGE, 1)),
    ("total with a sign", b"some " + LINE + b"+5\n", (L.EFORMAT, 1)),
    ("total not a number", b"some " + LINE + b"5x\n", (L.EFORMAT, 1)),
    ("total empty", b"some " + LINE + b"\n", (L.EFORMAT, 1)),
    ("no total field", b"some avg10=0.00 avg60=0.05 avg300=0.11\n", (L.EFORMAT, 1)),
    ("averages out of order", b"some avg60=0.05 avg10=0.00 avg300=0.11 total=5\n", (L.EFORMAT, 1)),
    ("average not a decimal", b"some avg10=x avg60=0.05 avg300=0.11 total=5\n", (L.EFORMAT, 1)),
    ("total where avg300 belongs", b"some avg10=0.00 avg60=0.05 total=5 avg300=0.11\n", (L.EFORMAT, 1)),
    ("second some line", some(1) + full(2) + some(3), (L.EFORMAT, 3)),
    ("second full line", full(1) + full(2), (L.EFORMAT, 2)),
    ("bad full after a good some", some(1) + b"full " + LINE + b"-1\n", (L.EFORMAT, 2)),
    ("a trailing blank line", some(7) + b"\n", Pressure(7, None)),
    ("appended field", b"some " + LINE + b"7 avg900=1.00\n", Pressure(7, None)),
    ("unknown line kind ignored", b"most " + LINE + b"x\n" + some(7), Pressure(7, None)),
    ("no final newline", some(5)[:-1], Pressure(5, None)),
    ("CRLF and tabs", b"some\tavg10=0.00 avg60=0.05\tavg300=0.11 total=9\r\n", Pressure(9, None)),
    ("leading zeros", b"some " + LINE + b"0009\n", Pressure(9, None)),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_pressure(data, expected):
    if isinstance(expected, Pressure):
        assert parse_pressure(data) == expected
    else:
        with pytest.raises(L.ParseError) as info:
            parse_pressure(data)
        assert (info.value.code, info.value.line) == expected


def test_every_fixture_file_parses():
    files = sorted(p for tree in HOST_TREES for p in (tree / "pressure").iterdir())
    assert len(files) == 7
    for path in files:
        parsed = parse_pressure(path.read_bytes())
        assert parsed.some_total_us is not None or path.name == "irq"


def pressure_tree(tmp_path: Path, files: dict[str, bytes]) -> Path:
    tree = tmp_path / "proc"
    (tree / "pressure").mkdir(parents=True)
    for name, data in files.items():
        (tree / "pressure" / name).write_bytes(data)
    return tree


def agent_pressure(tree: Path, backend: str, *extra: str):
    return agent_once("--collector.disable-defaults", "--collector.pressure", "--procfs", str(tree), *extra,
                      backend=backend)


@pytest.fixture(scope="module", params=HOST_TREES, ids=[t.name for t in HOST_TREES])
def host_oracle(request):
    return request.param, node_exporter_on(["pressure"], procfs=request.param)


def test_fixture_trees_agree_with_node_exporter(host_oracle, backend_name):
    tree, theirs = host_oracle
    mine = agent_pressure(tree, backend_name)
    assert_same_families(mine, theirs, "node_pressure_", expect=NODE_EXPORTER_FAMILIES)


def test_irq_stall_time_where_the_kernel_has_the_file(backend_name):
    # node_exporter 1.5.0 does not read irq: its value is checked against the
    # file with node_exporter's arithmetic (microseconds, two divisions).
    for tree in HOST_TREES:
        mine = agent_pressure(tree, backend_name)
        irq = tree / "pressure" / "irq"
        if irq.exists():
            total = int(irq.read_text().split("total=")[1])
            assert mine.types[IRQ] == "counter"
            assert float(mine.family(IRQ)[()]) == total / 1000.0 / 1000.0
        else:  # before 6.1: no irq family, and the source still succeeds
            assert IRQ not in mine.types
        assert mine.family("agent_source_success")[(("source", "pressure"),)] == "1"


def test_this_kernel_agrees_with_node_exporter(tmp_path, backend_name):
    if not Path("/proc/pressure/cpu").exists():
        pytest.skip("this kernel has no /proc/pressure (before 4.20, or CONFIG_PSI off)")
    tree = tmp_path / "proc"
    shutil.copytree("/proc/pressure", tree / "pressure")
    theirs = node_exporter_on(["pressure"], procfs=tree)
    mine = agent_pressure(tree, backend_name)
    assert_same_families(mine, theirs, "node_pressure_", expect=NODE_EXPORTER_FAMILIES)
    assert (IRQ in mine.types) == (tree / "pressure" / "irq").exists()


def test_no_pressure_directory_is_no_data_not_a_failure(backend_name, tmp_path):
    tree = procfs_trees()[0]
    assert not (tree / "pressure").exists()
    with AgentProcess("--collector.disable-defaults", "--collector.pressure", "--collector.loadavg",
                      "--procfs", str(tree), "--backend", backend_name) as agent:
        text = agent.metrics_text()
        assert "node_pressure_" not in text
        assert 'agent_source_success{source="pressure"} 1\n' in text
        assert "node_load1 " in text
        status, _, body = agent.request("/health")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok"
        pressure = health["sources"]["pressure"]
        assert pressure["ok"] is True and pressure["error"] is None
        assert pressure["no_data"] == f"no {tree}/pressure: a kernel before 4.20 or without CONFIG_PSI"
        assert "pressure" not in agent.log()


def test_io_and_memory_without_full_lines_keep_their_some_lines(tmp_path, backend_name):
    # node_exporter 1.5.0 dereferences the missing line and exits.
    tree = pressure_tree(tmp_path, {"cpu": some(1_000_000), "io": some(2_500_000), "memory": some(3)})
    mine = agent_pressure(tree, backend_name)
    assert set(mine.families("node_pressure_")) == {
        "node_pressure_cpu_waiting_seconds_total", "node_pressure_io_waiting_seconds_total",
        "node_pressure_memory_waiting_seconds_total"}
    assert mine.family("node_pressure_io_waiting_seconds_total")[()] == "2.5"
    assert mine.family("agent_source_success")[(("source", "pressure"),)] == "1"


def test_a_missing_memory_file_fails_the_source_with_one_line(tmp_path, backend_name):
    tree = pressure_tree(tmp_path, {"cpu": some(1), "io": some(2) + full(1)})
    with AgentProcess("--collector.disable-defaults", "--collector.pressure", "--procfs", str(tree),
                      "--backend", backend_name) as agent:
        text = agent.metrics_text()
        assert "node_pressure_" not in text
        assert 'agent_source_success{source="pressure"} 0\n' in text
        assert json.loads(agent.request("/health")[2])["status"] == "degraded"
        errors = [line for line in agent.log().splitlines() if "source pressure failed" in line]
        assert len(errors) == 1 and f"{tree}/pressure/memory" in errors[0], agent.log()


def test_a_malformed_file_fails_the_source_naming_file_and_line(tmp_path, backend_name):
    tree = pressure_tree(tmp_path, {"cpu": some(1), "io": some(2) + b"full avg10=0.00\n", "memory": some(3)})
    with AgentProcess("--collector.disable-defaults", "--collector.pressure", "--procfs", str(tree),
                      "--backend", backend_name) as agent:
        assert 'agent_source_success{source="pressure"} 0\n' in agent.metrics_text()
        health = json.loads(agent.request("/health")[2])
        assert health["sources"]["pressure"]["error"] == f"pressure: {tree}/pressure/io: line 2: malformed line"
        assert "Traceback" not in agent.log()


@pytest.mark.parametrize("tree", HOST_TREES, ids=[t.name for t in HOST_TREES])
def test_promtool_lint_is_clean(tree):
    promtool_check(agent_pressure(tree, "python").text)
