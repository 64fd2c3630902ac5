"""The /proc walk of the processes collector (csrc/walk_procs.c and its
twin agent.procfs.procs): what it reads from the fixture tree and from this
machine's kernel, on both backends; the C and Python walks byte for byte on
the fixture tree, on every prefix of a stat file and on mutations of it;
the buffers grown when a walk outgrows them; and the struct layouts."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.procfs import layout as L
from agent.procfs.procs import ProcError, parse_pid
from backends import load_backend

HERE = Path(__file__).parent
TREE = HERE / "fixtures" / "procfs-processes" / "linux-6.18-processes"
REAL_LINE = (TREE / "1" / "stat").read_bytes()


def open_dir(path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def walk(backend, root, flags=L.PROCS_THREADS, rows_hint=0):
    fd = open_dir(root)
    try:
        return backend.walk_procs(fd, flags, rows_hint)
    finally:
        os.close(fd)


def outcome(backend, root, flags=L.PROCS_THREADS, rows_hint=0):
    """The walk's bytes, or the error as a comparable tuple."""
    try:
        return walk(backend, root, flags, rows_hint)
    except ProcError as exc:
        return ("ProcError", exc.code, exc.pid, exc.tid)
    except OSError as exc:
        return ("OSError", exc.errno, exc.filename)


def decoded(result):
    walk_bytes, rows, comms = result
    head = L.PROC_WALK.unpack(walk_bytes)
    states = {chr(b): n for b, n in enumerate(head[5:261]) if n}
    thread_states = {chr(b): n for b, n in enumerate(head[261:]) if n}
    procs = {p.pid: (p, comms[p.comm_off:p.comm_off + p.comm_len]) for p in L.decode_procs(rows)}
    return head[:5], states, thread_states, procs


def stat_line(pid, comm=b"x", state="S", threads=1, utime=0, stime=0, start=1000, rss=0) -> bytes:
    fields = [state, "1", str(pid), str(pid), "0", "-1", "4194304", "100", "0", "0", "0", str(utime), str(stime),
              "0", "0", "20", "0", str(threads), "0", str(start), "10485760", str(rss),
              "18446744073709551615"] + ["0"] * 12 + ["17"] + ["0"] * 14
    return f"{pid} (".encode() + comm + b") " + " ".join(fields).encode() + b"\n"


def make_proc(root: Path, pid: int, data: bytes, tasks: dict | None = None):
    (root / str(pid) / "task" / str(pid)).mkdir(parents=True, exist_ok=True)
    (root / str(pid) / "stat").write_bytes(data)
    for tid, tdata in (tasks or {}).items():
        (root / str(pid) / "task" / str(tid)).mkdir(parents=True, exist_ok=True)
        (root / str(pid) / "task" / str(tid) / "stat").write_bytes(tdata)


# What the fixture tree holds (its README), written down here, not read back
# from a walk.
HOSTILE_COMMS = {100: b"my proc", 101: b"a) R 1 2 3 (b", 102: b"new\nline", 103: b"\xff\xfe not utf-8",
                 104: b"", 105: b'quote"back\\slash', 106: b"((()))"}
STATE_PIDS = dict(zip(range(200, 212), "RSDZTtXxKWPI"))


def test_walk_reads_every_process_of_the_fixture_tree(backend):
    head, states, thread_states, procs = decoded(walk(backend, TREE))
    assert set(procs) == {1, 2, 10, 13, 1960, 300, 310} | set(HOSTILE_COMMS) | set(STATE_PIDS)
    assert head[0] == len(procs) == 26
    for pid, comm in HOSTILE_COMMS.items():
        assert procs[pid][1] == comm, pid
    for pid, state in STATE_PIDS.items():
        assert chr(procs[pid][0].state) == state
        assert procs[pid][1] == b"state-" + state.encode()
    # Every state letter once, the hostile seven, 1, 2, 300 and bash sleep,
    # two kernel workers idle, 310 runs.
    assert states == {**{s: 1 for s in "DZTtXxKWP"}, "R": 2, "S": 1 + 7 + 4, "I": 1 + 2}
    # process 300: its own S, threads R and D (303 has no stat: gone);
    # process 1's 18 threads sleep.
    assert thread_states == {**{s: 1 for s in "ZTtXxKWP"}, "R": 3, "D": 2, "S": 12 - 1 + 18, "I": 3}
    p300 = procs[300][0]
    assert (p300.threads, p300.utime, p300.stime, p300.starttime, p300.rss_pages) == (4, 123456, 7890, 7000, 262144)
    p310 = procs[310][0]
    assert (p310.utime, p310.starttime, p310.rss_pages) == (2**64 - 1, 2**64 - 1, 2**52 - 1)
    p1 = procs[1][0]
    assert (p1.pid, chr(p1.state), p1.threads, p1.utime, p1.stime, p1.starttime, p1.rss_pages) == \
        (1, "S", 18, 541, 2132, 24, 3346)  # fields 14, 15, 20, 22, 24 of 1/stat


def test_without_the_thread_flag_no_thread_is_read(backend):
    _, states, thread_states, procs = decoded(walk(backend, TREE, flags=0))
    assert thread_states == {} and len(procs) == 26 and sum(states.values()) == 26


FIXTURE_TREES = [TREE, *sorted((HERE / "fixtures" / "procfs-host").glob("linux-*")),
                 *sorted((HERE / "fixtures" / "procfs").glob("linux-*"))]


@pytest.mark.parametrize("tree", FIXTURE_TREES, ids=[t.name for t in FIXTURE_TREES])
def test_the_c_and_python_walks_agree_byte_for_byte_on_every_fixture_tree(tree):
    c, py = load_backend("c"), load_backend("python")
    for flags in (0, L.PROCS_THREADS):
        assert outcome(c, tree, flags) == outcome(py, tree, flags)


@pytest.mark.parametrize("name, pid", [(b"1", 1), (b"4194303", 4194303), (b"0", None), (b"01", None),
                                       (b"+1", None), (b"-1", None), (b"self", None), (b"1a", None),
                                       (b"9" * 19, int("9" * 19)), (b"1" * 20, None), (b"", None)])
def test_process_directory_names(name, pid):
    assert parse_pid(name) == pid


def test_parity_on_every_prefix_and_mutations_of_a_stat_file(tmp_path):
    """Both walks on a one-process tree whose stat is every prefix of a real
    line, then seeded mutations of it and of a hostile one: the same bytes
    or the same error."""
    c, py = load_backend("c"), load_backend("python")
    root = tmp_path / "proc"
    (root / "7" / "task" / "7").mkdir(parents=True)
    stat = root / "7" / "stat"
    hostile = stat_line(7, b"a) b (c", threads=1, utime=5)
    inputs = [REAL_LINE[:n] for n in range(len(REAL_LINE) + 1)]
    rng = random.Random(14)
    alphabet = b"0123456789 ()\n\tabcRSZ-\xff\x00"
    for base in (REAL_LINE, hostile):
        for _ in range(300):
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    del data[min(pos, len(data) - 1)]
                elif op == 1:
                    data.insert(pos, rng.choice(alphabet))
                elif data:
                    data[min(pos, len(data) - 1)] = rng.choice(alphabet)
            inputs.append(bytes(data))
    inputs += [b"7 (x) S" + b" 1" * 30 + b" 99999999999999999999",
               REAL_LINE.replace(b" 24 ", b" 18446744073709551616 ", 1),
               b"(" * 5000, b"7 (" + b"x" * 4090 + b") S 1"]
    outcomes = set()
    for data in inputs:
        stat.write_bytes(data)
        mine, theirs = outcome(c, root, L.PROCS_THREADS), outcome(py, root, L.PROCS_THREADS)
        assert mine == theirs, data
        outcomes.add(mine[0] if isinstance(mine[0], str) else "ok")
    assert outcomes == {"ok", "ProcError"}


def test_a_malformed_stat_names_its_process_and_thread(backend, tmp_path):
    root = tmp_path / "proc"
    make_proc(root, 5, stat_line(5))
    make_proc(root, 6, b"6 (x) S 1 2\n")
    with pytest.raises(ProcError) as info:
        walk(backend, root)
    assert (info.value.code, info.value.pid, info.value.tid) == (L.EFORMAT, 6, 0)
    assert info.value.path == "6/stat"
    make_proc(root, 6, stat_line(6, threads=2), tasks={61: stat_line(61, state="RR")})
    with pytest.raises(ProcError) as info:
        walk(backend, root)
    assert (info.value.code, info.value.pid, info.value.tid) == (L.EFORMAT, 6, 61)
    # Without the thread states, the thread's file is never read.
    assert decoded(walk(backend, root, flags=0))[0][0] == 2
    make_proc(root, 6, stat_line(6).replace(b" 1000 ", b" 18446744073709551616 "))
    with pytest.raises(ProcError) as info:
        walk(backend, root)
    assert (info.value.code, info.value.pid) == (L.ERANGE, 6)


def test_an_unreadable_tree_is_an_oserror(backend, tmp_path):
    root = tmp_path / "proc"
    make_proc(root, 5, stat_line(5))
    (root / "5" / "stat").unlink()
    (root / "5" / "stat").mkdir()  # read(2) of a directory: EISDIR, not a vanished process
    with pytest.raises(OSError) as info:
        walk(backend, root)
    assert info.value.filename == "5"


def test_buffers_grow_for_many_processes_and_long_comms(tmp_path):
    """More processes than the first row array, and comms longer than the
    first guess: the C walk grows both and returns what the Python walk does."""
    c, py = load_backend("c"), load_backend("python")
    root = tmp_path / "proc"
    for pid in range(1, 1501):
        comm = b"c" * (200 if pid % 3 == 0 else pid % 17)
        make_proc(root, pid, stat_line(pid, comm=comm, utime=pid))
    mine = walk(c, root, rows_hint=0)
    assert mine == walk(py, root)
    assert decoded(mine)[0][:2] == (1500, sum(200 if p % 3 == 0 else p % 17 for p in range(1, 1501)))


def test_the_live_kernel_walk_finds_a_child_with_its_comm_and_threads(backend):
    """On this machine's /proc: a child whose comm holds a space and a ')'
    (set through /proc/self/comm) is found with it, its thread count, and its
    threads' states counted."""
    code = ("import threading, time, sys\n"
            "open('/proc/self/comm', 'w').write('odd) name')\n"
            "evt = threading.Event()\n"
            "for _ in range(3): threading.Thread(target=evt.wait, daemon=True).start()\n"
            "print('ready', flush=True); sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        head, states, thread_states, procs = decoded(walk(backend, "/proc"))
        row, comm = procs[child.pid]
        assert comm == b"odd) name"
        assert row.threads == 4 and chr(row.state) in "RS"  # about to block on stdin, or blocked
        assert row.starttime > 0 and row.rss_pages > 0
        assert sum(thread_states.values()) >= sum(p.threads for p, _ in procs.values()) - 50
        assert os.getpid() in procs
    finally:
        child.stdin.close()
        child.wait(10)


def test_struct_layouts_match_the_c_header():
    load_backend("c")
    from agent._agent_c import ffi, lib
    assert ffi.sizeof("struct agent_proc") == L.PROC.size
    assert [name for name, _ in ffi.typeof("struct agent_proc").fields] == list(L.Proc._fields)
    for i, name in enumerate(L.Proc._fields):
        assert ffi.offsetof("struct agent_proc", name) == 8 * i
    assert ffi.sizeof("struct agent_proc_walk") == L.PROC_WALK.size
    assert ffi.offsetof("struct agent_proc_walk", "states") == L.PROC_WALK_HEAD.size
    assert ffi.offsetof("struct agent_proc_walk", "thread_states") == L.PROC_WALK_HEAD.size + 256 * 8
    assert lib.AGENT_PROCS_THREADS == L.PROCS_THREADS and lib.AGENT_PROC_STAT_MAX == L.PROC_STAT_MAX


def test_a_tree_without_processes_walks_empty(backend, tmp_path):
    shutil.copytree(TREE / "sys", tmp_path / "sys")
    head, states, thread_states, procs = decoded(walk(backend, tmp_path))
    assert head[:2] == (0, 0) and not states and not thread_states and not procs


def test_processes_exiting_during_the_walk_are_skipped(backend):
    """Walks of this machine's /proc while a child starts and reaps short
    processes as fast as it can: every walk succeeds (a process gone between
    the listing and its stat, or between its task listing and a thread's
    stat, is skipped, not an error), and some walk saw a churned process."""
    code = ("import os, sys, time, threading\n"
            "end = time.monotonic() + 10\n"
            "def churn():\n"
            "    while time.monotonic() < end:\n"
            "        t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
            "threading.Thread(target=churn, daemon=True).start()\n"
            "print('ready', flush=True)\n"
            "while time.monotonic() < end and not os.path.exists(sys.argv[1]):\n"
            "    pid = os.fork()\n"
            "    if pid == 0: os._exit(0)\n"
            "    os.waitpid(pid, 0)\n")
    stop = Path(os.environ.get("TMPDIR", "/tmp")) / f"walk-churn-stop-{os.getpid()}"
    child = subprocess.Popen([sys.executable, "-c", code, str(stop)], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        seen = set()
        deadline = time.monotonic() + 3
        walks = 0
        while time.monotonic() < deadline and walks < 400:
            _, _, _, procs = decoded(walk(backend, "/proc"))
            seen.update(pid for pid, (row, comm) in procs.items() if pid > child.pid and comm == b"python")
            walks += 1
        assert walks >= 20 and seen, (walks, len(seen))
    finally:
        stop.touch()
        child.wait(15)
        stop.unlink()
