"""`pytest --benchmark-only` from the repository root, as a user types it,
runs the benchmark suites (conftest.py at the root): not the 1,500 tests
skipped one by one and no benchmark run, as before.  Plain `pytest` runs
the tests and no benchmark.  The soak and the side-by-side run are opt-in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_at_root(*args: str) -> str:
    # As a user's shell runs it: not as an xdist worker of this run, which
    # pytest-benchmark would take for a parallel run (and disable itself).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST") and k != "PYTEST_CURRENT_TEST"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def collected(output: str) -> list[str]:
    return [line for line in output.splitlines() if "::" in line]


def test_benchmark_only_collects_the_benchmarks_and_no_test():
    ids = collected(pytest_at_root("--benchmark-only", "--collect-only", "-q"))
    suites = {i.split("/", 1)[0] for i in ids}
    assert suites == {"benchmarks"}, suites
    # Every benchmark file, by layer: parse, read+parse, collect, render, HTTP scrape, soak, side by side.
    files = {i.split("::", 1)[0] for i in ids}
    assert files == {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("test_*.py")}


def test_plain_pytest_collects_the_tests_and_no_benchmark():
    ids = collected(pytest_at_root("--collect-only", "-q"))
    assert {i.split("/", 1)[0] for i in ids} == {"tests"}
    assert len(ids) > 1000


def test_the_long_benchmarks_are_opt_in_with_a_reason():
    out = pytest_at_root("--benchmark-only", "-k", "soak or side_by_side", "-rs", "-q")
    assert re.search(r"SKIPPED \[1\] benchmarks/test_soak.py:\d+: the 60 s soak through SIGHUPs: "
                     r"add --soak to run it", out), out
    assert re.search(r"SKIPPED \[2\] benchmarks/test_side_by_side.py:\d+: .*(--side-by-side|node_exporter)", out), out
    assert re.search(r"\b3 skipped\b", out) and "passed" not in out, out
