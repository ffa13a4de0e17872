"""The dashboard in a real browser: Playwright driving the system's Chromium (Debian package
``chromium``; ``.ci/run`` installs it) against a running collector and the simulator.

In CI (``CI`` set) a missing Chromium or Playwright fails the test; elsewhere it is skipped
with the command that installs it. The screenshot is saved under ``$CEX_TEST_ARTIFACTS`` (else
the test's tmp dir) and its path printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from data_collector.simulator import Simulator, pairs_for
from tests.helpers import NO_DB, make_config, plant_gap, running

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must provide it (.ci/run installs chromium)")
    pytest.skip(f"{reason} (apt-get install -y chromium; pip install -e '.[dev]')")


def _artifact(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("CEX_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


async def _cells(page: Any) -> list[str]:
    return await page.eval_on_selector_all(
        "#matrix td[data-field=bid], #matrix td[data-field=ask]",
        "cells => cells.map(c => c.textContent)",
    )


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_the_dashboard_fills_updates_live_and_shows_a_planted_opportunity(
    tmp_path: Path,
) -> None:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    pairs = pairs_for(4)
    sol = pairs[2]
    async with Simulator(pairs, rate_hz=5) as sim:
        config = make_config(tmp_path, sim, pairs, NO_DB)
        async with running(config, dry_run=True) as collector, async_playwright() as pw:
            assert collector.monitoring is not None
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 860})
                await page.goto(f"{collector.monitoring.url}/")
                # the matrix fills: every configured pair, a bid and an ask on every venue
                for pair in pairs:
                    for venue in ("mexc", "gateio"):
                        cell = f"tr[data-pair='{pair}'] td[data-venue='{venue}'][data-field=bid]"
                        await page.wait_for_function(
                            f'document.querySelector("{cell}")?.textContent.match(/^[0-9]/)',
                            timeout=15_000,
                        )
                header = await page.eval_on_selector_all(
                    "#matrix th.venue", "h => h.map(x => x.textContent)"
                )
                assert header == ["mexc", "gateio"]
                # a value changes within 3 s, without a reload
                before = await _cells(page)
                loads = []
                page.on("load", lambda _: loads.append(1))
                await page.wait_for_function(
                    "before => [...document.querySelectorAll('#matrix td[data-field=bid],"
                    " #matrix td[data-field=ask]')].map(c => c.textContent).join() !== before",
                    arg=",".join(before),
                    timeout=3_000,
                )
                assert loads == []
                # a planted gap: Gate.io bids 8 % above MEXC's ask
                await plant_gap(sim, sol)
                row = f"#open tr[data-key='{sol} mexc gateio']"
                await page.wait_for_selector(row, timeout=10_000)
                net = await page.text_content(f"{row} td.net")
                assert net is not None and float(net.rstrip("%")) > 7.0  # ~7.75 % net of fees
                assert "opp" in (await page.get_attribute(f"tr[data-pair='{sol}']", "class") or "")
                venues = await page.text_content("#venues")
                assert "mexc" in venues and "gateio" in venues and "frames/s" in venues
                shot = _artifact(tmp_path, "dashboard.png")
                await page.screenshot(path=str(shot), full_page=True)
                print(f"dashboard screenshot: {shot}")
                assert shot.stat().st_size > 10_000
            finally:
                await browser.close()
