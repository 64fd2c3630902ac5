"""The C and the Python parsers agree (docs/PARSERS.md): for any input, the
same struct bytes or the same ParseError (code and line).

Checked on every fixture file of every tree, on every prefix of it (each
byte length), on hypothesis mutations of it, and on hypothesis text built
from a rough grammar of each file.  Skips where the C extension is absent
(fails instead under AGENT_REQUIRE_C=1)."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.procfs import layout as L
from backends import load_backend
from trees import procfs_trees

SOURCES = {"stat": "stat", "meminfo": "meminfo", "diskstats": "diskstats",
           "net/dev": "netdev", "loadavg": "loadavg", "uptime": "uptime"}
FILES = [(tree, rel, src) for tree in procfs_trees() for rel, src in SOURCES.items()]
FILE_IDS = [f"{tree.name}/{rel}" for tree, rel, _ in FILES]
CONTENTS = {(tree.name, rel): (tree / rel).read_bytes() for tree, rel, _ in FILES}

# Bytes the grammar treats as white space, and look-alikes it must not.
WS = [b" ", b"\t", b"\r", b"\x0b", b"\x0c"]
NOT_WS = [b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\x85", b"\xa0"]



def budget(n: int) -> settings:
    """Bounded so that the whole file runs in well under a minute."""
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def pair():
    return load_backend("c"), load_backend("python")


def outcome(parse, data: bytes):
    try:
        return ("ok", parse(data))
    except L.ParseError as exc:
        return ("error", exc.code, exc.line)


def disagreement(pair, source: str, data: bytes):
    """None, or a description of how the backends differ on `data`."""
    c, py = pair
    a = outcome(getattr(c, "parse_" + source), data)
    b = outcome(getattr(py, "parse_" + source), data)
    if a == b:
        return None
    return f"parse_{source}({data!r}): C {describe(source, a)} != Python {describe(source, b)}"


def describe(source: str, result) -> str:
    if result[0] == "error":
        return f"ParseError(code={result[1]}, line={result[2]})"
    out = result[1]
    if source in ("diskstats", "netdev"):
        size = getattr(L, source.upper()).size
        return f"{len(out) // size} rows {getattr(L, 'decode_' + source)(out, len(out) // size)}"
    if source == "stat":
        return f"{L.decode_stat(out)} rows {L.decode_cpus(out)}"
    return repr(getattr(L, "decode_" + source)(out))


def assert_agree(pair, source: str, data: bytes):
    problem = disagreement(pair, source, data)
    assert problem is None, problem


# -- whole files and every prefix -------------------------------------------

@pytest.mark.parametrize("tree, rel, source", FILES, ids=FILE_IDS)
def test_whole_file(pair, tree, rel, source):
    assert_agree(pair, source, CONTENTS[tree.name, rel])


@pytest.mark.parametrize("tree, rel, source", FILES, ids=FILE_IDS)
def test_every_prefix(pair, tree, rel, source):
    data = CONTENTS[tree.name, rel]
    problems = []
    for n in range(len(data) + 1):
        problem = disagreement(pair, source, data[:n])
        if problem:
            problems.append(f"prefix of {n} bytes: {problem}")
    assert not problems, f"{len(problems)} prefixes disagree; the shortest:\n" + "\n".join(problems[:3])


# -- mutations of the fixture files -----------------------------------------

def _replace_match(draw, data: bytes, pattern: bytes, make) -> bytes:
    spans = [m.span() for m in re.finditer(pattern, data)]
    if not spans:
        return data
    i, j = draw(st.sampled_from(spans))
    return data[:i] + make(data[i:j]) + data[j:]


def _lines(data: bytes) -> list:
    return data.split(b"\n")


BOUNDARY_NUMBERS = st.one_of(
    st.integers(10**24, 10**25 - 1).map(lambda n: str(n).encode()),          # 25 digits
    st.sampled_from([str(2**64 - 1).encode(), str(2**64).encode(), b"0" * 30 + str(2**64 - 1).encode(),
                     b"0" * 30 + str(2**64).encode(), b"99999999999999999999", b"0", b"00",
                     b"123456789012345", b"1234567890123456", b"12345678901234.5", b"123456789012345.6",
                     b"0.000000000000001", b"1/18446744073709551616", b"1//2"]),
    st.integers(0, 2**70).map(lambda n: str(n).encode()),
)
NAME_BYTES = st.sampled_from([b"a", b"b", b"0", b"-", b":", b'"', b"\\", b"\xff", b"\x00", b"/", b"."])


@st.composite
def names(draw):
    length = draw(st.sampled_from([0, 1, 15, 63, 64, 65, 66]))
    body = draw(st.lists(NAME_BYTES, min_size=length, max_size=length))
    return b"".join(body)


@st.composite
def mutation(draw, data: bytes) -> bytes:
    op = draw(st.sampled_from(["flip", "insert", "delete", "nul", "dupline", "number",
                               "name", "whitespace", "crlf", "swaplines"]))
    n = len(data)
    if op == "flip" and n:
        i = draw(st.integers(0, n - 1))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    if op == "insert":
        i = draw(st.integers(0, n))
        ins = draw(st.one_of(st.binary(min_size=1, max_size=6),
                             st.sampled_from(WS + NOT_WS + [b"\n", b":", b"/", b".", b"0", b"9", b"\r\n"])))
        return data[:i] + ins + data[i:]
    if op == "delete" and n:
        i = draw(st.integers(0, n - 1))
        return data[:i] + data[i + draw(st.integers(1, 16)):]
    if op == "nul":
        i = draw(st.integers(0, n))
        return data[:i] + b"\x00" + data[i:]
    if op == "dupline":
        lines = _lines(data)
        k = draw(st.integers(0, len(lines) - 1))
        return b"\n".join(lines[:k + 1] + [lines[k]] + lines[k + 1:])
    if op == "swaplines":
        lines = _lines(data)
        if len(lines) > 1:
            k = draw(st.integers(0, len(lines) - 2))
            lines[k], lines[k + 1] = lines[k + 1], lines[k]
        return b"\n".join(lines)
    if op == "number":
        return _replace_match(draw, data, rb"[0-9]+(?:\.[0-9]+)?", lambda _: draw(BOUNDARY_NUMBERS))
    if op == "name":
        # a device name (diskstats' third field, net/dev's text before the
        # colon) or a key, lengthened or shortened around NAME_MAX
        pattern = draw(st.sampled_from([rb"(?<=[0-9] )[^ \t\n:]+(?= [0-9])", rb"(?m)^ *[^ \n:]+(?=:)",
                                        rb"(?m)^[^ \t\n]+"]))
        return _replace_match(draw, data, pattern, lambda _: draw(names()))
    if op == "whitespace":
        alphabet = st.sampled_from(WS + NOT_WS)
        return _replace_match(draw, data, rb"[ \t]+",
                              lambda _: b"".join(draw(st.lists(alphabet, min_size=1, max_size=3))))
    if op == "crlf":
        return data.replace(b"\n", b"\r\n", draw(st.integers(1, 5)))
    return data


@st.composite
def mutated_files(draw):
    tree, rel, source = draw(st.sampled_from(FILES))
    data = CONTENTS[tree.name, rel]
    for _ in range(draw(st.integers(1, 4))):
        data = draw(mutation(data))
    return source, data


@budget(5000)
@given(case=mutated_files())
def test_mutations(pair, case):
    source, data = case
    assert_agree(pair, source, data)


# -- text from a rough grammar of each file ---------------------------------
# Each document draws how often a token is malformed (often never), so that
# whole files parse as well as fail in every way.

DIGITS = st.text("0123456789", min_size=1, max_size=22).map(str.encode)
GOOD_COUNTERS = st.one_of(
    st.integers(0, 2**64 - 1).map(lambda n: str(n).encode()),
    st.integers(0, 99999).map(lambda n: str(n).encode()),
    st.builds(lambda z, n: b"0" * z + str(n).encode(), st.integers(1, 30), st.integers(0, 2**64 - 1)),
)
BAD_COUNTERS = st.one_of(
    DIGITS,
    BOUNDARY_NUMBERS,
    st.sampled_from([b"-1", b"+1", b"1_0", b"0x1f", b"1.5", b"x", b"\xa01", b"1\x00", b"1\x1c2", b"\xd9\xa4"]),
)
GOOD_DECIMALS = st.one_of(
    st.builds(lambda a, b: b"%d.%02d" % (a, b), st.integers(0, 9999), st.integers(0, 99)),
    st.builds(lambda a, b: a + b"." + b, st.text("0123456789", min_size=1, max_size=7).map(str.encode),
              st.text("0123456789", min_size=1, max_size=8).map(str.encode)),
    st.text("0123456789", min_size=1, max_size=15).map(str.encode),
)
BAD_DECIMALS = st.one_of(
    st.builds(lambda a, b: a + b"." + b, DIGITS, DIGITS),
    DIGITS,
    BOUNDARY_NUMBERS,
    st.sampled_from([b".5", b"5.", b"1.2.3", b"1e3", b"inf", b"nan", b"-0.1", b"0.5\x85", b"0,5"]),
)
SEP = st.lists(st.sampled_from(WS + NOT_WS[:1] + [b" "] * 6), min_size=1, max_size=3).map(b"".join)
EOL = st.sampled_from([b"\n"] * 6 + [b"\r\n", b" \n", b"\t\r\n"])
JUNK = st.binary(min_size=0, max_size=6)


def token(draw, rate: int, good, bad) -> bytes:
    """A good token, or with probability rate/100 a doubtful one."""
    return draw(bad) if draw(st.integers(0, 99)) < rate else draw(good)


def tokens(draw, rate: int, good, bad, n: int) -> list:
    return [token(draw, rate, good, bad) for _ in range(n)]


def error_rate(draw) -> int:
    return draw(st.sampled_from([0, 0, 0, 1, 5, 20, 60]))


def joined(draw, fields: list, rate: int = 5) -> bytes:
    out = draw(st.sampled_from([b"", b" ", b"  ", b"\t"]))
    for k, f in enumerate(fields):
        out += (token(draw, rate, st.just(b" "), SEP) if k else b"") + f
    return out


def document(draw, lines: list, rate: int) -> bytes:
    if lines and draw(st.integers(0, 99)) < rate:       # a duplicated line
        k = draw(st.integers(0, len(lines) - 1))
        lines.insert(draw(st.integers(k + 1, len(lines))), lines[k])
    text = b"".join(line + token(draw, rate, st.just(b"\n"), EOL) for line in lines)
    if lines and draw(st.booleans()):
        text = text.rstrip(b"\r\n")           # no final newline
    return text


@st.composite
def stat_text(draw):
    rate = error_rate(draw)
    keys = draw(st.lists(st.sampled_from(
        [b"cpu", b"cpu0", b"cpu1", b"cpu3", b"cpu12", b"cpu0012", b"cpu65535", b"cpu65536", b"cpu99999999999",
         b"ctxt", b"btime", b"processes", b"procs_running", b"procs_blocked",
         b"intr", b"softirq", b"CPU", b"cpu:", b"cpu1x", b"page"]), unique=True, max_size=12))
    if draw(st.integers(0, 99)) >= rate and b"cpu" not in keys:
        keys.insert(draw(st.integers(0, len(keys))), b"cpu")
    lines = []
    for key in keys:
        n = draw(st.integers(4, 12)) if key.startswith(b"cpu") else draw(st.integers(0, 3))
        if draw(st.integers(0, 99)) < rate:
            n = draw(st.integers(0, 4))
        lines.append(joined(draw, [key] + tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, n), rate))
    return "stat", document(draw, lines, rate)


MEMINFO_KEYS = [b"MemTotal", b"MemFree", b"MemAvailable", b"Buffers", b"Cached", b"SwapCached", b"Active",
                b"Inactive", b"Active(file)", b"Inactive(file)", b"SwapTotal", b"SwapFree", b"Dirty",
                b"Writeback", b"Shmem", b"Slab", b"SReclaimable", b"SUnreclaim"]


@st.composite
def meminfo_text(draw):
    rate = error_rate(draw)
    keys = draw(st.lists(st.sampled_from(MEMINFO_KEYS + [b" MemTotal", b"MemTotal ", b"memtotal",
                                                         b"HugePages_Total", b"Active(anon)", b"", b"A: B"]),
                         unique=True, max_size=14))
    if draw(st.integers(0, 99)) >= rate and b"MemTotal" not in keys:
        keys.insert(draw(st.integers(0, len(keys))), b"MemTotal")
    lines = []
    for key in keys:
        colon = token(draw, rate, st.just(b":"), st.sampled_from([b"", b"::", b" :"]))
        n = 1 if draw(st.integers(0, 99)) >= rate else draw(st.integers(0, 2))
        fields = tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, n) + draw(st.sampled_from([[b"kB"], [b"kB"], []]))
        lines.append(key + colon + draw(st.sampled_from([b"", b" ", b"      ", b"\t"])) + joined(draw, fields, rate))
    return "meminfo", document(draw, lines, rate)


DEV_NAMES = st.sampled_from([b"sda", b"sda1", b"nvme0n1p1", b"dm-0", b"loop7", b"md127", b"sr0"])
IF_NAMES = st.sampled_from([b"eth0", b"lo", b"bond0.100", b"cali0123456789a", b"team0:1", b"my if"])


@st.composite
def diskstats_text(draw):
    rate = error_rate(draw)
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        s = token(draw, rate, st.sampled_from([4, 11, 15, 17]), st.sampled_from([0, 1, 3, 5, 10, 12, 18, 20]))
        name = token(draw, rate, DEV_NAMES, names())
        fields = tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, 2) + ([name] if name else [])
        lines.append(joined(draw, fields + tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, s), rate))
        if draw(st.integers(0, 99)) < rate:
            lines.append(draw(st.sampled_from([b"", b" \t", b"\r"])))
    return "diskstats", document(draw, lines, rate)


@st.composite
def netdev_text(draw):
    rate = error_rate(draw)
    real = [b"Inter-|   Receive                                                |  Transmit",
            b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed"]
    lines = list(token(draw, rate, st.just(real), st.sampled_from(
        [[b"", b""], [b"eth0: " + b" ".join([b"1"] * 16), b"x"], [b"only one header"], []])))
    for _ in range(draw(st.integers(0, 8))):
        name = token(draw, rate, IF_NAMES, names())
        s = token(draw, rate, st.sampled_from([16, 16, 17, 18]), st.sampled_from([0, 1, 15]))
        colon = token(draw, rate, st.sampled_from([b":", b": "]), st.sampled_from([b"", b"::", b" x:"]))
        lines.append(draw(st.sampled_from([b"", b"  ", b" \t"])) + name + draw(st.sampled_from([b"", b" "]))
                     + colon + joined(draw, tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, s), rate))
    return "netdev", document(draw, lines, rate)


@st.composite
def loadavg_text(draw):
    rate = error_rate(draw)
    r, t = tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, 2)
    rt = token(draw, rate, st.just(r + b"/" + t), st.sampled_from([r, r + b"/", b"/" + t, r + b"/" + t + b"/1"]))
    fields = tokens(draw, rate, GOOD_DECIMALS, BAD_DECIMALS, 3) + [rt] + tokens(draw, rate, GOOD_COUNTERS, BAD_COUNTERS, 1)
    fields = fields[:token(draw, rate, st.just(5), st.integers(0, 4))] + draw(st.lists(JUNK.filter(bool), max_size=2))
    lines = [joined(draw, fields, rate)] + draw(st.lists(JUNK, max_size=2))
    return "loadavg", document(draw, lines, rate)


@st.composite
def uptime_text(draw):
    rate = error_rate(draw)
    fields = tokens(draw, rate, GOOD_DECIMALS, BAD_DECIMALS, 2)
    fields = fields[:token(draw, rate, st.just(2), st.integers(0, 1))] + draw(st.lists(JUNK.filter(bool), max_size=2))
    lines = [joined(draw, fields, rate)] + draw(st.lists(JUNK, max_size=2))
    return "uptime", document(draw, lines, rate)


@budget(2500)
@given(case=st.one_of(stat_text(), meminfo_text(), diskstats_text(), netdev_text(),
                      loadavg_text(), uptime_text()))
def test_grammar_text(pair, case):
    source, data = case
    assert_agree(pair, source, data)


@budget(2000)
@given(source=st.sampled_from(sorted(set(SOURCES.values()))), data=st.binary(max_size=200))
def test_arbitrary_bytes(pair, source, data):
    assert_agree(pair, source, data)


# -- the C loaders, whose row arrays start small and grow -------------------

def test_stat_loader_grows_its_rows(pair, tmp_path):
    """300 cpuN lines: more than the C loader's first row array holds, so
    it parses again with a larger one; both backends' loaders return what
    their parsers do, and agree."""
    lines = [b"cpu  1 2 3 4 5 6 7 8 9 10"] + [b"cpu%d %d 1 2 3 4 5 6 7 8 9" % (i, i) for i in range(0, 600, 2)]
    path = tmp_path / "stat"
    path.write_bytes(b"\n".join(lines + [b"intr 5 1 1", b"ctxt 9"]) + b"\n")
    outs = []
    for backend in pair:
        load = backend.make_loader("stat")
        fd = os.open(path, os.O_RDONLY)
        try:
            outs.append((load(fd), load(fd)))
        finally:
            os.close(fd)
    (c1, c2), (p1, p2) = outs
    assert c1 == c2 == p1 == p2 == pair[1].parse_stat(path.read_bytes())
    assert [r.cpu for r in L.decode_cpus(c1)] == list(range(0, 600, 2))
