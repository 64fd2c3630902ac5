"""The systemd notify protocol, without a dependency: one datagram of
"KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (sd_notify(3);
a leading "@" names an abstract socket)."""

from __future__ import annotations

import os
import socket


def notify(message: str, env=os.environ) -> bool:
    """Send `message` (e.g. "READY=1"); False when not under systemd."""
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(message.encode(), address)
    except OSError:
        return False  # systemd went away; nothing a monitoring agent can do
    return True


def watchdog_interval(env=os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when
    the watchdog is off or meant for another process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6
