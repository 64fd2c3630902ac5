"""TLS: real handshakes against a CA made here with the openssl CLI (server
and client certificates, a rogue CA), minimum versions, mutual TLS, stalled
handshakes, certificate reload on SIGHUP, and ssl imported only when TLS is
configured.  Every wait is bounded."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent import tls as agent_tls
from agent.config import ConfigError
from agent.exposition import render_text
from agent.server import Server
from agentproc import AgentProcess
from test_prometheus import free_port
from test_server import HEALTH, TIMEOUT, families, scraped
from test_service import wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None and os.environ.get("CI") != "true",
                                reason="needs the openssl command (CI installs it)")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_leaf(d: Path, name: str, ca: str, usage: str) -> None:
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                   f"extendedKeyUsage={usage}\nbasicConstraints=critical,CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", f"{name}.pem",
            "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """ca (signs server, server2 and client), rogue (signs intruder)."""
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "rogue")
    make_leaf(d, "server", "ca", "serverAuth")
    make_leaf(d, "server2", "ca", "serverAuth")
    make_leaf(d, "client", "ca", "clientAuth")
    make_leaf(d, "intruder", "rogue", "clientAuth")
    return d


def client_context(pki: Path, cert: str | None = None, max_version=None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def tls_get(address, ctx: ssl.SSLContext, path="/metrics", timeout=TIMEOUT):
    """(status, body, the server's DER certificate) over one TLS connection."""
    with socket.create_connection(address[:2], timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, der


def der_of(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


@pytest.fixture
def tls_server(pki):
    started = []

    def make(client_ca="", client_auth="require", min_version="1.2", **kwargs):
        listener = agent_tls.load(str(pki / "server.pem"), str(pki / "server.key"),
                                  str(pki / client_ca) if client_ca else "", client_auth, min_version)
        server = Server("127.0.0.1", 0, families, lambda: HEALTH, logger=logging.getLogger("test.tls"),
                        tls=listener, **kwargs)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield make
    for server, thread in started:
        server.shutdown(timeout=2)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_tls_scrape_with_a_verified_certificate(tls_server, pki):
    server = tls_server()
    status, body, der = tls_get(server.address, client_context(pki))
    assert status == 200 and scraped(body) == render_text(families())
    assert der == der_of(pki / "server.pem")


def test_tls_minimum_version(tls_server, pki):
    old_client = client_context(pki, max_version=ssl.TLSVersion.TLSv1_2)
    assert tls_get(tls_server(min_version="1.2").address, old_client)[0] == 200
    strict = tls_server(min_version="1.3")
    with pytest.raises(ssl.SSLError):
        tls_get(strict.address, old_client)
    assert tls_get(strict.address, client_context(pki))[0] == 200
    assert wait_for(lambda: strict.rejected()["tls_handshake"] == 1, TIMEOUT)


def test_tls_client_refuses_a_server_from_another_ca(tls_server, pki):
    server = tls_server()
    rogue_trust = ssl.create_default_context(cafile=str(pki / "rogue.pem"))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_get(server.address, rogue_trust)


def test_plain_http_to_the_tls_port_is_closed_and_counted(tls_server):
    server = tls_server()
    with socket.create_connection(server.address, timeout=TIMEOUT) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        assert b"HTTP/1.1" not in data  # at most a TLS alert, never a response
    assert wait_for(lambda: server.rejected()["tls_handshake"] == 1, TIMEOUT)


@pytest.mark.parametrize("client_auth, cert, ok", [
    ("require", "client", True),
    ("require", None, False),
    ("require", "intruder", False),
    ("verify-if-given", None, True),
    ("verify-if-given", "client", True),
    ("verify-if-given", "intruder", False),
])
def test_mutual_tls(tls_server, pki, client_auth, cert, ok):
    server = tls_server(client_ca="ca.pem", client_auth=client_auth)
    ctx = client_context(pki, cert)
    if ok:
        assert tls_get(server.address, ctx)[0] == 200
    else:
        # TLS 1.3 reports a refused client certificate on the first read.
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            tls_get(server.address, ctx)
        assert wait_for(lambda: server.rejected()["tls_handshake"] == 1, TIMEOUT)


def client_hello() -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def closed_by_server(s: socket.socket) -> bool:
    """Reads (a TLS alert, say) until the server closes; False on timeout."""
    s.settimeout(TIMEOUT)
    try:
        for _ in range(100):
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def test_silent_and_stalled_handshakes_delay_no_one_and_time_out(tls_server, pki):
    server = tls_server(header_timeout=1.0)
    silent = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(10)]
    stalled = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(10)]
    hello = client_hello()
    try:
        for s in stalled:
            s.sendall(hello[:len(hello) // 2])  # half a ClientHello, then nothing
        start = time.monotonic()
        status, body, _ = tls_get(server.address, client_context(pki))
        assert status == 200 and time.monotonic() - start < 1.0
        # Each is closed by the handshake deadline (1 s after accept).
        for s in silent + stalled:
            assert closed_by_server(s)
        assert time.monotonic() - start < 4.0
        assert wait_for(lambda: server.rejected()["tls_handshake"] == 20, TIMEOUT)
    finally:
        for s in silent + stalled:
            s.close()


def test_a_trickled_handshake_is_cut_at_the_deadline(tls_server):
    server = tls_server(header_timeout=1.0)
    hello = client_hello()
    with socket.create_connection(server.address, timeout=TIMEOUT) as s:
        start = time.monotonic()
        with pytest.raises(OSError):
            for i in range(len(hello)):  # a byte every 0.1 s would take far longer than 1 s
                s.sendall(hello[i:i + 1])
                time.sleep(0.1)
            s.recv(1)  # the whole hello got through: the server answered
            raise AssertionError("the handshake was not cut")
        assert time.monotonic() - start < 3.0


def test_new_tls_settings_close_idle_connections_of_the_old_ones(tls_server, pki):
    server = tls_server()
    ctx = client_context(pki)
    raw = socket.create_connection(server.address, timeout=TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as old:
        old.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert old.recv(65536).startswith(b"HTTP/1.1 200")  # then idle, kept alive
        renewed = agent_tls.load(str(pki / "server2.pem"), str(pki / "server2.key"))
        server.configure(server.settings._replace(tls=renewed))
        try:
            assert old.recv(65536) == b""
        except (ConnectionResetError, ssl.SSLError):
            pass
    assert tls_get(server.address, ctx)[2] == der_of(pki / "server2.pem")
    assert server.rejected()["tls_handshake"] == 0


# --- configuration and reload, on the real agent ---------------------------------


def write_config(path: Path, pki: Path, cert="server") -> None:
    path.write_text(f"[agent]\ntls-cert = {pki / cert}.pem\ntls-key = {pki / cert}.key\n")


def test_bad_tls_files_stop_start_up_with_one_line(pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (["--tls-cert", str(pki / "server.pem")], "--tls-key: required with --tls-cert"),
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(pki / "server.key")], "--tls-cert"),
        (["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "client.key")], "--tls-cert"),
        (["--tls-cert", str(garbage), "--tls-key", str(pki / "server.key")], "--tls-cert"),
        (["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
          "--tls-client-ca", str(garbage)], "--tls-client-ca"),
        (["--tls-client-ca", str(pki / "ca.pem")], "--tls-cert: required with --tls-client-ca"),
        (["--tls-min-version", "1.1"], "tls-min-version"),
        (["--tls-client-auth", "maybe"], "tls-client-auth"),
    ]
    for args, name in cases:
        r = subprocess.run([sys.executable, "-m", "agent", "--listen", "127.0.0.1:0", *args],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and name in lines[0], (args, r.stderr)


def test_tls_load_errors_are_config_errors(pki, tmp_path):
    with pytest.raises(ConfigError, match="--tls-key"):
        agent_tls.load(str(pki / "server.pem"), str(tmp_path / "nope.key"))
    encrypted = tmp_path / "encrypted.key"
    openssl("pkey", "-in", str(pki / "server.key"), "-aes256", "-passout", "pass:x", "-out", str(encrypted),
            cwd=tmp_path)
    with pytest.raises(ConfigError, match="encrypted"):
        agent_tls.load(str(pki / "server.pem"), str(encrypted))


def test_reload_rereads_the_certificate_and_refuses_broken_files(pki, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for ext in ("pem", "key"):
        shutil.copy(pki / f"server.{ext}", live / f"server.{ext}")
    conf = tmp_path / "agent.conf"
    write_config(conf, live)
    ctx = client_context(pki)
    with AgentProcess("--config", str(conf)) as agent:
        address = ("127.0.0.1", agent.port)
        assert tls_get(address, ctx)[2] == der_of(pki / "server.pem")
        assert "TLS 1.2+" in agent.log()

        # A renewed certificate: replaced in place, then SIGHUP.
        for ext in ("pem", "key"):
            shutil.copy(pki / f"server2.{ext}", live / f"server.{ext}.new")
            os.replace(live / f"server.{ext}.new", live / f"server.{ext}")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: agent.log().count("reloaded configuration") == 1)
        status, _, der = tls_get(address, ctx)
        assert status == 200 and der == der_of(pki / "server2.pem")

        # A broken one is refused: the running certificate stays.
        (live / "server.pem").write_text("-----BEGIN CERTIFICATE-----\ntruncated\n")
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused" in agent.log())
        refused = [line for line in agent.log().splitlines() if "reload refused" in line]
        assert len(refused) == 1 and "--tls-cert" in refused[0]
        status, _, der = tls_get(address, ctx)
        assert status == 200 and der == der_of(pki / "server2.pem")
        assert agent.proc.poll() is None


PROBE = r"""
import json, os, signal, socket, sys, threading, time
from agent import cli

port = int(sys.argv[1])

def probe():
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            time.sleep(0.05)
    if "--tls-cert" not in sys.argv:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    s.close()
    print(json.dumps({m: m in sys.modules for m in ("ssl", "hashlib", "hmac")}), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.exit(cli.main(["--listen", f"127.0.0.1:{port}", *sys.argv[2:]]))
"""


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_ssl_is_imported_only_when_tls_is_configured(pki, tls):
    args = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")] if tls else []
    r = subprocess.run([sys.executable, "-c", PROBE, str(free_port()), *args], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    modules = json.loads(r.stdout.strip().splitlines()[-1])
    assert modules["ssl"] is tls
    if not tls:
        assert not modules["hashlib"] and not modules["hmac"]


def test_turning_tls_on_closes_plain_keep_alive_connections(pki, tmp_path):
    import http.client
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\n")
    with AgentProcess("--config", str(conf)) as agent:
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=TIMEOUT)
        conn.request("GET", "/health")
        assert conn.getresponse().read() and True
        write_config(conf, pki)
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded configuration" in agent.log())
        # The same plain connection gets no more cleartext answers.
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            for _ in range(3):
                conn.request("GET", "/metrics")
                conn.getresponse().read()
                time.sleep(0.2)
        conn.close()
        assert tls_get(("127.0.0.1", agent.port), client_context(pki))[0] == 200
