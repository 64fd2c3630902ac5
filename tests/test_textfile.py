"""The textfile collector, run through the real command on copies of the
fixture directories (tests/fixtures/textfile, README there), on both
backends: node_exporter 1.5.0 as the oracle where the agent agrees with it,
and the stricter rules of issue 13 where it deliberately does not (a family
repeated in another file or clashing with the agent's own refuses that
file); files that would block or never end; promtool and the OpenMetrics
parser on the output."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess
from oracle import Exposition, node_exporter_on
from test_e2e import promtool_check
from test_service import wait_for
from trees import PROCFS_TREES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "textfile"
TREE = PROCFS_TREES / "linux-5.15-ubuntu22"
MTIME = 1733371255
# node_exporter's families about itself, not about the files.
NODE_EXPORTER_OWN = ("go_", "process_", "promhttp_", "node_scrape_", "node_exporter_")


def copy_case(case: str, tmp_path: Path, drop: tuple = ()) -> Path:
    """The case copied (so that both programs see the same paths), less the
    files in `drop`, every mtime set to MTIME."""
    directory = tmp_path / case
    shutil.copytree(FIXTURES / case, directory)
    for name in drop:
        (directory / name).unlink()
    for path in [directory, *directory.rglob("*")]:
        os.utime(path, (MTIME, MTIME))
    return directory


def write_case(tmp_path: Path, files: dict[str, str]) -> Path:
    directory = tmp_path / "case"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
        os.utime(directory / name, (MTIME, MTIME))
    return directory


def run_agent(directory, backend: str, *args: str, collectors=("--collector.disable-defaults", "--collector.textfile"),
              fmt: str = "prometheus") -> tuple[str, str]:
    """(stdout, stderr) of one --once run reading `directory`."""
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", backend, "--procfs", str(TREE),
                        "--format", fmt, *collectors, "--collector.textfile.directory", str(directory), *args],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return r.stdout, r.stderr


def agent_on(directory, backend: str) -> Exposition:
    return Exposition(run_agent(directory, backend)[0])


def helps(text: str) -> dict[str, str]:
    return dict(line[len("# HELP "):].split(" ", 1) for line in text.splitlines() if line.startswith("# HELP "))


def same_value(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return x == y or (math.isnan(x) and math.isnan(y))


def assert_same_as_node_exporter(mine: Exposition, theirs: Exposition):
    """The files' families and the collector's own: the same set, and each
    with the same type, HELP, label sets and values."""
    want = {f for f in theirs.types if not f.startswith(NODE_EXPORTER_OWN)}
    got = {f for f in mine.types if not f.startswith("agent_")}
    assert got == want
    my_help, their_help = helps(mine.text), helps(theirs.text)
    for family in sorted(want):
        assert mine.types[family] == theirs.types[family], family
        assert my_help[family] == their_help[family], family
        mine_samples, theirs_samples = mine.family(family), theirs.family(family)
        assert set(mine_samples) == set(theirs_samples), family
        for labels, value in theirs_samples.items():
            assert same_value(mine_samples[labels], value), f"{family}{dict(labels)}: {mine_samples[labels]} != {value}"


def scrape_error(exposition: Exposition) -> float:
    return float(exposition.family("node_textfile_scrape_error")[()])


def mtime_files(exposition: Exposition, directory: Path) -> set[str]:
    return {dict(labels)["file"].removeprefix(f"{directory}/")
            for labels in exposition.family("node_textfile_mtime_seconds")}


# --- node_exporter 1.5.0 where the agent agrees ---------------------------------

LE_AND_QUANTILES = {
    # `le` and `quantile` written as Go writes floats; +Inf added; labels filled.
    "bounds.prom": '# TYPE h histogram\nh_bucket{le="1.0",x="a"} 1\nh_bucket{le="1e1",x="a"} 2\n'
                   'h_bucket{le="1e6",x="a"} 3\nh_bucket{le="0.00001",x="a"} 0\nh_bucket{le="2.50",x="a"} 2\n'
                   'h_count{x="a"} 4\nh_sum{x="a"} 7.5\nh_bucket{le="0"} 0\nh_count 0\n'
                   '# TYPE s summary\ns{quantile="1e-1"} 3\ns{quantile="0.50",y="b"} 4\ns_count{y="b"} 9\n',
}
ORACLE_CASES = {
    "good": (),
    "timestamp": (),
    "syntax-error": (),
    "directory-named-prom": (),
    # Less the two files the agent refuses and 1.5.0 does not (below).
    "grammar": ("dup_sample.prom", "neg_counter.prom"),
}


@pytest.mark.parametrize("case", sorted(ORACLE_CASES) + ["bounds"])
def test_agrees_with_node_exporter(case, tmp_path, backend_name):
    if case == "bounds":
        directory = write_case(tmp_path, LE_AND_QUANTILES)
    else:
        directory = copy_case(case, tmp_path, ORACLE_CASES[case])
    theirs = node_exporter_on(["textfile"], f"--collector.textfile.directory={directory}")
    mine = agent_on(directory, backend_name)
    assert_same_as_node_exporter(mine, theirs)
    # Not an empty comparison: the mtimes are there, and the error flag.
    assert mtime_files(mine, directory) and theirs.family("node_textfile_scrape_error")


@pytest.mark.parametrize("case, error, mtimes", [
    ("good", 0, {".hidden.prom", "apt.prom", "backup.prom", "empty.prom", "kinds.prom"}),
    ("timestamp", 1, {"ok.prom"}),
    ("syntax-error", 1, {"ok.prom"}),
    ("directory-named-prom", 0, {"ok.prom", "sub.prom"}),
])
def test_fixture_outcomes_as_the_readme_says(case, error, mtimes, tmp_path, backend_name):
    # The outcomes node_exporter printed (fixture README), without it: the
    # files read, the error flag, the mtime in whole seconds.
    directory = copy_case(case, tmp_path)
    mine = agent_on(directory, backend_name)
    assert scrape_error(mine) == error
    assert mtime_files(mine, directory) == mtimes
    assert {float(v) for v in mine.family("node_textfile_mtime_seconds").values()} == {MTIME}


# --- stricter than node_exporter, by design ---------------------------------------

STRICTER = {
    # case: (refused file, the family named in its log line, samples left of that family)
    "repeat-same-help": ("logrotate.prom", "job_last_run_seconds", {(("job", "certbot"),): 1733360000}),
    "repeat-same-labels": ("b.prom", "job_last_run_seconds", {(("job", "logrotate"),): 1733371200}),
    "repeat-conflict-help": ("b.prom", "job_last_run_seconds", {(("job", "logrotate"),): 1733371200}),
    "repeat-conflict-type": ("b.prom", "job_runs", {(("job", "logrotate"),): 12}),
    "repeat-no-help": ("sdb.prom", "disk_smart_ok", {(("disk", "sda"),): 1}),
    "repeat-help-and-no-help": ("sdb.prom", "disk_smart_ok", {(("disk", "sda"),): 1}),
}


@pytest.mark.parametrize("case", sorted(STRICTER))
def test_a_family_another_file_defined_refuses_the_later_file(case, tmp_path, backend_name):
    refused, family, left = STRICTER[case]
    directory = copy_case(case, tmp_path)
    out, err = run_agent(directory, backend_name)
    mine = Exposition(out)
    assert scrape_error(mine) == 1
    kept = {name for name in os.listdir(directory)} - {refused}
    assert mtime_files(mine, directory) == kept
    assert {labels: float(v) for labels, v in mine.family(family).items()} == left
    assert "other_in_b" not in mine.types  # nothing at all from the refused file
    lines = [line for line in err.splitlines() if refused in line]
    assert len(lines) == 1 and family in lines[0] and "clashes with the file" in lines[0], err


def test_the_agents_own_families_refuse_a_file_that_defines_them(tmp_path, backend_name):
    # node_exporter prints the file's node_textfile_scrape_error 7 instead of
    # its own 0, and the fake mtime next to the real ones.
    directory = copy_case("builtin-clash", tmp_path)
    out, err = run_agent(directory, backend_name)
    mine = Exposition(out)
    assert mine.family("node_textfile_scrape_error") == {(): "1"}
    assert "node_textfile_mtime_seconds" not in mine.types
    for name, family in (("same-help.prom", "node_textfile_scrape_error"),
                         ("mtime.prom", "node_textfile_mtime_seconds")):
        (line,) = [line for line in err.splitlines() if name in line]
        assert f"its family {family} clashes with the agent's own {family}" in line


CLASHES = {
    "disk.prom": "# TYPE node_disk_read_bytes_total counter\nnode_disk_read_bytes_total{device=\"x\"} 1\n",
    "load.prom": "node_load1 5\n",  # whether or not the loadavg collector runs
    "net.prom": "# TYPE node_network_receive_bytes gauge\nnode_network_receive_bytes 1\n",  # its OpenMetrics name
    "own.prom": "agent_anything 1\n",  # the agent's namespace
    "within.prom": "# TYPE k counter\nk 1\n# TYPE k_total gauge\nk_total 2\n",  # k_total twice in OpenMetrics
    "ok.prom": "# HELP fine_metric Fine.\n# TYPE fine_metric gauge\nfine_metric 3\n",
}


@pytest.mark.parametrize("collectors", [("--collector.disable-defaults", "--collector.textfile"), ()],
                         ids=["textfile-alone", "defaults"])
def test_clashes_with_the_agents_names_in_either_format(collectors, tmp_path, backend_name):
    directory = write_case(tmp_path, CLASHES)
    for fmt in ("prometheus", "openmetrics"):
        out, err = run_agent(directory, backend_name, collectors=collectors, fmt=fmt)
        if fmt == "prometheus":
            mine = Exposition(out)  # no duplicate series (Exposition refuses them)
            assert mtime_files(mine, directory) == {"ok.prom"}
            assert scrape_error(mine) == 1 and mine.family("fine_metric") == {(): "3.0"}
            assert "node_load1 5" not in out and "agent_anything" not in out
            if collectors:
                assert "node_load1" not in mine.types
            else:
                promtool_check(out)
        else:
            openmetrics_families(out)  # parses, with no family twice
        refused = [line for line in err.splitlines() if "refused" in line]
        assert len(refused) == 5, err
        assert any("within.prom" in line and "its own family k" in line for line in refused)
        assert any("own.prom" in line and "agent_*" in line for line in refused)


def test_grammar_files_the_agent_refuses_and_node_exporter_accepts(tmp_path, backend_name):
    directory = copy_case("grammar", tmp_path)
    out, err = run_agent(directory, backend_name)
    mine = Exposition(out)
    assert {"dup_sample.prom", "neg_counter.prom"}.isdisjoint(mtime_files(mine, directory))
    assert "j" not in mine.types and "k" not in mine.types
    assert "dup_sample.prom refused: the series j is given twice" in err
    assert "neg_counter.prom refused: the counter k is -5.0" in err


def test_a_label_name_with_two_underscores_is_refused_not_a_crash(tmp_path, backend_name):
    # node_exporter 1.5.0 panics on this file (fixture README).
    directory = write_case(tmp_path, {"under.prom": 'n{__x="1"} 1\n', "ok.prom": "ok 1\n"})
    out, err = run_agent(directory, backend_name)
    assert mtime_files(Exposition(out), directory) == {"ok.prom"}
    assert "under.prom refused: line 1: label name '__x'" in err


# --- files that block, grow or vanish; the option ------------------------------------

def test_a_fifo_a_huge_file_and_an_unreadable_one_are_refused_without_stalling(tmp_path, backend_name):
    directory = write_case(tmp_path, {"ok.prom": "ok 1\n", "secret.prom": "s 1\n"})
    os.mkfifo(directory / "pipe.prom")  # nobody ever writes: a blocking open would hang
    with open(directory / "huge.prom", "wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)
    os.symlink(directory / "gone", directory / "dangling.prom")
    (directory / "secret.prom").chmod(0)
    out, err = run_agent(directory, backend_name)
    mine = Exposition(out)
    readable = os.access(directory / "secret.prom", os.R_OK)  # root reads it anyway
    assert mtime_files(mine, directory) == {"ok.prom"} | ({"secret.prom"} if readable else set())
    assert scrape_error(mine) == 1
    assert "pipe.prom refused: not a regular file (a FIFO)" in err
    assert f"huge.prom refused: larger than {16 * 1024 * 1024} bytes" in err
    assert "dangling.prom refused: No such file or directory" in err


def test_a_missing_directory_is_an_error_of_the_collector_not_a_failed_source(tmp_path, backend_name):
    out, err = run_agent(tmp_path / "nope", backend_name)
    mine = Exposition(out)
    assert scrape_error(mine) == 1 and "node_textfile_mtime_seconds" not in mine.types
    assert mine.family("agent_source_success") == {(("source", "textfile"),): "1"}
    assert f"{tmp_path / 'nope'} refused: cannot list the directory: No such file or directory" in err


def test_without_a_directory_the_collector_exposes_nothing(backend_name):
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", backend_name, "--procfs", str(TREE)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "node_textfile" not in r.stdout
    assert 'agent_source_success{source="textfile"} 1' in r.stdout


@pytest.mark.parametrize("where", ["flag", "file"])
def test_a_relative_directory_is_refused_at_start_up(where, tmp_path):
    args = ["--collector.textfile.directory", "textfiles"]
    if where == "file":
        conf = tmp_path / "agent.conf"
        conf.write_text("[collector.textfile]\ndirectory = textfiles\n")
        args = ["--config", str(conf)]
    r = subprocess.run([sys.executable, "-m", "agent", "--once", *args], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "'textfiles' is not an absolute path" in r.stderr


def test_the_directory_from_the_config_file(tmp_path, backend_name):
    directory = copy_case("good", tmp_path)
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[collector.textfile]\ndirectory = {directory}\n")
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--backend", backend_name, "--procfs", str(TREE),
                        "--config", str(conf)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "apt_upgrades_pending" in r.stdout


def test_a_bad_file_is_logged_once_and_its_repair_once(tmp_path):
    directory = write_case(tmp_path, {"ok.prom": "ok 1\n", "bad.prom": "bad 1 123\n"})
    with AgentProcess("--listen", "127.0.0.1:0", "--procfs", str(TREE), "--collector.disable-defaults",
                      "--collector.textfile", "--collector.textfile.directory", str(directory)) as agent:
        for _ in range(3):
            assert "node_textfile_scrape_error 1" in agent.metrics_text()
        (directory / "bad.prom").write_text("bad 1\n")
        assert "node_textfile_scrape_error 0" in agent.metrics_text()
        agent.metrics_text()
        assert wait_for(lambda: "accepted again" in agent.log())
        log = agent.log()
    assert log.count("bad.prom refused") == 1 and log.count("bad.prom accepted again") == 1, log



def test_a_file_rewritten_in_place_is_served_with_its_new_values(tmp_path, backend_name):
    """The collector keeps a settled file's parse while its stat stays the
    same: a rewrite of the same size with its mtime set back must still be
    seen, at once and after the file has settled."""
    directory = write_case(tmp_path, {"job.prom": "job_value 1.5\n"})
    path = directory / "job.prom"

    def rewrite(value: float) -> None:
        path.write_text(f"job_value {value}\n")
        os.utime(path, (MTIME, MTIME))

    with AgentProcess("--listen", "127.0.0.1:0", "--procfs", str(TREE), "--backend", backend_name,
                      "--collector.disable-defaults", "--collector.textfile",
                      "--collector.textfile.directory", str(directory)) as agent:
        assert "job_value 1.5\n" in agent.metrics_text()
        rewrite(2.5)  # within the same jiffy as the first write, perhaps
        assert "job_value 2.5\n" in agent.metrics_text()
        time.sleep(1.2)  # settled: the next read is kept
        assert "job_value 2.5\n" in agent.metrics_text()
        assert "job_value 2.5\n" in agent.metrics_text()
        rewrite(3.5)
        assert "job_value 3.5\n" in agent.metrics_text()
        path.unlink()
        assert "job_value" not in agent.metrics_text()
        rewrite(4.5)
        assert "job_value 4.5\n" in agent.metrics_text()


# --- the formats -------------------------------------------------------------------

def openmetrics_families(text: str) -> dict:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    families = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, family.name
        families[family.name] = family
    return families


def test_openmetrics_output_of_the_files_parses_strictly(tmp_path, backend_name):
    # promtool 2.42's `check metrics` reads text 0.0.4 only; prometheus_client's
    # OpenMetrics parser is the strict reader here (histogram and summary
    # rules, canonical le, counters' _total).
    for case in ("good", "grammar"):
        directory = copy_case(case, tmp_path / "om")
        out, _ = run_agent(directory, backend_name, fmt="openmetrics")
        families = openmetrics_families(out)
        if case == "good":
            runs = families["backup_runs"]
            assert runs.type == "counter" and {s.name for s in runs.samples} == {"backup_runs_total"}
            assert families["typed_without_help"].samples[0].name == "typed_without_help_total"
            assert families["untyped_without_help"].type == "unknown"
            assert families["request_duration_seconds"].type == "histogram"
        else:
            assert [s.labels["le"] for s in families["e"].samples if s.name == "e_bucket"] == ["1.0", "+Inf"]


def test_promtool_is_clean_on_the_agents_output_with_textfile_families(tmp_path, backend_name):
    directory = copy_case("good", tmp_path)
    # kinds.prom's counter without _total is the file's own lint finding.
    (directory / "kinds.prom").write_text(
        (directory / "kinds.prom").read_text().replace("typed_without_help", "typed_without_help_total"))
    out, _ = run_agent(directory, backend_name, collectors=())
    assert "request_duration_seconds_bucket" in out and "node_load1" in out
    promtool_check(out)


def test_a_file_name_that_is_not_utf8_is_refused_not_a_broken_exposition(tmp_path, backend_name):
    # It would be a label value (and HELP text), and two such names could
    # read as one once their bad bytes were replaced.
    directory = write_case(tmp_path, {"ok.prom": "ok 1\n"})
    for name in (b"bad\xff.prom", b"bad\xfe.prom"):
        with open(os.path.join(os.fsencode(directory), name), "w") as f:
            f.write("bad_metric 1\n")
    out, err = run_agent(directory, backend_name)
    mine = Exposition(out)
    assert mtime_files(mine, directory) == {"ok.prom"} and "bad_metric" not in out
    assert "bad\\xff.prom refused: its name is not UTF-8" in err and "bad\\xfe.prom refused" in err


def test_a_directory_that_is_not_utf8_is_refused_at_start_up():
    r = subprocess.run([sys.executable, "-m", "agent", "--once", "--collector.textfile.directory",
                        os.fsdecode(b"/var/lib/text\xff")], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "'/var/lib/text\\xff' is not UTF-8" in r.stderr
