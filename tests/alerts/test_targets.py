"""Target URLs: shown as scheme and host only, named by scheme, checked by apprise."""

from __future__ import annotations

import pytest

from data_collector.alerts.targets import describe_target, target_error, target_labels

SECRET = "S3cr3tT0k3n"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"tgram://123456789:{SECRET}/987654321", "tgram://***"),
        (f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}/#alerts", "slack://***"),
        (f"discord://4174216298/{SECRET}", "discord://***"),
        (
            f"mailtos://alerts:{SECRET}@smtp.example.com?to=desk@example.com",
            "mailtos://smtp.example.com",
        ),
        (f"json://user:{SECRET}@127.0.0.1:8080/hook/{SECRET}", "json://127.0.0.1"),
        (f"jsons://hooks.example.com/{SECRET}?token={SECRET}", "jsons://hooks.example.com"),
        (f"json://localhost/{SECRET}", "json://localhost"),
        # tokens with dots where a host would be: a Pushbullet access token, a JWT
        (f"pbul://o.{SECRET}9aB3xYz", "pbul://***"),
        (f"pbul://o.{SECRET}/device", "pbul://***"),
        (f"json://eyJhbGciOi.eyJzdWIiOi.{SECRET}/hook", "json://***"),
        (f"ntfys://ntfy.sh/{SECRET}", "ntfys://ntfy.sh"),
        (f"json://xn--bcher-kva.example/{SECRET}", "json://xn--bcher-kva.example"),
        (f"JSON://[::1]:99/{SECRET}", "json://::1"),
        ("not a url", "?://***"),
    ],
)
def test_a_target_is_shown_without_its_secret(url: str, shown: str) -> None:
    assert describe_target(url) == shown
    assert SECRET not in describe_target(url)


def test_metric_labels_are_schemes_numbered_when_repeated() -> None:
    urls = ["json://a.example/1", "tgram://x/y", "json://b.example/2", "json://c.example/3"]
    assert target_labels(urls) == ["json", "tgram", "json-2", "json-3"]


def test_apprise_checks_the_url_without_echoing_it() -> None:
    assert target_error("json://127.0.0.1:9/hook") is None
    assert target_error(f"tgram://123456789:{SECRET}/987654321") is None
    error = target_error(f"nosuchservice://{SECRET}@host/x")
    assert error is not None and "nosuchservice://" in error and SECRET not in error
    assert target_error("  ") is not None
