"""The SQL of ``--report``, in one place: every statement reads ``SNAPSHOTS`` and ``LEDGER``
only through the builders below, so pointing the report at another source (a partitioned
table, an archive view) is a change to this file alone. No database driver here.

Everything is aggregated in PostgreSQL; what comes back is a few rows per venue, pair or venue
pair. How each statement stays fast on a big table:

* **Coverage per venue**: one (parallel) index-only scan of the ``("timestamp", exchange)``
  index over the window, which delivers the rows already grouped by tick and venue (no heap,
  no hash of every row), then ``lag()`` over those ticks (a few per second) finds the gaps.
* **Coverage per venue and pair** (``--detail``, ``--plot``): a (parallel) count per venue
  and pair. A pair with as many ticks as its venue has exactly the venue's gaps (its ticks are
  a subset of the venue's); only the others are walked with ``lag()`` along their range of the
  unique index (venue, pair, tick), an index-only scan that needs no sort.
* **Spreads and mid-price differences** need every row's prices. Above a row budget they are
  computed over a deterministic sample of the window's seconds (``generate_series`` of the
  ticks, kept when a hash of the tick falls in 1 of k buckets, each joined to its rows through
  the ``("timestamp", exchange)`` index), so their cost stays bounded however long the window
  is.
* **Opportunities** come from the ledger, a few rows per opportunity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

SNAPSHOTS = "book_ticker_snapshots"
LEDGER = "arbitrage_opportunities"

#: gaps longer than this many seconds are listed
GAP_S = 5


class Sample(NamedTuple):
    """Which ticks the price statistics read: every tick of the window, or about one in
    ``every`` (a fixed hash of the tick decides, so a rerun reads the same ones)."""

    first_tick: datetime
    last_tick: datetime
    step_s: int
    every: int


class Scope:
    """The parameters every statement shares: the window ($1, $2) and the pair filter
    ($3, $4, only when pairs are given), plus those a statement adds."""

    def __init__(
        self, since: datetime, until: datetime, pairs: Sequence[tuple[str, str]] | None
    ) -> None:
        self.args: list[Any] = [since, until]
        self.pair_filter = ""
        if pairs is not None:
            self.args += [[b for b, _ in pairs], [q for _, q in pairs]]
            self.pair_filter = (
                "AND (s.symbol_base, s.symbol_quote) IN "
                "(SELECT * FROM unnest($3::text[], $4::text[]))"
            )

    def add(self, value: Any) -> str:
        """A further parameter; returns its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    @property
    def window(self) -> str:
        return f'AND s."timestamp" >= $1 AND s."timestamp" < $2 {self.pair_filter}'


def _gaps(scope: Scope, step_s: int) -> str:
    """Aggregates of one group's ticks: how many, the first and last, and the (previous tick,
    tick) pairs around each gap."""
    longer = scope.add(timedelta(seconds=step_s + GAP_S))
    after = f"array_agg(prev ORDER BY ts) FILTER (WHERE ts - prev > {longer})"
    until = f"array_agg(ts ORDER BY ts) FILTER (WHERE ts - prev > {longer})"
    return (
        f"coalesce({after}, '{{}}') AS gap_after, coalesce({until}, '{{}}') AS gap_until, "
        "count(*) AS stored, min(ts) AS first, max(ts) AS last"
    )


def venue_coverage(scope: Scope, step_s: int) -> str:
    """Per venue: ticks with a row, rows, first and last tick, and the gaps between. Grouped
    by tick first, the order of the ``("timestamp", exchange)`` index: PostgreSQL then groups
    the index-only scan's rows as they come instead of hashing each one."""
    return f"""
WITH ticks AS (
    SELECT s.exchange, s."timestamp" AS ts, count(*) AS n
    FROM {SNAPSHOTS} s WHERE TRUE {scope.window}
    GROUP BY s."timestamp", s.exchange
), steps AS (
    SELECT exchange, ts, n, lag(ts) OVER (PARTITION BY exchange ORDER BY ts) AS prev FROM ticks
)
SELECT exchange, sum(n)::bigint AS rows, {_gaps(scope, step_s)}
FROM steps GROUP BY exchange ORDER BY exchange
"""


def pair_counts(scope: Scope) -> str:
    """Per venue and pair: ticks with a row (one row per tick: the unique key), the first and
    the last."""
    return f"""
SELECT s.exchange, s.symbol_base, s.symbol_quote, count(*) AS stored,
       min(s."timestamp") AS first, max(s."timestamp") AS last
FROM {SNAPSHOTS} s WHERE TRUE {scope.window}
GROUP BY s.exchange, s.symbol_base, s.symbol_quote
"""


def pair_gaps(scope: Scope, step_s: int, series: Sequence[tuple[str, str, str]]) -> str:
    """The gaps of the listed (venue, base, quote) series: ``lag()`` along each one's range
    of the unique index (an index-only scan per series, no sort)."""
    venues = scope.add([v for v, _b, _q in series])
    bases = scope.add([b for _v, b, _q in series])
    quotes = scope.add([q for _v, _b, q in series])
    return f"""
SELECT f.exchange, f.symbol_base, f.symbol_quote, g.*, g.stored AS rows
FROM unnest({venues}::text[], {bases}::text[], {quotes}::text[])
    AS f(exchange, symbol_base, symbol_quote)
CROSS JOIN LATERAL (
    SELECT {_gaps(scope, step_s)}
    FROM (SELECT s."timestamp" AS ts, lag(s."timestamp") OVER (ORDER BY s."timestamp") AS prev
          FROM {SNAPSHOTS} s
          WHERE s.exchange = f.exchange AND s.symbol_base = f.symbol_base
            AND s.symbol_quote = f.symbol_quote {scope.window}) AS steps
) AS g
"""


def _rows(scope: Scope, sample: Sample) -> str:
    """The window's snapshot rows, or those of the sampled ticks."""
    if sample.every <= 1:
        return f"SELECT s.* FROM {SNAPSHOTS} s WHERE TRUE {scope.window}"
    first, last = scope.add(sample.first_tick), scope.add(sample.last_tick)
    step, k = scope.add(timedelta(seconds=sample.step_s)), scope.add(sample.every)
    return f"""
SELECT s.* FROM generate_series({first}::timestamptz, {last}::timestamptz, {step}::interval)
    AS g(ts)
JOIN {SNAPSHOTS} s ON s."timestamp" = g.ts
WHERE (hashint8(extract(epoch FROM g.ts)::bigint) & 2147483647) % {k} = 0 {scope.window}
"""


def spreads(scope: Scope, sample: Sample) -> str:
    """Per venue and pair: median and p95 of (ask - bid) / mid, in %. Each pair's values are
    gathered by a hash aggregate and sorted on their own: cheaper than sorting every row by
    venue and pair."""
    return f"""
WITH q AS (
    SELECT exchange, symbol_base, symbol_quote, count(*) AS samples,
           array_agg(((ask_price - bid_price) / (ask_price + bid_price))::float8 * 200)
               AS spread
    FROM ({_rows(scope, sample)}) AS rows
    GROUP BY exchange, symbol_base, symbol_quote
)
SELECT exchange, symbol_base, symbol_quote, samples, p[1] AS median, p[2] AS p95
FROM q CROSS JOIN LATERAL (
    SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY v) AS p FROM unnest(spread) AS v
) AS pct
ORDER BY exchange, symbol_base, symbol_quote
"""


def mid_differences(scope: Scope, sample: Sample, venues: Sequence[str]) -> str:
    """Per venue pair (a < b): median of (mid_b - mid_a) / mean mid in %, signed and absolute,
    over the ticks where both quoted the same pair."""
    source = _rows(scope, sample)
    names = [scope.add(venue) for venue in venues]
    # bid + ask: twice the mid (the factor cancels out)
    mids = ",\n           ".join(
        f"max((bid_price + ask_price)::float8) FILTER (WHERE exchange = {name}) AS m{i}"
        for i, name in enumerate(names)
    )
    pairs = ",\n        ".join(
        f"({names[a]}, {names[b]}, 200 * (m{b} - m{a}) / (m{a} + m{b}))"
        for a in range(len(names))
        for b in range(a + 1, len(names))
    )
    return f"""
WITH q AS (
    SELECT {mids}
    FROM ({source}) AS rows
    GROUP BY "timestamp", symbol_base, symbol_quote
), d AS (
    SELECT v.a, v.b, count(*) AS samples, array_agg(v.d) AS diffs
    FROM q CROSS JOIN LATERAL (VALUES
            {pairs}
        ) AS v(a, b, d)
    WHERE v.d IS NOT NULL
    GROUP BY v.a, v.b
)
SELECT a, b, samples,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(diffs) AS x) AS median,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(x)) FROM unnest(diffs) AS x)
           AS median_abs
FROM d ORDER BY a, b
"""


def _ledger_window(scope: Scope, step_s: int) -> str:
    """Opportunities open at some time in the window (an open one until its last tick)."""
    step = scope.add(timedelta(seconds=step_s))
    return (
        f"s.opened_at < $2 AND coalesce(s.closed_at, s.last_seen_at + {step}) > $1 "
        f"{scope.pair_filter}"
    )


def opportunities(scope: Scope, step_s: int) -> str:
    """Per pair and venue pair: counts, durations (an open one: so far), net %, profit and the
    longest one."""
    return f"""
WITH o AS (
    SELECT s.symbol_base || '/' || s.symbol_quote AS symbol, s.buy_exchange, s.sell_exchange,
           s.opened_at, s.closed_at IS NULL AS is_open, s.max_net_pct,
           coalesce(s.duration_s, extract(epoch FROM s.last_seen_at - s.opened_at))::float8
               AS dur,
           s.max_profit_quote::float8 AS profit
    FROM {LEDGER} s WHERE {_ledger_window(scope, step_s)}
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY symbol, buy_exchange, sell_exchange
                                 ORDER BY dur DESC, opened_at) AS rank
    FROM o
)
SELECT symbol, buy_exchange, sell_exchange, count(*) AS n,
       count(*) FILTER (WHERE is_open) AS open, sum(dur) AS total,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dur) AS median_dur,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY max_net_pct) AS median_net,
       max(max_net_pct) AS max_net, sum(profit) AS profit,
       min(opened_at) FILTER (WHERE rank = 1) AS longest_at,
       max(dur) AS longest_dur,
       max(max_net_pct) FILTER (WHERE rank = 1) AS longest_net
FROM ranked GROUP BY symbol, buy_exchange, sell_exchange
ORDER BY n DESC, symbol, buy_exchange, sell_exchange
"""


def timeline(scope: Scope, step_s: int, limit: int) -> str:
    """Each opportunity of the window (the latest ``limit``), for the plot."""
    return f"""
SELECT s.symbol_base || '/' || s.symbol_quote AS symbol, s.buy_exchange, s.sell_exchange,
       s.opened_at, s.max_at, coalesce(s.closed_at, s.last_seen_at) AS end_at,
       s.open_net_pct, s.max_net_pct
FROM {LEDGER} s WHERE {_ledger_window(scope, step_s)}
ORDER BY s.opened_at DESC LIMIT {int(limit)}
"""
