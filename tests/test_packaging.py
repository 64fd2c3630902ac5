"""Packaging: the wheel installs without a C compiler (pure-Python backend)
unless AGENT_REQUIRE_C=1, and the agent then says why in one line; an
earlier build's extension never slips into an install that could not
compile; the C tests skip in one line without a compiler; the serving path
never imports prometheus_client; the prometheus_client adapter registers our
collectors in an app's registry.  tests/test_wheel.py: the release wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends import load_backend
from trees import procfs_trees
from reference import expected_samples

ROOT = Path(__file__).resolve().parent.parent


# No compiler: setuptools runs $CC, which is not there.
NO_COMPILER = {"CC": "/nonexistent/cc"}


def copy_checkout(dest: Path) -> Path:
    """The working tree's files as a fresh clone would have them (tracked and
    new, never ignored build products), so a build does not touch ROOT."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], check=True, capture_output=True, text=True).stdout
    for rel in filter(None, files.split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def pip_install_target(src: Path, site: Path, env_extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
         "--no-cache-dir", "--target", str(site), str(src)],
        capture_output=True, text=True, env=env, timeout=300)


def run_agent_from(site: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "--config", "/dev/null", "--once", *args],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(site)),
                          timeout=60, cwd=site)


def test_install_without_a_compiler_falls_back_to_python_and_says_why_once(tmp_path):
    src = copy_checkout(tmp_path / "src")
    r = pip_install_target(src, tmp_path / "site", dict(NO_COMPILER, AGENT_REQUIRE_C="0"))
    assert r.returncode == 0, r.stderr
    site = tmp_path / "site"
    assert not list(site.glob("agent/_agent_c*"))
    run = run_agent_from(site)
    assert 'backend="python"' in run.stdout
    # One line, in words: why (no compiler when it was installed) and what
    # to do about it; no import error.
    [line] = run.stderr.splitlines()
    assert "not built when monitoring-agent was installed" in line
    assert "C compiler" in line and "reinstall" in line
    assert "import" not in line
    forced = run_agent_from(site, "--backend", "c")
    assert forced.returncode == 2
    assert "not built when monitoring-agent was installed" in forced.stderr


def test_a_compiled_module_that_does_not_load_stays_a_loud_failure(tmp_path):
    """Another interpreter's extension in the package is a broken install,
    not a missing compiler: the warning names the file."""
    src = copy_checkout(tmp_path / "src")
    site = tmp_path / "site"
    assert pip_install_target(src, site, dict(NO_COMPILER, AGENT_REQUIRE_C="0")).returncode == 0
    (site / "agent" / "_agent_c.cpython-39-x86_64-linux-gnu.so").write_bytes(b"\x7fELF not this one")
    run = run_agent_from(site)
    assert 'backend="python"' in run.stdout
    [line] = run.stderr.splitlines()
    assert "_agent_c.cpython-39-x86_64-linux-gnu.so is installed but this Python cannot load it" in line
    assert "not built when" not in line
    (site / "agent" / "_agent_c.abi3.so").write_bytes(b"\x7fELF truncated")
    run = run_agent_from(site)
    assert 'backend="python"' in run.stdout
    [line] = run.stderr.splitlines()
    assert "cannot import agent._agent_c" in line and "not built when" not in line


def test_an_earlier_build_does_not_leak_into_an_install_that_cannot_compile(tmp_path):
    load_backend("c")  # the first build needs a compiler
    src = copy_checkout(tmp_path / "src")
    built = pip_install_target(src, tmp_path / "site-built", {})
    assert built.returncode == 0, built.stderr
    assert list((tmp_path / "site-built").glob("agent/_agent_c*.so"))
    assert list((src / "build").glob("lib*/agent/_agent_c*.so")), "pip no longer builds in-tree"
    r = pip_install_target(src, tmp_path / "site", dict(NO_COMPILER, AGENT_REQUIRE_C="0"))
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "site").glob("agent/_agent_c*"))


def test_c_backend_tests_skip_in_one_line_without_the_extension(tmp_path):
    src = copy_checkout(tmp_path / "src")
    site = tmp_path / "site"
    assert pip_install_target(src, site, dict(NO_COMPILER, AGENT_REQUIRE_C="0")).returncode == 0
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        "tests/test_loadavg.py", "tests/test_uptime.py"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(site), AGENT_REQUIRE_C="0",
                                AGENT_TEST_BACKENDS="c,python"))
    assert r.returncode == 0, r.stdout + r.stderr
    skipped = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped
    assert "C backend unavailable: not built when monitoring-agent was installed" in skipped[0]
    assert " passed" in r.stdout.splitlines()[-1]  # the Python backend's half ran


def test_required_c_build_fails_loudly_without_a_compiler(tmp_path):
    src = copy_checkout(tmp_path / "src")
    r = pip_install_target(src, tmp_path / "site", dict(NO_COMPILER, AGENT_REQUIRE_C="1"))
    assert r.returncode != 0


def test_c_tests_skip_in_one_line_without_a_compiler():
    r = subprocess.run(["bash", str(ROOT / "tests/c/run.sh")], capture_output=True, text=True,
                       env=dict(os.environ, AGENT_REQUIRE_C="0", **NO_COMPILER), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    [line] = r.stdout.splitlines()
    assert line.startswith("SKIPPED") and "no C compiler" in line
    required = subprocess.run(["bash", str(ROOT / "tests/c/run.sh")], capture_output=True, text=True,
                              env=dict(os.environ, AGENT_REQUIRE_C="1", **NO_COMPILER), timeout=60)
    assert required.returncode != 0
    assert "AGENT_REQUIRE_C=1" in required.stderr


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
