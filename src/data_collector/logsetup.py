"""structlog set-up: readable console lines or one JSON object per line.

Log calls name an event (``snapshot``, ``arbitrage_alert``, ...) and pass numbers as fields.
Lines meant for people tailing the logs also carry ``summary``: the console renderer prints it
in place of the field list; JSON keeps every field.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("console", "json")

_json = msgspec.json.Encoder(enc_hook=str)


def _render_json(_logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
    return _json.encode(event_dict).decode()


class _ConsoleRenderer:
    """``2026-11-23T14:39:00.123Z INFO    summary`` or ``... event key=value ...``."""

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
        timestamp = event_dict.pop("timestamp", "")
        level = event_dict.pop("level", "info").upper()
        event = event_dict.pop("event", "")
        summary = event_dict.pop("summary", None)
        exception = event_dict.pop("exception", None)
        event_dict.pop("logger", None)
        if summary is not None:
            line = f"{timestamp} {level:<7} {summary}"
        else:
            fields = " ".join(f"{k}={_short(v)}" for k, v in event_dict.items())
            line = f"{timestamp} {level:<7} {event}" + (f" {fields}" if fields else "")
        return f"{line}\n{exception}" if exception else line


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return repr(text) if " " in text else text


def configure_logging(
    level: str = "info", fmt: str = "console", stream: TextIO | None = None
) -> None:
    """Configure structlog (and route stdlib logging of libraries through the same stream)."""
    stream = stream or sys.stdout
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
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
