"""Cases 4 and 5: tick accuracy under load, and the whole collector at scale.

One simulator process serves both venues; one collector process (``bench.collector_proc``,
the production ``Collector`` with PostgreSQL) subscribes every pair on both. Load: MEXC's
random walk at ``mexc_rate`` updates/s per pair (the aggregated channel allows at most 10), Gate
at ``gate_base`` updates/s per pair with bursts of ``gate_burst`` for ``burst_len`` s every
``burst_period`` s. After start-up and a warm-up, the collector's CPU, peak RSS, ticks and
writer counters are measured over ``duration`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from typing import Any

from bench.common import BENCH_DIR, CCXT_PY, PROJECT_PY, REPO, CaseResult, median, percentiles
from bench.proto import Child
from db.pool import connect


@dataclass
class ScaleSettings:
    pairs: int = 2_000
    duration_s: float = 60.0
    warmup_s: float = 5.0
    mexc_rate: float = 5.0
    gate_base: float = 2.5
    gate_burst: float = 20.0
    burst_period: float = 10.0
    burst_len: float = 1.0
    #: bursts start this many seconds into each period: away from the analytics summary,
    #: which runs on multiples of 10 s, so the plot tells the two apart
    burst_start: float = 4.0
    runs: int = 3
    quick: bool = False

    @property
    def gate_mean(self) -> float:
        share = self.burst_len / self.burst_period
        return self.gate_base * (1 - share) + self.gate_burst * share


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


async def run_scale(s: ScaleSettings, dsn: str, tmp: str, log) -> dict[str, Any]:
    sim_argv = [PROJECT_PY, "-m", "bench.simproc", "--venues", "mexc", "gateio"]
    sim_argv += ["--pairs", str(s.pairs), "--rate", "0"]
    sim = await Child.spawn(
        "sim/scale", sim_argv, cwd=str(REPO), stderr_path=f"{tmp}/scale-sim.err"
    )
    collector: Child | None = None
    try:
        urls = (await sim.recv(timeout=60))["urls"]
        argv = [PROJECT_PY, "-m", "bench.collector_proc", "--mexc-url", urls["mexc"]]
        argv += ["--gate-url", urls["gateio"], "--pairs", str(s.pairs), "--dsn", dsn]
        argv += ["--data-dir", f"{tmp}/collector", "--log-file", f"{tmp}/collector.log"]
        collector = await Child.spawn(
            "collector", argv, cwd=str(REPO), stderr_path=f"{tmp}/collector.err"
        )
        await collector.recv(timeout=90)
        for venue in ("mexc", "gateio"):
            await sim.request({"cmd": "wait_subs", "venue": venue, "n": s.pairs, "timeout": 90})
        await sim.request({"cmd": "set_rate", "venue": "mexc", "rate": s.mexc_rate})
        await sim.request(
            {
                "cmd": "bursts",
                "venue": "gateio",
                "base": s.gate_base,
                "burst": s.gate_burst,
                "period": s.burst_period,
                "length": s.burst_len,
                "start": s.burst_start,
            }
        )
        await _wait_ready(collector, 2 * s.pairs, 90)
        await asyncio.sleep(s.warmup_s)
        sent0 = {v: (await sim.request({"cmd": "stats", "venue": v})) for v in ("mexc", "gateio")}
        await collector.request({"cmd": "mark"})
        log(f"case 4/5: measuring {s.duration_s:g} s")
        await asyncio.sleep(s.duration_s)
        report = await collector.request({"cmd": "report"})
        sent1 = {v: (await sim.request({"cmd": "stats", "venue": v})) for v in ("mexc", "gateio")}
        stopped = await collector.request({"cmd": "stop"}, timeout=90)
    finally:
        if collector is not None:
            await collector.close()
        await sim.close()
    report["stopped"] = stopped
    report["sent"] = {
        v: sent1[v]["updates_sent"] - sent0[v]["updates_sent"] for v in ("mexc", "gateio")
    }
    report["sim_cpu_pct"] = (sent1["mexc"]["cpu"] - sent0["mexc"]["cpu"]) / s.duration_s * 100
    report["db_rows"] = await _rows_in_db(dsn, report["ticks"])
    return report


async def _rows_in_db(dsn: str, ticks: list[dict[str, float]]) -> int:
    if not ticks:
        return 0
    from datetime import UTC, datetime

    first = datetime.fromtimestamp(ticks[0]["boundary"], UTC)
    last = datetime.fromtimestamp(ticks[-1]["boundary"], UTC)
    conn = await connect(dsn)
    try:
        return int(
            await conn.fetchval(
                'SELECT count(*) FROM book_ticker_snapshots WHERE "timestamp" BETWEEN $1 AND $2',
                first,
                last,
            )
        )
    finally:
        await conn.close()


def analyse(report: dict[str, Any], s: ScaleSettings) -> dict[str, Any]:
    start, end, ticks = report["start"], report["end"], report["ticks"]
    wall = end["wall"] - start["wall"]
    cpu_pct = (end["cpu"] - start["cpu"]) / wall * 100
    per_tick: list[float] = []
    times: list[float] = []
    prev_cpu, prev_wall = start["cpu"], start["wall"]
    for t in ticks:
        per_tick.append((t["cpu"] - prev_cpu) / max(t["wall"] - prev_wall, 1e-9) * 100)
        times.append(t["boundary"] - ticks[0]["boundary"])
        prev_cpu, prev_wall = t["cpu"], t["wall"]
    lateness = [t["lateness_ms"] for t in ticks]
    rss = [t.get("rss_mb", float("nan")) for t in ticks]
    frames = sum(end["frames"].values()) - sum(start["frames"].values())
    expected_rows = len(ticks) * 2 * s.pairs
    return {
        "wall": wall,
        "cpu_pct": cpu_pct,
        "cpu_tick_median": median(per_tick[1:]) if len(per_tick) > 1 else float("nan"),
        "cpu_tick_p99": percentiles(per_tick[1:])["p99"] if len(per_tick) > 1 else float("nan"),
        "rss_mb": report["peak_rss_mb"],
        "ticks": len(ticks),
        "missed": end["missed"] - start["missed"],
        "rows_expected": expected_rows,
        "rows_captured": ticks[-1]["rows"] - start["rows"] if ticks else 0,
        "rows_written_writer": end["rows_written"] - start["rows_written"],
        "rows_in_db": report["db_rows"],
        "rows_dropped": report["stopped"]["end"]["rows_dropped"],
        "frames_per_s": frames / wall,
        "frames_by_venue": {
            v: (end["frames"][v] - start["frames"][v]) / wall for v in end["frames"]
        },
        "sent_by_venue": {v: n / wall for v, n in report["sent"].items()},
        "sim_cpu_pct": report["sim_cpu_pct"],
        "parse_errors": end["parse_errors"] - start["parse_errors"],
        "reconnects": end["reconnects"] - start["reconnects"],
        "lateness": percentiles(lateness),
        "duration": percentiles([t["duration_ms"] for t in ticks]),
        "rss_first_last": (rss[0], rss[-1]) if rss else (float("nan"), float("nan")),
        "series": {"t": times, "cpu": per_tick, "lateness_ms": lateness, "rss_mb": rss},
    }


def plot(a: dict[str, Any], s: ScaleSettings, path: str, tmp: str) -> str:
    """Draw scale.png with matplotlib from the ccxt venv (matplotlib stays out of ours)."""
    data = f"{tmp}/scale-series.json"
    title = (
        f"{s.pairs} pairs x 2 venues, {a['frames_per_s']:,.0f} frames/s: collector CPU and "
        "snapshot tick lateness"
    )
    with open(data, "w") as f:
        json.dump({"series": a["series"], "title": title}, f)
    if not CCXT_PY.exists():
        return "no plot: bench/.venv-ccxt (matplotlib) unavailable"
    done = subprocess.run(
        [str(CCXT_PY), str(BENCH_DIR / "plot.py"), data, path], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"plot failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return ""


def median_run(analyses: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose CPU is the median one (the one plotted)."""
    ordered = sorted(analyses, key=lambda a: a["cpu_pct"])
    return ordered[(len(ordered) - 1) // 2]


def tables(
    analyses: list[dict[str, Any]], s: ScaleSettings, plot_note: str
) -> tuple[CaseResult, CaseResult]:
    quick = " (quick mode: fewer pairs, shorter, one run)" if s.quick else ""
    runs = len(analyses)

    def med(get: Any) -> float:
        return median([get(a) for a in analyses])

    tick_rows = []
    for i, a in enumerate(analyses, 1):
        lat, dur = a["lateness"], a["duration"]
        tick_rows.append(
            [
                f"run {i}",
                str(a["ticks"]),
                f"{lat['p50']:.2f}",
                f"{lat['p99']:.2f}",
                f"{lat['max']:.2f}",
                f"{dur['p50']:.1f}",
                f"{dur['max']:.1f}",
            ]
        )
    late = {k: med(lambda a, k=k: a["lateness"][k]) for k in ("p50", "p99", "max")}
    dur = {k: med(lambda a, k=k: a["duration"][k]) for k in ("p50", "max")}
    if runs > 1:
        tick_rows.append(
            [
                "**median**",
                f"{med(lambda a: a['ticks']):.0f}",
                f"{late['p50']:.2f}",
                f"{late['p99']:.2f}",
                f"{late['max']:.2f}",
                f"{dur['p50']:.1f}",
                f"{dur['max']:.1f}",
            ]
        )
    tick_case = CaseResult(
        title=f"4. Tick accuracy under the load of case 5{quick}",
        description="",
        headers=[
            "run",
            "ticks",
            "lateness p50 ms",
            "p99 ms",
            "max ms",
            "capture p50 ms",
            "capture max ms",
        ],
        rows=tick_rows,
        notes=[
            "Lateness: wall-clock time at which the scheduler started the capture minus the "
            "second boundary it belongs to (TickStats.last_lateness_s, read by a scheduler "
            "observer). Capture: snapshot + rows + hand-off to the writer + analytics hook.",
            f"p50/p99/max over the ticks of each run; the target is checked against the median "
            f"over the {runs} run(s).",
        ],
        figures={"lateness_p99": late["p99"]},
    )
    measures: list[tuple[str, Any]] = [
        ("measured span, s", lambda a: f"{a['wall']:.1f}"),
        (
            "frames received / s (MEXC + Gate)",
            lambda a: (
                f"{a['frames_per_s']:,.0f} "
                f"({a['frames_by_venue'].get('mexc', 0):,.0f} + "
                f"{a['frames_by_venue'].get('gateio', 0):,.0f})"
            ),
        ),
        ("frames the simulator sent / s", lambda a: f"{sum(a['sent_by_venue'].values()):,.0f}"),
        ("simulator CPU, % of one core (not counted)", lambda a: f"{a['sim_cpu_pct']:.0f}"),
        ("CPU, % of one core (whole span)", lambda a: f"{a['cpu_pct']:.1f}"),
        (
            "CPU per second: median / p99",
            lambda a: f"{a['cpu_tick_median']:.1f} / {a['cpu_tick_p99']:.1f}",
        ),
        ("peak RSS, MB", lambda a: f"{a['rss_mb']:.0f}"),
        (
            "RSS at the first / last measured tick, MB",
            lambda a: f"{a['rss_first_last'][0]:.0f} / {a['rss_first_last'][1]:.0f}",
        ),
        ("snapshots missed", lambda a: str(a["missed"])),
        ("rows expected (ticks x pairs x 2)", lambda a: f"{a['rows_expected']:,}"),
        ("rows captured by the scheduler", lambda a: f"{a['rows_captured']:,}"),
        ("rows written by the writer", lambda a: f"{a['rows_written_writer']:,}"),
        ("rows in the table for those ticks", lambda a: f"{a['rows_in_db']:,}"),
        (
            "rows dropped / parse errors / reconnects",
            lambda a: f"{a['rows_dropped']} / {a['parse_errors']} / {a['reconnects']}",
        ),
    ]
    medians = {
        "CPU, % of one core (whole span)": f"{med(lambda a: a['cpu_pct']):.1f}",
        "peak RSS, MB": f"{med(lambda a: a['rss_mb']):.0f}",
        "snapshots missed": f"{med(lambda a: a['missed']):.0f}",
        "frames received / s (MEXC + Gate)": f"{med(lambda a: a['frames_per_s']):,.0f}",
    }
    rows = []
    for name, get in measures:
        cells = [get(a) for a in analyses]
        rows.append([name, medians.get(name, "") if runs > 1 else cells[0], *cells])
    if runs == 1:
        rows = [r[:2] for r in rows]
    headers = ["measure", "median" if runs > 1 else "value"]
    if runs > 1:
        headers += [f"run {i}" for i in range(1, runs + 1)]
    scale_case = CaseResult(
        title=f"5. Scale: {s.pairs:,} pairs x 2 venues, one collector process{quick}",
        description="",
        headers=headers,
        rows=rows,
        notes=[
            f"Load: MEXC {s.mexc_rate:g} updates/s per pair on every pair (the aggregated "
            f"100 ms channel allows at most 10); Gate {s.gate_base:g}/s per pair with bursts of "
            f"{s.gate_burst:g}/s per pair for {s.burst_len:g} s every {s.burst_period:g} s, "
            f"starting {s.burst_start:g} s into each period (mean {s.gate_mean:g}/s). "
            "The simulator and the embedded PostgreSQL run in other "
            "processes on the same 2 cores; their CPU is not counted.",
            f"{runs} run(s) of {s.duration_s:g} s after start-up (all {2 * s.pairs:,} channels "
            f"subscribed and quoted) and {s.warmup_s:g} s of warm-up; each run starts a fresh "
            "simulator and collector.",
            "The collector is the production Collector (feeds, 1 s scheduler, SnapshotWriter, "
            "analytics every 10 s, JSON logs at info level to a file) on uvloop. CPU = process "
            "user+system time over the span; peak RSS = ru_maxrss of the process since start.",
            "CPU per second and tick lateness over time (the median-CPU run): bench/scale.png."
            + (f" ({plot_note})" if plot_note else ""),
        ],
        figures={
            "cpu_pct": med(lambda a: a["cpu_pct"]),
            "rss_mb": med(lambda a: a["rss_mb"]),
            "missed": med(lambda a: a["missed"]),
        },
    )
    return tick_case, scale_case
