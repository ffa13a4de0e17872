"""Each alert record worded as one short message; bursts as one digest."""

from __future__ import annotations

from data_collector.alerts.events import PairSilent, VenueDown, VenueUp
from data_collector.alerts.messages import DIGEST_LINES, digest, format_duration, word
from tests.alerts.helpers import closed, opened


def test_an_opening_names_symbol_venues_prices_percentages_and_size() -> None:
    alert = word(opened())
    assert alert.event == "arbitrage_alert" and alert.kind == "warning"
    assert alert.title == "Arbitrage SOL/USDT: 6.75% net"
    assert alert.body.splitlines() == [
        "SOL/USDT: buy MEXC 149.75, sell GATEIO 160.23",
        "7.00% gross, 6.75% net of fees, size 2.5 SOL: net profit $25.21 (gap $10.48 per unit)",
        "opened 2026-11-23 14:40:07 UTC",
    ]
    assert alert.key == ("arbitrage", "SOL/USDT", "mexc", "gateio")


def test_a_close_says_how_long_it_lasted_and_shares_the_opening_key() -> None:
    alert = word(closed())
    assert alert.event == "arbitrage_closed"
    assert alert.title == "Closed SOL/USDT: buy MEXC, sell GATEIO after 6.0s"
    assert "peak 6.80% net" in alert.body and "(6 ticks)" in alert.body
    assert alert.key == word(opened()).key


def test_venue_and_pair_events_name_the_venue_and_the_reason() -> None:
    down = word(VenueDown("gateio", "silence_timeout", 0, 1))
    assert (down.event, down.title, down.kind) == ("venue_down", "GATEIO down", "failure")
    assert "0/1 connection up (silence_timeout)" in down.body
    up = word(VenueUp("gateio", 125.0))
    assert (up.event, up.key) == ("venue_up", down.key)
    assert "after 2m05s down" in up.body
    silent = word(PairSilent("mexc", "BTC/USDT", 120.0))
    assert silent.event == "pair_silent" and silent.title == "BTC/USDT silent on MEXC"
    assert "no update for 2m00s" in silent.body


def test_a_digest_lists_each_alert_and_takes_the_most_severe_kind() -> None:
    burst = [word(opened(f"T{i:03d}/USDT")) for i in range(DIGEST_LINES + 5)]
    burst.append(word(VenueDown("mexc", "closed", 0, 2)))
    d = digest(burst)
    assert d.count == len(burst) == DIGEST_LINES + 6
    assert d.title == f"{len(burst)} alerts (arbitrage_alert, venue_down)"
    lines = d.body.splitlines()
    assert lines[0] == (
        "T000/USDT: buy MEXC 149.75, sell GATEIO 160.23, 7.00% gross, 6.75% net, "
        "size 2.5 T000, net profit $25.21"
    )
    assert lines[-1] == "... and 6 more" and len(lines) == DIGEST_LINES + 1
    assert d.kind == "failure"


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (6.04, 59.9, 61, 3600, 7322)] == [
        "6.0s",
        "59.9s",
        "1m01s",
        "1h00m",
        "2h02m",
    ]
