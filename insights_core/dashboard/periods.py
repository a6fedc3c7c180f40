"""Date ranges for pages: the default window and the previous period of the same length. Pure."""

from __future__ import annotations

import datetime as dt

DEFAULT_DAYS = 30


def default_range(first_day: dt.date, last_day: dt.date, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """The last `days` days of stored data (not before the first stored day)."""
    return max(first_day, last_day - dt.timedelta(days=days - 1)), last_day


def previous_period(since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length that ends the day before `since`."""
    length = (until - since).days + 1
    prev_until = since - dt.timedelta(days=1)
    return prev_until - dt.timedelta(days=length - 1), prev_until


def days_back_range(last_day: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """`days` days ending on `last_day` (inclusive), like the worker's --days-back."""
    return last_day - dt.timedelta(days=days - 1), last_day
