"""Alerts without Prometheus: rules from the configuration file's
[alert.NAME] sections, evaluated on the agent's own collection every
alert_interval, notified to Alertmanager's API v2 and to webhooks that
take Alertmanager's webhook payload (docs/STANDALONE_ALERTS.md).

A rule watches one metric the agent exposes (by its sample name, a
counter's with `_total`), optionally divided by another (the same label
set, or one without labels), on the series its label matchers select.
Each series is an alert of its own, as in Prometheus:

    inactive --condition holds--> pending --held for `for`--> firing
    firing --the clear condition no longer holds--> resolved (inactive)

`clear` is a second threshold, so that a value hovering at the threshold
does not flap: a CPU alert at > 80 with clear = 70 resolves only under
70.  A series that disappears while its family stays resolves its alert; a
family missing from a collection (its source failed) changes nothing.

The notifiers each have a bounded queue and a thread: a receiver that is
down or slow delays only its own notifications, never a scrape or the
evaluation; a failed send is retried with a capped, jittered exponential
backoff; past the queue's bound the oldest notification is dropped and
counted.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
import threading
import time
import urllib.parse

from agent import metrics
from agent.metrics import COUNTER, Family, RawFamily
from agent.records import record

TYPE_CHECKING = False  # typing stays unimported at run time (agent/records.py)
if TYPE_CHECKING:
    from typing import Callable

INACTIVE, PENDING, FIRING = 0, 1, 2
STATE_NAMES = ("inactive", "pending", "firing")
ALERT_STATE = metrics.gauge(
    "agent_alert_state", "State of each alert rule: 0 inactive, 1 pending, 2 firing (the highest of its series).",
    ("alert",))
ALERTS_FIRING = metrics.gauge("agent_alerts_firing", "Series of the rule whose alert is firing.", ("alert",))
NOTIFICATIONS_SENT = metrics.counter("agent_alert_notifications_sent", "Notifications the receiver accepted.",
                                     ("receiver",))
NOTIFICATIONS_FAILED = metrics.counter("agent_alert_notifications_failed", "Failed attempts to notify the receiver.",
                                       ("receiver",))
NOTIFICATIONS_DROPPED = metrics.counter(
    "agent_alert_notifications_dropped",
    "Notifications given up: the oldest when the queue was full, or refused by the receiver.", ("receiver",))

OPERATORS = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
QUEUE_LIMIT = 1000
SEND_TIMEOUT = 5.0
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 60.0
RULE_KEYS = ("metric", "divided-by", "match", "condition", "clear", "for")

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|\Z)')
_CONDITION = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*\Z")
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*\Z")
_DURATION_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
_TEMPLATE = re.compile(r"\{\{\s*\$(value|labels\.([a-zA-Z_][a-zA-Z0-9_]*))\s*\}\}")


# --- rules ------------------------------------------------------------------

@record
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str  # the text, or the regular expression (anchored, as PromQL's)

    def matches(self, labels: dict) -> bool:
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        found = re.fullmatch(self.value, got) is not None
        return found if self.op == "=~" else not found


@record
class Rule:
    name: str
    metric: str
    op: str
    threshold: float
    clear: float
    for_seconds: float = 0.0
    divided_by: str = ""
    matchers: tuple = ()
    labels: tuple = ()       # ((name, value), ...)
    annotations: tuple = ()  # ((name, template), ...)

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def still_holds(self, value: float) -> bool:
        """Whether a firing alert stays firing: the condition against the
        clear threshold."""
        return OPERATORS[self.op](value, self.clear)


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_matchers(text: str) -> tuple:
    """`device="sda", mountpoint=~"/(home|var)"`: PromQL's label matchers."""
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _MATCHER.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse label matchers at {text[pos:][:30]!r} "
                             '(expected label="value", label!="value", label=~"regex" or label!~"regex")')
        label, op, value = match.group(1), match.group(2), re.sub(r"\\(.)", r"\1", match.group(3))
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"label matcher {label}{op}: bad regular expression: {exc}") from None
        out.append(Matcher(label, op, value))
        pos = match.end()
        if match.group(4) == "" and pos < len(text):
            raise ValueError(f"label matchers: expected a comma before {text[pos:][:30]!r}")
    return tuple(out)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: {text!r} is not a finite number")
    return value


def _keyed(parse, texts: dict, key: str, default):
    if key not in texts:
        return default
    text, place = texts[key]
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{place}: {exc}") from None


def parse_rule(name: str, texts: dict[str, tuple[str, str]], section: str = "") -> Rule:
    """The rule of section [alert.NAME], from its keys' (text, where)
    pairs; `section` says where the section is.  Raises ValueError with a
    one-line message naming the key."""
    section = section or f"[alert.{name}]"
    if not _NAME.match(name):
        raise ValueError(f"{section}: an alert name is a metric-style name (letters, digits, _ and :)")

    def where(key: str) -> str:
        return texts[key][1]

    def need(key: str) -> str:
        if key not in texts:
            raise ValueError(f"{section}: {key}: required")
        return texts[key][0]

    labels, annotations = [], []
    for key, (text, place) in texts.items():
        if key.startswith("label."):
            label = key.removeprefix("label.")
            if not _LABEL.match(label) or label == "alertname":
                raise ValueError(f"{place}: {label!r} is not a label name one may set")
            labels.append((label, text))
        elif key.startswith("annotation."):
            annotation = key.removeprefix("annotation.")
            if not _LABEL.match(annotation):
                raise ValueError(f"{place}: {annotation!r} is not an annotation name")
            annotations.append((annotation, text))
        elif key not in RULE_KEYS:
            raise ValueError(f"{place}: unknown key (expected {', '.join(RULE_KEYS)}, label.NAME or annotation.NAME)")
    metric = need("metric")
    if not _NAME.match(metric):
        raise ValueError(f"{where('metric')}: {metric!r} is not a metric name")
    divided_by = texts.get("divided-by", ("", ""))[0]
    if divided_by and not _NAME.match(divided_by):
        raise ValueError(f"{where('divided-by')}: {divided_by!r} is not a metric name")
    condition = _CONDITION.match(need("condition"))
    if condition is None:
        raise ValueError(f"{where('condition')}: expected an operator (>, >=, <, <=, == or !=) and a number, "
                         f"e.g. '> 80'")
    op = condition.group(1)
    threshold = _number(condition.group(2), where("condition"))
    clear = threshold
    if "clear" in texts:
        if op in ("==", "!="):
            raise ValueError(f"{where('clear')}: a clear threshold goes with >, >=, < or <=")
        clear = _number(texts["clear"][0], where("clear"))
        if (op in (">", ">=") and clear > threshold) or (op in ("<", "<=") and clear < threshold):
            side = "at or under" if op in (">", ">=") else "at or over"
            raise ValueError(f"{where('clear')}: must be {side} the threshold ({threshold:g}), "
                             f"or the alert would resolve before it fires")
    for_seconds = _keyed(parse_duration, texts, "for", 0.0)
    matchers = _keyed(parse_matchers, texts, "match", ())
    return Rule(name, metric, op, threshold, clear, for_seconds, divided_by, matchers,
                tuple(sorted(labels)), tuple(sorted(annotations)))


# --- evaluation ---------------------------------------------------------------

def series_values(families: list, name: str) -> dict[tuple, float] | None:
    """{sorted label pairs: value} of the samples called `name` (a
    counter's with `_total`), NaN left out; None when no family holds it
    (its collector failed or did not run)."""
    out: dict[tuple, float] | None = None
    for family in families:
        desc = family.desc
        if isinstance(family, RawFamily):
            for (sample_name, pairs), value in family.samples:
                if sample_name == name:
                    out = {} if out is None else out
                    out[tuple(sorted((k, v) for k, v in pairs if v != ""))] = float(value)
            continue
        sample_name = desc.name + "_total" if desc.type == COUNTER else desc.name
        if sample_name != name:
            continue
        out = {} if out is None else out
        for values, value in family.samples:
            out[tuple(sorted((k, v) for k, v in zip(desc.label_names, values) if v != ""))] = float(value)
    return None if out is None else {k: v for k, v in out.items() if not math.isnan(v)}


@record
class Alert:
    """One series' alert, as the notifiers see it."""
    rule: str
    labels: tuple       # sorted (name, value) pairs, alertname first included
    annotations: tuple  # sorted (name, text) pairs
    starts_at: float    # wall-clock seconds, when it started firing
    ends_at: float | None  # None while firing
    fingerprint: str


class _Instance:
    __slots__ = ("state", "since", "fired_at", "value")

    def __init__(self, since: float):
        self.state = PENDING
        self.since = since  # monotonic: when the condition began to hold
        self.fired_at = 0.0  # wall clock
        self.value = math.nan


def fingerprint(labels: tuple) -> str:
    """Alertmanager's fingerprint of a label set: 64-bit FNV-1a over the
    sorted names and values, each followed by the byte 0xff."""
    h = 0xCBF29CE484222325
    for name, value in sorted(labels):
        for part in (name, value):
            for byte in part.encode("utf-8") + b"\xff":
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _render(template: str, value: float, labels: dict) -> str:
    def fill(match: re.Match) -> str:
        if match.group(1) == "value":
            return f"{value:g}"
        return labels.get(match.group(2), "")
    return _TEMPLATE.sub(fill, template)


class RuleState:
    """A rule's series: the alerts pending or firing, by label set."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.instances: dict[tuple, _Instance] = {}
        self.series = 0

    def evaluate(self, families: list, mono: float, wall: float, hostname: str) -> tuple[list, list]:
        """(alerts that started firing, alerts that resolved)."""
        rule = self.rule
        values = series_values(families, rule.metric)
        divisors = series_values(families, rule.divided_by) if rule.divided_by else {}
        if values is None or divisors is None:
            # Not in this collection (its source failed, or a scrape's
            # timeout cut it): no news, so no alert changes on it.  A series
            # that goes while its family stays resolves its alert.
            return [], []
        if rule.divided_by:
            whole = divisors.get(())
            ratios = {}
            for key, value in values.items():
                divisor = divisors.get(key, whole)
                if divisor:  # none, or zero: no ratio
                    ratios[key] = value / divisor
            values = ratios
        if rule.matchers:
            values = {k: v for k, v in values.items() if all(m.matches(dict(k)) for m in rule.matchers)}
        self.series = len(values)
        fired, resolved = [], []
        for key, value in values.items():
            inst = self.instances.get(key)
            if inst is None:
                if rule.holds(value):
                    inst = self.instances[key] = _Instance(mono)
                else:
                    continue
            inst.value = value
            if inst.state == PENDING:
                if not rule.holds(value):
                    del self.instances[key]
                elif mono - inst.since >= rule.for_seconds:
                    inst.state, inst.fired_at = FIRING, wall
                    fired.append(self.alert(key, inst, hostname, None))
            elif not rule.still_holds(value):
                del self.instances[key]
                resolved.append(self.alert(key, inst, hostname, wall))
        for key in [k for k in self.instances if k not in values]:  # the series went away
            inst = self.instances.pop(key)
            if inst.state == FIRING:
                resolved.append(self.alert(key, inst, hostname, wall))
        return fired, resolved

    def alert(self, key: tuple, inst: _Instance, hostname: str, ends_at: float | None) -> Alert:
        labels = dict(key)
        labels.setdefault("instance", hostname)
        labels.update(self.rule.labels)
        labels["alertname"] = self.rule.name
        pairs = tuple(sorted(labels.items()))
        annotations = tuple((k, _render(t, inst.value, labels)) for k, t in self.rule.annotations)
        return Alert(self.rule.name, pairs, annotations, inst.fired_at, ends_at, fingerprint(pairs))

    def firing(self, hostname: str) -> list[Alert]:
        return [self.alert(k, i, hostname, None) for k, i in self.instances.items() if i.state == FIRING]

    def state(self) -> int:
        return max((i.state for i in self.instances.values()), default=INACTIVE)


# --- notifications ------------------------------------------------------------

def _iso(seconds: float) -> str:
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def alertmanager_body(alerts: list[Alert], valid_until: float, generator_url: str) -> bytes:
    """POST /api/v2/alerts: a firing alert's endsAt is how long it stays
    valid without news (Alertmanager resolves it then, should the agent
    die), as Prometheus sends it."""
    return json.dumps([{
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "startsAt": _iso(a.starts_at),
        "endsAt": _iso(valid_until if a.ends_at is None else a.ends_at),
        "generatorURL": generator_url,
    } for a in alerts]).encode("utf-8")


def webhook_body(rule: str, alerts: list[Alert], receiver: str, external_url: str, generator_url: str) -> bytes:
    """Alertmanager's webhook payload (version 4) for one rule's alerts."""
    def common(pairs_list):
        sets = [dict(p) for p in pairs_list]
        return {k: v for k, v in sets[0].items() if all(s.get(k) == v for s in sets[1:])} if sets else {}

    firing = any(a.ends_at is None for a in alerts)
    return json.dumps({
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{rule}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": rule},
        "commonLabels": common([a.labels for a in alerts]),
        "commonAnnotations": common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [{
            "status": "firing" if a.ends_at is None else "resolved",
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "startsAt": _iso(a.starts_at),
            "endsAt": "0001-01-01T00:00:00Z" if a.ends_at is None else _iso(a.ends_at),
            "generatorURL": generator_url,
            "fingerprint": a.fingerprint,
        } for a in alerts],
    }).encode("utf-8")


def parse_receiver_url(url: str, what: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: {what} is an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if parts.username is not None:
        raise ValueError(f"{url!r}: credentials in the URL are not supported")
    return parts


class Receiver:
    """One Alertmanager or webhook URL: a bounded queue of request bodies
    and a thread that POSTs them in order, retrying with backoff."""

    def __init__(self, kind: str, url: str, log: logging.Logger):
        self.kind = kind  # "alertmanager" or "webhook"
        self.url = url
        parts = parse_receiver_url(url, kind)
        self.parts = parts
        path = parts.path.rstrip("/") if kind == "alertmanager" else (parts.path or "/")
        self.path = path + "/api/v2/alerts" if kind == "alertmanager" else path
        if parts.query:
            self.path += "?" + parts.query
        self.log = log
        self.queue: collections.deque[bytes] = collections.deque()
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.sent = self.failed = self.dropped = 0
        self.stopping = False
        self.failing = False
        self.thread = threading.Thread(target=self._loop, name=f"alerts {url}", daemon=True)

    def enqueue(self, body: bytes) -> None:
        with self.lock:
            self.queue.append(body)
            while len(self.queue) > QUEUE_LIMIT:
                self.queue.popleft()
                self.dropped += 1
            self.ready.notify()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.ready.notify()

    def _loop(self) -> None:
        backoff = 0.0
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.ready.wait()
                if self.stopping and (not self.queue or backoff):
                    return
                body = self.queue[0]
            status, reason = self._post(body)
            with self.lock:
                if 200 <= status < 300 or (400 <= status < 500 and status not in (408, 429)):
                    # Delivered, or refused for good (it would be refused again).
                    if self.queue and self.queue[0] is body:
                        self.queue.popleft()
                    if status < 300:
                        self.sent += 1
                    else:
                        self.dropped += 1
                        self.log.error("alerts to %s: HTTP %d %s: notification dropped", self.url, status, reason)
                    if self.failing and status < 300:
                        self.log.info("alerts to %s: delivering again", self.url)
                    self.failing = status >= 300 and self.failing
                    backoff = 0.0
                    continue
                self.failed += 1
                if not self.failing:
                    self.log.error("alerts to %s failing: %s (retrying with backoff)", self.url, reason)
                    self.failing = True
                backoff = BACKOFF_INITIAL if backoff == 0 else min(backoff * 2, BACKOFF_MAX)
                self.ready.wait(backoff * random.uniform(0.5, 1.0))

    def _post(self, body: bytes) -> tuple[int, str]:
        import http.client  # only with a receiver configured (docs/PUSH.md, footprint)
        parts = self.parts
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=SEND_TIMEOUT)
        try:
            conn.request("POST", self.path, body, {"Content-Type": "application/json",
                                                    "User-Agent": "monitoring-agent"})
            resp = conn.getresponse()
            resp.read(4096)
            return resp.status, resp.reason
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc) or type(exc).__name__
        finally:
            conn.close()


class Alerting:
    """The rules, evaluated every `interval` on `collect()`'s families in a
    thread of their own, and the receivers they notify."""

    def __init__(self, rules: list[Rule], collect: Callable[[], list], hostname: str, log: logging.Logger,
                 interval: float = 15.0, resend: float = 60.0, alertmanagers: tuple = (), webhooks: tuple = (),
                 external_url: str = ""):
        self.rules = [RuleState(r) for r in rules]
        self.collect = collect
        self.hostname = hostname
        self.log = log
        self.interval = interval
        self.resend = resend
        self.external_url = external_url
        self.generator_url = external_url + "/health" if external_url else ""
        self.receivers = ([Receiver("alertmanager", u, log) for u in alertmanagers]
                          + [Receiver("webhook", u, log) for u in webhooks])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sent = -math.inf
        self.evaluations = 0

    def adopt(self, old: Alerting | None) -> None:
        """Keep the pending and firing alerts of the rules a reload left
        unchanged."""
        if old is None:
            return
        self._last_sent = old._last_sent  # the resend schedule goes on
        previous = {s.rule: s for s in old.rules}
        for state in self.rules:
            if state.rule in previous:
                state.instances = previous[state.rule].instances

    def start(self) -> None:
        for r in self.receivers:
            r.thread.start()
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for r in self.receivers:
            r.stop()
        for r in self.receivers:
            if r.thread.is_alive():
                r.thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                families = self.collect()
            except Exception as exc:  # noqa: BLE001 -- logged once; the next interval tries again
                if not failing:
                    self.log.error("alerts: collection failed: %s: %s", type(exc).__name__, exc)
                failing = True
            else:
                failing = False
                self.evaluate(families, time.monotonic(), time.time())
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def evaluate(self, families: list, mono: float, wall: float) -> None:
        self.evaluations += 1
        changed: dict[str, list[Alert]] = {}
        for state in self.rules:
            fired, resolved = state.evaluate(families, mono, wall, self.hostname)
            for alert in fired:
                self.log.warning("alert %s firing: %s", alert.rule, _describe(alert))
            for alert in resolved:
                self.log.info("alert %s resolved: %s", alert.rule, _describe(alert))
            if fired or resolved:
                changed[state.rule.name] = fired + resolved
        resend = mono - self._last_sent >= self.resend
        if not self.receivers or not (changed or resend):
            return
        # On a change, that rule's alerts; at each resend, every firing
        # alert (Alertmanager forgets one whose endsAt passes).
        groups: dict[str, list[Alert]] = {}
        for state in self.rules:
            name = state.rule.name
            if resend or name in changed:
                alerts = state.firing(self.hostname)
                alerts += [a for a in changed.get(name, ()) if a.ends_at is not None]
                if alerts:
                    groups[name] = alerts
        if resend:
            self._last_sent = mono
        if not groups:
            return
        valid_until = wall + 4 * max(self.resend, self.interval)
        for receiver in self.receivers:
            if receiver.kind == "alertmanager":
                everything = [a for alerts in groups.values() for a in alerts]
                receiver.enqueue(alertmanager_body(everything, valid_until, self.generator_url))
            else:
                for name, alerts in groups.items():
                    receiver.enqueue(webhook_body(name, alerts, "monitoring-agent", self.external_url,
                                                  self.generator_url))

    def families(self) -> list[Family]:
        out = [Family(ALERT_STATE, [((s.rule.name,), s.state()) for s in self.rules]),
               Family(ALERTS_FIRING, [((s.rule.name,), sum(1 for i in s.instances.values() if i.state == FIRING))
                                      for s in self.rules])]
        if self.receivers:
            sent, failed, dropped = [], [], []
            for r in self.receivers:
                with r.lock:
                    sent.append(((r.url,), r.sent))
                    failed.append(((r.url,), r.failed))
                    dropped.append(((r.url,), r.dropped))
            out += [Family(NOTIFICATIONS_SENT, sent), Family(NOTIFICATIONS_FAILED, failed),
                    Family(NOTIFICATIONS_DROPPED, dropped)]
        return out

    def health(self) -> dict:
        return {s.rule.name: {
            "state": STATE_NAMES[s.state()],
            "series": s.series,
            "pending": sum(1 for i in s.instances.values() if i.state == PENDING),
            "firing": sum(1 for i in s.instances.values() if i.state == FIRING),
        } for s in self.rules}


def _describe(alert: Alert) -> str:
    return ", ".join(f"{k}={v}" for k, v in alert.labels if k != "alertname") or "-"
