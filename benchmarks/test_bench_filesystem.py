"""The filesystem collector: the mountinfo parse (pure Python) on a busy
Kubernetes node's table, and a whole collection, statvfs included, on it
and on this machine's /proc.  The parse's share of the collection is what
decides whether a C parser would pay (docs/BENCHMARKS.md)."""

from __future__ import annotations

import os
import time

import pytest

from agent.collectors import BY_NAME, default_options
from agent.collectors.base import Context
from agent.procfs import pybackend
from agent.procfs.mountinfo import parse_mountinfo
from agent.collectors.filesystem import FilesystemCollector

K8S_MOUNTS = 2000


def k8s_mountinfo(mounts: int) -> bytes:
    """A kubelet's node: a few host mounts, then per pod a projected
    service-account token (tmpfs) and an overlay root (excluded by type)."""
    lines = [b"22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,discard,errors=remount-ro",
             b"23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
             b"24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw",
             b"25 22 0:25 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=3262124k,mode=755"]
    for n in range(mounts - len(lines)):
        pod = f"{n:08x}-1f2e-4c5d-8a9b-{n:012x}"
        if n % 2:
            lines.append(f"{100 + n} 22 0:{300 + n} / /var/lib/kubelet/pods/{pod}/volumes/kubernetes.io~projected/"
                         f"kube-api-access-{n % 99999:05d} rw,relatime shared:{200 + n} - tmpfs tmpfs "
                         f"rw,size=16309780k,inode64".encode())
        else:
            lines.append(f"{100 + n} 25 0:{300 + n} / /run/containerd/io.containerd.runtime.v2.task/k8s.io/{pod}"
                         f"/rootfs rw,relatime shared:{200 + n} - overlay overlay rw,lowerdir=/var/lib/containerd/"
                         f"io.containerd.snapshotter.v1.overlayfs/snapshots/{n}/fs,upperdir=/var/lib/containerd/"
                         f"io.containerd.snapshotter.v1.overlayfs/snapshots/{n + 1}/fs,workdir=/w/{n}".encode())
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def k8s_tree(tmp_path_factory):
    """procfs with the node's table; rootfs with every mount point a
    directory (statvfs answers from the one file system they live on)."""
    base = tmp_path_factory.mktemp("k8s")
    (base / "proc" / "1").mkdir(parents=True)
    table = k8s_mountinfo(K8S_MOUNTS)
    (base / "proc" / "1" / "mountinfo").write_bytes(table)
    for mount in parse_mountinfo(table):
        os.makedirs(os.path.join(base / "root", os.fsdecode(mount.mount_point).lstrip("/")), exist_ok=True)
    return base


def test_parse_mountinfo_k8s_node(benchmark):
    data = k8s_mountinfo(K8S_MOUNTS)
    benchmark.extra_info.update(layer="parse", source="mountinfo", mounts=K8S_MOUNTS, bytes=len(data))
    assert len(benchmark(parse_mountinfo, data)) == K8S_MOUNTS


@pytest.mark.parametrize("where", ["k8s-node", "proc"])
def test_collect_filesystem(benchmark, where, k8s_tree):
    procfs, rootfs = (str(k8s_tree / "proc"), str(k8s_tree / "root")) if where == "k8s-node" else ("/proc", "/")
    collector = FilesystemCollector(default_options(BY_NAME["filesystem"]))

    def collect():
        return collector.collect(Context(procfs, "/sys", rootfs, pybackend, time.monotonic() + 5))

    benchmark.extra_info.update(layer="collect", source="filesystem", fixture=where)
    families = benchmark(collect)
    assert families[0].samples
