"""EmbeddedPostgres: persistence across restarts, long paths, stale state, stop on release,
restart in place after the server was killed."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from db.embedded import EmbeddedPostgres, EmbeddedStartError


async def query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        if ";" in sql:
            return await conn.execute(sql)
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` has exited. A zombie counts as exited: the postmaster is reparented
    to pid 1, which may reap it late (as in some containers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_embedded_lifecycle(pg_scratch: Path) -> None:
    # deeper than a unix socket path may be (~107 bytes): pgserver must put the socket elsewhere
    data_dir = pg_scratch / ("d" * 60) / ("e" * 60) / "postgres"
    assert len(str(data_dir / ".s.PGSQL.5432")) > 108

    pg = EmbeddedPostgres.start(data_dir, database="cex arb")
    pid = pg.pid
    try:
        assert pg.socket_dir != data_dir and pg.is_running()
        assert await query(pg.dsn, "SELECT current_database()") == "cex arb"
        await query(pg.dsn, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
    finally:
        pg.stop()
    assert not pg.is_running() and process_gone(pid)

    # a process killed with SIGKILL left its pid behind: it must not keep the server alive
    handles = data_dir / ".handle_pids.json"
    handles.write_text(json.dumps([dead_pid()]))
    # and after a container restart the old postmaster pid may belong to another program
    fake = [str(os.getpid()), str(data_dir), "0", "5432", str(data_dir), "", "0 0", "ready"]
    (data_dir / "postmaster.pid").write_text("\n".join(fake) + "\n")

    pg = EmbeddedPostgres.start(data_dir, database="cex arb")
    pid = pg.pid
    try:
        assert pid != os.getpid() and pg.is_running()
        assert await query(pg.dsn, "SELECT v FROM kept") == "x"  # data survived the restart
        assert json.loads(handles.read_text()) == [os.getpid()]
    finally:
        pg.stop()
    assert process_gone(pid)
    pg.stop()  # idempotent


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


async def test_a_killed_server_is_restarted_in_place_and_a_running_one_left_alone(
    pg_scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = pg_scratch / "postgres"
    pg = EmbeddedPostgres.start(data_dir)
    try:
        await query(pg.dsn, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
        old = postmaster_pid(data_dir)
        os.kill(old, signal.SIGKILL)
        assert process_gone(old) and not pg.is_running()

        # postgres refuses a data directory others may read: the attempt fails, in one line
        data_dir.chmod(0o777)
        with (
            caplog.at_level(logging.INFO, logger="pgserver"),
            pytest.raises(EmbeddedStartError) as err,
        ):
            pg.restart()
        assert str(err.value).startswith("FATAL: data directory")
        assert "has invalid permissions" in str(err.value)
        assert not [r for r in caplog.records if r.name == "pgserver"]  # no server log dump
        data_dir.chmod(0o700)

        pg.restart()
        new = postmaster_pid(data_dir)
        assert new != old and pg.is_running() and pg.pid == new
        assert await query(pg.dsn, "SELECT v FROM kept") == "x"  # same DSN, same data
        pg.restart()  # running: nothing happens, never a second server
        assert postmaster_pid(data_dir) == new
    finally:
        pg.stop()
    assert process_gone(new)
    with pytest.raises(EmbeddedStartError, match="released"):
        pg.restart()


def test_a_pid_file_naming_a_zombie_is_no_running_server(pg_scratch: Path) -> None:
    """A killed postmaster stays a zombie until pid 1 reaps it; postgres would take it for a
    running server (its pid file and its socket's lock file name a pid that kill(0) finds)."""
    data_dir = pg_scratch / "postgres"
    pg = EmbeddedPostgres.start(data_dir)
    pg.stop()
    zombie = postgres_zombie()
    try:
        lines = [str(zombie.pid), str(data_dir), "0", "5432", str(data_dir), "", "0 0", "ready"]
        (data_dir / "postmaster.pid").write_text("\n".join(lines) + "\n")
        (data_dir / ".s.PGSQL.5432.lock").write_text(f"{zombie.pid}\n{data_dir}\n0\n5432\n")
        pg = EmbeddedPostgres.start(data_dir)
        try:
            assert pg.is_running() and pg.pid != zombie.pid
            assert postmaster_pid(data_dir) == pg.pid
        finally:
            pg.stop()
    finally:
        zombie.wait()


def postgres_zombie() -> subprocess.Popen[bytes]:
    """What a killed postmaster is until it is reaped: an exited process named postgres, of
    the user postgres runs as (pgserver's own user when we are root)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    user = "pgserver" if os.geteuid() == 0 else None
    proc = subprocess.Popen(
        [str(POSTGRES_BIN_PATH / "postgres"), "--version"], stdout=subprocess.DEVNULL, user=user
    )
    deadline = time.monotonic() + 5
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:  # never waited for
        assert time.monotonic() < deadline, "no zombie"
        time.sleep(0.01)
    return proc
