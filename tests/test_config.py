"""Configuration: defaults < file < flags, and one-line errors with exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import Config, ConfigError, load, parse_listen

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "monitoring-agent.conf"
NO_DEFAULT = "/nonexistent/monitoring-agent.conf"


def run_agent(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_defaults_without_a_file():
    assert load([], default_config=NO_DEFAULT) == Config()
    assert Config().listen_address == ("0.0.0.0", 8080)


def test_sample_config_equals_the_built_in_defaults():
    loaded = load(["--config", str(SAMPLE)], default_config=NO_DEFAULT)
    # Equal values; each says the file gave it.
    assert loaded._replace(origins={}) == Config(config=str(SAMPLE))
    assert set(loaded.origins.values()) == {"file"}


def test_file_keys_take_dashes_or_underscores_and_flags_override(tmp_path):
    f = tmp_path / "a.conf"
    f.write_text("[agent]\ncpu-window = 5\nnet_exclude = ^veth\nlisten = 127.0.0.1:9000\n")
    c = load(["--config", str(f), "--listen", "[::1]:9100"], default_config=NO_DEFAULT)
    assert c.cpu_window == 5.0
    assert c.net_exclude == "^veth"
    assert c.listen_address == ("::1", 9100)


def test_default_config_file_is_used_when_present(tmp_path):
    f = tmp_path / "default.conf"
    f.write_text("[agent]\nlog-level = DEBUG\n")
    assert load([], default_config=str(f)).log_level == "debug"


def test_disk_include_alone_replaces_the_default_exclude():
    c = load(["--disk-include", "^sd"], default_config=NO_DEFAULT)
    assert c.disk_exclude == ""
    c = load(["--disk-include", "^sd", "--disk-exclude", "1$"], default_config=NO_DEFAULT)
    assert c.disk_exclude == "1$"


@pytest.mark.parametrize("value, expected", [
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    (":9100", ("0.0.0.0", 9100)),
    ("[::]:80", ("::", 80)),
    ("localhost:0", ("localhost", 0)),
])
def test_listen_forms(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("args, names", [
    (["--cpu-window", "abc"], "--cpu-window"),
    (["--cpu-window", "0"], "--cpu-window"),
    (["--cpu-window", "nan"], "--cpu-window"),
    (["--listen", "8080"], "--listen"),
    (["--listen", "::1:80"], "--listen"),
    (["--listen", "h:65536"], "--listen"),
    (["--backend", "rust"], "--backend"),
    (["--disk-include", "("], "--disk-include"),
    (["--log-level", "loud"], "--log-level"),
    (["--format", "json"], "--format"),
    (["--no-such-flag"], "--no-such-flag"),
])
def test_bad_flags_are_one_line_and_exit_2(args, names):
    with pytest.raises(ConfigError, match=names.lstrip("-")):
        load(args, default_config=NO_DEFAULT)
    r = run_agent(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("monitoring-agent: error:") and names in lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("text, needle", [
    ("[agent]\nbogus = 1\n", "bogus"),
    ("[agent]\ncpu-window = -1\n", "cpu_window"),
    ("[other]\nlisten = :1\n", "[other]"),
    ("listen = :1\n", "section"),
    ("[agent]\nlisten\n", "listen"),
])
def test_bad_config_files_are_one_line_and_exit_2(tmp_path, text, needle):
    f = tmp_path / "bad.conf"
    f.write_text(text)
    r = run_agent("--config", str(f))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and str(f) in lines[0], r.stderr


def test_missing_config_file_and_procfs_are_errors(tmp_path):
    r = run_agent("--config", str(tmp_path / "absent.conf"))
    assert r.returncode == 2 and "absent.conf" in r.stderr
    r = run_agent("--procfs", str(tmp_path / "noproc"), "--once")
    assert r.returncode == 2 and "--procfs" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_version():
    r = run_agent("--version")
    assert r.returncode == 0 and r.stdout.startswith("monitoring-agent ")


@pytest.mark.parametrize("columns, width", [("120", 120), (" 120", 120), ("+100", 100), ("0", 80),
                                            ("-5", 80), ("\u00b2", 80), ("wide", 80), (None, 80)])
def test_help_width_follows_columns_as_shutil_does(monkeypatch, columns, width):
    # stdout is not a terminal under pytest, so the fallback is 80.
    from agent.config import _terminal_columns
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == width
