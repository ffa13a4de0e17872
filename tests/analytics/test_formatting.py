"""Numbers for humans in the analytics' wording."""

from __future__ import annotations

from data_collector.analytics.formatting import (
    format_amount,
    format_money,
    format_pct,
    format_price,
    format_qty,
)


def test_format_price() -> None:
    assert format_price(149.75) == "149.75"
    assert format_price(152.0) == "152.00"
    assert format_price(65000.1 - 65000.0) == "0.10"
    assert format_price(123456789.0) == "123456789.00"
    assert format_price(0.0000012345678912) == "0.0000012345679"


def test_format_qty_money_and_pct() -> None:
    assert format_qty(5000000.0) == "5000000"
    assert format_qty(0.000012345678912) == "0.000012345679"
    assert format_qty(None) == format_qty(float("nan")) == "n/a"
    assert format_money(2.25, "USDT") == "$2.25"
    assert format_money(0.0001, "BTC") == "0.0001 BTC"
    assert format_pct(1.23456) == "1.2346%"
    assert format_pct(None) == "n/a"


def test_format_amount_is_money_to_the_cent_or_six_digits() -> None:
    assert format_amount(1025.2149, "USDT") == "$1,025.21"
    assert format_amount(3.5569, "USDC") == "$3.56"
    assert format_amount(0.0034123, "USDT") == "$0.003412"
    assert format_amount(-0.5, "USDT") == "-$0.5"
    assert format_amount(-2.0, "USDT") == "-$2.00"
    assert format_amount(0.000612345678, "BTC") == "0.000612346 BTC"
    assert format_amount(None, "USDT") == format_amount(float("inf"), "USDT") == "n/a"
