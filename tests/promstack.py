"""Real Prometheus, Alertmanager and a webhook receiver for the rule,
dashboard and alerting tests: each on 127.0.0.1, with its own storage in
the test's tmp directory, stopped by the context manager that started it.
The configurations are written as JSON, which both servers read as YAML."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"


def require(binary: str) -> str:
    """The binary's path; skip without it, but fail in CI, which installs it."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is required in CI (.ci/run installs it)")
        pytest.skip(f"{binary} not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll predicate() until it returns something truthy; at most timeout
    seconds.  OSError (a server not listening yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class _Server:
    """A server subprocess whose log goes to a file in the tmp directory."""

    def __init__(self, argv: list[str], log: Path, ready_url: str, startup_timeout: float = 20.0):
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or _ok(ready_url), startup_timeout,
                       interval=0.2, what=argv[0])
            if self.proc.poll() is not None:
                raise AssertionError(f"{argv[0]} exited {self.proc.returncode}:\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


class Prometheus(_Server):
    def __init__(self, tmp: Path, config: dict):
        self.port = free_port()
        config_file = tmp / "prometheus.yml"
        config_file.write_text(json.dumps(config, indent=1))
        super().__init__(
            [require("prometheus"), f"--config.file={config_file}",
             f"--storage.tsdb.path={tmp / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            tmp / "prometheus.log", f"http://127.0.0.1:{self.port}/-/ready")

    def api(self, path: str, **params):
        """The answer's data.  An error answer (a query that does not parse is
        a 400) fails the test with Prometheus's message, rather than
        looking like a server that is not up yet."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            body = get_json(url)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{path} {params}: {e.code} {e.read().decode(errors='replace')}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list:
        return self.api("query", query=promql)["result"]


class Alertmanager(_Server):
    def __init__(self, tmp: Path, config: dict):
        self.port = free_port()
        config_file = tmp / "alertmanager.yml"
        config_file.write_text(json.dumps(config, indent=1))
        super().__init__(
            # An empty cluster address turns off gossip (no 0.0.0.0:9094).
            [require("prometheus-alertmanager"), f"--config.file={config_file}",
             f"--storage.path={tmp / 'alertmanager-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            tmp / "alertmanager.log", f"http://127.0.0.1:{self.port}/-/ready")


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self):
        self.payloads: list[dict] = []
        received = self.payloads

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def alerts(self) -> list[dict]:
        return [alert for payload in list(self.payloads) for alert in payload.get("alerts", [])]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
