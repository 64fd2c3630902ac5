"""/proc/loadavg: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact struct out or the exact
ParseError (code, line).  A decimal's expected value is m / 10**k computed
from its digits (Python's int / int is correctly rounded, as the spec
requires of both backends).  Run on each backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import procfs_trees

U64 = 2**64 - 1
BIG = str(2**64).encode()
ALL_BITS = (1 << 6) - 1


def dec(text: str) -> float:
    whole, _, frac = text.partition(".")
    return int(whole + frac) / 10 ** len(frac)


def ok(l1: str, l5: str, l15: str, runnable: int, threads: int, last_pid: int) -> L.LoadAvg:
    return L.LoadAvg(ALL_BITS, dec(l1), dec(l5), dec(l15), runnable, threads, last_pid)


def err(code: int) -> tuple:
    return (code, 1)        # every loadavg error is on line 1


CASES = [
    ("empty", b"", err(L.EFORMAT)),
    ("not enough fields", b"0.00 0.01 0.05 1/98\n", err(L.EFORMAT)),
    ("valid", b"0.00 0.01 0.05 1/98 3024\n", ok("0.00", "0.01", "0.05", 1, 98, 3024)),
    ("busy host", b"17.12 16.33 15.88 17/4123 3312287\n", ok("17.12", "16.33", "15.88", 17, 4123, 3312287)),
    ("one field", b"0.00\n", err(L.EFORMAT)),
    ("blank line 1", b"\n0.00 0.01 0.05 1/98 3024\n", err(L.EFORMAT)),
    ("fields split over two lines", b"0.00 0.01 0.05\n1/98 3024\n", err(L.EFORMAT)),
    ("only line 1 counts", b"0.10 0.20 0.30 1/2 3\nx y z\n" + BIG + b"\n", ok("0.10", "0.20", "0.30", 1, 2, 3)),
    ("later fields ignored unread", b"0.10 0.20 0.30 1/2 3 x " + BIG + b"\n", ok("0.10", "0.20", "0.30", 1, 2, 3)),
    ("no final newline", b"0.10 0.20 0.30 1/2 3", ok("0.10", "0.20", "0.30", 1, 2, 3)),
    ("CRLF", b"0.10 0.20 0.30 1/2 3\r\n", ok("0.10", "0.20", "0.30", 1, 2, 3)),
    ("tab vtab formfeed", b"0.10\t0.20\x0b0.30\x0c1/2 \t3\n", ok("0.10", "0.20", "0.30", 1, 2, 3)),
    # Decimals.
    ("integers", b"1 2 3 4/5 6\n", ok("1", "2", "3", 4, 5, 6)),
    ("leading zeros", b"000.10 01.5 0 0001/0098 0003024\n", ok("000.10", "01.5", "0", 1, 98, 3024)),
    ("15 digits", b"12345678901.2345 0.00000000000001 999999999999999 1/1 1\n",
     ok("12345678901.2345", "0.00000000000001", "999999999999999", 1, 1, 1)),
    ("15 digits, all fraction but one", b"0.12345678901234 1.00000000000000 9.99999999999999 1/1 1\n",
     ok("0.12345678901234", "1.00000000000000", "9.99999999999999", 1, 1, 1)),
    ("16 digits", b"1234567890.123456 0 0 1/1 1\n", err(L.ERANGE)),
    ("16 digits counting leading zeros", b"0.000000000000001 0 0 1/1 1\n", err(L.ERANGE)),
    ("16 integer digits", b"0 0 1000000000000000 1/1 1\n", err(L.ERANGE)),
    ("16 digits, then a letter: the shape decides", b"1234567890123456x 0 0 1/1 1\n", err(L.EFORMAT)),
    ("16 digits, then a bad fraction", b"1234567890.123456x 0 0 1/1 1\n", err(L.EFORMAT)),
    ("5000 leading zeros", b"0 0 " + b"0" * 5000 + b".5 1/1 1\n", err(L.ERANGE)),
    ("overflowing runnable, then a letter", b"0 0 0 99999999999999999999x/1 1\n", err(L.EFORMAT)),
    ("no integer part", b".5 0 0 1/1 1\n", err(L.EFORMAT)),
    ("no fraction digits", b"5. 0 0 1/1 1\n", err(L.EFORMAT)),
    ("two points", b"1.2.3 0 0 1/1 1\n", err(L.EFORMAT)),
    ("sign", b"-1.0 0 0 1/1 1\n", err(L.EFORMAT)),
    ("plus", b"0 +1.0 0 1/1 1\n", err(L.EFORMAT)),
    ("exponent", b"0 0 1e3 1/1 1\n", err(L.EFORMAT)),
    ("inf", b"inf 0 0 1/1 1\n", err(L.EFORMAT)),
    ("nan", b"0 nan 0 1/1 1\n", err(L.EFORMAT)),
    ("comma", b"0,5 0 0 1/1 1\n", err(L.EFORMAT)),
    ("underscore", b"1_0.5 0 0 1/1 1\n", err(L.EFORMAT)),
    ("non-ASCII digit", "0.\u0665 0 0 1/1 1\n".encode(), err(L.EFORMAT)),
    ("0xa0 glued", b"0.5\xa0 0 0 1/1 1\n", err(L.EFORMAT)),
    ("NUL glued", b"0.5 0\x00 0 1/1 1\n", err(L.EFORMAT)),
    # R/T.
    ("no slash", b"0 0 0 198 1\n", err(L.EFORMAT)),
    ("nothing after the slash", b"0 0 0 1/ 1\n", err(L.EFORMAT)),
    ("nothing before the slash", b"0 0 0 /1 1\n", err(L.EFORMAT)),
    ("split at the first slash", b"0 0 0 1/2/3 1\n", err(L.EFORMAT)),
    ("two slashes", b"0 0 0 1//2 1\n", err(L.EFORMAT)),
    ("largest counters", b"0 0 0 " + str(U64).encode() + b"/" + str(U64).encode() + b" " + str(U64).encode() + b"\n",
     ok("0", "0", "0", U64, U64, U64)),
    ("runnable too large", b"0 0 0 " + BIG + b"/1 1\n", err(L.ERANGE)),
    ("threads too large", b"0 0 0 1/" + BIG + b" 1\n", err(L.ERANGE)),
    ("last pid too large", b"0 0 0 1/1 " + BIG + b"\n", err(L.ERANGE)),
    ("last pid 25 digits", b"0 0 0 1/1 " + b"5" * 25 + b"\n", err(L.ERANGE)),
    ("last pid not a counter", b"0 0 0 1/1 1.0\n", err(L.EFORMAT)),
    ("negative last pid", b"0 0 0 1/1 -1\n", err(L.EFORMAT)),
    # Left to right.
    ("field count before values", b"1234567890123456 x\n", err(L.EFORMAT)),
    ("EFORMAT load1 before ERANGE", b"x 0 0 1/1 " + BIG + b"\n", err(L.EFORMAT)),
    ("ERANGE load5 before EFORMAT", b"0 1234567890123456 x 1/1 1\n", err(L.ERANGE)),
    ("missing slash before ERANGE", b"0 0 0 x " + BIG + b"\n", err(L.EFORMAT)),
    ("runnable before threads", b"0 0 0 " + BIG + b"/x 1\n", err(L.ERANGE)),
    ("threads before last pid", b"0 0 0 1/x " + BIG + b"\n", err(L.EFORMAT)),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_loadavg(backend, data, expected):
    if isinstance(expected, L.LoadAvg):
        out = backend.parse_loadavg(data)
        assert len(out) == L.LOADAVG.size
        got = L.decode_loadavg(out)
        assert got == expected
        assert [type(v) for v in got] == [int, float, float, float, int, int, int]
    else:
        with pytest.raises(L.ParseError) as exc:
            backend.parse_loadavg(data)
        assert (exc.value.code, exc.value.line) == expected


def test_expected_decimals_are_the_nearest_doubles():
    """The test's own arithmetic: m / 10**k is the double nearest the text."""
    for text in ["0.01", "0.05", "12345678901.2345", "0.00000000000001", "9.99999999999999", "0.12345678901234"]:
        assert dec(text) == float(text)


TREES = {
    "linux-2.6.18-rhel5": b"0.08 0.11 0.09 1/213 24911\n",
    "linux-3.2-debian7": b"0.14 0.21 0.18 2/142 21871\n",
    "linux-4.19-debian10": b"1.31 1.12 0.98 3/1287 23312\n",
    "linux-5.15-ubuntu22": b"1.12 0.87 0.73 2/1502 1612219\n",
    "linux-6.8-dense-small": b"17.12 16.33 15.88 17/4123 3312287\n",
    "odd": None,
}


def test_every_tree_has_expectations():
    assert {t.name for t in procfs_trees()} == set(TREES)


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    data = (tree / "loadavg").read_bytes()
    got = L.decode_loadavg(backend.parse_loadavg(data))
    if tree.name == "odd":
        assert got == ok("000.10", "1.5", "12345678901.2345", 1, U64, 4194304)
        return
    assert data == TREES[tree.name]
    f = data.split()
    r, t = f[3].split(b"/")
    assert got == ok(f[0].decode(), f[1].decode(), f[2].decode(), int(r), int(t), int(f[4]))
