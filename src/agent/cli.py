"""Command line: assembles the configuration and starts things, nothing more."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from agent import backend as backends
from agent.config import Config, ConfigError, load
from agent.cpu import CpuWindow
from agent.registry import Registry

LOG_FORMAT = "%(asctime)s monitoring-agent[%(process)d] %(levelname)s %(message)s"


def setup_logging(level: str) -> logging.Logger:
    log = logging.getLogger("agent")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level.upper())
    return log


def build_collectors(config: Config, cpu_window: CpuWindow):
    from agent.collectors import (DiskstatsCollector, LoadavgCollector, MeminfoCollector,
                                  NetdevCollector, StatCollector, UptimeCollector)
    from agent.collectors.filters import NameFilter
    return [
        StatCollector(cpu_window),
        MeminfoCollector(),
        DiskstatsCollector(NameFilter(config.disk_include, config.disk_exclude)),
        NetdevCollector(NameFilter(config.net_include, config.net_exclude)),
        LoadavgCollector(),
        UptimeCollector(),
    ]


def build_registry(config: Config, log: logging.Logger) -> Registry:
    if not os.path.isdir(config.procfs):
        raise ConfigError(f"--procfs: {config.procfs!r} is not a directory")
    try:
        backend_name, backend = backends.select(config.backend, log)
    except backends.BackendError as exc:
        raise ConfigError(str(exc)) from None
    cpu_window = CpuWindow(config.cpu_window)
    return Registry(config.procfs, backend_name, backend, build_collectors(config, cpu_window), log)


def fail(message: str, code: int) -> int:
    print(f"monitoring-agent: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        config = load(argv)
    except ConfigError as exc:
        return fail(str(exc), 2)
    log = setup_logging(config.log_level)
    try:
        registry = build_registry(config, log)
    except ConfigError as exc:
        return fail(str(exc), 2)

    from agent import exposition
    if config.once:
        families = registry.collect()
        render = exposition.render_openmetrics if config.format == "openmetrics" else exposition.render_text
        sys.stdout.buffer.write(render(families))
        sys.stdout.flush()
        return 0 if all(s.ok for s in registry.sources) else 1

    from agent.server import Server
    host, port = config.listen_address
    # The first collection is the CPU window's baseline, and says at once
    # which sources work on this host.
    registry.collect()
    try:
        server = Server(host, port, registry.collect, registry.health, logger=log)
    except OSError as exc:
        return fail(f"--listen {config.listen}: {exc.strerror or exc}", 1)

    def stop(signum, frame):
        log.info("received %s, stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever to return: not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound_host, bound_port = server.address[:2]
    log.info("serving on %s:%d (backend %s, procfs %s)", bound_host, bound_port,
             registry.backend_name, config.procfs)
    server.serve_forever()
    log.info("stopped")
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
