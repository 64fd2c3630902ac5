"""Turn a pytest-benchmark JSON file into the Markdown tables of
docs/BENCHMARKS.md: medians per benchmark, and the Python/C ratio of each
pair measured in the same run.

    python benchmarks/report.py .benchmarks/run.json
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def main(path: str) -> None:
    with open(path) as f:
        run = json.load(f)
    rows = defaultdict(dict)  # (test, rest of params) -> backend -> median
    for b in run["benchmarks"]:
        m = re.match(r"(\w+)\[(.*)\]", b["name"])
        if m is None:
            continue  # the soak: its figures are in extra_info, not a median
        test, params = m.group(1), m.group(2).split("-")
        backend = params[0] if params[0] in ("c", "python") else "-"
        rest = "-".join(p for p in params if p not in ("c", "python"))
        rows[(test, rest)][backend] = b["stats"]["median"]
    # Per-source benchmarks also summed over the six sources of each tree.
    totals = defaultdict(lambda: defaultdict(float))
    for (test, rest), by in rows.items():
        if test in ("test_parse", "test_read_and_parse"):
            for backend, median in by.items():
                totals[(test, rest.split("-")[0] + "-all six")][backend] += median
    rows.update(totals)
    machine = run.get("machine_info", {})
    print(f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
          f"Python {machine.get('python_version', '?')}, {run.get('datetime', '')}\n")
    print("| benchmark | tree-source | C median (µs) | Python median (µs) | Python / C |")
    print("|---|---|---:|---:|---:|")
    for (test, rest), by in sorted(rows.items()):
        c, py, other = by.get("c"), by.get("python"), by.get("-")
        if other is not None:
            print(f"| {test} | {rest} | {fmt_us(other)} | | |")
            continue
        ratio = f"{py / c:.1f}×" if c and py else ""
        print(f"| {test} | {rest} | {fmt_us(c) if c else ''} | {fmt_us(py) if py else ''} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
