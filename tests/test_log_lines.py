"""At info level every console line reads as a sentence: ``timestamp LEVEL sentence``.

Two checks keep it so. Every log call in ``src/`` that can log at info level or above passes a
``summary`` (read from the source, so an error path no run reaches is held to it too; the
failure names the file, the line and the event). And the program, run the ways a user runs it
(a simulated collector with and without a database, a recording and its replay, ``--status``,
``--report``, ``--query``, ``--archive``), prints only such lines at info level, library
records included.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from tests.cli_process import run_cli, write_config
from tests.pg import PgDatabase
from tests.storage_helpers import three_homes

SRC = Path(__file__).resolve().parents[1] / "src"

#: structlog methods that log at info level or above (``msg`` is info)
LOUD = {"info", "msg", "warning", "warn", "error", "exception", "critical", "fatal"}
EVENT_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

#: a console line: UTC timestamp, level padded to 7, then the text
LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (?P<level>INFO   |WARNING|ERROR  |CRITICAL) "
    r"(?P<text>\S.*)"
)
#: what a line without a summary used to print: ``event`` or ``event key=value ...``
FIELD_DUMP = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*(?: [A-Za-z_]+=\S*)*")


# --- every call passes a summary ------------------------------------------------------------


def _mentions_logger(node: ast.AST) -> bool:
    return "log" in ast.unparse(node).lower()


def _loud_aliases(tree: ast.AST) -> set[str]:
    """Names bound to a logging method chosen at run time, such as
    ``level = log.warning if first else log.debug``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            methods = {
                n.attr
                for n in ast.walk(node.value)
                if isinstance(n, ast.Attribute) and _mentions_logger(n.value)
            }
            if isinstance(target, ast.Name) and methods & LOUD:
                names.add(target.id)
    return names


def _may_be_loud(func: ast.expr, aliases: set[str]) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr in LOUD and _mentions_logger(func.value)
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name):  # getattr(log, level)
        return func.func.id == "getattr" and bool(func.args) and _mentions_logger(func.args[0])
    return isinstance(func, ast.Name) and func.id in aliases


def calls_without_summary(source: str, where: str) -> list[str]:
    """``where:line event`` for each log call naming its event that may log at info level or
    above without an explicit ``summary=``."""
    tree = ast.parse(source)
    aliases = _loud_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        event = node.args[0]
        if not (isinstance(event, ast.Constant) and isinstance(event.value, str)):
            continue
        if not EVENT_NAME.fullmatch(event.value) or not _may_be_loud(node.func, aliases):
            continue
        if not any(k.arg == "summary" for k in node.keywords):
            found.append(f"{where}:{node.lineno} {event.value}")
    return found


def test_the_scan_finds_every_kind_of_log_call_without_a_summary() -> None:
    source = """
log.info("plain_info", n=1)
self._log.warning("method_logger")
getattr(log, level)("dynamic_level", n=2)
level = log.warning if first else log.debug
level("chosen_level", n=3)
log.exception("with_traceback")
log.debug("debug_only", n=4)
log.info("said", n=5, summary="5 things said")
log.info(name, **event)
metrics.info("not_a_log", n=6)
"""
    assert calls_without_summary(source, "x.py") == [
        "x.py:2 plain_info",
        "x.py:3 method_logger",
        "x.py:4 dynamic_level",
        "x.py:6 chosen_level",
        "x.py:7 with_traceback",
    ]


def test_every_log_call_at_info_or_above_in_src_has_a_summary() -> None:
    missing = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        for hit in calls_without_summary(path.read_text(), str(path.relative_to(SRC)))
    ]
    assert not missing, (
        "these log calls may reach the console at info level or above without a summary; "
        "pass summary= (a short sentence, no key=value) or log them at debug:\n"
        + "\n".join(missing)
    )


# --- the program prints nothing else ----------------------------------------------------------


def not_sentences(output: str) -> list[str]:
    """The lines of ``output`` that are not ``timestamp LEVEL sentence`` at info or above."""
    bad = []
    for line in output.splitlines():
        match = LINE.fullmatch(line)
        if match is None or FIELD_DUMP.fullmatch(match["text"]):
            bad.append(line)
    return bad


def test_the_shape_check_refuses_a_field_dump_a_debug_line_and_a_stray_line() -> None:
    good = "2026-11-23T14:40:00.012345Z INFO    Loaded 20 trading pairs"
    dumps = [
        "2026-11-23T14:40:00.012345Z INFO    writer_started table=t dsn=postgresql://x",
        "2026-11-23T14:40:00.012345Z WARNING feeds_stopped",
        "2026-11-23T14:40:00.012345Z DEBUG   Loaded 20 trading pairs",
        "WARNING:asyncio:Task was destroyed",
    ]
    assert not_sentences("\n".join([good, *dumps])) == dumps


def _run(*args: str, cwd: Path) -> str:
    """Run the program at info level on the console; its stdout and stderr, in that order."""
    done = run_cli(*args, "--log-level", "info", "--log-format", "console", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _logs_of_report(*args: str, cwd: Path) -> str:
    """Run a command that prints a report: the report goes to stdout, its log lines (returned)
    to stderr."""
    done = run_cli(*args, "--log-level", "info", "--log-format", "console", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
    return done.stderr


def _assert_sentences(output: str, *must_say: str) -> None:
    bad = not_sentences(output)
    assert not bad, "not a sentence:\n" + "\n".join(bad)
    for words in must_say:  # the runs did what they are here for
        assert words in output, output[-3000:]


@pytest.mark.timeout(90)
def test_a_dry_run_its_recording_and_the_replay_print_sentences(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "data_collector: {analytics_interval: 1}\nmonitoring: {enabled: false}\n"
    )
    common = ("--config", str(config), "--dry-run", "--symbols", "BTC/USDT,ETH/USDT")
    live = _run(*common, "--simulate", "--record", "rec", "--duration", "2.5", cwd=tmp_path)
    # "[SNAPSHOT #": a slow start-up's first tick finds no live quote yet ("No live quotes
    # yet"), so the first captured one is #002
    _assert_sentences(live, "[SNAPSHOT #", "[ANALYTICS] Market Health", "Recording closed")
    replayed = _run(*common, "--replay", "rec", "--speed", "max", cwd=tmp_path)
    _assert_sentences(replayed, "Replay finished", "[SNAPSHOT #")


@pytest.mark.timeout(120)
async def test_a_run_into_a_database_and_the_reports_on_it_print_sentences(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:  # completed days for --archive to export
        await three_homes(conn, tmp_path, datetime.now(UTC).date())
    finally:
        await conn.close()
    config = write_config(
        tmp_path / "etc",
        "data_collector: {analytics_interval: 1, symbols: [BTC/USDT, ETH/USDT]}\n"
        f'database: {{dsn: "{pg_database.dsn}", retention_days: 3}}\n'
        "monitoring: {enabled: false}\n",
    )
    common = ("--config", str(config))
    collected = _run(*common, "--simulate", "--duration", "2.5", cwd=tmp_path)
    _assert_sentences(collected, "Connected to PostgreSQL", "database: 10 stored", "stopped")
    for command in (
        ("--status",),
        ("--report", "--since", "1h"),
        ("--query", "SELECT count(*) FROM book_ticker_snapshots"),
    ):
        _assert_sentences(_logs_of_report(*common, *command, cwd=tmp_path))
    archived = _logs_of_report(*common, "--archive", cwd=tmp_path)
    _assert_sentences(archived, "[ARCHIVE]")
