"""The watchdog of a transport against the loopback server: application pings by the
keepalive style, pong deadline, silence, subscribe deadline."""

from __future__ import annotations

import time

from data_collector.connection import ConnectionSettings, IntervalPing
from tests.connection.loopback import FAST, Recorder, Server, make_link
from tests.helpers import wait_until


def test_interval_ping_is_due_every_interval_but_within_the_gap() -> None:
    ping = IntervalPing(lambda now: f"ping {now:.0f}", 15.0)
    assert ping.next_ping(100.0, last_frame=140.0, max_gap=30.0) == 115.0  # traffic is no matter
    assert ping.next_ping(100.0, last_frame=0.0, max_gap=5.0) == 105.0
    assert ping.ping_message(1545404023.4) == "ping 1545404023"


async def test_silent_server_is_detected_and_replaced(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    link = make_link(server.url, rec)
    t0 = time.monotonic()
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="stall detection")
        # ping after 0.2 s, no answer within pong_timeout 0.5 s
        assert rec.lost[0] == "pong_timeout"
        assert time.monotonic() - t0 < FAST.silence_timeout + 0.5
        await wait_until(lambda: len(server.sessions) >= 2, what="reconnect")
    finally:
        await link.close()


async def test_silence_timeout_without_pings(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    # the pong deadline (5 s) lies beyond the silence deadline (1 s): silence must fire first
    settings = ConnectionSettings(silence_timeout=1.0, pong_timeout=5.0)
    link = make_link(server.url, rec, settings, ping=60.0)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="silence detection")
        assert rec.lost[0] == "silence"
        # a quiet link pings at least twice per silence period, whatever the venue's interval
        assert server.sessions[0].received.count("ping") >= 1
    finally:
        await link.close()


class NoPing:
    """A style without application pings (as Binance's): only silence proves death."""

    def next_ping(self, last_ping: float, last_frame: float, max_gap: float) -> float:
        return float("inf")

    def ping_message(self, now: float) -> str:
        raise AssertionError("never asked: no ping is ever due")


async def test_a_style_without_pings_sends_none_and_watches_silence(server: Server) -> None:
    server.mode = "silent"
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=0.5, pong_timeout=0.3)
    link = make_link(server.url, rec, settings, keepalive=NoPing())
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="silence detection")
        assert rec.lost[0] == "silence"
        assert server.sessions[0].received == ["sub-a", "sub-b"]
    finally:
        await link.close()


async def test_unconfirmed_transport_is_replaced_after_subscribe_timeout(server: Server) -> None:
    server.ack_sessions = 0  # pings answered, subscriptions silently ignored
    rec = Recorder()
    settings = ConnectionSettings(silence_timeout=2.0, pong_timeout=0.5, subscribe_timeout=0.4)
    link = make_link(server.url, rec, settings)
    link.start()
    try:
        await wait_until(lambda: rec.lost, timeout=3.0, what="subscribe timeout")
        assert rec.lost[0] == "subscribe_timeout"
        await wait_until(lambda: len(server.sessions) >= 2, what="a fresh attempt")
    finally:
        await link.close()
