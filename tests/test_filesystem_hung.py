"""A mount whose statfs never answers (a real FUSE file system,
tests/hungfs.py) must not hold up a scrape, must not cost a thread per
scrape, and must show as device_error 1 while the other mounts are shown
as usual.  Everything runs in a private mount namespace (tests/mountns.py):
nobody else on the machine can trip over the hung mount, and it vanishes
with the namespace if the test dies."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from agentproc import AgentProcess
from exposition_parse import parse_samples
from mountns import MountNamespace

HUNGFS = os.path.join(os.path.dirname(__file__), "hungfs.py")
MOUNT_TIMEOUT = 0.5
SCRAPES = 30
# Prometheus's default scrape timeout is 10 s; a scrape that waits for the
# hung call never answers at all.  The first scrape waits MOUNT_TIMEOUT for
# it, the others not at all.
ON_TIME = 4 * MOUNT_TIMEOUT


def require_fuse() -> None:
    reason = None
    if not os.path.exists("/dev/fuse"):
        reason = "no /dev/fuse (the fuse module, or a container without the device)"
    else:
        try:
            import mfusepy  # noqa: F401
        except (ImportError, OSError) as exc:  # OSError: libfuse itself is missing
            reason = f"mfusepy or libfuse3 missing ({exc}; pip install mfusepy, apt-get install fuse3)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": required in CI")
        pytest.skip(reason)


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


def settled_threads(pid: int, want: int | None = None, timeout: float = 3.0) -> int:
    """The agent's thread count once the scrape's connection thread has
    left: `want` as soon as it is seen (else the last count, after
    `timeout`), or without `want` the lowest count over 0.5 s (a thread
    that is leaving shows only for a moment; a thread that stays shows
    throughout)."""
    deadline = time.monotonic() + (timeout if want is not None else 0.5)
    seen = threads(pid)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.02)
        now = threads(pid)
        seen = now if want is not None else min(seen, now)
    return seen


def filesystem_samples(text: str, family: str) -> dict[str, float]:
    return {dict(labels)["mountpoint"]: float(value) for (name, labels), value in parse_samples(text).items()
            if name == family}


def wait_mounted(fuse: subprocess.Popen, timeout: float = 20.0) -> None:
    ready, _, _ = select.select([fuse.stdout], [], [], timeout)
    line = fuse.stdout.readline() if ready else b""
    if line.strip() != b"mounted":
        fuse.kill()
        raise RuntimeError(f"the FUSE file system did not mount: {fuse.stderr.read().decode()}")


@contextlib.contextmanager
def hung_mount(tmp_path):
    """(namespace, the hung mount's directory, the file counting its statfs
    calls, the FUSE daemon), in a private mount namespace with a 64 KiB
    tmpfs at tmp_path/good; the daemon killed first and the mount detached
    at the end, whatever happened."""
    require_fuse()
    good, hung, calls = tmp_path / "good", tmp_path / "hung", tmp_path / "statfs-calls"
    good.mkdir()
    hung.mkdir()
    calls.touch()
    with MountNamespace() as ns:
        ns.run("mount", "-t", "tmpfs", "-o", "size=64k", "good", str(good))
        fuse = subprocess.Popen([*ns.enter, sys.executable, HUNGFS, str(hung), str(calls)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_mounted(fuse)
            yield ns, hung, calls, fuse
        finally:
            if fuse.poll() is None:
                fuse.send_signal(signal.SIGKILL)  # the blocked handler keeps SIGTERM's orderly exit waiting
                fuse.wait(10)
            # Detached (lazily: the agent may still be in it); the end of the
            # namespace would take it anyway.
            unmount = ["fusermount3", "-u", "-z"] if shutil.which("fusermount3") else ["umount", "-l"]
            subprocess.run([*ns.enter, *unmount, str(hung)], capture_output=True, timeout=10)
            fuse.stdout.close()
            fuse.stderr.close()


def statfs_calls(calls) -> int:
    with open(calls) as f:
        return f.read().count("statfs")


def test_a_hung_statfs_never_blocks_the_scrape(tmp_path):
    procfs = tmp_path / "proc"
    (procfs / "1").mkdir(parents=True)
    good, hung = tmp_path / "good", tmp_path / "hung"
    # The table the agent reads: a good tmpfs, the hung FUSE mount, and a
    # mount point that does not exist (statvfs fails at once: ENOENT).
    (procfs / "1" / "mountinfo").write_text(
        f"40 1 0:50 / {good} rw,relatime - tmpfs good rw,size=64k\n"
        f"41 1 0:51 / {hung} rw,nosuid,nodev,relatime - fuse.hungfs hungfs rw,user_id=0,group_id=0\n"
        f"42 1 0:52 / {tmp_path}/gone rw,relatime - tmpfs gone rw\n")
    with hung_mount(tmp_path) as (ns, hung, calls, fuse):
        agent = AgentProcess("--procfs", str(procfs), "--rootfs", "/", "--collector.disable-defaults",
                             "--collector.filesystem", "--collector.filesystem.mount-timeout", str(MOUNT_TIMEOUT),
                             wrapper=ns.enter)
        try:
            pid = agent.proc.pid
            counts = []
            for scrape in range(SCRAPES):
                started = time.monotonic()
                text = agent.metrics_text()
                took = time.monotonic() - started
                assert took < ON_TIME, f"scrape {scrape + 1} took {took:.2f} s"
                errors = filesystem_samples(text, "node_filesystem_device_error")
                assert errors == {str(good): 0.0, str(hung): 1.0, f"{tmp_path}/gone": 1.0}, scrape
                assert filesystem_samples(text, "node_filesystem_size_bytes") == {str(good): 65536.0}
                counts.append(settled_threads(pid, counts[0] if counts else None))
            # No scrape adds a thread (one stays blocked in the hung
            # statfs: it leaves below).
            assert counts == [counts[0]] * SCRAPES, counts
            assert statfs_calls(calls) == 1, "the hung mount was asked again while its call was stuck"

            # The daemon dies: the kernel fails the pending call, its thread
            # leaves, and the mount is asked again (ENOTCONN at once).
            fuse.kill()
            fuse.wait(10)
            assert settled_threads(pid, counts[0] - 1) == counts[0] - 1
            text = agent.metrics_text()
            assert filesystem_samples(text, "node_filesystem_device_error")[str(hung)] == 1.0
            assert filesystem_samples(text, "node_filesystem_size_bytes") == {str(good): 65536.0}
            assert "returned after" in agent.log()
        finally:
            fuse.kill()  # before the agent: its process cannot end while a thread waits on the daemon
            fuse.wait(10)
            agent.stop()


# Mount points that hang, with a mount timeout far past any scrape's
# deadline (Prometheus's default scrape timeout is 10 s): the deadline alone
# must end each collection's wait.
HUNG_POINTS = 2
LONG_MOUNT_TIMEOUT = 60


def test_many_hung_mounts_are_given_up_at_the_scrapes_deadline(tmp_path):
    """Each collection stops waiting at its deadline: the mounts it did
    not reach are reported with device_error 1 (one log line), the next
    collection goes on with them, and each is given up once in all."""
    procfs = tmp_path / "proc"
    (procfs / "1").mkdir(parents=True)
    good, hung = tmp_path / "good", tmp_path / "hung"
    points = [f"{hung}/{n}" for n in range(HUNG_POINTS)]
    (procfs / "1" / "mountinfo").write_text(
        f"40 1 0:50 / {good} rw,relatime - tmpfs good rw,size=64k\n" +
        "".join(f"{50 + n} 1 0:51 / {point} rw - fuse.hungfs hungfs rw\n" for n, point in enumerate(points)))
    with hung_mount(tmp_path) as (ns, hung, calls, fuse):
        # Start-up's first collection meets the deadline too, or the agent
        # would not start.
        agent = AgentProcess("--procfs", str(procfs), "--rootfs", "/", "--collector.disable-defaults",
                             "--collector.filesystem", "--collector.filesystem.mount-timeout",
                             str(LONG_MOUNT_TIMEOUT),
                             wrapper=ns.enter)
        try:
            took = []
            # The agent's log counts the calls given up, one line each (the
            # daemon's own count misses requests still queued in the kernel
            # while all of its threads hang).
            while agent.log().count("has not returned after") < HUNG_POINTS and len(took) < HUNG_POINTS:
                started = time.monotonic()
                text = agent.metrics_text()
                took.append(time.monotonic() - started)
                errors = filesystem_samples(text, "node_filesystem_device_error")
                assert errors == {str(good): 0.0, **{point: 1.0 for point in points}}
            assert agent.log().count("has not returned after") == HUNG_POINTS
            assert max(took, default=0) < 10, took
            assert "before the scrape's deadline: reported with device_error 1" in agent.log()
            # All stuck now: nothing to wait for, and nothing asked again.
            asked = statfs_calls(calls)
            assert 0 < asked <= HUNG_POINTS
            for _ in range(3):
                started = time.monotonic()
                agent.metrics_text()
                assert time.monotonic() - started < 1
            assert statfs_calls(calls) == asked
            assert agent.log().count("has not returned after") == HUNG_POINTS
        finally:
            fuse.kill()
            fuse.wait(10)
            agent.stop()
