"""The dashboard's routes on the monitoring server: ``/`` (the page), ``/dashboard/<asset>``,
``/dashboard/events`` (Server-Sent Events, one state a second) and ``/dashboard/state`` (the
current state once, as JSON).

Assets are read once from the package (they work offline, behind any firewall) and served
from a fixed table, so no request path ever reaches the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources

from aiohttp import web

from data_collector.dashboard.feed import DashboardFeed

#: asset file -> content type
ASSETS = {
    "index.html": "text/html",
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
}
#: a viewer whose socket takes longer than this to accept one frame is disconnected
WRITE_TIMEOUT_S = 30.0
#: how long a browser waits before reconnecting a dropped stream (SSE ``retry``)
RECONNECT_MS = 2000


def _read_assets() -> dict[str, bytes]:
    folder = resources.files("data_collector.dashboard") / "static"
    return {name: (folder / name).read_bytes() for name in ASSETS}


class DashboardRoutes:
    def __init__(self, feed: DashboardFeed) -> None:
        self.feed = feed
        self._assets = _read_assets()
        self._streams: set[asyncio.Task[object]] = set()
        self._closed = False

    def close(self) -> None:
        """End every open stream, also one stuck writing to a viewer that stopped reading, so
        the server's shutdown never waits on a viewer."""
        self._closed = True
        self.feed.close()
        for task in self._streams:
            task.cancel()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/dashboard/events", self._events),
            web.get("/dashboard/state", self._state),
            web.get("/dashboard/{name}", self._asset),
        ]

    async def _index(self, _request: web.Request) -> web.Response:
        return self._serve("index.html")

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return self._serve(name)

    def _serve(self, name: str) -> web.Response:
        return web.Response(
            body=self._assets[name],
            content_type=ASSETS[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _state(self, _request: web.Request) -> web.Response:
        payload = self.feed.payload()
        if payload is None:
            return web.json_response({"error": "no snapshot yet"}, status=503)
        return web.Response(body=payload, content_type="application/json")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._closed:
            raise web.HTTPServiceUnavailable()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a reverse proxy must pass frames on at once
            }
        )
        await response.prepare(request)
        viewer = self.feed.subscribe()
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
            while (frame := await viewer.next()) is not None:
                await asyncio.wait_for(response.write(frame), WRITE_TIMEOUT_S)
        except (ConnectionError, TimeoutError):
            pass  # the viewer went away or stopped reading: its stream ends here
        finally:
            self.feed.unsubscribe(viewer)
            self._streams.discard(task)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
