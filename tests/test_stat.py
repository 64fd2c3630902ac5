"""/proc/stat: the table of docs/PARSERS.md cases, then every fixture tree.

Each case is bytes in and either the exact struct out (every field given in
`want`, every other field 0, `present` = exactly the bits of `want`'s keys;
`rows`, the per-CPU rows, each with exactly the columns given) or the exact
ParseError (code, line).  Run on each backend."""

from __future__ import annotations

import pytest

from agent.procfs import layout as L
from trees import FIXTURES, procfs_trees

U64 = 2**64 - 1
BIG = str(2**64).encode()                  # one past the largest counter
CPU = L.STAT_CPU_FIELDS                    # user, nice, …, guest_nice


def cpu(*values: int) -> dict:
    return dict(zip(CPU, values))


def row(index: int, *values: int) -> L.Cpu:
    """A cpuN row: its number and its first len(values) columns."""
    return L.Cpu(present=(1 << len(values)) - 1, cpu=index,
                 **dict(zip(L.CPU_BIT, values + (0,) * (10 - len(values)))))


def err(code: int, line: int) -> tuple:
    return ("error", code, line)


CASES = [
    # name, input, expected
    ("empty", b"", err(L.EMISSING, 0)),
    ("blank lines only", b"\n \t\n\r\n\x0b\x0c\n", err(L.EMISSING, 0)),
    ("not enough fields", b"cpu  1 2 3\n", err(L.EFORMAT, 1)),
    ("cpu with no field", b"intr 1\ncpu\n", err(L.EFORMAT, 2)),
    ("valid",
     b"cpu  10 20 30 40 50 60 70 80 90 100\n"
     b"cpu0 10 20 30 40 50 60 70 80 90 100\n"
     b"intr 114930548 113199788 3 0 5 263 0 4\n"
     b"ctxt 1990473\nbtime 1062191376\nprocesses 2915\n"
     b"procs_running 1\nprocs_blocked 0\n"
     b"softirq 183433 0 21755 12 39 1137 231 21459 2263\n",
     dict(cpu(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), intr=114930548, ctxt=1990473,
          btime=1062191376, processes=2915, procs_running=1, procs_blocked=0, cpu_count=1,
          rows=[row(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)])),
    # The cpu line's field count over the kernel generations.
    ("four cpu fields", b"cpu 1 2 3 4\n", cpu(1, 2, 3, 4)),
    ("seven cpu fields (2.6.0)", b"cpu 1 2 3 4 5 6 7\n", cpu(1, 2, 3, 4, 5, 6, 7)),
    ("eight cpu fields (2.6.11 steal)", b"cpu  1 2 3 4 5 6 7 8\n", cpu(1, 2, 3, 4, 5, 6, 7, 8)),
    ("nine cpu fields (2.6.24 guest)", b"cpu 1 2 3 4 5 6 7 8 9\n", cpu(*range(1, 10))),
    ("more than ten cpu fields: the rest ignored unread",
     b"cpu 1 2 3 4 5 6 7 8 9 10 11 twelve " + BIG + b"\n", cpu(*range(1, 11))),
    ("no cpu line", b"cpu0 1 2 3 4\nctxt 5\n", err(L.EMISSING, 0)),
    # Counters.
    ("largest counter", b"cpu " + str(U64).encode() + b" 0 0 0\n", cpu(U64, 0, 0, 0)),
    ("counter one too large", b"cpu " + BIG + b" 0 0 0\n", err(L.ERANGE, 1)),
    ("too large whatever the leading zeros", b"cpu 0000000000" + BIG + b" 0 0 0\n", err(L.ERANGE, 1)),
    ("25-digit counter", b"cpu 1 " + b"9" * 25 + b" 0 0\n", err(L.ERANGE, 1)),
    ("leading zeros", b"cpu " + b"0" * 40 + b"7 00 000 0009\n", cpu(7, 0, 0, 9)),
    ("largest counter behind leading zeros",
     b"cpu 000" + str(U64).encode() + b" 0 0 0\n", cpu(U64, 0, 0, 0)),
    ("plus sign", b"cpu +1 2 3 4\n", err(L.EFORMAT, 1)),
    ("minus sign", b"cpu 1 -2 3 4\n", err(L.EFORMAT, 1)),
    ("underscore", b"cpu 1 2 1_000 4\n", err(L.EFORMAT, 1)),
    ("hex", b"cpu 0x10 2 3 4\n", err(L.EFORMAT, 1)),
    ("decimal point", b"cpu 1 2 3 4.0\n", err(L.EFORMAT, 1)),
    ("non-ASCII digit", "cpu 1 2 3 \u0664\n".encode(), err(L.EFORMAT, 1)),
    ("ERANGE then EFORMAT: left to right", b"cpu " + BIG + b" x 0 0\n", err(L.ERANGE, 1)),
    ("EFORMAT then ERANGE: left to right", b"cpu x " + BIG + b" 0 0\n", err(L.EFORMAT, 1)),
    ("overflowing digits, then a letter: not a counter", b"cpu 99999999999999999999x 1 2 3\n", err(L.EFORMAT, 1)),
    ("5000 leading zeros", b"cpu " + b"0" * 5000 + b"1 2 3 4\n", cpu(1, 2, 3, 4)),
    ("5000 digits", b"cpu " + b"9" * 5000 + b" 2 3 4\n", err(L.ERANGE, 1)),
    ("count checked before values", b"cpu x " + BIG + b"\n", err(L.EFORMAT, 1)),
    # White space and bytes that are not white space.
    ("tab vtab formfeed cr separate", b"cpu\x0b1\x0c2\r3\t4\n", cpu(1, 2, 3, 4)),
    ("CRLF line ends", b"cpu 1 2 3 4\r\nctxt 5\r\n", dict(cpu(1, 2, 3, 4), ctxt=5)),
    ("no final newline", b"cpu 1 2 3 4\nprocs_blocked 3", dict(cpu(1, 2, 3, 4), procs_blocked=3)),
    ("0x1c is not white space (key)", b"cpu\x1c1 2 3 4\n", err(L.EMISSING, 0)),
    ("0x1f is not white space (value)", b"cpu 1\x1f2 3 4 5\n", err(L.EFORMAT, 1)),
    ("0x85 is not white space", b"cpu 1 2\x85 3 4\n", err(L.EFORMAT, 1)),
    ("0xa0 is not white space", b"cpu 1 2 3 \xa04\n", err(L.EFORMAT, 1)),
    ("NUL glued to the key", b"cpu\x00 1 2 3 4\n", err(L.EMISSING, 0)),
    ("NUL in a counter", b"cpu 1 2\x00 3 4\n", err(L.EFORMAT, 1)),
    ("NUL line is an unknown key", b"\x00\ncpu 1 2 3 4", cpu(1, 2, 3, 4)),
    # Keys.
    ("key is exactly cpu", b"CPU 1 2 3 4\ncpu: 1 2 3 4\ncpux 1\n", err(L.EMISSING, 0)),
    ("unknown keys skipped unread",
     b"page x y\nswap -1\nsoftirq\ncpu0x z\ndisk_io: (2,0):(31,30,5764,1,2)\ncpu 1 2 3 4\n",
     cpu(1, 2, 3, 4)),
    ("unknown keys may repeat", b"softirq 1\nsoftirq 2\npage x\npage y\ncpu 1 2 3 4\n", cpu(1, 2, 3, 4)),
    # intr: its first number, the total; the per-IRQ counts are not looked at.
    ("intr total", b"cpu 1 2 3 4\nintr 7 x " + BIG + b"\n", dict(cpu(1, 2, 3, 4), intr=7)),
    ("intr alone", b"intr\ncpu 1 2 3 4\n", err(L.EFORMAT, 1)),
    ("intr total not a counter", b"cpu 1 2 3 4\nintr x 1\n", err(L.EFORMAT, 2)),
    ("intr total too large", b"cpu 1 2 3 4\nintr " + BIG + b"\n", err(L.ERANGE, 2)),
    ("intr twice", b"intr 1\nintr 2\ncpu 1 2 3 4\n", err(L.EFORMAT, 2)),
    # The per-CPU lines: one row each, the cpu line's grammar, ascending numbers.
    ("cpuN rows", b"cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu1 5 6 7 8 9 10 11 12 13 14 15\n  cpu17 0 0 0 0 0\n"
                  b"cpu255 1 2 3 4 5 6 7 8\n",
     dict(cpu(1, 2, 3, 4), cpu_count=4,
          rows=[row(0, 1, 2, 3, 4), row(1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14), row(17, 0, 0, 0, 0, 0),
                row(255, 1, 2, 3, 4, 5, 6, 7, 8)])),
    ("cpu and digits only", b"cpu 1 2 3 4\ncpu0x 1\ncpux1 2\ncpu-1 3\nCPU0 4\ncpu+1 5\n", cpu(1, 2, 3, 4)),
    ("cpuN before the cpu line", b"cpu3 9 8 7 6\ncpu 1 2 3 4\n",
     dict(cpu(1, 2, 3, 4), cpu_count=1, rows=[row(3, 9, 8, 7, 6)])),
    ("cpuN with 3 columns", b"cpu 1 2 3 4\ncpu0 1 2 3\n", err(L.EFORMAT, 2)),
    ("cpuN alone", b"cpu 1 2 3 4\ncpu0\n", err(L.EFORMAT, 2)),
    ("cpuN column not a counter", b"cpu 1 2 3 4\ncpu0 1 2 3 x\n", err(L.EFORMAT, 2)),
    ("cpuN column too large", b"cpu 1 2 3 4\ncpu0 1 2 3 " + BIG + b"\n", err(L.ERANGE, 2)),
    ("cpuN column count before counters", b"cpu 1 2 3 4\ncpu0 " + BIG + b" x\n", err(L.EFORMAT, 2)),
    ("cpuN columns past ten ignored", b"cpu0 1 2 3 4 5 6 7 8 9 10 x " + BIG + b"\ncpu 1 2 3 4\n",
     dict(cpu(1, 2, 3, 4), cpu_count=1, rows=[row(0, *range(1, 11))])),
    ("cpuN repeated", b"cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu0 1 2 3 4\n", err(L.EFORMAT, 3)),
    ("cpuN descending", b"cpu 1 2 3 4\ncpu2 1 2 3 4\ncpu1 1 2 3 4\n", err(L.EFORMAT, 3)),
    ("cpuN order before columns", b"cpu 1 2 3 4\ncpu2 1 2 3 4\ncpu1 x\n", err(L.EFORMAT, 3)),
    ("offline CPUs leave gaps", b"cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu5 5 6 7 8\n",
     dict(cpu(1, 2, 3, 4), cpu_count=2, rows=[row(0, 1, 2, 3, 4), row(5, 5, 6, 7, 8)])),
    ("largest CPU number", b"cpu 1 2 3 4\ncpu65535 1 2 3 4\n",
     dict(cpu(1, 2, 3, 4), cpu_count=1, rows=[row(65535, 1, 2, 3, 4)])),
    ("CPU number too large", b"cpu 1 2 3 4\ncpu65536 1 2 3 4\n", err(L.EFORMAT, 2)),
    ("CPU number of 30 digits", b"cpu 1 2 3 4\ncpu" + b"9" * 30 + b" 1 2 3 4\n", err(L.EFORMAT, 2)),
    ("CPU number of 5000 digits", b"cpu 1 2 3 4\ncpu" + b"1" * 5000 + b" 1 2 3 4\n", err(L.EFORMAT, 2)),
    ("CPU number with leading zeros", b"cpu 1 2 3 4\ncpu" + b"0" * 5000 + b"7 1 2 3 4\ncpu0008 1 2 3 4\n",
     dict(cpu(1, 2, 3, 4), cpu_count=2, rows=[row(7, 1, 2, 3, 4), row(8, 1, 2, 3, 4)])),
    ("scalar key needs a value", b"cpu 1 2 3 4\nbtime\n", err(L.EFORMAT, 2)),
    ("scalar later fields ignored", b"ctxt 5 garbage\ncpu 1 2 3 4\n", dict(cpu(1, 2, 3, 4), ctxt=5)),
    ("scalar not a counter", b"processes x\ncpu 1 2 3 4\n", err(L.EFORMAT, 1)),
    ("scalar error comes before EMISSING", b"processes 1x\n", err(L.EFORMAT, 1)),
    ("scalar out of range", b"procs_running " + BIG + b"\ncpu 1 2 3 4", err(L.ERANGE, 1)),
    ("scalar key must be exact", b"ctxtx 5\nCtxt 6\ncpu 1 2 3 4", cpu(1, 2, 3, 4)),
    ("all scalars",
     b"cpu 1 2 3 4\nintr 10 0\nctxt 11\nbtime 12\nprocesses 13\nprocs_running 14\nprocs_blocked 15\n",
     dict(cpu(1, 2, 3, 4), intr=10, ctxt=11, btime=12, processes=13, procs_running=14, procs_blocked=15)),
    # Duplicates and error order.
    ("duplicate cpu line", b"cpu 1 2 3 4\nintr 0\ncpu 1 2 3 4\n", err(L.EFORMAT, 3)),
    ("duplicate scalar", b"cpu 1 2 3 4\nctxt 1\nctxt 2\n", err(L.EFORMAT, 3)),
    ("first error in file order", b"ctxt x\nbtime " + BIG + b"\n", err(L.EFORMAT, 1)),
    ("blank lines are numbered", b"cpu 1 2 3 4\n\n\r\nprocesses 1x\n", err(L.EFORMAT, 4)),
    ("CR-only line is blank but counted", b"\r\ncpu 1 2\n", err(L.EFORMAT, 2)),
]


def check(out: bytes, want: dict) -> None:
    want = dict(want)
    rows = want.pop("rows", [])
    got = L.decode_stat(out)
    fields = L.Stat._fields[1:]
    assert set(want) <= set(fields)
    assert {f: getattr(got, f) for f in fields} == {f: want.get(f, 0) for f in fields}
    assert got.present == sum(1 << L.STAT_BIT[f] for f in want)
    assert len(out) == L.STAT.size + len(rows) * L.CPU.size
    assert L.decode_cpus(out) == rows


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_stat(backend, data, expected):
    if isinstance(expected, tuple):
        with pytest.raises(L.ParseError) as exc:
            backend.parse_stat(data)
        assert (exc.value.code, exc.value.line) == expected[1:]
    else:
        check(backend.parse_stat(data), expected)


# Spot values, copied from the fixture files' text (cpu_count: their cpuN
# lines; first and last: those lines).
TREES = {
    "linux-2.6.18-rhel5": dict(
        cpu=b"7152200 49622 3009816 230587067 981015 23801 118712 0", intr=1239897847,
        ctxt=487123456, btime=1317294601, processes=3214567, procs_running=1, procs_blocked=0, cpu_count=2,
        first=b"cpu0 4102126 25525 1642876 114677681 449773 13672 49446 0",
        last=b"cpu1 3050074 24097 1366940 115909386 531242 10129 69266 0"),
    "linux-3.2-debian7": dict(
        cpu=b"65093414 1480511 24586766 1285514722 4254081 0 1281261 504810 0 0", intr=1263726121,
        ctxt=3412993012, btime=1398610532, processes=9123381, procs_running=2, procs_blocked=0, cpu_count=4,
        first=b"cpu0 14936914 336688 5732228 323015320 1203051 0 338518 116161 0 0",
        last=b"cpu3 15248450 452911 5256346 323457614 895809 0 255027 112733 0 0"),
    "linux-4.19-debian10": dict(
        cpu=b"556141768 3299758 159706751 5720705436 40015418 0 18860909 0 0 0", intr=20661869145,
        ctxt=98123441233, btime=1592000044, processes=41233129, procs_running=3, procs_blocked=1, cpu_count=8,
        first=b"cpu0 69923773 442335 16608759 718818362 4451020 0 2096995 0 0 0",
        last=b"cpu7 74200756 448602 23064542 706763639 5083206 0 2780509 0 0 0"),
    "linux-5.15-ubuntu22": dict(
        cpu=b"48952541 1671091 15799156 749017626 3272437 0 1017808 0 4895248 0", intr=3470795124,
        ctxt=2123312991, btime=1689700014, processes=1612331, procs_running=2, procs_blocked=0, cpu_count=16,
        first=b"cpu0 2706037 127245 1136077 47031468 171744 0 60615 0 270603 0",
        last=b"cpu15 3557662 101990 1134292 46159531 208345 0 71340 0 355766 0"),
    "linux-6.8-dense-small": dict(
        cpu=b"2656205939 17413653 604561936 5297603224 17896282 0 105524056 0 0 0", intr=127239947750,
        ctxt=91233122331, btime=1719222233, processes=212331229, procs_running=17, procs_blocked=0, cpu_count=48,
        first=b"cpu0 61613384 426377 14340136 102187704 421642 0 2244197 0 0 0",
        last=b"cpu47 46512026 353712 13617619 117752763 424893 0 2572437 0 0 0"),
    "odd": dict(
        cpu=b"0000000000000000000000000000012 18446744073709551615 3 4 5 6 7 8 9 10", intr=12,
        ctxt=U64, btime=1700000000, processes=0, procs_running=1, procs_blocked=7, cpu_count=1,
        first=b"cpu0 18446744073709551615 0 0 0 5 6 7 8 9 10", last=b"cpu0 18446744073709551615 0 0 0 5 6 7 8 9 10"),
}


def row_of(line: bytes) -> L.Cpu:
    key, *values = line.split()
    return row(int(key[3:]), *map(int, values))


@pytest.mark.parametrize("tree", procfs_trees(), ids=lambda p: p.name)
def test_fixture_tree(backend, tree):
    out = backend.parse_stat((tree / "stat").read_bytes())
    spots = dict(TREES.get(tree.name, {}))
    if not spots:
        assert L.decode_stat(out).present & 0b1111 == 0b1111  # a new tree: parses, has a cpu line
        return
    first, last = row_of(spots.pop("first")), row_of(spots.pop("last"))
    want = cpu(*map(int, spots.pop("cpu").split()))
    want.update(spots)
    rows = L.decode_cpus(out)
    check(out[:L.STAT.size], want)
    assert (len(rows), rows[0], rows[-1]) == (want["cpu_count"], first, last)
    assert [r.cpu for r in rows] == list(range(len(rows)))


def test_every_tree_has_spot_values():
    assert {t.name for t in procfs_trees()} == set(TREES)


def test_aggregate_cpu_line_is_the_sum_of_the_per_cpu_lines(backend):
    """The fixture trees are internally consistent (tests/fixtures/procfs/README.md)."""
    for tree in procfs_trees():
        if tree.name == "odd":
            continue
        lines = (tree / "stat").read_bytes().splitlines()
        per_cpu = [list(map(int, ln.split()[1:])) for ln in lines if ln.startswith(b"cpu") and ln[3:4].isdigit()]
        out = backend.parse_stat((tree / "stat").read_bytes())
        got, rows = L.decode_stat(out), L.decode_cpus(out)
        n = len(per_cpu[0])
        assert [getattr(got, f) for f in CPU[:n]] == [sum(c) for c in zip(*per_cpu)], tree.name
        assert [list(r)[2:2 + n] for r in rows] == per_cpu, tree.name


HOST_TREES = FIXTURES / "procfs-host"


@pytest.mark.parametrize("tree, numbers, intr", [
    ("linux-6.8-host", [0, 1, 2, 3, 4, 6, 7], 361302180),   # cpu5 offline
    ("linux-5.4-focal", [0, 1, 2, 3], 189903037),
])
def test_host_trees_rows(backend, tree, numbers, intr):
    """A CPU offline below the highest one leaves a gap in the rows (the
    numbers and intr totals copied from the files' text)."""
    out = backend.parse_stat((HOST_TREES / tree / "stat").read_bytes())
    got = L.decode_stat(out)
    assert ([r.cpu for r in L.decode_cpus(out)], got.cpu_count, got.intr) == (numbers, len(numbers), intr)
