"""A dense host's container tree for the cgroups benchmarks: N container
cgroups under a cgroup2 mount (sys/fs/cgroup), in the layouts a
Kubernetes node and a Docker host make (one third each Docker under
system.slice, containerd under kubepods pods of two containers, CRI-O),
plus the services and slices around them; a /proc/PID/net/dev per
container; Docker's config.v2.json and the kubelet's log links under
rootfs.  File contents are in the kernel's format
(tests/fixtures/cgroups/README.md).  Written under a directory the caller
gives (a temporary one): never into the repository.

    python benchmarks/gen_cgroups.py DIR N
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

SERVICES = 60  # system.slice services that are no containers


def _id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def container_files(i: int, pid: int) -> dict:
    usage = 1_000_000 + i * 7919
    anon, file = (i % 500 + 1) << 20, (i % 300 + 1) << 20
    return {
        "cpu.stat": (f"usage_usec {usage}\nuser_usec {usage * 2 // 3}\nsystem_usec {usage - usage * 2 // 3}\n"
                     f"nice_usec 0\nnr_periods {i * 10}\nnr_throttled {i}\nthrottled_usec {i * 100}\n"
                     "nr_bursts 0\nburst_usec 0\n"),
        "cpu.max": "200000 100000\n" if i % 2 else "max 100000\n",
        "memory.current": f"{anon + file + 4096 * i}\n",
        "memory.max": f"{(i % 8 + 1) << 28}\n" if i % 3 else "max\n",
        "memory.stat": "".join(f"{k} {v}\n" for k, v in (
            ("anon", anon), ("file", file), ("kernel", 4096 * i), ("kernel_stack", 16384), ("pagetables", 65536),
            ("sec_pagetables", 0), ("percpu", 1200), ("sock", 0), ("vmalloc", 0), ("shmem", 0), ("zswap", 0),
            ("zswapped", 0), ("file_mapped", file // 4), ("file_dirty", 0), ("file_writeback", 0),
            ("swapcached", 0), ("anon_thp", 0), ("file_thp", 0), ("shmem_thp", 0), ("inactive_anon", anon // 2),
            ("active_anon", anon // 2), ("inactive_file", file // 3), ("active_file", file - file // 3),
            ("unevictable", 0), ("slab_reclaimable", 2048 * i), ("slab_unreclaimable", 1024 * i),
            ("slab", 3072 * i), ("workingset_refault_anon", 0), ("workingset_refault_file", 12),
            ("workingset_activate_anon", 0), ("workingset_activate_file", 3), ("workingset_restore_anon", 0),
            ("workingset_restore_file", 1), ("workingset_nodereclaim", 0), ("pgscan", 0), ("pgsteal", 0),
            ("pgscan_kswapd", 0), ("pgscan_direct", 0), ("pgsteal_kswapd", 0), ("pgsteal_direct", 0),
            ("pgfault", 31337 + i), ("pgmajfault", 7), ("pgrefill", 0), ("pgactivate", 0), ("pgdeactivate", 0),
            ("pglazyfree", 0), ("pglazyfreed", 0), ("thp_fault_alloc", 0), ("thp_collapse_alloc", 0))),
        "memory.events": f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {i % 3}\noom_group_kill 0\n",
        "io.stat": (f"8:0 rbytes={i * 4096} wbytes={i * 8192} rios={i} wios={2 * i} dbytes=0 dios=0\n"
                    f"259:0 rbytes={i * 512} wbytes={i * 1024} rios={i} wios={i} dbytes=0 dios=0\n"),
        "cpu.pressure": f"some avg10=0.00 avg60=0.00 avg300=0.00 total={i * 11}\n"
                        f"full avg10=0.00 avg60=0.00 avg300=0.00 total={i * 5}\n",
        "memory.pressure": f"some avg10=0.00 avg60=0.00 avg300=0.00 total={i * 3}\n"
                           f"full avg10=0.00 avg60=0.00 avg300=0.00 total={i}\n",
        "io.pressure": f"some avg10=0.00 avg60=0.00 avg300=0.00 total={i * 7}\n"
                       f"full avg10=0.00 avg60=0.00 avg300=0.00 total={i * 2}\n",
        "cgroup.procs": f"{pid}\n{pid + 1}\n",
    }


NETDEV_HEAD = ("Inter-|   Receive                                                |  Transmit\n"
               " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo "
               "colls carrier compressed\n")


def generate(top: str, n: int) -> dict:
    """Writes the tree; returns {"containers": n, "dirs": [...], "files": [...]}:
    the directories the collector lists and the files it reads (relative
    to top), for the floor program."""
    cg = os.path.join(top, "sys", "fs", "cgroup")
    os.makedirs(cg)
    _write(os.path.join(cg, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n")
    dirs, files = ["sys/fs/cgroup"], []

    def mkdir(rel: str) -> str:
        path = os.path.join(cg, rel)
        os.makedirs(path, exist_ok=True)
        dirs.append("sys/fs/cgroup/" + rel)
        _write(os.path.join(path, "cpu.stat"), "usage_usec 1\nuser_usec 1\nsystem_usec 0\n")
        return path

    for rel in ("init.scope", "system.slice", "user.slice", "kubepods.slice",
                "kubepods.slice/kubepods-burstable.slice", "kubepods.slice/kubepods-besteffort.slice"):
        mkdir(rel)
    for s in range(SERVICES):
        mkdir(f"system.slice/service-{s}.service")
    containers_dir = os.path.join(top, "rootfs", "var", "lib", "docker", "containers")
    logs = os.path.join(top, "rootfs", "var", "log", "containers")
    os.makedirs(containers_dir)
    os.makedirs(logs)
    pod = None
    for i in range(n):
        cid = _id(f"bench/{i}")
        kind = i % 3
        if kind == 0:
            rel = f"system.slice/docker-{cid}.scope"
            os.makedirs(os.path.join(containers_dir, cid))
            _write(os.path.join(containers_dir, cid, "config.v2.json"), json.dumps(
                {"ID": cid, "Name": f"/app-{i}", "Config": {"Image": f"registry.example/app:{i % 40}", "Labels": {}}}))
        else:
            if pod is None or i % 2:
                pod = hashlib.md5(f"pod/{i}".encode()).hexdigest()
                pod = f"{pod[:8]}_{pod[8:12]}_{pod[12:16]}_{pod[16:20]}_{pod[20:]}"
                qos = "burstable" if kind == 1 else "besteffort"
                pod_rel = f"kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{pod}.slice"
                mkdir(pod_rel)
            prefix = "cri-containerd" if kind == 1 else "crio"
            rel = f"{pod_rel}/{prefix}-{cid}.scope"
            os.symlink("/dev/null", os.path.join(logs, f"pod-{i}_ns-{i % 20}_c{i}-{cid}.log"))
        path = os.path.join(cg, rel)
        os.makedirs(path)
        pid = 100000 + 2 * i
        for name, text in container_files(i, pid).items():
            _write(os.path.join(path, name), text)
            files.append(f"sys/fs/cgroup/{rel}/{name}")
        netdir = os.path.join(top, "proc", str(pid), "net")
        os.makedirs(netdir)
        _write(os.path.join(netdir, "dev"), NETDEV_HEAD
               + "    lo:  1000  10 0 0 0 0 0 0  1000  10 0 0 0 0 0 0\n"
               + f"  eth0: {i * 1000} {i * 10} 0 0 0 0 0 0 {i * 500} {i * 5} 0 0 0 0 0 0\n")
        files.append(f"proc/{pid}/net/dev")
    return {"containers": n, "dirs": dirs, "files": files}


if __name__ == "__main__":
    out = generate(sys.argv[1], int(sys.argv[2]))
    print(f"{out['containers']} containers, {len(out['dirs'])} directories listed, {len(out['files'])} files read")
