"""The alerts of one collector: records in (analytics, venue and pair events), messages out
to every configured target.

:class:`Alerts` is an analytics :class:`RecordConsumer` and an :class:`AlertSink`; it words
each record, asks the policy, and hands the message to each target's delivery, which sends it
from its own worker. Its counters feed ``/metrics``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from data_collector.alerts.delivery import DeliverySettings, TargetDelivery
from data_collector.alerts.events import AlertRecord
from data_collector.alerts.messages import word
from data_collector.alerts.policy import AlertPolicy
from data_collector.alerts.sender import TargetSender
from data_collector.alerts.targets import describe_target, quiet_apprise, target_labels
from data_collector.analytics.records import OpportunityClosed, OpportunityOpened, RecordConsumer
from data_collector.config_schema import AlertsConfig
from data_collector.lifecycle import cancel_all, watched

log = structlog.get_logger("data_collector.alerts")


@dataclass(frozen=True, slots=True)
class AlertCounters:
    """Alerts per target label: delivered, given up on; dropped from full queues (all)."""

    sent: dict[str, int]
    failed: dict[str, int]
    dropped: int


class Alerts(RecordConsumer):
    def __init__(
        self,
        config: AlertsConfig,
        *,
        settings: DeliverySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        quiet_apprise()
        self.settings = settings or DeliverySettings()
        self.policy = AlertPolicy(
            config.events,
            min_net_pct=config.min_net_pct,
            cooldown_s=config.cooldown_s,
            clock=clock,
        )
        labels = target_labels(config.targets)
        self.deliveries = [
            TargetDelivery(
                TargetSender(url, label, self.settings.send_timeout_s),
                label=label,
                shown=describe_target(url),
                settings=self.settings,
                clock=clock,
            )
            for url, label in zip(config.targets, labels, strict=True)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def targets(self) -> Sequence[str]:
        """The targets as they may be shown: scheme and host, no secret."""
        return [d.shown for d in self.deliveries]

    def opened(self, record: OpportunityOpened) -> None:
        self.publish(record)

    def closed(self, record: OpportunityClosed) -> None:
        self.publish(record)

    def publish(self, record: AlertRecord) -> None:
        """Queue the record's message for every target, if the policy lets it through."""
        alert = word(record)
        if self.policy.admit(record, alert):
            for delivery in self.deliveries:
                delivery.enqueue(alert)

    def start(self) -> None:
        self._tasks = [watched(d.run(), f"alerts-{d.label}") for d in self.deliveries]
        log.info(
            "alerts_started",
            targets=list(self.targets),
            events=sorted(self.policy.events),
            summary=f"[ALERTS] Sending {', '.join(sorted(self.policy.events))} to "
            f"{', '.join(self.targets)}",
        )

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
        unsent = sum(len(d.pending) for d in self.deliveries)
        for delivery in self.deliveries:
            delivery.sender.close()
        if unsent:
            log.warning("alerts_not_sent", count=unsent, summary=f"[ALERTS] {unsent} not sent")

    def counters(self) -> AlertCounters:
        return AlertCounters(
            sent={d.label: d.sent for d in self.deliveries},
            failed={d.label: d.failed for d in self.deliveries},
            dropped=sum(d.dropped for d in self.deliveries),
        )
