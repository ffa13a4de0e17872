"""What ``--report`` asks the database and what it gets back: plain structs, no database driver.

:mod:`db.report_queries` fills them in PostgreSQL; ``data_collector.report`` renders them as
text, JSON or CSV and plots them. Times are UTC-aware; every ``*_pct`` is a percentage.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec


class ReportQuery(msgspec.Struct, frozen=True):
    #: the window is [since, until)
    since: datetime
    until: datetime
    #: the snapshot interval: the window's ticks are the multiples of it
    step_s: int = 1
    #: (base, quote) pairs to report on; None: every pair stored
    pairs: tuple[tuple[str, str], ...] | None = None
    #: venues that should have data (listed even when they have none)
    venues: tuple[str, ...] = ()
    #: coverage per venue and pair as well
    per_pair: bool = False
    #: every opportunity of the window, for the timeline plot
    timeline: bool = False
    #: above this many snapshot rows in the window, spreads and mid differences are taken
    #: from a deterministic 1-in-k sample of the window's seconds (see Sampling)
    sample_rows: int = 500_000
    #: the Parquet archive (issue 11's): archived days of the window are read back from it
    archive_dir: str | None = None


class Window(msgspec.Struct, frozen=True):
    since: datetime
    until: datetime
    step_s: int
    #: seconds covered by the window's ticks (ticks x step)
    seconds: int


def window_ticks(query: ReportQuery) -> tuple[datetime, datetime, Window]:
    """The window's first and last tick (the multiples of the step in [since, until)) and the
    window they make."""
    step = query.step_s
    first = math.ceil(query.since.timestamp() / step) * step
    last = math.ceil(query.until.timestamp() / step) * step - step
    ticks = max(0, (last - first) // step + 1)
    window = Window(query.since, query.until, step, ticks * step)
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC), window


class Longest(msgspec.Struct, frozen=True):
    opened_at: datetime
    duration_s: float
    max_net_pct: float


class OpportunityStats(msgspec.Struct, frozen=True):
    """The opportunities of one pair and venue pair that were open during the window."""

    symbol: str
    buy_exchange: str
    sell_exchange: str
    count: int
    #: still open (at the end of the data)
    open: int
    total_duration_s: float
    median_duration_s: float
    median_net_pct: float
    max_net_pct: float
    #: summed max_profit_quote (in the pair's quote currency); None when no size was known
    profit_quote: float | None
    longest: Longest


class Gap(msgspec.Struct, frozen=True):
    """Ticks without a stored row, [start, end)."""

    start: datetime
    end: datetime
    seconds: float


class Coverage(msgspec.Struct, frozen=True):
    exchange: str
    #: None: the venue as a whole (a second counts when any pair has a row)
    symbol: str | None
    #: seconds (ticks x step) with a stored row
    seconds_stored: int
    seconds: int
    pct: float
    rows: int
    #: the stretches longer than the gap threshold without a row
    gaps: list[Gap]


class SpreadStats(msgspec.Struct, frozen=True):
    """Quoted spread, (ask - bid) / mid, over the (sampled) rows of one venue and pair."""

    exchange: str
    symbol: str
    samples: int
    median_pct: float
    p95_pct: float


class MidDiff(msgspec.Struct, frozen=True):
    """Mid-price difference of one venue pair, (mid_b - mid_a) / mean mid, over the (sampled)
    seconds where both quoted a pair."""

    venue_a: str
    venue_b: str
    samples: int
    #: signed: above zero when venue_b's mid is usually the higher one
    median_pct: float
    median_abs_pct: float


class Sampling(msgspec.Struct, frozen=True):
    #: 1: every second of the window; k: about one second in k (a fixed hash of the time)
    every: int
    #: snapshot rows the spreads were computed from
    rows: int


class TimelineEntry(msgspec.Struct, frozen=True):
    """One opportunity, for the timeline plot."""

    symbol: str
    buy_exchange: str
    sell_exchange: str
    opened_at: datetime
    max_at: datetime
    #: closed_at, or last_seen_at while open
    end: datetime
    open_net_pct: float
    max_net_pct: float


class Report(msgspec.Struct, frozen=True):
    window: Window
    #: the pairs asked for (BASE/QUOTE); None: every pair stored
    symbols: list[str] | None
    #: snapshot rows in the window
    rows: int
    has_data: bool
    opportunities: list[OpportunityStats]
    coverage: list[Coverage]
    #: per venue and pair (--detail or --plot); None when not asked for
    coverage_by_pair: list[Coverage] | None
    spreads: list[SpreadStats]
    mid_differences: list[MidDiff]
    sampling: Sampling
    #: every opportunity in the window (--plot); empty when not asked for
    timeline: list[TimelineEntry] = msgspec.field(default_factory=list)
    #: snapshot rows read back from the Parquet archive (days PostgreSQL no longer holds in
    #: full); opportunities are read back too
    archived_rows: int = 0
