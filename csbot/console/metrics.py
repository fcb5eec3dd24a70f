"""Console: Prometheus metrics. One registry per application (no process globals, so tests and several
apps in one process never share counters). Gauges are read from the database at scrape time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as CounterMetric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BREACHES = ("reply", "resolve")  # the after-sales deadlines a case can miss (csbot.aftersales.cases.assess)


@dataclass(frozen=True)
class CaseCounts:
    """Open after-sales cases and their missed deadlines, per shop (every configured shop, zeros included)."""

    shops: tuple[str, ...]
    open: Counter[str]
    breaches: Counter[tuple[str, str]]  # (shop, deadline)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = CounterMetric("csbot_webhook_requests", "Webhook requests by path and HTTP status",
                                ["path", "status"], registry=self.registry)
        self.webhook_latency = Histogram("csbot_webhook_latency_seconds", "Webhook handling time by HTTP status",
                                         ["status"], registry=self.registry,
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
        self.outbox = Gauge("csbot_outbox_items", "Outbox rows by status (dead = dead letters)", ["status"],
                            registry=self.registry)
        self.reminders = Gauge("csbot_reminders", "Reminder rows by status", ["status"], registry=self.registry)
        self.live_listeners = Gauge("csbot_console_listeners", "Open console WebSockets", registry=self.registry)
        self.cases_open = Gauge("csbot_cases_open", "Open after-sales cases by shop", ["shop"], registry=self.registry)
        self.case_breaches = Gauge("csbot_case_breaches",
                                   "Open after-sales cases past a deadline, by shop and deadline (reply, resolve)",
                                   ["shop", "deadline"], registry=self.registry)

    def observe_webhook(self, path: str, status: int, seconds: float) -> None:
        self.webhooks.labels(path, str(status)).inc()
        self.webhook_latency.labels(str(status)).observe(seconds)

    def set_gauges(self, outbox: dict[str, int], reminders: dict[str, int], listeners: int,
                   cases: CaseCounts) -> None:
        for status in ("pending", "sending", "delivered", "dead") + tuple(outbox):
            self.outbox.labels(status).set(outbox.get(status, 0))
        for status in ("pending", "claimed", "sent", "cancelled", "skipped") + tuple(reminders):
            self.reminders.labels(status).set(reminders.get(status, 0))
        self.live_listeners.set(listeners)
        for shop in cases.shops:
            self.cases_open.labels(shop).set(cases.open[shop])
            for deadline in BREACHES:
                self.case_breaches.labels(shop, deadline).set(cases.breaches[shop, deadline])

    def render(self) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp


def metrics_middleware(get: Callable[[web.Application], Metrics]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/webhooks/"):
            return await handler(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            get(request.app).observe_webhook(request.path, status, time.perf_counter() - started)

    return middleware
