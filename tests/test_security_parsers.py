"""Hostile /proc content through the whole scrape path, on both backends:
a file that never ends, a file that grows while it is read, malformed files
(the same outcome and the same log line on both backends, never a partly
rendered source), and device names that need escaping, at and past the
kernel's 15-character limit.  Parser-level parity on bytes is in
test_parity.py; the fuzzers are in fuzz/."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

from agent.cli import build_registry
from agent.config import Config
from agent.exposition import render_openmetrics, render_text
from agent.procfs import layout
from backends import load_backend
from trees import PROCFS_TREES
from exposition_parse import parse_samples
from test_e2e import NETDEV_HEADER, copy_tree, netdev_line

TREE = PROCFS_TREES / "linux-5.15-ubuntu22"
FAMILY_PREFIXES = {
    "stat": ("node_cpu_", "node_procs_"),
    "meminfo": ("node_memory_", "node_swap_"),
    "diskstats": ("node_disk_",),
    "netdev": ("node_network_",),
    "loadavg": ("node_load",),
    "uptime": ("node_uptime_",),
    "filesystem": ("node_filesystem_",),  # no mount table in these trees: no data, nothing rendered
}
# The sources whose files these tests corrupt; the others (tree collectors)
# stay off.
FILE_SOURCES = tuple(FAMILY_PREFIXES)
RELPATH = {"stat": "stat", "meminfo": "meminfo", "diskstats": "diskstats", "netdev": "net/dev",
           "loadavg": "loadavg", "uptime": "uptime"}


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def scrape(tree: Path, backend: str, times: int = 1):
    """(samples, success by source, log lines) after `times` collections."""
    log = logging.getLogger(f"test.hostile.{backend}")
    log.setLevel(logging.INFO)
    lines = Lines()
    log.addHandler(lines)
    registry = build_registry(Config(procfs=str(tree), backend=backend, collectors=FILE_SOURCES), log)
    try:
        for _ in range(times):
            families = registry.collect()
        text = render_text(families).decode()
        render_openmetrics(families)  # renders too
    finally:
        registry.close()
        log.removeHandler(lines)
    samples = parse_samples(text)
    success = {dict(k[1])["source"]: v == "1" for k, v in samples.items() if k[0] == "agent_source_success"}
    return samples, success, lines.lines


def assert_whole_or_absent(samples, success):
    """Each source is all there (success) or not there at all (failure)."""
    names = {name for name, _ in samples}
    assert set(success) == set(FAMILY_PREFIXES)
    for source, ok in success.items():
        present = any(n.startswith(FAMILY_PREFIXES[source]) for n in names)
        if not ok:
            assert not present, f"{source} failed but some of its families were rendered"
        elif source not in ("diskstats", "netdev", "filesystem"):  # row sources may have no rows
            assert present, f"{source} succeeded but rendered nothing"


@pytest.fixture
def tree(tmp_path):
    return copy_tree(TREE, tmp_path / "proc")


# --- a file that never ends ----------------------------------------------------------


@pytest.mark.parametrize("source", ["netdev", "stat"])
def test_endless_file_fails_the_same_bounded_way_on_both_backends(tree, source):
    path = tree / RELPATH[source]
    path.unlink()
    path.symlink_to("/dev/zero")  # pread never returns 0: endless NULs
    outcomes = {}
    for backend in ("c", "python"):
        loader = load_backend(backend).make_loader(source)
        fd = os.open(path, os.O_RDONLY)
        start = time.monotonic()
        try:
            with pytest.raises(layout.ParseError) as info:
                loader(fd)
        finally:
            os.close(fd)
        assert time.monotonic() - start < 10
        outcomes[backend] = (info.value.code, info.value.line)
        samples, success, lines = scrape(tree, backend)
        assert success[source] is False
        assert_whole_or_absent(samples, success)
        assert [line for line in lines if "failed" in line] == [
            f"source {source} failed: {path}: file larger than the read buffer"]
    assert outcomes["c"] == outcomes["python"] == (layout.ETRUNC, 0)


# --- a file that grows while it is read ------------------------------------------------


@pytest.mark.parametrize("backend", ["c", "python"])
def test_file_growing_while_read_gives_whole_rows_or_a_failure(tree, backend):
    load_backend(backend)
    dev = tree / "net" / "dev"
    dev.write_text(NETDEV_HEADER + netdev_line("lo", 5, 6))
    # Single-digit fields: a line torn at any byte has fewer fields (an
    # error), or is whole; never a row with a truncated number.
    stop = threading.Event()
    appended = [0]

    def writer():
        fd = os.open(dev, os.O_WRONLY | os.O_APPEND)
        try:
            while not stop.is_set() and appended[0] < 2000:
                os.write(fd, f"  g{appended[0]}: 7 1 0 0 0 0 0 0 9 2 0 0 0 0 0 0\n".encode())
                appended[0] += 1
                if appended[0] % 8 == 0:
                    time.sleep(0.001)  # paced, so that many scrapes meet it growing
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    log = logging.getLogger(f"test.grow.{backend}")
    registry = build_registry(Config(procfs=str(tree), backend=backend, collectors=FILE_SOURCES), log)
    outcomes = {"rows": 0, "failed": 0}
    try:
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            families = registry.collect()
            samples = parse_samples(render_text(families).decode())
            success = {dict(k[1])["source"]: v == "1" for k, v in samples.items()
                       if k[0] == "agent_source_success"}
            assert_whole_or_absent(samples, success)
            rx = {dict(k[1])["interface"]: v for k, v in samples.items()
                  if k[0] == "node_network_receive_bytes_total"}
            if success["netdev"]:
                assert rx.pop("lo") == "5"
                assert set(rx.values()) <= {"7"}
                # A prefix of an append-only file: g0 .. g(n-1), no gap.
                assert sorted(int(name[1:]) for name in rx) == list(range(len(rx)))
                outcomes["rows"] += 1
            else:
                assert not rx
                outcomes["failed"] += 1
    finally:
        stop.set()
        thread.join(10)
        registry.close()
    # Many scrapes met the file mid-growth, each a consistent prefix.
    assert outcomes["rows"] >= 10 and appended[0] == 2000


# --- malformed files: the same outcome and log line on both backends --------------------


MALFORMED = [
    ("stat", b"cpu  1 2 3 x 5 6 7 8\n", "line 1: malformed line"),
    ("stat", b"cpu  1 2 3\n", "line 1: malformed line"),
    ("stat", b"cpu  1 2 3 " + b"9" * 21 + b" 5\n", "line 1: counter does not fit in 64 bits"),
    ("meminfo", b"MemTotal: 12x kB\n", "line 1: malformed line"),
    ("meminfo", b"MemFree: 1 kB\n", "required line missing"),
    ("meminfo", b"MemTotal:\x00 1 kB\n", "line 1: malformed line"),
    ("diskstats", b"   8 0 sda 1 2 3\n", "line 1: malformed line"),
    ("diskstats", b"   8 0 " + b"d" * 65 + b" " + b"1 " * 11 + b"\n", "line 1: device name empty or longer than 64 bytes"),
    ("netdev", NETDEV_HEADER.encode() + b"  eth0: 1 2 3\n", "line 3: malformed line"),
    ("netdev", NETDEV_HEADER.encode() + b"  eth0: " + b"1" * 25 + b" 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n",
     "line 3: counter does not fit in 64 bits"),
    ("loadavg", b"0.5 0.4\n", "line 1: malformed line"),
    ("loadavg", b"0.5 0.4 0.3 1/2 " + b"9" * 30 + b"\n", "line 1: counter does not fit in 64 bits"),
    ("uptime", b"12.5 x\n", "line 1: malformed line"),
    ("uptime", b"\x00" * 10, "line 1: malformed line"),
    ("uptime", b"", "line 1: malformed line"),
    ("stat", b"intr " + b"1 " * 200000 + b"\ncpu  1 2 3 4\n", None),  # a 400 KB line: fine
]


@pytest.mark.parametrize("source, content, message", MALFORMED,
                         ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(MALFORMED)])
def test_malformed_file_same_outcome_and_log_line_on_both_backends(tree, source, content, message):
    path = tree / RELPATH[source]
    path.write_bytes(content)
    results = {}
    for backend in ("c", "python"):
        load_backend(backend)
        samples, success, lines = scrape(tree, backend, times=2)
        assert_whole_or_absent(samples, success)
        failed = [line for line in lines if "failed" in line]
        if message is None:
            assert success[source] and not failed
        else:
            assert success[source] is False
            # One clear line, not one per scrape, naming the file, the line and why.
            assert failed == [f"source {source} failed: {path}: {message}"]
        others = {s: ok for s, ok in success.items() if s != source}
        assert all(others.values())
        results[backend] = {k: v for k, v in samples.items() if not k[0].startswith("agent_")}
    assert results["c"] == results["python"]


# --- names that need escaping -----------------------------------------------------------


NAMES = ["a\\b", 'q"x', "tab\\n", "{x}", "é", "e\u0301", "abcdefghijklmno", "abcdefghijklmnop",
         "x" * 64, "#hash", "=,"]


def test_device_names_are_escaped_whatever_they_contain(tree):
    dev = tree / "net" / "dev"
    lines = [netdev_line(name, i + 1, i + 100) for i, name in enumerate(NAMES)]
    dev.write_bytes((NETDEV_HEADER + "".join(lines)).encode() + b"  bad\xff: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n")
    per_backend = {}
    for backend in ("c", "python"):
        load_backend(backend)
        samples, success, _ = scrape(tree, backend)
        assert success["netdev"]
        rx = {dict(k[1])["interface"]: v for k, v in samples.items()
              if k[0] == "node_network_receive_bytes_total"}
        assert rx == {**{name: str(i + 1) for i, name in enumerate(NAMES)}, "bad\ufffd": "1"}
        per_backend[backend] = {k: v for k, v in samples.items() if k[0].startswith("node_")}
    assert per_backend["c"] == per_backend["python"]
