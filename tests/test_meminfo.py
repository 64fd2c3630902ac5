"""/proc/meminfo: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact struct out (fields named in
`want`, all others 0, `present` = exactly `want`'s bits) or the exact
ParseError (code, line).  Run on each backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import procfs_trees

U64 = 2**64 - 1
BIG = str(2**64).encode()

# The kernel's key for each struct field, in field order (PARSERS.md).
KEYS = dict(zip(
    [b"MemTotal", b"MemFree", b"MemAvailable", b"Buffers", b"Cached", b"SwapCached",
     b"Active", b"Inactive", b"Active(file)", b"Inactive(file)", b"SwapTotal",
     b"SwapFree", b"Dirty", b"Writeback", b"Shmem", b"Slab", b"SReclaimable",
     b"SUnreclaim"],
    L.Meminfo._fields[1:]))


def err(code: int, line: int) -> tuple:
    return (code, line)


FULL = b"".join(b"%s: %8d kB\n" % (k, i) for i, k in enumerate(KEYS, start=1))

CASES = [
    ("empty", b"", err(L.EMISSING, 0)),
    ("not enough fields", b"MemTotal:\n", err(L.EFORMAT, 1)),
    ("only white space after the colon", b"MemFree: 1 kB\nMemTotal:  \t\r\n", err(L.EFORMAT, 2)),
    ("valid", FULL, {f: i for i, f in enumerate(KEYS.values(), start=1)}),
    ("2.6.18 key set",
     b"MemTotal:      8174532 kB\nMemFree:        125508 kB\nBuffers:        289772 kB\n"
     b"Cached:        6813084 kB\nSwapCached:          0 kB\nActive:        3829928 kB\n"
     b"Inactive:      3752432 kB\nHighTotal:           0 kB\nSwapTotal:     2096472 kB\n"
     b"SwapFree:      2096216 kB\nDirty:             196 kB\nWriteback:           0 kB\n"
     b"AnonPages:      479428 kB\nSlab:           414924 kB\nHugePages_Total:     0\n"
     b"Hugepagesize:     2048 kB\n",
     dict(mem_total_kb=8174532, mem_free_kb=125508, buffers_kb=289772, cached_kb=6813084,
          swap_cached_kb=0, active_kb=3829928, inactive_kb=3752432, swap_total_kb=2096472,
          swap_free_kb=2096216, dirty_kb=196, writeback_kb=0, slab_kb=414924)),
    ("no MemTotal", b"MemFree: 5 kB\n", err(L.EMISSING, 0)),
    ("MemTotal alone", b"MemTotal: 5 kB\n", dict(mem_total_kb=5)),
    # The key: the bytes before the first colon, exactly.
    ("leading space: unknown key", b" MemTotal: 5 kB\n", err(L.EMISSING, 0)),
    ("space before the colon: unknown key", b"MemTotal : 5 kB\n", err(L.EMISSING, 0)),
    ("case matters", b"memtotal: 5 kB\nMEMTOTAL: 6\n", err(L.EMISSING, 0)),
    ("tab in the key", b"Mem\tTotal: 5\n", err(L.EMISSING, 0)),
    ("NUL in the key", b"MemTotal\x00: 5 kB\n", err(L.EMISSING, 0)),
    ("empty key", b": 5\nMemTotal: 1\n", dict(mem_total_kb=1)),
    ("second colon starts the value", b"MemTotal:: 5 kB\n", err(L.EFORMAT, 1)),
    ("line without colon skipped", b"MemTotal 5 kB\nMemTotal: 6 kB\n", dict(mem_total_kb=6)),
    ("similar keys stay apart",
     b"Active(anon): 9\nActive: 7\nInactive(anon): 8\nMemTotal: 1\nSReclaimable: 2\n",
     dict(active_kb=7, mem_total_kb=1, sreclaimable_kb=2)),
    # The value.
    ("no space after the colon", b"MemTotal:5 kB\n", dict(mem_total_kb=5)),
    ("no unit", b"MemTotal: 5\n", dict(mem_total_kb=5)),
    ("later fields ignored", b"MemTotal: 5 MB and then " + BIG + b" x\n", dict(mem_total_kb=5)),
    ("unit glued to the value", b"MemTotal: 5kB\n", err(L.EFORMAT, 1)),
    ("largest counter", b"MemTotal: " + str(U64).encode() + b" kB\n", dict(mem_total_kb=U64)),
    ("one too large", b"MemTotal: " + BIG + b" kB\n", err(L.ERANGE, 1)),
    ("too large whatever the leading zeros", b"MemTotal: 0000" + BIG + b" kB\n", err(L.ERANGE, 1)),
    ("25 digits", b"MemTotal: " + b"1" * 25 + b" kB\n", err(L.ERANGE, 1)),
    ("overflowing digits, then a letter", b"MemTotal: 99999999999999999999x kB\n", err(L.EFORMAT, 1)),
    ("5000 leading zeros", b"MemTotal: " + b"0" * 5000 + b"3 kB\n", dict(mem_total_kb=3)),
    ("leading zeros", b"MemTotal: " + b"0" * 50 + b"42 kB\nMemFree: 0\n",
     dict(mem_total_kb=42, mem_free_kb=0)),
    ("sign", b"MemTotal: +5 kB\n", err(L.EFORMAT, 1)),
    ("negative", b"MemTotal: 5 kB\nCommitted_AS: -5 kB\nDirty: -1 kB\n", err(L.EFORMAT, 3)),
    ("decimal", b"MemTotal: 5.0 kB\n", err(L.EFORMAT, 1)),
    ("NUL in the value", b"MemTotal: 5\x00 kB\n", err(L.EFORMAT, 1)),
    ("0xa0 is not white space", b"MemTotal:\xa05 kB\n", err(L.EFORMAT, 1)),
    ("0x85 is not white space", b"MemTotal: 5\x85kB\n", err(L.EFORMAT, 1)),
    ("0x1c is not white space", b"MemTotal:\x1c5 kB\n", err(L.EFORMAT, 1)),
    ("vtab formfeed tab cr are white space", b"MemTotal:\x0b\x0c\t5\r\n", dict(mem_total_kb=5)),
    # Unknown keys are never looked at.
    ("unknown keys skipped unread",
     b"HugePages_Total: -1\nFoo: bar\nDirectMap4k: " + BIG + b" kB\nA (b): c: d\nMemTotal: 1\n",
     dict(mem_total_kb=1)),
    ("unknown keys may repeat", b"Foo: 1\nFoo: 2\nMemTotal: 1\nFoo: 3\n", dict(mem_total_kb=1)),
    # Lines, duplicates, error order.
    ("CRLF line ends", b"MemTotal: 1 kB\r\nMemFree: 2 kB\r\n", dict(mem_total_kb=1, mem_free_kb=2)),
    ("no final newline", b"MemTotal: 1 kB\nSUnreclaim: 9", dict(mem_total_kb=1, sunreclaim_kb=9)),
    ("duplicate known key", b"MemTotal: 1\nMemFree: 2\nMemTotal: 3\n", err(L.EFORMAT, 3)),
    ("duplicate known key even if equal", b"MemTotal: 1\nSlab: 2\nSlab: 2\n", err(L.EFORMAT, 3)),
    ("error comes before EMISSING", b"MemFree: x\n", err(L.EFORMAT, 1)),
    ("first error in file order", b"MemFree: x\nBuffers: " + BIG + b"\n", err(L.EFORMAT, 1)),
    ("blank lines are numbered", b"\n\r\nMemTotal: x\n", err(L.EFORMAT, 3)),
]


def check(got: L.Meminfo, want: dict) -> None:
    fields = L.Meminfo._fields[1:]
    assert set(want) <= set(fields)
    assert {f: getattr(got, f) for f in fields} == {f: want.get(f, 0) for f in fields}
    assert got.present == sum(1 << L.MEMINFO_BIT[f] for f in want)


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_meminfo(backend, data, expected):
    if isinstance(expected, tuple):
        with pytest.raises(L.ParseError) as exc:
            backend.parse_meminfo(data)
        assert (exc.value.code, exc.value.line) == expected
    else:
        out = backend.parse_meminfo(data)
        assert len(out) == L.MEMINFO.size
        check(L.decode_meminfo(out), expected)


# Which of the known keys each kernel lacks (see the trees' README).
ABSENT = {
    "linux-2.6.18-rhel5": {b"MemAvailable", b"Active(file)", b"Inactive(file)", b"Shmem",
                           b"SReclaimable", b"SUnreclaim"},
    "linux-3.2-debian7": {b"MemAvailable"},
    "linux-4.19-debian10": set(),
    "linux-5.15-ubuntu22": set(),
    "linux-6.8-dense-small": set(),
}

ODD = dict(mem_total_kb=U64, mem_free_kb=1, mem_available_kb=42, buffers_kb=7, cached_kb=5,
           swap_cached_kb=0, active_kb=7, inactive_kb=9, active_file_kb=3, inactive_file_kb=4,
           swap_total_kb=0, swap_free_kb=0, dirty_kb=0, writeback_kb=0, shmem_kb=0, slab_kb=3,
           sreclaimable_kb=1, sunreclaim_kb=2)


def text_values(data: bytes) -> dict:
    """The known keys of a well-formed, kernel-printed file, read the obvious way."""
    out = {}
    for line in data.decode("ascii").splitlines():
        key, _, rest = line.partition(":")
        if key.encode() in KEYS:
            out[KEYS[key.encode()]] = int(rest.split()[0])
    return out


def test_every_tree_has_expectations():
    assert {t.name for t in procfs_trees()} == set(ABSENT) | {"odd"}


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    data = (tree / "meminfo").read_bytes()
    got = L.decode_meminfo(backend.parse_meminfo(data))
    if tree.name == "odd":
        check(got, ODD)
        return
    want = text_values(data)
    assert {k for k, f in KEYS.items() if f not in want} == ABSENT.get(tree.name, set())
    check(got, want)
    # Internal consistency of the hand-written trees.
    assert got.slab_kb == got.sreclaimable_kb + got.sunreclaim_kb or tree.name.startswith("linux-2.6")
    assert got.mem_available_kb <= got.mem_total_kb


def test_spot_values(backend):
    """A few values typed in from the files, not read by the test."""
    def parse(name):
        return L.decode_meminfo(backend.parse_meminfo(
            (procfs_trees()[0].parent / name / "meminfo").read_bytes()))
    assert parse("linux-2.6.18-rhel5").mem_total_kb == 8174532
    assert parse("linux-3.2-debian7").active_file_kb == 1654220
    assert parse("linux-4.19-debian10").mem_available_kb == 22901029
    assert parse("linux-5.15-ubuntu22").sreclaimable_kb == 1123312
    assert parse("linux-6.8-dense-small").slab_kb == 13246624
