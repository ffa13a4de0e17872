"""The tables and plots of cases 4 to 6 (see :mod:`bench.scale`) from the analysed runs."""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

from bench.common import BENCH_DIR, CCXT_PY, CaseResult, median
from bench.scale import ScaleSettings

#: the display names the tables use
NAMES = {"mexc": "MEXC", "gateio": "Gate", "binance": "Binance", "okx": "OKX", "bybit": "Bybit"}
Runs = list[dict[str, Any]]


def plot(a: dict[str, Any], s: ScaleSettings, path: str, tmp: str) -> str:
    """Draw the median run with matplotlib from the ccxt venv (matplotlib stays out of ours)."""
    data = f"{tmp}/scale-series-{len(s.venues)}.json"
    title = (
        f"{s.pairs} pairs x {len(s.venues)} venues, {a['frames_per_s']:,.0f} frames/s: "
        "collector CPU and snapshot tick lateness"
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


def median_run(analyses: Runs) -> dict[str, Any]:
    """The run whose CPU is the median one (the one plotted)."""
    ordered = sorted(analyses, key=lambda a: a["cpu_pct"])
    return ordered[(len(ordered) - 1) // 2]


def _med(analyses: Runs, get: Any) -> float:
    return median([get(a) for a in analyses])


def _quick(s: ScaleSettings) -> str:
    return " (quick mode: fewer pairs, shorter, one run)" if s.quick else ""


def tick_table(cases: list[tuple[ScaleSettings, Runs]]) -> CaseResult:
    """Case 4: tick lateness and capture time of every run of every scale case."""
    rows: list[list[str]] = []
    p99s: list[float] = []
    for s, analyses in cases:
        for i, a in enumerate(analyses, 1):
            rows.append([f"{s.name}, run {i}", *_tick_cells(a["ticks"], a["lateness"], a)])
        late = {k: _med(analyses, lambda a, k=k: a["lateness"][k]) for k in ("p50", "p99", "max")}
        if len(analyses) > 1:
            ticks = _med(analyses, lambda a: a["ticks"])
            dur = {k: _med(analyses, lambda a, k=k: a["duration"][k]) for k in ("p50", "max")}
            rows.append([f"**{s.name}, median**", *_tick_cells(ticks, late, {"duration": dur})])
        p99s.append(late["p99"])
    names = " and ".join(s.name for s, _ in cases)
    loads = " and ".join(f"case {s.case}" for s, _ in cases)
    return CaseResult(
        title=f"4. Tick accuracy under the load of {loads}{_quick(cases[0][0])}",
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
        rows=rows,
        notes=[
            "Lateness: wall-clock time at which the scheduler started the capture minus the "
            "second boundary it belongs to (TickStats.last_lateness_s, read by a scheduler "
            "observer). Capture: snapshot + rows + hand-off to the writer + analytics hook.",
            f"p50/p99/max over the ticks of each run ({names}); the target is checked against "
            "the worse of the cases' medians.",
        ],
        # the worse case counts; a NaN (a case without ticks) wins, so it cannot hide
        figures={"lateness_p99": max(p99s, key=lambda v: math.inf if math.isnan(v) else v)},
    )


def _tick_cells(ticks: float, late: dict[str, float], a: dict[str, Any]) -> list[str]:
    dur = a["duration"]
    return [
        f"{ticks:.0f}",
        f"{late['p50']:.2f}",
        f"{late['p99']:.2f}",
        f"{late['max']:.2f}",
        f"{dur['p50']:.1f}",
        f"{dur['max']:.1f}",
    ]


def scale_table(s: ScaleSettings, analyses: Runs, plot_note: str) -> CaseResult:
    """Case 5 or 6: one collector process with every pair of every venue of ``s``."""
    venues = " + ".join(NAMES[v] for v in s.venues)

    asked = sum(s.asked_rate(v) for v in s.venues)

    def by_venue(values: dict[str, float]) -> str:
        return " + ".join(f"{values.get(v, 0):,.0f}" for v in s.venues)

    measures: list[tuple[str, Any]] = [
        ("measured span, s", lambda a: f"{a['wall']:.1f}"),
        (
            f"frames received / s ({venues})",
            lambda a: f"{a['frames_per_s']:,.0f} ({by_venue(a['frames_by_venue'])})",
        ),
        ("frames the simulator sent / s", lambda a: f"{sum(a['sent_by_venue'].values()):,.0f}"),
        (
            "frames / s the load asks for",
            lambda a: f"{asked:,.0f} ({by_venue({v: s.asked_rate(v) for v in s.venues})})",
        ),
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
        (f"rows expected (ticks x pairs x {len(s.venues)})", lambda a: f"{a['rows_expected']:,}"),
        ("rows captured by the scheduler", lambda a: f"{a['rows_captured']:,}"),
        ("rows written by the writer", lambda a: f"{a['rows_written_writer']:,}"),
        ("rows in the table for those ticks", lambda a: f"{a['rows_in_db']:,}"),
        (f"... per venue ({venues})", lambda a: by_venue(a["rows_by_venue"])),
        ("rows missing from the table", lambda a: f"{a['rows_missing']:,}"),
        (
            "rows dropped / parse errors / reconnects",
            lambda a: f"{a['rows_dropped']} / {a['parse_errors']} / {a['reconnects']}",
        ),
    ]
    medians = {
        "CPU, % of one core (whole span)": f"{_med(analyses, lambda a: a['cpu_pct']):.1f}",
        "peak RSS, MB": f"{_med(analyses, lambda a: a['rss_mb']):.0f}",
        "snapshots missed": f"{_med(analyses, lambda a: a['missed']):.0f}",
        "rows missing from the table": f"{_med(analyses, lambda a: a['rows_missing']):,.0f}",
        f"frames received / s ({venues})": f"{_med(analyses, lambda a: a['frames_per_s']):,.0f}",
    }
    runs = len(analyses)
    rows = []
    for name, get in measures:
        cells = [get(a) for a in analyses]
        rows.append([name, medians.get(name, "") if runs > 1 else cells[0], *cells])
    headers = ["measure", "median" if runs > 1 else "value"]
    if runs > 1:
        headers += [f"run {i}" for i in range(1, runs + 1)]
    else:
        rows = [r[:2] for r in rows]
    return CaseResult(
        title=f"{s.case}. Scale: {s.pairs:,} pairs x {len(s.venues)} venues, one collector "
        f"process{_quick(s)}",
        description="",
        headers=headers,
        rows=rows,
        notes=_scale_notes(s, runs, plot_note),
        figures={
            "cpu_pct": _med(analyses, lambda a: a["cpu_pct"]),
            "rss_mb": _med(analyses, lambda a: a["rss_mb"]),
            "missed": _med(analyses, lambda a: a["missed"]),
            "rows_missing": max(a["rows_missing"] for a in analyses),
        },
        image=s.plot_name if not plot_note else "",
        image_alt=f"collector CPU and tick lateness, {s.name}",
    )


def _scale_notes(s: ScaleSettings, runs: int, plot_note: str) -> list[str]:
    load = [f"{NAMES[v]} {s.rates[v]:g}/s" for v in s.venues if v != "gateio"]
    if "gateio" in s.venues:
        load.append(
            f"Gate {s.gate_base:g}/s with bursts of {s.gate_burst:g}/s for {s.burst_len:g} s "
            f"every {s.burst_period:g} s, starting {s.burst_start:g} s into each period "
            f"(mean {s.gate_mean:g}/s)"
        )
    notes = [
        "Load, updates per second per pair, on every pair: " + "; ".join(load) + ". The "
        "simulator and the embedded PostgreSQL run in other processes on the same 2 cores; "
        "their CPU is not counted. When the shared cores are busy the simulator falls behind "
        "(it drops the pushes it is late for rather than bursting them): compare the frames it "
        "sent with what the load asks for.",
        f"{runs} run(s) of {s.duration_s:g} s after start-up (all {s.channels:,} channels "
        f"subscribed and quoted) and {s.warmup_s:g} s of warm-up; each run starts a fresh "
        "simulator and collector.",
        "The collector is the production Collector (feeds, 1 s scheduler, SnapshotWriter, "
        "analytics every 10 s, JSON logs at info level to a file) on uvloop. CPU = process "
        "user+system time over the span; peak RSS = ru_maxrss of the process since start. "
        "Rows in the table: counted in PostgreSQL per venue for the measured ticks; missing = "
        "expected - counted.",
    ]
    if s.plot_name and not s.quick:
        notes.append(
            f"CPU per second and tick lateness over time (the median-CPU run): "
            f"bench/{s.plot_name}." + (f" ({plot_note})" if plot_note else "")
        )
    return notes
