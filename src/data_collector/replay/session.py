"""``--replay``: a collector whose feeds are a recording.

The same parts as a live collector (cache, the manager's feeds with the venue parsers,
snapshot scheduler, writer into the configured database or none with ``--dry-run``,
analytics and their log events), built the same way; only the links replay the recording
(:mod:`data_collector.replay.links`) and the clock is the recording's
(:mod:`data_collector.replay.runner`). A replay records nothing, serves no monitoring
endpoint (it may run beside the live collector) and stops by itself at the end of the
recording or of ``--until``; it sends no alert (the events are past).
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from data_collector.collector import Collector
from data_collector.config import Config
from data_collector.config_schema import AlertsConfig, RecordConfig
from data_collector.lifecycle import run_on_uvloop
from data_collector.manager import LinkFactory
from data_collector.recording.format import CLOCK_ANALYTICS, CLOCK_SNAPSHOT
from data_collector.recording.reader import merge, read_records, select
from data_collector.recording.recorder import seconds_ns
from data_collector.replay.links import ReplayLinks
from data_collector.replay.options import ReplayOptions
from data_collector.replay.runner import Replayer, ReplayReport, VirtualClock, Window
from data_collector.replay.ticks import Grid
from data_collector.runner import run_until_stopped

log = structlog.get_logger("data_collector.replay")

#: rows the writer may hold before a replay waits for it (while the database is up)
WRITER_BACKLOG_MAX = 50_000
WRITER_POLL_S = 0.01


class ReplayCollector(Collector):
    """A :class:`Collector` fed by a recording on a virtual clock."""

    def __init__(self, config: Config, options: ReplayOptions, *, dry_run: bool = False) -> None:
        replay_config = msgspec.structs.replace(
            config,
            record=RecordConfig(),  # it would record itself
            alerts=AlertsConfig(),  # past events notify nobody
            # no /health, /metrics, dashboard: the port may be the live collector's
            monitoring=msgspec.structs.replace(config.monitoring, enabled=False),
        )
        super().__init__(replay_config, dry_run=dry_run)
        self.options = options
        self.virtual = VirtualClock()
        self.clock = self.virtual.time
        self.clock_ns = self.virtual.time_ns
        self.links = ReplayLinks()
        self.report: ReplayReport | None = None

    def _start_tasks(self) -> None:
        self._tasks.start(self._replay(), "replay", finite=True)

    def _link_factory(self) -> LinkFactory:
        return self.links.make

    async def _replay(self) -> None:
        options, dc = self.options, self.config.data_collector
        streams = [
            read_records(venue, select(files, options.from_ns, options.until_ns))
            for venue, files in options.files.items()
            if venue in dc.exchanges
        ]
        grids = [
            Grid(CLOCK_SNAPSHOT, seconds_ns(dc.snapshot_interval)),
            Grid(
                CLOCK_ANALYTICS,
                seconds_ns(dc.analytics_interval),
                seconds_ns(dc.snapshot_interval / 2),
            ),
        ]
        replayer = Replayer(
            merge(streams),
            self.links,
            grids,
            clock=self.virtual,
            capture=self.scheduler.capture,
            summarize=self.summarize,
            window=Window(options.from_ns, options.until_ns),
            speed=options.speed,
            wait_for_writer=self._writer_room if self.writer is not None else None,
        )
        speed = "max" if options.speed is None else f"{options.speed:g}x"
        log.info(
            "replay_started",
            dir=str(options.directory),
            venues=list(options.files),
            speed=speed,
            summary=f"Replaying {options.directory} ({', '.join(options.files)}) at {speed}",
        )
        self.report = await replayer.run()
        _log_finished(self.report)
        self.stop()

    async def _writer_room(self) -> None:
        """Let a replay at full speed wait while the writer catches up (database up)."""
        writer = self.writer
        assert writer is not None
        while True:
            stats = writer.stats
            if stats.backlog_rows <= WRITER_BACKLOG_MAX or stats.state == "down":
                return
            await asyncio.sleep(WRITER_POLL_S)


def _log_finished(report: ReplayReport) -> None:
    rate = report.frames / report.wall_s if report.wall_s > 0 else 0.0
    span = max(report.last_ns - report.first_ns, 0) / 1e9
    if not report.snapshots:
        log.warning(
            "replay_empty",
            summary="Replay: no recorded snapshot second in the window: nothing captured "
            "(check --from and --until against the recording's hours)",
        )
    log.info(
        "replay_finished",
        frames=report.frames,
        events=report.events,
        snapshots=report.snapshots,
        summaries=report.summaries,
        recorded_s=round(span, 3),
        wall_s=round(report.wall_s, 3),
        frames_per_s=round(rate),
        summary=f"Replay finished: {report.frames} frames, {report.snapshots} snapshots over "
        f"{span:.1f} s of recording in {report.wall_s:.1f} s ({rate:,.0f} frames/s)",
    )


def run_replay(
    config: Config,
    options: ReplayOptions,
    *,
    dry_run: bool = False,
    duration: float | None = None,
) -> int:
    """Blocking entry point for the CLI; returns the process exit code."""
    collector = ReplayCollector(config, options, dry_run=dry_run)
    return run_on_uvloop(run_until_stopped(collector, duration))
