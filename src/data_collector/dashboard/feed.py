"""One dashboard state per tick, fanned out as the same bytes to every viewer.

The scheduler calls :meth:`DashboardFeed.after_tick` (an observer); the state is built on the
next turn of the event loop, not inside the tick, and only while someone watches. Each viewer
has a :class:`Viewer` holding at most ``depth`` frames: a viewer that reads slowly loses its
oldest frames (each frame is a whole state, so the next one makes up for it) and never holds
up the collector or the other viewers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime

import msgspec

from data_collector.cache import Snapshot
from data_collector.dashboard.state import StateBuilder
from data_collector.monitoring.sources import CollectorStatus
from data_collector.scheduler import TickStats

#: frames a viewer may fall behind before its oldest is dropped
VIEWER_DEPTH = 2

_encode = msgspec.json.Encoder().encode


class Viewer:
    """One open stream's frames, newest last."""

    def __init__(self, depth: int = VIEWER_DEPTH) -> None:
        self._frames: deque[bytes] = deque(maxlen=depth)
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped = 0

    def push(self, frame: bytes) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    async def next(self) -> bytes | None:
        """The next frame; None once the feed closed."""
        while not self._frames:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


def sse_frame(payload: bytes) -> bytes:
    """One Server-Sent Events message (a JSON payload holds no raw newline)."""
    return b"data: " + payload + b"\n\n"


class DashboardFeed:
    def __init__(self, builder: StateBuilder, read_status: Callable[[], CollectorStatus]) -> None:
        self.builder = builder
        self._read_status = read_status
        self.viewers: set[Viewer] = set()
        #: the last tick's snapshot and time, and the state built from it (if any)
        self._tick: tuple[Snapshot, datetime, int] | None = None
        self._payload: bytes | None = None
        self._scheduled = False
        #: states built (one per tick while someone watches), for tests and the bench
        self.built = 0

    def after_tick(self, snap: Snapshot, stats: TickStats) -> None:
        """A scheduler observer: note the snapshot; build and send after the tick."""
        if stats.last_tick_time is None:
            return
        self._tick = (snap, stats.last_tick_time, stats.ticks)
        self._payload = None
        if self.viewers and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        self._scheduled = False
        payload = self.payload()
        if payload is not None:
            frame = sse_frame(payload)  # the same bytes for every viewer
            for viewer in self.viewers:
                viewer.push(frame)

    def payload(self) -> bytes | None:
        """The current state as JSON, built at most once per tick; None before the first."""
        if self._payload is None and self._tick is not None:
            snap, tick_time, tick = self._tick
            self.built += 1
            state = self.builder.build(snap, tick_time, tick, self._read_status())
            self._payload = _encode(state)
        return self._payload

    def subscribe(self) -> Viewer:
        """A new viewer, given the current state at once."""
        viewer = Viewer()
        self.viewers.add(viewer)
        payload = self.payload()
        if payload is not None:
            viewer.push(sse_frame(payload))
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def close(self) -> None:
        """End every stream (at shutdown: the server must not wait on open streams)."""
        for viewer in self.viewers:
            viewer.close()
        self.viewers.clear()
