"""The pure-Python backend: the same interface as agent.procfs.cbackend.

Always available; the backend selector falls back to it when the C extension
is absent or its ABI does not match, or when forced by the environment.
"""

from __future__ import annotations


from .diskstats import parse_diskstats
from .loadavg import parse_loadavg
from .meminfo import parse_meminfo
from .netdev import parse_netdev
from .cbackend import trim_malloc
from .layout import ParseError
from .cgroups import parse_cgroup_file, walk_cgroups
from .read_files import list_dir, read_files, realpath
from .procs import walk_procs as _walk_procs
from .reader import MAX_FILE_BYTES, ShrinkWatch, read_fd
from .stat import parse_stat
from .uptime import parse_uptime

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

AVAILABLE = True
UNAVAILABLE_REASON = ""

_PARSERS: dict[str, Callable[[bytes], bytes]] = {
    "stat": parse_stat,
    "meminfo": parse_meminfo,
    "diskstats": parse_diskstats,
    "netdev": parse_netdev,
    "loadavg": parse_loadavg,
    "uptime": parse_uptime,
}

__all__ = [
    "AVAILABLE", "UNAVAILABLE_REASON", "make_loader",
    "parse_stat", "parse_meminfo", "parse_diskstats", "parse_netdev",
    "parse_loadavg", "parse_uptime", "read_files", "list_dir", "realpath", "walk_procs",
    "walk_cgroups", "parse_cgroup_file",
]


def walk_procs(procfd: int, flags: int = 0, rows_hint: int = 0) -> tuple[bytes, bytes, bytes]:
    """procs.walk_procs; rows_hint is for the C backend's buffers."""
    return _walk_procs(procfd, flags)


def make_loader(source: str) -> Callable[[int], bytes]:
    """A function that reads the open fd of `source` from offset 0 and
    returns its parsed struct bytes (or raises layout.ParseError)."""
    try:
        parse = _PARSERS[source]
    except KeyError:
        raise ValueError(f"unknown /proc source {source!r}; "
                         f"expected one of {', '.join(_PARSERS)}") from None

    # Nothing is kept from one read to the next, but an oversized file
    # leaves the heap grown (the reads, the rows, the scrape built on them)
    # under malloc's trim threshold: given back once the file is normal.
    watch = ShrinkWatch(trim_malloc)

    def load(fd: int) -> bytes:
        try:
            data = read_fd(fd)
        except ParseError:  # refused for its size, after reading that much
            watch.observe(MAX_FILE_BYTES)
            raise
        watch.observe(len(data))
        return parse(data)

    load.__name__ = f"load_{source}"
    load.__qualname__ = f"make_loader.<locals>.load_{source}"
    return load
