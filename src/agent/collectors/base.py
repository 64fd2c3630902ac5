"""What every collector is given and may say back, and how a collector
declares its options.

A collector is either a file collector (`source`, `relpath`, and
`families(data)` on the bytes the backend's loader read: the registry
opens, keeps and reads the file) or a tree collector (`source` and
`collect(context) -> list[Family]`: it reads what it needs itself, many
files, a directory walk, statvfs).  A tree collector that reads nothing but
files under one part of the procfs root names it, `procfs_only = "pressure"`: on a real proc mount
those are the kernel's own text and never block, so the registry reads them
in the collecting thread instead of handing them to a worker.  Either may raise NoData for a source
this host does not have (no /proc/pressure before Linux 4.20, no hwmon
chip in a VM): the registry tells that apart from a failure.
"""

from __future__ import annotations

from agent.procfs.layout import EFORMAT, ParseError
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable


class NoData(Exception):
    """This host has no such source: not a failure, one debug line."""


class BadFile(ParseError):
    """A file a tree collector read but cannot use: its source fails, and
    the one log line names the file and says why."""

    def __init__(self, path: str, why: str):
        super().__init__(EFORMAT)
        self.path = path
        self.why = why
        self.args = (f"{path}: {why}",)

    def __str__(self) -> str:
        return self.args[0]

    def __eq__(self, other):
        return isinstance(other, BadFile) and (self.path, self.why) == (other.path, other.why)

    def __hash__(self):
        return hash((self.path, self.why))


@record
class Context:
    """The roots a tree collector reads under (never global paths), the
    parser backend (agent.procfs.cbackend or pybackend), and the
    time.monotonic() by which it should return."""
    procfs: str
    sysfs: str
    rootfs: str
    backend: object
    deadline: float


@record
class Option:
    """One collector option, declared once: `--collector.NAME.OPTION` on the
    command line, `OPTION = value` in the file's [collector.NAME] section,
    --help and the README's table all come from here.  `parse` turns the
    text into the value or raises ValueError with the reason."""
    name: str
    parse: Callable
    default: object
    help: str
    metavar: str = "VALUE"


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def boolean(text: str) -> bool:
    """An Option's parse for a yes/no option, with the words the [agent]
    section accepts."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")
