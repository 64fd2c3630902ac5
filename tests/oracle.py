"""node_exporter as an oracle: Debian's prometheus-node-exporter (1.5.0)
and the agent run on the same fixture tree, and every family both expose
must have the same type, the same label sets and the same values.

    oracle = node_exporter_on(["pressure"], procfs=tree)      # runs it, scrapes once, stops it
    mine = agent_once("--procfs", str(tree), backend=backend_name)
    assert_same_families(mine, oracle, prefix="node_pressure_")

Values are compared as float64, exactly: the agent must do node_exporter's
arithmetic (84850 * 0.001 is 84.85000000000001, not 84.85).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from exposition_parse import SAMPLE, parse_samples

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


class Exposition:
    def __init__(self, text: str):
        self.text = text
        self.samples = {(name, tuple(sorted(labels))): value
                        for (name, labels), value in parse_samples(text).items()}
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(" ", 3)
                self.types[family] = kind

    def family(self, name: str) -> dict:
        """{labels: value} of the samples of family `name` (a counter's
        samples end in _total, a histogram's in _bucket ...)."""
        return {labels: value for (sample, labels), value in self.samples.items()
                if sample == name or (sample.startswith(name + "_") and
                                      sample[len(name) + 1:] in ("total", "bucket", "sum", "count", "created"))}

    def families(self, prefix: str = "") -> set[str]:
        return {name for name in self.types if name.startswith(prefix)}


def require_node_exporter() -> str:
    if NODE_EXPORTER is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus-node-exporter is required in CI (scripts/install-test-packages.sh)")
        pytest.skip("node_exporter not installed (apt-get install prometheus-node-exporter)")
    return NODE_EXPORTER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeExporter:
    """node_exporter running with only `collectors` on, on these roots, for
    several scrapes (its cpu collector keeps state between them):

        with NodeExporter(["cpu"], procfs=tree, sysfs=empty) as ne:
            first = ne.scrape()
    """

    def __init__(self, collectors: list[str], *flags: str, procfs=None, sysfs=None, rootfs=None,
                 timeout: float = 20.0, wrapper: tuple = ()):
        binary = require_node_exporter()
        self.port = _free_port()
        self.timeout = timeout
        argv = [*wrapper, binary, "--collector.disable-defaults", *(f"--collector.{c}" for c in collectors),
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error", *flags]
        for flag, root in (("procfs", procfs), ("sysfs", sysfs), ("rootfs", rootfs)):
            if root is not None:
                argv.append(f"--path.{flag}={root}")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def scrape(self) -> Exposition:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=self.timeout) as r:
                    return Exposition(r.read().decode("utf-8", "replace"))
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.terminate()
                    raise RuntimeError("node_exporter did not answer: " + self.proc.stderr.read().decode())
                time.sleep(0.05)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def node_exporter_on(collectors: list[str], *flags: str, procfs=None, sysfs=None, rootfs=None,
                     timeout: float = 20.0, wrapper: tuple = ()) -> Exposition:
    """One scrape of node_exporter with only `collectors` on, on these roots;
    `wrapper` prefixes its command line (MountNamespace.enter)."""
    with NodeExporter(collectors, *flags, procfs=procfs, sysfs=sysfs, rootfs=rootfs, timeout=timeout,
                      wrapper=wrapper) as ne:
        return ne.scrape()


def agent_once(*args: str, backend: str, wrapper: tuple = ()) -> Exposition:
    r = subprocess.run([*wrapper, sys.executable, "-m", "agent", "--once", "--backend", backend, *args],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return Exposition(r.stdout)


def assert_same_families(agent: Exposition, oracle: Exposition, prefix: str, expect: set[str] | None = None):
    """Every family of node_exporter's under `prefix` is the agent's too, with
    the same type, label sets and values; `expect`, when given, is the set
    of families node_exporter must have shown (so the test cannot pass on
    an empty oracle)."""
    theirs = oracle.families(prefix)
    if expect is not None:
        assert theirs == expect, f"node_exporter showed {sorted(theirs)}"
    assert theirs, f"node_exporter exposes nothing under {prefix!r}: the comparison would be empty"
    for family in sorted(theirs):
        assert agent.types.get(family) == oracle.types[family], \
            f"{family}: type {agent.types.get(family)} against node_exporter's {oracle.types[family]}"
        mine, want = agent.family(family), oracle.family(family)
        assert set(mine) == set(want), (f"{family}: label sets differ: only the agent's "
                                        f"{sorted(set(mine) - set(want))[:5]}, only node_exporter's "
                                        f"{sorted(set(want) - set(mine))[:5]}")
        for labels, value in want.items():
            a, b = float(mine[labels]), float(value)
            assert a == b or (math.isnan(a) and math.isnan(b)), f"{family}{dict(labels)}: {mine[labels]} != {value}"


__all__ = ["NODE_EXPORTER", "SAMPLE", "Exposition", "NodeExporter", "agent_once", "assert_same_families", "node_exporter_on",
           "require_node_exporter"]
