"""The agent's own options, each declared once (agent.config.SETTINGS):
every flag and [agent] key that comes from a declaration works, an error
names the flag as the user can type it or the key with its file, and the
sample configuration and the README follow the declarations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import SETTINGS, ConfigError, load

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "monitoring-agent.conf"
NO_DEFAULT = "/nonexistent/monitoring-agent.conf"
# Options whose parser refuses a word: every bounded number, choice, address
# and yes/no option.
CHECKED = [s for s in SETTINGS
           if s.bounds() or s.metavar.startswith("{") or s.name in ("listen", "health_requires_auth")]


@pytest.mark.parametrize("setting", CHECKED, ids=lambda s: s.name)
def test_a_bad_flag_value_names_a_flag_the_agent_takes(setting):
    with pytest.raises(ConfigError) as caught:
        load([setting.flag, "nonsense"], default_config=NO_DEFAULT)
    named = str(caught.value).split(":")[0]
    assert named in setting.all_flags
    # The flag it names is one the command line accepts.
    with pytest.raises(ConfigError, match=f"^{re.escape(named)}: "):
        load([named, "nonsense"], default_config=NO_DEFAULT)


@pytest.mark.parametrize("setting", [s for s in CHECKED if s.file], ids=lambda s: s.name)
def test_a_bad_file_value_names_the_key_and_the_file(setting, tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\n{setting.key} = nonsense\n")
    with pytest.raises(ConfigError, match=f"^config file {re.escape(str(conf))}: {setting.name}: "):
        load(["--config", str(conf)], default_config=NO_DEFAULT)


def test_a_nul_in_a_file_path_is_one_line_and_exit_2(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_bytes(b"[agent]\nlisten = 127.0.0.1:0\npidfile = " + str(tmp_path).encode() + b"/a\0b.pid\n")
    r = subprocess.run([sys.executable, "-m", "agent", "--config", str(conf)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr == f"monitoring-agent: error: config file {conf}: pidfile: a path cannot hold a NUL byte\n"


def test_the_sample_configuration_shows_every_key():
    text = SAMPLE.read_text()
    shown = set(re.findall(r"^#? ?([a-z][a-z-]*) =", text, re.M))
    missing = [s.key for s in SETTINGS if s.file and s.key not in shown]
    assert not missing, f"{SAMPLE.name} does not show {missing}"


def test_the_readme_table_is_generated_from_the_declarations():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- agent-options:begin[^>]*-->\n(.*?)<!-- agent-options:end -->", readme, re.S)
    assert table, "README.md has no generated table of the agent's options"
    rows = table.group(1).splitlines()[2:]
    for setting in SETTINGS:
        (row,) = [r for r in rows if r.startswith((f"| `{setting.flag} ", f"| `{setting.flag}`"))]
        assert (f"`{setting.key}`" if setting.file else "(flag only)") in row
