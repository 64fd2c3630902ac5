"""The pure-Python scanning helpers against docs/PARSERS.md, "Common rules"."""

from __future__ import annotations

import os
import sys

import pytest

from agent.procfs import _scan, reader
from agent.procfs.layout import EFORMAT, ERANGE, U64_MAX, ParseError

GRAMMAR_WHITE_SPACE = {0x20, 0x09, 0x0D, 0x0B, 0x0C}


def test_bytes_split_is_the_grammar_white_space():
    # Within a line (no b"\n"), bytes.split() splits on exactly these bytes.
    splitting = {b for b in range(256) if b != 0x0A and len(bytes([0x41, b, 0x41]).split()) == 2}
    assert splitting == GRAMMAR_WHITE_SPACE


def test_bytes_strip_is_the_grammar_white_space():
    stripped = {b for b in range(256) if b != 0x0A and not bytes([b]).strip()}
    assert stripped == GRAMMAR_WHITE_SPACE


def test_bytes_isdigit_is_ascii_only():
    assert {b for b in range(256) if bytes([b]).isdigit()} == set(range(0x30, 0x3A))


@pytest.mark.parametrize("data, lines", [
    (b"", []),
    (b"\n", [b""]),
    (b"a", [b"a"]),
    (b"a\n", [b"a"]),
    (b"a\n\n", [b"a", b""]),
    (b"a\nb", [b"a", b"b"]),
    (b"\0\n\0", [b"\0", b"\0"]),
    (b"a\r\nb\r\n", [b"a\r", b"b\r"]),
])
def test_split_lines(data, lines):
    assert _scan.split_lines(data) == lines


@pytest.mark.parametrize("data, line", [(b"", b""), (b"x y", b"x y"), (b"x\ny\n", b"x"), (b"\nx", b"")])
def test_first_line(data, line):
    assert _scan.first_line(data) == line


@pytest.mark.parametrize("field, value", [
    (b"0", 0),
    (b"007", 7),
    (b"18446744073709551615", U64_MAX),
    (b"0" * 30 + b"18446744073709551615", U64_MAX),
    (b"0" * 5000, 0),
    (b"0" * 5000 + b"42", 42),
    (b"9999999999999999999", 9999999999999999999),
])
def test_counter_valid(field, value):
    assert _scan.counter(field, 1) == value
    assert _scan.counters([b"1", field], 1) == [1, value]


@pytest.mark.parametrize("field, code", [
    (b"+5", EFORMAT),
    (b"-5", EFORMAT),
    (b"1_0", EFORMAT),
    (b"5\0", EFORMAT),
    (b"5\x1c", EFORMAT),
    (b"0x10", EFORMAT),
    (b"1.0", EFORMAT),
    ("\u0661".encode(), EFORMAT),  # ARABIC-INDIC DIGIT ONE, which int(str) accepts
    (b"\xb2", EFORMAT),           # superscript two in latin-1
    (b"18446744073709551616", ERANGE),
    (b"0" * 30 + b"18446744073709551616", ERANGE),
    (b"99999999999999999999", ERANGE),
    (b"1" * 5000, ERANGE),  # beyond int()'s default digit limit
])
def test_counter_invalid(field, code):
    with pytest.raises(ParseError) as info:
        _scan.counter(field, 7)
    assert (info.value.code, info.value.line) == (code, 7)
    with pytest.raises(ParseError) as info:
        _scan.counters([b"1", field, b"2"], 7)
    assert (info.value.code, info.value.line) == (code, 7)


def test_counter_ignores_a_lower_int_digit_limit():
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("no int digit limit on this Python")
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert _scan.counter(b"0" * 1000 + b"5", 1) == 5
        with pytest.raises(ParseError) as info:
            _scan.counter(b"1" * 1000, 1)
        assert info.value.code == ERANGE
    finally:
        sys.set_int_max_str_digits(old)


@pytest.mark.parametrize("fields, code", [
    ([b"18446744073709551616", b"x"], ERANGE),   # left to right: the range error comes first
    ([b"x", b"18446744073709551616"], EFORMAT),
    ([b"1", b"2", b"3x"], EFORMAT),
])
def test_counters_first_error_wins(fields, code):
    with pytest.raises(ParseError) as info:
        _scan.counters(fields, 3)
    assert info.value.code == code


@pytest.mark.parametrize("field, value", [
    (b"0", 0.0),
    (b"0.00", 0.0),
    (b"376.33", 376.33),
    (b"000706.700", 706.7),
    (b"123456789012345", 123456789012345.0),
    (b"0.00000000000001", 1e-14),
    (b"12345678901234.5", 12345678901234.5),
])
def test_decimal_valid(field, value):
    assert _scan.decimal(field, 1) == value


def test_decimal_is_m_over_ten_to_the_k():
    # Correctly rounded m / 10**k, computed independently with exact fractions.
    from fractions import Fraction
    for field in (b"0.1", b"0.3", b"2.675", b"1.005", b"99999.99999", b"0.12345678901234", b"9.87654321098765"):
        whole, _, frac = field.partition(b".")
        assert _scan.decimal(field, 1) == float(Fraction(int(whole + frac), 10 ** len(frac)))


@pytest.mark.parametrize("field, code", [
    (b".5", EFORMAT),
    (b"5.", EFORMAT),
    (b"1.2.3", EFORMAT),
    (b"+1.5", EFORMAT),
    (b"-1", EFORMAT),
    (b"1e5", EFORMAT),
    (b"1,5", EFORMAT),
    (b"1.5\0", EFORMAT),
    (b"1234567890123456", ERANGE),
    (b"1234567890.123456", ERANGE),
    (b"0000000000000000", ERANGE),  # leading zeros count
    (b"x" * 20, EFORMAT),            # shape before digit count
])
def test_decimal_invalid(field, code):
    with pytest.raises(ParseError) as info:
        _scan.decimal(field, 1)
    assert info.value.code == code


@pytest.mark.parametrize("size", [0, 1, 4095, 65536, 65537, 400_000])
def test_read_fd_reads_to_end_of_file(tmp_path, size):
    path = tmp_path / "f"
    content = bytes(i % 251 for i in range(size))
    path.write_bytes(content)
    fd = reader.open_source(str(tmp_path), "f")
    try:
        os.lseek(fd, 3, os.SEEK_SET)  # pread ignores the file offset
        assert reader.read_fd(fd) == content
        assert reader.read_fd(fd) == content
    finally:
        os.close(fd)


def test_read_fd_does_not_trust_st_size():
    fd = reader.open_source("/proc", "self/status")
    try:
        assert os.fstat(fd).st_size == 0
        assert reader.read_fd(fd).startswith(b"Name:")
    finally:
        os.close(fd)
