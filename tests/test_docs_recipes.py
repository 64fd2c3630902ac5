"""The docs' shell recipes, run as a user would paste them: the commands
are taken from the Markdown, with only /etc/prometheus, the ports and the
data directory moved somewhere of the test's, `sudo` dropped, and the
steps that edit or reload a system service left out."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def sh_block(doc: str, containing: str) -> str:
    """The ```sh block of docs/DOC that contains `containing`."""
    blocks = re.findall(r"```sh\n(.*?)```", (DOCS / doc).read_text(), flags=re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"{doc}: {len(found)} sh blocks contain {containing!r}"
    return found[0]


def runnable(block: str, drop: tuple[str, ...]) -> str:
    # Continuation lines joined, so that a dropped command goes whole.
    lines = block.replace("\\\n", " ").splitlines()
    kept = [line for line in lines if not any(line.lstrip().startswith(d) for d in drop)]
    return "\n".join(line.replace("sudo ", "") for line in kept) + "\n"


@pytest.mark.parametrize("doc", ["FLEET.md", "ALERTING.md"])
def test_prometheus_set_up_copies_only_what_prometheus_reads(doc, tmp_path):
    etc = tmp_path / "etc-prometheus"
    etc.mkdir()
    (tmp_path / "hosts.txt").write_text("web01\nweb02\n")
    script = runnable(sh_block(doc, "/etc/prometheus"), drop=("sudoedit", "sudo systemctl", "promtool",
                                                              "amtool"))
    script = script.replace("/etc/prometheus", str(etc)).replace("deploy/", f"{ROOT}/deploy/")
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    copied = sorted(str(p.relative_to(etc)) for p in etc.rglob("*"))
    expected = {"prometheus.yml", "recording_rules.yml", "alert_rules.yml", "targets"}
    if doc == "ALERTING.md":
        expected.add("alertmanager.yml")
    if doc == "FLEET.md":
        expected.add("targets/web.yml")  # the recipe's own, from hosts.txt
        assert "web01:8080" in (etc / "targets" / "web.yml").read_text()
        assert "example.internal" not in (etc / "targets" / "web.yml").read_text()
    assert set(copied) == expected  # no tests/, no example target file
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus): the copy is checked, not the config")
    check = subprocess.run([promtool, "check", "config", str(etc / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def run_recipe(script: str, tmp_path: Path, timeout: float) -> str:
    """What the recipe printed; its background servers stopped after it."""
    # A file, not a pipe: the recipe's background servers would hold a pipe open.
    output = tmp_path / "recipe.out"
    with open(output, "w") as out_file:
        proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, stdout=out_file,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the recipe's background servers
    return output.read_text()


def json_objects(text: str) -> list:
    """Every JSON object in curl's output: its answers end without a newline."""
    decoder, objects, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        obj, i = decoder.raw_decode(text, i)
        objects.append(obj)
    return objects


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_victoria_metrics_round_trip_recipe_answers(tmp_path):
    """docs/PUSH.md's round trip, as written: the queries must return series
    (VictoriaMetrics' 30 s latency offset once made them answer empty)."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        pytest.skip("victoria-metrics not installed (apt-get install victoria-metrics)")
    script = runnable(sh_block("PUSH.md", "victoria-metrics -httpListenAddr"), drop=("sudo apt-get",))
    ports = {p: str(free_port()) for p in ("8428", "2003", "8089", "9100")}
    for old, new in ports.items():
        script = script.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    script = script.replace("/tmp/vm", str(tmp_path / "vm"))
    agent = Path(sys.executable).with_name("monitoring-agent")
    assert agent.exists(), "the console script is installed with the package"
    script = re.sub(r"^monitoring-agent ", f"{agent} --procfs /proc ", script, flags=re.M)
    out = run_recipe(script, tmp_path, 90)
    answers = json_objects(out)
    queries = [a for a in answers if a.get("data", {}).get("resultType") == "vector"]
    assert len(queries) == 2, out
    for answer in queries:
        assert answer["status"] == "success" and answer["data"]["result"], answer
    exported = [a for a in answers if "metric" in a]
    assert exported and exported[0]["metric"]["__name__"].startswith("agent."), out


def test_otlp_receiver_recipe_prints_what_the_agent_pushes(tmp_path):
    """docs/PUSH.md's OTLP recipe, as written: its receiver gets the agent's
    requests and prints the host and the metric names."""
    script = runnable(sh_block("PUSH.md", "otlp_receiver.py"), drop=())
    ports = {p: str(free_port()) for p in ("4318", "9100")}
    for old, new in ports.items():
        script = script.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        script = script.replace(f'"127.0.0.1", {old}', f'"127.0.0.1", {new}')
    script = script.replace("/tmp/otlp_receiver.py", str(tmp_path / "otlp_receiver.py"))
    script = script.replace("python3 ", f"{sys.executable} ")
    agent = Path(sys.executable).with_name("monitoring-agent")
    script = re.sub(r"^monitoring-agent ", f"{agent} --procfs /proc ", script, flags=re.M)
    lines = run_recipe(script, tmp_path, 60).splitlines()
    assert lines, "the receiver printed nothing"
    host, count, _, names = lines[0].split(" ", 3)
    assert host == socket.gethostname() and int(count) > 50
    assert names.startswith("node_cpu_usage_percent")
