"""Start the real agent as a subprocess on 127.0.0.1 and talk HTTP to it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading

SERVING = re.compile(r"serving on (\S+):(\d+) ")


class AgentProcess:
    def __init__(self, *args: str, env: dict | None = None, startup_timeout: float = 20.0,
                 listen: str | None = "127.0.0.1:0", wrapper: tuple = ()):
        """listen=None leaves the address to the agent's configuration;
        `wrapper` prefixes the command line and must exec the agent (so that
        proc.pid is the agent's), as nsenter does (MountNamespace.enter)."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "agent", *(["--listen", listen] if listen else []), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()
        self.port: int | None = None
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self._ready.wait(startup_timeout) or self.port is None:
            self.stop()
            raise RuntimeError("agent did not start:\n" + "".join(self.stderr_lines))

    def _drain(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.stderr_lines.append(line)
            m = SERVING.search(line)
            if m and self.port is None:
                self.port = int(m.group(2))
                self._ready.set()
        self._ready.set()

    def request(self, path: str = "/metrics", method: str = "GET", headers: dict | None = None,
                timeout: float = 10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def metrics_text(self, headers: dict | None = None) -> str:
        status, _, body = self.request("/metrics", headers=headers)
        assert status == 200, body
        return body.decode("utf-8")

    def log(self) -> str:
        return "".join(self.stderr_lines)

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._drainer.join(5)  # stderr reaches EOF once the process is gone
        self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
