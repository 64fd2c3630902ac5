"""A private mount namespace for tests that mount things (tmpfs per mount
point, a FUSE file system): mounts made in it are invisible to the rest of
the machine (a hung FUSE mount there would hang anyone's `df`), and vanish
with the namespace when its last process exits, even if the test dies.

    with MountNamespace() as ns:
        ns.run("mount", "-t", "tmpfs", "tmpfs", str(d))
        subprocess.run([*ns.enter, "df", str(d)])   # any command, inside

Root only (unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN): elsewhere the test
skips, or fails in CI, which runs as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest


def require_mount_namespaces() -> None:
    missing = [tool for tool in ("unshare", "nsenter", "mount") if shutil.which(tool) is None]
    reason = (f"{', '.join(missing)} not installed (util-linux, mount)" if missing else
              "mounting in a private mount namespace needs root" if os.geteuid() != 0 else None)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": required in CI")
        pytest.skip(reason)


class MountNamespace:
    """Held open by a sleeping process; `enter` is the argv prefix that runs
    a command inside (nsenter execs it: the pid is the command's own)."""

    def __init__(self, hold_seconds: int = 600):
        require_mount_namespaces()
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", str(hold_seconds)],
                                       stdin=subprocess.DEVNULL)
        ours = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 10
        # Inside once unshare has exec'd sleep.
        while True:
            try:
                with open(f"/proc/{self.holder.pid}/comm") as f:
                    if f.read().strip() == "sleep" and os.readlink(f"/proc/{self.holder.pid}/ns/mnt") != ours:
                        break
            except OSError:
                pass
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("unshare --mount did not start a namespace")
            time.sleep(0.01)
        self.enter = ("nsenter", f"--target={self.holder.pid}", "--mount", "--")

    def run(self, *argv: str) -> None:
        r = subprocess.run([*self.enter, *argv], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{argv} in the namespace: {r.stderr}"

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
