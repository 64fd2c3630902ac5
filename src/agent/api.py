"""The REST configuration API under /api/v1 (docs/API.md).

    GET   /api/v1/config            every option: value, where it came from, whether the API may change it
    PATCH /api/v1/config            change options and collectors (the layer's shape, agent.config)
    GET   /api/v1/collectors        each collector: enabled, last duration, last outcome, stuck or not
    GET   /api/v1/collectors/NAME   one of them
    PUT   /api/v1/collectors/NAME   {"enabled": false} (and its "options")
    GET   /api/v1/openapi.json      this API's OpenAPI 3 document

A change is applied as a SIGHUP reload applies a file: validated whole,
all or nothing (agent.service.Service.apply_api); a bad value is answered
400 with the one line the command line would print.  Writes need a token
of --api-write-token-file (the router refuses them otherwise: 405 without
one configured, 401 with a wrong one).  No secret is ever a value here: a
token file's path, never its tokens.
"""

from __future__ import annotations

import json
import re

from agent import collectors as collector_table
from agent.config import SETTING, SETTINGS, api_text
from agent.server_routes import Response, Route

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

    from agent.server_request import Request

JSON = "application/json"
PREFIX = "/api/v1"
SOURCES = ("default", "file", "flag", "api")
OUTCOMES = ("ok", "error", "no_data", "not_run", "disabled")


def _json(status: int, document) -> Response:
    return Response(status, JSON, json.dumps(document, sort_keys=True).encode("utf-8") + b"\n")


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def _plain(value):
    """A configured value as JSON shows it: a compiled pattern as its text."""
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def config_document(config) -> dict:
    origins = config.origins
    options = {
        s.key: {"value": _plain(getattr(config, s.name)), "source": origins.get(s.name, "default"),
                "changeable": s.api, "reload": s.reload}
        for s in SETTINGS if s.file
    }
    collectors = {}
    for entry in collector_table.TABLE:
        values = config.collector_options[entry.name]
        collectors[entry.name] = {
            "enabled": entry.name in config.collectors,
            "source": origins.get(f"collector.{entry.name}", "default"),
            "options": {option.name: {"value": _plain(values[option.name]),
                                      "source": origins.get(f"collector.{entry.name}.{option.name}", "default")}
                        for option in collector_table.options_of(entry)},
        }
    return {"options": options, "collectors": collectors, "alerts": [r.name for r in config.alert_rules]}


def collector_state(name: str, config, health: dict) -> dict:
    enabled = name in config.collectors
    state = health["sources"].get(name) if enabled else None
    if state is None:
        outcome = "not_run" if enabled else "disabled"
        return {"name": name, "enabled": enabled, "outcome": outcome, "duration_seconds": None,
                "error": None, "stuck": False, "last_success": None}
    if state["ok"] is None:
        outcome = "not_run"
    elif not state["ok"]:
        outcome = "error"
    else:
        outcome = "no_data" if "no_data" in state else "ok"
    return {"name": name, "enabled": True, "outcome": outcome,
            "duration_seconds": state["duration_seconds"] if state["ok"] is not None else None,
            "error": state["error"], "stuck": bool(state.get("stuck")), "last_success": state["last_success"]}


_JSON_TYPES = {"string": (str,), "boolean": (bool,), "integer": (int,), "number": (int, float)}
_TYPE_WORDS = {"string": "a string", "boolean": "true or false", "integer": "an integer", "number": "a number"}


def _scalar_change(value, where: str, parse=None):
    """A value of a change as the text a file would hold; its JSON type
    must be the one the option's schema says (`parse` unknown: any scalar)."""
    if value is None:
        return None
    kind = _value_schema(parse).get("type") if parse is not None else None
    if kind is None:
        ok = isinstance(value, (str, bool, int, float))
    else:
        ok = isinstance(value, _JSON_TYPES[kind]) and not (isinstance(value, bool) and kind != "boolean")
    if not ok:
        raise ValueError(f"{where}: expected {_TYPE_WORDS.get(kind, 'a string, a number or a boolean')} or null")
    return api_text(value)


def _collector_option_parser(collector: str, option: str):
    entry = collector_table.BY_NAME.get(collector)
    for declared in collector_table.options_of(entry) if entry is not None else ():
        if declared.name == option:
            return declared.parse
    return None


def parse_config_change(body: bytes) -> dict:
    """PATCH /api/v1/config's body, as the layer's shape with texts (None
    takes the API's word back).  Raises ValueError with one line."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(document, dict) or set(document) - {"options", "collectors"}:
        raise ValueError('expected a JSON object with "options" and/or "collectors"')
    options = document.get("options", {})
    if not isinstance(options, dict):
        raise ValueError('"options" must be an object of option keys to values')
    change: dict = {"options": {}, "collectors": {}}
    for key, value in options.items():
        setting = SETTING.get(key.replace("-", "_"))
        if setting is None or not setting.file:
            raise ValueError(f"API: {key}: unknown option")
        if not setting.api:
            raise ValueError(f"API: {key}: not an option the API may change (a file or flag one)")
        change["options"][key] = _scalar_change(value, f"options.{key}", setting.parse)
    collectors = document.get("collectors", {})
    if not isinstance(collectors, dict):
        raise ValueError('"collectors" must be an object of collector names to changes')
    for name, c in collectors.items():
        if name not in collector_table.BY_NAME:
            raise ValueError(f"API: collector {name!r}: unknown collector (known: {', '.join(collector_table.BY_NAME)})")
        change["collectors"][name] = _collector_change(c, name, f"collectors.{name}", enabled_required=False)
    return change


def parse_collector_change(body: bytes, name: str) -> dict:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    return {"collectors": {name: _collector_change(document, name, "the body", enabled_required=True)}}


def _collector_change(c, name: str, where: str, enabled_required: bool) -> dict:
    if not isinstance(c, dict) or set(c) - {"enabled", "options"}:
        raise ValueError(f'{where}: expected an object with "enabled" and/or "options"')
    out: dict = {}
    if "enabled" in c:
        if not isinstance(c["enabled"], bool) and not (c["enabled"] is None and not enabled_required):
            raise ValueError(f"{where}.enabled: expected true or false")
        out["enabled"] = c["enabled"]
    elif enabled_required:
        raise ValueError(f'{where}: "enabled" (true or false) is required')
    options = c.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{where}.options: expected an object of option names to values")
    if options:
        out["options"] = {}
        for option, value in options.items():
            parse = _collector_option_parser(name, option)
            if parse is None:
                raise ValueError(f"API: collector.{name}.{option}: unknown option")
            out["options"][option] = _scalar_change(value, f"{where}.options.{option}", parse)
    return out


def routes(service: Callable[[], object]) -> dict[str, Route]:
    """The API's routes; `service()` is the running agent.service.Service."""

    def config(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                change = parse_config_change(request.body)
            except ValueError as exc:
                return _error(400, str(exc))
            error = service().apply_api(change, request.peer)
            if error is not None:
                return _error(400, error)
        return _json(200, config_document(service().config))

    def collectors(request: Request) -> Response:
        svc = service()
        health = svc.registry.health()
        return _json(200, {"collectors": [collector_state(e.name, svc.config, health)
                                          for e in collector_table.TABLE]})

    def one_collector(request: Request) -> Response:
        name = request.path.removeprefix(PREFIX + "/collectors/")
        if name not in collector_table.BY_NAME:
            return _error(404, f"no collector {name!r} (known: {', '.join(collector_table.BY_NAME)})")
        if request.method == "PUT":
            try:
                change = parse_collector_change(request.body, name)
            except ValueError as exc:
                return _error(400, str(exc))
            error = service().apply_api(change, request.peer)
            if error is not None:
                return _error(400, error)
        svc = service()
        return _json(200, collector_state(name, svc.config, svc.registry.health()))

    def openapi(request: Request) -> Response:
        return _json(200, OPENAPI)

    return {
        PREFIX + "/config": Route(config, ("GET", "HEAD", "PATCH")),
        PREFIX + "/collectors": Route(collectors),
        PREFIX + "/collectors/": Route(one_collector, ("GET", "HEAD", "PUT")),
        PREFIX + "/openapi.json": Route(openapi),
    }


# --- the OpenAPI document ------------------------------------------------------

_SCALAR = {"nullable": True, "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}


def _value_schema(parse) -> dict:
    """What a value may be, from its parser: a bounded number, one of a
    choice, a boolean, or else any scalar, which the parser then checks as
    the file's text (null: the API's change taken back)."""
    schema = getattr(parse, "schema", None)
    if schema is None:
        if parse is not collector_table.boolean:
            return _SCALAR
        schema = {"type": "boolean"}
    if "enum" in schema:  # OpenAPI 3.0: a nullable enum lists null too
        schema = {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "nullable": True}


def _change_schema() -> dict:
    """PATCH /api/v1/config's body, derived from the declarations: the
    options the API may change, each collector and its options."""
    options = {s.key: _value_schema(s.parse) for s in SETTINGS if s.api}
    collectors = {
        entry.name: {"type": "object", "additionalProperties": False, "properties": {
            "enabled": {"type": "boolean", "nullable": True},
            "options": {"type": "object", "additionalProperties": False, "properties": {
                option.name: _value_schema(option.parse) for option in collector_table.options_of(entry)}}}}
        for entry in collector_table.TABLE}
    return {"type": "object", "additionalProperties": False, "properties": {
        "options": {"type": "object", "additionalProperties": False, "properties": options},
        "collectors": {"type": "object", "additionalProperties": False, "properties": collectors}}}
_ERROR = {"description": "refused: the reason, in one line", "content": {JSON: {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
    "additionalProperties": False}}}}
_COLLECTOR_CHANGE = {
    "type": "object", "additionalProperties": False,
    "properties": {"enabled": {"type": "boolean", "nullable": True},
                   "options": {"type": "object", "additionalProperties": _SCALAR}},
}
_COLLECTOR_STATE = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "enabled", "outcome", "duration_seconds", "error", "stuck", "last_success"],
    "properties": {
        "name": {"type": "string"}, "enabled": {"type": "boolean"},
        "outcome": {"type": "string", "enum": list(OUTCOMES)},
        "duration_seconds": {"type": "number", "nullable": True},
        "error": {"type": "string", "nullable": True}, "stuck": {"type": "boolean"},
        "last_success": {"type": "number", "nullable": True},
    },
}
_SOURCE = {"type": "string", "enum": list(SOURCES)}
_CONFIG_DOCUMENT = {
    "type": "object", "required": ["options", "collectors", "alerts"], "additionalProperties": False,
    "properties": {
        "options": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["value", "source", "changeable", "reload"], "additionalProperties": False,
            "properties": {"value": {"nullable": True}, "source": _SOURCE, "changeable": {"type": "boolean"},
                           "reload": {"type": "boolean"}}}},
        "collectors": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["enabled", "source", "options"], "additionalProperties": False,
            "properties": {"enabled": {"type": "boolean"}, "source": _SOURCE, "options": {
                "type": "object", "additionalProperties": {
                    "type": "object", "required": ["value", "source"], "additionalProperties": False,
                    "properties": {"value": {"nullable": True}, "source": _SOURCE}}}}}},
        "alerts": {"type": "array", "items": {"type": "string"}},
    },
}
_UNAUTHORIZED = {"description": "a bearer token is missing or wrong"}
_NOT_ALLOWED = {"description": "changes are off: no --api-write-token-file"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _ok(schema: dict, what: str) -> dict:
    return {"description": what, "content": {JSON: {"schema": schema}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "monitoring-agent configuration API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        PREFIX + "/config": {
            "get": {"summary": "the configuration in force", "responses": {
                "200": _ok(_CONFIG_DOCUMENT, "every option and collector"), "401": _UNAUTHORIZED}},
            "patch": {
                "summary": "change options and collectors, as a reload would; null takes a change back",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {JSON: {"schema": _change_schema()}}},
                "responses": {"200": _ok(_CONFIG_DOCUMENT, "applied: the configuration now in force"),
                              "400": _ERROR, "401": _UNAUTHORIZED, "405": _NOT_ALLOWED}},
        },
        PREFIX + "/collectors": {
            "get": {"summary": "each collector's state", "responses": {
                "200": _ok({"type": "object", "required": ["collectors"], "additionalProperties": False,
                            "properties": {"collectors": {"type": "array", "items": _COLLECTOR_STATE}}},
                           "every collector"), "401": _UNAUTHORIZED}},
        },
        PREFIX + "/collectors/{name}": {
            "get": {"summary": "one collector's state", "parameters": [_NAME], "responses": {
                "200": _ok(_COLLECTOR_STATE, "the collector"), "404": _ERROR, "401": _UNAUTHORIZED}},
            "put": {
                "summary": "turn a collector on or off (and set its options)", "parameters": [_NAME],
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {JSON: {"schema": {
                    **_COLLECTOR_CHANGE, "required": ["enabled"],
                    "properties": {**_COLLECTOR_CHANGE["properties"], "enabled": {"type": "boolean"}}}}}},
                "responses": {"200": _ok(_COLLECTOR_STATE, "applied: the collector's state"), "400": _ERROR,
                              "404": _ERROR, "401": _UNAUTHORIZED, "405": _NOT_ALLOWED}},
        },
        PREFIX + "/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3.0"}}},
        },
    },
}
