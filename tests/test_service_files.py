"""Service packaging: the systemd unit (systemd-analyze verify, its settings,
the agent under the kernel's W^X rule), install.sh and uninstall.sh run for
real into a temporary DESTDIR and back, and the Kubernetes DaemonSet."""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent import __version__
from agent.config import Config, build_parser
from backends import load_backend

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "monitoring-agent.service"
DAEMONSET = ROOT / "deploy" / "kubernetes" / "daemonset.yaml"
INSTALL = ROOT / "scripts" / "install.sh"
UNINSTALL = ROOT / "scripts" / "uninstall.sh"
SAMPLE_CONFIG = ROOT / "config" / "monitoring-agent.conf"
IN_CI = os.environ.get("CI") == "true"
# Bounds a run of install.sh, which may fetch build requirements from PyPI.
INSTALL_TIMEOUT = 600
# The worst resident set measured (dense tree, 64 concurrent scrapes; the
# unit's MemoryMax comment has the figures), in MiB.
MEASURED_PEAK_MIB = 94


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; a key may repeat (and an empty
    value resets it in systemd, kept here as "")."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text())["Service"]


def one(key: str) -> str:
    values = service().get(key)
    assert values, f"{key}= is not set"
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


def size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)", value)
    assert m, value
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} not installed")
    return path


# -- the unit ------------------------------------------------------------------

def verifiable_copy(tmp_path: Path, text: str) -> Path:
    """The unit with ExecStart pointed at an executable that exists here:
    verify checks that the binary does, and /opt/monitoring-agent is not."""
    agent = Path(sys.executable).parent / "monitoring-agent"
    if not agent.exists():
        agent = Path(sys.executable)
    text = text.replace("ExecStart=/opt/monitoring-agent/bin/monitoring-agent", f"ExecStart={agent}")
    assert f"ExecStart={agent} " in text
    path = tmp_path / "monitoring-agent.service"
    path.write_text(text)
    return path


def verify(path: Path) -> subprocess.CompletedProcess:
    # It exits 0 even on unknown keys and bad values, which it only prints:
    # the tests look at what it printed as well.
    return subprocess.run([require_tool("systemd-analyze"), "verify", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    r = verify(verifiable_copy(tmp_path, UNIT.read_text()))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout + r.stderr == "", r.stdout + r.stderr


def test_systemd_analyze_verify_would_catch_a_mistake(tmp_path):
    # The check above is only worth something if this way of calling
    # verify reports a misspelt key and a bad value in our file.
    text = UNIT.read_text().replace("ProtectClock=yes", "ProtectClok=yes").replace(
        "MemoryMax=", "MemoryMax=lots\n#")
    r = verify(verifiable_copy(tmp_path, text))
    assert "Unknown key 'ProtectClok'" in r.stderr, r.stderr
    assert "Invalid memory limit 'lots'" in r.stderr, r.stderr


def test_systemd_analyze_security_exposure_is_low(tmp_path):
    path = verifiable_copy(tmp_path, UNIT.read_text())
    r = subprocess.run([require_tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(path)],
                       capture_output=True, text=True, timeout=120)
    if "--offline" in r.stderr and r.returncode != 0:
        pytest.skip("systemd-analyze security --offline needs systemd >= 250")
    m = re.search(r"Overall exposure level for monitoring-agent\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    # 10 is an unprotected service; the remaining points are the host
    # network and /proc access, which the agent exists to use.
    assert float(m.group(1)) <= 2.0, r.stdout


def test_unit_runs_the_agent_as_a_notify_service():
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("ExecStart") == "/opt/monitoring-agent/bin/monitoring-agent --config /etc/monitoring-agent.conf"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Restart") == "on-failure"
    assert one("RestartSec")
    assert one("WatchdogSec") == "30"
    assert one("TimeoutStopSec")
    # No --daemon: systemd must keep the main process it started.
    assert "--daemon" not in one("ExecStart")
    assert parse_unit(UNIT.read_text())["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("key, value", [
    ("DynamicUser", "yes"),
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    # Read-only, not hidden: the filesystem collector statvfs'es /home and /run/user/UID.
    ("ProtectHome", "read-only"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    # /proc/stat, meminfo, diskstats, loadavg and uptime must stay visible.
    ("ProtectProc", "default"),
    ("ProcSubset", "all"),
])
def test_unit_hardening(key, value):
    assert one(key) == value


def test_unit_system_call_filter():
    assert service()["SystemCallFilter"][0] == "@system-service"
    assert "PrivateNetwork" not in service(), "/proc/net/dev would list a private namespace's interfaces"


def test_unit_resource_limits():
    # At least 1.5 times the measured peak, without letting a leak take the host.
    assert 1.5 * (MEASURED_PEAK_MIB << 20) <= size_bytes(one("MemoryMax")) <= 512 << 20
    # One thread per connection (the server's default limit), the serving
    # loop, ExecReload's kill.  A larger max-connections needs a drop-in
    # (docs/OPERATIONS.md).
    max_connections = getattr(Config(), "max_connections", 64)
    assert int(one("TasksMax")) >= max_connections + 3
    assert int(one("LimitNOFILE")) >= 1024


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

MDWE_PROBE = textwrap.dedent("""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(%d, %d, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print("prctl", err, os.strerror(err), file=sys.stderr)
        sys.exit(77)
    os.execv(sys.argv[1], sys.argv[1:])
""" % (PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN))


def run_without_write_execute(*argv: str) -> subprocess.CompletedProcess:
    """argv exec'd under PR_SET_MDWE (Linux >= 6.3): no W+X mapping, no
    mapping made executable later, the rule MemoryDenyWriteExecute= sets."""
    r = subprocess.run([sys.executable, "-c", MDWE_PROBE, *argv], capture_output=True, text=True, timeout=60,
                       cwd="/")
    if r.returncode == 77 and f"prctl {errno.EINVAL} " in r.stderr:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    return r


def test_c_backend_runs_under_memory_deny_write_execute():
    load_backend("c")  # skips, or fails in CI, without the extension
    r = run_without_write_execute(sys.executable, "-m", "agent", "--config", "/dev/null", "--once",
                                  "--backend", "c")
    assert r.returncode == 0, r.stderr
    assert "node_memory_total_bytes " in r.stdout
    assert 'agent_build_info{version="%s",backend="c"} 1' % __version__ in r.stdout


def test_memory_deny_write_execute_probe_bites():
    # The control: what would need W+X memory (a libffi closure for
    # ffi.callback) does fail in the same set-up, so the test above proves
    # something.
    load_backend("c")
    code = ("from agent import _agent_c\n"
            "try:\n"
            "    _agent_c.ffi.callback('int(void)', lambda: 0)\n"
            "except MemoryError as exc:\n"
            "    print('refused:', exc)\n")
    r = run_without_write_execute(sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    assert "refused: Cannot allocate write+execute memory" in r.stdout, r.stdout + r.stderr


# -- install.sh and uninstall.sh ----------------------------------------------

@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the working tree (tracked and untracked files, not ignored
    ones), so that pip's in-tree build never writes into the real one."""
    dest = tmp_path_factory.mktemp("checkout")
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], check=True, capture_output=True, timeout=60).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def run_script(checkout: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    r = subprocess.run(["sh", str(checkout / "scripts" / name), *args], capture_output=True, text=True,
                       env=env, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{name} {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root: file contents, None for a directory."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = None if path.is_dir() and not path.is_symlink() else (
            os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return out


def installed_version(venv: Path) -> str:
    # The #! line names the final prefix, not the DESTDIR copy: run the
    # installed console script with the installed interpreter.
    r = subprocess.run([str(venv / "bin" / "python"), str(venv / "bin" / "monitoring-agent"), "--version"],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_install_twice_then_uninstall_into_an_empty_destdir(checkout, tmp_path):
    destdir = tmp_path / "root"
    destdir.mkdir()
    venv = destdir / "opt" / "monitoring-agent"
    config = destdir / "etc" / "monitoring-agent.conf"
    unit = destdir / "etc" / "systemd" / "system" / "monitoring-agent.service"

    run_script(checkout, "install.sh", "--destdir", str(destdir), "--python", sys.executable)
    assert installed_version(venv) == f"monitoring-agent {__version__}"
    assert (venv / "bin" / "monitoring-agent").read_text().startswith("#!/opt/monitoring-agent/bin/python")
    assert config.read_bytes() == SAMPLE_CONFIG.read_bytes()
    assert unit.read_bytes() == UNIT.read_bytes()
    assert oct(config.stat().st_mode & 0o777) == "0o644"
    assert oct(unit.stat().st_mode & 0o777) == "0o644"

    # The admin edits the configuration; installing again (an upgrade)
    # leaves it, and everything else, as it was.
    edited = config.read_text().replace("log-level = info", "log-level = debug")
    config.write_text(edited)
    first = tree(destdir)
    r = run_script(checkout, "install.sh", "--destdir", str(destdir), "--python", sys.executable)
    assert "kept the existing" in r.stdout
    assert config.read_text() == edited
    second = tree(destdir)
    assert sorted(second) == sorted(first)
    assert second[str(unit.relative_to(destdir))] == first[str(unit.relative_to(destdir))]
    assert installed_version(venv) == f"monitoring-agent {__version__}"

    r = run_script(checkout, "uninstall.sh", "--destdir", str(destdir))
    assert "kept" in r.stdout and "monitoring-agent.conf" in r.stdout
    # Nothing left but the configuration (and the /etc that holds it).
    assert tree(destdir) == {"etc": None, "etc/monitoring-agent.conf": edited.encode()}

    r = run_script(checkout, "uninstall.sh", "--destdir", str(destdir))
    assert "nothing installed" in r.stdout


def test_install_and_uninstall_leave_a_preexisting_tree_as_it_was(checkout, tmp_path):
    destdir = tmp_path / "root"
    system = destdir / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    (system / "other.service").write_text("[Service]\nExecStart=/bin/true\n")
    (destdir / "srv").mkdir()
    config = destdir / "etc" / "monitoring-agent.conf"
    config.write_text("[agent]\nlisten = 127.0.0.1:9100\n")
    before = tree(destdir)

    # DESTDIR from the environment, and another prefix: ExecStart follows it.
    env_run = subprocess.run(["sh", str(checkout / "scripts" / "install.sh"), "--prefix", "/srv/agent",
                              "--python", sys.executable],
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, DESTDIR=str(destdir)))
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr
    assert installed_version(destdir / "srv" / "agent") == f"monitoring-agent {__version__}"
    unit_text = (system / "monitoring-agent.service").read_text()
    assert "ExecStart=/srv/agent/bin/monitoring-agent --config /etc/monitoring-agent.conf\n" in unit_text
    assert unit_text == UNIT.read_text().replace("=/opt/monitoring-agent/", "=/srv/agent/")
    assert config.read_text() == "[agent]\nlisten = 127.0.0.1:9100\n"

    run_script(checkout, "uninstall.sh", "--destdir", str(destdir), "--prefix", "/srv/agent")
    assert tree(destdir) == before


def test_install_refuses_a_prefix_it_did_not_make(checkout, tmp_path):
    foreign = tmp_path / "opt" / "monitoring-agent"
    foreign.mkdir(parents=True)
    (foreign / "data").write_text("not ours")
    for args in (["install.sh", "--python", sys.executable], ["uninstall.sh"]):
        r = subprocess.run(["sh", str(checkout / "scripts" / args[0]), "--destdir", str(tmp_path), *args[1:]],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "not made by" in r.stderr
    assert (foreign / "data").read_text() == "not ours"
    assert sorted(p.name for p in foreign.iterdir()) == ["data"]


def test_scripts_are_posix_sh_with_set_eu():
    for script in (INSTALL, UNINSTALL):
        text = script.read_text()
        assert text.startswith("#!/bin/sh\n")
        assert "\nset -eu\n" in text
        assert os.access(script, os.X_OK)
        r = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr


# -- Kubernetes ------------------------------------------------------------------

def daemonset_documents() -> dict[str, dict]:
    yaml = pytest.importorskip("yaml")
    docs = [d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return by_kind


def test_daemonset_reads_the_hosts_proc_in_its_network_namespace():
    ds = daemonset_documents()["DaemonSet"]
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["hostPID"] is True
    (container,) = spec["containers"]
    args = container["args"]
    assert build_parser().parse_args(args).procfs == "/host/proc"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/host/proc"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["hostPath"]["path"] == "/proc"
    listen_port = int(args[args.index("--listen") + 1].rpartition(":")[2])
    (port,) = container["ports"]
    assert port["containerPort"] == listen_port


def test_daemonset_is_unprivileged_and_bounded():
    ds = daemonset_documents()["DaemonSet"]
    spec = ds["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    pod_sc, sc = spec["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc.get("privileged", False) is False
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    mib = {"Mi": 1, "Gi": 1024}

    def to_mib(q: str) -> int:
        return int(q[:-2]) * mib[q[-2:]]
    assert 1.5 * MEASURED_PEAK_MIB <= to_mib(limits["memory"]) <= 512
    assert 16 <= to_mib(requests["memory"]) <= to_mib(limits["memory"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
        assert container[probe]["httpGet"]["port"] in ("metrics", container["ports"][0]["containerPort"])


def test_daemonset_has_a_service_that_selects_its_pods():
    docs = daemonset_documents()
    ds, svc = docs["DaemonSet"], docs["Service"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["metadata"]["namespace"] == ds["metadata"]["namespace"]
    (port,) = svc["spec"]["ports"]
    container_port = ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert port["targetPort"] in (container_port["name"], container_port["containerPort"])
