"""/proc/PID/mountinfo: one row per mount (proc(5), the kernel's
show_mountinfo in fs/proc/proc_namespace.c).

    36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2)(3)   (4)   (5)         (6)      (7)      (8) (9)   (10)      (11)

Fields 1-6 are fixed, then zero or more optional fields (`shared:N`,
`master:N`, ...) up to a lone `-`, then the file system type, the source
and the superblock's options.  The kernel escapes space, tab, newline and
backslash as `\\NNN` octal in the mount point, the root and the source
(mangle() in fs/proc_namespace.c); nothing else is escaped, so UTF-8 and
`#` arrive raw.

Python only: a busy Kubernetes node's 2,000 mounts (0.5 MiB) parse in
about 3 ms, and the collector parses again only when the table's bytes
change (docs/BENCHMARKS.md), so no scrape waits for it.
"""

from __future__ import annotations

import re

from agent.records import record

# A backslash and three octal digits that make a byte (up to \377);
# anything else (`\x`, `\12`, `\999`, `\400`) is not an escape the kernel
# writes and stays as it is.
_ESCAPE = re.compile(rb"\\([0-3][0-7]{2})")


@record
class Mount:
    mount_point: bytes  # escapes decoded: the path as the kernel knows it
    mount_options: str  # per mount (field 6): `ro` for a read-only bind
    fstype: str
    source: bytes  # escapes decoded
    super_options: str  # the superblock's: `ro` for a write-protected device


class MountinfoError(ValueError):
    pass


def _octal(m: re.Match) -> bytes:
    return bytes((int(m.group(1), 8),))


def unescape(raw: bytes) -> bytes:
    """`\\040` -> space, one left-to-right pass: `\\134040` is a backslash
    followed by `040`, not a space."""
    if b"\\" not in raw:
        return raw
    return _ESCAPE.sub(_octal, raw)


def parse_mountinfo(data: bytes) -> list[Mount]:
    """Rows in the file's order (mount order: a parent before what is
    mounted beneath it).  A line without the `-` separator, or with too few
    fields on either side of it, raises MountinfoError naming the line."""
    mounts = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line:
            continue
        fields = line.split(b" ")
        try:
            separator = fields.index(b"-", 6)
        except ValueError:
            raise MountinfoError(f"mountinfo line {number}: no ' - ' after six fields: {line[:200]!r}") from None
        if len(fields) < separator + 3:
            raise MountinfoError(f"mountinfo line {number}: fewer than 3 fields after ' - ': {line[:200]!r}")
        # The super options may be absent (an empty last field) on old
        # kernels' bind mounts of some pseudo file systems.
        super_options = fields[separator + 3] if len(fields) > separator + 3 else b""
        mounts.append(Mount(
            unescape(fields[4]),
            fields[5].decode("utf-8", "replace"),
            fields[separator + 1].decode("utf-8", "replace"),
            unescape(fields[separator + 2]),
            super_options.decode("utf-8", "replace"),
        ))
    return mounts


__all__ = ["Mount", "MountinfoError", "parse_mountinfo", "unescape"]
