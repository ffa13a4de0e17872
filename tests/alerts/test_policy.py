"""What goes out: enabled events, min_net_pct, cooldown per key, no ending without its start."""

from __future__ import annotations

from data_collector.alerts.events import PairSilent, VenueDown, VenueUp
from data_collector.alerts.messages import word
from data_collector.alerts.policy import AlertPolicy
from data_collector.config_schema import ALERT_EVENTS
from tests.alerts.helpers import closed, opened


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admit(policy: AlertPolicy, record: object) -> bool:
    return policy.admit(record, word(record))  # type: ignore[arg-type]


def test_the_same_pair_and_venue_pair_alerts_again_only_after_the_cooldown() -> None:
    clock = Clock()
    policy = AlertPolicy(ALERT_EVENTS, min_net_pct=0, cooldown_s=60, clock=clock)
    assert admit(policy, opened())
    assert admit(policy, closed())
    clock.now += 30
    assert not admit(policy, opened())  # within the cooldown
    assert not admit(policy, closed())  # its open was not sent: neither is its close
    assert admit(policy, opened(sell="binance"))  # another venue pair
    assert admit(policy, opened("ETH/USDT"))  # another pair
    clock.now += 30
    assert admit(policy, opened())


def test_min_net_pct_filters_openings_and_their_closes() -> None:
    policy = AlertPolicy(ALERT_EVENTS, min_net_pct=7.0, cooldown_s=0, clock=Clock())
    assert not admit(policy, opened(net_pct=6.75))
    assert not admit(policy, closed())
    assert admit(policy, opened(net_pct=7.0))
    assert admit(policy, closed())


def test_disabled_events_are_not_sent_but_still_pair_up() -> None:
    policy = AlertPolicy(["arbitrage_closed"], min_net_pct=0, cooldown_s=0, clock=Clock())
    assert not admit(policy, opened())  # not sent, but remembered as started
    assert admit(policy, closed())


def test_venue_events_pair_up_and_flapping_is_damped_by_the_cooldown() -> None:
    clock = Clock()
    policy = AlertPolicy(ALERT_EVENTS, min_net_pct=0, cooldown_s=60, clock=clock)
    assert not admit(policy, VenueUp("mexc", 3.0))  # never reported down
    assert admit(policy, VenueDown("mexc", "closed", 0, 1))
    assert admit(policy, VenueUp("mexc", 4.0))
    clock.now += 10
    assert not admit(policy, VenueDown("mexc", "closed", 0, 1))
    assert not admit(policy, VenueUp("mexc", 4.0))
    assert admit(policy, PairSilent("mexc", "BTC/USDT", 60))
    assert not admit(policy, PairSilent("mexc", "BTC/USDT", 120))
    assert admit(policy, PairSilent("gateio", "BTC/USDT", 60))
