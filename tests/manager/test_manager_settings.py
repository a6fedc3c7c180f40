"""The manager settings: lists from the environment, warning <= critical, known scenarios only."""

from __future__ import annotations

import pytest

from insights_core.errors import ConfigError
from insights_core.settings import load_settings


def test_lists_and_pairs_are_read_from_text() -> None:
    settings = load_settings(
        INSIGHTS_FATIGUE_FREQUENCY="2, 3",
        INSIGHTS_STUB_SCENARIOS="fatigue,anomaly",
        INSIGHTS_ALERT_EMAIL_TO="a@example.com, b@example.com",
    )
    assert settings.fatigue_frequency == (2.0, 3.0)
    assert settings.stub_scenarios == ("fatigue", "anomaly")
    assert settings.alert_email_to == ("a@example.com", "b@example.com")
    assert settings.fatigue_ctr_drop_percent == (15.0, 25.0) and settings.pacing_tolerance_percent == 15.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INSIGHTS_FATIGUE_CPM_RISE_PERCENT": "30,20"}, "INSIGHTS_FATIGUE_CPM_RISE_PERCENT: two numbers"),
        ({"INSIGHTS_STUB_SCENARIOS": "overpacing,meteor"}, "scenarios are overpacing, fatigue, anomaly; got meteor"),
        ({"INSIGHTS_ANOMALY_BASELINE_WEEKS": "2"}, "INSIGHTS_ANOMALY_BASELINE_WEEKS"),
        ({"INSIGHTS_FORECAST_HORIZON_DAYS": "60"}, "INSIGHTS_FORECAST_HORIZON_DAYS"),
    ],
)
def test_bad_values_fail_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(**env)
    assert "\n" not in str(caught.value)


def test_the_webhook_url_and_smtp_password_are_secrets() -> None:
    settings = load_settings(
        INSIGHTS_ALERT_WEBHOOK_URL="https://hooks.example/T0/B0/xyz", INSIGHTS_ALERT_SMTP_PASSWORD="pw"
    )
    assert "https://hooks.example/T0/B0/xyz" in settings.secret_values() and "pw" in settings.secret_values()
    assert "xyz" not in repr(settings)
