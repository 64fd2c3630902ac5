"""/proc/diskstats: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact rows out (each row: major, minor,
name and the stats it gives; every other field 0, `present` = exactly the
given stats' bits, the name zero-padded) or the exact ParseError (code,
line).  Run on each backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import procfs_trees

U64 = 2**64 - 1
BIG = str(2**64).encode()
STATS = L.DiskStats._fields[3:20]          # reads_completed … flush_time_ms
PARTITION = ("reads_completed", "sectors_read", "writes_completed", "sectors_written")


def nums(n: int, start: int = 1) -> bytes:
    return b" ".join(b"%d" % i for i in range(start, start + n))


def row(major: int, minor: int, name: bytes, *stats: int) -> dict:
    """A row as the grammar reads it: 4 stats are the 2.6 partition layout,
    11 or more are the kernel's order (the first 17 kept)."""
    keys = PARTITION if len(stats) == 4 else STATS
    return dict(major=major, minor=minor, name=name, **dict(zip(keys, stats)))


def err(code: int, line: int) -> tuple:
    return (code, line)


N64 = b"n" * 60 + b"-64b"
N65 = N64 + b"X"
assert len(N64) == 64 and len(N65) == 65

CASES = [
    ("empty", b"", []),
    ("blank lines only", b"\n \t\r\n\n", []),
    ("not enough fields", b"   8       0\n", err(L.EFORMAT, 1)),
    ("one field", b"8\n", err(L.EFORMAT, 1)),
    ("name but no stats", b"   8       0 sda\n", err(L.EFORMAT, 1)),
    ("valid",
     b"   8       0 sda 446216 784926 9550688 4382310 424847 312726 5922052 19310380 0 3376340 23705160\n"
     b"   8       1 sda1 35486 38030 38030 38030\n",
     [row(8, 0, b"sda", 446216, 784926, 9550688, 4382310, 424847, 312726, 5922052, 19310380, 0, 3376340, 23705160),
      row(8, 1, b"sda1", 35486, 38030, 38030, 38030)]),
    # Stats counts: 4, or 11 and more; the first 17 kept.
    *[(f"{s} stats", b"8 0 sda " + nums(s) + b"\n", err(L.EFORMAT, 1)) for s in (1, 2, 3, 5, 6, 7, 8, 9, 10)],
    *[(f"{s} stats", b"8 0 sda " + nums(s) + b"\n", [row(8, 0, b"sda", *range(1, min(s, 17) + 1))])
      for s in (11, 12, 13, 14, 15, 16, 17, 18, 19, 22)],
    ("4.18 discards (18 fields)", b"8 0 sda " + nums(15) + b"\n", [row(8, 0, b"sda", *range(1, 16))]),
    ("5.5 flushes (20 fields)", b"8 0 sda " + nums(17) + b"\n", [row(8, 0, b"sda", *range(1, 18))]),
    ("past 17 stats: ignored unread", b"8 0 sda " + nums(17) + b" x " + BIG + b"\n",
     [row(8, 0, b"sda", *range(1, 18))]),
    ("partition layout zeros", b"2 0 fd0 0 0 0 0", [row(2, 0, b"fd0", 0, 0, 0, 0)]),
    # Names.
    ("64-byte name", b"259 0 " + N64 + b" 1 2 3 4\n", [row(259, 0, N64, 1, 2, 3, 4)]),
    ("65-byte name", b"259 0 " + N65 + b" 1 2 3 4\n", err(L.ENAME, 1)),
    ("name checked before the stats count", b"259 0 " + N65 + b"\n", err(L.ENAME, 1)),
    ("name checked before the stats", b"259 0 " + N65 + b" x x x x\n", err(L.ENAME, 1)),
    ("non-UTF-8 name", b"253 0 dm-\xff\xfe\xc3\x28 1 2 3 4\n", [row(253, 0, b"dm-\xff\xfe\xc3\x28", 1, 2, 3, 4)]),
    ("NUL in a name", b"8 0 s\x00a 1 2 3 4\n", [row(8, 0, b"s\x00a", 1, 2, 3, 4)]),
    ("quote and backslash in a name", b'8 0 s"d\\a 1 2 3 4\n', [row(8, 0, b's"d\\a', 1, 2, 3, 4)]),
    ("0x1c is not white space", b"8 0 sda\x1c1 2 3 4\n", err(L.EFORMAT, 1)),
    ("0xa0 in a name", b"8 0 \xa0sda\x85 1 2 3 4\n", [row(8, 0, b"\xa0sda\x85", 1, 2, 3, 4)]),
    # Major, minor.
    ("major not a counter", b"x 0 sda 1 2 3 4\n", err(L.EFORMAT, 1)),
    ("major too large, before the stats count", b"" + BIG + b" 0 sda\n", err(L.ERANGE, 1)),
    ("minor too large, before the name", b"8 " + BIG + b" " + N65 + b"\n", err(L.ERANGE, 1)),
    ("0xa0 glued to major", b"8\xa00 sda 1 2 3 4\n", err(L.EFORMAT, 1)),
    ("leading zeros", b"00008 000001 sda1 01 02 03 04\n", [row(8, 1, b"sda1", 1, 2, 3, 4)]),
    # Stats.
    ("largest counters", b"8 0 sda " + b" ".join([str(U64).encode()] * 17) + b"\n",
     [row(8, 0, b"sda", *[U64] * 17)]),
    ("one too large", b"8 0 sda 1 2 3 " + BIG + b"\n", err(L.ERANGE, 1)),
    ("too large whatever the leading zeros", b"8 0 sda 1 2 3 000" + BIG + b"\n", err(L.ERANGE, 1)),
    ("25 digits", b"8 0 sda " + nums(10) + b" " + b"7" * 25 + b"\n", err(L.ERANGE, 1)),
    ("overflowing digits, then a letter", b"8 0 sda 1 2 3 99999999999999999999x\n", err(L.EFORMAT, 1)),
    ("NUL line is not blank", b"8 0 sda 1 2 3 4\n\x00\n", err(L.EFORMAT, 2)),
    ("9000 rows", b"".join(b"8 %d sd%d 1 2 3 %d\n" % (i, i, i) for i in range(9000)),
     [row(8, i, b"sd%d" % i, 1, 2, 3, i) for i in range(9000)]),
    ("EFORMAT then ERANGE: left to right", b"8 0 sda 1 x " + BIG + b" 4\n", err(L.EFORMAT, 1)),
    ("ERANGE then EFORMAT: left to right", b"8 0 sda 1 " + BIG + b" x 4\n", err(L.ERANGE, 1)),
    ("sign", b"8 0 sda 1 2 3 -4\n", err(L.EFORMAT, 1)),
    ("NUL in a stat", b"8 0 sda 1 2 3 4\x00\n", err(L.EFORMAT, 1)),
    # Lines and rows.
    ("tabs vtab formfeed", b"8\t0\x0bsda\x0c1 2 3 4\n", [row(8, 0, b"sda", 1, 2, 3, 4)]),
    ("CRLF line ends", b"8 0 sda 1 2 3 4\r\n8 1 sda1 5 6 7 8\r\n",
     [row(8, 0, b"sda", 1, 2, 3, 4), row(8, 1, b"sda1", 5, 6, 7, 8)]),
    ("no final newline", b"8 0 sda 1 2 3 4\n8 1 sda1 5 6 7 8",
     [row(8, 0, b"sda", 1, 2, 3, 4), row(8, 1, b"sda1", 5, 6, 7, 8)]),
    ("duplicate names are separate rows", b"7 0 loop0 1 2 3 4\n7 0 loop0 5 6 7 8\n",
     [row(7, 0, b"loop0", 1, 2, 3, 4), row(7, 0, b"loop0", 5, 6, 7, 8)]),
    ("blank lines skipped", b"\n8 0 sda 1 2 3 4\n \t\n\n8 1 sda1 5 6 7 8\n\n",
     [row(8, 0, b"sda", 1, 2, 3, 4), row(8, 1, b"sda1", 5, 6, 7, 8)]),
    ("blank lines are numbered", b"\n8 0 sda 1 2 3 4\n\n8 1 sda1 1 2 3\n", err(L.EFORMAT, 4)),
    ("first error in file order", b"8 0 sda 1 2 3 4\n8 1 sda1 x\n8 2 " + N65 + b" 1 2 3 4\n",
     err(L.EFORMAT, 2)),
    ("an error after good rows", b"8 0 sda 1 2 3 4\n" * 3 + b"8 3 " + N65 + b" 1 2 3 4\n",
     err(L.ENAME, 4)),
]


def check(rows: list, want: list) -> None:
    assert len(rows) == len(want)
    for got, w in zip(rows, want):
        w = dict(w)
        name = w.pop("name")
        stats = {k: v for k, v in w.items() if k in STATS}
        assert got.name_len == len(name)
        assert got.name_raw == name + b"\0" * (L.NAME_MAX - len(name))
        assert got.name == name
        fields = L.DiskStats._fields[1:20]
        assert {f: getattr(got, f) for f in fields} == {f: w.get(f, 0) for f in fields}
        assert got.present == sum(1 << L.DISK_BIT[f] for f in stats)


def parse(backend, data: bytes) -> list:
    out = backend.parse_diskstats(data)
    assert len(out) % L.DISKSTATS.size == 0
    return L.decode_diskstats(out, len(out) // L.DISKSTATS.size)


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_diskstats(backend, data, expected):
    if isinstance(expected, tuple):
        with pytest.raises(L.ParseError) as exc:
            backend.parse_diskstats(data)
        assert (exc.value.code, exc.value.line) == expected
    else:
        check(parse(backend, data), expected)


def text_rows(data: bytes) -> list:
    """The rows of a well-formed, kernel-printed file, read the obvious way."""
    out = []
    for line in data.splitlines():
        f = line.split()
        if f:
            out.append(row(int(f[0]), int(f[1]), f[2], *map(int, f[3:20])))
    return out


# Row counts, the layouts each kernel prints (stats per line), and one row typed
# in from each file.
TREES = {
    "linux-2.6.18-rhel5": (22, {4, 11}, row(8, 1, b"sda1", 4123, 40210, 88, 176)),
    "linux-3.2-debian7": (16, {11}, row(8, 17, b"sdb1", 52110, 441, 418812, 90212, 1123, 2210,
                                        26664, 2012, 0, 61233, 92224)),
    "linux-4.19-debian10": (16, {15}, row(253, 1, b"dm-1", 112, 0, 5144, 28, 128, 0, 1024, 16, 0,
                                          40, 44, 0, 0, 0, 0)),
    "linux-5.15-ubuntu22": (19, {17}, row(259, 1, b"nvme0n1p1", 1233, 512, 41233, 312, 4, 0, 8, 1,
                                          0, 512, 313, 2, 0, 1048576, 0, 0, 0)),
    "linux-6.8-dense-small": (10, {17}, row(7, 2, b"loop2", 88, 0, 706, 22, 0, 0, 0, 0, 0, 48, 22,
                                            0, 0, 0, 0, 0, 0)),
}

ODD = [
    row(8, 0, b"sda", *[U64] * 17),
    row(8, 1, b"sda1", 1, 2, 3, 4),
    row(8, 2, b"sda2", *range(1, 12)),
    row(259, 0, b"x" * 20 + b"-sixty-four-byte-device-name-" + b"y" * 15, *range(1, 16)),
    row(253, 0, b"dm-\xff\xfe\xc3\x28", *range(1, 18)),
    row(7, 0, b"loop0", *range(1, 18)),
    row(7, 0, b"loop0", *range(100, 111)),
    row(8, 16, b'sd"q\\b', *range(1, 13)),
    row(2, 0, b"fd0", 0, 0, 0, 0),
]


def test_every_tree_has_expectations():
    assert {t.name for t in procfs_trees()} == set(TREES) | {"odd"}


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    data = (tree / "diskstats").read_bytes()
    rows = parse(backend, data)
    if tree.name == "odd":
        check(rows, ODD)
        return
    check(rows, text_rows(data))
    count, layouts, spot = TREES[tree.name]
    assert len(rows) == count
    assert {len(ln.split()) - 3 for ln in data.splitlines()} == layouts
    check([r for r in rows if r.name == spot["name"]], [spot])
