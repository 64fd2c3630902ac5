"""/proc/uptime: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact struct out or the exact
ParseError (code, line).  A decimal's expected value is m / 10**k computed
from its digits (Python's int / int is correctly rounded).  Run on each
backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import procfs_trees

BIG = str(2**64).encode()
ALL_BITS = 0b11


def dec(text: str) -> float:
    whole, _, frac = text.partition(".")
    return int(whole + frac) / 10 ** len(frac)


def ok(up: str, idle: str) -> L.Uptime:
    return L.Uptime(ALL_BITS, dec(up), dec(idle))


def err(code: int) -> tuple:
    return (code, 1)        # every uptime error is on line 1


CASES = [
    ("empty", b"", err(L.EFORMAT)),
    ("not enough fields", b"350735.47\n", err(L.EFORMAT)),
    ("valid", b"350735.47 234388.90\n", ok("350735.47", "234388.90")),
    ("blank line 1", b"\n350735.47 234388.90\n", err(L.EFORMAT)),
    ("white space only", b" \t\r\n", err(L.EFORMAT)),
    ("fields on two lines", b"350735.47\n234388.90\n", err(L.EFORMAT)),
    ("only line 1 counts", b"1.00 2.00\nx\n", ok("1.00", "2.00")),
    ("later fields ignored unread", b"1.00 2.00 x " + BIG + b"\n", ok("1.00", "2.00")),
    ("no final newline", b"1.00 2.00", ok("1.00", "2.00")),
    ("CRLF", b"1.00 2.00\r\n", ok("1.00", "2.00")),
    ("tab vtab formfeed cr", b"\t1.00\x0b\x0c2.00\r", ok("1.00", "2.00")),
    ("integers", b"12 0\n", ok("12", "0")),
    ("leading zeros", b"0000000000000.5 007.25\n", ok("0000000000000.5", "007.25")),
    ("15 digits", b"99999999999999.9 0.00000000000001\n", ok("99999999999999.9", "0.00000000000001")),
    ("15 integer digits", b"123456789012345 1\n", ok("123456789012345", "1")),
    ("16 digits", b"999999999999999.9 0\n", err(L.ERANGE)),
    ("16 digits counting leading zeros", b"1 0000000000000001\n", err(L.ERANGE)),
    ("16 digits, then a letter: the shape decides", b"1234567890123456.x 1\n", err(L.EFORMAT)),
    ("17 digits, then a second point", b"12345678901234567.5.5 1\n", err(L.EFORMAT)),
    ("5000 leading zeros", b"0" * 5000 + b".5 1\n", err(L.ERANGE)),
    ("no integer part", b".5 1\n", err(L.EFORMAT)),
    ("no fraction digits", b"5. 1\n", err(L.EFORMAT)),
    ("two points", b"1.2.3 1\n", err(L.EFORMAT)),
    ("sign", b"1 -1\n", err(L.EFORMAT)),
    ("exponent", b"1e3 1\n", err(L.EFORMAT)),
    ("comma", b"1,5 1\n", err(L.EFORMAT)),
    ("0x85 glued", b"1.5\x85 1\n", err(L.EFORMAT)),
    ("0x1c is not white space", b"1.5\x1c1 2\n", err(L.EFORMAT)),
    ("0x1c joins the only two fields", b"1.5\x1c1\n", err(L.EFORMAT)),
    ("NUL glued", b"1.5 1\x00\n", err(L.EFORMAT)),
    ("field count before values", b"1234567890123456\n", err(L.EFORMAT)),
    ("ERANGE then EFORMAT: left to right", b"1234567890123456 x\n", err(L.ERANGE)),
    ("EFORMAT then ERANGE: left to right", b"x 1234567890123456\n", err(L.EFORMAT)),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_uptime(backend, data, expected):
    if isinstance(expected, L.Uptime):
        out = backend.parse_uptime(data)
        assert len(out) == L.UPTIME.size
        got = L.decode_uptime(out)
        assert got == expected
        assert [type(v) for v in got] == [int, float, float]
    else:
        with pytest.raises(L.ParseError) as exc:
            backend.parse_uptime(data)
        assert (exc.value.code, exc.value.line) == expected


TREES = {
    "linux-2.6.18-rhel5": b"1209611.34 1146776.81\n",
    "linux-3.2-debian7": b"3456789.12 12855147.22\n",
    "linux-4.19-debian10": b"8123412.77 57207054.36\n",
    "linux-5.15-ubuntu22": b"512331.87 7490176.26\n",
    "linux-6.8-dense-small": b"1812334.56 52976032.24\n",
    "odd": None,
}


def test_every_tree_has_expectations():
    assert {t.name for t in procfs_trees()} == set(TREES)


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    data = (tree / "uptime").read_bytes()
    got = L.decode_uptime(backend.parse_uptime(data))
    if tree.name == "odd":
        assert got == ok("0000000000000.5", "99999999999999.9")
        return
    assert data == TREES[tree.name]
    up, idle = data.decode().split()
    assert got == ok(up, idle)
    # Internal consistency: idle is the CPUs' idle ticks / USER_HZ (cpu0's
    # alone on 2.6.18, whose idle figure is the boot CPU's idle task).
    stat = L.decode_stat(backend.parse_stat((tree / "stat").read_bytes()))
    if tree.name.startswith("linux-2.6"):
        cpu0 = next(ln for ln in (tree / "stat").read_bytes().splitlines() if ln.startswith(b"cpu0 "))
        assert round(got.idle_seconds * 100) == int(cpu0.split()[4])
    else:
        assert round(got.idle_seconds * 100) == stat.cpu_idle
