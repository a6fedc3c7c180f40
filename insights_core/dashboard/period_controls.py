"""The one period and account control every analytics page draws: chosen once, kept for the session and in the URL.

The period lives in `st.session_state` (so it holds while moving between pages, whose links carry
no dates) and is written to the URL on every run (so a reload or a shared link opens the same
period). A URL that differs from what this session last wrote came from outside — a reload, a
shared link, an edited address — and wins; values that cannot be used get one warning line each
and the session's (or default) period instead. The date logic itself is `periods` (pure).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import streamlit as st

from insights_core.dashboard.formatting import literal
from insights_core.dashboard.periods import (
    COMPARISON_LABELS,
    COMPARISONS,
    PRESET_LABELS,
    PRESETS,
    Period,
    account_today,
    default_period,
    partial_day_note,
    period_from_params,
    preset_range,
)
from insights_core.store.queries import DataBounds

PERIOD_PARAMS = ("since", "until", "compare", "compare_since", "compare_until", "account")
_PERIOD = "mi_period"
"""The session's period (a `Period`)."""
_WRITTEN = "mi_period_url"
"""The period parameters this session last wrote to the URL."""
_PUSHED = "mi_period_pushed"
"""The period the widgets were last set from (they are set again only when it changes elsewhere)."""
_CUSTOM = "mi_period_custom"
"""True once the user picked "Custom": the dates box stays open even if the dates match a preset."""
KEYS = {
    "preset": "period_preset",
    "dates": "period_dates",
    "compare": "period_compare",
    "compare_dates": "period_compare_dates",
    "account": "period_account",
}


def _currencies(bounds: DataBounds) -> dict[str, str]:
    return {str(a): str(c) for a, c in zip(bounds.accounts["account_id"], bounds.accounts["currency"])}


def _default(bounds: DataBounds) -> Period:
    """The last 30 complete days of all accounts (of the first one when their currencies differ)."""
    assert bounds.first_day is not None and bounds.last_day is not None
    currencies = _currencies(bounds)
    account = next(iter(currencies)) if len(set(currencies.values())) > 1 else None
    currency = currencies[account] if account else next(iter(currencies.values()), "USD")
    return default_period(account_today(bounds, account), bounds.first_day, bounds.last_day, account, currency)


def _url_period_params() -> dict[str, str]:
    return {name: str(st.query_params[name]) for name in PERIOD_PARAMS if st.query_params.get(name)}


def current_period(bounds: DataBounds) -> Period:
    """The session's period, after applying a URL that came from outside (with a warning per unusable value)."""
    assert bounds.first_day is not None
    period: Period = st.session_state.get(_PERIOD) or _default(bounds)
    url = _url_period_params()
    if url and url != st.session_state.get(_WRITTEN):
        period, messages = period_from_params(url, period, bounds.first_day, _currencies(bounds))
        for message in messages:
            st.warning(literal(message), icon=":material/warning:")
    if period.account_id is None and len(set(_currencies(bounds).values())) > 1:
        period = _default(bounds).with_dates(period.since, period.until)  # one currency at a time
    st.session_state[_PERIOD] = period
    return period


def remember_period(period: Period) -> None:
    """Make `period` the session's and write it to the URL (the other parameters, such as ids, stay)."""
    st.session_state[_PERIOD] = period
    params = period.url_params()
    for name in PERIOD_PARAMS:
        if name not in params and name in st.query_params:
            del st.query_params[name]
    st.query_params.update(params)
    st.session_state[_WRITTEN] = params


def set_period_dates(since: dt.date, until: dt.date) -> None:
    """Change the session's days (a page shortcut such as the Timeline's "days back"); the comparison follows."""
    period: Period = st.session_state[_PERIOD]
    st.session_state[_CUSTOM] = False
    remember_period(period.with_dates(since, until))


def _push_to_widgets(period: Period, bounds: DataBounds) -> None:
    custom = bool(st.session_state.get(_CUSTOM))
    st.session_state[KEYS["preset"]] = "custom" if custom else period.preset
    st.session_state[KEYS["dates"]] = (period.since, period.until)
    st.session_state[KEYS["compare"]] = period.comparison
    st.session_state[KEYS["compare_dates"]] = period.compared or (period.since, period.until)
    if len(bounds.accounts) > 1:
        st.session_state[KEYS["account"]] = period.account_id
    st.session_state[_PUSHED] = period


def _on_preset() -> None:
    period: Period = st.session_state[_PERIOD]
    preset = st.session_state[KEYS["preset"]]
    st.session_state[_CUSTOM] = preset == "custom"
    if preset != "custom":
        remember_period(period.with_dates(*preset_range(preset, period.today)))


def _on_dates() -> None:
    value = st.session_state[KEYS["dates"]]
    if isinstance(value, (tuple, list)) and len(value) == 2:  # one end picked so far: wait for the other
        remember_period(st.session_state[_PERIOD].with_dates(value[0], value[1]))


def _on_compare() -> None:
    remember_period(st.session_state[_PERIOD].with_comparison(st.session_state[KEYS["compare"]]))


def _on_compare_dates() -> None:
    value = st.session_state[KEYS["compare_dates"]]
    if isinstance(value, (tuple, list)) and len(value) == 2:
        remember_period(st.session_state[_PERIOD].with_comparison("custom", (value[0], value[1])))


def _on_account(bounds: DataBounds) -> None:
    account = st.session_state[KEYS["account"]]
    currencies = _currencies(bounds)
    period: Period = st.session_state[_PERIOD]
    currency = currencies.get(account, period.currency) if account else next(iter(currencies.values()), "USD")
    remember_period(replace(period, account_id=account, today=account_today(bounds, account), currency=currency))


def period_controls(bounds: DataBounds, account: bool = True) -> Period:
    """Draw the period, comparison and account pickers; the chosen (session-wide) period.

    `account=False` leaves the account picker out (a page about one entity, whose account is its own).
    """
    assert bounds.first_day is not None and bounds.last_day is not None
    period = current_period(bounds)
    keys_missing = any(key not in st.session_state for key in (KEYS["preset"], KEYS["compare"]))
    if keys_missing or st.session_state.get(_PUSHED) != period:
        _push_to_widgets(period, bounds)
    earliest = min(bounds.first_day, period.since, period.compare_since or period.since)
    latest = max(period.today, period.until, bounds.last_day, period.compare_until or period.until)
    columns = st.columns([1.2, 1.6, 1.2, 1.6, 1.6], vertical_alignment="bottom")
    # Each widget's default is the value it holds: Streamlit sends a value set through session_state
    # once, and a browser that missed it (its run replaced by another) falls back to the default; with
    # index 0 that was "Today", which the next rerun then chose for the user.
    columns[0].selectbox(
        "Period",
        PRESETS,
        index=PRESETS.index(st.session_state[KEYS["preset"]]),
        key=KEYS["preset"],
        format_func=PRESET_LABELS.__getitem__,
        on_change=_on_preset,
    )
    if st.session_state[KEYS["preset"]] == "custom":
        columns[1].date_input(
            "Dates",
            value=st.session_state[KEYS["dates"]],
            key=KEYS["dates"],
            min_value=earliest,
            max_value=latest,
            format="YYYY-MM-DD",
            on_change=_on_dates,
        )
    else:
        columns[1].caption(f"{period.since} to {period.until}")
    columns[2].selectbox(
        "Compare with",
        COMPARISONS,
        index=COMPARISONS.index(st.session_state[KEYS["compare"]]),
        key=KEYS["compare"],
        format_func=COMPARISON_LABELS.__getitem__,
        on_change=_on_compare,
    )
    if period.comparison == "custom":
        columns[3].date_input(
            "Comparison dates",
            value=st.session_state[KEYS["compare_dates"]],
            key=KEYS["compare_dates"],
            min_value=min(earliest, dt.date(2000, 1, 1)),
            max_value=latest,
            format="YYYY-MM-DD",
            on_change=_on_compare_dates,
        )
    elif period.compared is not None:
        columns[3].caption(f"vs {period.compared[0]} to {period.compared[1]}")
    accounts = bounds.accounts
    if account and len(accounts) > 1:
        options: list[str | None] = list(accounts["account_id"])
        if accounts["currency"].nunique() == 1:
            options = [None, *options]
        names = dict(zip(accounts["account_id"], accounts["name"]))
        columns[4].selectbox(
            "Ad account",
            options,
            index=options.index(st.session_state[KEYS["account"]])
            if st.session_state.get(KEYS["account"]) in options
            else 0,
            key=KEYS["account"],
            format_func=lambda a: "All accounts" if a is None else f"{names[a]} ({a})",  # plain text
            on_change=_on_account,
            args=(bounds,),
        )
    note = partial_day_note(period)
    st.caption(
        f"Data is stored through {bounds.last_day}." + (f" {note}" if note else "") + " Ratios come from the "
        "period's sums; — means no value (zero denominator)."
    )
    remember_period(period)
    return period
