"""A real PostgreSQL for the tests: the session server, per-test databases, an outage proxy.

``tests/conftest.py`` turns these into fixtures; test modules import the types from here.

Outages are simulated with :class:`PgProxy`, a loopback TCP proxy in front of the server that
can refuse connections, swallow them (a hung server), kill live ones, and resume. A proxy
rather than ``pg_ctl stop``: it works the same with an external ``DATABASE_URL``, it can also
simulate a server that accepts but never answers, and it leaves the session server (and the
other tests' databases) alone. The proxy and all admin work run on a background event loop in
their own thread, so they serve whatever loop a test runs in.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from db.dsn import build_dsn

T = TypeVar("T")


class BackgroundLoop:
    """An event loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="pg-fixtures", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass(frozen=True)
class PgServer:
    """The session's PostgreSQL server."""

    admin_dsn: str
    #: connection parts used to build per-database and proxied DSNs
    user: str
    password: str | None
    host: str  # hostname or unix-socket directory
    port: int
    extra_query: tuple[tuple[str, str], ...]
    embedded: bool

    def dsn(self, database: str, *, host: str | None = None, port: int | None = None) -> str:
        dsn = build_dsn(host or self.host, port or self.port, database, self.user, self.password)
        if self.extra_query:
            dsn += ("&" if "?" in dsn else "?") + urlencode(self.extra_query)
        return dsn

    def upstream(self) -> tuple[str, int] | str:
        """(host, port) for TCP or the socket path for a unix-socket server."""
        if self.host.startswith("/"):
            return f"{self.host}/.s.PGSQL.{self.port}"
        return (self.host, self.port)


@dataclass(frozen=True)
class PgDatabase:
    name: str
    dsn: str
    server: PgServer


def server_from_url(url: str) -> PgServer:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.pop("host", None) or parts.hostname or "localhost"
    port = int(query.pop("port", None) or parts.port or 5432)
    query.pop("dbname", None)
    query.pop("database", None)
    return PgServer(
        admin_dsn=url,
        user=unquote(parts.username or query.pop("user", "postgres")),
        password=unquote(parts.password) if parts.password else query.pop("password", None),
        host=host,
        port=port,
        extra_query=tuple(sorted(query.items())),
        embedded=False,
    )


@contextmanager
def fresh_database(server: PgServer, loop: BackgroundLoop) -> Iterator[PgDatabase]:
    """A new, empty database (no migrations applied), dropped on exit."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    loop.run(admin(server.admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield PgDatabase(name=name, dsn=server.dsn(name), server=server)
    finally:
        loop.run(admin(server.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


class PgProxy:
    """Loopback TCP proxy to the session server, switchable between modes:

    * ``resume()``    -- forward connections (the initial mode);
    * ``refuse()``    -- kill live connections; new ones are closed at once (server down);
    * ``blackhole()`` -- kill live connections; new ones are accepted and never answered
      (a hung server or a dead network path);
    * ``freeze()`` / ``thaw()`` -- keep every connection open but forward nothing either way,
      then carry on where it stopped (a SIGSTOPped server, then SIGCONT).
    """

    def __init__(self, bg: BackgroundLoop, server: PgServer) -> None:
        self._bg = bg
        self._server = server
        self._mode = "pass"
        self._conns: set[asyncio.StreamWriter] = set()
        self._listener: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0
        self.accepted = 0

    def dsn(self, database: str, *, password: str | None = None) -> str:
        dsn = self._server.dsn(database, host="127.0.0.1", port=self.port)
        if password is not None:  # a password the server does not check (trust auth)
            parts = urlsplit(dsn)
            netloc = parts.netloc.replace("@", f":{password}@", 1)
            dsn = urlunsplit(parts._replace(netloc=netloc))
        return dsn

    async def _start(self) -> None:
        self._listener = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        upstream = self._server.upstream()
        if isinstance(upstream, str):
            return await asyncio.open_unix_connection(upstream)
        return await asyncio.open_connection(*upstream)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._mode == "refuse":
            writer.transport.abort()
            return
        self._conns.add(writer)
        if self._mode == "blackhole":
            return  # stays open, silent, until killed
        try:
            await self._flowing.wait()
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            self._conns.discard(writer)
            writer.transport.abort()
            return
        self._conns.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._conns.discard(writer)
        self._conns.discard(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()  # one side gone: take the other down too

    async def _set_mode(self, mode: str) -> None:
        self._mode = mode
        self._flowing.set()
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    def refuse(self) -> None:
        self._bg.run(self._set_mode("refuse"))

    def blackhole(self) -> None:
        self._bg.run(self._set_mode("blackhole"))

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    def freeze(self) -> None:
        self._bg.run(self._set_flowing(False))

    def thaw(self) -> None:
        self._bg.run(self._set_flowing(True))

    def resume(self) -> None:
        self._bg.run(self._set_mode("pass"))

    async def _close(self) -> None:
        await self._set_mode("refuse")
        if self._listener is not None:
            self._listener.close()
