"""venue_down / venue_up from connection counts: a routine reconnect is no outage."""

from __future__ import annotations

from data_collector.alerts.events import AlertRecord, VenueDown, VenueUp
from data_collector.alerts.venues import VenueWatch


class Sink:
    def __init__(self) -> None:
        self.records: list[AlertRecord] = []

    def publish(self, record: AlertRecord) -> None:
        self.records.append(record)


def test_a_venue_short_of_connections_past_the_grace_is_down_then_up() -> None:
    now = [0.0]
    links = {"mexc": (2, 2), "gateio": (0, 1)}
    sink = Sink()
    watch = VenueWatch(
        sink,
        lambda: links,
        {"mexc": "silence_timeout"}.get,
        down_after_s=3,
        never_up_after_s=30,
        clock=lambda: now[0],
    )

    def at(t: float) -> list[AlertRecord]:
        now[0] = t
        watch.check()
        return sink.records

    assert at(0) == []
    links["mexc"] = (1, 2)
    assert at(1) == []
    links["mexc"] = (2, 2)  # back within the grace: a routine reconnect
    assert at(2) == []
    links["mexc"] = (1, 2)
    assert at(3) == [] and at(5.9) == []
    assert at(6) == [VenueDown("mexc", "silence_timeout", 1, 2)]
    assert at(20) == [VenueDown("mexc", "silence_timeout", 1, 2)]  # said once
    links["mexc"] = (2, 2)
    assert at(21)[1:] == [VenueUp("mexc", 18.0)]
    assert at(29.9)[2:] == []
    assert at(30)[2:] == [VenueDown("gateio", "never connected", 0, 1)]
