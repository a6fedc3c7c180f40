"""Pure transforms of live mode, on payloads in the Graph API's shape (tests/fixtures/live/)."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from insights_core.errors import MalformedPayloadError
from insights_core.models import BREAKDOWN_SOURCE_COLUMNS, INSIGHT_SOURCE_COLUMNS, Account, DateWindow
from insights_core.settings import DEFAULT_CONVERSION_ACTION_TYPES
from insights_core.sources.live.transform import (
    RowError,
    account_from_json,
    breakdown_rows,
    budget_amount,
    conversions_of,
    entity_frame,
    insight_rows,
    parse_number,
    targeting_columns,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "live"
NOVEMBER = DateWindow(dt.date(2026, 11, 1), dt.date(2026, 11, 3))
ACCOUNT = Account("act_5550001", "Emulated Store", "USD", "America/Los_Angeles")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_ad_rows_count_one_purchase_type_and_keep_unknown_reach_null() -> None:
    parsed = insight_rows(
        load("insights_ad_page.json")["data"], "ad", ACCOUNT.account_id, NOVEMBER, DEFAULT_CONVERSION_ACTION_TYPES
    )
    assert parsed.failures == {} and parsed.unattributed == []
    rows = parsed.rows
    assert list(rows.columns) == list(INSIGHT_SOURCE_COLUMNS)
    got = {(r.entity_id, r.date_start.date()): r for r in rows.itertuples()}
    first = got[("238530000000000001", dt.date(2026, 11, 1))]
    # omni_purchase comes first in the preference: 3 purchases, 212.40 — not 3+3+2 and 566.40
    assert (first.spend, first.impressions, first.clicks, first.conversions, first.revenue) == (
        41.27,
        5120,
        87,
        3,
        212.40,
    )
    assert (first.reach, first.unique_clicks, first.frequency) == (4377, 80, 1.169751)
    assert (first.campaign_id, first.adset_id, first.ad_id, first.account_id) == (
        "238510000000000001",
        "238520000000000001",
        "238530000000000001",
        "act_5550001",
    )
    second = got[("238530000000000001", dt.date(2026, 11, 2))]
    assert (second.conversions, second.revenue) == (2, 99.90)  # no omni_purchase: purchase is next
    no_actions = got[("238530000000000002", dt.date(2026, 11, 1))]
    assert (no_actions.conversions, no_actions.revenue, no_actions.clicks) == (0, 0, 0)
    pixel_only = got[("238530000000000002", dt.date(2026, 11, 2))]
    assert (pixel_only.conversions, pixel_only.revenue) == (1, 18.50)  # the custom 41 / 999.99 are ignored
    assert pd.isna(pixel_only.reach) and pd.isna(pixel_only.frequency)
    assert rows["reach"].isna().sum() == 1 and rows["frequency"].isna().sum() == 1


def test_every_malformed_row_fails_its_entity_with_the_field_and_the_day() -> None:
    parsed = insight_rows(
        load("insights_malformed.json")["data"], "ad", ACCOUNT.account_id, NOVEMBER, DEFAULT_CONVERSION_ACTION_TYPES
    )
    expected = {
        "101": "spend is '12,50 USD', not a number",
        "102": "spend is missing",
        "103": "clicks is null",
        "104": "impressions is '-100', a negative number",
        "105": "actions is null",
        "106": "actions[omni_purchase] is 'n/a', not a number",
        "107": "actions has an entry without action_type",
        "108": "clicks is '2.5', not a whole number",
        "109": "spend is 'NaN', not a finite number",
        "110": "date_stop '2026-11-03' differs from date_start",
        "111": "adset_id is missing",
        "112": "actions lists purchase twice",
        "113": "action_values reports purchase but actions has no conversion type",
        "114": "spend is True, not a number",
        "115": "date 2026-10-20 is outside the requested 2026-11-01..2026-11-03",
        "116": "Meta returned two rows for 2026-11-01",
    }
    assert set(parsed.failures) == set(expected)
    for ad_id, reason in expected.items():
        assert reason in parsed.failures[ad_id], (ad_id, parsed.failures[ad_id])
    assert "2026-11-02" in parsed.failures["114"]  # the bad day is named, not the good one before it
    # well-formed rows are kept: 114's good day, and 199 (numbers as JSON numbers, reach null)
    assert list(zip(parsed.rows["entity_id"], parsed.rows["date_start"].dt.date)) == [
        ("114", dt.date(2026, 11, 1)),
        ("199", dt.date(2026, 11, 1)),
    ]
    kept = parsed.rows.iloc[1]
    assert (kept.spend, kept.impressions, kept.clicks, kept.conversions) == (7.5, 300, 6, 0)
    assert pd.isna(kept["reach"])


def test_rows_that_name_no_entity_are_reported_not_dropped() -> None:
    records = [
        {
            "campaign_id": "1",
            "date_start": "2026-11-01",
            "date_stop": "2026-11-01",
            "spend": "1",
            "impressions": "5",
            "clicks": "0",
        }
    ]
    parsed = insight_rows(records, "adset", ACCOUNT.account_id, NOVEMBER, DEFAULT_CONVERSION_ACTION_TYPES)
    assert parsed.rows.empty and parsed.failures == {}
    assert parsed.unattributed == ["a row without adset_id (date 2026-11-01)"]


@pytest.mark.parametrize(
    ("value", "whole", "expected"),
    [
        ("41.27", False, Decimal("41.27")),
        ("0", True, Decimal(0)),
        (" 12 ", True, Decimal(12)),
        (12, True, Decimal(12)),
        (7.5, False, Decimal("7.5")),
        ("1E3", True, Decimal(1000)),
        ("12,50", False, "not a number"),
        ("", False, "not a number"),
        ("abc", True, "not a number"),
        ("-0.01", False, "negative"),
        ("Infinity", False, "not a finite number"),
        ("3.5", True, "not a whole number"),
        (None, False, "is null"),
        (True, True, "not a number"),
        ([1], True, "not a number"),
    ],
)
def test_parse_number(value: object, whole: bool, expected: object) -> None:
    if isinstance(expected, Decimal):
        assert parse_number(value, "spend", whole=whole) == expected
    else:
        with pytest.raises(RowError, match=str(expected)):
            parse_number(value, "spend", whole=whole)


PURCHASES = [
    {"action_type": "omni_purchase", "value": "3"},
    {"action_type": "purchase", "value": "3"},
    {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2"},
]
PURCHASE_VALUES = [
    {"action_type": "omni_purchase", "value": "90.00"},
    {"action_type": "purchase", "value": "90.00"},
    {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "60.00"},
]


@pytest.mark.parametrize(
    ("record", "preference", "expected"),
    [
        ({}, DEFAULT_CONVERSION_ACTION_TYPES, (0, 0)),
        ({"actions": PURCHASES, "action_values": PURCHASE_VALUES}, DEFAULT_CONVERSION_ACTION_TYPES, (3, 90)),
        (
            {"actions": PURCHASES, "action_values": PURCHASE_VALUES},
            ("offsite_conversion.fb_pixel_purchase", "purchase"),
            (2, 60),
        ),
        ({"actions": PURCHASES[1:], "action_values": PURCHASE_VALUES[1:]}, DEFAULT_CONVERSION_ACTION_TYPES, (3, 90)),
        ({"actions": PURCHASES}, DEFAULT_CONVERSION_ACTION_TYPES, (3, 0)),
        ({"actions": [{"action_type": "link_click", "value": "40"}]}, DEFAULT_CONVERSION_ACTION_TYPES, (0, 0)),
        ({"actions": [{"action_type": "lead", "value": "4"}]}, ("lead",), (4, 0)),
        ({"actions": [{"action_type": "purchase", "value": "1.5"}]}, ("purchase",), (1.5, 0)),
        ({"actions": []}, DEFAULT_CONVERSION_ACTION_TYPES, (0, 0)),
        ({"actions": None}, DEFAULT_CONVERSION_ACTION_TYPES, "actions is null"),
        ({"actions": {"purchase": 1}}, DEFAULT_CONVERSION_ACTION_TYPES, "not a list"),
        (
            {"actions": [{"action_type": "purchase", "value": None}]},
            DEFAULT_CONVERSION_ACTION_TYPES,
            r"actions\[purchase\] is null",
        ),
        (
            {"actions": [{"action_type": "purchase", "value": "1"}], "action_values": None},
            DEFAULT_CONVERSION_ACTION_TYPES,
            "action_values is null",
        ),
        (
            {
                "actions": [{"action_type": "purchase", "value": "1"}],
                "action_values": [{"action_type": "purchase", "value": "-5"}],
            },
            DEFAULT_CONVERSION_ACTION_TYPES,
            "negative",
        ),
    ],
)
def test_conversions_come_from_the_first_preferred_type(record: dict, preference: tuple, expected: object) -> None:
    if isinstance(expected, tuple):
        assert conversions_of(record, preference) == (Decimal(str(expected[0])), Decimal(str(expected[1])))
    else:
        with pytest.raises(RowError, match=expected):
            conversions_of(record, preference)


def test_entity_frames_keep_every_status_and_read_budgets_in_currency_units() -> None:
    campaigns = entity_frame("campaign", load("campaigns.json")["data"], ACCOUNT).set_index("campaign_id")
    assert campaigns["status"].tolist() == ["ACTIVE", "PAUSED", "DELETED"]
    assert campaigns.loc["238510000000000001", "daily_budget"] == 250.0  # "25000" cents
    assert campaigns.loc["238510000000000002", "lifetime_budget"] == 10_000.0
    assert math.isnan(campaigns.loc["238510000000000002", "daily_budget"])
    assert campaigns.loc["238510000000000002", "created_time"] == dt.datetime(2025, 2, 1, 16, 0)  # -0800 -> UTC
    assert str(campaigns.loc["238510000000000003", "created_time"]) == "NaT"
    # a lifetime budget's period: start and stop times as naive UTC, no stop time stays unknown
    assert campaigns.loc["238510000000000002", "start_time"] == dt.datetime(2025, 2, 10, 8, 0)
    assert campaigns.loc["238510000000000002", "stop_time"] == dt.datetime(2025, 3, 11, 7, 59, 59)
    assert campaigns.loc["238510000000000001", "start_time"] == dt.datetime(2025, 3, 15)
    assert str(campaigns.loc["238510000000000001", "stop_time"]) == "NaT"
    ads = entity_frame("ad", load("ads.json")["data"], ACCOUNT).set_index("ad_id")
    assert ads.loc["238530000000000001", "creative_id"] == "238540000000000001"
    assert pd.isna(ads.loc["238530000000000002", "creative_id"])
    assert ads.loc["238530000000000002", "adset_id"] == "238520000000000003"
    adsets = entity_frame("adset", load("adsets.json")["data"], ACCOUNT).set_index("adset_id")
    assert adsets.loc["238520000000000002", "placements"] == "facebook_feed,instagram_stream,instagram_story"
    assert pd.isna(adsets.loc["238520000000000004", "targeting_json"])
    assert adsets.loc["238520000000000001", "stop_time"] == dt.datetime(2025, 4, 15)  # Graph's `end_time`
    assert adsets.loc["238520000000000001", "start_time"] == dt.datetime(2025, 3, 15)
    assert str(adsets.loc["238520000000000002", "stop_time"]) == "NaT"
    assert (adsets["account_id"] == "act_5550001").all()


@pytest.mark.parametrize(("currency", "expected"), [("USD", 250.0), ("EUR", 250.0), ("JPY", 25000.0), ("krw", 25000.0)])
def test_budgets_follow_the_currency_offset(currency: str, expected: float) -> None:
    assert budget_amount("25000", currency) == expected


@pytest.mark.parametrize(
    ("targeting", "expected"),
    [
        (
            {"age_min": 18, "age_max": 65, "geo_locations": {"countries": ["US"]}},
            {"age_min": 18, "age_max": 65, "genders": "all", "countries": "US", "placements": "automatic"},
        ),
        (
            {
                "genders": [2],
                "geo_locations": {"countries": ["US", "CA"]},
                "publisher_platforms": ["facebook", "instagram"],
                "instagram_positions": ["reels"],
            },
            {"age_min": None, "genders": "female", "countries": "US,CA", "placements": "facebook,instagram_reels"},
        ),
        ({"genders": [1, 2], "geo_locations": {"regions": [{"key": "4081"}]}}, {"genders": "all", "countries": None}),
        ({"genders": [1]}, {"genders": "male"}),
        (None, {"age_min": None, "genders": None, "placements": None, "targeting_json": None}),
    ],
)
def test_targeting_columns(targeting: dict | None, expected: dict) -> None:
    columns = targeting_columns(targeting)
    assert {k: columns[k] for k in expected} == expected
    if targeting is not None:
        assert json.loads(columns["targeting_json"]) == targeting


def test_account_status_and_timezone_come_from_the_account_object() -> None:
    account = account_from_json(load("account.json"), "act_5550001")
    assert account == Account("act_5550001", "Emulated Store", "USD", "America/Los_Angeles", "ACTIVE")
    assert account_from_json({**load("account.json"), "account_status": 2}, "act_5550001").account_status == "DISABLED"
    with pytest.raises(MalformedPayloadError, match="unknown timezone_name 'Mars/Olympus'"):
        account_from_json({**load("account.json"), "timezone_name": "Mars/Olympus"}, "act_5550001")
    with pytest.raises(MalformedPayloadError, match="no currency"):
        account_from_json({"name": "x", "timezone_name": "UTC"}, "act_1")


def test_a_day_reported_twice_or_more_is_dropped_and_reasons_are_counted() -> None:
    row = {
        "campaign_id": "1",
        "date_start": "2026-11-01",
        "date_stop": "2026-11-01",
        "spend": "1",
        "impressions": "5",
        "clicks": "0",
    }
    records = [
        row,
        {**row, "spend": "2"},
        {**row, "spend": "3"},
        {**row, "date_start": "2026-11-02", "date_stop": "2026-11-02"},
        {**row, "campaign_id": "2", "spend": None},
        {**row, "campaign_id": "2", "date_start": "x"},
    ]
    parsed = insight_rows(records, "campaign", ACCOUNT.account_id, NOVEMBER, DEFAULT_CONVERSION_ACTION_TYPES)
    assert list(zip(parsed.rows["entity_id"], parsed.rows["date_start"].dt.date)) == [("1", dt.date(2026, 11, 2))]
    assert parsed.failures == {
        "1": "Meta returned two rows for 2026-11-01",
        "2": "malformed insights row for 2026-11-01: spend is null (and 1 more malformed rows)",
    }


def test_breakdown_rows_keep_unknown_segments_round_money_and_drop_a_broken_day_whole() -> None:
    records = json.loads((FIXTURES / "insights_breakdown_age_gender.json").read_text())["data"]
    window = DateWindow(dt.date(2026, 11, 1), dt.date(2026, 11, 2))
    parsed = breakdown_rows(records, "ad", "age_gender", "act_5550001", window, ("omni_purchase", "purchase"))
    rows = parsed.rows
    assert list(rows.columns) == [*BREAKDOWN_SOURCE_COLUMNS, "campaign_id"]
    first = rows[rows["entity_id"] == "238530000000000001"].set_index(["key_1", "key_2"])
    assert sorted(first.index) == [("25-34", "female"), ("25-34", "unknown"), ("Unknown", "unknown")]
    assert first.loc[("25-34", "female"), "spend"] == 20.10  # to the cent, half to even
    assert first.loc[("25-34", "female"), "revenue"] == 75.50
    assert first.loc[("25-34", "female"), "conversions"] == 2
    assert pd.isna(first.loc[("25-34", "unknown"), "reach"])  # left out by Meta: NULL, never 0
    assert set(rows["breakdown"]) == {"age_gender"}
    # ad 2: a segment without its age fails the ad and drops its whole 2026-11-01; 2026-11-02 is kept
    second = rows[rows["entity_id"] == "238530000000000002"]
    assert list(second["date_start"].dt.date) == [dt.date(2026, 11, 2)]
    assert parsed.failures["238530000000000002"] == ("malformed insights row for 2026-11-01: breakdown age is missing")
    assert "spend is '1,50'" in parsed.failures["238530000000000003"]
    assert "238530000000000003" not in set(rows["entity_id"])
