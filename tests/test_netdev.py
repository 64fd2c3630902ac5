"""/proc/net/dev: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact rows out (name and its 16
counters; `present` all 16 bits, the name zero-padded) or the exact
ParseError (code, line).  Run on each backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import procfs_trees

U64 = 2**64 - 1
BIG = str(2**64).encode()
COUNTERS = L.NetDev._fields[1:17]
ALL_BITS = (1 << 16) - 1
HEADER = (b"Inter-|   Receive                                                |  Transmit\n"
          b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")


def nums(n: int, start: int = 1) -> bytes:
    return b" ".join(b"%d" % i for i in range(start, start + n))


def row(name: bytes, *values: int) -> tuple:
    assert len(values) == 16
    return (name, values)


def seq(name: bytes, start: int = 1) -> tuple:
    return row(name, *range(start, start + 16))


def err(code: int, line: int) -> tuple:
    return ("error", code, line)


N64 = b"i" * 60 + b"-64b"
N65 = N64 + b"X"
assert len(N64) == 64 and len(N65) == 65
LONG = b"eth0: " + nums(16) + b" and more words to pass sixty-four bytes"

CASES = [
    ("empty", b"", []),
    ("header only", HEADER, []),
    ("one header line", HEADER.splitlines(True)[0], []),
    ("not enough fields", HEADER + b"  eth0: " + nums(15) + b"\n", err(L.EFORMAT, 3)),
    ("no colon", HEADER + b"  eth0 " + nums(16) + b"\n", err(L.EFORMAT, 3)),
    ("valid",
     HEADER + b"    lo:  335890    3211    0    0    0     0          0         0   335890    3211    0    0    0     0       0          0\n"
     b"  eth0: 1234567 8901 1 2 3 4 5 6 7654321 1098 7 8 9 10 11 12\n",
     [row(b"lo", 335890, 3211, 0, 0, 0, 0, 0, 0, 335890, 3211, 0, 0, 0, 0, 0, 0),
      row(b"eth0", 1234567, 8901, 1, 2, 3, 4, 5, 6, 7654321, 1098, 7, 8, 9, 10, 11, 12)]),
    # Lines 1 and 2 are skipped whatever they hold.
    ("rows in the header lines are skipped", b"eth0: " + nums(16) + b"\neth1: x\n", []),
    ("garbage headers, then a row", b"\x00\xff: x\n\n  eth0: " + nums(16) + b"\n", [seq(b"eth0")]),
    ("blank line 3 skipped", HEADER + b"\n \t\neth0: " + nums(16) + b"\n", [seq(b"eth0")]),
    # The name ends at the last colon.
    ("no space after the colon (2.6 format)",
     HEADER + b"  eth1:" + str(U64).encode() + b" " + nums(15) + b"\n",
     [row(b"eth1", U64, *range(1, 16))]),
    ("alias name", HEADER + b"team0:1: " + nums(16) + b"\n", [seq(b"team0:1")]),
    ("several colons", HEADER + b"a:b:c:" + nums(16) + b"\n", [seq(b"a:b:c")]),
    ("colon after the counters, name fits", HEADER + b"eth0: " + nums(16) + b" x:\n", err(L.EFORMAT, 3)),
    ("colon after the counters, name too long", HEADER + LONG + b": " + nums(16) + b"\n", err(L.ENAME, 3)),
    ("colon after the counters, 16 more", HEADER + b"e: 1 2: " + nums(16) + b"\n", [seq(b"e: 1 2")]),
    # The name: white space stripped from both ends, 1 to 64 bytes.
    ("white space around the name", HEADER + b" \t\x0b\x0ceth0 \t\r: " + nums(16) + b"\n", [seq(b"eth0")]),
    ("inner white space kept", HEADER + b"my if: " + nums(16) + b"\n", [seq(b"my if")]),
    ("empty name", HEADER + b": " + nums(16) + b"\n", err(L.ENAME, 3)),
    ("white-space-only name", HEADER + b" \t : " + nums(16) + b"\n", err(L.ENAME, 3)),
    ("64-byte name", HEADER + b"  " + N64 + b": " + nums(16) + b"\n", [seq(N64)]),
    ("65-byte name", HEADER + N65 + b": " + nums(16) + b"\n", err(L.ENAME, 3)),
    ("64 bytes once stripped", HEADER + b" \t" + N64 + b"\t : " + nums(16) + b"\n", [seq(N64)]),
    ("name checked before the field count", HEADER + N65 + b":\n", err(L.ENAME, 3)),
    ("quote and backslash", HEADER + b'we"ird\\0: ' + nums(16) + b"\n", [seq(b'we"ird\\0')]),
    ("non-UTF-8 name", HEADER + b"\xff\xfeeth\x80: " + nums(16) + b"\n", [seq(b"\xff\xfeeth\x80")]),
    ("NUL in the name", HEADER + b"e\x00th0: " + nums(16) + b"\n", [seq(b"e\x00th0")]),
    ("0x85 0xa0 0x1c are not stripped", HEADER + b"\xa0eth0\x85\x1c: " + nums(16) + b"\n",
     [seq(b"\xa0eth0\x85\x1c")]),
    # Counters.
    ("more than 16 ignored unread", HEADER + b"eth0: " + nums(16) + b" x " + BIG + b"\n", [seq(b"eth0")]),
    ("largest counters", HEADER + b"eth0: " + b" ".join([str(U64).encode()] * 16) + b"\n",
     [row(b"eth0", *[U64] * 16)]),
    ("one too large", HEADER + b"eth0: " + nums(15) + b" " + BIG + b"\n", err(L.ERANGE, 3)),
    ("too large whatever the leading zeros", HEADER + b"eth0: 0" + BIG + b" " + nums(15) + b"\n",
     err(L.ERANGE, 3)),
    ("25 digits", HEADER + b"eth0: " + nums(8) + b" " + b"3" * 25 + b" " + nums(7) + b"\n", err(L.ERANGE, 3)),
    ("overflowing digits, then a letter", HEADER + b"eth0: 99999999999999999999x " + nums(15) + b"\n",
     err(L.EFORMAT, 3)),
    ("NUL line is not blank", HEADER + b"eth0: " + nums(16) + b"\n\x00\n", err(L.EFORMAT, 4)),
    ("9000 rows", HEADER + b"".join(b"e%d: " % i + nums(16, i) + b"\n" for i in range(9000)),
     [seq(b"e%d" % i, i) for i in range(9000)]),
    ("leading zeros", HEADER + b"eth0: " + b" ".join([b"0" * 30 + b"1"] * 16) + b"\n",
     [row(b"eth0", *[1] * 16)]),
    ("EFORMAT then ERANGE: left to right", HEADER + b"eth0: 1 x " + BIG + b" " + nums(13) + b"\n",
     err(L.EFORMAT, 3)),
    ("ERANGE then EFORMAT: left to right", HEADER + b"eth0: 1 " + BIG + b" x " + nums(13) + b"\n",
     err(L.ERANGE, 3)),
    ("field count before counters", HEADER + b"eth0: x " + BIG + b"\n", err(L.EFORMAT, 3)),
    ("sign", HEADER + b"eth0: -1 " + nums(15) + b"\n", err(L.EFORMAT, 3)),
    ("0xa0 between counters", HEADER + b"eth0: 1\xa02 " + nums(15) + b"\n", err(L.EFORMAT, 3)),
    ("NUL in a counter", HEADER + b"eth0: " + nums(15) + b" 1\x00\n", err(L.EFORMAT, 3)),
    ("vtab formfeed cr end the line", HEADER + b"eth0: " + nums(16) + b"\x0b\x0c\r\n", [seq(b"eth0")]),
    # Lines and rows.
    ("CRLF line ends", HEADER.replace(b"\n", b"\r\n") + b"eth0: " + nums(16) + b"\r\nlo: " + nums(16, 7) + b"\r\n",
     [seq(b"eth0"), seq(b"lo", 7)]),
    ("no final newline", HEADER + b"eth0: " + nums(16) + b"\nlo: " + nums(16, 7),
     [seq(b"eth0"), seq(b"lo", 7)]),
    ("duplicate names are separate rows", HEADER + b"eth1: " + nums(16) + b"\neth1: " + nums(16, 3) + b"\n",
     [seq(b"eth1"), seq(b"eth1", 3)]),
    ("blank lines are numbered", HEADER + b"\neth0: " + nums(15) + b"\n", err(L.EFORMAT, 4)),
    ("first error in file order", HEADER + b"eth0: " + nums(16) + b"\neth1 x\n: " + nums(16) + b"\n",
     err(L.EFORMAT, 4)),
]


def check(rows: list, want: list) -> None:
    assert [(r.name, tuple(getattr(r, f) for f in COUNTERS)) for r in rows] == want
    for r, (name, _) in zip(rows, want):
        assert r.present == ALL_BITS
        assert r.name_len == len(name)
        assert r.name_raw == name + b"\0" * (L.NAME_MAX - len(name))


def parse(backend, data: bytes) -> list:
    out = backend.parse_netdev(data)
    assert len(out) % L.NETDEV.size == 0
    return L.decode_netdev(out, len(out) // L.NETDEV.size)


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_netdev(backend, data, expected):
    if isinstance(expected, tuple):
        with pytest.raises(L.ParseError) as exc:
            backend.parse_netdev(data)
        assert (exc.value.code, exc.value.line) == expected[1:]
    else:
        check(parse(backend, data), expected)


def text_rows(data: bytes) -> list:
    """The rows of a well-formed, kernel-printed file, read the obvious way."""
    out = []
    for line in data.splitlines()[2:]:
        name, _, rest = line.rpartition(b":")
        out.append(row(name.strip(), *map(int, rest.split()[:16])))
    return out


# Row counts and one row typed in from each file.
TREES = {
    "linux-2.6.18-rhel5": (4, row(b"eth0", 39710157492, 281233410, 0, 3, 0, 0, 0, 11422,
                                  161351402461, 263344871, 0, 0, 0, 0, 0, 0)),
    "linux-3.2-debian7": (4, row(b"tun0", 258955620, 1233122, 0, 0, 0, 0, 0, 0,
                                 202444068, 1123441, 0, 0, 0, 0, 0, 0)),
    "linux-4.19-debian10": (7, row(b"br-8f2d1c0e7a3b", 3742382582, 9123312, 0, 0, 0, 0, 0, 0,
                                   13708902088, 11233122, 0, 0, 0, 0, 0, 0)),
    "linux-5.15-ubuntu22": (8, row(b"docker0", 0, 0, 0, 0, 0, 0, 0, 0, 45228, 312, 0, 0, 0, 0, 0, 0)),
    "linux-6.8-dense-small": (48, row(b"bond0.200", 7379594708981, 7294249786, 0, 97, 0, 0, 0, 72973,
                                      6368651580622, 6494649786, 0, 0, 0, 0, 0, 0)),
}

ODD = [
    row(b"eth1", U64, *range(1, 16)),
    seq(b"team0:1"),
    seq(b'we"ird\\0'),
    seq(b"\xff\xfeeth\x80", 200),
    row(b"x" * 20 + b"-sixty-four-byte-device-name-" + b"y" * 15, *[1] * 16),
    seq(b"lo", 1000),
    seq(b"my if"),
    row(b"eth1", *[U64] * 16),
]


def test_every_tree_has_expectations():
    assert {t.name for t in procfs_trees()} == set(TREES) | {"odd"}


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    data = (tree / "net" / "dev").read_bytes()
    rows = parse(backend, data)
    if tree.name == "odd":
        check(rows, ODD)
        return
    check(rows, text_rows(data))
    count, spot = TREES[tree.name]
    assert len(rows) == count
    assert [w for w in text_rows(data) if w[0] == spot[0]] == [spot]


def test_bond_is_the_sum_of_its_slaves(backend):
    rows = {r.name: r for r in parse(backend, (procfs_trees()[0].parent / "linux-6.8-dense-small" / "net" / "dev").read_bytes())}
    for f in COUNTERS:
        assert getattr(rows[b"bond0"], f) == getattr(rows[b"eno1np0"], f) + getattr(rows[b"eno2np1"], f)


# A table past filters.LARGE_ROWS travels as a LabelColumn and arrays of
# 64-bit words, a smaller one as tuples and lists: both render the file's
# exact counters, through the device filter too (the `keep` path), at
# 2**64 - 1 as well, and keep the first row of a name given twice.
@pytest.mark.parametrize("interfaces", [40, 5000])
@pytest.mark.parametrize("exclude", ["", "^veth1"])
def test_many_interfaces_render_their_exact_counters(backend, interfaces, exclude):
    import re
    from array import array

    from agent import exposition
    from agent.collectors.filters import LARGE_ROWS, NameFilter
    from agent.collectors.netdev import NetdevCollector
    from agent.metrics import LabelColumn

    names = [b"veth%d" % i for i in range(interfaces)]
    values = {name: [(i * 7919 + k * 104729) % (U64 + 1) if k else U64 - i for k in range(16)]
              for i, name in enumerate(names)}
    data = HEADER + b"".join(b"%s: %s\n" % (name, b" ".join(b"%d" % v for v in values[name]))
                             for name in names)
    # A second row of a name is left out: the first one's counters stand.
    data += b"veth3: " + b" ".join([b"7"] * 16) + b"\n"
    families = NetdevCollector(NameFilter("", exclude)).families(backend.parse_netdev(data))
    assert isinstance(families[0].values, array) == (interfaces > LARGE_ROWS)
    assert isinstance(families[0].labels, LabelColumn) == (interfaces > LARGE_ROWS)
    text = exposition.render_text(families).decode()
    kept = [n for n in names if not (exclude and re.search(exclude, n.decode()))]
    assert len(kept) < len(names) if exclude else len(kept) == len(names)
    columns = {"receive_bytes": 0, "receive_packets": 1, "receive_errors": 2,
               "transmit_bytes": 8, "transmit_packets": 9, "transmit_errors": 10}
    got = dict(re.findall(r'^(node_network_\w+_total\{interface="[^"]+"\}) (\d+)$', text, re.M))
    want = {f'node_network_{what}_total{{interface="{n.decode()}"}}': str(values[n][k])
            for n in kept for what, k in columns.items()}
    assert got == want


def test_label_column_reads_as_the_tuple_it_stands_for():
    from agent.metrics import LabelColumn

    values = ["eth0", "", "é\"x", "lo", "a" * 70]
    column = LabelColumn(iter(values))
    want = tuple((v,) for v in values)
    assert len(column) == len(want)
    assert tuple(column) == want
    assert [column[i] for i in range(-len(values), len(values))] == list(want) * 2
    with pytest.raises(IndexError):
        column[len(values)]
    assert column == LabelColumn(values) and hash(column) == hash(LabelColumn(values))
    assert column != LabelColumn(values[:-1]) and column != LabelColumn(["eth0", "", "é\"x", "lo", "b" * 70])
    assert LabelColumn([]) == LabelColumn(iter(())) and len(LabelColumn([])) == 0
