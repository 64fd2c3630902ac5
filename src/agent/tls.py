"""TLS for the HTTP server, with the standard library's ssl.

Imported only when tls_cert is configured: ssl and the libssl/libcrypto it
loads cost a few MiB of RSS that an agent without TLS does not pay.

`load()` builds a fresh SSLContext from the files every time it is called
(start-up and each SIGHUP), so a renewed certificate is picked up by a
reload; connections already open keep the context they were accepted with.
"""

from __future__ import annotations

import os
import select
import ssl
import time

from agent.config import ConfigError
from agent.regular_files import open_regular

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsListener:
    """What the server needs: `wrap()` a freshly accepted socket (no I/O)
    and `handshake()` it before a deadline."""

    def __init__(self, context: ssl.SSLContext, *, mutual: bool, min_version: str):
        self.context = context
        self.mutual = mutual
        self.min_version = min_version

    def wrap(self, sock):
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    @staticmethod
    def handshake(sock: ssl.SSLSocket, deadline: float) -> None:
        """Complete the handshake by `deadline` (time.monotonic()), however
        the client trickles its bytes: a socket timeout alone would restart
        with every byte.  Raises OSError (ssl.SSLError, TimeoutError)."""
        sock.setblocking(False)
        # poll, not select: a busy agent may hold descriptors past FD_SETSIZE.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while True:
            try:
                sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                events = select.POLLIN
            except ssl.SSLWantWriteError:
                events = select.POLLOUT
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("TLS handshake not completed in time")
            poller.modify(sock, events)
            poller.poll(remaining * 1000)
        sock.setblocking(True)

    def describe(self) -> str:
        return f"TLS {self.min_version}+" + (", client certificates" if self.mutual else "")


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _no_password():
    raise ConfigError("--tls-key: the key is encrypted; give an unencrypted key "
                      "(readable only by the agent's user)")


def load(cert: str, key: str, client_ca: str = "", client_auth: str = "require",
         min_version: str = "1.2") -> TlsListener:
    """A TlsListener from the configured files; ConfigError names the
    flag and the file that failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[min_version]
    # No renegotiation (a client-driven CPU cost) and no compression (CRIME).
    context.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    # OpenSSL opens the files by name: it is given /proc/self/fd/N of a
    # descriptor opened here, so that it reads the very regular file checked
    # (never a FIFO it would block on, regular_files.py).
    fds: list[int] = []
    try:
        for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca)):
            if not path:
                continue
            try:
                fds.append(open_regular(path))
            except OSError as exc:
                raise ConfigError(f"{flag} {path}: {exc.strerror or exc}") from None
        cert_fd, key_fd = fds[0], fds[1]
        try:
            context.load_cert_chain(_fd_path(cert_fd), _fd_path(key_fd), password=_no_password)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--tls-cert {cert}, --tls-key {key}: cannot load them: "
                              f"{getattr(exc, 'reason', None) or exc}") from None
        if client_ca:
            try:
                context.load_verify_locations(cafile=_fd_path(fds[2]))
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"--tls-client-ca {client_ca}: cannot load it: "
                                  f"{getattr(exc, 'reason', None) or exc.strerror or exc}") from None
            context.verify_mode = ssl.CERT_REQUIRED if client_auth == "require" else ssl.CERT_OPTIONAL
    finally:
        for fd in fds:
            os.close(fd)
    return TlsListener(context, mutual=bool(client_ca), min_version=min_version)
