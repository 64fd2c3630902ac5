"""systemd units from the system bus: node_exporter's systemd collector's
unit states, summary, system state and version, with its names, labels,
default exclusion and values (docs/NODE_EXPORTER_COMPAT.md, "systemd").

One round trip per scrape: ListUnits, the Manager's SystemState, Version
and UnitsLoadTimestampMonotonic, and the Types due again (REFRESH_SCRAPES)
go out in one write, and their replies are read together (node_exporter
makes one call per unit, in sequence, on a new connection each scrape).
A unit whose Type is not known (it just appeared, or units were loaded
again) needs it asked in the same scrape: a second round trip, only in
such a scrape.  The connection stays open between scrapes and is opened
again after any failure; every wait ends by the collector's deadline.
"""

from __future__ import annotations

import errno
import logging
import re

from agent import dbus, metrics
from agent.collectors.base import NoData, Option, boolean
from agent.collectors.filters import regex
from agent.metrics import Family

UNIT_STATE = metrics.gauge("node_systemd_unit_state", "Systemd unit", ("name", "state", "type"))
UNITS = metrics.gauge("node_systemd_units", "Summary of systemd unit states", ("state",))
SYSTEM_RUNNING = metrics.gauge("node_systemd_system_running",
                               "Whether the system is operational (see 'systemctl is-system-running')")
VERSION = metrics.gauge("node_systemd_version", "Detected systemd version", ("version",))

# node_exporter's five: one unit_state series each, and the summary's
# labels even at 0 (another active state, "reloading", is counted in the
# summary only, as node_exporter does).
STATES = ("active", "activating", "deactivating", "inactive", "failed")
# node_exporter 1.5.0's default, as its --help shows it: targets left out
# too (later releases show them).
DEFAULT_EXCLUDE = r".+\.(automount|device|mount|scope|slice|target)"
# The interface whose Type property a unit's `type` label shows, by suffix.
TYPE_INTERFACE = {".service": "org.freedesktop.systemd1.Service", ".mount": "org.freedesktop.systemd1.Mount"}
VERSION_NUMBER = re.compile(r"[0-9]{3,}(\.[0-9]+)?")
# A Type is a unit file's setting: asked when the unit first shows, again
# for every unit when the Manager's UnitsLoadTimestamp moves (a
# daemon-reload), and for one unit in REFRESH_SCRAPES each scrape in
# turn, which bounds how long a unit unloaded and loaded again from a
# changed file without a daemon-reload can show its old Type.  Without
# that property (an older systemd) every Type is asked every scrape.
REFRESH_SCRAPES = 10
UNSUPPORTED = "unsupported"
NO_SYSTEMD = ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner")

log = logging.getLogger("agent.systemd")


def parse_address(text: str) -> str:
    """The `address` option: empty (the system bus), or a unix: D-Bus address."""
    if text:
        dbus.socket_address(text)  # ValueError with the reason
    return text


OPTIONS = (
    Option("unit-include", regex, ".+", "only units whose whole name this regular expression matches "
           "(node_exporter's flag)", "REGEX"),
    Option("unit-exclude", regex, DEFAULT_EXCLUDE, "leave out units whose whole name this regular expression "
           "matches (default: node_exporter's)", "REGEX"),
    Option("address", parse_address, "", "the D-Bus address to ask systemd on, unix:path=SOCKET "
           "(default: $DBUS_SYSTEM_BUS_ADDRESS, else the system bus)", "ADDRESS"),
    Option("private", boolean, False, "the address is systemd's private socket (no bus daemon, root only; "
           "default unix:path=/run/systemd/private): node_exporter's --collector.systemd.private", "BOOL"),
)


def version_value(version: str) -> tuple[float, str]:
    """node_exporter's reading of the Manager's Version: the first run of 3+
    digits with an optional .fraction as a float, 0 and "" without one."""
    found = VERSION_NUMBER.search(version)
    if found is None:
        return 0.0, ""
    return float(found.group(0)), version


class SystemdCollector:
    source = "systemd"

    def __init__(self, options: dict, refresh_scrapes: int = REFRESH_SCRAPES):
        # refresh_scrapes=1 asks every Type every scrape (the benchmark's
        # baseline for what the cache saves).
        self.refresh_scrapes = refresh_scrapes
        self.include = re.compile(options["unit-include"] or ".+")
        self.exclude = re.compile(options["unit-exclude"]) if options["unit-exclude"] else None
        self.private = options["private"]
        self.address = options["address"]
        self._connection = None
        self._said_no_jeepney = False
        # Types known (unit name -> Type), the object paths of the service and
        # mount units shown last time, and the Manager's
        # UnitsLoadTimestampMonotonic when the types were asked.
        self._types: dict[str, str] = {}
        self._paths: dict[str, str] = {}
        self._loaded_at = None
        self._turn = 0

    def _bus_address(self) -> str:
        if self.address:
            return self.address
        return dbus.SYSTEMD_PRIVATE if self.private else dbus.system_bus_address()

    def _connect(self, deadline: float):
        address = self._bus_address()
        try:
            return dbus.Connection(address, bus=not self.private, deadline=deadline)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoData(f"no D-Bus socket at {address}: {exc.strerror}") from None
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                raise NoData(f"no D-Bus socket at {address}: {exc.strerror}") from None
            raise

    def collect(self, context) -> list[Family]:
        try:
            import jeepney  # noqa: F401  (only this collector needs it)
        except ImportError as exc:
            if not self._said_no_jeepney:
                log.warning("collector systemd: no data: jeepney is not installed (%s); "
                            "pip install 'monitoring-agent[systemd]'", exc)
                self._said_no_jeepney = True
            raise NoData("jeepney is not installed") from None
        reused = self._connection is not None
        if not reused:
            self._connection = self._connect(context.deadline)
        try:
            return self._collect(context.deadline)
        except ConnectionError:
            # The bus went away since the last scrape (dbus restarted): a
            # new connection, once, within the same deadline.
            self._drop()
            if not reused:
                raise
            self._connection = self._connect(context.deadline)
        except BaseException:
            # Replies may still be in flight: a fresh connection next time.
            self._drop()
            raise
        try:
            return self._collect(context.deadline)
        except BaseException:
            self._drop()
            raise

    def _drop(self):
        self._connection.close()
        self._connection = None

    def _collect(self, deadline: float) -> list[Family]:
        from jeepney import DBusAddress, Properties, new_method_call

        manager = DBusAddress("/org/freedesktop/systemd1", "org.freedesktop.systemd1",
                              "org.freedesktop.systemd1.Manager")
        manager_properties = Properties(manager)
        if self._loaded_at is UNSUPPORTED:
            asked = list(self._paths.items())
        else:
            turn = self._turn = (self._turn + 1) % self.refresh_scrapes
            asked = [(name, path) for i, (name, path) in enumerate(self._paths.items())
                     if i % self.refresh_scrapes == turn]
        batch = [new_method_call(manager, "ListUnits"), manager_properties.get("SystemState"),
                 manager_properties.get("Version"), manager_properties.get("UnitsLoadTimestampMonotonic")]
        batch += [self._type_call(Properties, DBusAddress, name, path) for name, path in asked]
        replies = self._connection.call(batch, deadline)
        listed, system_state, version, loaded_at = replies[:4]
        if isinstance(listed, dbus.DBusError):
            if listed.name in NO_SYSTEMD:
                raise NoData(f"no systemd on the bus {self._bus_address()}")
            raise listed
        for reply in (system_state, version):
            if isinstance(reply, dbus.DBusError):
                raise reply
        loaded_at = UNSUPPORTED if isinstance(loaded_at, dbus.DBusError) else loaded_at[0][1]
        if loaded_at != self._loaded_at or loaded_at is UNSUPPORTED:
            # Units loaded again (daemon-reload): any Type may have changed.
            self._types.clear()
            self._loaded_at = loaded_at
        answered = {name: reply for (name, _), reply in zip(asked, replies[4:])}

        summary = dict.fromkeys(STATES, 0)
        kept = []  # (name, active state)
        paths = {}
        for name, _description, load_state, active_state, _sub, _following, path, *_job in listed[0]:
            summary[active_state] = summary.get(active_state, 0) + 1
            if load_state != "loaded" or not self.include.fullmatch(name) or \
                    (self.exclude is not None and self.exclude.fullmatch(name)):
                continue
            kept.append((name, active_state))
            if name.endswith((".service", ".mount")):
                paths[name] = path
        types = {name: self._types[name] for name in paths if name in self._types}
        types.update((name, reply[0][1]) for name, reply in answered.items()
                     if name in paths and not isinstance(reply, dbus.DBusError))
        new = [(name, path) for name, path in paths.items() if name not in types]
        if new:
            answers = self._connection.call(
                [self._type_call(Properties, DBusAddress, name, path) for name, path in new], deadline)
            types.update((name, reply[0][1]) for (name, _), reply in zip(new, answers)
                         if not isinstance(reply, dbus.DBusError))
        # A unit no longer listed is forgotten: loaded again, it is asked again.
        self._types, self._paths = types, paths

        samples = []
        for name, active_state in kept:
            # node_exporter leaves the label empty when the Get fails.
            unit_type = types.get(name, "")
            for state in STATES:
                samples.append(((name, state, unit_type), 1 if state == active_state else 0))
        version_number, version_label = version_value(version[0][1])
        return [
            Family(UNIT_STATE, samples),
            Family(UNITS, [((state,), count) for state, count in summary.items()]),
            Family(SYSTEM_RUNNING, [((), 1 if system_state[0][1] == "running" else 0)]),
            Family(VERSION, [((version_label,), version_number)]),
        ]

    @staticmethod
    def _type_call(Properties, DBusAddress, name: str, path: str):
        interface = TYPE_INTERFACE[".service" if name.endswith(".service") else ".mount"]
        return Properties(DBusAddress(path, "org.freedesktop.systemd1", interface)).get("Type")
