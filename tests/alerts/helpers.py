"""A real HTTP receiver for apprise's ``json://`` targets, and targets that hang or refuse."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from data_collector.analytics.records import OpportunityClosed, OpportunityOpened
from data_collector.pairs import parse_pair

T0 = datetime(2026, 11, 23, 14, 40, 7, tzinfo=UTC)


class Receiver:
    """Collects the JSON bodies apprise posts (title, message, type); ``hang`` makes it accept
    the request and never answer."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.messages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "hook", userinfo: str = "") -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"json://{auth}127.0.0.1:{self.port}/{path}"

    @property
    def titles(self) -> list[str]:
        return [m["title"] for m in self.messages]

    def got(self, text: str) -> bool:
        """Whether a message (alone or in a digest) holds ``text`` in its title or body."""
        return any(text in m["title"] or text in m["message"] for m in self.messages)

    async def _post(self, request: web.Request) -> web.Response:
        if self.hang:
            await self._release.wait()
            return web.Response(status=504)
        self.paths.append(request.path)
        self.messages.append(await request.json())
        return web.Response(text="ok")


def refused_url(path: str = "hook") -> str:
    """A json:// target on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"json://127.0.0.1:{port}/{path}"


def opened(
    symbol: str = "SOL/USDT", net_pct: float = 6.75, buy: str = "mexc", sell: str = "gateio"
) -> OpportunityOpened:
    """The README's example opportunity (or one like it)."""
    return OpportunityOpened(
        pair=parse_pair(symbol),
        buy_exchange=buy,
        sell_exchange=sell,
        opened_at=T0,
        buy_price=149.75,
        sell_price=160.23,
        size=2.5,
        gross_pct=7.0,
        net_pct=net_pct,
        buy_fee_pct=0.05,
        sell_fee_pct=0.2,
    )


def closed(symbol: str = "SOL/USDT", buy: str = "mexc", sell: str = "gateio") -> OpportunityClosed:
    return OpportunityClosed(
        pair=parse_pair(symbol),
        buy_exchange=buy,
        sell_exchange=sell,
        opened_at=T0,
        closed_at=T0 + timedelta(seconds=6),
        peak_net_pct=6.8,
        ticks=6,
    )
