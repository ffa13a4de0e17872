"""Numbers for humans, shared by everything that words the analytics' records.

* Prices keep 8 significant digits (more when the integer part is longer), no exponent, and at
  least two decimals: ``149.75``, ``152.00``, ``65000.10``, ``0.00001234``.
* A per-unit amount is written ``$2.25`` for dollar-quoted pairs and ``0.0001 BTC`` otherwise.
* A sum of money (a profit) is written to the cent in dollars (4 significant digits below a
  dollar) and to 6 significant digits in other currencies: ``$1,025.21``, ``$0.003412``,
  ``-$0.50``, ``0.00061234 BTC``.
"""

from __future__ import annotations

import math

import numpy as np

from data_collector.pairs import USD_QUOTES


def format_price(value: float) -> str:
    """A price for humans: 8 significant digits (never rounding the integer part), positional,
    at least two decimals."""
    if not math.isfinite(value):
        return "n/a"
    digits = 8
    if abs(value) >= 1.0:
        digits = max(digits, int(math.log10(abs(value))) + 3)
    text = np.format_float_positional(
        value, precision=digits, unique=True, fractional=False, trim="-"
    )
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def format_qty(value: float | None) -> str:
    """A quantity for humans: up to 8 significant digits, positional, no padding."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return _significant(value, 8)


def format_money(value: float, quote: str) -> str:
    """A per-unit price difference in a pair's quote currency: ``$2.25`` or ``0.0001 BTC``."""
    if quote in USD_QUOTES:
        return f"${format_price(value)}"
    return f"{format_price(value)} {quote}"


def format_amount(value: float | None, quote: str) -> str:
    """A sum of money in a pair's quote currency (see the module's rules)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if quote not in USD_QUOTES:
        return f"{sign}{_significant(size, 6)} {quote}"
    return f"{sign}${size:,.2f}" if size >= 1.0 else f"{sign}${_significant(size, 4)}"


def _significant(value: float, digits: int) -> str:
    return np.format_float_positional(
        value, precision=digits, unique=True, fractional=False, trim="-"
    )


def format_pct(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}%"


def format_duration(seconds: float) -> str:
    """``6.0s``, ``2m05s``, ``1h02m``, ``3d04h``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
