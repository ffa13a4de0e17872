"""The periodic ``connection_status`` log line of each venue.

``updates_per_min`` is the rate of accepted updates since the previous report: ``None`` on a
venue's first report (there is no earlier count to take a difference from) and when the
counter went backwards.
"""

from __future__ import annotations

from typing import Any

import structlog

from data_collector.monitoring.sources import CollectorStatus
from data_collector.wording import plural


class ConnectionStatusLog:
    """Logs one ``[CONNECTION]`` line per venue of a status; remembers the update counts."""

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger(__name__)
        self._last_updates: dict[str, tuple[int, int]] = {}

    def report(self, status: CollectorStatus) -> None:
        now_ns = status.now_ns
        for venue, v in status.venues.items():
            st, up, expected = v.stats, v.connections_up, v.connections_expected
            rate = self._updates_per_min(venue, st.updates, now_ns)
            age = (now_ns - st.last_message_ns) / 1e9 if st.last_message_ns else None
            rate_text = "n/a" if rate is None else f"{rate:.0f}"
            age_text = "no message yet" if age is None else f"last message {age:.1f}s ago"
            self._log.info(
                "connection_status",
                exchange=venue,
                connections_up=up,
                connections_expected=expected,
                updates_per_min=rate,
                reconnects=st.reconnects,
                connection_attempts=st.connection_attempts,
                connection_failures=st.connection_failures,
                silent_pairs=len(v.silent_pairs),
                last_message_age_s=age,
                parse_errors=st.parse_errors,
                dropped=st.dropped_stale
                + st.dropped_crossed
                + st.dropped_invalid
                + st.dropped_unknown,
                summary=(
                    f"[CONNECTION] {venue.upper()}: {up}/{plural(expected, 'connection')} up, "
                    f"{rate_text} updates/min, {plural(st.reconnects, 'reconnect')}"
                    f"{_attempts(st.connection_attempts, st.connection_failures)}, {age_text}"
                    f"{_silent(len(v.silent_pairs))}"
                ),
            )

    def _updates_per_min(self, venue: str, updates: int, now_ns: int) -> float | None:
        """Rate since the previous report; None on the first one or after a counter reset."""
        previous = self._last_updates.get(venue)
        self._last_updates[venue] = (updates, now_ns)
        if previous is None:
            return None
        delta, elapsed_ns = updates - previous[0], now_ns - previous[1]
        if delta < 0 or elapsed_ns <= 0:
            return None
        return delta * 60e9 / elapsed_ns


def _attempts(attempts: int, failures: int) -> str:
    """`` (12 connection attempts, 12 failed)`` once any attempt failed; nothing otherwise."""
    if not failures:
        return ""
    return f" ({plural(attempts, 'connection attempt')}, {failures} failed)"


def _silent(count: int) -> str:
    return f", {plural(count, 'silent pair')}" if count else ""
