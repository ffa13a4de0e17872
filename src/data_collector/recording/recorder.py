"""``--record``: every frame and connection event of every link, and the collector's ticks, to
hourly zstd files (format: :mod:`data_collector.recording.format`).

Off the hot path: a link's tap only appends a tuple to its venue's in-memory buffer. Every
``flush_every`` seconds the buffers are handed to one worker thread that encodes, compresses
and appends them (:mod:`data_collector.recording.files`); while a write is in flight the next
batch keeps growing. A write that fails (a full disk, a directory that cannot be created), a
disk too slow to keep up, or a write still hanging at shutdown stops the recording with one
error line; the collection goes on, and the shutdown waits for the disk no longer than
``CLOSE_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from data_collector.cache import Snapshot
from data_collector.config_schema import RecordConfig
from data_collector.connection import ConnectionSettings, Link
from data_collector.connection.tap import LinkTap
from data_collector.recording.files import Pending, RecordingError, VenueFiles
from data_collector.recording.format import (
    CLOCK_ANALYTICS,
    CLOCK_SNAPSHOT,
    CLOSED,
    FLAG_BINARY,
    FLAG_RECONNECT,
    FLAG_ROTATION,
    FLAG_STRAY,
    FRAME,
    LOST,
    OPENED,
    PROMOTED,
    SENT,
    TICK,
    TICK_PAYLOAD,
    U32,
)
from data_collector.recording.worker import FileWorker
from data_collector.scheduler import TickObserver, TickStats

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

FLUSH_EVERY = 0.5
#: how long a shutdown waits for the last writes
CLOSE_TIMEOUT = 3.0
#: records waiting while a write is in flight before the disk counts as too slow (25 s at
#: 20,000 frames/s, ~150 MB of book tickers)
MAX_PENDING = 500_000


def seconds_ns(seconds: float) -> int:
    """A clock boundary (whole or half seconds since the epoch) as exact nanoseconds."""
    return round(seconds * 1000) * 1_000_000


async def start_recorder(
    config: RecordConfig, cleanups: list[Callable[[], Awaitable[None]]]
) -> Recorder | None:
    """The collector's recorder when ``record.enabled`` (its close registered), else None."""
    if not config.enabled:
        return None
    recorder = Recorder(Path(config.dir))
    await recorder.start()
    cleanups.append(recorder.close)
    return recorder


def _discard(_record: Pending) -> None:
    """Where a stopped recording's records go: nowhere."""


class _VenueBuffer:
    """One venue's records waiting for the worker. The list is emptied in place, never
    replaced, so the taps can keep its ``append``."""

    def __init__(self) -> None:
        self.records: list[Pending] = []
        self.append = self.records.append

    def take(self) -> list[Pending]:
        batch = self.records.copy()
        self.records.clear()
        return batch

    def stop(self) -> None:
        self.append = _discard
        self.records.clear()


class _Tap:
    """One link's tap (a :class:`LinkTap`): each call appends one record to its venue's
    buffer."""

    __slots__ = ("_append", "_link")

    def __init__(self, buffer: _VenueBuffer, link: str) -> None:
        self._append = buffer.append  # one call per frame: the list's own append
        self._link = link.encode("ascii")

    def stop(self) -> None:
        self._append = _discard

    def frame(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        self._append((FRAME, receive_ns, transport_id, binary, self._link, data))

    def stray(self, transport_id: int, data: bytes, receive_ns: int, binary: bool) -> None:
        flags = FLAG_STRAY | (FLAG_BINARY if binary else 0)
        self._append((FRAME, receive_ns, transport_id, flags, self._link, data))

    def opened(self, transport_id: int, rotation: bool, reconnect: bool) -> None:
        flags = (FLAG_ROTATION if rotation else 0) | (FLAG_RECONNECT if reconnect else 0)
        self._event(OPENED, transport_id, flags, b"")

    def sent(self, transport_id: int, texts: list[str]) -> None:
        for text in texts:
            self._event(SENT, transport_id, 0, text.encode())

    def promoted(self, old_id: int, new_id: int) -> None:
        self._event(PROMOTED, new_id, 0, U32.pack(old_id))

    def lost(self, transport_id: int, reason: str) -> None:
        self._event(LOST, transport_id, 0, reason.encode())

    def closed(self, transport_id: int, reason: str) -> None:
        self._event(CLOSED, transport_id, 0, reason.encode())

    def _event(self, kind: int, transport_id: int, flags: int, payload: bytes) -> None:
        self._append((kind, time.time_ns(), transport_id, flags, self._link, payload))


class Recorder:
    """Records every link it taps into ``root``; see the module docstring."""

    def __init__(self, root: Path, *, flush_every: float = FLUSH_EVERY) -> None:
        self.root = root
        self._flush_every = flush_every
        self._buffers: dict[str, _VenueBuffer] = {}
        self._taps: list[_Tap] = []
        self._files: dict[str, VenueFiles] = {}
        self._worker = FileWorker()
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None
        #: why the recording stopped (None while it records)
        self.failed: str | None = None
        self.records_written = 0

    def tap(self, venue: str, link: str) -> LinkTap:
        """The tap of one link of ``venue``."""
        buffer = self._buffers.get(venue)
        if buffer is None:
            buffer = self._buffers[venue] = _VenueBuffer()
            self._files[venue] = VenueFiles(self.root, venue)
            if self.failed is not None:
                buffer.stop()
        tap = _Tap(buffer, link)
        self._taps.append(tap)
        return tap

    def link_factory(
        self, venue: str, name: str, url: str, settings: ConnectionSettings, **kwargs: Any
    ) -> Link:
        """A :data:`~data_collector.manager.LinkFactory` of live links this recorder taps."""
        return Link(name, url, settings, tap=self.tap(venue, name), **kwargs)

    def tick(self, clock: int, boundary_ns: int, interval_ns: int) -> None:
        """The collector captured (``CLOCK_SNAPSHOT``) or summarised (``CLOCK_ANALYTICS``) the
        cache for ``boundary_ns`` on its clock of ``interval_ns``: a replay ticks at this very
        place in the stream."""
        payload = TICK_PAYLOAD.pack(boundary_ns, interval_ns)
        record = (TICK, time.time_ns(), 0, clock, b"", payload)
        for buffer in self._buffers.values():
            buffer.append(record)

    def snapshot_observer(self, interval: float) -> TickObserver:
        """A scheduler observer that notes each snapshot tick (``interval`` seconds apart)."""
        interval_ns = seconds_ns(interval)

        def note(_snap: Snapshot, stats: TickStats) -> None:
            if stats.last_tick_time is not None:
                boundary_ns = (stats.last_tick_time - _EPOCH) // _MICROSECOND * 1000
                self.tick(CLOCK_SNAPSHOT, boundary_ns, interval_ns)

        return note

    def summarized(self, boundary: float, interval: float) -> None:
        """Note an analytics summary of the boundary ``boundary`` (seconds since the epoch)."""
        self.tick(CLOCK_ANALYTICS, seconds_ns(boundary), seconds_ns(interval))

    @property
    def bytes_written(self) -> int:
        return sum(files.bytes_written for files in self._files.values())

    async def start(self) -> None:
        """Check that ``root`` can be created, then flush every ``flush_every`` seconds."""
        try:
            await self._worker.run(self._make_root)
        except RecordingError as exc:
            self._fail(str(exc))
            return
        log.info("recording_started", dir=str(self.root), summary=f"Recording to {self.root}")
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def close(self) -> None:
        """Write what is buffered, close the files; logs what was recorded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if self._writing is not None:
                    await asyncio.shield(self._writing)
                if self.failed is None:
                    await self._flush()
                await self._worker.run(self._close_files)
        except TimeoutError:
            self._fail(f"a write under {self.root} has not finished in {CLOSE_TIMEOUT:g} s")
        except RecordingError as exc:
            self._fail(str(exc))
        self._worker.stop()
        files = sum(len(f.files) for f in self._files.values())
        log.info(
            "recording_closed",
            dir=str(self.root),
            records=self.records_written,
            bytes=self.bytes_written,
            files=files,
            summary=f"Recording closed: {self.records_written} records, "
            f"{self.bytes_written / 1e6:.1f} MB in {files} files under {self.root}",
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every)
            if self._writing is not None and not self._writing.done():
                if sum(len(b.records) for b in self._buffers.values()) > MAX_PENDING:
                    self._fail(f"the disk under {self.root} does not keep up with the frames")
                    return
                continue
            self._writing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        batches = {venue: b.take() for venue, b in self._buffers.items() if b.records}
        if not batches or self.failed is not None:
            return
        try:
            await self._worker.run(self._write, batches)
        except RecordingError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug here must cost the recording, never the collection
            log.exception(
                "recording_write_crashed",
                summary=f"Writing the recording under {self.root} crashed",
            )
            self._fail(f"the recorder crashed ({exc!r})")

    def _write(self, batches: dict[str, list[Pending]]) -> None:
        for venue, batch in batches.items():
            self._files[venue].write(batch)
            self.records_written += len(batch)

    def _make_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create {self.root} ({exc.strerror or exc})") from exc

    def _close_files(self) -> None:
        errors = []
        for files in self._files.values():
            try:
                files.close()
            except RecordingError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _fail(self, reason: str) -> None:
        """Stop recording for good: one error line, the buffers dropped, the taps inert."""
        if self.failed is not None:
            return
        self.failed = reason
        for buffer in self._buffers.values():
            buffer.stop()
        for tap in self._taps:
            tap.stop()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        log.error(
            "recording_failed",
            dir=str(self.root),
            error=reason,
            summary=f"Recording stopped: {reason}; collection goes on",
        )
