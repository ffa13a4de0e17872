"""Cases 4 to 6: tick accuracy under load, and the whole collector at scale.

One simulator process serves every venue of a case; one collector process
(``bench.collector_proc``, the production ``Collector`` with PostgreSQL) subscribes every pair
on each. Load: a constant random-walk rate per pair for most venues (``rates``), and Gate at
``gate_base`` updates/s per pair with bursts of ``gate_burst`` for ``burst_len`` s every
``burst_period`` s. After start-up and a warm-up, the collector's CPU, peak RSS, ticks and
writer counters are measured over ``duration_s`` seconds, and the rows of the measured ticks
are counted in PostgreSQL, per venue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.common import PROJECT_PY, REPO, median, percentiles
from bench.proto import Child
from db.pool import connect

#: the 2-venue case's load (MEXC's aggregated 100 ms channel allows at most 10 updates/s)
TWO_VENUE_RATES = {"mexc": 5.0}
#: the 5-venue case's load: Binance's real-time book ticker is the busiest stream; OKX and
#: Bybit push at most every 10 ms per pair
FIVE_VENUE_RATES = {"mexc": 5.0, "binance": 10.0, "okx": 5.0, "bybit": 5.0}


@dataclass
class ScaleSettings:
    #: how the case is named in titles, logs and the summary (``2 venues``)
    name: str = "2 venues"
    #: its number in RESULTS.md (and the prefix of its figures)
    case: int = 5
    venues: tuple[str, ...] = ("mexc", "gateio")
    pairs: int = 2_000
    duration_s: float = 60.0
    warmup_s: float = 5.0
    #: updates/s per pair for every venue but Gate
    rates: dict[str, float] = field(default_factory=lambda: dict(TWO_VENUE_RATES))
    gate_base: float = 2.5
    gate_burst: float = 20.0
    burst_period: float = 10.0
    burst_len: float = 1.0
    #: bursts start this many seconds into each period: away from the analytics summary,
    #: which runs on multiples of 10 s, so the plot tells the two apart
    burst_start: float = 4.0
    runs: int = 3
    quick: bool = False
    #: where the median run's plot goes (relative to bench/; "" for none)
    plot_name: str = "scale.png"

    @property
    def gate_mean(self) -> float:
        share = self.burst_len / self.burst_period
        return self.gate_base * (1 - share) + self.gate_burst * share

    @property
    def channels(self) -> int:
        return self.pairs * len(self.venues)

    def asked_rate(self, venue: str) -> float:
        """Frames per second the load asks of ``venue`` (all its pairs)."""
        per_pair = self.gate_mean if venue == "gateio" else self.rates[venue]
        return per_pair * self.pairs


def five_venues(**overrides: Any) -> ScaleSettings:
    """Every venue, 400 pairs each."""
    settings: dict[str, Any] = {
        "name": "5 venues",
        "case": 6,
        "venues": ("mexc", "gateio", "binance", "okx", "bybit"),
        "pairs": 400,
        "rates": dict(FIVE_VENUE_RATES),
        "plot_name": "scale-5-venues.png",
    }
    return ScaleSettings(**(settings | overrides))


async def _wait_ready(collector: Child, expected: int, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await collector.request({"cmd": "status"})
        if status["subscribed"] >= expected and status["usable"] >= expected:
            return status
        if loop.time() > deadline:
            raise TimeoutError(f"collector not ready after {timeout:.0f} s: {status}")
        await asyncio.sleep(0.25)


async def _start_load(sim: Child, s: ScaleSettings) -> None:
    for venue in s.venues:
        if venue == "gateio":
            await sim.request(
                {
                    "cmd": "bursts",
                    "venue": venue,
                    "base": s.gate_base,
                    "burst": s.gate_burst,
                    "period": s.burst_period,
                    "length": s.burst_len,
                    "start": s.burst_start,
                }
            )
        else:
            await sim.request({"cmd": "set_rate", "venue": venue, "rate": s.rates[venue]})


async def _sim_stats(sim: Child, s: ScaleSettings) -> dict[str, dict[str, Any]]:
    return {v: await sim.request({"cmd": "stats", "venue": v}) for v in s.venues}


async def run_scale(s: ScaleSettings, dsn: str, tmp: str, log) -> dict[str, Any]:
    sim_argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", *s.venues]
    sim_argv += ["--pairs", str(s.pairs), "--rate", "0"]
    sim = await Child.spawn(
        "sim/scale", sim_argv, cwd=str(REPO), stderr_path=f"{tmp}/scale-sim.err"
    )
    collector: Child | None = None
    try:
        urls = (await sim.recv(timeout=60))["urls"]
        argv = [PROJECT_PY, "-m", "bench.collector_proc", "--pairs", str(s.pairs), "--dsn", dsn]
        argv += [arg for v in s.venues for arg in ("--venue", f"{v}={urls[v]}")]
        argv += ["--data-dir", f"{tmp}/collector", "--log-file", f"{tmp}/collector.log"]
        collector = await Child.spawn(
            "collector", argv, cwd=str(REPO), stderr_path=f"{tmp}/collector.err"
        )
        await collector.recv(timeout=90)
        for venue in s.venues:
            await sim.request({"cmd": "wait_subs", "venue": venue, "n": s.pairs, "timeout": 90})
        await _start_load(sim, s)
        await _wait_ready(collector, s.channels, 90)
        await asyncio.sleep(s.warmup_s)
        sent0 = await _sim_stats(sim, s)
        await collector.request({"cmd": "mark"})
        log(f"case 4-6: {s.name}: measuring {s.duration_s:g} s")
        await asyncio.sleep(s.duration_s)
        report = await collector.request({"cmd": "report"})
        sent1 = await _sim_stats(sim, s)
        stopped = await collector.request({"cmd": "stop"}, timeout=90)
    finally:
        if collector is not None:
            await collector.close()
        await sim.close()
    report["stopped"] = stopped
    report["sent"] = {v: sent1[v]["updates_sent"] - sent0[v]["updates_sent"] for v in s.venues}
    first = s.venues[0]
    report["sim_cpu_pct"] = (sent1[first]["cpu"] - sent0[first]["cpu"]) / s.duration_s * 100
    report["db_rows"] = await _rows_in_db(dsn, report["ticks"])
    return report


async def _rows_in_db(dsn: str, ticks: list[dict[str, float]]) -> dict[str, int]:
    """Rows stored for the measured ticks, per venue."""
    if not ticks:
        return {}
    first = datetime.fromtimestamp(ticks[0]["boundary"], UTC)
    last = datetime.fromtimestamp(ticks[-1]["boundary"], UTC)
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            'SELECT exchange, count(*) AS n FROM book_ticker_snapshots WHERE "timestamp" '
            "BETWEEN $1 AND $2 GROUP BY exchange",
            first,
            last,
        )
    finally:
        await conn.close()
    return {row["exchange"]: int(row["n"]) for row in rows}


def analyse(report: dict[str, Any], s: ScaleSettings) -> dict[str, Any]:
    start, end, ticks = report["start"], report["end"], report["ticks"]
    wall = end["wall"] - start["wall"]
    per_tick: list[float] = []
    times: list[float] = []
    prev_cpu, prev_wall = start["cpu"], start["wall"]
    for t in ticks:
        per_tick.append((t["cpu"] - prev_cpu) / max(t["wall"] - prev_wall, 1e-9) * 100)
        times.append(t["boundary"] - ticks[0]["boundary"])
        prev_cpu, prev_wall = t["cpu"], t["wall"]
    lateness = [t["lateness_ms"] for t in ticks]
    rss = [t.get("rss_mb", float("nan")) for t in ticks]
    frames = {v: (end["frames"][v] - start["frames"][v]) / wall for v in end["frames"]}
    rows_in_db = sum(report["db_rows"].values())
    expected = len(ticks) * s.channels
    return {
        "wall": wall,
        "cpu_pct": (end["cpu"] - start["cpu"]) / wall * 100,
        "cpu_tick_median": median(per_tick[1:]) if len(per_tick) > 1 else float("nan"),
        "cpu_tick_p99": percentiles(per_tick[1:])["p99"] if len(per_tick) > 1 else float("nan"),
        "rss_mb": report["peak_rss_mb"],
        "ticks": len(ticks),
        "missed": end["missed"] - start["missed"],
        "rows_expected": expected,
        "rows_captured": ticks[-1]["rows"] - start["rows"] if ticks else 0,
        "rows_written_writer": end["rows_written"] - start["rows_written"],
        "rows_in_db": rows_in_db,
        "rows_missing": expected - rows_in_db,
        "rows_by_venue": {v: report["db_rows"].get(v, 0) for v in s.venues},
        "rows_dropped": report["stopped"]["end"]["rows_dropped"],
        "frames_per_s": sum(frames.values()),
        "frames_by_venue": frames,
        "sent_by_venue": {v: n / wall for v, n in report["sent"].items()},
        "sim_cpu_pct": report["sim_cpu_pct"],
        "parse_errors": end["parse_errors"] - start["parse_errors"],
        "reconnects": end["reconnects"] - start["reconnects"],
        "lateness": percentiles(lateness),
        "duration": percentiles([t["duration_ms"] for t in ticks]),
        "rss_first_last": (rss[0], rss[-1]) if rss else (float("nan"), float("nan")),
        "series": {"t": times, "cpu": per_tick, "lateness_ms": lateness, "rss_mb": rss},
    }
