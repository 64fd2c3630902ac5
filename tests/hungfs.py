"""A FUSE file system whose statfs never answers: the mount exists
(getattr of any path and readdir answer) but statfs(2) on it blocks until
this process dies, as on a hung FUSE daemon or a dead NFS server.

    python tests/hungfs.py MOUNTPOINT CALLS_FILE

Prints "mounted" once the kernel has the mount; appends a line to
CALLS_FILE at every statfs it receives.  SIGKILL it to end: its blocked
handler keeps SIGTERM from ending the FUSE loop, and its death is what
makes the kernel fail the pending statfs (ENOTCONN), releasing the caller.
"""

from __future__ import annotations

import stat
import sys
import threading

import mfusepy


class HungStatfs(mfusepy.Operations):
    use_ns = True

    def __init__(self, calls_file: str):
        self.calls_file = calls_file

    def init(self, path):
        print("mounted", flush=True)

    def getattr(self, path, fh=None):
        # Every name is a directory, so that statfs of /x and /y are two
        # calls that hang apart (two mount points in a table).
        return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}

    def readdir(self, path, fh):
        return [".", ".."]

    def statfs(self, path):
        with open(self.calls_file, "a") as f:
            f.write("statfs\n")
        threading.Event().wait()  # never answers
        return {}


if __name__ == "__main__":
    mfusepy.FUSE(HungStatfs(sys.argv[2]), sys.argv[1], foreground=True, fsname="hungfs")
