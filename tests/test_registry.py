"""The registry's file handling: /proc files kept open between scrapes,
fixture trees reopened so a file replaced by rename is seen."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.cli import build_registry
from agent.config import Config
from agent.procfs.reader import is_proc_mount
from test_e2e import NETDEV_HEADER, copy_tree, netdev_line

MOUNTINFO = """\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 25 0:21 / /host/proc ro,relatime - proc proc rw
41 25 0:35 / /host/my\\040dir rw - tmpfs tmpfs rw
42 25 0:21 / /host/tab\\011proc ro,relatime - proc proc rw
"""


def test_is_proc_mount(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert is_proc_mount("/proc", str(info))
    assert is_proc_mount("/host/proc", str(info))
    assert not is_proc_mount("/host", str(info))
    assert not is_proc_mount("/host/my dir", str(info))
    assert is_proc_mount("/host/tab\tproc/1", str(info))  # every escape decoded, as the filesystem collector does
    assert not is_proc_mount("/tmp", str(info))
    assert not is_proc_mount("/proc", str(tmp_path / "absent"))
    assert is_proc_mount("/proc") and not is_proc_mount(str(tmp_path))


def open_targets() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the directory's own descriptor, closed by now
    return out


def test_proc_files_stay_open_between_scrapes(backend_name):
    registry = build_registry(Config(backend=backend_name), logging.getLogger("test"))
    try:
        registry.collect()
        first = [t for t in open_targets() if t.startswith("/proc/") and "/fd" not in t]
        registry.collect()
        second = [t for t in open_targets() if t.startswith("/proc/") and "/fd" not in t]
        assert "/proc/stat" in first and "/proc/meminfo" in first
        assert sorted(first) == sorted(second)  # kept, not reopened or leaked
    finally:
        registry.close()
    assert "/proc/stat" not in open_targets()


def test_fixture_files_are_reopened_so_renames_are_seen(tmp_path, backend_name):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    registry = build_registry(Config(procfs=str(tree), backend=backend_name), logging.getLogger("test"))
    registry.collect()
    assert not [t for t in open_targets() if t.startswith(str(tree))]
    new = tree / "net" / "dev.new"
    new.write_text(NETDEV_HEADER + netdev_line("renamed0", 7, 8))
    new.rename(tree / "net" / "dev")
    families = {f.desc.name: f for f in registry.collect()}
    assert families["node_network_receive_bytes"].samples == [(("renamed0",), 7)]


def test_open_fd_count_matches_the_directory():
    from agent.registry import count_self_fds
    # Both ways of counting agree (listdir holds one descriptor itself).
    assert count_self_fds() == len(os.listdir("/proc/self/fd")) - 1
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        assert count_self_fds() == len(os.listdir("/proc/self/fd")) - 1
    finally:
        os.close(fd)


def test_closing_a_registry_during_scrapes_leaks_no_descriptor(backend_name):
    """A reload that changes procfs or backend closes the old registry while
    scrapes may still be collecting through it."""
    import threading
    log = logging.getLogger("test")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        registry = build_registry(Config(backend=backend_name), log)
        done = threading.Event()
        errors = []

        def scrape(r=registry):
            try:
                while not done.is_set():
                    r.collect()
            except Exception as exc:  # noqa: BLE001 -- the assertion below reports it
                errors.append(exc)

        threads = [threading.Thread(target=scrape) for _ in range(2)]
        for t in threads:
            t.start()
        registry.close()
        done.set()
        for t in threads:
            t.join(10)
        assert all(s.ok for s in registry.sources)  # no EBADF from a closed descriptor
        assert errors == []  # the agent's own metrics (statm) included
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_collector_bug_fails_its_source_not_the_scrape(tmp_path, backend_name):
    tree = copy_tree(Path("/proc"), tmp_path / "proc")
    registry = build_registry(Config(procfs=str(tree), backend=backend_name), logging.getLogger("test"))

    class Broken:
        source, relpath = "meminfo", "meminfo"

        def families(self, data):
            raise RuntimeError("collector bug")

    registry.replace_collectors([Broken()])
    names = {f.desc.name for f in registry.collect()}
    assert "node_load1" in names and "node_memory_total_bytes" not in names
    meminfo = next(s for s in registry.sources if s.collector.source == "meminfo")
    assert not meminfo.ok and "RuntimeError: collector bug" in meminfo.error


def test_own_memory_is_its_own_in_a_pid_namespace_over_the_hosts_proc(tmp_path):
    """In a PID namespace of its own with the host's /proc (a container that
    shares /proc, `unshare --pid --fork`), the agent's pid names another
    process there: its own figures must come from /proc/self."""
    import re
    import shutil
    import subprocess
    import sys
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--pid", "--fork", "true"], capture_output=True).returncode:
        pytest.skip("no PID namespace here (unshare --pid needs root and util-linux)")
    run = subprocess.run([unshare, "--pid", "--fork", sys.executable, "-c",
                          "import os, sys; from agent.cli import main; assert os.getpid() == 1; "
                          "sys.exit(main(['--once', '--collector.disable-defaults', '--collector.uptime']))"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    rss = float(re.search(r"^agent_process_resident_memory_bytes (\S+)$", run.stdout, re.M).group(1))
    with open("/proc/1/statm") as f:  # the host's (or this namespace's) init, not the agent
        init_rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 5 << 20 < rss < 200 << 20 and rss != init_rss
