"""Reading a recording back: the files of a venue in order, their blocks, their records, and
every venue merged by time.

Damage is expected (a crash mid-write, a disk that filled up): a file whose last block or
record is cut short is read up to the cut and ``recording_truncated`` says where; a block in
the middle that does not decode (a cut block that a restarted collector wrote after) is read
as far as it decodes, ``recording_damaged`` says so, and reading goes on at the next block.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import structlog
import zstandard

from data_collector.recording.files import HOUR_NS
from data_collector.recording.format import (
    BLOCK_HEAD,
    BLOCK_SIGNATURE,
    ENDED,
    FILE_SUFFIX,
    SEGMENT,
    SEGMENT_FRESH,
    Damaged,
    Record,
    decode_block_head,
    iter_records,
)

log = structlog.get_logger(__name__)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOUR = re.compile(r"^(\d{2})" + re.escape(FILE_SUFFIX) + "$")
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class RecordingFile:
    venue: str
    #: UTC hours since the epoch
    hour: int
    path: Path


def venue_files(root: Path, venue: str) -> list[RecordingFile]:
    """The files of ``venue`` under ``root``, oldest hour first (other names are ignored).
    Raises OSError when a directory cannot be listed."""
    base = root / venue
    if not base.is_dir():
        return []
    found = []
    for day in base.iterdir():
        if not (_DAY.match(day.name) and day.is_dir()):
            continue
        for file in day.iterdir():
            match = _HOUR.match(file.name)
            if match and file.is_file():
                hour = _hour_of(day.name, int(match.group(1)))
                if hour is not None:
                    found.append(RecordingFile(venue, hour, file))
    return sorted(found, key=lambda f: f.hour)


def _hour_of(day: str, hour: int) -> int | None:
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC, hour=hour)
    except ValueError:
        return None
    return int(start.timestamp()) // 3600


def select(
    files: list[RecordingFile], from_ns: int | None, until_ns: int | None
) -> list[RecordingFile]:
    """The files a replay of [from, until] reads: from the one holding ``from`` (its earlier
    records warm the cache up) to the one after ``until`` (a tick is recorded just after its
    second)."""
    first = -1 if from_ns is None else from_ns // HOUR_NS
    last = None if until_ns is None else until_ns // HOUR_NS + 1
    return [f for f in files if f.hour >= first and (last is None or f.hour <= last)]


def read_records(venue: str, files: Iterable[RecordingFile]) -> Iterator[Record]:
    """The records of ``venue``'s ``files``, in file order. Where the recording stops (a
    restarted collector's fresh segment follows: the old one may have died without a word;
    or the records end, cut or not), an ``ENDED`` record (payload: the venue) comes right
    after the last record: nothing of the connections before it carries over."""
    last_ns: int | None = None
    ended = Record(0, ENDED, 0, 0, "", venue.encode())
    for file in files:
        with open(file.path, "rb") as stream:
            for record in _file_records(stream, file.path):
                if record[1] != SEGMENT:  # kind
                    yield record
                    last_ns = record[0]
                elif record.flags & SEGMENT_FRESH and last_ns is not None:
                    yield ended._replace(time_ns=last_ns + 1)
    if last_ns is not None:
        yield ended._replace(time_ns=last_ns + 1)


def merge(streams: list[Iterator[Record]]) -> Iterator[Record]:
    """Every stream's records in one, ordered by time (a stream's own order kept)."""
    return heapq.merge(*streams)


def _file_records(stream: BinaryIO, path: Path) -> Iterator[Record]:
    for offset, raw, state in _blocks(stream, path):
        try:
            yield from iter_records(raw)
        except Damaged as exc:
            if state is _OK:
                _damaged(path, offset, str(exc))
        if state is _DAMAGED:
            _damaged(path, offset, "the block does not decode")
        elif state is _CUT:
            _truncated(path, offset)
            return


_OK, _CUT, _DAMAGED = "ok", "cut", "damaged"


def _blocks(stream: BinaryIO, path: Path) -> Iterator[tuple[int, bytes, str]]:
    """(offset, raw bytes, state) of each block: ``_OK``; ``_CUT`` (the file ends inside it:
    what decodes of it, and the end); ``_DAMAGED`` (what decodes of it; reading goes on at
    the next block signature)."""
    decompressor = zstandard.ZstdDecompressor()
    offset = 0
    while True:
        head = stream.read(BLOCK_HEAD.size)
        if not head:
            return
        if len(head) < BLOCK_HEAD.size:
            yield offset, b"", _CUT
            return
        sizes = decode_block_head(head)
        if sizes is None:
            _damaged(path, offset, "no block starts here")
            offset = _resync(stream, offset + 1)
            if offset < 0:
                return
            continue
        compressed_size, raw_size = sizes
        compressed = stream.read(compressed_size)
        if len(compressed) < compressed_size:
            yield offset, _partial(decompressor, compressed), _CUT
            return
        try:
            raw = decompressor.decompress(compressed, max_output_size=raw_size)
        except zstandard.ZstdError:
            yield offset, _partial(decompressor, compressed), _DAMAGED
            offset = _resync(stream, offset + 1)
            if offset < 0:
                return
            continue
        yield offset, raw, _OK
        offset += BLOCK_HEAD.size + compressed_size


def _partial(decompressor: zstandard.ZstdDecompressor, data: bytes) -> bytes:
    """As much of a cut or damaged zstd frame as decodes (whole zstd blocks)."""
    obj = decompressor.decompressobj()
    out = []
    for start in range(0, len(data), _CHUNK):
        try:
            out.append(obj.decompress(data[start : start + _CHUNK]))
        except zstandard.ZstdError:
            break
    return b"".join(out)


def _resync(stream: BinaryIO, start: int) -> int:
    """Seek to the first block signature at or after ``start``; its offset, or -1."""
    stream.seek(start)
    carry = b""
    position = start
    while chunk := stream.read(_CHUNK):
        window = carry + chunk
        found = window.find(BLOCK_SIGNATURE)
        if found >= 0:
            offset = position - len(carry) + found
            stream.seek(offset)
            return offset
        carry = window[-(len(BLOCK_SIGNATURE) - 1) :]
        position += len(chunk)
    return -1


def _truncated(path: Path, offset: int) -> None:
    log.warning(
        "recording_truncated",
        file=str(path),
        offset=offset,
        summary=f"Recording {path} ends inside the block at byte {offset} (cut short while "
        "written?): replayed up to the cut",
    )


def _damaged(path: Path, offset: int, what: str) -> None:
    log.warning(
        "recording_damaged",
        file=str(path),
        offset=offset,
        error=what,
        summary=f"Recording {path} is damaged at byte {offset} ({what}): replayed what "
        "decodes, going on with the next block",
    )
