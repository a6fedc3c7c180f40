"""Settings and request validation: bad input gives one clear line naming what to fix."""

from __future__ import annotations

import pytest

from insights_core.errors import ConfigError, InputError
from insights_core.settings import load_settings
from insights_core.sync_requests import parse_days_back, parse_entity_ids, parse_sync_request


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (
        s.mode,
        s.sync_interval_minutes,
        s.sync_enabled,
        s.rate_limit_retry_delay,
        s.max_retries,
        s.max_days_back,
        s.report_runs_in_flight,
        s.lookback_days,
    ) == ("stub", 30, True, 60, 3, 365, 5, 28)
    assert s.graph_url == "https://graph.facebook.com"
    assert s.conversion_action_types[0] == "omni_purchase"


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("INSIGHTS_SYNC_INTERVAL_MINUTES=15\nMETA_AD_ACCOUNT_IDS=123, act_456\n")
    monkeypatch.setenv("INSIGHTS_LOOKBACK_DAYS", "7")
    s = load_settings()
    assert s.sync_interval_minutes == 15 and s.lookback_days == 7
    assert s.ad_account_ids == ("act_123", "act_456")


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("META_INSIGHTS_MODE", "production", "META_INSIGHTS_MODE"),
        (
            "INSIGHTS_SYNC_INTERVAL_MINUTES",
            "0",
            "INSIGHTS_SYNC_INTERVAL_MINUTES: Input should be greater than or equal to 1",
        ),
        ("INSIGHTS_SYNC_INTERVAL_MINUTES", "half an hour", "INSIGHTS_SYNC_INTERVAL_MINUTES"),
        ("INSIGHTS_SYNC_ENABLED", "maybe", "INSIGHTS_SYNC_ENABLED"),
        ("META_API_MAX_RETRIES", "-1", "META_API_MAX_RETRIES"),
        ("INSIGHTS_BACKFILL_DAYS", "400", "must not exceed INSIGHTS_MAX_DAYS_BACK"),
        ("META_AD_ACCOUNT_IDS", "act_12,my-account", "ad account ids look like act_1234567890"),
        ("META_GRAPH_URL", "graph.facebook.com", "META_GRAPH_URL: must start with http"),
        ("META_CONVERSION_ACTION_TYPES", " , ", "META_CONVERSION_ACTION_TYPES: at least one action type"),
    ],
)
def test_bad_values_stop_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert expected in message


def test_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(META_ACCESS_TOKEN="EAAB" + "x" * 30, META_APP_SECRET="s3cr3t-value")
    assert s.secret_values() == ["EAAB" + "x" * 30, "s3cr3t-value"]
    assert "xxxx" not in repr(s) and "s3cr3t" not in repr(s)


def test_live_mode_names_missing_credentials() -> None:
    s = load_settings(META_INSIGHTS_MODE="live")
    with pytest.raises(ConfigError, match="META_ACCESS_TOKEN and META_AD_ACCOUNT_IDS"):
        s.require_live_credentials()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"days_back": 0}, "days back must be from 1 to 365"),
        ({"days_back": 366}, "days back must be from 1 to 365"),
        ({"days_back": "ten"}, "whole number"),
        ({"days_back": True}, "whole number"),
        ({"entity_type": "account", "entity_ids": "1"}, "entity type must be one of campaign, adset, ad"),
        ({"entity_ids": "123"}, "entity ids need an entity type"),
        ({"entity_type": "ad"}, "needs at least one entity id"),
        ({"entity_type": "ad", "entity_ids": "1; DROP TABLE meta_ad_insights"}, "not a Meta object id"),
        ({"entity_type": "ad", "entity_ids": "1' OR '1'='1"}, "not a Meta object id"),
        ({"force": "yes"}, "force must be true or false"),
        ({"entity_type": "ad", "entity_ids": "\u0661\u0662\u0663"}, "not a Meta object id"),
        ({"entity_type": "ad", "entity_ids": "12\uff13"}, "not a Meta object id"),
        ({"days_back": "\u0663"}, "whole number"),
        ({"days_back": "1_0"}, "whole number"),
    ],
)
def test_bad_sync_requests_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_sync_request(max_days_back=365, **fields)


def test_good_sync_request_is_normalized() -> None:
    request = parse_sync_request(
        max_days_back=365, days_back=" 7 ", entity_type="campaign", entity_ids="123, 456,123,\n789", force=True
    )
    assert request.days_back == 7
    assert request.entity_ids == ("123", "456", "789")
    assert request.force is True and request.sync_type == "manual"


@pytest.mark.parametrize("raw", ["\u0661\u0662", "\uff17", "1\u0663"])
def test_other_scripts_digits_get_one_message_from_every_door(raw: str) -> None:
    """The CLI, the Sync page, the Timeline's days box and the id boxes share these checks and lines."""
    with pytest.raises(InputError, match=r"^days back must be a whole number from 1 to 365 \(digits 0-9\)"):
        parse_days_back(raw, 365)
    with pytest.raises(InputError, match=r"^campaign id '.+' is not a Meta object id \(digits 0-9 only\)$"):
        parse_entity_ids(raw, what="campaign id")


def test_days_back_is_the_same_number_from_text_a_link_or_json() -> None:
    assert parse_days_back(" 30 ", 365) == parse_days_back(30, 365) == parse_days_back(30.0, 365) == 30
    with pytest.raises(InputError, match="from 1 to 90 \\(INSIGHTS_MAX_DAYS_BACK\\), got 91"):
        parse_days_back("91", 90)


def test_entity_id_list_is_bounded() -> None:
    with pytest.raises(InputError, match="at most 500"):
        parse_entity_ids(",".join(str(i) for i in range(501)))


def test_every_setting_is_documented_in_the_readme() -> None:
    from insights_core.settings import Settings, settings_table_markdown
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    missing = [f.alias for f in Settings.model_fields.values() if f.alias not in readme]
    assert missing == []
    table = readme.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert table == settings_table_markdown(), "regenerate with: python -m insights_core.settings"


def test_cookie_key_counts_as_a_secret() -> None:
    s = load_settings(INSIGHTS_COOKIE_KEY="k" * 40)
    assert "k" * 40 in s.secret_values()


def test_a_data_dir_that_is_a_file_or_not_writable_is_refused_before_anything_is_written(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insights_core.datadir import check_data_dir
    from insights_core.errors import ConfigError

    afile = tmp_path / "data"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_data_dir(afile)
    with pytest.raises(ConfigError, match="cannot be created"):
        check_data_dir(afile / "sub")
    monkeypatch.setattr("insights_core.datadir.os.access", lambda *_args, **_kwargs: False)
    with pytest.raises(ConfigError, match="is not writable"):
        check_data_dir(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_the_lake_store_needs_its_catalog_and_data_path() -> None:
    with pytest.raises(ConfigError, match="INSIGHTS_CATALOG_URL and INSIGHTS_LAKE_DATA_PATH"):
        load_settings(INSIGHTS_STORE="ducklake")
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings(INSIGHTS_STORE="ducklake", INSIGHTS_CATALOG_URL="mysql://x", INSIGHTS_LAKE_DATA_PATH="/lake")
    s = load_settings(
        INSIGHTS_STORE="ducklake", INSIGHTS_CATALOG_URL="postgresql://u:pw@h/db", INSIGHTS_LAKE_DATA_PATH="/lake"
    )
    assert "postgresql://u:pw@h/db" in s.secret_values()
    assert load_settings().store == "duckdb"
