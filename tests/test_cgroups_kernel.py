"""The cgroups collector on this machine's real cgroup2 mount: a cgroup
with a Docker-style name (`docker-<64 hex>.scope`) and a CPU-burning child
moved into it through cgroup.procs.

The child is stopped (SIGSTOP) while the agent is scraped, so the kernel's
cpu.stat stands still and the agent's figure must equal it exactly; then
it burns again, and the figure must have grown with it.  The cgroups are
removed afterwards, whatever happens.  Skips where there is no writable
cgroup2 mount (not root, or a read-only /sys in a container)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from agentproc import AgentProcess
from oracle import Exposition


def cgroup2_mount() -> str | None:
    """Where the agent looks: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid)."""
    for path in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


MOUNT = cgroup2_mount()


def read_usage_usec(cgroup: str) -> int:
    with open(os.path.join(cgroup, "cpu.stat")) as f:
        return int(dict(line.split() for line in f)["usage_usec"])


@contextlib.contextmanager
def docker_style_cgroup():
    """(cgroup path, its id label) under a slice of this test's own, removed
    on the way out, with any process left in it killed first."""
    if MOUNT is None:
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
    slice_dir = os.path.join(MOUNT, f"agent-test-{os.getpid()}.slice")
    container_id = secrets.token_hex(32)
    scope = os.path.join(slice_dir, f"docker-{container_id}.scope")
    try:
        os.makedirs(scope)
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup under {MOUNT}: {exc.strerror}")
    try:
        yield scope, "/" + os.path.relpath(scope, MOUNT), container_id
    finally:
        for path in (scope, slice_dir):
            deadline = time.monotonic() + 5
            while os.path.isdir(path):
                procs = os.path.join(path, "cgroup.procs")
                with contextlib.suppress(OSError):
                    for pid in open(procs).read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    os.rmdir(path)
                except OSError:  # EBUSY until a killed task has gone
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def stop(proc: subprocess.Popen, scope: str) -> None:
    """SIGSTOP, then wait until the kernel says stopped and the cgroup's
    usage stands still (the signal is delivered asynchronously)."""
    proc.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{proc.pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "T":
            before = read_usage_usec(scope)
            time.sleep(0.02)
            if read_usage_usec(scope) == before:
                return
        assert time.monotonic() < deadline, "the burner did not stop"
        time.sleep(0.005)


def scrape_usage(agent: AgentProcess, cgroup_id: str) -> tuple[Exposition, float]:
    exp = Exposition(agent.metrics_text())
    samples = {dict(labels)["id"]: float(v) for (name, labels), v in exp.samples.items()
               if name == "container_cpu_usage_seconds_total"}
    assert cgroup_id in samples, exp.text[:2000]
    return exp, samples[cgroup_id]


def test_docker_style_cgroup_cpu_follows_the_kernel(backend_name):
    with docker_style_cgroup() as (scope, cgroup_id, container_id):
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        try:
            with open(os.path.join(scope, "cgroup.procs"), "w") as f:
                f.write(str(burner.pid))
            time.sleep(0.3)
            stop(burner, scope)
            with AgentProcess("--collector.disable-defaults", "--collector.cgroups", "--backend", backend_name,
                              "--collector.cgroups.include", container_id) as agent:
                usage_before = read_usage_usec(scope)
                exp, first = scrape_usage(agent, cgroup_id)
                assert usage_before > 0
                assert first == usage_before / 1e6
                assert read_usage_usec(scope) == usage_before  # stood still while scraped

                burner.send_signal(signal.SIGCONT)
                time.sleep(0.5)
                stop(burner, scope)
                usage_after = read_usage_usec(scope)
                exp, second = scrape_usage(agent, cgroup_id)
                assert second == usage_after / 1e6
                # Half a second of burning on a shared machine: at least 50 ms of CPU.
                assert second - first >= 0.05, (first, second)

            # What else this kernel gives this cgroup, and only that.
            families = {name for (name, labels), _ in exp.samples.items()
                        if dict(labels).get("id") == cgroup_id}
            for family, file in (("container_memory_usage_bytes", "memory.current"),
                                 ("container_fs_reads_bytes_total", "io.stat"),
                                 ("container_pressure_cpu_waiting_seconds_total", "cpu.pressure"),
                                 ("container_cpu_user_seconds_total", "cpu.stat")):
                exists = os.path.exists(os.path.join(scope, file))
                has_series = family in families
                # io.stat is empty for a cgroup that never did I/O: no series then.
                if file == "io.stat" and exists and not open(os.path.join(scope, file)).read():
                    exists = False
                assert has_series == exists, (family, file, exists)
            # Its network counters are those of its process's namespace (the host's here).
            with open(f"/proc/{burner.pid}/net/dev") as f:
                interfaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
            shown = {dict(labels)["interface"] for (name, labels), _ in exp.samples.items()
                     if name == "container_network_receive_bytes_total" and dict(labels)["id"] == cgroup_id}
            assert shown == {i for i in interfaces if not i.lower().startswith(("lo", "veth", "docker", "nerdctl"))}
        finally:
            burner.kill()
            burner.wait()
