"""The pure-Python backend: the same interface as agent.procfs.cbackend.

Always available; the backend selector falls back to it when the C extension
is absent or its ABI does not match, or when forced by the environment.
"""

from __future__ import annotations


from .diskstats import parse_diskstats
from .loadavg import parse_loadavg
from .meminfo import parse_meminfo
from .netdev import parse_netdev
from .reader import read_fd
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
    "parse_loadavg", "parse_uptime",
]


def make_loader(source: str) -> Callable[[int], bytes]:
    """A function that reads the open fd of `source` from offset 0 and
    returns its parsed struct bytes (or raises layout.ParseError)."""
    try:
        parse = _PARSERS[source]
    except KeyError:
        raise ValueError(f"unknown /proc source {source!r}; "
                         f"expected one of {', '.join(_PARSERS)}") from None

    def load(fd: int) -> bytes:
        return parse(read_fd(fd))

    load.__name__ = f"load_{source}"
    load.__qualname__ = f"make_loader.<locals>.load_{source}"
    return load
