"""/sys/class/thermal attribute files -> values, read as node_exporter
1.5.0 reads them (procfs v0.8's sysfs package): white space trimmed from
both ends, then the text or a Go strconv.ParseInt/ParseUint number
(docs/NODE_EXPORTER_COMPAT.md, "thermal_zone")."""

from __future__ import annotations

import re

# Go's unicode.IsSpace, which strings.TrimSpace and bytes.TrimSpace use.
# Python's own str.strip() also strips \x1c-\x1f, which Go keeps.
GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
            "\u2028\u2029\u202f\u205f\u3000")
# ParseInt(s, 10, 64): an optional sign, then ASCII digits (base 10 allows no `_`).
_SIGNED = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


def _trimmed(data: bytes) -> str:
    # Bytes that are not UTF-8 become U+FFFD (labels must be UTF-8); U+FFFD
    # is not white space, so trimming after decoding trims what Go trims.
    return data.decode("utf-8", "replace").strip(GO_SPACE)


def parse_text(data: bytes) -> str:
    """A name such as a zone's `type` (`INT3400 Thermal`: inner spaces kept)."""
    return _trimmed(data)


def parse_int64(data: bytes) -> int:
    """A signed decimal such as `temp` (millidegrees Celsius, may be
    negative) or `cur_state` (intel_powerclamp says -1); ValueError says
    why not."""
    text = _trimmed(data)
    if not _SIGNED.fullmatch(text):
        raise ValueError(f"not a decimal integer: {text[:64]!r}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"out of the signed 64-bit range: {text[:64]!r}")
    return value


def parse_uint64(data: bytes) -> int:
    """An unsigned decimal such as a zone's `passive` (millidegrees, 0 when off)."""
    text = _trimmed(data)
    if not _UNSIGNED.fullmatch(text):
        raise ValueError(f"not an unsigned decimal integer: {text[:64]!r}")
    value = int(text)
    if value > UINT64_MAX:
        raise ValueError(f"out of the unsigned 64-bit range: {text[:64]!r}")
    return value


def numbered(names, prefix: str) -> list[str]:
    """The names `prefix` followed by a digit (and anything), in byte order:
    the glob `prefix[0-9]*` that node_exporter walks."""
    cut = len(prefix)
    return sorted((n for n in names if n.startswith(prefix) and n[cut:cut + 1].isascii()
                   and n[cut:cut + 1].isdigit()), key=lambda n: n.encode("utf-8", "surrogateescape"))
