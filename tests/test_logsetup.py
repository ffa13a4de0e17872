"""Console lines read as sentences (JSON keeps every field), and logging is best effort: a
closed pipe or a full disk under stdout never stops the collector."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import structlog

from data_collector.logsetup import configure_logging
from tests.cli_process import free_port, get_health, reaped, start_cli, stop, write_config
from tests.helpers import wait_until

#: snapshots that must follow the failed write before the test believes collection goes on
TICKS_AFTER_FAILURE = 3


def _collector_config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path,
        "data_collector:\n  symbols: [BTC/USDT, ETH/USDT]\n"
        f"monitoring: {{host: 127.0.0.1, port: {port}}}\n",
    )


def _last_snapshot(port: int) -> float | None:
    body = get_health(port)
    if body is None or body.get("last_snapshot") is None:
        return None
    return datetime.fromisoformat(body["last_snapshot"]).timestamp()


async def _snapshots_go_on(port: int, after: float) -> None:
    """/health shows a snapshot TICKS_AFTER_FAILURE intervals (1 s) after ``after``."""
    target = after + TICKS_AFTER_FAILURE
    await wait_until(
        lambda: (_last_snapshot(port) or 0) >= target,
        TICKS_AFTER_FAILURE + 10,
        interval=0.2,
        what=f"a snapshot at or after {target}",
    )


def _quiet_stderr(tmp_path: Path) -> str:
    """The run's stderr, which must hold no traceback and no "Exception ignored" at exit."""
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "Exception ignored" not in stderr, stderr[-3000:]
    return stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_closed_stdout_pipe_stops_neither_collection_nor_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = _collector_config(tmp_path, port)
    with open(tmp_path / "stderr.txt", "wb") as err:
        args = ("--config", str(config), "--simulate", "--dry-run")
        with reaped(start_cli(*args, cwd=tmp_path, stderr=err)) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:  # like `| head`: read until the first snapshot line ...
                if b"SNAPSHOT" in line:
                    break
            proc.stdout.close()  # ... and go away: the next log line hits EPIPE
            await _snapshots_go_on(port, datetime.now().timestamp())
            assert stop(proc) == 0
    stderr = _quiet_stderr(tmp_path)
    assert stderr.count("log output to stdout stopped") == 1, stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_stdout_on_a_full_disk_stops_neither_collection_nor_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = _collector_config(tmp_path, port)
    with open("/dev/full", "wb") as full, open(tmp_path / "stderr.txt", "wb") as err:
        started = datetime.now().timestamp()
        args = ("--config", str(config), "--simulate", "--dry-run")
        with reaped(start_cli(*args, cwd=tmp_path, stdout=full, stderr=err)) as proc:
            await _snapshots_go_on(port, started)
            assert stop(proc) == 0
    stderr = _quiet_stderr(tmp_path)
    assert "No space left on device" in stderr


def test_best_effort_stream_gives_up_quietly_on_a_closed_pipe() -> None:
    from data_collector.logsetup import BestEffortStream

    read_fd, write_fd = os.pipe()
    notices = io.StringIO()
    with os.fdopen(write_fd, "w") as raw, os.fdopen(read_fd, "rb") as reader:
        stream = BestEffortStream(raw, name="test pipe", notice=notices)
        stream.write("first line\n")
        stream.flush()
        assert reader.read1(100) == b"first line\n"
        reader.close()
        for _ in range(3):
            stream.write("x" * 10_000 + "\n")  # must not raise
            stream.flush()
        assert stream.failed
        # the descriptor now points at /dev/null: the interpreter's own flush at exit succeeds
        raw.write("pending\n")
        raw.flush()
    assert notices.getvalue().count("log output to test pipe stopped") == 1


# --- the console shape -----------------------------------------------------------------------

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


@pytest.fixture
def configured(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """configure_logging's changes (structlog, the root logger) undone after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def _console(level: str = "debug") -> io.StringIO:
    out = io.StringIO()
    configure_logging(level, "console", stream=out)
    return out


def test_a_summary_is_the_line(configured: None) -> None:
    out = _console()
    structlog.get_logger().warning("writer_started", table="t", summary="Writing t")
    assert re.fullmatch(rf"{STAMP} WARNING Writing t\n", out.getvalue())


def test_an_info_event_without_a_summary_still_reads_as_a_sentence(configured: None) -> None:
    out = _console()
    log = structlog.get_logger()
    log.info("connection_opened", link="gateio-0", transport=1, ready=False, lag=0.1234567)
    log.error("bare_event")
    first, second = out.getvalue().splitlines()
    text = "Connection opened: link gateio-0, transport 1, ready False, lag 0.123457"
    assert re.fullmatch(rf"{STAMP} INFO    {text}", first)
    assert re.fullmatch(rf"{STAMP} ERROR   Bare event", second)


def test_a_debug_event_without_a_summary_keeps_its_fields(configured: None) -> None:
    out = _console()
    structlog.get_logger().debug("reconnect_scheduled", link="okx-0", delay=0.5, why="a b")
    line = "reconnect_scheduled link=okx-0 delay=0.5 why='a b'"
    assert re.fullmatch(rf"{STAMP} DEBUG   {line}\n", out.getvalue())


def test_the_traceback_follows_the_sentence(configured: None) -> None:
    out = _console()
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("consumer_failed", summary="The consumer failed")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(rf"{STAMP} ERROR   The consumer failed", lines[0])
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_library_records_take_the_console_shape_on_stderr(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _console("info")
    try:
        raise OSError("reset")
    except OSError:
        logging.getLogger("picows.client").exception("connection to %s failed", "mexc")
    logging.getLogger("asyncpg").info("below the libraries' warning level: not shown")
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(rf"{STAMP} ERROR   picows.client: connection to mexc failed", lines[0])
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "OSError: reset"
    assert out.getvalue() == ""


def test_json_keeps_every_field_and_adds_no_summary(configured: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger().info("connection_opened", link="gateio-0", transport=1)
    event = json.loads(out.getvalue())
    assert event.pop("timestamp")
    assert event == {
        "event": "connection_opened",
        "link": "gateio-0",
        "transport": 1,
        "level": "info",
    }
