#!/usr/bin/env python3
"""Differential check of the two backends (docs/PARSERS.md): for any input,
agent.procfs.cbackend.parse_<source> and agent.procfs.pybackend.parse_<source>
give the same bytes, or the same ParseError code and line.

    .venv/bin/python fuzz/differential.py [SECONDS] [--seed N] [--source S ...]

First every seed is compared as is: the fixture trees, fuzz/corpus/,
fuzz/regressions/ and, when fuzz/run.sh has been run, the inputs libFuzzer
kept in fuzz/build/corpus/ (coverage-rich, often malformed).  Then random
mutations of the seeds (byte edits, grammar tokens, boundary numbers, names
around 64 bytes, white space and its look-alikes, line shuffles, splices)
until SECONDS (default 60) have passed.  Any other exception from either side
counts as a disagreement too.

Each disagreement is minimised (bytes removed while the two sides still
disagree the same way), printed with both outcomes, and written to
fuzz/build/differential/<source>-<k>.bin.  Exit status 1 when there was one.
The Python parsers are not changed here: PARSERS.md decides which side is
wrong, and the report says so.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from agent.procfs import cbackend, layout  # noqa: E402
from agent.procfs import pybackend  # noqa: E402

SOURCES = {"stat": "stat", "meminfo": "meminfo", "diskstats": "diskstats",
           "netdev": "net/dev", "loadavg": "loadavg", "uptime": "uptime"}
MAX_LEN = 65536

WS = [b" ", b"\t", b"\r", b"\x0b", b"\x0c"]
NOT_WS = [b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\x85", b"\xa0", b"\x00"]
TOKENS = [b"\n", b"\r\n", b":", b"/", b".", b"0", b"9", b"-", b"+", b"_", b"e", b"x", b"\xff",
          b"cpu", b"cpu ", b"cpu0", b"ctxt", b"btime", b"processes", b"procs_running",
          b"procs_blocked", b"intr", b"MemTotal:", b"MemFree:", b"MemAvailable:",
          b"Active(file):", b"Inactive(file):", b"SUnreclaim:", b" kB", b"eth0:", b"lo:",
          b"team0:1:", b"sda", b"\xd9\xa4", b"\xef\xbc\x91", b"\xc2\xb2"]
NUMBERS = [str(2**64 - 1).encode(), str(2**64).encode(), b"0" * 30 + str(2**64 - 1).encode(),
           b"0" * 30 + str(2**64).encode(), b"99999999999999999999", b"9999999999999999999",
           b"10000000000000000000", b"0", b"00", b"123456789012345", b"1234567890123456",
           b"12345678901234.5", b"123456789012345.6", b"0.000000000000001", b"0.00000000000001",
           b"1.", b".5", b"1..2", b"1.2.3", b"1/2", b"/", b"1//2", b"/1", b"1/", b"5" * 5000,
           b"0" * 5000 + b"1"]


def outcome(parse, data: bytes):
    try:
        return ("ok", parse(data))
    except layout.ParseError as exc:
        return ("error", exc.code, exc.line)
    except Exception as exc:  # anything else is a bug on that side
        return ("exception", type(exc).__name__, str(exc)[:200])


def verdict(source: str, data: bytes):
    """None when the backends agree, else (C outcome, Python outcome)."""
    a = outcome(getattr(cbackend, "parse_" + source), data)
    b = outcome(getattr(pybackend, "parse_" + source), data)
    return None if a == b else (a, b)


def describe(source: str, result) -> str:
    if result[0] == "error":
        name = {v: k for k, v in vars(layout).items() if k.startswith("E") and isinstance(v, int)}
        return f"ParseError({name.get(result[1], result[1])}, line {result[2]})"
    if result[0] == "exception":
        return f"{result[1]}: {result[2]}"
    out = result[1]
    if source in ("diskstats", "netdev"):
        size = getattr(layout, source.upper()).size
        rows = getattr(layout, "decode_" + source)(out, len(out) // size)
        return f"{len(out) // size} rows {rows}"
    if source == "stat":
        return f"{layout.decode_stat(out)} rows {layout.decode_cpus(out)}"
    return repr(getattr(layout, "decode_" + source)(out))


def kind(v):
    """What must stay the same while minimising: the two outcome kinds/codes."""
    a, b = v
    return (a[0], a[1] if a[0] != "ok" else None, b[0], b[1] if b[0] != "ok" else None)


def minimise(source: str, data: bytes, budget: float = 10.0) -> bytes:
    want = kind(verdict(source, data))
    deadline = time.monotonic() + budget
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, shrunk = 0, False
        while i < len(data) and time.monotonic() < deadline:
            cand = data[:i] + data[i + chunk:]
            v = verdict(source, cand)
            if v is not None and kind(v) == want:
                data, shrunk = cand, True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return data


def seeds() -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {s: [] for s in SOURCES}
    for s, rel in SOURCES.items():
        for tree in sorted((ROOT / "tests/fixtures/procfs").iterdir()):
            if (tree / rel).is_file():
                out[s].append((tree / rel).read_bytes())
        for d in (ROOT / "fuzz/corpus" / s, ROOT / "fuzz/regressions" / s, ROOT / "fuzz/build/corpus" / s):
            if d.is_dir():
                out[s].extend(p.read_bytes()[:MAX_LEN] for p in sorted(d.iterdir()) if p.is_file())
    # The load target's inputs are a selector byte and a file.
    names = list(SOURCES)
    for d in (ROOT / "fuzz/corpus/load", ROOT / "fuzz/build/corpus/load"):
        if d.is_dir():
            for p in sorted(d.iterdir()):
                b = p.read_bytes()
                if b:
                    out[names[b[0] % 6]].append(b[1:MAX_LEN])
    return out


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    for _ in range(rng.randint(1, 5)):
        n = len(data)
        op = rng.randrange(13)
        i = rng.randint(0, n)
        if op == 0 and n:
            i = rng.randrange(n)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif op == 1:
            data = data[:i] + rng.choice(TOKENS + WS + NOT_WS) + data[i:]
        elif op == 2 and n:
            data = data[:i] + data[i + rng.randint(1, 16):]
        elif op == 3:
            # replace a digit run (or a decimal) with a boundary number
            spans = []
            j = 0
            while j < n and len(spans) < 400:
                if 48 <= data[j] <= 57:
                    k = j
                    while k < n and (48 <= data[k] <= 57 or data[k] == 46):
                        k += 1
                    spans.append((j, k))
                    j = k
                else:
                    j += 1
            if spans:
                a, b = rng.choice(spans)
                new = rng.choice(NUMBERS) if rng.random() < 0.7 else str(rng.randrange(2**70)).encode()
                data = data[:a] + new + data[b:]
        elif op == 4:
            lines = data.split(b"\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            data = b"\n".join(lines)
        elif op == 5:
            lines = data.split(b"\n")
            if len(lines) > 1:
                k = rng.randrange(len(lines) - 1)
                lines[k], lines[k + 1] = lines[k + 1], lines[k]
            data = b"\n".join(lines)
        elif op == 6:
            # a name or key around NAME_MAX
            lines = data.split(b"\n")
            k = rng.randrange(len(lines))
            f = lines[k].split()
            if f:
                which = rng.randrange(len(f)) if rng.random() < 0.5 else min(2, len(f) - 1)
                f[which] = bytes(rng.choice(b"ab0-:\xff\x00/.") for _ in range(rng.choice([0, 1, 63, 64, 65, 66])))
                sep = rng.choice(WS + NOT_WS) if rng.random() < 0.2 else b" "
                lines[k] = sep.join(f)
            data = b"\n".join(lines)
        elif op == 7 and n:
            j = rng.randrange(n)
            data = data[:j] + rng.choice(WS + NOT_WS + [b"\n"]) + data[j + 1:] if data[j:j + 1] in WS else data
        elif op == 8:
            data = data.replace(b"\n", b"\r\n", rng.randint(1, 5))
        elif op == 9:
            other = rng.choice(pool)
            a = rng.randint(0, len(other))
            data = data[:i] + other[a:a + rng.randint(1, 200)] + data[i:]
        elif op == 10:
            data = data[:rng.randint(0, n)]
        elif op == 11:
            # drop or repeat one field of a line
            lines = data.split(b"\n")
            k = rng.randrange(len(lines))
            f = lines[k].split(b" ")
            j = rng.randrange(len(f))
            if rng.random() < 0.5:
                del f[j]
            else:
                f.insert(j, f[j])
            lines[k] = b" ".join(f)
            data = b"\n".join(lines)
        else:
            data = data[:i] + b"\x00" + data[i:]
    return data[:MAX_LEN]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seconds", nargs="?", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--source", action="append", choices=list(SOURCES))
    args = ap.parse_args()
    if not cbackend.AVAILABLE:
        print(f"C backend not available: {cbackend.UNAVAILABLE_REASON}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    sources = args.source or list(SOURCES)
    pool = seeds()
    outdir = ROOT / "fuzz/build/differential"
    found: dict[str, set] = {s: set() for s in sources}
    counts = {s: 0 for s in sources}
    reports = []

    def record(source: str, data: bytes):
        v = verdict(source, data)
        counts[source] += 1
        if v is None or kind(v) in found[source]:
            return
        found[source].add(kind(v))
        small = minimise(source, data)
        v = verdict(source, small)
        outdir.mkdir(parents=True, exist_ok=True)
        path = outdir / f"{source}-{len(found[source])}.bin"
        path.write_bytes(small)
        reports.append(f"{source}: input {small!r} ({path.relative_to(ROOT)})\n"
                       f"    C:      {describe(source, v[0])}\n"
                       f"    Python: {describe(source, v[1])}")
        print(reports[-1], flush=True)

    start = time.monotonic()
    for s in sources:
        for data in pool[s]:
            record(s, data)
    seeded = dict(counts)
    deadline = start + args.seconds
    while time.monotonic() < deadline:
        s = rng.choice(sources)
        record(s, mutate(rng, rng.choice(pool[s]), pool[s]))
    total = sum(counts.values())
    print(f"seed {seed}: {total} inputs in {time.monotonic() - start:.0f}s ("
          + ", ".join(f"{s} {counts[s]} ({seeded[s]} seeds)" for s in sources) + f"); "
          f"{len(reports)} disagreement(s)")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main())
