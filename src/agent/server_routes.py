"""Routing: a `Request` in, a `Response` out.

The router maps a path to a `Route`: a handler, the methods it takes, and
whether it is a probe (/health, open without a token unless
`health_requires_auth`).  Before any route, a request without a valid
bearer token gets 401, so an unauthenticated client learns nothing, not
even which paths exist; then an unknown path 404, a method the route does
not take 405 with `Allow`.  HEAD is served by a route that takes GET; the
server drops the body.

A handler sees the whole request (method, path, query string, headers,
body), so a route may filter on the query (`collect[]`) or take a body and
other methods (a configuration endpoint) by declaring them in its Route;
the server reads bodies up to server_request.MAX_BODY_BYTES.

`standard_routes(scrape, health)` is the agent's table: /metrics renders
what `scrape()` returns in the format and encoding the client asked for,
/health serves `health()` as JSON, / a landing page.  Nothing here knows
about /proc or how access is configured: `settings.tokens` is an object
with `check(authorization)`.
"""

from __future__ import annotations

import json
import logging

from agent.exposition import choose_encoder, choose_gzip, render_gzip
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

    from agent.server_request import Request

WWW_AUTHENTICATE = 'Bearer realm="monitoring-agent"'
TEXT_PLAIN = "text/plain; charset=utf-8"

_LANDING_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>monitoring-agent</title></head>
<body>
<h1>monitoring-agent</h1>
<p>A Linux /proc exporter for Prometheus.</p>
<ul>
<li><a href="/metrics">/metrics</a>: the metrics</li>
<li><a href="/health">/health</a>: the agent's own health, as JSON</li>
</ul>
</body>
</html>
"""


@record
class Response:
    status: int
    content_type: str
    body: bytes
    # Header lines besides Date, Server, Content-Type and -Length and
    # Connection, each ending in CRLF, as they go on the wire.
    headers: str = ""
    refusal: str | None = None  # the agent_http_rejected_total reason this answer counts as


@record
class Route:
    handler: Callable[[Request], Response]
    methods: tuple = ("GET", "HEAD")
    probe: bool = False  # open without a token unless health_requires_auth


_UNAUTHORIZED = Response(401, TEXT_PLAIN, b"401 Unauthorized: a valid bearer token is required\n",
                         f"WWW-Authenticate: {WWW_AUTHENTICATE}\r\n", "unauthorized")
_NOT_FOUND = Response(404, TEXT_PLAIN, b"404 Not Found\n")
_VARY = "Vary: Accept, Accept-Encoding\r\n"
_GZIP_VARY = "Content-Encoding: gzip\r\n" + _VARY


# Methods that change something: they need a token of settings.write_tokens,
# and are refused (405) while there are none.
WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})


class Router:
    """Routes by path; a path ending in `/` also takes every path below it
    (`/api/v1/collectors/` serves `/api/v1/collectors/stat`)."""

    def __init__(self, routes: dict[str, Route]):
        # Each route with the methods it allows while writes are off.
        self._routes = {path: (route, tuple(m for m in route.methods if m not in WRITE_METHODS))
                        for path, route in routes.items()}
        self._prefixes = tuple(path for path in self._routes if path.endswith("/") and path != "/")

    def _route(self, path: str) -> tuple[Route | None, tuple]:
        found = self._routes.get(path)
        if found is None:
            for prefix in self._prefixes:
                if path.startswith(prefix) and len(path) > len(prefix):
                    return self._routes[prefix]
            return None, ()
        return found

    def dispatch(self, request: Request, settings) -> Response:
        route, read_methods = self._route(request.path)
        authorization = request.headers.get("authorization")
        write = request.method in WRITE_METHODS
        if write and settings.write_tokens is not None:
            if not settings.write_tokens.check(authorization):
                return _UNAUTHORIZED
        elif (settings.tokens is not None
              and not (route is not None and route.probe and not settings.health_requires_auth)
              and not settings.tokens.check(authorization)):
            return _UNAUTHORIZED
        if route is None:
            return _NOT_FOUND
        allowed = route.methods if settings.write_tokens is not None else read_methods
        if request.method not in allowed:
            detail = b""
            if write and request.method in route.methods:
                detail = b": changes need --api-write-token-file, which is not set\n"
            return Response(405, TEXT_PLAIN, b"405 Method Not Allowed" + (detail or b"\n"),
                            f"Allow: {', '.join(allowed)}\r\n", "method_not_allowed")
        return route.handler(request)


class ScrapeRefused(ValueError):
    """What a scrape asked for cannot be given (collect[] naming a collector
    that does not run): 400 with this one line."""


def scrape_timeout(header: str | None) -> float | None:
    """The time the collection may take, from Prometheus's
    X-Prometheus-Scrape-Timeout-Seconds: the scraper's limit less a margin
    (a tenth, at most half a second) to render and send the answer before
    it gives up; None without a usable header."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    if not 0 < seconds < 86400:  # NaN too
        return None
    return seconds - min(0.5, seconds / 10)


def scrape_selection(query: str) -> tuple[list[str], list[str]]:
    """node_exporter's collect[] and exclude[] parameters (repeatable)."""
    if not query:
        return [], []
    from urllib.parse import parse_qs  # only for a scrape that carries a query
    params = parse_qs(query, keep_blank_values=False)
    return params.get("collect[]", []), params.get("exclude[]", [])


def standard_routes(scrape: Callable[..., list], health: Callable[[], dict],
                    log: logging.Logger) -> dict[str, Route]:
    """/metrics, /health (a probe) and the landing page.  `scrape` is called
    with `timeout`, `collect` and `exclude` where the request carries them
    (scrape_timeout, scrape_selection), and with nothing otherwise."""

    def metrics(request: Request) -> Response:
        render, content_type = choose_encoder(request.headers.get("accept"))
        gzip = choose_gzip(request.headers.get("accept-encoding"))
        collect, exclude = scrape_selection(request.query)
        timeout = scrape_timeout(request.headers.get("x-prometheus-scrape-timeout-seconds"))
        try:
            # Only what the request carried: a plain scrape is scrape().
            how = {k: v for k, v in (("timeout", timeout), ("collect", collect), ("exclude", exclude)) if v}
            families = scrape(**how)
            body = render_gzip(render, families) if gzip else render(families)
        except ScrapeRefused as exc:
            return Response(400, TEXT_PLAIN, f"400 Bad Request: {exc}\n".encode("utf-8", "replace"))
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            log.exception("scrape failed: %s", exc)
            return Response(500, TEXT_PLAIN, b"500 Internal Server Error: scrape failed, see the agent's log\n")
        return Response(200, content_type, body, _GZIP_VARY if gzip else _VARY)

    def health_page(request: Request) -> Response:
        try:
            body = json.dumps(health(), sort_keys=True).encode("utf-8") + b"\n"
        except Exception as exc:  # noqa: BLE001 -- answer 500, log the traceback
            log.exception("health check failed: %s", exc)
            return Response(500, TEXT_PLAIN, b"500 Internal Server Error: health check failed, see the agent's log\n")
        return Response(200, "application/json", body)

    def landing(request: Request) -> Response:
        return Response(200, "text/html; charset=utf-8", _LANDING_PAGE)

    return {"/metrics": Route(metrics), "/health": Route(health_page, probe=True), "/": Route(landing)}
