"""Start-up steps of the orchestrator that need the database: migrations, embedded PostgreSQL
(and the watch that restarts it), the snapshot writer, its spill directory, and the view of
its progress the snapshot line reads. Each acquisition registers its clean-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
import structlog

from data_collector.config import Config
from data_collector.embedded_watch import EmbeddedWatch
from data_collector.lifecycle import Cleanup
from data_collector.pairs import Pair
from data_collector.snapshot_log import ProgressSource, WriterProgress

if TYPE_CHECKING:
    from db.embedded import EmbeddedPostgres
    from db.spill_targets import SpillTarget
    from db.writer import SnapshotWriter

log = structlog.get_logger("data_collector.collector")

#: rows kept in memory during an outage when database.buffer_max_rows is 0 (auto)
AUTO_BUFFER_SECONDS = 15 * 60
STARTUP_DB_TIMEOUT = 10.0
#: the writer's share of the shutdown budget (the process must exit within 10 s)
WRITER_CLOSE_TIMEOUT = 5.0


class StartupError(Exception):
    """A start-up step failed in a way the user must fix; the message says how."""


@dataclass(frozen=True)
class Database:
    """What :func:`start_database` started."""

    writer: SnapshotWriter
    #: restarts the embedded PostgreSQL if it dies; None for a configured database
    watch: EmbeddedWatch | None
    #: where it is (the nightly storage job connects there too)
    dsn: str

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The background tasks that must run as long as the collector."""
        watch = self.watch.task if self.watch is not None else None
        return (*self.writer.tasks, *([watch] if watch is not None else []))


async def start_database(config: Config, pairs: list[Pair], cleanups: list[Cleanup]) -> Database:
    """Migrate the database (when it answers) and start the snapshot writer into it; an
    embedded PostgreSQL is started first, and watched."""
    from db.dsn import redact_dsn
    from db.migrations import default_migrations_dir, migration_files
    from db.spill_targets import target_of_dsn, target_of_embedded

    try:
        migration_files()
    except FileNotFoundError:
        raise StartupError(
            f"no migrations at {default_migrations_dir()}: run from a source checkout "
            "(pip install -e .) or set CEX_MIGRATIONS_DIR to the folder with the *.sql files"
        ) from None
    dsn = config.database_dsn()
    embedded = None
    if dsn is not None:
        label, target = redact_dsn(dsn), target_of_dsn(dsn)
    else:
        embedded = await _start_embedded(config, cleanups)
        dsn, label = embedded.dsn, f"embedded PostgreSQL in {config.embedded_pgdata}"
        target = target_of_embedded(config.embedded_pgdata)
    await _migrate(dsn, label)
    writer = await _start_writer(config, pairs, dsn, target)
    cleanups.append(lambda: writer.close(WRITER_CLOSE_TIMEOUT))  # no-op once closed
    if embedded is None:
        return Database(writer, None, dsn)
    # the writer retries at once when the server is back, instead of finishing its backoff
    watch = EmbeddedWatch(embedded, on_restarted=[writer.retry_now])
    watch.start()
    cleanups.append(watch.stop)  # runs before the server's release: that is no death
    return Database(writer, watch, dsn)


async def _start_writer(
    config: Config, pairs: list[Pair], dsn: str, target: SpillTarget
) -> SnapshotWriter:
    """The snapshot writer, spilling into ``target``'s own directory (see db.spill_targets).
    A spill directory that cannot be written stops the start-up: an outage would lose rows."""
    from db.spill import SpillDirectoryError
    from db.spill_targets import prepare_target, table_spill_dir
    from db.tables import SNAPSHOTS
    from db.writer import SnapshotWriter

    interval = config.data_collector.snapshot_interval
    rows_per_tick = len(pairs) * len(config.data_collector.exchanges)
    buffer_rows = config.database.buffer_max_rows or max(
        rows_per_tick * int(AUTO_BUFFER_SECONDS / interval), 10_000
    )
    root = config.data_dir / "spill"
    writer = SnapshotWriter(
        dsn,
        spill_dir=table_spill_dir(root, target, SNAPSHOTS.name),
        max_buffer_rows=buffer_rows,
        stall_after=3 * interval,
    )
    try:
        await asyncio.to_thread(prepare_target, root, target)
        await writer.start()
    except SpillDirectoryError as exc:
        raise StartupError(
            f"{exc}: rows could not be kept during a database outage; set "
            "data_collector.data_dir to a writable directory"
        ) from None
    return writer


async def _start_embedded(config: Config, cleanups: list[Cleanup]) -> EmbeddedPostgres:
    from db.embedded import EmbeddedPostgres

    pgdata = config.embedded_pgdata
    try:
        embedded = await asyncio.to_thread(EmbeddedPostgres.start, pgdata)
    except Exception as exc:
        raise StartupError(
            f"the embedded PostgreSQL in {pgdata} did not start ({exc}); configure "
            "database.dsn or database.host to use your own server"
        ) from exc
    cleanups.append(lambda: asyncio.to_thread(embedded.stop))
    return embedded


async def _migrate(dsn: str, label: str) -> None:
    """Apply migrations now when PostgreSQL answers; otherwise start anyway: the writer
    buffers rows (then spills them) and applies the migrations itself once it is back."""
    from db.migrations import apply_migrations
    from db.pool import create_pool

    try:
        pool = await asyncio.wait_for(create_pool(dsn), STARTUP_DB_TIMEOUT)
        try:
            applied = await apply_migrations(pool)
            await _partitions_ahead(pool)
        finally:
            await pool.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning(
            "database_unreachable",
            database=label,
            error=type(exc).__name__,
            summary=f"PostgreSQL unreachable at start-up ({label}): snapshots are buffered "
            "and written once it is back",
        )
        return
    log.info(
        "database_connected",
        database=label,
        migrations_applied=applied,
        summary=f"Connected to PostgreSQL ({label})",
    )


async def _partitions_ahead(pool: asyncpg.Pool) -> None:
    """Today's partition and the next two days'. Without them rows still land (in the default
    partition), so a failure (a role without CREATE) is a warning, not a reason to stop."""
    from db.partitions import ensure_partitions

    try:
        async with pool.acquire() as conn:
            created = await ensure_partitions(conn, datetime.now(UTC).date())
    except asyncpg.PostgresError as exc:
        log.warning(
            "partitions_not_created",
            error=str(exc),
            summary=f"Cannot create the daily partitions ({exc}); rows go to the default "
            "partition until the nightly maintenance can",
        )
        return
    if created:
        log.info("partitions_created", partitions=created, summary=f"Created {', '.join(created)}")


def writer_progress(writer: SnapshotWriter) -> ProgressSource:
    """The writer's totals as the snapshot line reads them (no driver type crosses over)."""

    def read() -> WriterProgress:
        stats = writer.stats
        return WriterProgress(
            state=stats.state,
            rows_stored=stats.rows_written - stats.rows_duplicate,
            rows_duplicate=stats.rows_duplicate,
            backlog_rows=stats.backlog_rows,
        )

    return read
