"""The textfile collector: families that other programs write into `*.prom`
files in one directory (node_exporter's textfile collector).

Every file whose name ends in `.prom` (case-sensitive; hidden files too)
is read in name order and parsed strictly (agent/textformat.py).  A file
that cannot be read, does not parse, has a client-side timestamp, defines
a family another file already defined, or defines one that the agent
itself may expose (any `agent_` name, and every name the agent's own
collectors declare, in either exposition format) is refused as a whole:
none of its samples are served, it gets no mtime sample,
`node_textfile_scrape_error` is 1 and one log line names the file and why
(again only when the reason changes).  The other files are served.

node_exporter 1.5.0 differs on purpose in the cross-file cases: it merges a
family repeated in several files, keeps the first of clashing samples and
reports no error (docs/NODE_EXPORTER_COMPAT.md).
"""

from __future__ import annotations

import logging
import os
import stat
import time

from agent import metrics
from agent.collectors.base import NoData
from agent.metrics import Desc, Family, RawFamily
from agent.regular_files import read_regular
from agent.textformat import TextFormatError, parse_text

MTIME = metrics.gauge("node_textfile_mtime_seconds", "Unixtime mtime of textfiles successfully read.", ("file",))
SCRAPE_ERROR = metrics.gauge("node_textfile_scrape_error",
                             "1 if there was an error opening or reading a file, 0 otherwise")
NO_LABELS = ()
SUFFIX = ".prom"
# A textfile is a few kilobytes; a runaway script can write gigabytes.  A
# file past this is refused unread beyond it, so one scrape never holds
# more than this much of one file.
MAX_FILE_BYTES = 16 * 1024 * 1024
# A file last changed at least this long before it is read cannot change
# again without a later change time, so its parse is kept while its device,
# inode, size, mtime and ctime stay the same.  One changed more recently is
# parsed at every scrape until it settles: a second write within the file
# system's timestamp granularity (a jiffy) could leave all five unchanged.
SETTLED_NS = 1_000_000_000
# Names no file may define: the agent's own namespace, whichever of its
# modules (push, the HTTP server) happen to be loaded.
RESERVED_PREFIX = "agent_"


def parse_directory(text: str) -> str:
    """The --collector.textfile.directory option: empty (off) or an absolute
    path.  A relative one is refused rather than resolved: the agent's
    working directory is / once it runs with --daemon, and a reload parses
    the option again."""
    if text and not os.path.isabs(text):
        raise ValueError(f"{text!r} is not an absolute path")
    if not _utf8(text):  # it begins every `file` label value
        raise ValueError(f"'{_printable(text)}' is not UTF-8")
    return text


class TextfileCollector:
    source = "textfile"

    def __init__(self, directory: str, log: logging.Logger | None = None):
        self.directory = directory
        self.log = log or logging.getLogger("agent")
        # The reason each refused file was last refused, so that a file
        # that stays bad is logged once, not at every scrape.
        self._refused: dict[str, str] = {}
        # path -> (its stat key, its families, its mtime in seconds), for
        # the files that had settled when they were read (SETTLED_NS).
        self._parsed: dict[str, tuple] = {}

    def collect(self, context) -> list:
        if not self.directory:
            raise NoData("no --collector.textfile.directory")
        taken = _agent_names()
        files: list[Family] = []
        mtimes = []
        refused: dict[str, str] = {}
        parsed: dict[str, tuple] = {}
        try:
            names = sorted(name for name in os.listdir(self.directory) if name.endswith(SUFFIX))
        except OSError as exc:
            names = []
            refused[self.directory] = f"cannot list the directory: {exc.strerror or exc}"
        for position, name in enumerate(names):
            path = os.path.join(self.directory, name)
            if time.monotonic() > context.deadline:
                refused[self.directory] = f"out of time: {len(names) - position} files not read"
                break
            try:
                if not _utf8(name):
                    # The name is a label value and a HELP text, which must
                    # be UTF-8; replacing the bad bytes could give two
                    # files one name.
                    raise _Refused("its name is not UTF-8")
                families, mtime = self._read(path, parsed)
                accepted = _check_names(families, taken)
            except (OSError, TextFormatError, _Refused) as exc:
                refused[path] = _reason(exc)
                continue
            for family in families:
                for taken_name in metrics.exposed_names(family.name, family.type):
                    taken[taken_name] = f"the file {path}"
            files.extend(accepted(path))
            mtimes.append(((path,), mtime))
        self._log_changes(refused)
        self._parsed = parsed  # files gone or refused are parsed again if they come back
        out = files
        if mtimes:
            out.append(Family(MTIME, mtimes))
        out.append(Family(SCRAPE_ERROR, [(NO_LABELS, 1 if refused else 0)]))
        return out

    def _read(self, path: str, parsed: dict[str, tuple]) -> tuple[list, int]:
        """The families of one file and its mtime in whole seconds (as
        1.5.0: taken after the file is read); the parse of an earlier scrape
        when the file has not changed since (SETTLED_NS).  Kept parses go
        into `parsed`."""
        before = os.stat(path)
        key = _stat_key(before)
        kept = self._parsed.get(path)
        if kept is not None and kept[0] == key:
            parsed[path] = kept
            return kept[1], kept[2]
        if stat.S_ISDIR(before.st_mode):
            # 1.5.0 reads a directory named x.prom as an empty file (no error,
            # an mtime), and so does this, rather than fail a harmless name.
            data = b""
        else:
            # Regular files only, opened without blocking (a FIFO would stall
            # the scrape) and read up to the cap.
            data = read_regular(path, MAX_FILE_BYTES)
        families = parse_text(data)
        after = os.stat(path)
        mtime = after.st_mtime_ns // 1_000_000_000
        if _stat_key(after) == key and time.time_ns() - after.st_ctime_ns >= SETTLED_NS:
            parsed[path] = (key, families, mtime)
        return families, mtime

    def _log_changes(self, refused: dict[str, str]) -> None:
        for path, reason in refused.items():
            if self._refused.get(path) != reason:
                self.log.error("textfile %s refused: %s", _printable(path), reason)
        for path in self._refused.keys() - refused.keys():
            self.log.info("textfile %s accepted again", _printable(path))
        self._refused = refused


class _Refused(Exception):
    """A file that parses but cannot be served: a family that another file
    or the agent itself has, or a name that is not UTF-8."""


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir's surrogate escapes of bytes that are not UTF-8
        return False
    return True


def _printable(path: str) -> str:
    # A name's bytes that are not UTF-8 as \xNN, so that the log line can
    # be written and two such names stay apart.
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _agent_names() -> dict[str, str]:
    """Each name (family or sample, either format) the agent's own families
    take, and whose it is."""
    taken = {}
    for desc in metrics.declared():
        for name in metrics.desc_names(desc):
            taken[name] = f"the agent's own {desc.name}"
    return taken


def _stat_key(st: os.stat_result) -> tuple:
    # ctime too: a writer can set mtime back (touch -d, rsync -t), never ctime.
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _check_names(families: list, taken: dict[str, str]):
    """Refuses (_Refused) a file with a family whose names meet those of the
    agent's own families, another file's, or another of its own; returns
    a function that makes the file's RawFamilies given its path."""
    mine: dict[str, str] = {}
    for family in families:
        for name in metrics.exposed_names(family.name, family.type):
            owner = taken.get(name) or mine.get(name)
            if name.startswith(RESERVED_PREFIX):
                owner = "the agent's own namespace agent_*"
            if owner is not None:
                raise _Refused(f"its family {family.name} clashes with {owner}")
            mine[name] = f"its own family {family.name}"

    def build(path: str) -> list[RawFamily]:
        return [RawFamily(Desc(f.name, f.type, f.help or f"Metric read from {path}"), f.samples)
                for f in families]
    return build
