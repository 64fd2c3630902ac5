"""/sys/class/hwmon: temperatures, fans, voltages, currents, power and the
rest of every hardware-monitoring chip, named as node_exporter 1.5.0 names
them (docs/NODE_EXPORTER_COMPAT.md, "hwmon"; the rules in agent.sysfs.hwmon).

A scrape lists class/hwmon, each chip's directory and its device
directory, and reads every sensor file of every chip in one read_files call
under one directory descriptor: a few crossings of the backend per chip
instead of an open, a read and a close per file.
"""

from __future__ import annotations

import errno
import os

from agent import metrics
from agent.collectors.base import NoData
from agent.metrics import Family
from agent.procfs.layout import OK, READ_ONCE
from agent.procfs.read_files import DT_DIR, dir_entries, file_results
from agent.sysfs import hwmon

LABELS = ("chip", "sensor")
CHIP_NAMES = metrics.gauge("node_hwmon_chip_names", "Annotation metric for human-readable chip names",
                           ("chip", "chip_name"))
SENSOR_LABEL = metrics.gauge("node_hwmon_sensor_label", "Label for given chip and sensor",
                             ("chip", "sensor", "label"))

# node_exporter reads at most this much of a sensor file, in one read(2):
# some drivers fail a second read with EAGAIN.
SENSOR_BYTES = 128
# A name file is read whole (node_exporter uses os.ReadFile for it); sysfs
# attributes are at most a page.
NAME_BYTES = 4096

# The directory gone, or a symlink to nothing or to a file: no chip there
# (node_exporter skips what it cannot stat as a directory).
_NOT_A_CHIP = (errno.ENOENT, errno.ENOTDIR)


def _list(backend, dirfd: int, path: bytes):
    """(name, d_type) of the entries of `path` under dirfd, sorted by name
    as Go's os.ReadDir sorts them; None where there is no such directory."""
    try:
        table, names = backend.list_dir(dirfd, path)
    except OSError as exc:
        if exc.errno in _NOT_A_CHIP:
            return None
        raise
    return sorted(dir_entries(table, names))


class HwmonCollector:
    source = "hwmon"

    def __init__(self, chip_filter=None):
        self.chip_filter = chip_filter
        # name -> Desc: node_exporter's names come from the files present,
        # so each is made the first time it is seen and kept.
        self._descs: dict[str, metrics.Desc] = {}

    def collect(self, context) -> list[Family]:
        root = os.path.join(context.sysfs, "class", "hwmon")
        try:
            dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in _NOT_A_CHIP:
                raise NoData(f"no {root}") from None
            raise
        try:
            return self._collect(context.backend, dirfd, root)
        finally:
            os.close(dirfd)

    def _collect(self, backend, dirfd: int, root: str) -> list[Family]:
        chips = []  # (dir name, its entries, its device dir's entries or None)
        for name, _ in _list(backend, dirfd, b".") or ():
            entries = _list(backend, dirfd, name)
            if entries is None:
                continue
            chips.append((name, entries, _list(backend, dirfd, name + b"/device")))
        if not chips:
            raise NoData(f"no chip in {root}")

        # Every chip's name file in one call; the labels, and so the chip
        # filter, before any sensor file is read.
        name_table, name_data = backend.read_files(dirfd, [c[0] + b"/name" for c in chips], NAME_BYTES)
        kept = []  # (chip label, its name file or None, dir name, entries, device entries)
        for (name, entries, device_entries), (status, _, content) in zip(
                chips, file_results(name_table, name_data)):
            name_file = content if status == OK else None
            chip = self._chip_label(backend, os.fsencode(root), name, device_entries is not None, name_file)
            if self.chip_filter is None or self.chip_filter(chip):
                kept.append((chip, name_file, name, entries, device_entries))

        # Every sensor file of every chip kept, in one call.
        paths, owners = [], []  # a sensor file's path, and (chip index, (type, sensor, property))
        for i, (_, _, name, entries, device_entries) in enumerate(kept):
            for prefix, listing in ((name + b"/", entries), (name + b"/device/", device_entries or ())):
                for file_name, d_type in listing:
                    if d_type == DT_DIR:  # a directory never reads (power/, hwmon/)
                        continue
                    sensor = hwmon.explode_filename(file_name)
                    if sensor is not None:
                        paths.append(prefix + file_name)
                        owners.append((i, sensor))
        table, data = backend.read_files(dirfd, paths, SENSOR_BYTES, READ_ONCE)

        # chip -> sensor -> property -> value; the device directory's files
        # come after the chip's own, so a later one wins, as in node_exporter.
        values: list[dict[str, tuple[str, dict[str, bytes]]]] = [{} for _ in kept]
        for (i, (kind, sensor, prop)), (status, _, content) in zip(owners, file_results(table, data)):
            if status != OK:
                continue  # unreadable (EISDIR, EIO, EAGAIN) or gone: skipped, as node_exporter does
            values[i].setdefault(sensor, (kind, {}))[1][prop] = content.strip(b"\n")

        families: dict[str, Family] = {}
        seen: set = set()

        def add(desc, labels, value):
            # Two chips can get the same label (two device-less acpitz):
            # the first sample of a series wins, as node_exporter's registry
            # keeps it.
            key = (desc.name, labels)
            if key in seen:
                return
            seen.add(key)
            family = families.get(desc.name)
            if family is None:
                family = families[desc.name] = Family(desc, [])
            family.samples.append((labels, value))

        for (chip, name_file, _, _, _), sensors in zip(kept, values):
            if name_file is not None:
                chip_name = hwmon.clean_name(name_file)
                if chip_name:
                    add(CHIP_NAMES, (chip, chip_name), 1)
            for sensor, (kind, props) in sensors.items():
                label = props.get("label")
                if label is not None:
                    add(SENSOR_LABEL, (chip, sensor, hwmon.label_text(label)), 1)
                for metric, kind_type, help_text, value in hwmon.sensor_metrics(kind, props):
                    add(self._desc(metric, kind_type, help_text), (chip, sensor), value)
        return list(families.values())

    def _chip_label(self, backend, root: bytes, name: bytes, has_device: bool, name_file: bytes | None) -> str:
        directory = root + b"/" + name
        if has_device:
            try:
                device = backend.realpath(directory + b"/device")
            except OSError:
                pass
            else:
                chip = hwmon.chip_from_device(os.fsdecode(device))
                if chip:
                    return chip
        if name_file:
            chip = hwmon.clean_name(name_file)
            if chip:
                return chip
        try:
            directory = backend.realpath(directory)
        except OSError:  # gone since the listing: its own name, then
            pass
        return hwmon.clean_name(directory.rpartition(b"/")[2])

    def _desc(self, name: str, kind_type: str, help_text: str) -> metrics.Desc:
        desc = self._descs.get(name)
        if desc is None:
            # A name keeps the type and help it was first seen with: two
            # helps for one family would be an invalid exposition.
            make = metrics.counter if kind_type == hwmon.COUNTER else metrics.gauge
            desc = self._descs[name] = make(name, help_text, LABELS)
        return desc
