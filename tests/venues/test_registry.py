"""Every registered venue fulfils the contract, has byte-exact parser fixtures and a simulator
personality: adding a venue to ``data_collector.venues.VENUES`` without them fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import data_collector.venues as venues_package
from data_collector.connection import ConnectionSettings, keepalive_for
from data_collector.pairs import Pair
from data_collector.simulator import PERSONALITIES
from data_collector.venues import VENUES, discover, get_venue
from data_collector.venues.base import (
    Keepalive,
    Malformed,
    Pong,
    QuoteUpdate,
    SubscribeResult,
    Venue,
)
from tests.venues import samples

NAMES = sorted(VENUES)
BTC_USDT = Pair("BTC", "USDT")


@pytest.fixture(params=NAMES)
def venue(request: pytest.FixtureRequest) -> Venue:
    return get_venue(request.param)


def test_registry_keys_are_the_venues_names(venue: Venue) -> None:
    assert VENUES[venue.name] is venue
    assert venue.name == venue.name.lower() and venue.name.isidentifier()


def test_attributes_are_usable(venue: Venue) -> None:
    assert venue.default_url.startswith("wss://")
    assert venue.ping_interval > 0
    cap = venue.max_subscriptions_per_connection
    assert cap is None or cap > 0
    lifetime = venue.max_connection_lifetime
    assert lifetime is None or lifetime > 0


def test_the_keepalive_style_and_the_ping_message_agree(venue: Venue) -> None:
    """An application ping exactly when the style sends one: the connection layer builds the
    keepalive from the declaration and asks the venue for the text."""
    message = venue.ping_message(1_700_000_000.0)
    if venue.keepalive is Keepalive.SERVER_PINGS:
        assert message is None
    else:
        assert isinstance(message, str) and message


def test_a_control_budget_is_usable(venue: Venue) -> None:
    budget = venue.control_budget
    assert budget is None or (budget.messages >= 1 and budget.per_seconds > 0)


def test_subscribe_messages_name_the_symbols(venue: Venue) -> None:
    symbols = [venue.symbol(BTC_USDT), venue.symbol(Pair("ETH", "USDT"))]
    text = "".join(venue.subscribe_messages(symbols, 1_700_000_000.0))
    assert all(s.lower() in text.lower() for s in symbols)  # Binance streams are lowercase
    assert venue.subscribe_messages([], 1_700_000_000.0) == []


def test_parse_never_raises_on_a_non_buffer(venue: Venue) -> None:
    assert isinstance(venue.parse(None), Malformed)  # type: ignore[arg-type]


def _expects_pong(venue: Venue) -> bool:
    """A venue answers its application ping with a pong (none without an application ping)."""
    return bool(venue.ping_message(1_700_000_000.0))


def test_fixtures_cover_a_quote_a_subscribe_ack_and_a_pong(venue: Venue) -> None:
    frames = samples.frames(venue.name)
    assert frames, f"no fixtures: add byte-exact frames under tests/fixtures/{venue.name}/"
    kinds = {type(venue.parse(data)) for data in frames.values()}
    assert QuoteUpdate in kinds, f"{venue.name}: no fixture of a quote frame"
    assert SubscribeResult in kinds, f"{venue.name}: no fixture of a subscribe ack"
    if _expects_pong(venue):
        assert Pong in kinds, f"{venue.name}: no fixture of the pong"


def test_every_fixture_is_recognised(venue: Venue) -> None:
    for name, data in samples.frames(venue.name).items():
        assert not isinstance(venue.parse(data), Malformed), f"{venue.name}/{name}"


def test_fixture_folders_belong_to_registered_venues() -> None:
    folders = {p.name for p in samples.FIXTURES.iterdir() if p.is_dir()}
    assert folders <= set(VENUES), f"fixtures of unregistered venues: {folders - set(VENUES)}"


def test_every_venue_has_a_simulator_personality() -> None:
    missing = set(VENUES) - set(PERSONALITIES)
    assert not missing, f"no simulator personality for {sorted(missing)}"


def _package(root: Path, name: str, modules: dict[str, str]) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, text in modules.items():
        (package / f"{module}.py").write_text(text)
    return name


def test_discovery_finds_each_venue_module_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    alpha = (
        "from data_collector.venues.mexc import Mexc\n\n"
        "class Alpha(Mexc):\n    name = 'alpha'\n\n"
        "VENUE = Alpha\n"
    )
    found = discover(_package(tmp_path, "six_venues", {"alpha": alpha, "base": "", "_x": ""}))
    assert list(found) == ["alpha"] and type(found["alpha"]).__name__ == "Alpha"
    bare = _package(tmp_path, "bare_venues", {"beta": "NOTHING = 1\n"})
    with pytest.raises(TypeError, match=r"bare_venues\.beta must define VENUE"):
        discover(bare)


def test_the_registry_is_every_venue_module_of_the_package() -> None:
    package = Path(venues_package.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "base"}
    assert set(VENUES) == modules


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_venue_row(venue: Venue) -> list[str] | None:
    """The cells of the README venue table's row for ``venue`` (None: no row)."""
    for line in README.read_text().splitlines():
        if line.startswith(f"| {venue.display_name} (`{venue.name}`) |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    return None


def test_the_readme_states_the_ping_period_the_connection_layer_uses(venue: Venue) -> None:
    """The keepalive column names the period the watchdog really pings at with the default
    settings: the venue's interval, capped at half of ``silence_timeout``."""
    row = _readme_venue_row(venue)
    if row is None or venue.keepalive is Keepalive.SERVER_PINGS:
        return
    keepalive = keepalive_for(venue.keepalive, venue.ping_message, venue.ping_interval)
    period = keepalive.next_ping(0.0, 0.0, ConnectionSettings().silence_timeout / 2)
    stated = [float(n) for n in re.findall(r"(\d+(?:\.\d+)?) s\b", row[4])]
    assert stated and stated[0] == period, f"{venue.name}: README says {row[4]!r}"
