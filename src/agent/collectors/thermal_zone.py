"""/sys/class/thermal: thermal zone temperatures and cooling device
states, with node_exporter 1.5.0's names and rules
(docs/NODE_EXPORTER_COMPAT.md, "thermal_zone")."""

from __future__ import annotations

import errno
import os
import time

from agent import metrics
from agent.collectors.base import BadFile, NoData
from agent.metrics import Family
from agent.procfs.reader import read_fd
from agent.sysfs.thermal import numbered, parse_int64, parse_text, parse_uint64

ZONE_TEMP = metrics.gauge("node_thermal_zone_temp", "Zone temperature in Celsius", ("zone", "type"))
COOLING_CUR_STATE = metrics.gauge(
    "node_cooling_device_cur_state", "Current throttle state of the cooling device", ("name", "type"))
COOLING_MAX_STATE = metrics.gauge(
    "node_cooling_device_max_state", "Maximum throttle state of the cooling device", ("name", "type"))

# node_exporter reads short attributes with one read(2) of at most 128
# bytes: drivers that answer EAGAIN would make a read loop spin.
ATTRIBUTE_BYTES = 128
# Errors that make an optional attribute (mode, passive) count as absent.
ABSENT = (errno.ENOENT, errno.EACCES, errno.EPERM)


class SkipZone(Exception):
    """The zone has no reading now (ENODATA: iwlwifi while its interface is down)."""


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            raise SkipZone(path) from None
        raise


def read_attribute(path: str) -> bytes:
    fd = _open(path)
    try:
        return os.read(fd, ATTRIBUTE_BYTES)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            raise SkipZone(path) from None
        raise
    finally:
        os.close(fd)


def read_whole(path: str) -> bytes:
    fd = _open(path)
    try:
        return read_fd(fd)
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            raise SkipZone(path) from None
        raise
    finally:
        os.close(fd)


def parsed(parse, data: bytes, path: str):
    try:
        return parse(data)
    except ValueError as exc:
        raise BadFile(path, str(exc)) from None


def read_optional(path: str) -> bytes | None:
    try:
        return read_whole(path)
    except OSError as exc:
        if exc.errno in ABSENT:
            return None
        raise


def read_zone(directory: str) -> tuple[str, int]:
    """(type, temperature in millidegrees) of one zone; SkipZone when a
    file says ENODATA; OSError or BadFile when the zone is unusable."""
    zone_type = parse_text(read_attribute(os.path.join(directory, "type")))
    # Required although unused: node_exporter fails without it.
    read_attribute(os.path.join(directory, "policy"))
    path = os.path.join(directory, "temp")
    temp = parsed(parse_int64, read_whole(path), path)
    # Optional, and unused, but an unreadable mode or a passive that is not
    # a number fails node_exporter: the zone is not what the kernel makes.
    read_optional(os.path.join(directory, "mode"))
    path = os.path.join(directory, "passive")
    passive = read_optional(path)
    if passive is not None:
        parsed(parse_uint64, passive, path)
    return zone_type, temp


def read_cooling_device(directory: str) -> tuple[str, int, int]:
    """(type, cur_state, max_state) of one cooling device."""
    device_type = parse_text(read_attribute(os.path.join(directory, "type")))
    path = os.path.join(directory, "max_state")
    max_state = parsed(parse_int64, read_attribute(path), path)
    path = os.path.join(directory, "cur_state")
    cur_state = parsed(parse_int64, read_attribute(path), path)
    return device_type, cur_state, max_state


def label(name: str) -> str:
    # A directory name that is not UTF-8 shows U+FFFD, as every label does.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class ThermalZoneCollector:
    source = "thermal_zone"

    def collect(self, context) -> list[Family]:
        base = os.path.join(context.sysfs, "class", "thermal")
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            raise NoData(f"no {base}: no thermal driver") from None
        zones = numbered(names, "thermal_zone")
        devices = numbered(names, "cooling_device")
        if not zones and not devices:
            raise NoData(f"no thermal zone or cooling device in {base}")
        temps = []
        # Any failure but ENODATA fails every zone and device, as in
        # node_exporter 1.5.0: a partial list would hide the broken one.
        for name in zones:
            check_deadline(context, name)
            try:
                zone_type, temp = read_zone(os.path.join(base, name))
            except SkipZone:
                continue
            # node_exporter's float64(temp)/1000.0.
            temps.append(((label(name[len("thermal_zone"):]), zone_type), temp / 1000.0))
        cur_states, max_states = [], []
        for name in devices:
            check_deadline(context, name)
            try:
                device_type, cur_state, max_state = read_cooling_device(os.path.join(base, name))
            except SkipZone as exc:  # only zones may lack a reading
                raise OSError(errno.ENODATA, os.strerror(errno.ENODATA), str(exc)) from None
            labels = (label(name[len("cooling_device"):]), device_type)
            cur_states.append((labels, cur_state))
            max_states.append((labels, max_state))
        families = [Family(ZONE_TEMP, temps), Family(COOLING_CUR_STATE, cur_states),
                    Family(COOLING_MAX_STATE, max_states)]
        return [family for family in families if family.samples]


def check_deadline(context, name: str) -> None:
    # A slow ACPI or i2c sensor can take a second a read: stop before the
    # registry's deadline rather than after it.
    if time.monotonic() > context.deadline:
        raise TimeoutError(f"out of time before {name}")
