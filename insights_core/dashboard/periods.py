"""Date ranges for pages and the API: presets, comparison periods, and what a URL may say about them. Pure.

Every page shares one period (since, until, a comparison period or none, an account), kept in the URL as
`?since=YYYY-MM-DD&until=...&compare=previous|last_year|none|custom[&compare_since=&compare_until=]&account=`.
"Today" is the ad account's calendar day, passed in by the caller: Meta's days are the account's days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from insights_core.store.queries import DataBounds

DEFAULT_DAYS = 30

Preset = Literal[
    "today", "yesterday", "last_7d", "last_14d", "last_30d", "last_90d", "this_month", "last_month", "custom"
]
PRESETS: tuple[Preset, ...] = get_args(Preset)
PRESET_LABELS: Mapping[Preset, str] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "last_7d": "Last 7 days",
    "last_14d": "Last 14 days",
    "last_30d": "Last 30 days",
    "last_90d": "Last 90 days",
    "this_month": "This month",
    "last_month": "Last month",
    "custom": "Custom",
}
DEFAULT_PRESET: Preset = "last_30d"

Comparison = Literal["previous", "last_year", "none", "custom"]
COMPARISONS: tuple[Comparison, ...] = get_args(Comparison)
COMPARISON_LABELS: Mapping[Comparison, str] = {
    "previous": "Previous period",
    "last_year": "Same period last year",
    "none": "No comparison",
    "custom": "Custom",
}


def default_range(first_day: dt.date, last_day: dt.date, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """The last `days` days of stored data (not before the first stored day). The API's default period."""
    return max(first_day, last_day - dt.timedelta(days=days - 1)), last_day


def previous_period(since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length that ends the day before `since`."""
    length = (until - since).days + 1
    prev_until = since - dt.timedelta(days=1)
    return prev_until - dt.timedelta(days=length - 1), prev_until


def days_back_range(last_day: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """`days` days ending on `last_day` (inclusive), like the worker's --days-back."""
    return last_day - dt.timedelta(days=days - 1), last_day


def same_period_last_year(since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
    """The same calendar days one year earlier (29 February becomes the 28th)."""
    return _year_earlier(since), _year_earlier(until)


def _year_earlier(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def preset_range(preset: Preset, today: dt.date) -> tuple[dt.date, dt.date]:
    """The days a preset covers, as Ads Manager counts them: "last N days" end yesterday, "this month" today."""
    yesterday = today - dt.timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    if preset.startswith("last_") and preset.endswith("d"):
        days = int(preset[len("last_") : -1])
        return today - dt.timedelta(days=days), yesterday
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    raise ValueError(f"no fixed range for preset {preset!r}")


def matching_preset(since: dt.date, until: dt.date, today: dt.date) -> Preset:
    """The preset that covers exactly these days today, else "custom" (a shared link keeps its dates)."""
    for preset in PRESETS[:-1]:
        if preset_range(preset, today) == (since, until):
            return preset
    return "custom"


def comparison_range(
    comparison: Comparison, since: dt.date, until: dt.date, custom: tuple[dt.date, dt.date] | None = None
) -> tuple[dt.date, dt.date] | None:
    """The days to compare with; None for "none" (and for "custom" without its dates)."""
    if comparison == "previous":
        return previous_period(since, until)
    if comparison == "last_year":
        return same_period_last_year(since, until)
    if comparison == "custom":
        return custom
    return None


@dataclass(frozen=True)
class Period:
    """What every page shows: the days, the days to compare with (None: no comparison) and the account."""

    since: dt.date
    until: dt.date
    comparison: Comparison
    compare_since: dt.date | None
    compare_until: dt.date | None
    account_id: str | None
    today: dt.date
    """The account's calendar day when the period was chosen: a period that reaches it is partial."""
    currency: str = "USD"

    @property
    def preset(self) -> Preset:
        return matching_preset(self.since, self.until, self.today)

    @property
    def compared(self) -> tuple[dt.date, dt.date] | None:
        if self.compare_since is None or self.compare_until is None:
            return None
        return self.compare_since, self.compare_until

    @property
    def includes_today(self) -> bool:
        """Today's numbers are still growing: charts and cards mark them as partial."""
        return self.since <= self.today <= self.until

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def url_params(self) -> dict[str, str]:
        """The query parameters that reproduce this period on any page."""
        params = {"since": self.since.isoformat(), "until": self.until.isoformat(), "compare": self.comparison}
        if self.comparison == "custom" and self.compared is not None:
            params["compare_since"], params["compare_until"] = (d.isoformat() for d in self.compared)
        if self.account_id is not None:
            params["account"] = self.account_id
        return params

    def with_dates(self, since: dt.date, until: dt.date) -> Period:
        """The same choice for other days: the comparison follows them (a custom comparison stays put)."""
        compared = comparison_range(self.comparison, since, until, self.compared)
        return replace(self, since=since, until=until, compare_since=_first(compared), compare_until=_last(compared))

    def with_comparison(self, comparison: Comparison, custom: tuple[dt.date, dt.date] | None = None) -> Period:
        compared = comparison_range(comparison, self.since, self.until, custom or self.compared)
        if comparison == "custom" and compared is None:
            compared = previous_period(self.since, self.until)  # a custom comparison starts from the previous period
        return replace(self, comparison=comparison, compare_since=_first(compared), compare_until=_last(compared))


def _first(days: tuple[dt.date, dt.date] | None) -> dt.date | None:
    return days[0] if days else None


def _last(days: tuple[dt.date, dt.date] | None) -> dt.date | None:
    return days[1] if days else None


def default_period(
    today: dt.date, first_day: dt.date, last_day: dt.date, account_id: str | None = None, currency: str = "USD"
) -> Period:
    """The last 30 complete days (ending yesterday), compared with the 30 before; ending earlier when the store does."""
    since, until = preset_range(DEFAULT_PRESET, today)
    if last_day < until:  # a store that stopped syncing: its last 30 days, not an empty window
        since, until = default_range(first_day, last_day)
    prev = previous_period(since, until)
    return Period(since, until, "previous", prev[0], prev[1], account_id, today, currency)


def parse_day(raw: str, name: str) -> dt.date:
    """A YYYY-MM-DD date; ValueError with a message that names the parameter."""
    try:
        if len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a date (YYYY-MM-DD)") from None


def period_from_params(
    params: Mapping[str, str], fallback: Period, first_day: dt.date, account_ids: Mapping[str, str]
) -> tuple[Period, list[str]]:
    """The period a URL asks for, and a message per value that could not be used (which then keeps `fallback`'s).

    `account_ids` maps each known account to its currency; an account of another currency than the
    fallback's changes the period's currency. Dates after today are cut to today, a start before the first
    stored day moves to it, and a range that ends before the first stored day falls back: it can show nothing.
    """
    messages: list[str] = []
    period = fallback
    today = fallback.today
    if "account" in params:
        account = params["account"]
        if account in account_ids:
            period = replace(period, account_id=account, currency=account_ids[account])
        else:
            messages.append(f"There is no ad account {account!r} in the synced data: showing {_account(fallback)}.")
    if "since" in params or "until" in params:
        try:
            since = parse_day(params.get("since") or fallback.since.isoformat(), "since")
            until = parse_day(params.get("until") or fallback.until.isoformat(), "until")
            if since > until:
                raise ValueError(f"since {since} is after until {until}")
            if until > today:
                messages.append(f"In the link, until {until} is in the future: the period ends today, {today}.")
                until, since = today, min(since, today)
            if until < first_day:
                raise ValueError(f"{since} to {until} ends before the first stored day, {first_day}")
            if since < first_day:
                messages.append(
                    f"In the link, since {since} is before the first stored day: the period starts {first_day}."
                )
                since = first_day
            period = period.with_dates(since, until)
        except ValueError as exc:
            messages.append(f"In the link, {exc}: showing {fallback.since} to {fallback.until}.")
    comparison = params.get("compare")
    if comparison is not None:
        if comparison not in COMPARISONS:
            messages.append(
                f"In the link, compare={comparison!r} is not one of {', '.join(COMPARISONS)}: "
                f"comparing with {fallback.comparison}."
            )
        elif comparison == "custom":
            try:
                custom = (
                    parse_day(params.get("compare_since", ""), "compare_since"),
                    parse_day(params.get("compare_until", ""), "compare_until"),
                )
                if custom[0] > custom[1]:
                    raise ValueError(f"compare_since {custom[0]} is after compare_until {custom[1]}")
                period = period.with_comparison("custom", custom)
            except ValueError as exc:
                messages.append(f"In the link, {exc}: comparing with the previous period.")
                period = period.with_comparison("previous")
        else:
            period = period.with_comparison(comparison)
    return period, messages


def _account(period: Period) -> str:
    return "all accounts" if period.account_id is None else f"account {period.account_id}"


def partial_day_note(period: Period) -> str | None:
    """What to say under charts and cards when the period reaches today (None otherwise)."""
    if not period.includes_today:
        return None
    return f"{period.today} (today) is partial: Meta is still counting it, so its figures will grow."


def account_today(bounds: DataBounds, account_id: str | None, now: dt.datetime | None = None) -> dt.date:
    """Today in the account's time zone (the first account's for all accounts): Meta's days are the account's."""
    accounts = bounds.accounts
    zones = (
        accounts.loc[accounts["account_id"] == account_id, "timezone_name"] if account_id else accounts["timezone_name"]
    )
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        return now.astimezone(ZoneInfo(str(zones.iloc[0]))).date() if len(zones) else now.date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()
