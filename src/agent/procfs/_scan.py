"""Scanning helpers shared by the pure-Python parsers (docs/PARSERS.md, "Common rules").

Field splitting is `bytes.split()` without arguments: within a line (lines are
cut at b"\\n" first) it splits on exactly the grammar's white space, space,
\\t, \\r, \\v and \\f, and nothing else (unlike str.split(), it does not treat
\\x1c-\\x1f as white space).  tests/test_scan.py pins that down.

`int()` alone is too lenient for a counter: it accepts b"+5", b"1_0" and
b" 5".  `bytes.isdigit()` is ASCII-only, so it is the shape check, and
`int()` only ever sees ASCII digits.
"""

from __future__ import annotations

from .layout import EFORMAT, ERANGE, U64_MAX, ParseError

# 10**k for the decimal fraction digits; k <= 15, so each is an exact double.
_POW10 = tuple(10 ** k for k in range(16))
DECIMAL_MAX_DIGITS = 15


def split_lines(data: bytes) -> list[bytes]:
    """The lines of `data`: cut at b"\\n"; a last line without b"\\n" is still
    a line; the empty string after a final b"\\n" is not."""
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


# numbered_lines splits a file this many bytes (and up to the next line
# end) at a time.
_CHUNK_BYTES = 1 << 18


def numbered_lines(data: bytes, first: int = 1):
    """(line number, line) for the lines of `data` from line `first` on, cut
    as split_lines cuts them, but a chunk of ~256 KiB at a time: a file of
    100,000 interfaces never exists as 100,000 line objects at once."""
    lineno, pos, size = 1, 0, len(data)
    while pos < size:
        cut = data.find(b"\n", pos + _CHUNK_BYTES) if size - pos > _CHUNK_BYTES else -1
        stop = size if cut < 0 else cut + 1
        lines = data[pos:stop].split(b"\n")
        if not lines[-1]:
            lines.pop()
        for line in lines:
            if lineno >= first:
                yield lineno, line
            lineno += 1
        pos = stop


def first_line(data: bytes) -> bytes:
    """Line 1, or b"" (no field, so the caller's field-count check fails on
    line 1) when the file is empty."""
    return data.partition(b"\n")[0]


def _counter_value(field: bytes, line: int) -> int:
    # The slow, exact path: only reached for a field that is malformed or
    # does not fit in 19 digits.
    if not field.isdigit():
        raise ParseError(EFORMAT, line)
    # Leading zeros never make a value out of range, and stripping them keeps
    # int() clear of sys.get_int_max_str_digits() (4300 digits by default).
    digits = field.lstrip(b"0")
    if len(digits) > 20 or (digits and int(digits) > U64_MAX):
        raise ParseError(ERANGE, line)
    return int(digits) if digits else 0


def counter(field: bytes, line: int) -> int:
    """One counter field: ASCII digits (else EFORMAT) worth at most 2**64-1
    (else ERANGE)."""
    # Up to 19 digits is always below 2**64 (10**19 < 2**64 - 1).
    if len(field) < 20 and field.isdigit():
        return int(field)
    return _counter_value(field, line)


def counters(fields: list[bytes], line: int) -> list[int]:
    """Counter fields, checked left to right: the first bad one decides
    between EFORMAT and ERANGE."""
    # Fields are never empty, so the join is all digits iff every field is.
    if b"".join(fields).isdigit():
        try:
            values = list(map(int, fields))
        except ValueError:  # a field longer than the int() digit limit
            pass
        else:
            if max(values) <= U64_MAX:
                return values
    return [_counter_value(f, line) for f in fields]


def decimal(field: bytes, line: int) -> float:
    """A decimal field, `D+` or `D+.D+` (else EFORMAT), of at most 15 digits
    in all (else ERANGE), worth the double nearest to m / 10**k."""
    whole, dot, frac = field.partition(b".")
    if not whole.isdigit() or (dot and not frac.isdigit()):
        raise ParseError(EFORMAT, line)
    if len(whole) + len(frac) > DECIMAL_MAX_DIGITS:
        raise ParseError(ERANGE, line)
    # int / int is correctly rounded; both operands are below 2**53, so this
    # is the same IEEE division as C's (double)m / 1e<k>.
    return int(whole + frac) / _POW10[len(frac)]
