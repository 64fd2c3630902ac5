"""The running agent: serves until SIGTERM/SIGINT, reloads on SIGHUP, and
speaks the systemd notify protocol.

Signals are turned into bytes on a socket (signal.set_wakeup_fd) that the
main thread waits on, so nothing of substance runs inside a signal handler
and the HTTP server's threads are never interrupted.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time

from agent import exposition, systemd
from agent.cli import describe_access
from agent.config import (SETTINGS, Config, ConfigError, collector_timeouts, describe_change, load, merge_api,
                          read_api_state, write_api_state)
from agent.cpu import CpuWindow
from agent.logs import LogTargetError, setup_logging
from agent.pidfile import PidFile
from agent.registry import Registry
from agent.server import Server
from agent.server_routes import ScrapeRefused

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# From a stop signal to the end of the cleanup, whatever a client or a
# collection is doing: the README promises an exit within 5 s, and the
# interpreter's own exit takes the rest.
STOP_SECONDS = 4.0
# How long in-flight requests may take to finish after a stop signal; the
# server then takes up to a second to cut the late ones.
DRAIN_SECONDS = 3.0
# The main loop wakes at least this often to check on the server thread.
TICK_SECONDS = 1.0


class SelectionError(ScrapeRefused):
    """collect[] or exclude[] names a collector that is not running: one line, a 400."""


def select_sources(enabled: tuple[str, ...], collect, exclude) -> frozenset:
    """node_exporter's filter: collect[] picks among the collectors that run,
    exclude[] leaves some out; a name that is not running is an error, not
    an empty answer a dashboard would take for zeros."""
    if collect and exclude:  # as node_exporter refuses them together
        raise SelectionError("collect[] and exclude[] cannot be used together")
    unknown = sorted(set(collect) - set(enabled)) or sorted(set(exclude) - set(enabled))
    if unknown:
        raise SelectionError(f"no collector {unknown[0]!r} is running (running: {', '.join(enabled) or 'none'})")
    chosen = set(collect) if collect else set(enabled)
    return frozenset(chosen - set(exclude))


class Service:
    def __init__(self, argv, config: Config, log: logging.Logger, registry: Registry,
                 cpu_window: CpuWindow, server: Server, pidfile: PidFile | None,
                 base_dir: str | None = None):
        self.argv = argv
        # Where relative paths resolve on a reload: the start-up directory,
        # which --daemon has left for /.
        self.base_dir = base_dir or os.getcwd()
        self.config = config
        self.log = log
        self.registry = registry
        self.cpu_window = cpu_window
        self.server = server
        self.pidfile = pidfile
        self._thread: threading.Thread | None = None
        self.pusher = None
        self.alerting = None
        # The REST API's changes in force (agent.config's layer), and the
        # lock a reload and an API change take to apply a configuration.
        self.api = read_api_state(config.api_state_file) if config.api_state_file else {}
        self._apply_lock = threading.Lock()

    # The server calls these; they follow a registry swapped by a reload.
    def scrape(self, timeout: float | None = None, collect: list[str] = (), exclude: list[str] = ()):
        """The families of a scrape: every collector, or node_exporter's
        collect[] and exclude[] selection (unknown names: SelectionError),
        collected within `timeout` seconds when the scraper said how long it
        waits (X-Prometheus-Scrape-Timeout-Seconds)."""
        registry = self.registry
        only = select_sources(registry.names, collect, exclude) if collect or exclude else None
        families = registry.collect(timeout, only)
        for extra in (self.pusher, self.alerting):
            if extra is not None:
                families = families + extra.families()
        return families

    def start_pusher(self, config: Config) -> None:
        """Push mode (docs/PUSH.md): a Pusher for config.push, or none."""
        if not config.push:
            self.pusher = None
            return
        import socket as _socket

        from agent.push import Pusher, parse_push_url
        targets = [parse_push_url(url) for url in config.push.split()]
        # The pusher collects through the registry in force, shared with
        # scrapes; its own counters go to scrapes only.
        pusher = Pusher(targets, config.push_interval, lambda: self.registry.collect(),
                        _socket.gethostname(), self.log, buffer_limit=config.push_buffer_limit)
        pusher.start()
        self.pusher = pusher

    def stop_pusher(self, timeout: float = DRAIN_SECONDS) -> None:
        pusher, self.pusher = self.pusher, None
        if pusher is not None:
            pusher.stop(timeout)

    def start_alerting(self, config: Config, previous=None) -> None:
        """The [alert.NAME] rules (docs/STANDALONE_ALERTS.md), or none; `previous`
        hands over the alerts of the rules a reload left as they were."""
        if not config.alert_rules:
            self.alerting = None
            return
        import socket as _socket

        from agent.alerts import Alerting
        hostname = _socket.gethostname()
        host, port = self.server.address[:2]
        scheme = "https" if self.server.settings.tls is not None else "http"
        alerting = Alerting(list(config.alert_rules), lambda: self.registry.collect(), hostname, self.log,
                            config.alert_interval, config.alert_resend,
                            tuple(config.alertmanager.split()), tuple(config.alert_webhook.split()),
                            external_url=f"{scheme}://{hostname}:{port}")
        alerting.adopt(previous)
        alerting.start()
        self.alerting = alerting

    def stop_alerting(self, timeout: float = DRAIN_SECONDS):
        alerting, self.alerting = self.alerting, None
        if alerting is not None:
            alerting.stop(timeout)
        return alerting

    def health(self):
        health = self.registry.health()
        alerting = self.alerting
        if alerting is not None:
            health["alerts"] = alerting.health()
        return health

    def _start_server(self, server: Server) -> threading.Thread:
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        return thread

    def run(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: None)  # the wakeup fd does the work
        try:
            self._thread = self._start_server(self.server)
            # The first collection is the CPU window's baseline and says at
            # once which sources work on this host.  In a thread of its own,
            # after the port answers: /health and a stop never wait for it
            # (a scrape arriving meanwhile shares it).
            threading.Thread(target=self.registry.collect, name="first-collection", daemon=True).start()
            host, port = self.server.address[:2]
            self.log.info("serving on %s:%d (backend %s, procfs %s; %s)", host, port,
                          self.registry.backend_name, self.config.procfs,
                          describe_access(self.server.settings))
            systemd.notify("READY=1\nSTATUS=serving")
            watchdog = systemd.watchdog_interval()
            tick = min(TICK_SECONDS, watchdog) if watchdog else TICK_SECONDS
            while True:
                readable = select.select([wake_r], [], [], tick)[0]
                if watchdog and self._thread.is_alive():
                    systemd.notify("WATCHDOG=1")
                if not self._thread.is_alive():
                    self.log.error("the HTTP server stopped unexpectedly; exiting")
                    return 1
                if not readable:
                    continue
                try:
                    signals = wake_r.recv(256)
                except BlockingIOError:
                    continue
                if any(s in signals for s in STOP_SIGNALS):
                    name = signal.Signals(next(s for s in signals if s in STOP_SIGNALS)).name
                    if not self.stop(name):
                        # A thread blocked in the kernel: the interpreter's
                        # exit would wait for nothing useful (atexit, thread
                        # joins), so leave now that everything is cleaned up.
                        logging.shutdown()
                        os._exit(0)
                    return 0
                if signal.SIGHUP in signals:
                    self.reload()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            wake_r.close()
            wake_w.close()

    def stop(self, reason: str) -> bool:
        """Stop serving, remove the PID file, log it, all within
        STOP_SECONDS.  False when a collection is still blocked in the
        kernel (a /proc read that does not return), which nothing can
        interrupt: it is left behind."""
        deadline = time.monotonic() + STOP_SECONDS
        systemd.notify("STOPPING=1")
        # One line per stop, once it is done; the debug line says when the
        # drain of in-flight requests began.
        self.log.debug("received %s, stopping", reason)
        # The server drains in a thread of its own, so that a connection
        # stuck in a collection costs this thread no more than the deadline,
        # and the pusher stops meanwhile.
        servers = threading.Thread(target=self._retire, args=(self.server, self._thread),
                                   name="http-shutdown", daemon=True)
        servers.start()
        self.stop_pusher(DRAIN_SECONDS)
        self.stop_alerting(max(0.0, deadline - time.monotonic() - DRAIN_SECONDS))
        servers.join(max(0.0, deadline - time.monotonic()))
        collected = self.registry.close(max(0.0, deadline - time.monotonic()))
        if self.pidfile is not None:
            self.pidfile.release()
        if collected:
            self.log.info("stopped on %s", reason)
        else:
            self.log.warning("stopped on %s, leaving behind a collection blocked in the kernel "
                             "(source %s)", reason, self.registry.collecting_source or "unknown")
        return collected

    @staticmethod
    def _retire(server: Server, thread: threading.Thread | None) -> None:
        server.shutdown(DRAIN_SECONDS)
        if thread is not None:
            thread.join(DRAIN_SECONDS)

    def reload(self) -> None:
        """Re-read the configuration and apply it without dropping the
        process or the CPU baselines; an invalid one changes nothing.  The
        REST API's changes stay if api_state_file keeps them, else they go."""
        systemd.notify("RELOADING=1")
        try:
            with self._apply_lock:
                try:
                    new = load(self.argv, base_dir=self.base_dir)
                    api = read_api_state(new.api_state_file) if new.api_state_file else {}
                except ConfigError as exc:
                    self.log.error("reload refused, keeping the running configuration: %s", exc)
                    return
                error = self._apply(new)
                if error is not None:
                    self.log.error("reload refused, keeping the running configuration: %s", error)
                    return
                self.api = api
            host, port = self.server.address[:2]
            self.log.info("reloaded configuration%s (serving on %s:%d; %s)",
                          f" from {new.config}" if new.config else "", host, port,
                          describe_access(self.server.settings))
        finally:
            systemd.notify("READY=1\nSTATUS=serving")

    def _apply(self, new: Config) -> str | None:
        """Make `new` the running configuration (under _apply_lock), all or
        nothing: the reason it cannot, else None."""
        from agent.cli import build_collectors, build_registry, build_server_settings
        old = self.config
        try:
            # Re-reads the token and certificate files, whatever changed.
            settings = build_server_settings(new, self.log)
        except ConfigError as exc:
            return str(exc)
        registry = self.registry
        # Another set of collectors is another set of sources.
        if (new.procfs, new.sysfs, new.rootfs, new.backend, new.collectors) != \
                (old.procfs, old.sysfs, old.rootfs, old.backend, old.collectors):
            try:
                registry = build_registry(new, self.log, self.cpu_window)
            except ConfigError as exc:
                return str(exc)
        server = self.server
        if new.listen_address == old.listen_address:
            new = new._replace(listen=old.listen)  # the same address spelled otherwise
        elif new.listen_address[1] == old.listen_address[1] and new.listen_address[1] != 0:
            # Binding the new address first would collide with the old
            # one on the same port (0.0.0.0:8080 -> 127.0.0.1:8080).
            self.log.warning("reload: moving to %s on the same port needs a restart; "
                             "still serving on %s", new.listen, old.listen)
            new = new._replace(listen=old.listen)
        if new.listen != old.listen:
            host, port = new.listen_address
            try:
                # Bind the new address before closing the old one.
                server = Server(host, port, self.scrape, self.health, logger=self.log,
                                settings=settings, extra_routes=self.server.extra_routes)
            except OSError as exc:
                if registry is not self.registry:
                    registry.close()
                return f"--listen {new.listen}: {exc.strerror or exc}"
        if (new.log_level, new.log_target) != (old.log_level, old.log_target):
            try:
                setup_logging(new.log_level, new.log_target)
            except LogTargetError as exc:
                if server is not self.server:
                    server.shutdown(0)
                if registry is not self.registry:
                    registry.close()
                return str(exc)
        # Everything is valid: apply.
        self.cpu_window.set_window(new.cpu_window)
        # Families of collectors now off or filtered otherwise may not come
        # back: what the renderer kept for them goes.
        exposition.clear_caches()
        if registry is self.registry:
            registry.replace_collectors(build_collectors(new, self.cpu_window), collector_timeouts(new))
        else:
            old_registry, self.registry = self.registry, registry
            # Without waiting: a collection of the old registry blocked
            # in the kernel closes its files when (if) it returns.
            old_registry.close(0.0)
        if server is self.server:
            server.configure(settings)
        else:
            old_server, old_thread = self.server, self._thread
            self.server = server
            self._thread = self._start_server(server)
            # The old server drains in the background: this thread must
            # stay free to act on SIGTERM.
            threading.Thread(target=self._retire, args=(old_server, old_thread),
                             name="http-retire", daemon=True).start()
        if (new.push, new.push_interval, new.push_buffer_limit) != \
                (old.push, old.push_interval, old.push_buffer_limit):
            self.stop_pusher()
            self.start_pusher(new)
        if any(getattr(new, k) != getattr(old, k) for k in
               ("alert_rules", "alertmanager", "alert_webhook", "alert_interval", "alert_resend")):
            # Stopped, not dropped: /health and /metrics show its rules
            # until the new ones take over.
            previous = self.alerting
            if previous is not None:
                previous.stop()
            self.start_alerting(new, previous=previous)
        for setting in SETTINGS:
            if not setting.reload and getattr(new, setting.name) != getattr(old, setting.name):
                self.log.warning("reload: a new %s takes effect only at the next start", setting.flag)
        self.config = new
        return None

    def apply_api(self, change: dict, peer: str) -> str | None:
        """The REST API's PATCH or PUT: `change` (the layer's shape,
        agent.config) merged over the changes made so far, validated whole
        and applied as a reload applies a file, kept in api_state_file when
        there is one.  The reason it was refused, else None."""
        with self._apply_lock:
            merged = merge_api(self.api, change)
            try:
                new = load(self.argv, base_dir=self.base_dir, api=merged)
            except ConfigError as exc:
                return str(exc)
            if new.api_state_file:
                try:
                    write_api_state(new.api_state_file, merged)
                except OSError as exc:
                    return f"api-state-file {new.api_state_file}: {exc.strerror or exc}"
            error = self._apply(new)
            if error is not None:
                if new.api_state_file:
                    try:
                        write_api_state(new.api_state_file, self.api)  # as it was
                    except OSError as exc:
                        self.log.error("api-state-file %s: could not put back the changes in force: %s",
                                       new.api_state_file, exc.strerror or exc)
                return error
            self.api = merged
        self.log.info("configuration changed through the API by %s: %s", peer, describe_change(change))
        return None
