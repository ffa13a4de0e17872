"""The recording's files of one venue, written from the recorder's worker thread.

Records go to the file of their own UTC hour, ``<root>/<venue>/<YYYY-MM-DD>/<HH>.rec.zst``,
each batch as one compressed block (see :mod:`data_collector.recording.format`). A file that
already exists (a restart within the hour) is appended to, in a new segment. Every segment
starts with the state of the venue's links (which transport carries each link's pairs), so a
replay can start at any file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BufferedWriter
from operator import itemgetter
from pathlib import Path

import zstandard

from data_collector.recording.format import (
    CLOSED,
    FILE_SUFFIX,
    FLAG_ROTATION,
    FRAME,
    HEAD_AFTER_SIZE,
    LINK_STATE,
    LOST,
    OPENED,
    PROMOTED,
    RECORD_HEAD,
    SEGMENT_FRESH,
    U32,
    encode_block_head,
    encode_segment_header,
)

HOUR_NS = 3600 * 10**9
#: zstd level: 1 packs book-ticker records within a few % of level 3 (4-7x) at 1.5x its speed
LEVEL = 1

#: kind, time_ns, transport, flags, link (ASCII bytes), payload: a record not yet encoded
Pending = tuple[int, int, int, int, bytes, bytes]
_KIND = itemgetter(0)
_FRAMES_ONLY = {FRAME}


class RecordingError(Exception):
    """A write failed; the message names the file and the reason."""


def hour_path(root: Path, venue: str, hour: int) -> Path:
    """The file of the UTC hour ``hour`` (hours since the epoch)."""
    start = datetime.fromtimestamp(hour * 3600, UTC)
    return root / venue / f"{start:%Y-%m-%d}" / f"{start:%H}{FILE_SUFFIX}"


@dataclass
class _LinkState:
    """Which transports of a link carry its pairs, as its events say."""

    current: int = 0
    replacement: int = 0

    def note(self, kind: int, transport: int, flags: int, payload: bytes) -> None:
        if kind == OPENED:
            if flags & FLAG_ROTATION:
                self.replacement = transport
            else:
                self.current = transport
        elif kind == PROMOTED:
            self.current, self.replacement = transport, 0
        elif kind == LOST and self.current == transport:
            self.current = 0
        elif kind == CLOSED:
            if self.replacement == transport:
                self.replacement = 0
            if self.current == transport:
                self.current = 0


class VenueFiles:
    """Appends batches of one venue's records to its hourly files."""

    def __init__(self, root: Path, venue: str, level: int = LEVEL) -> None:
        self.root = root
        self.venue = venue
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._links: dict[bytes, _LinkState] = {}
        self._hour = -1
        self._file: BufferedWriter | None = None
        self._path: Path | None = None
        #: the next block starts a segment (a new file, or a file opened again)
        self._new_segment = False
        self.bytes_written = 0
        self.files: set[Path] = set()

    def write(self, batch: list[Pending]) -> None:
        """Encode, compress and append ``batch``; raises :class:`RecordingError`."""
        start = 0
        while start < len(batch):
            hour = batch[start][1] // HOUR_NS
            end = _same_hour_end(batch, start, hour)
            self._write_hour(hour, batch[start:end])
            start = end

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.flush()
                os.fsync(file.fileno())
                file.close()
            except OSError as exc:
                raise RecordingError(f"cannot write {self._path} ({_why(exc)})") from exc

    def _write_hour(self, hour: int, records: list[Pending]) -> None:
        if hour != self._hour or self._file is None:
            self.close()
            self._open(hour)
        raw = bytearray()
        if self._new_segment:
            self._new_segment = False
            flags = 0 if self.files else SEGMENT_FRESH
            raw += encode_segment_header(self.venue, records[0][1], flags)
            raw += self._link_states(records[0][1])
        raw += self._encode(records)
        compressed = self._compressor.compress(bytes(raw))
        try:
            assert self._file is not None
            self._file.write(encode_block_head(len(compressed), len(raw)) + compressed)
            self._file.flush()  # a crash of the process keeps every block written so far
        except OSError as exc:
            raise RecordingError(f"cannot write {self._path} ({_why(exc)})") from exc
        self.files.add(self._path)
        self.bytes_written += 20 + len(compressed)

    def _open(self, hour: int) -> None:
        path = hour_path(self.root, self.venue, hour)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab")  # noqa: SIM115 - held open across batches
        except OSError as exc:
            raise RecordingError(f"cannot write {path} ({_why(exc)})") from exc
        self._hour, self._path = hour, path
        self._new_segment = True

    def _encode(self, records: list[Pending]) -> bytes:
        pack, fixed = RECORD_HEAD.pack, HEAD_AFTER_SIZE
        encoded = b"".join(
            [
                pack(fixed + len(link) + len(payload), kind, time_ns, transport, flags, len(link))
                + link
                + payload
                for kind, time_ns, transport, flags, link, payload in records
            ]
        )
        if set(map(_KIND, records)) != _FRAMES_ONLY:  # connection events: rare, noted in order
            for kind, _time_ns, transport, flags, link, payload in records:
                if kind != FRAME:
                    self._links.setdefault(link, _LinkState()).note(kind, transport, flags, payload)
        return encoded

    def _link_states(self, time_ns: int) -> bytes:
        states = [
            (LINK_STATE, time_ns, s.current, 0, link, U32.pack(s.replacement))
            for link, s in self._links.items()
        ]
        return self._encode(states)


def _same_hour_end(batch: list[Pending], start: int, hour: int) -> int:
    """The end of the run of records from ``start`` on that fall in ``hour``."""
    if batch[-1][1] // HOUR_NS == hour:  # the usual case: the whole rest is in this hour
        return len(batch)
    end = start
    while end < len(batch) and batch[end][1] // HOUR_NS == hour:
        end += 1
    return end


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
