"""Background writer of rows into one PostgreSQL table, over the same durable path for every
table (see :mod:`db.tables`).

The producer calls :meth:`TableWriter.submit` (the scheduler once per tick); it only appends to
an in-memory queue. A task of the writer's own drains the queue over its own connection:

* **Write path.** Rows are encoded as CSV, COPYed into a temporary staging table and moved
  with the table's ``INSERT ... SELECT ... ON CONFLICT`` in one transaction
  (:mod:`db.staged_copy`). A retried batch (the commit reply was lost) or a duplicate batch
  therefore never stores a row twice and is not an error. Large chunks are encoded in a worker
  thread to keep the event loop responsive.

* **Outages.** When PostgreSQL is down or slow, rows wait in memory and are retried with
  capped exponential backoff (``retry_initial`` doubling up to ``retry_max``). An attempt
  that has not finished after ``stall_after`` seconds marks the database stalled at once
  (it may still finish or time out later); see :mod:`db.writer_health` for the states and
  the log lines. Past
  ``max_buffer_rows`` (or ``queue_max_batches`` queued submissions) the oldest rows are spilled
  to CSV files in ``spill_dir`` (:mod:`db.spill`) until the queue is back to half the bound.
  Spill files are loaded, then deleted, once the database answers; files left by a previous
  run are picked up at :meth:`start`, which refuses a directory it cannot write. If even
  spilling fails the rows are counted in ``rows_dropped`` and logged as an error: nothing
  is lost silently.

* **Bad rows.** Rows PostgreSQL rejects are isolated by bisection and dropped alone (counted
  and logged); the rest of their batch is stored.

Memory held: at most ``max_buffer_rows`` queued rows plus one chunk of at most
``batch_max_rows`` rows being written or spilled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from data_collector.wording import plural
from db.backlog import Backlog, Chunk
from db.dsn import redact_dsn
from db.spill import SpillStore, count_rows
from db.staged_copy import IDLE, OnConnect, StagedCopy, Stored, is_outage_error
from db.tables import SNAPSHOTS, TableSpec
from db.writer_health import WriterHealth, WriterStats

log = structlog.get_logger(__name__)


class TableWriter:
    """Writes rows to one table without ever blocking the caller."""

    def __init__(
        self,
        dsn: str,
        table: TableSpec,
        *,
        spill_dir: Path,
        max_buffer_rows: int,
        batch_max_rows: int = 50_000,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        queue_max_batches: int = 10_000,
        connect_timeout: float = 5.0,
        write_timeout: float = 30.0,
        migrate: bool = True,
        migrations_dir: Path | None = None,
        stall_after: float = 3.0,
        failure_log_every: float = 30.0,
        on_connect: OnConnect | None = None,
    ) -> None:
        """``on_connect`` runs on each new connection before its first write (a failure
        there counts as a failed write and is retried)."""
        if max_buffer_rows < 1 or batch_max_rows < 1 or queue_max_batches < 1:
            raise ValueError("max_buffer_rows, batch_max_rows and queue_max_batches must be >= 1")
        self.table = table
        self._dsn = dsn
        self._batch_max = batch_max_rows
        self._stall_after = stall_after

        self._backlog = Backlog(table.encode, max_buffer_rows, queue_max_batches)
        self._store = SpillStore(Path(spill_dir), table.spill_prefix)
        self._spill_files: deque[Path] = deque()
        self._db = StagedCopy(
            dsn,
            table,
            connect_timeout=connect_timeout,
            write_timeout=write_timeout,
            migrate=migrate,
            migrations_dir=migrations_dir,
            on_connect=on_connect,
        )
        self._health = WriterHealth(
            dsn,
            lambda: (self._backlog.rows, len(self._spill_files)),
            retry_initial=retry_initial,
            retry_max=retry_max,
            failure_log_every=failure_log_every,
        )
        self._stats = self._health.stats

        self._wake = asyncio.Event()  # new rows or spill files
        self._retry_now = asyncio.Event()  # cut the backoff short (close)
        self._spill_wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._spill_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public API

    @property
    def spill_dir(self) -> Path:
        return self._store.directory

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The background tasks :meth:`start` started (the write loop and the spill loop), for
        an owner that supervises them; they end by themselves once :meth:`close` is done."""
        return tuple(t for t in (self._task, self._spill_task) if t is not None)

    @property
    def stats(self) -> WriterStats:
        stats = msgspec.structs.replace(self._stats, drop_reasons=dict(self._stats.drop_reasons))
        stats.backlog_rows = self._backlog.rows
        stats.spill_files = len(self._spill_files)
        return stats

    async def start(self) -> None:
        """Check the spill directory, pick up spill files of earlier runs and start the
        background tasks. Raises :class:`db.spill.SpillDirectoryError` when the directory is
        unusable: without it an outage would lose rows."""
        if self._task is not None:
            return
        found = await asyncio.to_thread(self._store.check)
        self._spill_files.extend(found)
        if found:
            log.info(
                "writer_spill_found",
                files=len(found),
                summary=f"{plural(len(found), 'spill file')} from an earlier run will be loaded",
            )
        name = self.table.name
        self._task = asyncio.create_task(self._run(), name=f"writer-{name}")
        self._task.add_done_callback(self._task_done)
        self._spill_task = asyncio.create_task(self._spill_loop(), name=f"spiller-{name}")
        self._spill_task.add_done_callback(self._task_done)
        log.info(
            "writer_started",
            table=name,
            dsn=redact_dsn(self._dsn),
            spill_dir=str(self.spill_dir),
            summary=f"Writing {name}; during an outage rows spill to {self.spill_dir}",
        )

    def submit(self, rows: Sequence[Any]) -> None:
        """Queue rows. Never blocks; the writer keeps a reference to ``rows``, so the caller
        must not modify the sequence afterwards."""
        n = len(rows)
        if n == 0:
            return
        self._stats.rows_submitted += n
        if self._closing:
            self._health.dropped(n, "submitted after close")
            return
        self._backlog.append(rows)
        if self._backlog.over_bound():
            self._spill_wake.set()
        self._wake.set()

    def retry_now(self) -> None:
        """Cut a backoff between failed attempts short: the database is known to be back."""
        self._retry_now.set()

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is pending; whatever cannot be written within ``timeout`` seconds is
        spilled to files (loaded by the next run). Stop submitting before calling this."""
        if self._closing:
            return
        self._closing = self._health.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reserve = min(1.0, 0.3 * timeout)  # kept for spilling what could not be written
        self._retry_now.set()
        self._wake.set()
        self._spill_wake.set()
        await _finish(self._task, deadline - reserve - loop.time())
        await _finish(self._spill_task, deadline - loop.time())
        try:
            while self._backlog:
                await self._spill_chunk()
        except Exception as exc:  # not an OSError (those drop the chunk): the rest is lost too
            self._health.dropped(
                self._backlog.discard(), f"spilling to {self.spill_dir} failed: {exc!r}"
            )
        self._db.close()
        self._health.closed(self.spill_dir, self.table.name)

    # ------------------------------------------------------------------ write loop

    async def _run(self) -> None:
        spill_turn = False
        while True:
            if not self._backlog:
                if self._closing:
                    return  # spill files stay on disk for the next run
                if not self._spill_files:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
            # alternate so that neither new rows nor old spill files starve
            from_spill = bool(self._spill_files) and (not self._backlog or spill_turn)
            spill_turn = not spill_turn
            try:
                if from_spill and not self._closing:
                    stored = await self._attempt(self._load_spill_file())
                else:
                    stored = await self._attempt(self._write_pending())
            except Exception as exc:
                self._on_failure(exc)
                await self._backoff()
            else:
                if stored is not None:
                    self._health.succeeded(stored)

    async def _attempt(self, work: Awaitable[int | None]) -> int | None:
        """Await one write or load; past ``stall_after`` seconds the database is stalled."""
        self._health.attempt_started()
        timer = asyncio.get_running_loop().call_later(self._stall_after, self._on_stall)
        try:
            return await work
        finally:
            timer.cancel()

    def _on_stall(self) -> None:
        self._health.stalled(self._step(), self._stall_after)

    def _step(self) -> str:
        """What the attempt in flight is waiting for."""
        return self._db.step if self._db.step != IDLE else "a database write"

    async def _take_chunk(self, limit: int) -> Chunk:
        """The head of the queue as one encoded chunk; malformed rows are dropped here."""
        chunk, rejected = await self._backlog.take_encoded(limit)
        if rejected:
            self._health.dropped(len(rejected), "malformed row", sample=rejected[0])
        return chunk

    async def _write_pending(self) -> int | None:
        """Write the head of the queue; the rows stored, or None if there was nothing to write."""
        chunk = await self._take_chunk(min(self._batch_max, self._backlog.max_rows))
        if not chunk.rows:
            return None
        try:
            stored = await self._commit(chunk.payload, chunk.rows)
        except BaseException:
            # not committed, or unknown: requeue so it is retried or spilled; if the commit
            # did happen, the retry is skipped by ON CONFLICT
            self._backlog.requeue([chunk])
            if self._backlog.over_bound():  # the failed write brought its rows back over
                self._spill_wake.set()
            raise
        self._backlog.settle(chunk.rows)
        return stored

    async def _load_spill_file(self) -> int | None:
        """Load the oldest spill file; the rows stored, or None if the file was unreadable."""
        path = self._spill_files[0]
        try:
            payload = await asyncio.to_thread(self._store.read, path)
        except OSError as exc:
            self._spill_files.popleft()
            log.error(
                "writer_spill_unreadable",
                file=str(path),
                error=str(exc),
                summary=f"cannot read spill file {path}: {exc}; left in place",
            )
            return None
        rows = count_rows(payload)
        stored = await self._commit(payload, rows) if rows else 0
        self._stats.rows_loaded_from_spill += stored
        self._spill_files.popleft()
        try:
            await asyncio.to_thread(self._store.delete, path)
        except OSError as exc:  # loaded again next run, where ON CONFLICT skips every row
            log.error(
                "writer_spill_not_deleted",
                file=str(path),
                error=str(exc),
                summary=f"cannot delete loaded spill file {path} ({exc}); the next run loads "
                "it again and skips its rows as duplicates",
            )
        log.info(
            "writer_spill_loaded",
            file=path.name,
            rows=stored,
            spill_files=len(self._spill_files),
            summary=f"loaded {plural(stored, 'row')} from spill file {path.name}",
        )
        return stored if rows else None

    async def _commit(self, payload: bytes, rows: int) -> int:
        """Store ``rows`` CSV lines; count what was stored, skipped and rejected."""
        result: Stored = await self._db.store(payload, rows)
        if result.rejected:
            self._health.dropped(
                len(result.rejected), "rejected by PostgreSQL", sample=result.rejected[0]
            )
        self._stats.rows_written += result.rows
        self._stats.rows_duplicate += result.rows - result.inserted
        self._stats.batches_written += 1
        self._stats.last_write_at = datetime.now(UTC)
        return result.rows

    # ------------------------------------------------------------------ outcomes

    def _on_failure(self, exc: Exception) -> None:
        self._db.close()
        self._health.failed(exc, expected=is_outage_error(exc), during=self._step())

    async def _backoff(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry_now.wait(), self._health.delay())
        self._retry_now.clear()

    # ------------------------------------------------------------------ spilling

    async def _spill_loop(self) -> None:
        backlog = self._backlog
        while not self._closing:
            await self._spill_wake.wait()
            self._spill_wake.clear()
            if backlog.over_bound():
                while backlog and backlog.over_bound(divisor=2) and not self._closing:
                    await self._spill_chunk()

    async def _spill_chunk(self) -> None:
        """Move the oldest queued rows (up to one batch) to a spill file."""
        chunk = await self._take_chunk(self._batch_max)
        if not chunk.rows:
            return
        try:
            path = await asyncio.to_thread(self._store.write, chunk.payload)
        except OSError as exc:
            self._backlog.settle(chunk.rows)
            self._health.dropped(chunk.rows, f"spilling to {self.spill_dir} failed: {exc}")
            return
        except BaseException:
            self._backlog.requeue([chunk])  # cancelled mid-spill: keep the rows queued
            raise
        self._backlog.settle(chunk.rows)
        self._spill_files.append(path)
        self._stats.rows_spilled += chunk.rows
        self._wake.set()
        # while closing, the writer_closed line reports the outcome
        (log.debug if self._closing else log.warning)(
            "writer_spilled",
            rows=chunk.rows,
            file=path.name,
            backlog_rows=self._backlog.rows,
            spill_files=len(self._spill_files),
            summary=f"spilled {plural(chunk.rows, 'row')} to {path}",
        )

    def _task_done(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error(
                "writer_task_crashed",
                task=task.get_name(),
                traceback=self._health.traceback(exc),
                summary=f"writer task {task.get_name()} crashed: {type(exc).__name__}",
            )


class SnapshotWriter(TableWriter):
    """The writer of ``book_ticker_snapshots``: submit lists of :data:`db.rows.SnapshotRow`."""

    def __init__(self, dsn: str, **options: Any) -> None:
        super().__init__(dsn, SNAPSHOTS, **options)


async def _finish(task: asyncio.Task[None] | None, budget: float) -> None:
    """Wait up to ``budget`` seconds for ``task`` to end, then cancel it."""
    if task is None or task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), max(budget, 0.0))
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
