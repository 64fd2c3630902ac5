"""A real systemd to test against: a minimal Debian bookworm tree
(mmdebstrap, or debootstrap) booted with `systemd-nspawn --boot`, with the
test's units, its system bus socket bound to a host directory.

    with BootedSystemd(tmp_path) as machine:
        machine.address          # unix:path=... : the container's system bus
        machine.busctl("call", ...)

The tree is built once and kept in /var/cache/monitoring-agent-tests
($AGENT_TEST_CACHE), outside the repository: the first build downloads
~60 MB and takes about a minute, a boot about 3 s.  The container runs with
--volatile=overlay, so a boot writes nothing into the cached tree, and two
test runs may boot it at once.  Needs root, systemd-nspawn
(systemd-container) and mmdebstrap or debootstrap
(scripts/install-test-packages.sh); without them `require_tools` skips with
one line, and fails in CI, where they are installed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("AGENT_TEST_CACHE", "/var/cache/monitoring-agent-tests"))
TREE = CACHE / "bookworm-systemd"
PACKAGES = "systemd,systemd-sysv,dbus"

# The units the tests look at, by the state they settle in after boot.
UNITS = {
    # Running: a service that never exits.
    "agent-test-running.service": """\
[Unit]
Description=agent test: running
# Loads agent-test-inactive.service without starting it: ListUnits shows
# only loaded units.
After=agent-test-inactive.service
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
""",
    # Failed: a oneshot whose command fails.
    "agent-test-failed.service": """\
[Unit]
Description=agent test: failed
[Service]
Type=oneshot
ExecStart=/bin/false
[Install]
WantedBy=multi-user.target
""",
    # Instances started by the benchmarks to make a host with many units.
    "agent-bench@.service": """\
[Unit]
Description=agent benchmark unit %i
[Service]
ExecStart=/bin/sleep infinity
""",
    # Inactive: loaded (the running unit orders itself after it), never started.
    "agent-test-inactive.service": """\
[Unit]
Description=agent test: inactive
[Service]
Type=notify
ExecStart=/bin/sleep infinity
""",
}


def require_tools() -> None:
    missing = [tool for tool in ("systemd-nspawn", "busctl") if shutil.which(tool) is None]
    if shutil.which("mmdebstrap") is None and shutil.which("debootstrap") is None:
        missing.append("mmdebstrap")
    why = None
    if missing:
        why = f"a real systemd needs {', '.join(missing)} (scripts/install-test-packages.sh)"
    elif os.geteuid() != 0:
        why = "a real systemd needs root (systemd-nspawn)"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def build_tree() -> Path:
    """The cached tree, built first if it is not there (under a lock: two
    test runs build it once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "bookworm-systemd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (TREE / ".complete").exists():
            return TREE
        partial = CACHE / f"bookworm-systemd.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        if shutil.which("mmdebstrap"):
            argv = ["mmdebstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(partial)]
        else:
            argv = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(partial)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        shutil.rmtree(TREE, ignore_errors=True)
        partial.rename(TREE)
        (TREE / ".complete").write_text("bookworm, " + PACKAGES + "\n")
        return TREE


def write_units(directory: Path) -> None:
    """The units, enabled, as a runtime unit directory (/run/systemd/system)."""
    wants = directory / "multi-user.target.wants"
    wants.mkdir(parents=True)
    for name, text in UNITS.items():
        (directory / name).write_text(text)
        if "WantedBy=multi-user.target" in text:
            (wants / name).symlink_to(f"../{name}")


class BootedSystemd:
    def __init__(self, workdir: Path, boot_timeout: float = 60.0):
        self.workdir = Path(workdir)
        self.boot_timeout = boot_timeout
        self.bus_dir = self.workdir / "run-dbus"
        self.units_dir = self.workdir / "run-systemd-system"
        self.socket = self.bus_dir / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self.proc = None

    def __enter__(self):
        tree = build_tree()
        self.bus_dir.mkdir(parents=True)
        write_units(self.units_dir)
        self.log = open(self.workdir / "nspawn.log", "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", f"--directory={tree}", "--volatile=overlay", "--register=no",
             "--keep-unit", "--private-network", f"--machine=agent-test-{os.getpid()}",
             f"--bind={self.bus_dir}:/run/dbus", f"--bind={self.units_dir}:/run/systemd/system"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_booted()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_booted(self):
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("systemd-nspawn exited:\n" + self.log_text())
            if self.socket.exists():
                state = self.system_state()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the container did not finish booting in {self.boot_timeout:g} s:\n" + self.log_text())

    def log_text(self) -> str:
        return (self.workdir / "nspawn.log").read_bytes().decode("utf-8", "replace")[-3000:]

    def busctl(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["busctl", f"--address={self.address}", *args], capture_output=True, text=True,
                           timeout=20, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"busctl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def manager(self, *args: str, check: bool = True) -> str:
        return self.busctl(*args[:1], "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", *args[1:], check=check)

    def system_state(self) -> str | None:
        out = self.manager("get-property", "SystemState", check=False).split()
        return out[1].strip('"') if len(out) == 2 else None

    def active_state(self, unit: str) -> str:
        path = self.manager("call", "GetUnit", "s", unit).split()[1].strip('"')
        out = self.busctl("get-property", "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                          "ActiveState")
        return out.split()[1].strip('"')

    def init_pid(self) -> int:
        """The container's systemd, as the host numbers it: the child of
        systemd-nspawn."""
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if int(data.rsplit(b")", 1)[1].split()[1]) == self.proc.pid:
                    return int(entry)
        raise RuntimeError("no process under systemd-nspawn")

    def start_instances(self, template: str, count: int) -> None:
        """Start `count` instances of a template unit (template "x@" gives
        x@1.service ...), in one pipelined batch, and wait until systemd
        lists them all as active."""
        from jeepney import DBusAddress, new_method_call

        from agent.dbus import Connection
        manager = DBusAddress("/org/freedesktop/systemd1", "org.freedesktop.systemd1",
                              "org.freedesktop.systemd1.Manager")
        deadline = time.monotonic() + 120
        connection = Connection(self.address, bus=True, deadline=deadline)
        try:
            names = [f"{template}{i}.service" for i in range(1, count + 1)]
            # dbus-daemon's system bus allows 128 pending calls per connection.
            for first in range(0, count, 100):
                replies = connection.call([new_method_call(manager, "StartUnit", "ss", (name, "replace"))
                                           for name in names[first:first + 100]], deadline)
                errors = [r for r in replies if isinstance(r, Exception)]
                assert not errors, errors[:3]
            while True:
                [units] = connection.call([new_method_call(manager, "ListUnits")], deadline)[0:1]
                active = {u[0] for u in units[0] if u[3] == "active"}
                if active.issuperset(names):
                    return
                time.sleep(0.2)
        finally:
            connection.close()

    def wait_active_state(self, unit: str, want: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while (state := self.active_state(unit)) != want:
            if time.monotonic() > deadline:
                raise AssertionError(f"{unit} is {state}, not {want}, after {timeout:g} s")
            time.sleep(0.1)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            # nspawn turns SIGTERM into a clean shutdown of the container.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, "log", None) is not None:
            self.log.close()
