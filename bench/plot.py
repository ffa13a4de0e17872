"""Draw bench/scale.png: collector CPU per second and tick lateness over time.

Runs in bench/.venv-ccxt (matplotlib stays out of the project's dependencies):
``python bench/plot.py series.json out.png``.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(data_path: str, out_path: str) -> None:
    with open(data_path) as f:
        data = json.load(f)
    series = data["series"]
    t, cpu, late = series["t"], series["cpu"], series["lateness_ms"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    ax1.plot(t, cpu, color="tab:blue", linewidth=1.2)
    ax1.axhline(25, color="tab:red", linestyle="--", linewidth=0.8, label="target 25 %")
    ax1.set_ylabel("CPU, % of one core")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="upper right")
    ax1.grid(alpha=0.3)
    ax2.plot(t, late, color="tab:green", marker=".", linewidth=0.8)
    ax2.axhline(5, color="tab:red", linestyle="--", linewidth=0.8, label="target p99 5 ms")
    ax2.set_ylabel("tick lateness, ms")
    ax2.set_xlabel("seconds since the first measured tick")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="upper right")
    ax2.grid(alpha=0.3)
    fig.suptitle(data.get("title", ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
