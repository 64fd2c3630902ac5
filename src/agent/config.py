"""Configuration: built-in defaults, then the INI file's [agent] section,
then command-line flags.  Every value is validated here, so a bad flag, key
or value is one ConfigError naming it, before anything starts.  A reload
(SIGHUP) builds a new Config the same way and swaps it in only when valid.

Each of the agent's own options is declared once, in SETTINGS; its flags,
its [agent] key, its Config field, its check, --help and the README's table
(scripts/readme_tables.py) all come from that declaration.  The collectors'
options are declared by the collectors (agent.collectors.TABLE).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
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
# The PID file --daemon writes when none is configured.
DAEMON_PIDFILE = "/run/monitoring-agent.pid"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_TARGETS = ("stderr", "syslog", "journald")
FORMATS = ("prometheus", "openmetrics")
BACKENDS = ("auto", "c", "python")
TLS_CLIENT_AUTH = ("require", "verify-if-given")
TLS_VERSIONS = ("1.2", "1.3")


class ConfigError(Exception):
    """One line naming the bad flag, key or value."""


# -- the values' parsers: text -> value, or ValueError saying why --------------

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


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def check(value: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and low < seconds <= high):
            raise ValueError(f"expected seconds between {low:g} (exclusive) and {high:g}, got {value!r}")
        return seconds
    check.bounds = f"over {low:g}, at most {high:g}"
    check.schema = {"type": "number", "exclusiveMinimum": True, "minimum": low, "maximum": high}  # the API's
    return check


def _integer(low: int, high: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9 and low <= int(text) <= high):
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
        return int(text)
    check.bounds = f"{low} to {high}"
    check.schema = {"type": "integer", "minimum": low, "maximum": high}  # the API's
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


def _alert_receivers(kind: str) -> Callable[[str], str]:
    """Alertmanager or webhook URLs separated by commas or white space."""
    def check(value: str) -> str:
        urls = [u for u in re.split(r"[\s,]+", value.strip()) if u]
        from agent.alerts import parse_receiver_url  # only with alerting configured
        for url in urls:
            parse_receiver_url(url, kind)
        return " ".join(urls)
    return check


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
    check.schema = {"type": "string", "enum": list(options)}  # the API's
    return check


def _listen(value: str) -> str:
    parse_listen(value)
    return value


def _directory(value: str) -> str:
    if not value:
        raise ValueError("expected a directory, got ''")
    return value


# Values that name files: made absolute against the directory the agent was
# started in, because --daemon changes to / and a reload reads them again.
PATH_PARSERS = (_path, _directory)


# -- the declarations ------------------------------------------------------------

@record
class Setting:
    """One of the agent's own options.  `name` is the Config field; with
    dashes it is the flag (--NAME, unless `flags` says otherwise: the first
    is the one errors name) and the [agent] key (dashes or underscores).
    `parse` turns a text into the value or raises ValueError with the
    reason (None: a switch, or a text taken as given)."""
    name: str
    parse: Callable | None
    default: object
    # --help; the README's text too, unless `doc` tells more there.
    help: str
    metavar: str = "VALUE"
    flags: tuple = ()
    # The --help section: "" for the first, else one of the GROUP_ titles.
    group: str = ""
    # argparse's: "store" (takes a value), "store_true" (a switch) or
    # "append" (repeatable; the values joined by spaces, as the file writes them).
    action: str = "store"
    # False: a flag only, no [agent] key.
    file: bool = True
    # False: a reload (SIGHUP) keeps the running value until the next start.
    reload: bool = True
    # The default as --help and the README tell it, where the value alone
    # would mislead (`code` in backquotes: --help drops them).
    default_text: str = ""
    doc: str = ""
    # True: the REST API (PATCH /api/v1/config) may change it at run time.
    api: bool = False

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else "--" + self.key

    @property
    def all_flags(self) -> tuple:
        return self.flags or (self.flag,)

    @property
    def key(self) -> str:
        return self.name.replace("_", "-")

    def bounds(self) -> str:
        """The values a bounded number may take, as its parser checks them."""
        return getattr(self.parse, "bounds", "")

    def shown_default(self) -> str:
        """The default in words, with `code` in backquotes ('' for a switch)."""
        if self.default_text or self.action == "store_true":
            return self.default_text
        if self.default in ("", None):
            return "none"
        text = str(self.default).lower() if isinstance(self.default, bool) else str(self.default)
        return f"`{text}`"


def _choice_setting(name: str, options: tuple[str, ...], default: str, help: str, **more) -> Setting:
    more.setdefault("metavar", "{" + ",".join(options) + "}")
    return Setting(name, _choice(options), default, help, **more)


GROUP_ACCESS = "TLS, authentication and access (each also a config-file key)"
GROUP_LIMITS = "HTTP limits (each also a config-file key)"
GROUP_PUSH = "push mode (docs/PUSH.md; each also a config-file key)"
GROUP_ALERTS = ("alerts without Prometheus (docs/STANDALONE_ALERTS.md; rules are [alert.NAME] sections of "
                "the file; each also a config-file key)")
GROUP_COLLECTORS = (
    "collectors: --collector.NAME turns one on, --no-collector.NAME off (node_exporter's flags; "
    "in the file, [collector.NAME] enabled = BOOL); --collector.NAME.timeout SECONDS gives one "
    "its own time limit (timeout = SECONDS in its section)")

SETTINGS = (
    Setting("config", None, None, "INI file with an [agent] section", "FILE", file=False,
            default_text=f"`{DEFAULT_CONFIG}` if it exists"),
    Setting("listen", _listen, "0.0.0.0:8080", "address to serve on", "HOST:PORT",
            doc="address to serve on; IPv6 in brackets, `[::1]:8080`. A reload binds a new port before it "
                "closes the old one; another address on the same port needs a restart"),
    Setting("procfs", _directory, "/proc", "procfs root; /host/proc in a container", "DIR",
            ("--procfs", "--path.procfs")),
    Setting("sysfs", _directory, "/sys", "sysfs root; /host/sys in a container", "DIR", ("--sysfs", "--path.sysfs")),
    Setting("rootfs", _directory, "/", "the host's root, under which mount points are found; "
            "/host/root in a container", "DIR", ("--rootfs", "--path.rootfs")),
    Setting("cpu_window", _seconds(0, 86400), 1.0, "shortest window for CPU percentages", "SECONDS",
            doc="CPU percentages cover the most recent window at least this long", api=True),
    _choice_setting("backend", BACKENDS, "auto", "parser backend",
                    doc="`auto`: C when the extension imports, else Python with one warning; "
                        "`AGENT_BACKEND=python` forces Python under `auto`"),
    Setting("disk_include", _regex, "", "only disks whose name matches", "REGEX",
            doc="only disks whose name matches (alone, it replaces the default exclusion)", api=True),
    Setting("disk_exclude", _regex, DEFAULT_DISK_EXCLUDE, "skip disks whose name matches", "REGEX",
            doc="skip partitions and pseudo-devices, as node_exporter does", api=True),
    Setting("net_include", _regex, "", "only interfaces whose name matches", "REGEX", api=True),
    Setting("net_exclude", _regex, "", "skip interfaces whose name matches", "REGEX", api=True),
    Setting("once", None, False, "print one exposition to stdout and exit", action="store_true", file=False,
            doc="print one exposition to stdout and exit (not with `--daemon`)"),
    _choice_setting("format", FORMATS, "prometheus", "format for --once, and only with it", file=False),
    _choice_setting("log_level", LOG_LEVELS, "info", "debug, info, warning or error", metavar="LEVEL", api=True),
    _choice_setting("log_target", LOG_TARGETS, "stderr", "where logs go",
                    default_text="`stderr`; with `--daemon`, syslog, or journald where only it runs",
                    doc="stderr (journald captures it under systemd), syslog (`/dev/log`, facility daemon) or "
                        "journald's native protocol; `stderr` with `--daemon` is refused (a daemon's stderr "
                        "is /dev/null)"),
    Setting("daemon", None, False, "detach and run in the background", action="store_true", file=False,
            doc="detach (double fork, setsid, chdir /, umask 022) once the configuration is valid and the "
                "port bound"),
    Setting("pidfile", _path, "", "write and lock a PID file", "FILE", reload=False,
            default_text=f"none; `{DAEMON_PIDFILE}` with `--daemon`",
            doc="PID file, written atomically and locked while the agent runs; a second instance refuses "
                "to start, a stale file does not block"),
    # Access control (docs/SECURITY.md).  Secrets are never values here: a
    # token is read from auth_token_file, a key from tls_key.
    Setting("tls_cert", _path, "", "serve HTTPS with this PEM certificate (chain)", "FILE", group=GROUP_ACCESS,
            doc="serve HTTPS with this PEM certificate chain, leaf first (with `--tls-key`); re-read on SIGHUP"),
    Setting("tls_key", _path, "", "the certificate's unencrypted PEM private key", "FILE", group=GROUP_ACCESS,
            doc="the certificate's unencrypted PEM private key (with `--tls-cert`); re-read on SIGHUP"),
    Setting("tls_client_ca", _path, "", "PEM CA bundle that client certificates must chain to (mutual TLS)",
            "FILE", group=GROUP_ACCESS),
    _choice_setting("tls_client_auth", TLS_CLIENT_AUTH, "require",
                    "with --tls-client-ca: refuse clients without a valid certificate, or verify one only "
                    "if given", group=GROUP_ACCESS),
    _choice_setting("tls_min_version", TLS_VERSIONS, "1.2", "oldest TLS version accepted", group=GROUP_ACCESS),
    Setting("auth_token_file", _path, "", "require 'Authorization: Bearer TOKEN', TOKEN one of the file's lines",
            "FILE", group=GROUP_ACCESS,
            doc="require `Authorization: Bearer TOKEN`, TOKEN one of the file's lines (blank and `#` lines "
                "ignored); 401 otherwise. Tokens are never flags"),
    Setting("api_write_token_file", _path, "", "tokens that may change the configuration through the REST API "
            "(PUT and PATCH under /api/v1); without it the API only reads", "FILE", group=GROUP_ACCESS,
            doc="bearer tokens, one a line, that may change the configuration through the REST API (`PUT` "
                "and `PATCH` under `/api/v1`, [docs/API.md](docs/API.md)); without it the API only reads "
                "(405)"),
    Setting("api_state_file", _path, "", "keep the REST API's changes in this JSON file across restarts, "
            "layered over the config file and the flags", "FILE", group=GROUP_ACCESS,
            doc="keep the REST API's changes in this JSON file across restarts and reloads, layered over the "
                "config file and the flags; without it they last until the next restart or reload"),
    Setting("allow", _allow, "", "only these client networks may connect", "CIDR[,CIDR...]", group=GROUP_ACCESS,
            default_text="everyone",
            doc="only peers in these networks (IPv4, IPv6; a bare address is one host) may connect; others "
                "are closed without a response"),
    Setting("health_requires_auth", _boolean, False, "whether /health needs a token too", "BOOL",
            group=GROUP_ACCESS,
            doc="whether `/health` needs a token too (`/metrics` and `/` always do when tokens are set)"),
    Setting("max_connections", _integer(1, 4096), 64, "connections served at once", "N",
            group=GROUP_LIMITS,
            doc="connections served at once; past it one is closed for the newcomer: first one "
                "whose client is not reading its answers (or pipelines), then an idle or slow one (the longest "
                "waiting, of the address holding the most); 503 when all are busy answering clients that read "
                "(docs/SECURITY.md)"),
    Setting("header_timeout", _seconds(0, 300), 5.0, "time to send a request head, and a TLS handshake",
            "SECONDS", group=GROUP_LIMITS,
            doc="time for a TLS handshake, then for a request line and headers; slow or silent clients are "
                "closed"),
    Setting("max_header_bytes", _integer(1024, 1 << 20), 8192,
            "largest request line and headers", "BYTES", group=GROUP_LIMITS,
            doc="largest request line plus headers (431 past it, and past 100 header fields)"),
    Setting("keepalive_timeout", _seconds(0, 3600), 75.0, "idle keep-alive connections are closed after this",
            "SECONDS", group=GROUP_LIMITS),
    # Push mode (docs/PUSH.md): URLs separated by spaces, and the interval.
    Setting("push", _push, "", "also send every collection to influx://, influx+udp://, graphite://, "
            "statsd:// or otlp:// HOST:PORT; repeatable (in the file: separated by commas or spaces)", "URL",
            group=GROUP_PUSH, action="append",
            doc="also send every collection to `influx://`, `influx+udp://`, `graphite://`, `statsd://` or "
                "`otlp://` HOST:PORT ([docs/PUSH.md](docs/PUSH.md)); repeatable; in the file, URLs separated "
                "by commas or spaces", api=True),
    # Intervals that pace a loop: a tiny one would collect back to back.
    Setting("push_interval", _seconds(0.05, 86400), 10.0, "seconds between pushes", "SECONDS", group=GROUP_PUSH,
            api=True),
    # ~200 bytes a point: 10,000 is ~2 MiB and bridges 79 minutes of outage
    # at 30 s and 63 points a collection (docs/PUSH.md); the bound keeps a
    # typo from reserving gigabytes.
    Setting("push_buffer_limit", _integer(1, 1_000_000), 10_000, "points kept per target while its receiver is "
            "down, ~200 bytes each; the oldest go first past it", "POINTS", group=GROUP_PUSH, api=True),
    Setting("alertmanager", _alert_receivers("alertmanager"), "",
            "send the [alert.NAME] rules' alerts to Alertmanager's API v2 at this URL (http://HOST:9093); "
            "repeatable", "URL", group=GROUP_ALERTS, action="append",
            doc="send the `[alert.NAME]` rules' alerts to Alertmanager's API v2 at this URL "
                "(`http://HOST:9093`, [docs/STANDALONE_ALERTS.md](docs/STANDALONE_ALERTS.md)); repeatable", api=True),
    Setting("alert_webhook", _alert_receivers("webhook"), "",
            "POST the alerts to this URL as Alertmanager's webhook payload; repeatable", "URL",
            group=GROUP_ALERTS, action="append", api=True),
    Setting("alert_interval", _seconds(0.05, 3600), 15.0, "seconds between evaluations of the alert rules",
            "SECONDS", group=GROUP_ALERTS, api=True),
    Setting("alert_resend", _seconds(0.05, 86400), 60.0, "seconds between re-sends of the firing alerts",
            "SECONDS", group=GROUP_ALERTS, api=True),
    Setting("collector_timeout", _seconds(0, 300), 5.0,
            "seconds a collector may take before a scrape leaves it out and does not start it again until "
            "it returns", "SECONDS", ("--collector.timeout",), GROUP_COLLECTORS,
            doc="time a collector may take before a scrape leaves it out (see Collectors)", api=True),
)
SETTING = {setting.name: setting for setting in SETTINGS}
FILE_KEYS = tuple(s.name for s in SETTINGS if s.file)
FLAGS_ONLY = tuple(s.name for s in SETTINGS if not s.file)
PATH_KEYS = tuple(s.name for s in SETTINGS if s.parse in PATH_PARSERS)


def _config_type() -> type:
    """Config: a named tuple with a field per Setting (its default), and
    the collectors that run, in agent.collectors.TABLE's order (the
    defaults, then [collector.NAME] sections, then --collector.NAME flags),
    with every collector's option values (defaults filled)."""
    defaults = {s.name: s.default for s in SETTINGS}
    defaults["collectors"] = collector_table.DEFAULT_ENABLED
    defaults["alert_rules"] = ()  # agent.alerts.Rule, from [alert.NAME] sections
    defaults["origins"] = {}  # where each value that is not a default came from (load)
    defaults["collector_options"] = {entry.name: collector_table.default_options(entry)
                                     for entry in collector_table.TABLE}
    namespace = {"__module__": __name__, "__qualname__": "Config", "__doc__": _config_type.__doc__,
                 "__annotations__": dict.fromkeys(defaults, "object"), **defaults,
                 "listen_address": property(lambda self: parse_listen(self.listen))}
    # A named tuple, not a dataclass: dataclasses imports inspect, ~1 MiB of
    # RSS for the life of the process.
    return record(type("Config", (), namespace))


Config = _config_type()


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


def help_text(setting: Setting) -> str:
    """--help's line: the help, then the bounds and the default."""
    shown = setting.shown_default().replace("`", "")
    in_file = setting.file and setting.flag != "--" + setting.key and f"[agent] {setting.key} in the file"
    notes = [note for note in (setting.bounds(), shown not in ("", "none") and f"default {shown}", in_file)
             if note]
    return setting.help + (f" ({'; '.join(notes)})" if notes else "")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="monitoring-agent", description="A Linux system-monitoring agent for Prometheus.",
                argument_default=argparse.SUPPRESS, formatter_class=_HelpFormatter)
    groups = {"": p}
    for setting in SETTINGS:
        group = groups.get(setting.group)
        if group is None:
            group = groups[setting.group] = p.add_argument_group(setting.group)
            if setting.group == GROUP_COLLECTORS:
                group.add_argument("--collector.disable-defaults", dest="collector_disable_defaults",
                                   action="store_true", help="start from no collector: only those enabled "
                                   "by --collector.NAME or the file run")
        how = {"action": setting.action}
        if setting.action != "store_true":
            how["metavar"] = setting.metavar
        group.add_argument(*setting.all_flags, dest=setting.name, help=help_text(setting), **how)
    group = groups[GROUP_COLLECTORS]
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


def _validate(setting: Setting, raw: str, where: str) -> object:
    if setting.parse is None:
        return raw
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# A configuration is a few dozen lines; a file past this is a mistake.
MAX_CONFIG_BYTES = 1 << 20


def read_file(path: str) -> tuple[dict[str, str], dict[str, bool], dict, tuple]:
    """The [agent] section of an INI file, keys normalised to underscores;
    the `enabled` key of each [collector.NAME] section; and its options'
    texts, by (collector, option), with where each was written; and the
    alert rules of its [alert.NAME] sections."""
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
    rules = []
    for section in cp.sections():
        if section == "agent":
            continue
        if section.startswith("alert."):
            rules.append(_alert_rule(path, section, cp.items(section)))
            continue
        name = section.removeprefix("collector.")
        if name == section:
            raise ConfigError(f"config file {path}: unknown section [{section}] "
                              "(expected [agent], [collector.NAME] or [alert.NAME])")
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
        return {}, enabled, options, tuple(rules)
    out = {}
    for key, value in cp.items("agent"):
        name = key.replace("-", "_")
        if name not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
        if name in out:  # net-exclude and net_exclude: one key to the agent, two to configparser
            raise ConfigError(f"config file {path}: line {_second_line_of(text, name)}: "
                              f"key {name!r} given twice in [agent]")
        out[name] = value.strip()
    return out, enabled, options, tuple(rules)


def _alert_rule(path: str, section: str, items) -> object:
    from agent.alerts import parse_rule  # only for a file that has rules
    texts = {key: (value.strip(), f"config file {path}: [{section}] {key}") for key, value in items}
    try:
        return parse_rule(section.removeprefix("alert."), texts, f"config file {path}: [{section}]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


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


def _require(values: dict[str, object], where: dict[str, str], needed: str, by: str, why: str = "") -> None:
    """`needed` must be set when `by` is, said in the words the user wrote
    `by` in: flags as flags, a file's keys as keys of that file."""
    if not values.get(by) or values.get(needed):
        return
    origin = where[by]
    if origin.startswith("--"):
        raise ConfigError(f"{SETTING[needed].flag}: required with {origin}{why}")
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


def load(argv: list[str] | None, default_config: str = DEFAULT_CONFIG,
         base_dir: str | None = None, api: dict | None = None) -> Config:
    """Defaults < config file < flags < the REST API's changes (`api`, or
    else those kept in api_state_file).  Relative paths, in flags or in the
    file, are taken from `base_dir` (default: the current directory).
    `origins` says where each value that is not a default came from.
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
    origins: dict[str, str] = {}  # "file", "flag" or "api", by setting and by collector(.option)
    enabled = dict.fromkeys(collector_table.DEFAULT_ENABLED, True)
    if args.pop("collector_disable_defaults", False):
        enabled = {}
        origins.update((f"collector.{name}", "flag") for name in collector_table.DEFAULT_ENABLED)
    option_texts: dict = {}
    if path is not None:
        file_values, file_enabled, option_texts, values["alert_rules"] = read_file(path)
        for key, raw in file_values.items():
            where[key] = f"config file {path}: {key}"
            values[key] = _validate(SETTING[key], raw, where[key])
            origins[key] = "file"
        enabled.update(file_enabled)
        origins.update((f"collector.{name}", "file") for name in file_enabled)
        origins.update((f"collector.{name}.{option}", "file") for name, option in option_texts)
    for key in [k for k in args if k.startswith("collector.")]:
        enabled[key.removeprefix("collector.")] = args.pop(key)
        origins[key] = "flag"
    for key in [k for k in args if k.startswith("option.")]:
        name, option = key.removeprefix("option.").split(".", 1)
        option_texts[(name, option)] = (args.pop(key), f"--collector.{name}.{option}")
        origins[f"collector.{name}.{option}"] = "flag"
    for key, raw in args.items():
        if key == "config":
            continue
        setting = SETTING[key]
        if setting.action == "append":
            raw = " ".join(raw)
        where[key] = setting.flag
        values[key] = _validate(setting, raw, where[key])
        origins[key] = "flag"
    if api is None and values.get("api_state_file"):
        api = read_api_state(os.path.join(base_dir, values["api_state_file"]))
    if api:
        _apply_api(api, values, where, origins, enabled, option_texts)
    values["collectors"] = tuple(e.name for e in collector_table.TABLE if enabled.get(e.name))
    values["collector_options"] = _collector_options(option_texts)
    values["origins"] = origins
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
    return Config(config=path, **values)


# -- the REST API's layer ------------------------------------------------------
#
# {"options": {KEY: TEXT}, "collectors": {NAME: {"enabled": BOOL, "options": {OPTION: TEXT}}}},
# KEY an [agent] key that Setting.api allows, in the file's spelling; what
# PATCH /api/v1/config and PUT /api/v1/collectors/NAME have changed, kept in
# api_state_file if there is one.

MAX_API_STATE_BYTES = 1 << 20


def api_text(value) -> str:
    """A JSON value as the text a config file would hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, a number or a boolean, not {type(value).__name__}")


def _apply_api(api: dict, values: dict, where: dict, origins: dict, enabled: dict, option_texts: dict) -> None:
    for key, text in api.get("options", {}).items():
        name = key.replace("-", "_")
        setting = SETTING.get(name)
        if setting is None or not setting.file:
            raise ConfigError(f"API: {key}: unknown option")
        if not setting.api:
            raise ConfigError(f"API: {key}: not an option the API may change (a file or flag one)")
        where[name] = f"API: {key}"
        values[name] = _validate(setting, text, where[name])
        origins[name] = "api"
    for name, change in api.get("collectors", {}).items():
        entry = collector_table.BY_NAME.get(name)
        if entry is None:
            raise ConfigError(f"API: collector {name!r}: unknown collector "
                              f"(known: {', '.join(collector_table.BY_NAME)})")
        if "enabled" in change:
            enabled[name] = change["enabled"]
            origins[f"collector.{name}"] = "api"
        known = {option.name for option in collector_table.options_of(entry)}
        for option, text in change.get("options", {}).items():
            if option not in known:
                raise ConfigError(f"API: collector.{name}.{option}: unknown option "
                                  f"(known: {', '.join(sorted(known))})")
            option_texts[(name, option)] = (text, f"API: collector.{name}.{option}")
            origins[f"collector.{name}.{option}"] = "api"


def merge_api(layer: dict, change: dict) -> dict:
    """`change` over `layer` (both the layer's shape): a None value takes
    the API's word back for that option (the file's or flag's holds again)."""
    merged = {"options": dict(layer.get("options", {})),
              "collectors": {name: {"enabled": c["enabled"]} if "enabled" in c else {}
                             for name, c in layer.get("collectors", {}).items()}}
    for name, c in layer.get("collectors", {}).items():
        if c.get("options"):
            merged["collectors"][name]["options"] = dict(c["options"])
    for key, text in change.get("options", {}).items():
        if text is None:
            merged["options"].pop(key, None)
        else:
            merged["options"][key] = text
    for name, c in change.get("collectors", {}).items():
        target = merged["collectors"].setdefault(name, {})
        if "enabled" in c:
            if c["enabled"] is None:
                target.pop("enabled", None)
            else:
                target["enabled"] = c["enabled"]
        for option, text in c.get("options", {}).items():
            options = target.setdefault("options", {})
            if text is None:
                options.pop(option, None)
            else:
                options[option] = text
        if not target.get("options"):
            target.pop("options", None)
        if not target:
            del merged["collectors"][name]
    return {k: v for k, v in merged.items() if v}


def describe_change(change: dict) -> str:
    """For the log line: `key=value` of each option a change sets."""
    parts = [f"{key}={text!r}" if text is not None else f"{key} back to the file's"
             for key, text in change.get("options", {}).items()]
    for name, c in change.get("collectors", {}).items():
        if "enabled" in c:
            parts.append(f"collector {name} " + {True: "on", False: "off", None: "back to the file's"}[c["enabled"]])
        parts += [f"collector.{name}.{option}={text!r}" for option, text in c.get("options", {}).items()]
    return ", ".join(parts) or "nothing"


def read_api_state(path: str) -> dict:
    """The API's changes kept in `path` (none if it does not exist yet)."""
    import json
    try:
        data = read_regular(path, MAX_API_STATE_BYTES)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"api-state-file {path}: {exc.strerror or exc}") from None
    try:
        state = json.loads(data)
        _check_api_shape(state)
    except ValueError as exc:
        raise ConfigError(f"api-state-file {path}: not the agent's state: {str(exc).splitlines()[0]}") from None
    return state


def _check_api_shape(state) -> None:
    if not isinstance(state, dict) or set(state) - {"options", "collectors"}:
        raise ValueError('expected an object with "options" and "collectors"')
    options = state.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise ValueError('"options" maps keys to texts')
    collectors = state.get("collectors", {})
    if not isinstance(collectors, dict):
        raise ValueError('"collectors" is an object')
    for change in collectors.values():
        if not isinstance(change, dict) or set(change) - {"enabled", "options"}:
            raise ValueError('a collector\'s change has "enabled" and "options"')
        if "enabled" in change and not isinstance(change["enabled"], bool):
            raise ValueError('"enabled" is true or false')
        if not isinstance(change.get("options", {}), dict) or not all(
                isinstance(v, str) for v in change.get("options", {}).values()):
            raise ValueError('a collector\'s "options" maps names to texts')


def write_api_state(path: str, state: dict) -> None:
    """Atomically: a crash leaves the old file or the new one, never half."""
    import json
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def collector_timeouts(config: Config) -> dict[str, float]:
    """Each collector's time limit: its own timeout key, else --collector.timeout."""
    return {name: (options.get("timeout") or config.collector_timeout)
            for name, options in config.collector_options.items()}
