"""The C cgroup walker and its Python twin agree byte for byte
(agent_api.h, "cgroup v2 containers"): the same status, names, rows, io
rows and failing file.

On every fixture tree with buffers large, exact and too small; on copies
of the trees with files truncated, removed, replaced by directories and
damaged; and, file by file, on every prefix of every container file of
every tree and on hypothesis mutations of them (agent_parse_cgroup_file).
Skips where the C extension is absent (fails under AGENT_REQUIRE_C=1)."""

from __future__ import annotations

import os
import random
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.procfs import cgroups
from agent.procfs import layout as L
from backends import load_backend

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroups")
TREES = sorted(d for d in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, d)))


def hierarchy(top: str) -> str:
    base = os.path.join(top, "sys", "fs", "cgroup")
    unified = os.path.join(base, "unified")
    return unified if os.path.isdir(unified) else base


def container_files():
    """(tree, path relative to the hierarchy, AGENT_CGROUP_FILE_* index) of
    every container file in the fixtures."""
    out = []
    for tree in TREES:
        root = hierarchy(os.path.join(FIXTURES, tree))
        for dirpath, _, files in os.walk(root):
            if cgroups.classify(os.fsencode(os.path.basename(dirpath))) is None:
                continue
            for which, name in enumerate(L.CGROUP_FILES):
                if name.decode() in files:
                    out.append((tree, os.path.relpath(os.path.join(dirpath, name.decode()), root), which))
    return out


FILES = container_files()


@pytest.fixture(scope="module")
def pair():
    return load_backend("c"), load_backend("python")


def walk_both(pair, root: str, caps=(1 << 16, 64, 64, 64, 1 << 16)):
    """Both backends' walk of the hierarchy at root, with the procfs root
    of its tree (root's sys/ sibling proc/)."""
    top = root[:root.index("/sys/")]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    procfd = os.open(os.path.join(top, "proc"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return [backend.walk_cgroups(fd, procfd, *caps) for backend in pair]
    finally:
        os.close(fd)
        os.close(procfd)


@pytest.mark.parametrize("tree", TREES)
def test_every_tree(pair, tree):
    a, b = walk_both(pair, hierarchy(os.path.join(FIXTURES, tree)))
    assert a[0] == L.OK
    assert a == b
    found = cgroups.decode(*a[1:5])
    assert found and all(c.net for c in found if c.has("pid"))


@pytest.mark.parametrize("tree", TREES)
def test_small_buffers(pair, tree):
    """Every cap from 0 up to what the tree needs: the same status (ETRUNC
    or EROWS until each fits) and the same partial output."""
    root = hierarchy(os.path.join(FIXTURES, tree))
    full = walk_both(pair, root)[0]
    need_names, need_rows, need_io = len(full[1]), len(full[2]) // L.CGROUP.size, len(full[3]) // L.CGROUP_IO.size
    need_net = len(full[4]) // L.NETDEV.size
    longest = max(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    seen = set()
    for caps in ([(n, 64, 64, 64, 1 << 16) for n in range(need_names + 2)]
                 + [(1 << 16, n, 64, 64, 1 << 16) for n in range(need_rows + 2)]
                 + [(1 << 16, 64, n, 64, 1 << 16) for n in range(need_io + 2)]
                 + [(1 << 16, 64, 64, n, 1 << 16) for n in range(need_net + 2)]
                 + [(1 << 16, 64, 64, 64, n) for n in range(0, longest + 2, max(1, longest // 40))]
                 + [(1 << 16, 64, 64, 64, longest), (1 << 16, 64, 64, 64, longest + 1)]):
        a, b = walk_both(pair, root, caps)
        assert a == b, caps
        seen.add(a[0])
    assert {L.OK, L.ETRUNC, L.EROWS} <= seen


def damaged_copies(tmp_path, tree: str, seed: int):
    """A copy of the tree with some container files truncated, emptied,
    removed, turned into directories, or with a byte changed."""
    rng = random.Random(seed)
    top = tmp_path / f"{tree}-{seed}"
    shutil.copytree(os.path.join(FIXTURES, tree), top, symlinks=True)
    root = hierarchy(str(top))
    for dirpath, _, files in [*os.walk(root), *os.walk(top / "proc")]:
        for name in files:
            path = os.path.join(dirpath, name)
            roll = rng.random()
            if roll < 0.1:
                os.remove(path)
            elif roll < 0.15:
                os.remove(path)
                os.mkdir(path)
            elif roll < 0.35:
                data = open(path, "rb").read()
                open(path, "wb").write(data[:rng.randrange(len(data) + 1)])
            elif roll < 0.5:
                data = bytearray(open(path, "rb").read())
                if data:
                    data[rng.randrange(len(data))] = rng.choice(b" \t\n=:x0-\x00\xff")
                open(path, "wb").write(bytes(data))
    return root


@pytest.mark.parametrize("tree", TREES)
def test_damaged_trees(pair, tree, tmp_path):
    """Damaged cgroup files and net/dev files, with room for every
    interface and with room for fewer (a malformed net/dev needs room for
    the rows before its bad line on the C side: the twin says EROWS too)."""
    statuses = set()
    for seed in range(12):
        root = damaged_copies(tmp_path, tree, seed)
        for net_cap in (64, 0, 1, 2, 3):
            a, b = walk_both(pair, root, (1 << 16, 64, 64, net_cap, 1 << 16))
            assert a == b, (seed, net_cap)
            statuses.add(a[0])
    assert statuses - {L.OK}, "no damage was ever noticed: the test proves nothing"


def parse_both(pair, which: int, data: bytes):
    return [backend.parse_cgroup_file(which, data, 8) for backend in pair]


def agree(pair, which: int, data: bytes):
    a, b = parse_both(pair, which, data)
    assert a[0] == b[0], (L.CGROUP_FILES[which], data)
    if a[0] == L.OK:
        assert a == b, (L.CGROUP_FILES[which], data)


@pytest.mark.parametrize("tree,rel,which", FILES, ids=[f"{t}/{r}" for t, r, _ in FILES])
def test_every_prefix(pair, tree, rel, which):
    data = open(os.path.join(hierarchy(os.path.join(FIXTURES, tree)), rel), "rb").read()
    for n in range(len(data) + 1):
        agree(pair, which, data[:n])


SAMPLES = {}
for _tree, _rel, _which in FILES:
    SAMPLES.setdefault(_which, open(os.path.join(hierarchy(os.path.join(FIXTURES, _tree)), _rel), "rb").read())


@settings(max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(which=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_mutations(pair, which, data):
    text = bytearray(SAMPLES[which])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        byte = data.draw(st.sampled_from([b" ", b"\t", b"\n", b"=", b":", b"0", b"9", b"a", b"-", b"\x00",
                                          b"\xff", b"max", b"total=", b"99999999999999999999"]))
        if op == "insert":
            text[pos:pos] = byte
        elif op == "replace" and pos < len(text):
            text[pos:pos + 1] = byte
        elif pos < len(text):
            del text[pos]
    agree(pair, which, bytes(text))


@given(st.binary(max_size=200), st.integers(0, len(L.CGROUP_FILES) - 1))
@settings(max_examples=400, deadline=None, database=None)
def test_any_bytes(pair, data, which):
    agree(pair, which, data)


def test_layout_matches_the_header():
    c = load_backend("c")
    assert c.ffi.sizeof("struct agent_cgroup") == L.CGROUP.size
    assert c.ffi.sizeof("struct agent_cgroup_io") == L.CGROUP_IO.size
    assert c.ffi.offsetof("struct agent_cgroup", "runtime") == 8 * (1 + len(L.CGROUP_FIELDS))
    assert c.lib.AGENT_CGROUP_NFIELDS == len(L.CGROUP_FIELDS)
    assert c.lib.AGENT_CGROUP_NFILES == len(L.CGROUP_FILES)
    assert c.lib.AGENT_CGROUP_DEPTH_MAX == cgroups.DEPTH_MAX
