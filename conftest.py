"""Which suites a pytest run from the repository root takes.

`pytest` runs the test suite (tests/); `pytest --benchmark-only` runs the
benchmark suites (benchmarks/) instead, with pytest-benchmark's table: the
tests measure nothing, and 1,500 "skipped" lines would hide the table.
Naming a folder on the command line always collects it.

The two long benchmarks are opt-in: `--soak` (the agent scraped every 10 ms
for 60 s through SIGHUPs) and `--side-by-side` (the agent against Debian's
node_exporter on the same trees, benchmarks/compare.py).  Without their
option a timed run skips them with a line saying which option brings them
in; `--benchmark-disable` (make test's smoke run) takes the soak's 5 s form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SUITES = {"tests": ROOT / "tests", "benchmarks": ROOT / "benchmarks"}
OPT_IN = {
    "soak": ("--soak", "the 60 s soak through SIGHUPs"),
    "side_by_side": ("--side-by-side", "the agent against node_exporter on the same trees"),
}


def pytest_addoption(parser):
    group = parser.getgroup("monitoring-agent benchmarks")
    for marker, (flag, what) in OPT_IN.items():
        group.addoption(flag, action="store_true", dest=f"run_{marker}",
                        help=f"with --benchmark-only: also run {what}")


def pytest_configure(config):
    for marker, (flag, what) in OPT_IN.items():
        config.addinivalue_line("markers", f"{marker}: {what}; timed only with {flag}")


def _named_on_command_line(config, suite: Path) -> bool:
    for arg in config.invocation_params.args:
        if arg.startswith("-"):
            continue
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == suite or suite in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    benchmark_only = bool(getattr(config.option, "benchmark_only", False))
    for name, suite in SUITES.items():
        # Files, not the folder: pytest never asks about a testpaths entry itself.
        if suite not in path.parents:
            continue
        if _named_on_command_line(config, suite):
            return None
        wanted = "benchmarks" if benchmark_only else "tests"
        return True if name != wanted else None
    return None


def pytest_collection_modifyitems(config, items):
    timed = not getattr(config.option, "benchmark_disable", False)
    for item in items:
        for marker, (flag, what) in OPT_IN.items():
            if marker in item.keywords and not getattr(config.option, f"run_{marker}"):
                if marker == "soak" and not timed:
                    continue  # make test's smoke run: the soak's 5 s form
                item.add_marker(pytest.mark.skip(reason=f"{what}: add {flag} to run it"))
