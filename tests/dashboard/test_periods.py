"""The session period's date logic (insights_core.dashboard.periods): presets, comparisons, URL values. Pure."""

from __future__ import annotations

import datetime as dt

import pytest

from insights_core.dashboard import periods
from insights_core.dashboard.periods import Period, default_period, period_from_params, preset_range

TODAY = dt.date(2026, 3, 15)
FIRST, LAST = dt.date(2025, 1, 1), TODAY
D = dt.date


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("today", (TODAY, TODAY)),
        ("yesterday", (D(2026, 3, 14), D(2026, 3, 14))),
        ("last_7d", (D(2026, 3, 8), D(2026, 3, 14))),
        ("last_14d", (D(2026, 3, 1), D(2026, 3, 14))),
        ("last_30d", (D(2026, 2, 13), D(2026, 3, 14))),
        ("last_90d", (D(2025, 12, 15), D(2026, 3, 14))),
        ("this_month", (D(2026, 3, 1), TODAY)),
        ("last_month", (D(2026, 2, 1), D(2026, 2, 28))),
    ],
)
def test_presets_count_days_as_ads_manager_does(preset: periods.Preset, expected: tuple[dt.date, dt.date]) -> None:
    assert preset_range(preset, TODAY) == expected
    assert periods.matching_preset(*expected, TODAY) == preset
    if preset.startswith("last_") and preset.endswith("d"):
        assert (expected[1] - expected[0]).days + 1 == int(preset[5:-1])


def test_last_month_across_a_year_and_this_month_on_the_first() -> None:
    assert preset_range("last_month", D(2026, 1, 10)) == (D(2025, 12, 1), D(2025, 12, 31))
    assert preset_range("this_month", D(2026, 4, 1)) == (D(2026, 4, 1), D(2026, 4, 1))
    assert periods.matching_preset(D(2026, 3, 2), D(2026, 3, 9), TODAY) == "custom"
    with pytest.raises(ValueError):
        preset_range("custom", TODAY)


@pytest.mark.parametrize(
    ("comparison", "since", "until", "expected"),
    [
        ("previous", D(2026, 3, 8), D(2026, 3, 14), (D(2026, 3, 1), D(2026, 3, 7))),
        ("last_year", D(2026, 3, 8), D(2026, 3, 14), (D(2025, 3, 8), D(2025, 3, 14))),
        ("last_year", D(2024, 2, 29), D(2024, 3, 1), (D(2023, 2, 28), D(2023, 3, 1))),
        ("none", D(2026, 3, 8), D(2026, 3, 14), None),
        ("custom", D(2026, 3, 8), D(2026, 3, 14), None),  # without its dates
    ],
)
def test_comparison_ranges(comparison, since, until, expected) -> None:
    assert periods.comparison_range(comparison, since, until) == expected


def test_the_default_is_the_last_30_complete_days_compared_with_the_30_before() -> None:
    period = default_period(TODAY, FIRST, LAST)
    assert (period.since, period.until) == (D(2026, 2, 13), D(2026, 3, 14))
    assert period.compared == (D(2026, 1, 14), D(2026, 2, 12))
    assert period.preset == "last_30d" and not period.includes_today
    assert periods.partial_day_note(period) is None


def test_a_store_that_stopped_syncing_defaults_to_its_last_30_days() -> None:
    period = default_period(TODAY, FIRST, D(2026, 1, 31))
    assert (period.since, period.until) == (D(2026, 1, 2), D(2026, 1, 31)) and period.preset == "custom"


def test_a_period_reaching_today_is_partial() -> None:
    period = default_period(TODAY, FIRST, LAST).with_dates(*preset_range("this_month", TODAY))
    assert period.includes_today and "today" in (periods.partial_day_note(period) or "")
    assert period.compared == (D(2026, 2, 14), D(2026, 2, 28))  # the comparison follows the dates


def test_url_params_round_trip() -> None:
    period = default_period(TODAY, FIRST, LAST, "act_1", "EUR").with_comparison(
        "custom", (D(2025, 6, 1), D(2025, 6, 30))
    )
    params = period.url_params()
    assert params == {
        "since": "2026-02-13",
        "until": "2026-03-14",
        "compare": "custom",
        "compare_since": "2025-06-01",
        "compare_until": "2025-06-30",
        "account": "act_1",
    }
    again, messages = period_from_params(params, default_period(TODAY, FIRST, LAST), FIRST, {"act_1": "EUR"})
    assert messages == [] and again == period


def test_none_leaves_no_comparison_and_no_compare_dates_in_the_url() -> None:
    period = default_period(TODAY, FIRST, LAST).with_comparison("none")
    assert period.compared is None and "compare_since" not in period.url_params()
    assert period.url_params()["compare"] == "none"


FALLBACK = default_period(TODAY, FIRST, LAST)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-03-10", "until": "2026-03-01"}, "since 2026-03-10 is after until 2026-03-01"),
        ({"since": "2026-13-01", "until": "2026-03-01"}, "since='2026-13-01' is not a date (YYYY-MM-DD)"),
        ({"since": "yesterday", "until": "2026-03-01"}, "is not a date"),
        ({"since": "2026-3-1", "until": "2026-03-09"}, "is not a date"),
        ({"since": "2020-01-01", "until": "2020-01-31"}, "ends before the first stored day, 2025-01-01"),
        ({"compare": "lastweek"}, "compare='lastweek' is not one of previous, last_year, none, custom"),
        ({"compare": "custom", "compare_since": "2026-01-01"}, "compare_until='' is not a date"),
        ({"compare": "custom", "compare_since": "2026-02-01", "compare_until": "2026-01-01"}, "is after"),
        ({"account": "act_999"}, "There is no ad account 'act_999'"),
    ],
)
def test_bad_url_values_get_a_message_and_keep_the_fallback(params: dict[str, str], message: str) -> None:
    period, messages = period_from_params(params, FALLBACK, FIRST, {"act_1": "USD"})
    assert len(messages) == 1 and message in messages[0], messages
    assert (period.since, period.until, period.account_id) == (FALLBACK.since, FALLBACK.until, None)
    assert period.comparison == "previous" and period.compared == FALLBACK.compared


def test_future_dates_end_today_with_a_message() -> None:
    period, messages = period_from_params({"since": "2026-03-10", "until": "2027-01-01"}, FALLBACK, FIRST, {})
    assert (period.since, period.until) == (D(2026, 3, 10), TODAY) and period.includes_today
    assert messages == ["In the link, until 2027-01-01 is in the future: the period ends today, 2026-03-15."]


def test_a_start_before_the_store_moves_to_its_first_day_with_a_message() -> None:
    period, messages = period_from_params({"since": "2024-12-01", "until": "2025-01-10"}, FALLBACK, FIRST, {})
    assert (period.since, period.until) == (FIRST, D(2025, 1, 10))
    assert messages == ["In the link, since 2024-12-01 is before the first stored day: the period starts 2025-01-01."]


def test_a_good_link_sets_dates_comparison_and_account() -> None:
    period, messages = period_from_params(
        {"since": "2025-03-01", "until": "2025-03-31", "compare": "last_year", "account": "act_2"},
        FALLBACK,
        FIRST,
        {"act_1": "USD", "act_2": "BRL"},
    )
    assert messages == []
    assert period == Period(
        D(2025, 3, 1), D(2025, 3, 31), "last_year", D(2024, 3, 1), D(2024, 3, 31), "act_2", TODAY, "BRL"
    )
    assert period.preset == "custom" and period.days == 31


def test_the_apis_helpers_keep_their_meaning() -> None:
    last = D(2026, 3, 31)
    assert periods.default_range(D(2026, 1, 1), last) == (D(2026, 3, 2), last)
    assert periods.previous_period(D(2026, 3, 2), last) == (D(2026, 1, 31), D(2026, 3, 1))
    assert periods.days_back_range(last, 7) == (D(2026, 3, 25), last)
