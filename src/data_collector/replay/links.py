"""Links that replay a recording: the feed manager builds them in place of live links.

A :class:`ReplayLink` has a live link's face towards its owner (the manager's feed of that
link): the same callbacks, called with the recorded frames, and the same answers to the
owner's questions (which transport carries the pairs, whether a confirmation hands them
over). Its state follows the recorded connection events, and the rules that turn a
confirmation into a takeover are the live link's (:meth:`Link.transport_ready`), so the owner
resets sequences and marks quotes not live exactly where it did live. It opens nothing and
sends nothing; connection attempts are not counted (a recording holds the connections that
opened, not the attempts that failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from data_collector.connection.settings import ConnectionSettings
from data_collector.recording.format import (
    CLOSED,
    FLAG_RECONNECT,
    FLAG_ROTATION,
    LINK_STATE,
    LOST,
    OPENED,
    PROMOTED,
    U32,
    Record,
)

log = structlog.get_logger(__name__)

FrameCallback = Callable[[Any, int, bytes, int], None]
ConnectedCallback = Callable[[Any], list[str]]
LostCallback = Callable[[Any, str], None]

#: why a link whose transport was closed by its collector counts as lost in a replay
COLLECTOR_STOPPED = "collector_stopped"
#: why a link counts as lost where its venue's recording stops (a cut, a crash, the end)
RECORDING_ENDED = "recording_ended"


class ReplayLink:
    """Stands in for :class:`~data_collector.connection.Link` during a replay."""

    def __init__(
        self,
        name: str,
        url: str,
        settings: ConnectionSettings,
        *,
        on_frame: FrameCallback,
        on_connected: ConnectedCallback,
        on_lost: LostCallback,
        **_live_only: object,  # keepalive, lifetime, budgets: nothing to keep alive here
    ) -> None:
        self.name = name
        self.url = url
        self.settings = settings
        self.on_frame = on_frame
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._current = 0
        self._current_ready = False
        self._replacement = 0
        self._replacement_ready = False
        self._dead: set[int] = set()
        self._seen = False  # an event replayed: a file's link-state preamble is history
        self.latest_id = 0
        self.reconnects = 0
        self.rotations = 0
        self.stray_frames = 0
        self.tap = None

    # --- what the owner asks, answered as the live link does --------------------------------

    @property
    def current_id(self) -> int:
        current = self._current
        return current if current not in self._dead else 0

    @property
    def replacement_id(self) -> int:
        return self._replacement

    @property
    def is_up(self) -> bool:
        return self.current_id != 0

    def start(self) -> None:
        """Nothing to open: the recording says what was."""

    async def close(self) -> None:
        """Nothing to close."""

    def transport_ready(self, transport_id: int) -> bool:
        """:meth:`Link.transport_ready` on the recorded state."""
        if self._replacement and self._replacement == transport_id:
            if self._replacement_ready or transport_id in self._dead:
                return False
            self._replacement_ready = True
            self._promote(transport_id)
            return True
        if not self._current or self._current != transport_id or self._current_ready:
            return False
        self._current_ready = True
        return True

    def request_rotation(self, reason: str, transport_id: int | None = None) -> None:
        """The recording holds the rotation that followed, if any."""

    def send_subscriptions(self, texts: list[str], transport_id: int | None = None) -> int:
        """What the live link answered: how many requests the transport took (all of them,
        unless it was gone)."""
        for tid in (self._current, self._replacement):
            if tid and transport_id in (None, tid):
                return 0 if tid in self._dead else len(texts)
        return 0

    # --- the recorded events ----------------------------------------------------------------

    def replay_event(self, record: Record) -> None:
        """Apply one recorded connection event (any kind but frames and ticks)."""
        kind, tid = record.kind, record.transport
        if kind == LINK_STATE:
            self._preamble(tid, U32.unpack(record.payload)[0])
            return
        self._seen = True
        if kind == OPENED:
            self._opened(tid, record.flags)
        elif kind == PROMOTED and self._current != tid:
            self._promote(tid)
        elif kind == LOST:
            if self._current == tid:
                self._current = 0
            self._on_lost(self, record.payload.decode(errors="replace"))
        elif kind == CLOSED:
            self._closed(tid, record.payload.decode(errors="replace"))

    def ended(self) -> None:
        """The recording stops here: whatever carried the pairs is gone (a restarted
        collector's records may follow, with transport ids of its own)."""
        carried = self._current or self._replacement  # dead or alive: nobody said it was lost
        self._current = self._replacement = 0
        if carried:
            self._on_lost(self, RECORDING_ENDED)
        self._current_ready = self._replacement_ready = False
        self._dead.clear()

    def _opened(self, tid: int, flags: int) -> None:
        if flags & FLAG_ROTATION:
            self._replacement, self._replacement_ready = tid, False
        else:
            self._current, self._current_ready = tid, False
            if flags & FLAG_RECONNECT:
                self.reconnects += 1
        self.latest_id = tid
        self._on_connected(self)  # the subscribe texts were sent live; here they go nowhere

    def _promote(self, tid: int) -> None:
        if self._replacement == tid:
            self._current_ready = self._replacement_ready
        else:
            self._current_ready = False
        self._current, self._replacement = tid, 0
        self._replacement_ready = False
        self.rotations += 1

    def _closed(self, tid: int, reason: str) -> None:
        self._dead.add(tid)
        if self._replacement == tid:
            self._replacement = 0
        if reason == "closed" and self._current == tid:
            # The collector closed its links on shutdown: live, nothing was captured after
            # that; here a later tick must not take the last quotes for live ones.
            self._current = 0
            self._on_lost(self, COLLECTOR_STOPPED)

    def _preamble(self, current: int, replacement: int) -> None:
        """A file's opening state of the link, for a replay that starts with that file."""
        if self._seen:
            return
        self._seen = True
        for tid, rotation in ((current, False), (replacement, True)):
            if tid:
                self._opened(tid, FLAG_ROTATION if rotation else 0)


class ReplayLinks:
    """Builds the replay links (the feed manager's link factory) and finds them by name."""

    def __init__(self) -> None:
        self.by_name: dict[str, ReplayLink] = {}
        self._venue_of: dict[str, str] = {}

    def make(
        self, venue: str, name: str, url: str, settings: ConnectionSettings, **kwargs: Any
    ) -> ReplayLink:
        link = ReplayLink(name, url, settings, **kwargs)
        self.by_name[name] = link
        self._venue_of[name] = venue
        return link

    def ended(self, venue: str) -> None:
        """The recording of ``venue`` stops here (see :meth:`ReplayLink.ended`)."""
        for name, link in self.by_name.items():
            if self._venue_of[name] == venue:
                link.ended()
