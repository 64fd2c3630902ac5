"""The README's tables that are derived from declarations in the code,
written between their markers.

    python scripts/readme_tables.py           # rewrite README.md
    python scripts/readme_tables.py --check   # exit 1 if README.md is stale (a test runs this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from agent import collectors, config  # noqa: E402


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def collectors_table() -> str:
    rows = ["| collector | default | what it reads |", "|---|---|---|"]
    for entry in collectors.TABLE:
        rows.append(f"| `{entry.name}` | {'on' if entry.enabled_by_default else 'off'} | {entry.help} |")
    return "\n".join(rows) + "\n"


def options_table() -> str:
    rows = ["| option | default | |", "|---|---|---|"]
    for entry in collectors.TABLE:
        for option in entry.options:  # the common ones (timeout) are told in the text
            default = getattr(option.default, "pattern", option.default)  # a compiled regex: its text
            shown = "none" if default in (None, "") else str(default).lower() if isinstance(default, bool) \
                else str(default)
            cell = "none" if shown == "none" else _cell(f"`{shown}`")
            rows.append(f"| `--collector.{entry.name}.{option.name} {option.metavar}` | {cell} | "
                        f"{_cell(option.help)} |")
    return "\n".join(rows) + "\n"


def agent_options_table() -> str:
    rows = ["| flag | `[agent]` key | default | on SIGHUP | |", "|---|---|---|---|---|"]
    for setting in config.SETTINGS:
        # {a,b} as argparse shows choices, a|b here
        metavar = setting.metavar.strip("{}").replace(",", "|") if setting.metavar.startswith("{") \
            else setting.metavar
        flags = ", ".join(f"`{flag}`" if setting.action == "store_true" else f"`{flag} {metavar}`"
                          for flag in setting.all_flags)
        key = f"`{setting.key}`" if setting.file else "(flag only)"
        reload = "applied" if setting.reload else "at the next start"
        bounds = f" ({setting.bounds()})" if setting.bounds() else ""
        rows.append(f"| {_cell(flags)} | {key} | {_cell(setting.shown_default())}{bounds} | "
                    f"{reload if setting.file else ''} | {_cell(setting.doc or setting.help)} |")
    rows.append("| `--version` | (flag only) | | | print the version and exit |")
    return "\n".join(rows) + "\n"


TABLES = {"agent-options": agent_options_table, "collectors": collectors_table, "collector-options": options_table}


def render(readme: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin[^>]*-->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md: no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
        readme = pattern.sub(lambda m: m.group(1) + make() + m.group(2), readme)
    return readme


def main(argv: list[str]) -> int:
    path = ROOT / "README.md"
    current = path.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print("README.md: the derived tables are stale; run python scripts/readme_tables.py")
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
