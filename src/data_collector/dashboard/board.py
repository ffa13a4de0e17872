"""What the dashboard lists of the opportunities: the open ones and the last closed ones.

An analytics :class:`RecordConsumer`, so it sees exactly what the log and the alerts see.
"""

from __future__ import annotations

from collections import deque

from data_collector.analytics.records import OpportunityClosed, OpportunityOpened, RecordConsumer

#: closed opportunities the dashboard lists, newest first
CLOSED_SHOWN = 20

OpportunityKey = tuple[str, str, str]


class OpportunityBoard(RecordConsumer):
    def __init__(self, closed_shown: int = CLOSED_SHOWN) -> None:
        self.open: dict[OpportunityKey, OpportunityOpened] = {}
        self.recently_closed: deque[OpportunityClosed] = deque(maxlen=closed_shown)

    def opened(self, record: OpportunityOpened) -> None:
        self.open[(str(record.pair), record.buy_exchange, record.sell_exchange)] = record

    def closed(self, record: OpportunityClosed) -> None:
        self.open.pop((str(record.pair), record.buy_exchange, record.sell_exchange), None)
        self.recently_closed.appendleft(record)
