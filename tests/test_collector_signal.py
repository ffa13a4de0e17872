"""The signal handler acts even when logging raises (a logger outside logsetup's guard)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest
import structlog

from data_collector.runner import _on_signal


async def test_the_stop_event_is_set_before_the_signal_is_logged() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # a pipe whose reader went away: every log write raises EPIPE
    broken = os.fdopen(write_fd, "w")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(broken))
    try:
        stop = asyncio.Event()
        with pytest.raises(BrokenPipeError):
            _on_signal(signal.SIGTERM, stop.set)
        assert stop.is_set()
    finally:
        structlog.reset_defaults()
        with contextlib.suppress(OSError):
            broken.close()
