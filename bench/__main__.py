"""``python -m bench [--quick]``: run every benchmark case and report.

Full mode writes ``bench/RESULTS.md``, ``bench/scale.png`` and ``bench/scale-5-venues.png``
(about 20 minutes on 2 cores). ``--quick`` runs smaller versions of the cases in about 80 s
(the scale case with all five venues only, no dashboard case; 55 s of it before the recording
case), prints the tables and ends with one summary line; it overwrites none of those files.

``python -m bench report`` runs case 10 alone (``--report`` over 10 million rows, a few
minutes, most of them filling the table) and rewrites its section of RESULTS.md, which the
full run keeps as it is.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import (
    dashboard,
    ingest,
    latency,
    recording,
    report_bench,
    scale,
    scale_report,
    writer_bench,
)
from bench.common import (
    BENCH_DIR,
    CaseResult,
    LoadSampler,
    ccxt_versions,
    ensure_ccxt_venv,
    markdown_table,
    project_versions,
    system_facts,
)
from data_collector.logsetup import configure_logging

RESULTS = BENCH_DIR / "RESULTS.md"
#: hand-written reading of the figures, appended to RESULTS.md by a full run
ANALYSIS = BENCH_DIR / "analysis.md"
#: how the targets table names each venue
LABELS = {"gateio": "Gate", "mexc": "MEXC", "binance": "Binance", "okx": "OKX", "bybit": "Bybit"}


@dataclass
class Plan:
    quick: bool
    ingest: ingest.IngestSettings
    latency: latency.LatencySettings
    writer: writer_bench.WriterSettings
    #: the scale cases (case 5: 2 venues, case 6: 5 venues)
    scales: list[scale.ScaleSettings]
    #: no pair counts: the case is left out (quick mode; run python -m bench.dashboard)
    dashboard: dashboard.DashboardSettings
    recording: recording.RecordingSettings
    results: list[CaseResult] = field(default_factory=list)
    #: the recording case, written after the storage case's section (case 9 after case 8)
    last: CaseResult | None = None


def make_plan(quick: bool) -> Plan:
    if quick:
        return Plan(
            quick=True,
            ingest=ingest.IngestSettings(
                warmup_frames=2_000, frames=10_000, reps=3, clients=("ours", "ccxt")
            ),
            latency=latency.LatencySettings(warmup_s=0.5, window_s=1.0, windows=3),
            writer=writer_bench.WriterSettings(sizes=(4_000,), reps=3),
            scales=[scale.five_venues(pairs=100, duration_s=5.0, warmup_s=0.5, runs=1, quick=True)],
            dashboard=dashboard.DashboardSettings(pairs=()),
            recording=recording.QUICK,
        )
    return Plan(
        quick=False,
        ingest=ingest.IngestSettings(),
        latency=latency.LatencySettings(),
        writer=writer_bench.WriterSettings(),
        scales=[scale.ScaleSettings(), scale.five_venues()],
        dashboard=dashboard.DashboardSettings(),
        recording=recording.RecordingSettings(),
    )


#: the 1-minute load average, sampled while the bench runs
load = LoadSampler()


def _note_load(result: CaseResult, mark: int) -> None:
    text = load.describe(mark)
    result.notes.append(text[:1].upper() + text[1:] + ".")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def run(plan: Plan, tmp: str) -> dict[str, float]:
    load.start()
    try:
        return await _run_cases(plan, tmp)
    finally:
        load.stop()


async def _run_cases(plan: Plan, tmp: str) -> dict[str, float]:
    ccxt_ok, ccxt_reason = ensure_ccxt_venv(log)
    if not ccxt_ok:
        log(f"ccxt unavailable: {ccxt_reason}")
    versions = ccxt_versions() if ccxt_ok else {}
    figures: dict[str, float] = {}

    mark = load.mark()
    plan.results.append(
        await ingest.run_case(plan.ingest, tmp, ccxt_ok, ccxt_reason, versions, log)
    )
    _note_load(plan.results[-1], mark)
    mark = load.mark()
    plan.results.append(await latency.run_case(plan.latency, tmp, log))
    _note_load(plan.results[-1], mark)
    with writer_bench.database(tmp, log) as dsn:
        mark = load.mark()
        plan.results.append(await writer_bench.run_case(plan.writer, dsn, tmp, log))
        _note_load(plan.results[-1], mark)
        await writer_bench.prepare(dsn)
        cases = []
        try:
            for s in plan.scales:
                mark = load.mark()
                cases.append((s, await _scale_runs(s, dsn, tmp), load.describe(mark)))
        finally:
            await writer_bench.drop_scratch(dsn)
    plan.results.append(scale_report.tick_table([(s, a) for s, a, _ in cases]))
    for s, analyses, load_note in cases:
        png = f"{tmp}/{s.plot_name}" if plan.quick else str(BENCH_DIR / s.plot_name)
        note = scale_report.plot(scale_report.median_run(analyses), s, png, tmp)
        plan.results.append(scale_report.scale_table(s, analyses, note))
        plan.results[-1].notes.append(load_note[:1].upper() + load_note[1:] + ".")
    if plan.dashboard.pairs:
        mark = load.mark()
        plan.results.append(await dashboard.run_case(plan.dashboard, tmp, log))
        _note_load(plan.results[-1], mark)
    mark = load.mark()
    plan.last = await recording.run_case(plan.recording, tmp, log)
    _note_load(plan.last, mark)
    for r in [*plan.results, plan.last]:
        figures.update({f"{r.title[:1]}.{k}": v for k, v in r.figures.items()})
    return figures


async def _scale_runs(s: scale.ScaleSettings, dsn: str, tmp: str) -> list[dict[str, Any]]:
    analyses = []
    for i in range(s.runs):
        log(f"case 4-6: {s.name}, run {i + 1} of {s.runs}")
        analyses.append(scale.analyse(await scale.run_scale(s, dsn, tmp, log), s))
    return analyses


def _fmt(value: float, spec: str) -> str:
    return "nan" if value is None or math.isnan(value) else format(value, spec)


def targets(f: dict[str, float]) -> list[list[str]]:
    """(target, result, met) rows; the targets are reported against, never asserted."""
    rows: list[list[str]] = []

    def add(name: str, value: float, shown: str, ok: bool) -> None:
        if math.isnan(value):
            rows.append([name, "not measured", "n/a"])
        else:
            rows.append([name, shown, "met" if ok else "missed"])

    for venue in ingest.VENUES:
        ratio = f.get(f"1.ratio_{venue}", math.nan)
        add(
            f"{LABELS[venue]}: frames/CPU-s >= 10x ccxt",
            ratio,
            f"{_fmt(ratio, '.2f')}x",
            ratio >= 10,
        )
    for venue in ingest.VENUES:
        rate = f.get(f"1.ours_{venue}", math.nan)
        add(f"{LABELS[venue]}: >= 100,000 frames/CPU-s", rate, _fmt(rate, ",.0f"), rate >= 100_000)
    for venue, label in (("gateio", "Gate"), ("mexc", "MEXC")):
        p99 = f.get(f"2.p99_{venue}", math.nan)
        add(f"{label}: latency p99 < 100 µs", p99, f"{_fmt(p99, ',.0f')} µs", p99 < 100)
    for key in sorted(k for k in f if k.startswith("3.ratio_")):
        n = int(key.split("_")[1])
        ratio = f[key]
        add(f"writer >= 80% of bare COPY ({n:,} rows)", ratio, f"{ratio:.0%}", ratio >= 0.8)
    late = f.get("4.lateness_p99", math.nan)
    add("tick lateness p99 < 5 ms", late, f"{_fmt(late, '.2f')} ms", late < 5)
    for case, name in ((5, "scale, 2 venues"), (6, "scale, 5 venues")):
        cpu = f.get(f"{case}.cpu_pct", math.nan)
        add(f"{name}: < 25% of one core", cpu, f"{_fmt(cpu, '.1f')} %", cpu < 25)
        rss = f.get(f"{case}.rss_mb", math.nan)
        add(f"{name}: < 200 MB RSS", rss, f"{_fmt(rss, '.0f')} MB", rss < 200)
        missed = f.get(f"{case}.missed", math.nan)
        add(f"{name}: no missed snapshot", missed, _fmt(missed, ".0f"), missed == 0)
        lost = f.get(f"{case}.rows_missing", math.nan)
        shown = f"{_fmt(lost, ',.0f')} missing"
        add(f"{name}: every expected row in the table", lost, shown, lost == 0)
    for venue, label in (("gateio", "Gate"), ("mexc", "MEXC")):
        cost = f.get(f"9.cost_pct_{venue}", math.nan)
        add(f"{label}: --record costs <= +25% CPU", cost, f"{_fmt(cost, '+.1f')} %", cost <= 25)
    return rows


def render(plan: Plan, figures: dict[str, float], started: datetime, seconds: float) -> str:
    facts = system_facts()
    ours = project_versions()
    theirs = ccxt_versions()
    mode = "quick" if plan.quick else "full"
    out = [
        "# Benchmark results",
        "",
        f"Generated by `python -m bench{' --quick' if plan.quick else ''}` ({mode} run) on "
        f"{started:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min. Re-run it to refresh this "
        "file; the numbers depend on the machine and on whatever else it is doing.",
        "",
        "## Machine and software",
        "",
        f"- CPU: {facts['cpu']}, {facts['cores']} cores (Linux {facts['kernel']}), shared with "
        f"other work: {load.describe()} (sampled every {load.every:g} s over the whole run)",
        "- Project venv: " + ", ".join(f"{k} {v}" for k, v in ours.items()),
        "- Comparison venv (bench/.venv-ccxt): "
        + (", ".join(f"{k} {v}" for k, v in theirs.items()) if theirs else "unavailable"),
        "",
        "## Targets",
        "",
        "Reported against, not asserted. Each result is the median over repeated runs of the "
        "case below it.",
        "",
        markdown_table(["target", "result", "met?"], targets(figures)),
        "",
        "Summary line (what `python -m bench --quick` prints last; the weaker venue / row size "
        "counts):",
        "",
        f"    {summary_line(figures)}",
        "",
    ]
    for r in plan.results:
        out += [f"## {r.title}", "", markdown_table(r.headers, r.rows), ""]
        out += [f"- {note}" for note in r.notes] + [""]
        if r.image and not plan.quick:
            out += [f"![{r.image_alt}]({r.image})", ""]
    return "\n".join(out)


def storage_section() -> str:
    """The storage benchmark's section (python -m bench.storage_bench), kept as it was."""
    from bench.storage_bench import BEGIN, END

    old = RESULTS.read_text() if RESULTS.exists() else ""
    start, end = old.find(BEGIN), old.find(END)
    return "\n" + old[start : end + len(END)] + "\n" if 0 <= start < end else ""


#: the section ``python -m bench report`` owns in RESULTS.md
REPORT_BEGIN, REPORT_END = "<!-- report:begin -->", "<!-- report:end -->"
REPORT_TITLE = "## 10. --report over a big table"


def section_of(text: str) -> str:
    """The report case's section of RESULTS.md (markers included), or ''."""
    start, end = text.find(REPORT_BEGIN), text.find(REPORT_END)
    return text[start : end + len(REPORT_END)] if 0 <= start < end else ""


def report_section() -> str:
    """The report case's section as it is in RESULTS.md (a placeholder before its first
    run), for the full run to keep."""
    old = section_of(RESULTS.read_text() if RESULTS.exists() else "")
    placeholder = (
        f"{REPORT_BEGIN}\n{REPORT_TITLE}\n\nNot measured yet: run `python -m bench report`.\n"
        f"{REPORT_END}"
    )
    return "\n" + (old or placeholder) + "\n"


def with_section(text: str, body: str) -> str:
    """``text`` with the report case's section replaced by ``body`` (appended when absent)."""
    block = f"{REPORT_BEGIN}\n{body.rstrip()}\n{REPORT_END}"
    old = section_of(text)
    if old:
        return text.replace(old, block)
    return text.rstrip("\n") + "\n\n" + block + "\n" if text.strip() else block + "\n"


def render_case(r: CaseResult) -> str:
    out = [f"## {r.title}", "", markdown_table(r.headers, r.rows), ""]
    out += [f"- {note}" if not note.startswith("  ") else note for note in r.notes]
    return "\n".join(out) + "\n"


def analysis_section() -> str:
    """The hand-written reading of the figures (bench/analysis.md), last in RESULTS.md."""
    return "\n" + ANALYSIS.read_text().rstrip() + "\n" if ANALYSIS.exists() else ""


def summary_line(f: dict[str, float]) -> str:
    ratios = [f.get(f"1.ratio_{venue}", math.nan) for venue in ingest.VENUES]
    rates = [f.get(f"1.ours_{venue}", math.nan) for venue in ingest.VENUES]
    writer = [v for k, v in f.items() if k.startswith("3.ratio_")]
    return (
        f"ingest_ratio_vs_ccxt={_fmt(_worst(ratios), '.1f')} "
        f"frames_per_cpu_s={_fmt(_worst(rates), '.0f')} "
        f"writer_vs_raw_copy={_fmt(_worst(writer), '.2f')} "
        f"tick_jitter_p99_ms={_fmt(f.get('4.lateness_p99', math.nan), '.2f')} "
        f"five_venues_cpu_pct={_fmt(f.get('6.cpu_pct', math.nan), '.1f')} "
        f"five_venues_rows_missing={_fmt(f.get('6.rows_missing', math.nan), '.0f')}"
    )


def _worst(values: list[float]) -> float:
    """The weaker venue / size: a NaN (a side unavailable) wins, so it cannot hide."""
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    return min(values)


def run_report_case(quick: bool) -> int:
    """``python -m bench report``: case 10 alone; its section of RESULTS.md is rewritten."""
    settings = report_bench.ReportSettings()
    if quick:
        settings = report_bench.ReportSettings(pairs=4, hours=1, reps=1, opportunities=50)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cex-bench-") as tmp:
        import uvloop

        async def case() -> CaseResult:
            with writer_bench.database(tmp, log) as dsn:
                await writer_bench.prepare(dsn)
                try:
                    return await report_bench.run_case(settings, dsn, log)
                finally:
                    await writer_bench.drop_scratch(dsn)

        result = uvloop.run(case())
    facts = system_facts()
    body = render_case(result) + (
        f"\nMeasured by `python -m bench report` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({facts['cpu']}, {facts['cores']} cores).\n"
    )
    if quick:
        print(body)
    else:
        previous = RESULTS.read_text() if RESULTS.exists() else ""
        RESULTS.write_text(with_section(previous, body))
        log(f"wrote case 10 into {RESULTS.relative_to(BENCH_DIR.parent)}")
    log(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "case", nargs="?", choices=("report",), help="run this case alone (see above)"
    )
    parser.add_argument("--quick", action="store_true", help="small, about 80 s")
    args = parser.parse_args()
    configure_logging("warning", "console", stream=sys.stderr)
    if args.case == "report":
        return run_report_case(args.quick)
    plan = make_plan(args.quick)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cex-bench-") as tmp:
        import uvloop

        figures = uvloop.run(run(plan, tmp))
    text = render(plan, figures, started, time.perf_counter() - t0)
    tail = recording.section(plan.last) if plan.last else ""
    if plan.quick:
        print(text + tail)
    else:
        RESULTS.write_text(
            text + storage_section() + "\n" + tail + report_section() + analysis_section()
        )
        pngs = ", ".join(s.plot_name for s in plan.scales)
        log(f"wrote {RESULTS.relative_to(BENCH_DIR.parent)}, {pngs}")
    log(f"done in {time.perf_counter() - t0:.0f} s")
    print(summary_line(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
