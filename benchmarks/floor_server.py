"""The floor under any Python exporter, for `compare.py --floor`: a server
that answers every request on a keep-alive connection with one fixed gzip
exposition, doing nothing else, or (with `--read PROCFS`) after reading the
six /proc files the agent reads, as the agent does (pread from offset 0
until a read returns nothing).  What it costs per scrape is what HTTP over
loopback and the kernel's generation of those files cost, with no
collection, rendering or compression at all.

    python benchmarks/floor_server.py PORT [--read /proc]

Listens on 127.0.0.1 only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import zlib

SOURCES = ("stat", "meminfo", "diskstats", "net/dev", "loadavg", "uptime")
BODY = zlib.compress(b"# HELP node_load1 1-minute load average.\n# TYPE node_load1 gauge\nnode_load1 0.5\n" * 40,
                     1, 31)
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


def read_whole(fd: int) -> int:
    size = 0
    while chunk := os.pread(fd, 65536, size):
        size += len(chunk)
    return size


def serve(conn: socket.socket, fds: list[int]) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while conn.recv(65536):
            for fd in fds:
                read_whole(fd)
            conn.sendall(RESPONSE)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("port", type=int)
    p.add_argument("--read", metavar="PROCFS", help="read the six files of this procfs per request")
    args = p.parse_args(argv)
    fds = [os.open(os.path.join(args.read, name), os.O_RDONLY) for name in SOURCES] if args.read else []
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(16)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn, fds), daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(main())
