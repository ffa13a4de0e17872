"""Trading pairs in the project's canonical ``BASE/QUOTE`` form."""

from __future__ import annotations

import re

import msgspec

_PAIR_RE = re.compile(r"^([A-Z0-9]{1,20})[/_]([A-Z0-9]{1,20})$")

#: quote currencies taken as US dollars one to one
USD_QUOTES = frozenset({"USDT", "USDC", "USD", "FDUSD", "BUSD", "DAI", "TUSD"})


class Pair(msgspec.Struct, frozen=True, order=True):
    """A spot pair such as BTC/USDT; each venue module maps it to its own symbol."""

    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}"


def parse_pair(text: str) -> Pair:
    """Parse ``BASE/QUOTE`` or ``BASE_QUOTE`` (case-insensitive) into a Pair.

    Raises ValueError with a message that says what is accepted.
    """
    match = _PAIR_RE.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"malformed pair {text!r}: write BASE/QUOTE (or BASE_QUOTE) with letters and digits, "
            "e.g. BTC/USDT"
        )
    return Pair(match.group(1), match.group(2))
