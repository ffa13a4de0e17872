"""``--plot``: a real PNG with the coverage heat map and the opportunity timeline."""

from __future__ import annotations

import struct
from pathlib import Path

import msgspec
import pytest

from db.report_model import Report

pytest.importorskip(
    "matplotlib", reason="matplotlib (the [report] extra) is not installed: pip install -e '.[dev]'"
)

from data_collector.report.plot import HEATMAP_TITLE, TIMELINE_TITLE, write_plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


def test_the_plot_is_a_png_with_both_panels(known_report: Report, tmp_path: Path) -> None:
    import matplotlib.image

    path = tmp_path / "report.png"
    assert write_plot(known_report, path) == [HEATMAP_TITLE, TIMELINE_TITLE]
    width, height = png_size(path)
    assert width >= 1000 and height >= 900
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    # the heat map's colours: a full cell is green, an empty one red (RdYlGn)
    rgb = pixels[..., :3].reshape(-1, 3)
    greenish = ((rgb[:, 1] > 0.5) & (rgb[:, 0] < 0.3)).sum()
    reddish = ((rgb[:, 0] > 0.6) & (rgb[:, 1] < 0.2)).sum()
    assert greenish > 1000 and reddish > 1000


def test_a_window_without_opportunities_still_draws_both_panels(
    known_report: Report, tmp_path: Path
) -> None:
    quiet = msgspec.structs.replace(known_report, timeline=[], opportunities=[])
    path = tmp_path / "quiet.png"
    assert write_plot(quiet, path) == [HEATMAP_TITLE, TIMELINE_TITLE]
    png_size(path)
