"""Configuration: built-in defaults, then the INI file's [agent] section,
then command-line flags.  Every value is validated here, so a bad flag, key
or value is one ConfigError naming it, before anything starts.  A reload
(SIGHUP) builds a new Config the same way and swaps it in only when valid.
"""

from __future__ import annotations

import argparse
import configparser
import io
import math
import os
import re
import sys

from agent import __version__
from agent import collectors as collector_table
from agent.collectors.base import boolean as _boolean
from agent.collectors.diskstats import DEFAULT_EXCLUDE as DEFAULT_DISK_EXCLUDE
from agent.records import record
from agent.regular_files import read_regular

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

DEFAULT_CONFIG = "/etc/monitoring-agent.conf"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_TARGETS = ("stderr", "syslog", "journald")
FORMATS = ("prometheus", "openmetrics")
BACKENDS = ("auto", "c", "python")
TLS_CLIENT_AUTH = ("require", "verify-if-given")
TLS_VERSIONS = ("1.2", "1.3")


class ConfigError(Exception):
    """One line naming the bad flag, key or value."""


# A named tuple, not a dataclass: dataclasses imports inspect, ~1 MiB of RSS
# for the life of the process.
@record
class Config:
    listen: str = "0.0.0.0:8080"
    procfs: str = "/proc"
    sysfs: str = "/sys"
    rootfs: str = "/"
    cpu_window: float = 1.0
    backend: str = "auto"
    disk_include: str = ""
    disk_exclude: str = DEFAULT_DISK_EXCLUDE
    net_include: str = ""
    net_exclude: str = ""
    log_level: str = "info"
    log_target: str = "stderr"
    pidfile: str = ""
    # Access control (docs/SECURITY.md).  Secrets are never values here: a
    # token is read from auth_token_file, a key from tls_key.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    tls_client_auth: str = "require"
    tls_min_version: str = "1.2"
    auth_token_file: str = ""
    allow: str = ""
    health_requires_auth: bool = False
    # HTTP limits.
    max_connections: int = 64
    header_timeout: float = 5.0
    max_header_bytes: int = 8192
    keepalive_timeout: float = 75.0
    # Push mode (docs/PUSH.md): URLs separated by spaces, and the interval.
    push: str = ""
    push_interval: float = 10.0
    push_buffer_limit: int = 10_000
    # The collectors that run, in agent.collector_table.TABLE's order: the
    # defaults, then [collector.NAME] sections, then --collector.NAME flags.
    collectors: tuple = collector_table.DEFAULT_ENABLED
    # Seconds a collector may take before a scrape leaves it out, unless its
    # own timeout key says otherwise.
    collector_timeout: float = 5.0
    # Per collector, its options' values (every collector, defaults filled).
    collector_options: dict = {entry.name: collector_table.default_options(entry) for entry in collector_table.TABLE}
    # Flags only (not config-file keys):
    config: str | None = None
    once: bool = False
    format: str = "prometheus"
    daemon: bool = False

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


FILE_KEYS = ("listen", "procfs", "sysfs", "rootfs", "cpu_window", "backend", "disk_include", "disk_exclude",
             "net_include", "net_exclude", "log_level", "log_target", "pidfile",
             "tls_cert", "tls_key", "tls_client_ca", "tls_client_auth", "tls_min_version",
             "auth_token_file", "allow", "health_requires_auth",
             "max_connections", "header_timeout", "max_header_bytes", "keepalive_timeout",
             "push", "push_interval", "push_buffer_limit", "collector_timeout")
FLAGS_ONLY = ("config", "once", "format", "daemon")
# The PID file --daemon writes when none is configured.
DAEMON_PIDFILE = "/run/monitoring-agent.pid"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(f"expected HOST:PORT (e.g. 0.0.0.0:8080 or [::1]:8080), got {value!r}")
    if int(port) > 65535:
        raise ValueError(f"port {int(port)} out of range (0 to 65535; 0 picks a free one), got {value!r}")
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


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def check(value: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and low < seconds <= high):
            raise ValueError(f"expected seconds between {low:g} (exclusive) and {high:g}, got {value!r}")
        return seconds
    return check


def _integer(low: int, high: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
        return int(text)
    return check



def _allow(value: str) -> str:
    """Comma-separated CIDRs (a bare address is one host); the normalised
    list, or '' for everyone."""
    import ipaddress  # only when an allowlist is configured
    networks = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            # strict=False: 10.1.2.3/8 means 10.0.0.0/8, as the user meant.
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"expected comma-separated CIDRs such as 10.0.0.0/8,::1/128, "
                             f"got {item!r}") from None
    return ",".join(networks)


def _push(value: str) -> str:
    """Push URLs separated by commas or white space, each checked; the
    normalised list separated by spaces, or '' for none."""
    urls = [u for u in re.split(r"[\s,]+", value.strip()) if u]
    if not urls:
        return ""
    # Imported only when push is configured: most agents never push.
    from agent.push import PushError, parse_push_url
    for url in urls:
        try:
            parse_push_url(url)
        except PushError as exc:
            raise ValueError(str(exc).removeprefix("--push ")) from None
    return " ".join(urls)


def _path(value: str) -> str:
    if "\0" in value:
        raise ValueError("a path cannot hold a NUL byte")
    return value


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
    "sysfs": _procfs,
    "rootfs": _procfs,
    "cpu_window": _cpu_window,
    "backend": _choice(BACKENDS),
    "disk_include": _regex,
    "disk_exclude": _regex,
    "net_include": _regex,
    "net_exclude": _regex,
    "log_level": _choice(LOG_LEVELS),
    "log_target": _choice(LOG_TARGETS),
    "format": _choice(FORMATS),
    "push": _push,
    "push_interval": _seconds(0, 86400),
    # Points waiting per push target, ~200 bytes each: 10,000 is ~2 MiB and
    # bridges 79 minutes of outage at 30 s and 63 points a collection
    # (docs/PUSH.md); the bound keeps a typo from reserving gigabytes.
    "push_buffer_limit": _integer(1, 1_000_000),
    "collector_timeout": _seconds(0, 300),
    "tls_cert": _path,
    "tls_key": _path,
    "tls_client_ca": _path,
    "tls_client_auth": _choice(TLS_CLIENT_AUTH),
    "tls_min_version": _choice(TLS_VERSIONS),
    "auth_token_file": _path,
    "allow": _allow,
    "health_requires_auth": _boolean,
    "max_connections": _integer(1, 4096),
    "header_timeout": _seconds(0, 300),
    "max_header_bytes": _integer(1024, 1 << 20),
    "keepalive_timeout": _seconds(0, 3600),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise ConfigError(message)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the terminal width found through os.

    argparse makes a formatter for every add_argument, and the default one
    imports shutil for the terminal size: shutil, with the bz2, lzma and
    fnmatch it imports, is ~1 MiB of an agent's RSS that serves for weeks
    and never prints help.  shutil.get_terminal_size's answer: $COLUMNS if
    it is a positive integer, else stdout's terminal width if positive,
    else 80; less 2, as argparse does."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):  # no stdout, closed, not a terminal
            columns = 0
    return columns if columns > 0 else 80


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="monitoring-agent", description="A Linux system-monitoring agent for Prometheus.",
                argument_default=argparse.SUPPRESS, formatter_class=_HelpFormatter)
    p.add_argument("--config", metavar="FILE",
                   help=f"INI file with an [agent] section (default: {DEFAULT_CONFIG} when it exists)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 0.0.0.0:8080)")
    p.add_argument("--procfs", "--path.procfs", dest="procfs", metavar="DIR",
                   help="procfs root (default /proc; /host/proc in a container)")
    p.add_argument("--sysfs", "--path.sysfs", dest="sysfs", metavar="DIR",
                   help="sysfs root (default /sys; /host/sys in a container)")
    p.add_argument("--rootfs", "--path.rootfs", dest="rootfs", metavar="DIR",
                   help="the host's root, under which mount points are found (default /; /host/root in a container)")
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
    tls = p.add_argument_group("TLS, authentication and access (each also a config-file key)")
    tls.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    tls.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    tls.add_argument("--tls-client-ca", metavar="FILE",
                     help="PEM CA bundle that client certificates must chain to (mutual TLS)")
    tls.add_argument("--tls-client-auth", metavar="{require,verify-if-given}",
                     help="with --tls-client-ca: require a client certificate (default) or verify one if given")
    tls.add_argument("--tls-min-version", metavar="{1.2,1.3}", help="oldest TLS version accepted (default 1.2)")
    tls.add_argument("--auth-token-file", metavar="FILE",
                     help="require 'Authorization: Bearer TOKEN', TOKEN one of the file's lines")
    tls.add_argument("--allow", metavar="CIDR[,CIDR...]",
                     help="only these client networks may connect (default: any)")
    tls.add_argument("--health-requires-auth", metavar="BOOL",
                     help="whether /health needs a token too (default false)")
    limits = p.add_argument_group("HTTP limits (each also a config-file key)")
    limits.add_argument("--max-connections", metavar="N", help="connections served at once (default 64)")
    limits.add_argument("--header-timeout", metavar="SECONDS",
                        help="time to send a request head, and a TLS handshake (default 5)")
    limits.add_argument("--max-header-bytes", metavar="BYTES",
                        help="largest request line and headers (default 8192)")
    limits.add_argument("--keepalive-timeout", metavar="SECONDS",
                        help="idle keep-alive connections are closed after this (default 75)")
    push = p.add_argument_group("push mode (docs/PUSH.md; each also a config-file key)")
    push.add_argument("--push", metavar="URL", action="append",
                      help="also send every collection to influx://, influx+udp://, graphite:// or statsd:// "
                           "HOST:PORT (repeatable)")
    push.add_argument("--push-interval", metavar="SECONDS", help="seconds between pushes (default 10)")
    push.add_argument("--push-buffer-limit", metavar="POINTS",
                      help="points kept per target while its receiver is down; the oldest go first "
                           "past it (default 10000, ~2 MiB)")
    group = p.add_argument_group(
        "collectors: --collector.NAME turns one on, --no-collector.NAME off (node_exporter's flags; "
        "in the file, [collector.NAME] enabled = BOOL); --collector.NAME.timeout SECONDS gives one "
        "its own time limit (timeout = SECONDS in its section)")
    group.add_argument("--collector.disable-defaults", dest="collector_disable_defaults", action="store_true",
                       help="start from no collector: only those enabled by --collector.NAME or the file run")
    group.add_argument("--collector.timeout", dest="collector_timeout", metavar="SECONDS",
                       help="seconds a collector may take before a scrape leaves it out and does not start it "
                            "again until it returns (default 5; [agent] collector-timeout in the file)")
    for entry in collector_table.TABLE:
        default = "on" if entry.enabled_by_default else "off"
        group.add_argument(f"--collector.{entry.name}", dest=f"collector.{entry.name}", action="store_const",
                           const=True, help=f"{entry.help} (default {default})")
        group.add_argument(f"--no-collector.{entry.name}", dest=f"collector.{entry.name}",
                           action="store_const", const=False, help=argparse.SUPPRESS)
        for option in collector_table.options_of(entry):
            # The options every collector has are told once, in the group's title.
            common = option in collector_table.COMMON_OPTIONS
            group.add_argument(f"--collector.{entry.name}.{option.name}", dest=f"option.{entry.name}.{option.name}",
                               metavar=option.metavar, help=argparse.SUPPRESS if common else option.help)
    p.add_argument("--version", action="version", version=f"monitoring-agent {__version__}")
    return p


def _validate(key: str, raw: str, where: str) -> object:
    try:
        return VALIDATORS[key](raw) if key in VALIDATORS else raw
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# A configuration is a few dozen lines; a file past this is a mistake.
MAX_CONFIG_BYTES = 1 << 20


def read_file(path: str) -> tuple[dict[str, str], dict[str, bool], dict]:
    """The [agent] section of an INI file, keys normalised to underscores;
    the `enabled` key of each [collector.NAME] section; and its options'
    texts, by (collector, option), with where each was written."""
    cp = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    try:
        # Never a FIFO or a device: a reload must not block (regular_files.py).
        text = read_regular(path, MAX_CONFIG_BYTES).decode("utf-8")
        # Universal newlines, as open() in text mode reads them.
        cp.read_file(io.StringIO(text, newline=None), source=path)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"config file {path}: line {exc.lineno}: key outside a section "
                          f"(expected [agent] first)") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"config file {path}: line {exc.lineno}: key {exc.option!r} given twice "
                          f"in [{exc.section}]") from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"config file {path}: line {exc.lineno}: section [{exc.section}] given twice") from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]
        raise ConfigError(f"config file {path}: line {lineno}: cannot parse {line.strip()!r} "
                          f"(expected key = value)") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path}: {first}") from None
    enabled: dict[str, bool] = {}
    options: dict[tuple[str, str], tuple[str, str]] = {}  # (collector, option) -> (text, where)
    for section in cp.sections():
        if section == "agent":
            continue
        name = section.removeprefix("collector.")
        if name == section:
            raise ConfigError(f"config file {path}: unknown section [{section}] "
                              "(expected [agent] or [collector.NAME])")
        if name not in collector_table.BY_NAME:
            raise ConfigError(f"config file {path}: [{section}]: unknown collector {name!r} "
                              f"(known: {', '.join(collector_table.BY_NAME)})")
        known = {option.name.replace("-", "_"): option.name for option in collector_table.options_of(collector_table.BY_NAME[name])}
        for key, value in cp.items(section):
            if key == "enabled":
                enabled[name] = _boolean_in(value, f"config file {path}: [{section}] enabled")
                continue
            option = known.get(key.replace("-", "_"))
            if option is None:
                raise ConfigError(f"config file {path}: [{section}]: unknown key {key!r} "
                                  f"(expected {', '.join(['enabled', *known.values()])})")
            options[(name, option)] = (value.strip(), f"config file {path}: [{section}] {key}")
    if not cp.has_section("agent"):
        return {}, enabled, options
    out = {}
    for key, value in cp.items("agent"):
        name = key.replace("-", "_")
        if name not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
        if name in out:  # net-exclude and net_exclude: one key to the agent, two to configparser
            raise ConfigError(f"config file {path}: line {_second_line_of(text, name)}: "
                              f"key {name!r} given twice in [agent]")
        out[name] = value.strip()
    return out, enabled, options


def _collector_options(texts: dict) -> dict:
    """Every collector's options: the defaults, with the texts given
    (file, then flags) parsed by each Option's own parser."""
    out = {}
    for entry in collector_table.TABLE:
        values = collector_table.default_options(entry)
        for option in collector_table.options_of(entry):
            given = texts.get((entry.name, option.name))
            if given is not None:
                text, where = given
                try:
                    values[option.name] = option.parse(text)
                except ValueError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
        out[entry.name] = values
    return out


def _boolean_in(raw: str, where: str) -> bool:
    try:
        return _boolean(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _second_line_of(text: str, name: str) -> int:
    """The line that gives `name` a second time, dashes and underscores
    alike (configparser keeps no line numbers of keys)."""
    seen = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        key = re.match(r"\s*([^=:\s#;\[][^=:]*?)\s*[=:]", line)
        if key and key.group(1).lower().replace("-", "_") == name:
            seen += 1
            if seen == 2:
                return lineno
    raise AssertionError(f"{name} is not given twice")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _require(values: dict[str, object], where: dict[str, str], needed: str, by: str, why: str = "") -> None:
    """`needed` must be set when `by` is, said in the words the user wrote
    `by` in: flags as flags, a file's keys as keys of that file."""
    if not values.get(by) or values.get(needed):
        return
    origin = where[by]
    if origin.startswith("--"):
        raise ConfigError(f"{_flag(needed)}: required with {origin}{why}")
    file_part = origin.rsplit(": ", 1)[0]
    raise ConfigError(f"{file_part}: {needed}: required with {by}{why}")


def _check_combinations(values: dict[str, object], where: dict[str, str]) -> None:
    _require(values, where, "tls_key", "tls_cert")
    _require(values, where, "tls_cert", "tls_key")
    _require(values, where, "tls_cert", "tls_client_ca", " (mutual TLS needs TLS)")
    if values.get("once") and values.get("daemon"):
        raise ConfigError("--daemon: cannot be combined with --once, which prints one exposition and exits")
    if "format" in values and not values.get("once"):
        raise ConfigError("--format: only with --once (a scrape picks its format by its Accept header)")
    if values.get("daemon"):
        # A daemon's stderr is /dev/null: its log goes where a person can read it.
        from agent.logs import LogTargetError, daemon_log_target
        if "log_target" not in values:
            try:
                values["log_target"] = daemon_log_target()
            except LogTargetError as exc:
                raise ConfigError(f"--daemon: {exc}") from None
        elif values["log_target"] == "stderr":
            raise ConfigError(f"{where['log_target']} stderr: --daemon sends stderr to /dev/null; "
                              "use syslog or journald (the default with --daemon is whichever runs)")


# Values that name files: made absolute against the directory the agent was
# started in, because --daemon changes to / and a reload reads them again.
PATH_KEYS = ("procfs", "sysfs", "rootfs", "pidfile", "tls_cert", "tls_key", "tls_client_ca", "auth_token_file")


def load(argv: list[str] | None, default_config: str = DEFAULT_CONFIG,
         base_dir: str | None = None) -> Config:
    """Defaults < config file < flags.  Relative paths, in flags or in the
    file, are taken from `base_dir` (default: the current directory).
    Raises ConfigError."""
    base_dir = base_dir or os.getcwd()
    args = vars(build_parser().parse_args(argv))
    path = args.get("config")
    if path is not None:
        path = os.path.join(base_dir, path)
    if path is None and os.path.exists(default_config):
        path = default_config
    values: dict[str, object] = {}
    where: dict[str, str] = {}  # each value's origin, as error messages name it
    enabled = dict.fromkeys(collector_table.DEFAULT_ENABLED, True)
    if args.pop("collector_disable_defaults", False):
        enabled = {}
    option_texts: dict = {}
    if path is not None:
        file_values, file_enabled, option_texts = read_file(path)
        for key, raw in file_values.items():
            where[key] = f"config file {path}: {key}"
            values[key] = _validate(key, raw, where[key])
        enabled.update(file_enabled)
    for key in [k for k in args if k.startswith("collector.")]:
        enabled[key.removeprefix("collector.")] = args.pop(key)
    for key in [k for k in args if k.startswith("option.")]:
        name, option = key.removeprefix("option.").split(".", 1)
        option_texts[(name, option)] = (args.pop(key), f"--collector.{name}.{option}")
    values["collectors"] = tuple(e.name for e in collector_table.TABLE if enabled.get(e.name))
    values["collector_options"] = _collector_options(option_texts)
    for key, raw in args.items():
        if key == "config":
            continue
        if key == "push":
            raw = " ".join(raw)  # --push is repeatable
        where[key] = _flag(key)
        values[key] = raw if key in ("once", "daemon") else _validate(key, raw, where[key])
    # As node_exporter does: choosing which disks to include replaces the
    # default exclusion, unless an exclusion is also given.
    if values.get("disk_include") and "disk_exclude" not in values:
        values["disk_exclude"] = ""
    if values.get("daemon") and not values.get("pidfile"):
        values["pidfile"] = DAEMON_PIDFILE
    _check_combinations(values, where)
    for key in PATH_KEYS:
        if values.get(key):
            values[key] = os.path.normpath(os.path.join(base_dir, values[key]))
    known = set(Config._fields)
    return Config(config=path, **{k: v for k, v in values.items() if k in known})


def collector_timeouts(config: Config) -> dict[str, float]:
    """Each collector's time limit: its own timeout key, else --collector.timeout."""
    return {name: (options.get("timeout") or config.collector_timeout)
            for name, options in config.collector_options.items()}
