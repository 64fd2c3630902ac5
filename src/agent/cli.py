"""Command line: assembles the configuration and starts things, nothing more."""

from __future__ import annotations

import logging
import os
import sys

from agent import backend as backends
from agent.config import Config, ConfigError, collector_timeouts, load
from agent.cpu import CpuWindow
from agent.logs import LogTargetError, setup_logging
from agent.registry import Registry


def build_collectors(config: Config, cpu_window: CpuWindow):
    from agent import collectors
    return collectors.build(config.collectors, config, cpu_window)


def build_registry(config: Config, log: logging.Logger, cpu_window: CpuWindow | None = None) -> Registry:
    if not os.path.isdir(config.procfs):
        raise ConfigError(f"--procfs: {config.procfs!r} is not a directory")
    try:
        backend_name, backend = backends.select(config.backend, log)
    except backends.BackendError as exc:
        raise ConfigError(str(exc)) from None
    if cpu_window is None:
        cpu_window = CpuWindow(config.cpu_window)
    return Registry(config.procfs, backend_name, backend, build_collectors(config, cpu_window), log,
                    sysfs_root=config.sysfs, rootfs_root=config.rootfs, timeouts=collector_timeouts(config))


def build_server_settings(config: Config, log: logging.Logger):
    """The server's settings, reading the token and TLS files now: a
    ConfigError at start-up (exit 2), a refused reload on SIGHUP."""
    from agent.server import Settings
    allow = tokens = tls = None
    if config.allow:
        from agent.access import Allowlist
        allow = Allowlist.parse(config.allow)
    if config.auth_token_file:
        from agent.access import BearerTokens, readable_by_others
        tokens = BearerTokens.from_file(config.auth_token_file)
        if readable_by_others(config.auth_token_file):
            log.warning("--auth-token-file %s is readable or writable by other users; chmod 600 it",
                        config.auth_token_file)
    if config.tls_cert:
        from agent import tls as agent_tls  # imports ssl: only when TLS is configured
        tls = agent_tls.load(config.tls_cert, config.tls_key, config.tls_client_ca,
                             config.tls_client_auth, config.tls_min_version)
    write_tokens = None
    if config.api_write_token_file:
        from agent.access import BearerTokens, readable_by_others
        write_tokens = BearerTokens.from_file(config.api_write_token_file, "--api-write-token-file")
        if readable_by_others(config.api_write_token_file):
            log.warning("--api-write-token-file %s is readable or writable by other users; chmod 600 it",
                        config.api_write_token_file)
    return Settings(max_connections=config.max_connections, header_timeout=config.header_timeout,
                    max_header_bytes=config.max_header_bytes, keepalive_timeout=config.keepalive_timeout,
                    allow=allow, tokens=tokens, write_tokens=write_tokens,
                    health_requires_auth=config.health_requires_auth, tls=tls)


def describe_access(settings) -> str:
    """For the start-up and reload log lines: what guards the port (token
    counts, never tokens)."""
    parts = [settings.tls.describe() if settings.tls is not None else "plain HTTP"]
    if settings.tokens is not None:
        parts.append(f"{len(settings.tokens)} bearer token{'s' if len(settings.tokens) != 1 else ''}"
                     + ("" if settings.health_requires_auth else ", /health open"))
    if settings.allow is not None:
        parts.append(f"allow {len(settings.allow)} network{'s' if len(settings.allow) != 1 else ''}")
    return ", ".join(parts)


# Exit codes: 0 done, 1 a failure while running, 2 a configuration or
# start-up error (bad flag, key or file, port in use, another instance).
def fail(message: str, code: int) -> int:
    print(f"monitoring-agent: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        start_dir = os.getcwd()
        config = load(argv, base_dir=start_dir)
    except ConfigError as exc:
        return fail(str(exc), 2)
    try:
        log = setup_logging(config.log_level, config.log_target)
    except LogTargetError as exc:
        return fail(str(exc), 2)
    # A second instance is refused before it logs anything.
    from agent.pidfile import PidFile, PidFileError
    pidfile = PidFile(config.pidfile) if config.pidfile and not config.once else None
    if pidfile is not None:
        try:
            pidfile.acquire()
        except PidFileError as exc:
            return fail(str(exc), 2)
    cpu_window = CpuWindow(config.cpu_window)
    try:
        # The token and TLS files first: a bad one is the only line the user
        # sees, before the backend's word on a build without the extension.
        settings = None if config.once else build_server_settings(config, log)
        registry = build_registry(config, log, cpu_window)
    except ConfigError as exc:
        if pidfile is not None:
            pidfile.release()
        return fail(str(exc), 2)

    if config.once:
        from agent import exposition
        families = registry.collect()
        render = exposition.render_openmetrics if config.format == "openmetrics" else exposition.render_text
        sys.stdout.buffer.write(render(families))
        sys.stdout.flush()
        return 0

    from agent.procfs import cbackend
    from agent.server import Server
    from agent.service import Service

    cbackend.tune_malloc()  # whatever the parser backend, where the extension is built

    service = None
    host, port = config.listen_address
    try:
        from agent import api
        server = Server(host, port, lambda **how: service.scrape(**how), lambda: service.health(), logger=log,
                        settings=settings, extra_routes=api.routes(lambda: service))
    except OSError as exc:
        if pidfile is not None:
            pidfile.release()
        return fail(f"--listen {config.listen}: {exc.strerror or exc}", 2)
    ready_fd = None
    if config.daemon:
        from agent.daemon import daemonize
        ready_fd = daemonize()
    if pidfile is not None:
        try:
            pidfile.write(os.getpid())
        except PidFileError as exc:
            log.error("%s", exc)
            return 1
    service = Service(argv, config, log, registry, cpu_window, server, pidfile, base_dir=start_dir)
    service.start_pusher(config)  # threads only now, after any fork
    service.start_alerting(config)
    if ready_fd is not None:
        from agent.daemon import ready
        ready(ready_fd)
    return service.run()


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
