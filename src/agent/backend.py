"""The one switch between the C and the pure-Python parser backends.

Both modules (agent.procfs.cbackend, agent.procfs.pybackend) expose the same
interface: parse_<source>(bytes) -> packed bytes, make_loader(source).  The
choice is reported in agent_build_info and in the start-up log line (a
fallback under `auto` is one warning); AGENT_BACKEND=python
forces the fallback under `auto`.  An install that could not compile the
extension gets one warning in words: why, and how to get the C backend.  A
C module that is there but does not load (another interpreter's, or one
whose ABI does not match the package) counts as unavailable, with the
reason in the log.
"""

from __future__ import annotations

import logging
import os

CHOICES = ("auto", "c", "python")

# --no-cache-dir: pip caches the wheel it built from an index's sdist
# without the extension, and installs that one again even with
# --force-reinstall (pip 26).
HOW_TO_GET_C = ("For the C backend, install a C compiler and the Python headers "
                "(e.g. gcc and python3-dev) and reinstall with "
                "pip install --force-reinstall --no-cache-dir monitoring-agent, "
                "or install the prebuilt manylinux wheel, which needs no compiler.")


class BackendError(Exception):
    """The requested backend cannot be used."""


def select(choice: str, log: logging.Logger | None = None):
    """Return (name, module) for --backend `choice`."""
    log = log or logging.getLogger("agent")
    if choice not in CHOICES:
        raise BackendError(f"unknown backend {choice!r} (choose from {', '.join(CHOICES)})")
    if choice == "python":
        from agent.procfs import pybackend
        log.debug("parser backend: python (requested)")
        return "python", pybackend
    if choice == "auto" and os.environ.get("AGENT_BACKEND") == "python":
        from agent.procfs import pybackend
        log.debug("parser backend: python (AGENT_BACKEND=python)")
        return "python", pybackend
    from agent.procfs import cbackend
    if cbackend.AVAILABLE:
        log.debug("parser backend: c")
        return "c", cbackend
    if choice == "c":
        hint = "" if cbackend.BUILT else f". {HOW_TO_GET_C}"
        raise BackendError(f"--backend c: the C extension is unavailable: {cbackend.UNAVAILABLE_REASON}{hint}")
    from agent.procfs import pybackend
    if cbackend.BUILT:
        log.warning("C extension unavailable (%s); using the pure-Python backend", cbackend.UNAVAILABLE_REASON)
    else:
        log.warning("The C extension was %s: running on the pure-Python backend, same values at a "
                    "higher CPU cost. %s", cbackend.UNAVAILABLE_REASON, HOW_TO_GET_C)
    return "python", pybackend
