"""A D-Bus client connection whose every wait ends by a deadline.

jeepney gives the protocol (authentication, message encoding and parsing)
without I/O; the socket is ours, so that no step (connect, authentication,
Hello, a send, a reply) can outlast the caller's deadline: jeepney's own
blocking connection says Hello with no time limit.  `call` pipelines: it
writes the requests of a batch together, then reads until each has its
reply, so a batch of up to WINDOW calls costs one round trip; a larger one
keeps WINDOW in flight (the system bus's limit), about one more round trip
per WINDOW calls.

jeepney is imported by `connect`, never at import of this module: only the
systemd collector needs it, and an agent without it still starts.
"""

from __future__ import annotations

import os
import socket
import time

SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
# systemd's own socket: the Manager API with no bus daemon, root only.
SYSTEMD_PRIVATE = "unix:path=/run/systemd/private"
# Calls in flight at once on one connection (dbus-daemon's system bus
# refuses more than 128 pending; the rest is headroom).
WINDOW = 100


class DBusError(Exception):
    """An error reply: `name` is the D-Bus error name."""

    def __init__(self, name: str, text: str):
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name


def system_bus_address(env=os.environ) -> str:
    return env.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS


def socket_address(address: str) -> str:
    """The AF_UNIX address of the first unix: entry of a D-Bus address
    (`unix:path=/p` or `unix:abstract=name`; ';' separates alternatives).
    ValueError for anything else (tcp: is not supported)."""
    for entry in address.split(";"):
        kind, _, params = entry.partition(":")
        if kind != "unix":
            continue
        fields = dict(param.partition("=")[::2] for param in params.split(",") if param)
        if fields.get("path"):
            return _unescape(fields["path"])
        if fields.get("abstract"):
            return "\0" + _unescape(fields["abstract"])
    raise ValueError(f"expected a unix:path= or unix:abstract= D-Bus address, got {address!r}")


def _unescape(value: str) -> str:
    # D-Bus addresses %-escape bytes outside [-0-9A-Za-z_/.\*].
    if "%" not in value:
        return value
    from urllib.parse import unquote
    return unquote(value)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("D-Bus: deadline passed")
    return left


class Connection:
    """One authenticated connection; `bus` says there is a bus daemon
    (which wants Hello first), not a peer such as systemd's private socket."""

    def __init__(self, address: str, bus: bool, deadline: float):
        from jeepney.auth import BEGIN, Authenticator
        from jeepney.low_level import Parser

        target = socket_address(address)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.settimeout(_remaining(deadline))
            self._sock.connect(target)
            self._sock.sendall(b"\0")  # the credentials byte: the peer reads SO_PEERCRED
            auth = Authenticator(inc_null_byte=False)
            for request in auth:
                self._sock.settimeout(_remaining(deadline))
                self._sock.sendall(request)
                auth.feed(self._recv(deadline))
            self._sock.sendall(BEGIN)
        except BaseException:
            self._sock.close()
            raise
        self._parser = Parser()
        self._serial = 0
        self._hello_pending = bus

    def _recv(self, deadline: float) -> bytes:
        self._sock.settimeout(_remaining(deadline))
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionResetError("D-Bus: the peer closed the connection")
        return data

    def call(self, messages: list, deadline: float) -> list:
        """The replies to `messages` (jeepney method calls), in order: the
        body of each, or a DBusError for an error reply.  TimeoutError past
        the deadline, OSError when the connection breaks; after either the
        connection is unusable (replies may be in flight): close it."""
        from jeepney import HeaderFields, MessageType
        from jeepney.bus_messages import message_bus

        batch = list(messages)
        if self._hello_pending:
            batch.insert(0, message_bus.Hello())
        first = self._serial + 1
        last = first + len(batch) - 1
        replies: dict[int, object] = {}
        sent = 0
        while len(replies) < len(batch):
            # dbus-daemon answers an error (LimitsExceeded) to a call beyond
            # max_replies_per_connection pending ones, 128 on the system
            # bus: at most WINDOW in flight, topped up by half-windows.
            in_flight = sent - len(replies)
            if sent < len(batch) and in_flight <= WINDOW // 2:
                chunk = batch[sent:sent + WINDOW - in_flight]
                data = b"".join(message.serialise(serial=first + sent + i) for i, message in enumerate(chunk))
                self._sock.settimeout(_remaining(deadline))
                self._sock.sendall(data)
                sent += len(chunk)
                self._serial = first + sent - 1
            message = self._parser.get_next_message()
            if message is None:
                self._parser.add_data(self._recv(deadline))
                continue
            serial = message.header.fields.get(HeaderFields.reply_serial)
            if serial is None or not first <= serial <= last:
                continue  # a signal, or a late reply to an earlier batch
            if message.header.message_type == MessageType.error:
                text = message.body[0] if message.body and isinstance(message.body[0], str) else ""
                replies[serial] = DBusError(message.header.fields.get(HeaderFields.error_name, "?"), text)
            else:
                replies[serial] = message.body
        answers = [replies[serial] for serial in range(first, last + 1)]
        if self._hello_pending:
            hello = answers.pop(0)
            if isinstance(hello, DBusError):
                raise hello
            self._hello_pending = False
        return answers

    def close(self):
        self._sock.close()
