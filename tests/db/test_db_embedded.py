"""EmbeddedPostgres: persistence across restarts, long paths, stale state, stop on release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil

from db.embedded import EmbeddedPostgres


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


async def test_embedded_lifecycle(tmp_path: Path) -> None:
    # deeper than a unix socket path may be (~107 bytes): pgserver must put the socket elsewhere
    data_dir = tmp_path / ("d" * 60) / ("e" * 60) / "postgres"
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
