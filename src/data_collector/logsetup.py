"""structlog set-up: readable console lines or one JSON object per line.

Log calls name an event (``snapshot``, ``arbitrage_alert``, ...) and pass numbers as fields.
Every event logged at info level or above also carries ``summary``, a sentence for people
tailing the logs: the console renderer prints it in place of the field list; JSON keeps every
field. (``tests/test_log_lines.py`` fails, naming the call, when one is missing; should one slip
through, the console still turns it into a sentence.) Debug events print ``event key=value``.
Library log records (stdlib ``logging``) take the same console shape, on stderr.

Logging is best effort: a write that fails (the reader of a pipe went away, a full disk) ends
output to that stream for good and never raises into the code that logged, so a closed
``| head`` cannot stop collection, analytics or signal handling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
import structlog

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("console", "json")

_json = msgspec.json.Encoder(enc_hook=str)


def _render_json(_logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
    return _json.encode(event_dict).decode()


class _ConsoleRenderer:
    """``2026-11-23T14:39:00.123Z INFO    summary``, then the traceback if there is one; a
    debug event without a summary prints ``event key=value ...``."""

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
        timestamp = event_dict.pop("timestamp", "")
        level = event_dict.pop("level", "info")
        event = str(event_dict.pop("event", ""))
        summary = event_dict.pop("summary", None)
        exception = event_dict.pop("exception", None)
        event_dict.pop("logger", None)
        if summary is None:
            summary = (
                _dump(event, event_dict) if level == "debug" else as_sentence(event, event_dict)
            )
        return console_line(timestamp, level, str(summary), exception)


def console_line(timestamp: str, level: str, text: str, exception: str | None = None) -> str:
    """One console line: ``timestamp LEVEL text``, followed by ``exception`` (a traceback)."""
    line = f"{timestamp} {level.upper():<7} {text}"
    return f"{line}\n{exception}" if exception else line


def as_sentence(event: str, fields: dict[str, Any]) -> str:
    """A readable line for an event that came without a summary: ``Connection opened: link
    gateio-0, transport 1``."""
    words = event.replace("_", " ").strip().capitalize() or "Log event"
    parts = ", ".join(f"{k.replace('_', ' ')} {_short(v, quote=False)}" for k, v in fields.items())
    return f"{words}: {parts}" if parts else words


def _dump(event: str, fields: dict[str, Any]) -> str:
    text = " ".join(f"{k}={_short(v)}" for k, v in fields.items())
    return f"{event} {text}" if text else event


def _short(value: Any, *, quote: bool = True) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return repr(text) if quote and " " in text else text


class _ConsoleFormatter(logging.Formatter):
    """Library records (asyncpg, picows, aiohttp, ...) in the console shape:
    ``timestamp LEVEL logger: message``, then the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        moment = f"{datetime.fromtimestamp(record.created, UTC):%Y-%m-%dT%H:%M:%S.%f}Z"
        exception = self.formatException(record.exc_info) if record.exc_info else None
        text = f"{record.name}: {record.getMessage()}"
        return console_line(moment, record.levelname.lower(), text, exception)


class BestEffortStream:
    """A text stream for log lines that never raises.

    The first failed write or flush (EPIPE, ENOSPC, any OSError, a closed file) ends output to
    the stream for good, with one notice on ``notice``. Its descriptor is then pointed at
    /dev/null (the Python docs' recipe for a closed pipe), so the interpreter's own flush of
    the stream at exit neither prints "Exception ignored" nor changes the exit code.
    """

    def __init__(self, stream: TextIO, *, name: str, notice: TextIO | None = None) -> None:
        self._stream = stream
        self.name = name
        self._notice = notice
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                return self._stream.write(text)
            except (OSError, ValueError) as exc:
                self._give_up(exc)
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        self.failed = True
        point_at_devnull(self._stream)
        if self._notice is not None:
            reason = getattr(exc, "strerror", None) or str(exc)
            self._notice.write(
                f"log output to {self.name} stopped ({reason}); the program keeps running\n"
            )
            self._notice.flush()


def point_at_devnull(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null: whatever it still buffers is flushed there."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


#: one guard per real stream, so every logger writing to it shares its failed state
_guards: dict[int, tuple[TextIO, BestEffortStream]] = {}


def best_effort(stream: TextIO, name: str, notice: TextIO | None = None) -> BestEffortStream:
    """The shared :class:`BestEffortStream` around ``stream``."""
    if isinstance(stream, BestEffortStream):
        return stream
    held = _guards.get(id(stream))
    if held is None or held[0] is not stream:
        held = (stream, BestEffortStream(stream, name=name, notice=notice))
        _guards[id(stream)] = held
    return held[1]


def configure_logging(
    level: str = "info", fmt: str = "console", stream: TextIO | None = None
) -> None:
    """Configure structlog on ``stream`` (default stdout) and stdlib logging on stderr, both
    best effort; a failure on the log stream is reported once on stderr."""
    stderr = best_effort(sys.stderr, "stderr")
    raw = stream or sys.stdout
    stream = stderr if raw is sys.stderr else best_effort(raw, _stream_name(raw), stderr)
    renderer = _render_json if fmt == "json" else _ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (asyncpg, picows) log through stdlib: keep their warnings, on stderr so a JSON
    # stdout stays one object per line.
    logging.basicConfig(level=logging.WARNING, stream=stderr, force=True)
    if fmt != "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_ConsoleFormatter())


def _stream_name(stream: TextIO) -> str:
    if stream is sys.stdout:
        return "stdout"
    return str(getattr(stream, "name", "the log stream"))
