"""A link's log lines: each event with its fields and the sentence people read on the console.

Links are named ``<venue>-<n>`` (``gateio-0``); every sentence starts with that name, as the
rest of the connection lines do (``gateio-0: connection lost (silence)``).
"""

from __future__ import annotations

import structlog

log = structlog.get_logger("data_collector.connection.link")


def opened(link: str, transport: int, url: str, *, rotation: bool, reconnect: bool) -> None:
    if rotation:
        what = "opened a replacement connection to"
    else:
        what = "reconnected to" if reconnect else "connected to"
    log.info(
        "connection_opened",
        link=link,
        transport=transport,
        url=url,
        rotation=rotation,
        reconnect=reconnect,
        summary=f"{link}: {what} {url}",
    )


def lost(link: str, transport: int, reason: str) -> None:
    log.warning(
        "connection_lost",
        link=link,
        transport=transport,
        reason=reason,
        summary=f"{link}: connection lost ({reason})",
    )


def rotated(link: str, old: int, new: int, *, ready: bool, overlap: float) -> None:
    unconfirmed = "" if ready else ", before the venue confirmed it"
    log.info(
        "connection_rotated",
        link=link,
        old_transport=old,
        new_transport=new,
        ready=ready,
        overlap=overlap,
        summary=f"{link}: moved to its new connection{unconfirmed} "
        f"(both open for {overlap:.1f} s, no quote missed)",
    )


def rotation_failed(link: str, reason: str, retry_in: float) -> None:
    log.warning(
        "rotation_failed",
        link=link,
        reason=reason,
        retry_in=retry_in,
        summary=f"{link}: the replacement connection failed ({reason}); the current one "
        f"carries on, next try in {retry_in:.1f} s",
    )


def rotation_requested(link: str, transport: int, reason: str) -> None:
    # Debug: the caller already said why at info level or above (venue_restart_notice).
    log.debug("rotation_requested", link=link, transport=transport, reason=reason)


def close_timeout(link: str, seconds: float) -> None:
    log.warning(
        "link_close_timeout",
        link=link,
        summary=f"{link}: connections still open {seconds:g} s after closing; moving on",
    )


def crashed(link: str, exc: BaseException) -> None:
    log.error(
        "link_crashed",
        link=link,
        error=repr(exc),
        exc_info=exc,
        summary=f"{link}: supervisor crashed ({exc!r}), restarting",
    )


def lost_handler_failed(link: str) -> None:
    """Call from an ``except`` block: the traceback follows the line."""
    log.exception(
        "lost_handler_failed",
        link=link,
        summary=f"{link}: telling its owner about the lost connection failed",
    )
