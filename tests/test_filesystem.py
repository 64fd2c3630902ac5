"""The filesystem collector: the mountinfo parser, and the agent against
node_exporter 1.5.0 on the host fixture trees with every mount point
materialised as a file system of its own.

Materialising (tests/fixtures/procfs-host/README.md): each mount point of
the table is a directory under a temporary rootfs with its own small tmpfs
(a distinct size and inode count each, so a value taken from the wrong
mount shows), in a private mount namespace (tests/mountns.py) that both
programs run in.  A shared /tmp would give both programs drifting free
counts; these file systems are quiet, so every value is compared exactly.
The root mount is an ext4 image instead where loop devices exist: ext4
reserves blocks for root, so free and available bytes differ there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from agent.collectors.filesystem import DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE
from agent.procfs.mountinfo import Mount, MountinfoError, parse_mountinfo
from exposition_parse import parse_samples
from mountns import MountNamespace
from oracle import agent_once, node_exporter_on
from test_e2e import promtool_check

HOST_TREES = os.path.join(os.path.dirname(__file__), "fixtures", "procfs-host")
HOST_68 = os.path.join(HOST_TREES, "linux-6.8-host")
FAMILIES = {f"node_filesystem_{name}" for name in
            ("size_bytes", "free_bytes", "avail_bytes", "files", "files_free", "readonly", "device_error")}


# --- the parser ------------------------------------------------------------

PARSE_CASES = [
    ("empty", b"", []),
    ("valid, one optional field",
     b"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
     [Mount(b"/mnt/parent", "rw,noatime", "ext3", b"/dev/root", "rw,errors=continue")]),
    ("no optional field, no final newline",
     b"22 1 252:0 / / rw,relatime - ext4 /dev/sda1 rw",
     [Mount(b"/", "rw,relatime", "ext4", b"/dev/sda1", "rw")]),
    ("three optional fields",
     b"50 22 0:46 / /x rw shared:3 master:1 propagate_from:1 - fuse.sshfs me@h:/ ro,user_id=0\n",
     [Mount(b"/x", "rw", "fuse.sshfs", b"me@h:/", "ro,user_id=0")]),
    ("no super options (an empty last field)",
     b"50 22 0:46 / /x rw - none none\n",
     [Mount(b"/x", "rw", "none", b"none", "")]),
    ("escapes in mount point and source",
     rb"1 1 0:1 / /a\040b\011c\012d\134e rw - tmpfs my\040src rw" + b"\n",
     [Mount(b"/a b\tc\nd\\e", "rw", "tmpfs", b"my src", "rw")]),
    ("an escaped backslash followed by digits is one escape, decoded once",
     rb"1 1 0:1 / /not\134040a\040space rw - tmpfs none rw" + b"\n",
     [Mount(b"/not\\040a space", "rw", "tmpfs", b"none", "rw")]),
    ("what is not three octal digits stays as written",
     rb"1 1 0:1 / /a\04x\9\12\ rw - tmpfs s\800\400 rw" + b"\n",
     [Mount(rb"/a\04x\9\12\ ".rstrip(), "rw", "tmpfs", rb"s\800\400", "rw")]),
    ("UTF-8 and # raw",
     "1 1 0:1 / /mnt/ünï/日本語\\040#1 rw - tmpfs none rw\n".encode(),
     [Mount("/mnt/ünï/日本語 #1".encode(), "rw", "tmpfs", b"none", "rw")]),
]


@pytest.mark.parametrize("data, want", [case[1:] for case in PARSE_CASES], ids=[case[0] for case in PARSE_CASES])
def test_parse_mountinfo(data, want):
    assert parse_mountinfo(data) == want


@pytest.mark.parametrize("data, where", [
    (b"36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 ext3 /dev/root rw\n", "line 1: no ' - '"),
    (b"22 1 252:0 / / rw - ext4 /dev/sda1 rw\n36 35 98:0 /m /p rw - ext3\n", "line 2: fewer than 3 fields"),
    (b"1 2 3 - 5 6 - ext4 src rw\n", None),  # a '-' among the fixed fields is not the separator
    (b"22 1 252:0\n", "line 1: no ' - '"),
], ids=["no separator", "nothing after the type", "dash among the fixed fields", "truncated"])
def test_malformed_lines_are_refused_by_line(data, where):
    if where is None:
        assert parse_mountinfo(data) == [Mount(b"5", "6", "ext4", b"src", "rw")]
        return
    with pytest.raises(MountinfoError, match=where):
        parse_mountinfo(data)


def _mounts_line_fields(line: bytes):
    # /proc/mounts: "source mountpoint fstype options 0 0", the same escapes.
    source, mount_point, fstype, options = line.split(b" ")[:4]
    unescape = lambda raw: re.sub(rb"\\([0-7]{3})", lambda m: bytes((int(m.group(1), 8),)), raw)  # noqa: E731
    return unescape(source), unescape(mount_point), fstype.decode(), options.decode().split(",")


@pytest.mark.parametrize("mountinfo, mounts", [
    ("linux-6.8-host/1/mountinfo", "linux-6.8-host/1/mounts"),
    ("linux-6.8-host/self/mountinfo", "linux-6.8-host/mounts"),
    ("linux-5.4-focal/self/mountinfo", "linux-5.4-focal/mounts"),
])
def test_mountinfo_agrees_with_proc_mounts(mountinfo, mounts):
    """Each fixture's mountinfo and mounts describe the same mounts line by
    line: the parsed rows must say what the simpler format says, and a
    mount is read-only in /proc/mounts when its mount or its superblock is."""
    with open(os.path.join(HOST_TREES, mountinfo), "rb") as f:
        rows = parse_mountinfo(f.read())
    with open(os.path.join(HOST_TREES, mounts), "rb") as f:
        lines = f.read().splitlines()
    assert len(rows) == len(lines) > 10
    for row, line in zip(rows, lines):
        source, mount_point, fstype, options = _mounts_line_fields(line)
        assert (row.source, row.mount_point, row.fstype) == (source, mount_point, fstype)
        readonly = "ro" in row.mount_options.split(",") or "ro" in row.super_options.split(",")
        assert readonly == ("ro" in options), line


# --- against node_exporter ---------------------------------------------------

def _decode(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _materialise(ns: MountNamespace, table: str, rootfs: str, scratch: str) -> dict[str, int]:
    """A file system of its own at rootfs + each mount point of `table`
    (a mountinfo file): {mount point: its size in bytes}.  Parents first
    (a mount hides what was made beneath its directory before it)."""
    with open(table, encoding="utf-8") as f:
        points = [_decode(line.split(" ")[4]) for line in f.read().splitlines()]
    order = sorted(range(len(points)), key=lambda i: points[i].rstrip("/").count("/"))
    plan, sizes = [], {}
    for n, i in enumerate(order):
        point = points[i]
        where = os.path.join(rootfs, point.lstrip("/"))
        if point == "/" and os.path.exists("/dev/loop-control") and shutil.which("mkfs.ext4"):
            image = os.path.join(scratch, "root.img")
            subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "5", "-O", "^has_journal", "-E",
                            "lazy_itable_init=0", image, "4M"], check=True, capture_output=True)
            plan.append([where, ["-o", "loop", image]])
            continue
        pages = 16 + 8 * n  # distinct per mount: a value from the wrong mount shows
        sizes[point] = pages * 4096
        plan.append([where, ["-t", "tmpfs", "-o", f"size={pages * 4}k,nr_inodes={1000 + 17 * n}", "tmpfs"]])
    script = ("import json, os, subprocess, sys\n"
              "for where, args in json.loads(sys.argv[1]):\n"
              "    os.makedirs(where, exist_ok=True)\n"
              "    subprocess.run(['mount', *args, where], check=True)\n")
    ns.run(sys.executable, "-c", script, json.dumps(plan))
    return sizes


# Mount points node_exporter 1.5.0 does not decode (it decodes only \040 and
# \011): it statfs'es the escaped text, which does not exist, and reports
# device_error 1 under the escaped label.  The agent decodes them.
NOT_DECODED_BY_1_5 = {"/mnt/new\nline": "/mnt/new\\012line", "/mnt/back\\slash": "/mnt/back\\134slash",
                      "/mnt/not\\040a space": "/mnt/not\\134040a space"}

TREES = {
    # The agent reads 1/mountinfo, node_exporter 1/mounts.
    "linux-6.8-host": (HOST_68, None),
    # No 1/: the agent falls back to self/mountinfo, node_exporter to mounts.
    "linux-6.8-host-without-pid-1": (HOST_68, "1"),
    "linux-5.4-focal": (os.path.join(HOST_TREES, "linux-5.4-focal"), None),
}


@pytest.fixture(scope="module", params=sorted(TREES))
def materialised(request, tmp_path_factory):
    """(namespace, procfs, rootfs, sizes, node_exporter's scrape) for a tree."""
    source, drop = TREES[request.param]
    base = tmp_path_factory.mktemp(request.param)
    procfs, rootfs = base / "proc", base / "root"
    shutil.copytree(source, procfs)
    if drop:
        shutil.rmtree(procfs / drop)
    rootfs.mkdir()
    table = procfs / ("1/mountinfo" if (procfs / "1").exists() else "self/mountinfo")
    with MountNamespace() as ns:
        sizes = _materialise(ns, str(table), str(rootfs), str(base))
        theirs = node_exporter_on(
            ["filesystem"], f"--collector.filesystem.mount-points-exclude={DEFAULT_MOUNT_POINTS_EXCLUDE}",
            f"--collector.filesystem.fs-types-exclude={DEFAULT_FS_TYPES_EXCLUDE}",
            procfs=procfs, rootfs=rootfs, sysfs=base, wrapper=ns.enter)
        yield ns, procfs, rootfs, sizes, theirs


def _as_1_5_would_label(labels: tuple) -> tuple:
    """node_exporter's label set of a mount, from the agent's."""
    d = dict(labels)
    d["mountpoint"] = NOT_DECODED_BY_1_5.get(d["mountpoint"], d["mountpoint"])
    d["device"] = d["device"].replace(" ", "\\040")  # 1.5.0 decodes no escape in the source
    return tuple(sorted(d.items()))


def test_filesystems_agree_with_node_exporter(materialised, backend_name):
    ns, procfs, rootfs, sizes, theirs = materialised
    mine = agent_once("--procfs", str(procfs), "--rootfs", str(rootfs), backend=backend_name, wrapper=ns.enter)
    assert theirs.families("node_filesystem_") == FAMILIES
    for family in sorted(FAMILIES):
        assert mine.types.get(family) == "gauge"
        want = theirs.family(family)
        got = {_as_1_5_would_label(labels): value for labels, value in mine.family(family).items()}
        escaped = {labels for labels in set(want) | set(got)
                   if dict(labels)["mountpoint"] in NOT_DECODED_BY_1_5.values()}
        assert set(got) - escaped == set(want) - escaped, family
        for labels in set(want) - escaped:
            assert float(got[labels]) == float(want[labels]), f"{family}{dict(labels)}"
        # node_exporter's error on the mount points it cannot decode; the
        # agent's values for them come from their own tmpfs.
        for labels in escaped & set(got):
            if family == "node_filesystem_device_error":
                assert float(want[labels]) == 1.0
                assert float(got[labels]) == 0.0
    size = {dict(labels)["mountpoint"]: float(v) for labels, v in mine.family("node_filesystem_size_bytes").items()}
    for point in NOT_DECODED_BY_1_5:
        if point in sizes:
            assert size[point] == sizes[point]
    shown = set(size) - {"/"}
    assert shown and all(size[p] == sizes[p] for p in shown), "each mount's size is its own tmpfs's"


def test_exposition_is_valid_for_promtool(materialised):
    ns, procfs, rootfs, _, _ = materialised
    mine = agent_once("--procfs", str(procfs), "--rootfs", str(rootfs), backend="python", wrapper=ns.enter)
    assert mine.families("node_filesystem_") == FAMILIES
    promtool_check(mine.text)


# --- options, roots and fallbacks ----------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", "python", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _mount_points(text: str) -> dict[str, str]:
    """{mount point: fstype} of the device_error samples (every mount has one)."""
    return {dict(labels)["mountpoint"]: dict(labels)["fstype"] for (name, labels) in parse_samples(text)
            if name == "node_filesystem_device_error"}


def test_default_exclusions_and_the_options_that_change_them(tmp_path):
    base = ("--procfs", HOST_68, "--rootfs", str(tmp_path), "--collector.disable-defaults", "--collector.filesystem")
    default = _mount_points(_run(*base).stdout)
    assert "/dev/shm" not in default and "/sys/fs/cgroup" not in default and "/snap/core22/1380" not in default
    assert "/run/credentials/systemd-sysusers.service" not in default
    assert {"/", "/run", "/boot/efi", "/run/user/1000/doc"} <= set(default)
    # No mount-point exclusion: /dev/shm (tmpfs) shows, /dev (devtmpfs) is still left out by its type.
    no_points = _mount_points(_run(*base, "--collector.filesystem.mount-points-exclude", "").stdout)
    assert "/dev/shm" in no_points and "/dev" not in no_points
    only_tmpfs = _mount_points(_run(*base, "--collector.filesystem.fs-types-include", "^tmpfs$").stdout)
    assert only_tmpfs and set(only_tmpfs.values()) == {"tmpfs"} and "/run" in only_tmpfs
    only_mnt = _mount_points(_run(*base, "--collector.filesystem.mount-points-include", "^/mnt/").stdout)
    assert only_mnt and all(p.startswith("/mnt/") for p in only_mnt)


@pytest.mark.parametrize("option, value", [
    ("mount-points-exclude", "("), ("fs-types-include", "[a-"), ("mount-timeout", "0"),
    ("mount-timeout", "soon"), ("mount-timeout", "inf"),
])
def test_a_bad_option_value_stops_start_up_with_one_line(option, value):
    r = _run("--procfs", HOST_68, f"--collector.filesystem.{option}", value)
    assert r.returncode == 2
    assert f"--collector.filesystem.{option}" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_tree_without_mount_tables_has_no_data_not_a_failure():
    tree = os.path.join(os.path.dirname(__file__), "fixtures", "procfs", "linux-5.15-ubuntu22")
    r = _run("--procfs", tree)
    assert r.returncode == 0
    assert 'agent_source_success{source="filesystem"} 1' in r.stdout
    assert "node_filesystem_" not in r.stdout


def test_mount_points_under_the_rootfs_are_labelled_as_the_hosts(tmp_path):
    """A table that shows the host's mounts under the rootfs (the agent's
    own mounts, in a container given the host's / at /host/root): labels
    without the prefix, statvfs of the same path."""
    rootfs = tmp_path / "root"
    (rootfs / "data").mkdir(parents=True)
    (tmp_path / "rootx").mkdir()
    procfs = tmp_path / "proc"
    (procfs / "self").mkdir(parents=True)
    (procfs / "self" / "mountinfo").write_text(
        f"1 0 8:1 / {rootfs} rw - ext4 /dev/sda1 rw\n"
        f"2 1 8:2 / {rootfs}/data rw - ext4 /dev/sda2 rw\n"
        f"3 1 8:3 / {tmp_path}/rootx rw - ext4 /dev/sda3 rw\n")
    r = _run("--procfs", str(procfs), "--rootfs", str(rootfs), "--collector.disable-defaults",
             "--collector.filesystem")
    errors = {dict(labels)["mountpoint"]: float(v) for (name, labels), v in parse_samples(r.stdout).items()
              if name == "node_filesystem_device_error"}
    # rootx shares the rootfs's first characters, not its directory: kept
    # as is, and looked up under the rootfs, where it does not exist.
    assert errors == {"/": 0.0, "/data": 0.0, f"{tmp_path}/rootx": 1.0}
