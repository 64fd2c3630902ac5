"""Who may talk to the agent: an IP allowlist and bearer tokens.

The server gets these objects ready-made (server.Settings) and only calls
`Allowlist.permits(host)` per connection and `BearerTokens.check(header)`
per request.  hashlib and hmac are imported only when tokens are
configured: with libcrypto they cost about 3.5 MiB of RSS.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat

from agent.config import ConfigError
from agent.regular_files import read_regular

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
# A token file is a few lines; anything this large is a mistake, refused
# rather than read into memory.
MAX_TOKEN_FILE_BYTES = 1 << 20


class Allowlist:
    """Peers whose address lies in one of the networks.  An IPv4 peer that
    reaches a dual-stack socket shows as ::ffff:a.b.c.d; it matches the IPv4
    networks (and ::ffff:0:0/96 style IPv6 ones)."""

    def __init__(self, networks):
        self.networks = tuple(networks)
        self._v4 = tuple(n for n in self.networks if n.version == 4)
        self._v6 = tuple(n for n in self.networks if n.version == 6)

    @classmethod
    def parse(cls, text: str) -> Allowlist | None:
        """From config's normalised comma-separated list; None when empty
        (everyone may connect)."""
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            return None
        return cls(ipaddress.ip_network(item, strict=False) for item in items)

    def permits(self, host: str) -> bool:
        # A link-local IPv6 peer carries its zone: fe80::1%eth0.
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if address.version == 4:
            return any(address in net for net in self._v4)
        if any(address in net for net in self._v6):
            return True
        mapped = address.ipv4_mapped
        return mapped is not None and any(mapped in net for net in self._v4)

    def __len__(self) -> int:
        return len(self.networks)


def read_tokens(path: str, flag: str = "--auth-token-file") -> list[bytes]:
    """The tokens in `path`: one a line, blank lines and `#` comments
    ignored.  A ConfigError names the file and the line, never its text."""
    where = f"{flag} {path}"
    try:
        # Never a FIFO or a device: a reload must not block (regular_files.py).
        data = read_regular(path, MAX_TOKEN_FILE_BYTES)
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from None
    tokens = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip(b" \t\r")
        if not line or line.startswith(b"#"):
            continue
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not _B64TOKEN.match(text):
            raise ConfigError(f"{where}: line {number}: not a token (expected letters, digits and "
                              f"-._~+/ with optional trailing =, no spaces)")
        tokens.append(line)
    if not tokens:
        raise ConfigError(f"{where}: no token in the file")
    return tokens


def readable_by_others(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IROTH | stat.S_IWOTH))
    except OSError:
        return False


class BearerTokens:
    """`check(authorization)` is true when the header is `Bearer <token>`
    with one of the tokens.

    Constant time in what an attacker controls: the presented token and every
    configured one are hashed to 32 bytes first, so neither length shows in
    the timing, and the candidate is compared with hmac.compare_digest
    against every token, with no early exit on a match."""

    def __init__(self, tokens: list[bytes]):
        import hashlib
        import hmac
        self._sha256 = hashlib.sha256
        self._compare = hmac.compare_digest
        self._digests = tuple(hashlib.sha256(t).digest() for t in tokens)

    @classmethod
    def from_file(cls, path: str, flag: str = "--auth-token-file") -> BearerTokens:
        return cls(read_tokens(path, flag))

    def check(self, authorization: str | None) -> bool:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        # RFC 9110 11.1: the scheme is case-insensitive.
        wanted = scheme.lower() == "bearer"
        candidate = self._sha256(credentials.strip().encode("latin-1")).digest()
        matched = False
        for digest in self._digests:
            matched |= self._compare(candidate, digest)
        return wanted and matched

    def __len__(self) -> int:
        return len(self._digests)
