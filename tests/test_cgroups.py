"""The cgroups collector on fixture trees of every runtime layout
(tests/fixtures/cgroups/README.md), on both backends, through the agent's
real command line: which cgroups are containers, their labels, and each
metric against the kernel file it comes from, read here by the test's own
small parser with cAdvisor's unit rules."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from agentproc import AgentProcess
from oracle import Exposition, agent_once
from test_e2e import promtool_check

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroups")
sys.path.insert(0, FIXTURES)
from make_trees import cid, uid  # noqa: E402  (the ids the trees were written with)

ONLY_CGROUPS = ("--collector.disable-defaults", "--collector.cgroups")


def tree_args(top: str) -> list[str]:
    return ["--sysfs", os.path.join(top, "sys"), "--procfs", os.path.join(top, "proc"),
            "--rootfs", os.path.join(top, "rootfs")]


def run(top: str, backend: str, *flags: str) -> Exposition:
    return agent_once(*ONLY_CGROUPS, *tree_args(top), *flags, backend=backend)


def _u(seed):
    return uid(seed).replace("-", "_")


# layout -> {cgroup path: (name, image, container, pod, namespace)}: what
# each container must be labelled, from the metadata the trees hold.
EXPECTED = {
    "docker-systemd": {
        f"/system.slice/docker-{cid('docker-systemd/web')}.scope": ("web", "nginx:1.25", "", "", ""),
        f"/system.slice/docker-{cid('docker-systemd/db')}.scope": ("db", "postgres:16", "", "", ""),
    },
    "docker-cgroupfs": {
        f"/docker/{cid('docker-cgroupfs/a')}": ("cache", "redis:7", "", "", ""),
        # Its config.v2.json is broken: the id alone.
        f"/docker/{cid('docker-cgroupfs/b')}": (cid("docker-cgroupfs/b"), "", "", "", ""),
    },
    "k8s-containerd-systemd": {
        (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{_u('k8s-containerd/api')}.slice/"
         f"cri-containerd-{cid('k8s-containerd/api/pause')}.scope"):
            (cid("k8s-containerd/api/pause"), "", "", "api-7d4b9c-x2x9q", "shop"),
        (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{_u('k8s-containerd/api')}.slice/"
         f"cri-containerd-{cid('k8s-containerd/api/app')}.scope"):
            (cid("k8s-containerd/api/app"), "", "api", "api-7d4b9c-x2x9q", "shop"),
        (f"/kubepods.slice/kubepods-pod{_u('k8s-containerd/db')}.slice/"
         f"cri-containerd-{cid('k8s-containerd/db/app')}.scope"):
            (cid("k8s-containerd/db/app"), "", "postgres", "db-0", "shop"),
    },
    "k8s-crio-systemd": {
        (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{_u('k8s-crio/web')}.slice/"
         f"crio-{cid('k8s-crio/web/app')}.scope"):
            (cid("k8s-crio/web/app"), "", "nginx", "frontend-5f8d7-abcde", "web"),
    },
    "k8s-cgroupfs": {
        f"/kubepods/burstable/pod{uid('k8s-cgroupfs/queue')}/{cid('k8s-cgroupfs/queue/app')}":
            (cid("k8s-cgroupfs/queue/app"), "", "rabbitmq", "queue-0", "jobs"),
        f"/kubepods/pod{uid('k8s-cgroupfs/batch')}/{cid('k8s-cgroupfs/batch/app')}":
            (cid("k8s-cgroupfs/batch/app"), "", "", "batch-28400", "jobs"),
    },
    "podman": {
        f"/machine.slice/libpod-{cid('podman/rootful')}.scope": (cid("podman/rootful"), "", "", "", ""),
        (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{cid('podman/rootless')}.scope"):
            (cid("podman/rootless"), "", "", "", ""),
    },
    "nspawn": {
        "/machine.slice/machine-debian\\x2dbuild.scope": ("debian-build", "", "", "", ""),
    },
}
# Where each container's first process is (its network namespace).
PIDS = {
    "docker-systemd": (2101, 2201), "docker-cgroupfs": (3101, 3201), "k8s-containerd-systemd": (4101, 4111, 4211),
    "k8s-crio-systemd": (5111,), "k8s-cgroupfs": (6111, 6211), "podman": (7101, 7201), "nspawn": (8101,),
}


def read_keyed(path: str) -> dict[str, int]:
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def read_pressure(path: str) -> dict[str, int]:
    out = {}
    with open(path) as f:
        for line in f:
            kind, *fields = line.split()
            out[kind] = int(dict(x.split("=") for x in fields)["total"])
    return out


def read_first_pid(cgroup: str) -> int | None:
    for rel in ("cgroup.procs", "container/cgroup.procs", "payload/cgroup.procs"):
        try:
            with open(os.path.join(cgroup, rel)) as f:
                text = f.read().split()
        except FileNotFoundError:
            continue
        if text:
            return int(text[0])
    return None


def want_series(top: str, hierarchy: str, cgroup_id: str, labels: tuple) -> dict:
    """{(family, extra labels): value} the container must have, from its
    files and cAdvisor's rules (lib/metrics/prometheus.go, lib/container/libcontainer/handler.go)."""
    name, image, container, pod, namespace = labels
    d = os.path.join(hierarchy, cgroup_id.lstrip("/"))
    out = {}
    cpu = read_keyed(os.path.join(d, "cpu.stat"))
    out[("container_cpu_usage_seconds_total", (("cpu", "total"),))] = cpu["usage_usec"] / 1e6
    out[("container_cpu_user_seconds_total", ())] = cpu["user_usec"] / 1e6
    out[("container_cpu_system_seconds_total", ())] = cpu["system_usec"] / 1e6
    cpu_max = os.path.join(d, "cpu.max")
    if os.path.exists(cpu_max) and not open(cpu_max).read().startswith("max"):
        out[("container_cpu_cfs_periods_total", ())] = cpu["nr_periods"]
        out[("container_cpu_cfs_throttled_periods_total", ())] = cpu["nr_throttled"]
        out[("container_cpu_cfs_throttled_seconds_total", ())] = cpu["throttled_usec"] / 1e6
    if os.path.exists(os.path.join(d, "memory.current")):
        current = int(open(os.path.join(d, "memory.current")).read())
        stat = read_keyed(os.path.join(d, "memory.stat"))
        out[("container_memory_usage_bytes", ())] = current
        out[("container_memory_working_set_bytes", ())] = max(current - stat["inactive_file"], 0)
        out[("container_memory_rss", ())] = stat["anon"]
        out[("container_memory_cache", ())] = stat["file"]
        limit = open(os.path.join(d, "memory.max")).read().strip()
        out[("container_spec_memory_limit_bytes", ())] = 0 if limit == "max" else int(limit)
        out[("container_oom_events_total", ())] = read_keyed(os.path.join(d, "memory.events"))["oom_kill"]
    if os.path.exists(os.path.join(d, "io.stat")):
        names = {"8:0": "/dev/sda", "259:0": "/dev/nvme0n1"}
        for line in open(os.path.join(d, "io.stat")):
            dev, *fields = line.split()
            kv = dict(x.split("=") for x in fields)
            out[("container_fs_reads_bytes_total", (("device", names[dev]),))] = int(kv["rbytes"])
            out[("container_fs_writes_bytes_total", (("device", names[dev]),))] = int(kv["wbytes"])
    for resource in ("cpu", "memory", "io"):
        p = read_pressure(os.path.join(d, f"{resource}.pressure"))
        out[(f"container_pressure_{resource}_waiting_seconds_total", ())] = p["some"] / 1e6
        out[(f"container_pressure_{resource}_stalled_seconds_total", ())] = p["full"] / 1e6
    pid = read_first_pid(d)
    if pid is not None:
        with open(os.path.join(top, "proc", str(pid), "net", "dev")) as f:
            for line in f.readlines()[2:]:
                iface, rest = line.split(":", 1)
                iface, c = iface.strip(), [int(x) for x in rest.split()]
                if iface == "lo":
                    continue
                extra = (("interface", iface),)
                for family, value in (("receive_bytes", c[0]), ("receive_packets", c[1]), ("receive_errors", c[2]),
                                      ("transmit_bytes", c[8]), ("transmit_packets", c[9]),
                                      ("transmit_errors", c[10])):
                    out[(f"container_network_{family}_total", extra)] = value
    base = (("container", container), ("id", cgroup_id), ("image", image), ("name", name),
            ("namespace", namespace), ("pod", pod))
    return {(family, tuple(sorted(base + extra))): value for (family, extra), value in out.items()}


def container_samples(exp: Exposition) -> dict:
    return {(n, labels): float(v) for (n, labels), v in exp.samples.items() if n.startswith("container_")}


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_layout(layout, backend_name):
    """Every container of the layout is found, nothing else is, each with
    its labels and every metric its files give, and promtool is clean."""
    top = os.path.join(FIXTURES, layout)
    exp = run(top, backend_name)
    hierarchy = os.path.join(top, "sys", "fs", "cgroup")
    want = {}
    for cgroup_id, labels in EXPECTED[layout].items():
        want.update(want_series(top, hierarchy, cgroup_id, labels))
    got = container_samples(exp)
    assert {dict(k[1])["id"] for k in got} == set(EXPECTED[layout])
    assert set(got) == set(want), (sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3])
    for key, value in want.items():
        assert got[key] == value, key
    assert exp.samples[("agent_cgroups_containers_left_out", ())] == "0"
    # Every container had a process with a network namespace but the ones
    # with none: each pid's counters are somewhere.
    assert {p for p in PIDS[layout]} <= {int(x) for x in os.listdir(os.path.join(top, "proc"))}
    promtool_check(exp.text)


def test_hybrid_host_captured(backend_name):
    """A hybrid host's cgroup2 mount (fs/cgroup/unified), captured on this
    machine, where no cpu, memory or io controller is enabled in the v2
    hierarchy: the core cpu.stat and pressure files are there and exported;
    nothing is made up for the files that are not."""
    top = os.path.join(FIXTURES, "hybrid-captured")
    hierarchy = os.path.join(top, "sys", "fs", "cgroup", "unified")
    (scope,) = os.listdir(os.path.join(hierarchy, "system.slice"))
    cgroup_id = "/system.slice/" + scope
    exp = run(top, backend_name)
    container_id = scope[len("docker-"):-len(".scope")]
    want = want_series(top, hierarchy, cgroup_id, (container_id, "", "", "", ""))
    got = container_samples(exp)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == value, key
    families = {n for n, _ in got}
    assert "container_memory_usage_bytes" not in families and "container_fs_reads_bytes_total" not in families
    assert "container_cpu_cfs_periods_total" not in families


def test_cgroup_v1_only_host_says_so(tmp_path, backend_name):
    """No cgroup2 mount: no container series, no failure, and one line that
    says containers need cgroup v2."""
    for controller in ("cpu", "memory", "blkio"):
        (tmp_path / "sys" / "fs" / "cgroup" / controller).mkdir(parents=True)
        (tmp_path / "sys" / "fs" / "cgroup" / controller / "cgroup.procs").write_text("1\n")
    (tmp_path / "proc").mkdir()
    (tmp_path / "rootfs").mkdir()
    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(tmp_path)), "--backend", backend_name) as agent:
        text = agent.metrics_text()
        agent.metrics_text()
        log = agent.log()
    assert 'agent_source_success{source="cgroups"} 1' in text
    assert "container_" not in text
    lines = [line for line in log.splitlines() if "containers need cgroup v2" in line]
    assert len(lines) == 1, log


def test_include_exclude_and_cap(backend_name):
    top = os.path.join(FIXTURES, "k8s-containerd-systemd")
    ids = sorted(EXPECTED["k8s-containerd-systemd"])

    def exported(exp):
        return {dict(k[1])["id"] for k in container_samples(exp)}

    exp = run(top, backend_name, "--collector.cgroups.max-containers", "2")
    assert exported(exp) == set(ids[:2])
    assert exp.samples[("agent_cgroups_containers_left_out", ())] == "1"
    app = cid("k8s-containerd/api/app")
    exp = run(top, backend_name, "--collector.cgroups.include", "^" + app[:12])
    assert {i.rsplit("-", 1)[-1] for i in exported(exp)} == {app + ".scope"}
    exp = run(top, backend_name, "--collector.cgroups.exclude", "^" + app[:12])
    assert len(exported(exp)) == 2 and all(app not in i for i in exported(exp))


def test_docker_names_filter(backend_name):
    top = os.path.join(FIXTURES, "docker-systemd")
    exp = run(top, backend_name, "--collector.cgroups.include", "^web$")
    assert {dict(k[1])["name"] for k in container_samples(exp)} == {"web"}


def test_broken_docker_config_is_one_log_line(backend_name, tmp_path):
    """docker-cgroupfs's second container has a truncated config.v2.json:
    the scrape goes on, that container has its id for a name, one warning."""
    top = os.path.join(FIXTURES, "docker-cgroupfs")
    with AgentProcess(*ONLY_CGROUPS, *tree_args(top), "--backend", backend_name) as agent:
        text = agent.metrics_text()
        agent.metrics_text()
        log = agent.log()
    bad = cid("docker-cgroupfs/b")
    assert f'name="{bad}"' in text and 'name="cache"' in text
    assert 'agent_source_success{source="cgroups"} 1' in text
    assert len([line for line in log.splitlines() if "not a Docker container config" in line]) == 1, log


def test_oversized_docker_config_is_not_read_whole(backend_name, tmp_path):
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    web = cid("docker-systemd/web")
    config = top / "rootfs/var/lib/docker/containers" / web / "config.v2.json"
    config.write_text('{"Name": "/web", "Config": {"Image": "' + "x" * (2 << 20) + '"}}')
    exp = run(str(top), backend_name)
    names = {dict(k[1])["name"] for k in container_samples(exp)}
    assert names == {web, "db"}


def test_malformed_cgroup_file_fails_the_source_in_one_line(tmp_path, backend_name):
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    web = cid("docker-systemd/web")
    (top / f"sys/fs/cgroup/system.slice/docker-{web}.scope/cpu.stat").write_text("usage_usec 12x\n")
    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(top)), "--backend", backend_name) as agent:
        text = agent.metrics_text()
        log = agent.log()
    assert 'agent_source_success{source="cgroups"} 0' in text
    assert "container_cpu" not in text
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if f"docker-{web}.scope/cpu.stat" in line]) == 1, log


def test_no_series_left_behind_when_a_container_goes(tmp_path, backend_name):
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    web = cid("docker-systemd/web")
    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(top)), "--backend", backend_name) as agent:
        before = Exposition(agent.metrics_text())
        assert 'name="web"' in before.text
        shutil.rmtree(top / f"sys/fs/cgroup/system.slice/docker-{web}.scope")
        shutil.rmtree(top / "rootfs/var/lib/docker/containers" / web)
        time.sleep(0.05)
        after = Exposition(agent.metrics_text())
    assert web not in after.text and 'name="web"' not in after.text
    assert 'name="db"' in after.text


def test_a_renamed_docker_container_is_labelled_by_its_new_name(tmp_path, backend_name):
    """`docker rename` rewrites config.v2.json (a new file renamed over
    the old one): the next scrape has the new name, not the one the
    agent read when it first saw the container."""
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    web = cid("docker-systemd/web")
    config = top / "rootfs/var/lib/docker/containers" / web / "config.v2.json"

    def names(text):
        return {dict(k[1])["name"] for k in container_samples(Exposition(text))}

    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(top)), "--backend", backend_name) as agent:
        assert names(agent.metrics_text()) == {"web", "db"}
        renamed = config.with_name("config.v2.json.tmp")
        renamed.write_text(config.read_text().replace('"/web"', '"/frontend"'))
        os.replace(renamed, config)
        after = names(agent.metrics_text())
    assert after == {"frontend", "db"}


def test_labels_follow_the_kubelet_log_links(tmp_path, backend_name):
    """A container's log link appears after its cgroup (the kubelet makes it
    when the container starts): the next scrape labels it."""
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "k8s-containerd-systemd"), top, symlinks=True)
    links = top / "rootfs/var/log/containers"
    saved = {p.name: os.readlink(p) for p in links.iterdir()}
    for p in links.iterdir():
        p.unlink()
    app = cid("k8s-containerd/api/app")

    def labels_of(text):
        exp = Exposition(text)
        return {dict(k[1])["container"] for k in container_samples(exp) if app in dict(k[1])["id"]}

    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(top)), "--backend", backend_name) as agent:
        assert labels_of(agent.metrics_text()) == {""}
        time.sleep(0.01)  # a new mtime for the directory
        for name, target in saved.items():
            os.symlink(target, links / name)
        assert labels_of(agent.metrics_text()) == {"api"}


def test_devices_sysfs_does_not_name_stay_apart(tmp_path, backend_name):
    """Without sys/dev/block (a container's view, a trimmed /sys) each io.stat
    device keeps its own series, named MAJ:MIN."""
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    shutil.rmtree(top / "sys/dev")
    exp = run(str(top), backend_name)
    devices = {dict(k[1])["device"] for k in container_samples(exp) if k[0] == "container_fs_reads_bytes_total"}
    assert devices == {"8:0", "259:0"}
    promtool_check(exp.text)


def test_unreadable_docker_root_is_said_once(tmp_path, backend_name):
    """Docker's data root unreadable (the agent not root): every container
    by its id, one log line for all of them."""
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    containers = top / "rootfs/var/lib/docker/containers"
    for d in containers.iterdir():
        # EACCES would need a user other than root (root reads through
        # modes); a symlink loop fails the open with ELOOP for anyone.
        (d / "config.v2.json").unlink()
        (d / "config.v2.json").symlink_to("config.v2.json")
    with AgentProcess(*ONLY_CGROUPS, *tree_args(str(top)), "--backend", backend_name) as agent:
        text = agent.metrics_text()
        agent.metrics_text()
        log = agent.log()
    names = {dict(k[1])["name"] for k in container_samples(Exposition(text))}
    assert names == {cid("docker-systemd/web"), cid("docker-systemd/db")}
    assert len([line for line in log.splitlines() if "labelled by their ids alone" in line]) == 1, log


def test_a_name_twice_in_a_file_is_one_series(tmp_path, backend_name):
    """An interface twice in a net/dev, a device twice in an io.stat (never
    from a kernel, but from a file): the first line only, never a duplicate
    series, which would make Prometheus refuse the whole scrape."""
    top = tmp_path / "tree"
    shutil.copytree(os.path.join(FIXTURES, "docker-systemd"), top, symlinks=True)
    web = cid("docker-systemd/web")
    io_stat = top / f"sys/fs/cgroup/system.slice/docker-{web}.scope/io.stat"
    io_stat.write_text(io_stat.read_text() + "8:0 rbytes=1 wbytes=2\n")
    net_dev = top / "proc/2101/net/dev"
    net_dev.write_text(net_dev.read_text() + "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
    exp = run(str(top), backend_name)  # its parser fails on a duplicate series
    first_read = int(io_stat.read_text().split("rbytes=")[1].split()[0])
    reads = [v for k, v in container_samples(exp).items()
             if k[0] == "container_fs_reads_bytes_total" and ("device", "/dev/sda") in k[1] and web in dict(k[1])["id"]]
    assert reads == [first_read]
    promtool_check(exp.text)
