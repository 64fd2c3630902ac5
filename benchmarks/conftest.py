"""Benchmark fixtures: this machine's /proc and a generated high-density
tree (256 CPUs, 2,000 interfaces, 300 disks), each parser backend.

`make bench` runs these with timing; `make test` runs each once with
--benchmark-disable as a smoke test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from backends import BACKENDS, load_backend  # noqa: E402  (tests/backends.py)
from backends import pytest_runtest_makereport  # noqa: E402,F401  (a hook: C skips in one line)
from benchutil import DENSE  # noqa: E402


@pytest.fixture(scope="session")
def dense_tree(tmp_path_factory) -> Path:
    import gen_procfs
    root = tmp_path_factory.mktemp("dense") / "proc"
    gen_procfs.generate(root, **DENSE)
    return root


@pytest.fixture(params=["proc", "dense"])
def tree(request) -> Path:
    # The dense tree is made only when a dense benchmark runs.
    return Path("/proc") if request.param == "proc" else request.getfixturevalue("dense_tree")


@pytest.fixture(params=BACKENDS)
def backend_name(request) -> str:
    load_backend(request.param)
    return request.param
