"""The personality registry (personalities/__init__.py): one module per venue is enough."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from data_collector.simulator import PERSONALITIES, Simulator, pairs_for
from data_collector.simulator.personalities import discover
from data_collector.simulator.personalities.binance import BinancePersonality
from data_collector.simulator.personalities.bybit import BybitPersonality
from data_collector.simulator.personalities.gateio import GatePersonality
from data_collector.simulator.personalities.mexc import MexcPersonality
from data_collector.simulator.personalities.okx import OkxPersonality
from tests.simulator.clients import connect, gate_subscribe, is_update_for

EXTRA_VENUE = """
from data_collector.simulator.personalities.gateio import GatePersonality


class {cls}(GatePersonality):
    name = "{name}"


PERSONALITY = {cls}
"""


def make_package(root: Path, modules: dict[str, str]) -> str:
    """A package of personality modules under ``root`` (on sys.path); returns its name."""
    name = f"sim_venues_{uuid.uuid4().hex[:8]}"
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / name / f"{module}.py").write_text(source)
    return name


def test_the_shipped_venues_are_registered_by_name() -> None:
    shipped = {
        "binance": BinancePersonality,
        "bybit": BybitPersonality,
        "gateio": GatePersonality,
        "mexc": MexcPersonality,
        "okx": OkxPersonality,
    }
    assert shipped == PERSONALITIES
    assert all(name == cls.name for name, cls in PERSONALITIES.items())


async def test_a_venue_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = make_package(
        tmp_path,
        {
            "zeta": EXTRA_VENUE.format(cls="Zeta", name="zeta"),
            "_shared": "HELPERS = True\n",  # a helper module: skipped
        },
    )
    found = discover(package)
    assert list(found) == ["zeta"]
    monkeypatch.setitem(PERSONALITIES, "zeta", found["zeta"])
    async with Simulator(pairs_for(2), rate_hz=20, venues=("zeta",)) as sim:
        client = await connect(sim.urls["zeta"])
        gate_subscribe(client, "BTC_USDT")
        await client.until(is_update_for("BTC_USDT"))


def test_a_module_without_a_personality_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    missing = make_package(tmp_path, {"empty": "VALUE = 1\n"})
    with pytest.raises(TypeError, match=r"\.empty must define PERSONALITY"):
        discover(missing)
    twice = EXTRA_VENUE.format(cls="Again", name="gateio")
    clash = make_package(tmp_path, {"a": twice, "b": twice})
    with pytest.raises(TypeError, match="two simulator personalities are named 'gateio'"):
        discover(clash)


def test_an_unknown_venue_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown venue\(s\) \['nope'\]; choose from"):
        Simulator(pairs_for(1), venues=("nope",))
