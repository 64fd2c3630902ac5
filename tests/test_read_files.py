"""read_files and list_dir (csrc/read_files.c and its pure-Python twin):
what they return for real files of every awkward kind, and that both
backends return the very same packed bytes for them."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from agent.procfs import layout as L
from agent.procfs.read_files import DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK, dir_entries, file_results
from backends import load_backend

LONG = b"n" * 255          # the longest name a file system takes
TOO_LONG = b"n" * 256      # ENAMETOOLONG from the kernel, whoever asks
HUGE = 1 << 20


@pytest.fixture
def tree(tmp_path):
    """A directory with a file of every kind read_files meets, and its fd."""
    (tmp_path / "small").write_bytes(b"42000\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "exact").write_bytes(b"x" * 128)
    (tmp_path / "over").write_bytes(b"y" * 129)
    (tmp_path / "huge").write_bytes(bytes(range(256)) * (HUGE // 256))
    (tmp_path / os.fsdecode(LONG)).write_bytes(b"long name\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner").write_bytes(b"inner\n")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("small")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "locked").write_bytes(b"secret\n")
    (tmp_path / "locked").chmod(0)
    (tmp_path / "non-utf8-\xff".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(b"\xff\n")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)
    sock.close()


NAMES = [b"small", b"empty", b"exact", b"over", b"huge", LONG, TOO_LONG, b"sub", b"sub/inner", b"fifo",
         b"link", b"dangling", b"loop", b"locked", b"non-utf8-\xff", b"sock", b"vanished", b"small/x",
         b"nul\0inside", b"", b"/dev/null", b"x" * 5000]


def _results(backend, fd, names, cap, flags):
    # A FIFO whose open or read blocked would hang here: a thread and a
    # join with a deadline turn that into a failure.
    out = []
    worker = threading.Thread(target=lambda: out.append(backend.read_files(fd, names, cap, flags)), daemon=True)
    worker.start()
    worker.join(20)
    assert out, "read_files blocked"
    return out[0]


@pytest.mark.parametrize("flags", [0, L.READ_ONCE], ids=["whole", "once"])
def test_each_kind_of_file(tree, backend, flags):
    root, fd = tree
    table, data = _results(backend, fd, NAMES, 128, flags)
    got = dict(zip(NAMES, file_results(table, data)))
    assert got[b"small"] == (L.OK, 0, b"42000\n")
    assert got[b"empty"] == (L.OK, 0, b"")
    assert got[b"exact"] == (L.OK, 0, b"x" * 128)
    # Over the cap: the first 128 bytes, and said so unless told to read once.
    cut = L.OK if flags else L.ETRUNC
    assert got[b"over"] == (cut, 0, b"y" * 128)
    assert got[b"huge"] == (cut, 0, bytes(range(128)))
    assert got[LONG] == (L.OK, 0, b"long name\n")
    assert got[TOO_LONG] == (L.EIO, errno.ENAMETOOLONG, b"")
    assert got[b"x" * 5000] == (L.EIO, errno.ENAMETOOLONG, b"")
    assert got[b"sub"] == (L.EIO, errno.EISDIR, b"")
    assert got[b"sub/inner"] == (L.OK, 0, b"inner\n")
    assert got[b"fifo"] == (L.EIO, errno.EINVAL, b"")
    assert got[b"link"] == (L.OK, 0, b"42000\n")
    assert got[b"dangling"] == (L.EIO, errno.ENOENT, b"")
    assert got[b"loop"] == (L.EIO, errno.ELOOP, b"")
    locked = (L.OK, 0, b"secret\n") if os.geteuid() == 0 else (L.EIO, errno.EACCES, b"")
    assert got[b"locked"] == locked
    assert got[b"non-utf8-\xff"] == (L.OK, 0, b"\xff\n")
    assert got[b"sock"] == (L.EIO, errno.ENXIO, b"")
    assert got[b"vanished"] == (L.EIO, errno.ENOENT, b"")
    assert got[b"small/x"] == (L.EIO, errno.ENOTDIR, b"")
    assert got[b"nul\0inside"] == (L.EIO, errno.EINVAL, b"")
    assert got[b""] == (L.EIO, errno.ENOENT, b"")
    assert got[b"/dev/null"] == (L.EIO, errno.EINVAL, b"")  # absolute: the directory does not matter


@pytest.mark.parametrize("cap", [0, 1, 6, 7, 128, 4096, HUGE, HUGE + 1])
@pytest.mark.parametrize("flags", [0, L.READ_ONCE], ids=["whole", "once"])
def test_backends_return_the_same_bytes(tree, cap, flags):
    _, fd = tree
    c, py = load_backend("c"), load_backend("python")
    assert _results(c, fd, NAMES, cap, flags) == _results(py, fd, NAMES, cap, flags)


def test_no_names(tree, backend):
    _, fd = tree
    assert backend.read_files(fd, [], 128) == (b"", b"")


def _make_listing_dir(root):
    d = root / "listing"
    d.mkdir()
    # More entries (300) and more name bytes (over 40 KiB) than the C
    # wrapper's first buffers hold, so it must grow them.
    for i in range(300):
        (d / (f"{i:03d}-" + "f" * 130)).write_bytes(b"")
    (d / os.fsdecode(LONG)).write_bytes(b"")
    (d / "dir").mkdir()
    (d / "link").symlink_to("dir")
    os.mkfifo(d / "fifo")
    (d / "bad-\xff".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(b"")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    return d, sock


def test_list_dir(tmp_path, backend):
    d, sock = _make_listing_dir(tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entries = dict(dir_entries(*backend.list_dir(fd, b"listing")))
        assert len(entries) == 306
        assert entries[LONG] == entries[b"000-" + b"f" * 130] == DT_REG
        assert (entries[b"dir"], entries[b"link"], entries[b"fifo"], entries[b"sock"]) == (DT_DIR, DT_LNK,
                                                                                             DT_FIFO, DT_SOCK)
        assert entries[b"bad-\xff"] == DT_REG
        assert b"." not in entries and b".." not in entries
        assert dir_entries(*backend.list_dir(fd, b"listing/dir")) == []
        for path, code in ((b"listing/000-" + b"f" * 130, errno.ENOTDIR), (b"vanished", errno.ENOENT),
                           (TOO_LONG, errno.ENAMETOOLONG), (b"list\0ing", errno.EINVAL)):
            with pytest.raises(OSError) as exc:
                backend.list_dir(fd, path)
            assert exc.value.errno == code, path
    finally:
        os.close(fd)
        sock.close()


def test_list_dir_backends_return_the_same_bytes(tmp_path):
    d, sock = _make_listing_dir(tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        c, py = load_backend("c"), load_backend("python")
        for path in (b"listing", b".", b"listing/dir", b"listing/link"):
            assert c.list_dir(fd, path) == py.list_dir(fd, path), path
    finally:
        os.close(fd)
        sock.close()


def test_layouts_match_the_header():
    c = load_backend("c")
    for ctype, st, fields in (("struct agent_file_entry", L.FILE_ENTRY,
                               ["name_off", "name_len", "data_off", "data_len", "status", "err"]),
                              ("struct agent_dir_entry", L.DIR_ENTRY, ["name_off", "name_len", "d_type"])):
        assert c.ffi.sizeof(ctype) == st.size
        assert [(name, f.offset, f.type.cname) for name, f in c.ffi.typeof(ctype).fields] == \
            [(name, 8 * i, "int64_t" if name == "status" else "uint64_t") for i, name in enumerate(fields)]
    assert c.lib.AGENT_READ_ONCE == L.READ_ONCE


def test_realpath(tmp_path, backend):
    real = tmp_path / "devices" / "platform" / "coretemp.0"
    (real / "hwmon" / "hwmon0").mkdir(parents=True)
    (real / "hwmon" / "hwmon0" / "device").symlink_to("../..")
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "hwmon0").symlink_to("../devices/platform/coretemp.0/hwmon/hwmon0")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file").write_bytes(b"")
    base = os.fsencode(tmp_path)
    canonical = os.fsencode(os.path.realpath(tmp_path))  # /tmp may itself be a link
    assert backend.realpath(base + b"/class/hwmon0/device") == canonical + b"/devices/platform/coretemp.0"
    assert (backend.realpath(base + b"/class/./hwmon0/../hwmon0")
            == canonical + b"/devices/platform/coretemp.0/hwmon/hwmon0")
    for path, code in ((b"/class/gone/device", errno.ENOENT), (b"/loop", errno.ELOOP),
                       (b"/file/x", errno.ENOTDIR), (b"/cl\0ass", errno.EINVAL),
                       (b"/" + TOO_LONG, errno.ENAMETOOLONG)):
        with pytest.raises(OSError) as exc:
            backend.realpath(base + path)
        assert exc.value.errno == code, path


def test_realpath_backends_agree(tmp_path):
    c, py = load_backend("c"), load_backend("python")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "up").symlink_to("a/b/..")
    (tmp_path / "abs").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "chain").symlink_to("abs")
    base = os.fsencode(tmp_path)
    for rel in (b"", b"/a", b"/up", b"/up/b", b"/abs", b"/chain/..", b"/chain/../b/", b"//a//b", b"/a/b/../../a"):
        assert c.realpath(base + rel) == py.realpath(base + rel), rel
