"""One venue's view of the market: per pair its symbol, sequence, last quote and subscribers."""

from __future__ import annotations

import random

from data_collector.pairs import Pair
from data_collector.simulator.market import Market
from data_collector.simulator.personality import Personality
from data_collector.simulator.session import ClientSession, Quote, now_ms


class VenueBook:
    """Per-pair state of one simulated venue, indexed like ``market.pairs``.

    Every quote the venue makes comes from here, so sequences rise per pair whatever path (random
    walk, injected quote, flood) asks for the next one.
    """

    def __init__(self, personality: Personality, market: Market, rng: random.Random) -> None:
        self.personality = personality
        self.market = market
        self.rng = rng
        #: the venue's symbol of each pair
        self.symbols = [personality.symbol(pair) for pair in market.pairs]
        self._by_symbol = {symbol: i for i, symbol in enumerate(self.symbols)}
        count = len(self.symbols)
        # a persistent per-venue skew keeps cross-venue spreads non-zero but far below 0.5%
        self._bias = [rng.uniform(-1e-4, 1e-4) for _ in range(count)]
        self._sequence = [personality.first_sequence(s, rng) for s in self.symbols]
        #: the last quote sent (or held back by a stall) per pair
        self.last: list[Quote | None] = [None] * count
        #: sessions subscribed to each pair
        self.subscribers: list[set[ClientSession]] = [set() for _ in range(count)]
        #: pairs the random walk leaves alone (a test set their quote)
        self.held: set[int] = set()
        #: pairs whose subscriptions the venue refuses
        self.rejected: set[int] = set()

    def __len__(self) -> int:
        return len(self.symbols)

    def index(self, pair: Pair) -> int:
        try:
            return self.market.index(pair)
        except KeyError:
            raise KeyError(f"{pair} is not one of the simulator's pairs") from None

    def pair_index(self, symbol: str) -> int | None:
        return self._by_symbol.get(symbol)

    def subscribed(self) -> list[int]:
        """The pairs some session subscribes to."""
        return [i for i, subscribers in enumerate(self.subscribers) if subscribers]

    def next_sequence(self, idx: int) -> int:
        sequence = self.personality.next_sequence(self._sequence[idx], self.rng)
        self._sequence[idx] = sequence
        return sequence

    def walk(self, idx: int, stamp: int, now: float) -> Quote:
        """The pair's next quote on the random walk, stamped ``stamp`` (venue ms)."""
        bias = self._bias[idx] + (self.rng.random() - 0.5) * 4e-5
        bid, bid_qty, ask, ask_qty = self.market.quote(idx, self.rng, bias=bias, now=now)
        return Quote(bid, bid_qty, ask, ask_qty, self.next_sequence(idx), stamp)

    def exact(
        self,
        idx: int,
        bid: str | None,
        bid_qty: str | None,
        ask: str | None,
        ask_qty: str | None,
    ) -> Quote:
        """A quote of exactly these strings, with the pair's next sequence."""
        return Quote(bid, bid_qty, ask, ask_qty, self.next_sequence(idx), now_ms())

    def stale(self, idx: int) -> Quote:
        """A fresh-looking quote whose sequence is below the last one handed out."""
        sequence = max(1, self._sequence[idx] - self.rng.randint(1, 5))
        bid, bid_qty, ask, ask_qty = self.market.quote(idx, self.rng, bias=self._bias[idx])
        return Quote(bid, bid_qty, ask, ask_qty, sequence, now_ms())
