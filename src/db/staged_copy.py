"""One connection that stores CSV rows of one table: COPY into a temporary staging table, then
the table's ``INSERT ... SELECT ... ON CONFLICT`` in the same transaction.

A row PostgreSQL rejects (unparseable number, NaN, negative size...) would fail its whole batch
forever; on such a data error the batch is bisected so that only the offending rows are left
out, and reported to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from data_collector.wording import plural
from db.dsn import redact_dsn
from db.migrations import apply_migrations
from db.pool import connect
from db.tables import TableSpec

#: PostgreSQL error classes 22 (data exception) and 23 (constraint violation) are caused by
#: the rows themselves: retrying cannot help, isolating the bad rows can
DATA_ERRORS = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)


def is_outage_error(exc: BaseException) -> bool:
    """True for the errors of an unreachable, failing or slow database (not a bug of ours)."""
    return isinstance(exc, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError)


#: :attr:`StagedCopy.step` between calls
IDLE = "idle"


@dataclass
class Stored:
    #: rows committed (including rows the ON CONFLICT clause skipped)
    rows: int = 0
    #: rows the INSERT's status counted
    inserted: int = 0
    #: descriptions of the rows PostgreSQL rejected (left out)
    rejected: list[str] = field(default_factory=list)


class StagedCopy:
    """Holds one connection; :attr:`step` says what the current call is waiting for."""

    def __init__(
        self,
        dsn: str,
        table: TableSpec,
        *,
        connect_timeout: float,
        write_timeout: float,
        migrate: bool,
        migrations_dir: Path | None,
        application_name: str = "cex-arb-collector-writer",
    ) -> None:
        self._dsn = dsn
        self._table = table
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._migrate = migrate
        self._migrations_dir = migrations_dir
        self._application_name = application_name
        self._conn: asyncpg.Connection | None = None
        #: what the call in flight waits for, e.g. "COPY of 40 rows into book_ticker_snapshots"
        self.step = IDLE
        self._step_timeout = 0.0

    async def store(self, payload: bytes, rows: int) -> Stored:
        """Commit ``rows`` CSV lines, leaving out those PostgreSQL rejects. Raises on anything
        but a data error (then nothing of ``payload`` is known to be committed); a timeout
        says what timed out."""
        try:
            try:
                return Stored(rows, await self._commit(payload, rows))
            except DATA_ERRORS as exc:
                return await self._isolate(payload.splitlines(keepends=True), exc)
        except TimeoutError as exc:
            if str(exc):
                raise
            raise TimeoutError(
                f"{self.step} did not finish within {self._step_timeout:g} s"
            ) from exc

    def _at(self, step: str, timeout: float) -> None:
        self.step = step
        self._step_timeout = timeout

    def close(self) -> None:
        """Drop the connection at once (a write in flight is rolled back by the server)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._at(f"connecting to {redact_dsn(self._dsn)}", self._connect_timeout)
        conn = await connect(
            self._dsn,
            timeout=self._connect_timeout,
            command_timeout=self._write_timeout,
            application_name=self._application_name,
        )
        try:
            self._at("preparing the session (migrations, staging table)", self._write_timeout)
            if self._migrate:
                await apply_migrations(conn, self._migrations_dir, lock_timeout=self._write_timeout)
            await conn.execute(self._table.staging_ddl)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def _commit(self, payload: bytes, rows: int) -> int:
        """COPY ``payload`` (``rows`` lines) through the staging table; return the rows
        actually inserted."""
        conn = await self._connection()
        table = self._table
        self._at(f"COPY of {plural(rows, 'row')} into {table.name}", self._write_timeout)
        async with conn.transaction():
            # a memoryview: asyncpg would take a bytes object for a file name
            await conn.copy_to_table(
                table.staging,
                source=memoryview(payload),
                columns=table.columns,
                format="csv",
                timeout=self._write_timeout,
            )
            self._at(f"INSERT of {plural(rows, 'row')} into {table.name}", self._write_timeout)
            status = await conn.execute(table.insert, timeout=self._write_timeout)
            self._at(f"commit of {plural(rows, 'row')} into {table.name}", self._write_timeout)
        self.step = IDLE
        return int(status.rsplit(" ", 1)[-1])

    async def _isolate(self, lines: list[bytes], exc: Exception) -> Stored:
        """Bisect ``lines`` (known to contain a bad row) into committed halves and bad rows."""
        if len(lines) == 1:
            row = lines[0].decode("utf-8", "replace").strip()
            return Stored(rejected=[f"{exc} -- row: {row:.200}"])
        result = Stored()
        mid = len(lines) // 2
        for half in (lines[:mid], lines[mid:]):
            try:
                result.inserted += await self._commit(b"".join(half), len(half))
                result.rows += len(half)
            except DATA_ERRORS as half_exc:
                part = await self._isolate(half, half_exc)
                result.rows += part.rows
                result.inserted += part.inserted
                result.rejected.extend(part.rejected)
        return result
