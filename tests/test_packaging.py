"""Packaging: the wheel installs without a C compiler (pure-Python backend)
unless AGENT_REQUIRE_C=1; the serving path never imports prometheus_client;
the prometheus_client adapter registers our collectors in an app's registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trees import procfs_trees
from reference import expected_samples

ROOT = Path(__file__).resolve().parent.parent


def pip_install_target(tmp_path: Path, env_extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    # A copy of the sources, so the build does not touch the working tree.
    src = tmp_path / "src-copy"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((ROOT / rel).read_bytes())
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
         "--no-cache-dir", "--target", str(tmp_path / "site"), str(src)],
        capture_output=True, text=True, env=env, timeout=300)


def test_install_without_a_compiler_falls_back_to_python(tmp_path):
    r = pip_install_target(tmp_path, {"CC": "false", "AGENT_REQUIRE_C": "0"})
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    assert not list(site.glob("agent/_agent_c*"))
    probe = subprocess.run(
        [sys.executable, "-c",
         "import logging, sys; logging.basicConfig(stream=sys.stderr);"
         "from agent import backend; print(backend.select('auto')[0])"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(site)), timeout=60, cwd=tmp_path)
    assert probe.stdout.strip() == "python"
    assert "C extension unavailable" in probe.stderr


def test_required_c_build_fails_loudly_without_a_compiler(tmp_path):
    r = pip_install_target(tmp_path, {"CC": "false", "AGENT_REQUIRE_C": "1"})
    assert r.returncode != 0


def test_serving_path_does_not_import_prometheus_client():
    code = ("import sys, agent.cli, agent.server, agent.exposition, agent.registry;"
            "print('prometheus_client' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_serving_path_leaves_heavy_stdlib_modules_unimported():
    # Each of these stays resident for the life of the process (typing
    # ~0.45 MiB, inspect via dataclasses ~1 MiB, shutil with bz2 and lzma
    # ~0.4 MiB): the RSS budget of docs/BENCHMARKS.md.  Push mode included.
    heavy = ("typing", "dataclasses", "inspect", "shutil", "bz2", "lzma", "email", "http")
    code = ("import sys, agent.cli, agent.server, agent.service, agent.exposition, agent.registry,"
            " agent.procfs.cbackend, agent.procfs.pybackend, agent.collectors, agent.push;"
            f"print(sorted(set({heavy!r}) & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize("tree", procfs_trees()[:2], ids=lambda p: p.name)
def test_prometheus_client_adapter(tree, backend_name):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from agent.prometheus_adapter import AgentCollector

    registry = CollectorRegistry()
    registry.register(AgentCollector(procfs=str(tree), backend=backend_name))
    got = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            got[(s.name, tuple(sorted(s.labels.items())))] = s.value
    for (name, labels), value in expected_samples(tree).items():
        assert got[(name, tuple(sorted(labels)))] == pytest.approx(float(value)), name
