"""Access control: bearer tokens (wrong, missing, right; /health exemption),
the IP allowlist (an allowed and a refused address, 127.0.0.2 as the
stranger; IPv4-mapped peers on a dual-stack socket), the self-metrics that
count refusals, the new configuration keys, their reload on SIGHUP, and no
token in the agent's log."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading

import pytest

from agent.access import Allowlist, BearerTokens, read_tokens
from agent.config import ConfigError, load
from agent.metrics import Family
from agent.server import REJECT_REASONS, Server
from agentproc import AgentProcess
from exposition_parse import parse_samples
from test_server import HEALTH, TIMEOUT, UP, Raw, request
from test_service import wait_for

NO_DEFAULT = "/nonexistent/monitoring-agent.conf"
TOKEN = "s3cr3t-Token_value.with~chars+/=="
OTHER = "another-valid-token-0123456789"


@pytest.fixture
def start():
    started = []

    def make(host="127.0.0.1", **kwargs):
        kwargs.setdefault("logger", logging.getLogger("test.security"))
        server = Server(host, 0, lambda: [Family(UP, [((), 1)])], lambda: HEALTH, **kwargs)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield make
    for server, thread in started:
        server.shutdown(timeout=2)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def ask(server, path="/metrics", headers=b"", method="GET", source=None):
    """(status, headers, body) over a fresh connection, optionally from
    another local address."""
    with socket.create_connection(server.address[:2], timeout=TIMEOUT, source_address=source) as s:
        s.sendall(request(path, method, extra=headers))
        f = s.makefile("rb")
        client = Raw.__new__(Raw)
        client.sock, client.file = s, f
        try:
            return client.response(head_only=method == "HEAD")
        finally:
            f.close()


# --- bearer tokens ---------------------------------------------------------------


def test_tokens_file_format(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"# the scrapers\n\n  {TOKEN}  \n\t\n# old: {OTHER}x\n{OTHER}\r\n")
    assert read_tokens(str(f)) == [TOKEN.encode(), OTHER.encode()]


@pytest.mark.parametrize("content, message", [
    ("", "no token"),
    ("# only a comment\n\n", "no token"),
    ("two words\n", "line 1: not a token"),
    ("ok-token\nbad\x00token\n", "line 2: not a token"),
    ("caf\xe9\n", "line 1: not a token"),
])
def test_bad_token_files_name_the_line_never_the_text(tmp_path, content, message):
    f = tmp_path / "tokens"
    f.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match=message) as info:
        read_tokens(str(f))
    assert "word" not in str(info.value) and "token\x00" not in str(info.value)


def test_token_check():
    tokens = BearerTokens([TOKEN.encode(), OTHER.encode()])
    assert tokens.check(f"Bearer {TOKEN}")
    assert tokens.check(f"bearer {OTHER}")  # the scheme is case-insensitive
    assert tokens.check(f"  BEARER   {TOKEN} ")
    for bad in (None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                f"Basic {TOKEN}", f"Bearer {TOKEN}, Bearer {OTHER}", TOKEN, "Bearer \xff"):
        assert not tokens.check(bad), bad


def test_token_check_compares_with_every_token():
    # No early exit: the check calls compare_digest once per configured
    # token, whether the first, the last or none matches.
    tokens = BearerTokens([b"t%d" % i for i in range(5)])
    calls = []
    real = tokens._compare
    tokens._compare = lambda a, b: calls.append(1) or real(a, b)
    for header in ("Bearer t0", "Bearer t4", "Bearer nope", None):
        calls.clear()
        tokens.check(header)
        assert len(calls) == 5


@pytest.fixture
def token_server(start):
    def make(**kwargs):
        return start(tokens=BearerTokens([TOKEN.encode(), OTHER.encode()]), **kwargs)
    return make


def auth(token: str) -> bytes:
    return b"Authorization: Bearer " + token.encode() + b"\r\n"


@pytest.mark.parametrize("path", ["/metrics", "/", "/nope"])
def test_missing_and_wrong_tokens_get_401(token_server, path):
    server = token_server()
    for headers in (b"", auth("wrong"), auth(TOKEN + "x"), b"Authorization: Basic dXNlcjpwYXNz\r\n"):
        status, h, body = ask(server, path, headers)
        assert status == 401
        assert h["www-authenticate"] == 'Bearer realm="monitoring-agent"'
        assert b"agent_" not in body and TOKEN.encode() not in body
    assert server.rejected()["unauthorized"] == 4


def test_right_token_gets_the_metrics(token_server):
    server = token_server()
    for token in (TOKEN, OTHER):
        status, _, body = ask(server, "/metrics", auth(token))
        assert status == 200 and b"agent_test_up 1" in body
    status, _, body = ask(server, "/metrics", auth(TOKEN), method="HEAD")
    assert status == 200 and body == b""
    assert server.rejected()["unauthorized"] == 0


def test_401_keeps_the_connection_usable(token_server):
    server = token_server()
    client = Raw(server)
    try:
        client.send(request("/metrics"))
        assert client.response()[0] == 401
        client.send(request("/metrics", extra=auth(TOKEN)))
        assert client.response()[0] == 200
    finally:
        client.close()


def test_a_repeated_head_is_checked_for_its_token_every_time(token_server):
    # The server reuses the parse of a head it has seen: the token check,
    # the routes and the negotiation must still follow each request.
    server = token_server()
    client = Raw(server)
    try:
        for _ in range(3):
            client.send(request("/metrics", extra=auth(TOKEN)))
            assert client.response()[0] == 200
            client.send(request("/metrics", extra=auth("wrong")))
            assert client.response()[0] == 401
            client.send(request("/metrics"))
            assert client.response()[0] == 401
        client.send(request("/metrics", extra=auth(TOKEN) + b"Accept-Encoding: gzip\r\n"))
        status, headers, body = client.response()
        assert status == 200 and headers["content-encoding"] == "gzip" and body[:2] == b"\x1f\x8b"
    finally:
        client.close()
    assert server.rejected()["unauthorized"] == 6


def test_health_is_exempt_unless_configured(token_server):
    open_health = token_server()
    assert ask(open_health, "/health")[0] == 200
    assert ask(open_health, "/metrics")[0] == 401
    guarded = token_server(health_requires_auth=True)
    assert ask(guarded, "/health")[0] == 401
    assert ask(guarded, "/health", auth(TOKEN))[0] == 200


# --- allowlist ---------------------------------------------------------------------


@pytest.mark.parametrize("networks, host, allowed", [
    ("127.0.0.1/32", "127.0.0.1", True),
    ("127.0.0.1/32", "127.0.0.2", False),
    ("127.0.0.0/8", "127.0.0.2", True),
    ("10.0.0.0/8,::1/128", "::1", True),
    ("10.0.0.0/8,::1/128", "::2", False),
    ("127.0.0.0/8", "::ffff:127.0.0.1", True),   # IPv4-mapped on a dual-stack socket
    ("127.0.0.1/32", "::ffff:127.0.0.2", False),
    ("::ffff:0:0/96", "::ffff:10.1.2.3", True),
    ("fe80::/10", "fe80::1%eth0", True),          # a link-local peer with its zone
    ("127.0.0.0/8", "not an address", False),
])
def test_allowlist_matching(networks, host, allowed):
    assert Allowlist.parse(networks).permits(host) is allowed


def test_allowlist_empty_means_everyone():
    assert Allowlist.parse("") is None
    assert load(["--allow", " , "], default_config=NO_DEFAULT).allow == ""


def refused(server, source) -> bool:
    """True when the server closes the connection without a response."""
    with socket.create_connection(server.address[:2], timeout=TIMEOUT, source_address=source) as s:
        try:
            s.sendall(request("/metrics"))
            return s.recv(65536) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def test_allowed_and_refused_addresses(start):
    server = start(allow=Allowlist.parse("127.0.0.1/32"))
    assert ask(server, "/metrics", source=("127.0.0.1", 0))[0] == 200
    assert refused(server, ("127.0.0.2", 0))
    assert refused(server, ("127.0.0.2", 0))
    assert wait_for(lambda: server.rejected()["not_allowed"] == 2, TIMEOUT)
    # Counted where the operator sees it.
    body = ask(server, "/metrics")[2].decode()
    samples = dict(parse_samples(body))
    assert samples[("agent_http_rejected_total", (("reason", "not_allowed"),))] == "2"


def test_new_allowlist_closes_open_connections_it_refuses(start):
    server = start()
    stranger = socket.create_connection(server.address[:2], timeout=TIMEOUT, source_address=("127.0.0.2", 0))
    friend = Raw(server)
    try:
        stranger.sendall(request("/health"))
        assert stranger.recv(65536).startswith(b"HTTP/1.1 200")  # kept alive
        friend.send(request("/health"))
        assert friend.response()[0] == 200
        server.configure(server.settings._replace(allow=Allowlist.parse("127.0.0.1/32")))
        stranger.settimeout(TIMEOUT)
        try:
            assert stranger.recv(65536) == b""
        except ConnectionResetError:
            pass
        friend.send(request("/health"))
        assert friend.response()[0] == 200
        assert server.rejected()["not_allowed"] == 1
    finally:
        stranger.close()
        friend.close()


def test_ipv4_mapped_peer_on_a_dual_stack_socket(start):
    try:
        server = start(host="::", allow=Allowlist.parse("127.0.0.1/32"))
    except OSError as exc:
        pytest.skip(f"no IPv6: {exc}")
    port = server.address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(request("/health"))
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=("127.0.0.2", 0)) as s:
        s.sendall(request("/health"))
        try:
            assert s.recv(65536) == b""
        except ConnectionResetError:
            pass
    try:
        six = socket.create_connection(("::1", port), timeout=TIMEOUT)
    except OSError:
        return  # no IPv6 loopback here
    with six:
        six.sendall(request("/health"))
        try:
            assert six.recv(65536) == b""
        except ConnectionResetError:
            pass


def test_self_metrics_start_at_zero_for_every_reason(start):
    server = start()
    body = ask(server, "/metrics")[2].decode()
    samples = dict(parse_samples(body))
    for reason in REJECT_REASONS:
        assert samples[("agent_http_rejected_total", (("reason", reason),))] == "0"
    assert samples[("agent_http_connections_open", ())] == "1"


# --- configuration -----------------------------------------------------------------


@pytest.mark.parametrize("args, name", [
    (["--allow", "10.0.0.0/33"], "allow"),
    (["--allow", "10.0.0.0/8,example.com"], "allow"),
    (["--health-requires-auth", "maybe"], "health-requires-auth"),
    (["--max-connections", "0"], "max-connections"),
    (["--max-connections", "5000"], "max-connections"),
    (["--max-connections", "1e3"], "max-connections"),
    (["--header-timeout", "0"], "header-timeout"),
    (["--header-timeout", "inf"], "header-timeout"),
    (["--max-header-bytes", "100"], "max-header-bytes"),
    (["--keepalive-timeout", "-1"], "keepalive-timeout"),
    (["--tls-key", "/k.pem"], "--tls-cert: required with --tls-key"),
])
def test_bad_access_and_limit_values_are_one_line_and_exit_2(args, name):
    with pytest.raises(ConfigError, match=name.replace("-", "[-_]")):
        load(args, default_config=NO_DEFAULT)
    r = subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_access_keys_from_the_file(tmp_path):
    f = tmp_path / "a.conf"
    f.write_text("[agent]\nallow = 10.1.2.3/8, ::1\nhealth_requires_auth = yes\nmax-connections = 9\n"
                 "header-timeout = 2.5\nmax-header-bytes = 4096\nkeepalive-timeout = 30\n"
                 "auth-token-file = /etc/tokens\n")
    c = load(["--config", str(f), "--max-connections", "10"], default_config=NO_DEFAULT)
    assert c.allow == "10.0.0.0/8,::1/128"
    assert c.health_requires_auth is True
    assert (c.max_connections, c.header_timeout, c.max_header_bytes, c.keepalive_timeout) == (10, 2.5, 4096, 30.0)
    assert c.auth_token_file == "/etc/tokens"


def test_missing_token_file_stops_start_up(tmp_path):
    r = subprocess.run([sys.executable, "-m", "agent", "--listen", "127.0.0.1:0", "--auth-token-file",
                        str(tmp_path / "none")], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--auth-token-file" in lines[0]


def test_no_token_flag_exists():
    # Tokens never go on the command line, where ps shows them.
    r = subprocess.run([sys.executable, "-m", "agent", "--help"], capture_output=True, text=True, timeout=30)
    assert "--auth-token-file" in r.stdout
    assert "--auth-token " not in r.stdout and "--token" not in r.stdout


# --- the real agent: reload and logs ------------------------------------------------


def get(agent, path="/metrics", token=None, source=None):
    headers = b"" if token is None else auth(token)
    with socket.create_connection(("127.0.0.1", agent.port), timeout=TIMEOUT, source_address=source) as s:
        s.sendall(request(path, extra=headers + b"Connection: close\r\n"))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return int(data.split()[1]) if data else None


def test_tokens_allowlist_and_limits_reload_in_place_and_no_token_is_logged(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nauth-token-file = {tokens}\nlog-level = debug\n")
    with AgentProcess("--config", str(conf)) as agent:
        assert "1 bearer token, /health open" in agent.log()
        assert get(agent, token=TOKEN) == 200
        assert get(agent, token=OTHER) == 401
        assert get(agent) == 401
        assert get(agent, "/health") == 200

        def reload(count):
            agent.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: agent.log().count("reloaded configuration") + agent.log().count(
                "reload refused") == count)

        # New token file content, an allowlist and a limit, all in place.
        tokens.write_text(f"# rotated\n{OTHER}\n")
        conf.write_text(f"[agent]\nauth-token-file = {tokens}\nlog-level = debug\nallow = 127.0.0.1\n"
                        f"health-requires-auth = true\nmax-header-bytes = 2048\n")
        reload(1)
        assert "allow 1 network" in agent.log()
        assert get(agent, token=OTHER) == 200
        assert get(agent, token=TOKEN) == 401
        assert get(agent, "/health") == 401
        assert get(agent, token=OTHER, source=("127.0.0.2", 0)) is None
        big = b"X-Pad: " + b"p" * 3000 + b"\r\n"
        with socket.create_connection(("127.0.0.1", agent.port), timeout=TIMEOUT) as s:
            s.sendall(request("/health", extra=auth(OTHER) + big))
            assert s.recv(65536).startswith(b"HTTP/1.1 431")

        # An unreadable token file: refused, the running tokens stay.
        tokens.write_text(f"{TOKEN} has a space\n")
        reload(2)
        assert "reload refused" in agent.log() and "--auth-token-file" in agent.log()
        assert get(agent, token=OTHER) == 200
        assert get(agent, token=TOKEN) == 401

        text = agent.metrics_text(headers={"Authorization": f"Bearer {OTHER}"})
        samples = dict(parse_samples(text))
        assert samples[("agent_http_rejected_total", (("reason", "unauthorized"),))] == "5"
        assert samples[("agent_http_rejected_total", (("reason", "not_allowed"),))] == "1"
        assert samples[("agent_http_rejected_total", (("reason", "header_too_large"),))] == "1"
        assert agent.proc.poll() is None
    log = agent.log()
    assert "401 to 127.0.0.1" in log  # the failures were logged (at debug) ...
    for secret in (TOKEN, OTHER, TOKEN[:12], OTHER[:12]):  # ... and no token, whole or in part
        assert secret not in log
