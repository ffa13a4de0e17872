"""Server-driven protocol keepalive (keepalive.py): the venue pings, a client must pong."""

from __future__ import annotations

import time

from picows import WSMsgType

from data_collector.simulator.keepalive import ServerPings
from data_collector.simulator.personalities.gateio import GatePersonality
from tests.helpers import wait_until
from tests.simulator.clients import connect, serving

INTERVAL, PONG_TIMEOUT = 0.2, 1.0


class PingingGate(GatePersonality):
    """Gate whose server pings the way Binance's does (faster)."""

    def __init__(self) -> None:
        super().__init__()
        self.server_pings = ServerPings(INTERVAL, PONG_TIMEOUT)


def is_ping(msg_type: WSMsgType, payload: bytes) -> bool:
    return msg_type == WSMsgType.PING


async def test_answered_pings_keep_a_session_and_unanswered_ones_end_it() -> None:
    async with serving(PingingGate()) as venue:
        client = await connect(venue.url, auto_pong=False)
        await venue.wait_for_sessions(1)
        session = venue.sessions[0]
        payloads = []
        for _ in range(3):
            _, payload = await client.until(is_ping)
            payloads.append(payload)
            client.transport.send_pong(payload)
        assert len(set(payloads)) == 3  # each ping has its own payload
        assert not client.disconnected.is_set()

        _, payload = await client.until(is_ping)
        unanswered_at = time.monotonic()
        client.transport.send_pong(b"not " + payload)  # unsolicited: keeps nothing alive
        await client.until(lambda t, p: t == WSMsgType.CLOSE, timeout=5)
        assert client.close_reason == "pong_timeout"
        assert time.monotonic() - unanswered_at >= PONG_TIMEOUT - INTERVAL
        assert payload in ServerPings.unanswered(session)


async def test_a_pong_answers_its_ping_and_every_earlier_one() -> None:
    async with serving(PingingGate()) as venue:
        client = await connect(venue.url, auto_pong=False)
        await venue.wait_for_sessions(1)
        session = venue.sessions[0]
        _, earlier = await client.until(is_ping)
        _, latest = await client.until(is_ping)
        assert ServerPings.unanswered(session)[:2] == [earlier, latest]
        client.transport.send_pong(latest)

        def answered() -> bool:
            return not {earlier, latest} & set(ServerPings.unanswered(session))

        await wait_until(answered, timeout=3, what="both pings answered")
        assert not client.disconnected.is_set()


async def test_a_client_with_auto_pong_stays() -> None:
    async with serving(PingingGate()) as venue:
        client = await connect(venue.url)  # picows answers pings itself
        await venue.wait_for_sessions(1)
        session = venue.sessions[0]
        enough = int(PONG_TIMEOUT / INTERVAL) + 3  # pings spanning well past the pong timeout
        await wait_until(lambda: ServerPings.sent(session) >= enough, what=f"{enough} pings")
        assert not client.disconnected.is_set()
        assert len(ServerPings.unanswered(session)) <= 1
