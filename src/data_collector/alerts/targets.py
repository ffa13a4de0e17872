"""Alert target URLs: checked with apprise, shown without their secrets, named for metrics.

A URL carries its service's secrets (a bot token, a webhook path, a password), often in the
place a URL keeps its host (``tgram://TOKEN/CHAT``). So a target is only ever shown as its
scheme and its host when the host is a real network name (``mailto://gmail.com``,
``json://127.0.0.1``), else as ``tgram://***``; its metric label is its scheme.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

HIDDEN = "***"
#: a DNS name: labels of at most 63 characters, the last one a real top-level domain (letters,
#: or punycode). A token in the host's place may have dots too (a Pushbullet access token is
#: ``o.`` and 32 letters and digits): its last label has digits or runs longer than any TLD.
_HOSTNAME = re.compile(r"^([A-Za-z0-9-]{1,63}\.)+([A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(url: str) -> str:
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else "?"


def describe_target(url: str) -> str:
    """``scheme://host`` where the host is a network name, else ``scheme://***``."""
    host = _network_host(url)
    return f"{scheme_of(url)}://{host if host else HIDDEN}"


def _network_host(url: str) -> str | None:
    """The URL's host when it is a DNS name or an IP address (not a token in its place)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or _HOSTNAME.match(host):
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def target_labels(urls: Sequence[str]) -> list[str]:
    """Metric labels: the scheme, numbered from the second target of the same scheme on."""
    seen: dict[str, int] = {}
    labels = []
    for url in urls:
        scheme = scheme_of(url)
        seen[scheme] = seen.get(scheme, 0) + 1
        labels.append(scheme if seen[scheme] == 1 else f"{scheme}-{seen[scheme]}")
    return labels


def quiet_apprise() -> None:
    """apprise and the HTTP library under it log full URLs (tokens included) on failure;
    alerts report every outcome themselves, without the secret."""
    for name in ("apprise", "urllib3"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False


def load_target(url: str, timeout_s: float) -> Any:
    """An ``apprise.Apprise`` holding this one target, its sockets bounded by ``timeout_s``;
    None when apprise does not recognise the URL. Blocking (loads apprise's plugins): call it
    off the event loop."""
    import apprise

    quiet_apprise()
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return None
    plugin.socket_connect_timeout = timeout_s
    plugin.socket_read_timeout = timeout_s
    bundle = apprise.Apprise()
    bundle.add(plugin)
    return bundle


def target_error(url: str) -> str | None:
    """Why apprise cannot use this target URL (worded without the URL), or None."""
    if not url.strip():
        return "empty; write an apprise URL such as json://host/path or tgram://TOKEN/CHAT"
    if load_target(url, 1.0) is None:
        return (
            f"apprise does not recognise this {scheme_of(url)}:// URL (value hidden: it may "
            "hold a secret); see the apprise wiki for the service's URL format"
        )
    return None
