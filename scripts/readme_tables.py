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

from agent import collectors  # noqa: E402


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
            cell = "none" if shown == "none" else "`" + shown.replace("|", "\\|") + "`"
            rows.append(f"| `--collector.{entry.name}.{option.name} {option.metavar}` | {cell} | "
                        f"{option.help.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


TABLES = {"collectors": collectors_table, "collector-options": options_table}


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
