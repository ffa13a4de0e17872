"""``--plot FILE.png``: the report as a picture. Top: a heat map of coverage (venue x pair,
share of the window's seconds with a stored row). Bottom: a timeline of the opportunities
(net % over time from open to the maximum, one line per pair and venue pair, each open
interval shaded).

matplotlib is the optional extra ``[report]``; this module imports it only when drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from db.report_model import Coverage, Report, TimelineEntry

HEATMAP_TITLE = "Coverage: share of seconds with a stored row"
TIMELINE_TITLE = "Opportunities: net % (after fees), open intervals shaded"
#: annotate heat-map cells with their percentage up to this many pairs
ANNOTATE_PAIRS = 40
#: timeline series named in the legend at most (the rest share one grey entry)
LEGEND_SERIES = 12


def write_plot(report: Report, path: Path) -> list[str]:
    """Draw ``report`` into the PNG ``path``; returns the titles of its panels."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    pairs = sorted({c.symbol for c in report.coverage_by_pair or [] if c.symbol})
    width = min(24.0, max(10.0, 0.45 * len(pairs) + 3))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(width, 9), gridspec_kw={"height_ratios": [1, 1.6]}
    )
    try:
        _heatmap(top, report, pairs)
        _timeline(bottom, report)
        w = report.window
        fig.suptitle(
            f"cex-arb-collector report {w.since:%Y-%m-%d %H:%M}Z to {w.until:%Y-%m-%d %H:%M}Z"
        )
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
        return [ax.get_title() for ax in fig.axes if ax.get_title()]
    finally:
        plt.close(fig)


def _heatmap(ax: Any, report: Report, pairs: list[str]) -> None:
    import numpy as np

    venues = [c.exchange for c in report.coverage]
    cells: dict[tuple[str, str | None], Coverage] = {
        (c.exchange, c.symbol): c for c in report.coverage_by_pair or []
    }
    share = np.full((len(venues), max(1, len(pairs))), np.nan)
    for v, venue in enumerate(venues):
        for p, pair in enumerate(pairs):
            cell = cells.get((venue, pair))
            if cell is not None:
                share[v, p] = cell.pct
    image = ax.imshow(share, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_yticks(range(len(venues)), venues)
    ax.set_xticks(range(len(pairs)), pairs, rotation=60, ha="right", fontsize=8)
    if len(pairs) <= ANNOTATE_PAIRS:
        for (v, p), value in np.ndenumerate(share):
            if value == value:  # not NaN
                ax.text(p, v, f"{value:.0f}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(image, ax=ax, label="% of seconds stored", fraction=0.03)
    ax.set_title(HEATMAP_TITLE)


def _series(entries: Sequence[TimelineEntry]) -> dict[str, list[TimelineEntry]]:
    """Entries per pair and venue pair, the busiest first."""
    out: dict[str, list[TimelineEntry]] = {}
    for e in entries:
        out.setdefault(f"{e.symbol} {e.buy_exchange}->{e.sell_exchange}", []).append(e)
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def _timeline(ax: Any, report: Report) -> None:
    import matplotlib
    import matplotlib.dates as mdates

    w = report.window
    ax.set_xlim(w.since, w.until)
    ax.set_title(TIMELINE_TITLE)
    ax.set_ylabel("net %")
    locator = mdates.AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("UTC")
    ax.grid(alpha=0.3)
    series = _series(report.timeline)
    if not series:
        ax.text(0.5, 0.5, "no opportunities in this window", transform=ax.transAxes,
                ha="center", va="center")  # fmt: skip
        return
    cycle = [style["color"] for style in matplotlib.rcParams["axes.prop_cycle"]]
    min_span = timedelta(seconds=w.step_s)
    for i, (label, entries) in enumerate(series.items()):
        named = i < LEGEND_SERIES
        color = cycle[i % len(cycle)] if named else "0.6"
        for j, e in enumerate(entries):
            ax.axvspan(e.opened_at, max(e.end, e.opened_at + min_span), color=color, alpha=0.15)
            ax.plot(
                [e.opened_at, e.max_at],
                [e.open_net_pct, e.max_net_pct],
                color=color,
                marker="o",
                markersize=3,
                label=(label if named else "others") if j == 0 and (named or i == LEGEND_SERIES)
                else None,
            )  # fmt: skip
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data
