"""Configuration: built-in defaults, then the INI file's [agent] section,
then command-line flags.  Every value is validated here, so a bad flag, key
or value is one ConfigError naming it, before anything starts.  A reload
(SIGHUP) builds a new Config the same way and swaps it in only when valid.
"""

from __future__ import annotations

import argparse
import configparser
import math
import os
import re
from dataclasses import dataclass, fields
from typing import Callable

from agent import __version__
from agent.collectors.diskstats import DEFAULT_EXCLUDE as DEFAULT_DISK_EXCLUDE

DEFAULT_CONFIG = "/etc/monitoring-agent.conf"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_TARGETS = ("stderr", "syslog", "journald")
FORMATS = ("prometheus", "openmetrics")
BACKENDS = ("auto", "c", "python")


class ConfigError(Exception):
    """One line naming the bad flag, key or value."""


@dataclass(frozen=True)
class Config:
    listen: str = "0.0.0.0:8080"
    procfs: str = "/proc"
    cpu_window: float = 1.0
    backend: str = "auto"
    disk_include: str = ""
    disk_exclude: str = DEFAULT_DISK_EXCLUDE
    net_include: str = ""
    net_exclude: str = ""
    log_level: str = "info"
    log_target: str = "stderr"
    pidfile: str = ""
    # Flags only (not config-file keys):
    config: str | None = None
    once: bool = False
    format: str = "prometheus"
    daemon: bool = False

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


FILE_KEYS = ("listen", "procfs", "cpu_window", "backend", "disk_include", "disk_exclude",
             "net_include", "net_exclude", "log_level", "log_target", "pidfile")
FLAGS_ONLY = ("config", "once", "format", "daemon")
# The PID file --daemon writes when none is configured.
DAEMON_PIDFILE = "/run/monitoring-agent.pid"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host needs brackets, e.g. [::1]:8080, got {value!r}")
    return host or "0.0.0.0", int(port)


def _cpu_window(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= 86400):
        raise ValueError(f"expected seconds between 0 (exclusive) and 86400, got {value!r}")
    return seconds


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        v = value.strip().lower()
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return v
    return check


def _listen(value: str) -> str:
    parse_listen(value)
    return value


def _procfs(value: str) -> str:
    if not value:
        raise ValueError("expected a directory, got ''")
    return value


VALIDATORS: dict[str, Callable[[str], object]] = {
    "listen": _listen,
    "procfs": _procfs,
    "cpu_window": _cpu_window,
    "backend": _choice(BACKENDS),
    "disk_include": _regex,
    "disk_exclude": _regex,
    "net_include": _regex,
    "net_exclude": _regex,
    "log_level": _choice(LOG_LEVELS),
    "log_target": _choice(LOG_TARGETS),
    "format": _choice(FORMATS),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="monitoring-agent", description="A Linux system-monitoring agent for Prometheus.",
                argument_default=argparse.SUPPRESS)
    p.add_argument("--config", metavar="FILE",
                   help=f"INI file with an [agent] section (default: {DEFAULT_CONFIG} when it exists)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 0.0.0.0:8080)")
    p.add_argument("--procfs", metavar="DIR", help="procfs root (default /proc; /host/proc in a container)")
    p.add_argument("--cpu-window", metavar="SECONDS", help="shortest window for CPU percentages (default 1.0)")
    p.add_argument("--backend", metavar="{auto,c,python}", help="parser backend (default auto)")
    p.add_argument("--disk-include", metavar="REGEX", help="only disks whose name matches")
    p.add_argument("--disk-exclude", metavar="REGEX",
                   help="skip disks whose name matches (default: partitions and pseudo-devices)")
    p.add_argument("--net-include", metavar="REGEX", help="only interfaces whose name matches")
    p.add_argument("--net-exclude", metavar="REGEX", help="skip interfaces whose name matches")
    p.add_argument("--once", action="store_true", help="print one exposition to stdout and exit")
    p.add_argument("--format", metavar="{prometheus,openmetrics}", help="format for --once (default prometheus)")
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning or error (default info)")
    p.add_argument("--log-target", metavar="{stderr,syslog,journald}", help="where logs go (default stderr)")
    p.add_argument("--daemon", action="store_true",
                   help=f"detach and run in the background (PID file {DAEMON_PIDFILE} unless --pidfile)")
    p.add_argument("--pidfile", metavar="FILE", help="write and lock a PID file (default: none in the foreground)")
    p.add_argument("--version", action="version", version=f"monitoring-agent {__version__}")
    return p


def _validate(key: str, raw: str, where: str) -> object:
    try:
        return VALIDATORS[key](raw) if key in VALIDATORS else raw
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def read_file(path: str) -> dict[str, str]:
    """The [agent] section of an INI file, keys normalised to underscores."""
    cp = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"config file {path}: line {exc.lineno}: key outside a section "
                          f"(expected [agent] first)") from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]
        raise ConfigError(f"config file {path}: line {lineno}: cannot parse {line.strip()!r} "
                          f"(expected key = value)") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path}: {first}") from None
    for section in cp.sections():
        if section != "agent":
            raise ConfigError(f"config file {path}: unknown section [{section}] (expected [agent])")
    if not cp.has_section("agent"):
        return {}
    out = {}
    for key, value in cp.items("agent"):
        name = key.replace("-", "_")
        if name not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
        out[name] = value.strip()
    return out


def load(argv: list[str] | None, default_config: str = DEFAULT_CONFIG) -> Config:
    """Defaults < config file < flags.  Raises ConfigError."""
    args = vars(build_parser().parse_args(argv))
    path = args.get("config")
    if path is None and os.path.exists(default_config):
        path = default_config
    values: dict[str, object] = {}
    if path is not None:
        for key, raw in read_file(path).items():
            values[key] = _validate(key, raw, f"config file {path}: {key}")
    for key, raw in args.items():
        if key == "config":
            continue
        values[key] = raw if key in ("once", "daemon") else _validate(key, raw, "--" + key.replace("_", "-"))
    # As node_exporter does: choosing which disks to include replaces the
    # default exclusion, unless an exclusion is also given.
    if values.get("disk_include") and "disk_exclude" not in values:
        values["disk_exclude"] = ""
    if values.get("daemon") and not values.get("pidfile"):
        values["pidfile"] = DAEMON_PIDFILE
    known = {f.name for f in fields(Config)}
    return Config(config=path, **{k: v for k, v in values.items() if k in known})
