"""Log targets: stderr (journald captures it under systemd), syslog
(/dev/log), or journald's native protocol (structured fields, a datagram
to /run/systemd/journal/socket; no dependency)."""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys

IDENT = "monitoring-agent"
STDERR_FORMAT = "%(asctime)s monitoring-agent[%(process)d] %(levelname)s %(message)s"
TARGETS = ("stderr", "syslog", "journald")
# Overridable so that tests can stand up a real socket of their own.
SYSLOG_SOCKET = os.environ.get("MONITORING_AGENT_SYSLOG_SOCKET", "/dev/log")
JOURNAL_SOCKET = os.environ.get("MONITORING_AGENT_JOURNAL_SOCKET", "/run/systemd/journal/socket")

# syslog(3) priorities, which journald's PRIORITY field uses too.
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class LogTargetError(Exception):
    pass


class JournaldHandler(logging.Handler):
    def __init__(self, path: str = JOURNAL_SOCKET):
        super().__init__()
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.connect(path)

    @staticmethod
    def field(key: str, value: str) -> bytes:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:  # the protocol's binary form: key, LF, 64-bit LE length, data
            return key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        return key.encode() + b"=" + data + b"\n"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            datagram = b"".join((
                self.field("MESSAGE", message),
                self.field("PRIORITY", str(PRIORITY.get(record.levelno, 6))),
                self.field("SYSLOG_IDENTIFIER", IDENT),
                self.field("SYSLOG_PID", str(os.getpid())),
            ))
            self.sock.send(datagram)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def make_handler(target: str) -> logging.Handler:
    if target == "stderr":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
        return handler
    if target == "syslog":
        # Imported only here: logging.handlers brings pickle, queue and more
        # (~0.5 MiB of RSS) that the other targets never use.
        from logging.handlers import SysLogHandler
        try:
            handler = SysLogHandler(address=SYSLOG_SOCKET, facility=SysLogHandler.LOG_DAEMON)
        except OSError as exc:
            raise LogTargetError(f"--log-target syslog: {SYSLOG_SOCKET}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter(f"{IDENT}[%(process)d]: %(message)s"))
        return handler
    if target == "journald":
        try:
            handler = JournaldHandler(JOURNAL_SOCKET)
        except OSError as exc:
            raise LogTargetError(f"--log-target journald: {JOURNAL_SOCKET}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter("%(message)s"))
        return handler
    raise LogTargetError(f"--log-target: expected one of {', '.join(TARGETS)}, got {target!r}")


def daemon_log_target() -> str:
    """Where a daemon logs when no target is configured: its stderr is
    /dev/null, so syslog where a syslog daemon listens, else journald."""
    if os.path.exists(SYSLOG_SOCKET):
        return "syslog"
    if os.path.exists(JOURNAL_SOCKET):
        return "journald"
    raise LogTargetError(f"its log would be lost: no syslog ({SYSLOG_SOCKET}) or journald "
                         f"({JOURNAL_SOCKET}) socket here, and a daemon's stderr is /dev/null; "
                         "start one, or run in the foreground under a supervisor that keeps stderr")


def setup_logging(level: str, target: str = "stderr") -> logging.Logger:
    """Configure the "agent" logger; on a reload, replaces its handler."""
    log = logging.getLogger("agent")
    handler = make_handler(target)  # may raise: the old handler stays
    for old in list(log.handlers):
        log.removeHandler(old)
        old.close()
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(level.upper())
    return log
