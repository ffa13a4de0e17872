"""The monitoring HTTP server (aiohttp, in the collector's process): ``/metrics``, ``/health``.

It reads the collector only through :class:`MonitoringSources`. More pages (a dashboard and
its event stream) join the same host and port as ``extra_routes``.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from data_collector.cache import Snapshot
from data_collector.monitoring.health import HealthRules, health
from data_collector.monitoring.metrics import Metrics
from data_collector.monitoring.sources import MonitoringSources
from data_collector.scheduler import TickStats

log = structlog.get_logger("data_collector.monitoring")


class MonitoringServer:
    """/metrics and /health for one collector, on ``host:port`` (port 0: any free one)."""

    def __init__(
        self,
        sources: MonitoringSources,
        rules: HealthRules,
        host: str,
        port: int,
        *,
        extra_routes: Iterable[web.RouteDef] = (),
    ) -> None:
        self.sources = sources
        self.rules = rules
        self.host = host
        self.port = port
        self.metrics = Metrics(sources.read, sources.venues)
        self._routes = [
            web.get("/metrics", self._metrics),
            web.get("/health", self._health),
            *extra_routes,
        ]
        self._runner: web.AppRunner | None = None

    def after_tick(self, snap: Snapshot, stats: TickStats) -> None:
        """A scheduler observer: feed the per-tick histograms."""
        self.metrics.after_tick(snap, stats)

    async def start(self) -> None:
        """Listen; raises OSError when the port is taken."""
        app = web.Application()
        app.add_routes(self._routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info(
            "monitoring_started",
            url=self.url,
            summary=f"Monitoring on {self.url}/metrics and {self.url}/health",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, _request: web.Request) -> web.Response:
        status, body = health(self.sources.read(), self.rules)
        return web.json_response(body, status=status)
