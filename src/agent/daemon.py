"""Detach from the terminal the classic way (fork, setsid, fork, chdir /,
umask 022, standard streams to /dev/null), called only once the
configuration is valid and the socket is bound, so a start-up error still
reaches the terminal.  The original process waits until the daemon says it
is serving, so its exit status tells the truth and the PID file is written
by the time the shell gets its prompt back."""

from __future__ import annotations

import os
import select
import sys

READY_TIMEOUT = 30.0


def daemonize() -> int:
    """Return, in the daemon, a pipe fd to pass to `ready()`; the calling
    process exits 0 once the daemon is ready, 1 if it dies before."""
    r, w = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(w)
        os.waitpid(first, 0)
        ok = False
        if select.select([r], [], [], READY_TIMEOUT)[0]:
            ok = os.read(r, 1) == b"1"
        if not ok:
            print("monitoring-agent: error: the daemon did not start (see its log)", file=sys.stderr)
        os._exit(0 if ok else 1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    return w


def ready(fd: int) -> None:
    os.write(fd, b"1")
    os.close(fd)
