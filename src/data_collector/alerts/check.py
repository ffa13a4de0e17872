"""``--test-alerts``: one test message to every target, and which of them took it.

Exit code 0 when every target did, 1 otherwise (also when none is configured: nothing was
tested). Targets are shown as scheme and host only.
"""

from __future__ import annotations

import asyncio

from data_collector.alerts.delivery import DeliverySettings
from data_collector.alerts.messages import probe_message
from data_collector.alerts.sender import TargetSender
from data_collector.alerts.targets import describe_target, quiet_apprise, target_labels
from data_collector.config_schema import AlertsConfig
from data_collector.wording import plural


async def send_test_alerts(config: AlertsConfig, timeout_s: float | None = None) -> int:
    urls = config.targets
    if not urls:
        print("No alert targets configured (alerts.targets is empty): nothing was sent.")
        return 1
    quiet_apprise()
    timeout = timeout_s if timeout_s is not None else DeliverySettings().send_timeout_s
    labels = target_labels(urls)
    senders = [TargetSender(url, label, timeout) for url, label in zip(urls, labels, strict=True)]
    try:
        errors = await asyncio.gather(*(s.send(probe_message()) for s in senders))
    finally:
        for sender in senders:
            sender.close()
    shown = [describe_target(url) for url in urls]
    width = max(len(s) for s in shown)
    print(f"Test alert sent to {plural(len(urls), 'target')}:")
    for name, error in zip(shown, errors, strict=True):
        print(f"  {name:<{width}}  {'ok' if error is None else f'FAILED: {error}'}")
    failed = sum(error is not None for error in errors)
    print("All targets took the test message." if not failed else f"{failed} failed.")
    return 0 if not failed else 1
