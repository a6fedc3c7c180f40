"""Display polish: Meta's enums in words, ROAS as a multiple, changes of percentages in points, peer
ranks in words, and chart axes that tick in days and round steps."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from insights_core.control import RequestRecord, WorkerStatus
from insights_core.dashboard import charts, formatting, sync_view
from insights_core.dashboard.style import PAGE_CSS


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("OUTCOME_SALES", "Sales"),
        ("OUTCOME_APP_PROMOTION", "App promotion"),
        ("ADSET_PAUSED", "Paused (ad set)"),
        ("CAMPAIGN_PAUSED", "Paused (campaign)"),
        ("LINK_CLICKS", "Link clicks"),
        ("OFFSITE_CONVERSIONS", "Website conversions"),
        ("IMPRESSIONS", "Impressions"),
        ("ACTIVE", "Active"),
        ("SOME_NEW_VALUE", "Some new value"),  # unknown: spelled out
        ("OUTCOME_SOMETHING_NEW", "Something new"),
        ("Holiday Sale", "Holiday Sale"),  # not an enum: as it is
        ("succeeded", "succeeded"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_enum_label(value: object, words: str) -> None:
    assert formatting.enum_label(value) == words


def test_tables_show_enums_as_words_and_roas_as_a_multiple() -> None:
    frame = pd.DataFrame(
        {"objective": ["OUTCOME_LEADS"], "effective_status": ["ADSET_PAUSED"], "roas": [2.3777], "ctr": [1.234]}
    )
    shown = formatting.display_frame(frame)
    assert shown.iloc[0].to_dict() == {
        "Objective": "Leads",
        "Status": "Paused (ad set)",
        "ROAS": "2.38×",
        "CTR": "1.23%",
    }


@pytest.mark.parametrize(
    ("current", "previous", "text"),
    [(1.4, 1.0, "+0.40 pts"), (1.0, 1.4, "-0.40 pts"), (2.0, 2.0, "+0.00 pts"), (1.0, None, None), (None, 1.0, None)],
)
def test_point_change(current: float | None, previous: float | None, text: str | None) -> None:
    assert formatting.format_point_change(current, previous) == text


def test_multiple() -> None:
    assert formatting.format_multiple(2.3777) == "2.38×"
    assert formatting.format_multiple(None) == "—"


def test_peer_table_says_better_than_in_words_and_ctr_difference_in_points() -> None:
    comparison = pd.DataFrame(
        [
            {"metric": "ctr", "value": 1.5, "peer_median": 1.1, "difference": 0.4, "difference_pct": 36.36,
             "percentile": 80.0, "better_than_pct": 80.0, "peers": 5},
            {"metric": "cpc", "value": 0.5, "peer_median": 0.75, "difference": -0.25, "difference_pct": -33.3,
             "percentile": 12.5, "better_than_pct": 87.5, "peers": 4},
            {"metric": "roas", "value": np.nan, "peer_median": 2.0, "difference": np.nan, "difference_pct": np.nan,
             "percentile": np.nan, "better_than_pct": np.nan, "peers": 4},
        ]
    )  # fmt: skip
    table = formatting.format_peer_comparison(comparison).set_index("Metric")
    assert table.loc["CTR", "vs median"] == "+0.40 pts"
    assert table.loc["CTR", "Among peers"] == "better than 80% of peers"
    assert table.loc["CPC", "vs median"] == "-$0.25"
    assert table.loc["CPC", "Among peers"] == "better than 88% of peers"
    assert table.loc["ROAS", "Peer median"] == "2.00×" and table.loc["ROAS", "Among peers"] == "—"


def test_role_text_is_one_column() -> None:
    assert formatting.role_text("admin", ("admin", "analyst")) == "admin (also analyst)"
    assert formatting.role_text("viewer", ("viewer",)) == "viewer"
    assert formatting.role_text(None, ()) == "no role"


@pytest.mark.parametrize(
    ("top", "end", "step"), [(2.38, 3.0, 1.0), (1.9, 2.0, 0.5), (0.9, 1.0, 0.25), (13.0, 15.0, 5.0), (0.0, 1.0, 0.25)]
)
def test_nice_axis_top_is_round_and_holds_the_top(top: float, end: float, step: float) -> None:
    got_end, got_step = charts.nice_axis_top(top)
    assert got_end >= top and (got_end, got_step) == (pytest.approx(end), pytest.approx(step))
    assert got_end / got_step == pytest.approx(round(got_end / got_step))


def daily(days: list[str], spend: list[float], revenue: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"date": [dt.date.fromisoformat(d) for d in days], "spend": spend, "revenue": revenue})
    frame["roas"] = frame["revenue"] / frame["spend"]
    return frame


def test_a_day_without_delivery_is_zero_spend_and_a_gap_in_roas() -> None:
    frame = charts.complete_days(daily(["2026-11-01", "2026-11-03"], [10.0, 20.0], [30.0, 20.0]))
    assert [d.day for d in frame["date"]] == [1, 2, 3]
    assert list(frame["spend"]) == [10.0, 0.0, 20.0]
    assert frame["roas"].isna().tolist() == [False, True, False]
    figure = charts.daily_trend_figure(daily(["2026-11-01", "2026-11-03"], [10.0, 20.0], [30.0, 20.0]))
    line = next(trace for trace in figure.data if trace.name == "ROAS")
    assert line.connectgaps is False and np.isnan(line.y[1])


def test_roas_axis_starts_at_zero_with_round_ticks_and_money_axis_is_compact() -> None:
    figure = charts.daily_trend_figure(daily(["2026-11-01", "2026-11-02"], [10.0, 20.0], [23.8, 20.0]))
    assert tuple(figure.layout.yaxis2.range) == (0, 3.0) and figure.layout.yaxis2.dtick == 1.0
    assert figure.layout.yaxis2.ticksuffix == "×"
    assert figure.layout.yaxis.tickprefix == "$" and figure.layout.yaxis.tickformat == "~s"


@pytest.mark.parametrize("days", [1, 2, 3, 30, 90])
def test_daily_axes_tick_in_whole_days(days: int) -> None:
    dates = pd.Series(pd.date_range("2026-09-01", periods=days, freq="D"))
    axis = charts.day_axis(dates)
    assert axis["dtick"] % charts.DAY_MS == 0 and axis["dtick"] >= charts.DAY_MS
    assert "%H" not in str(axis["tickformat"])
    assert days / (axis["dtick"] / charts.DAY_MS) <= 5
    if days == 1:
        low, high = axis["range"]
        assert high - low == pd.Timedelta(hours=36)


def test_a_single_sync_run_gets_a_two_hour_window_not_milliseconds() -> None:
    runs = pd.DataFrame(
        {"sync_timestamp": [pd.Timestamp("2026-12-02 11:48:28.1535")], "sync_type": ["manual"],
         "total_duration_seconds": [1.2]}
    )  # fmt: skip
    figure = charts.duration_figure(runs)
    low, high = figure.layout.xaxis.range
    assert pd.Timestamp(high) - pd.Timestamp(low) == pd.Timedelta(hours=2)
    assert figure.layout.xaxis.tickformat == "%b %-d\n%H:%M"


def test_page_css_keeps_card_values_whole() -> None:
    assert "text-overflow: clip" in PAGE_CSS and "overflow-wrap: anywhere" in PAGE_CSS
    assert PAGE_CSS.strip().startswith("<style>") and PAGE_CSS.strip().endswith("</style>")


def worker(state: str, sync_id: str | None = None) -> WorkerStatus:
    now = dt.datetime.now(dt.timezone.utc)
    return WorkerStatus(1, "host", "stub", now, now, state, 30, True, None, sync_id, None, None)


def test_the_worker_is_syncing_as_soon_as_any_sign_of_a_sync_shows() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    running = RequestRecord(7, now, "admin", None, "running", now, None, None, None, None, None)
    assert sync_view.worker_state(worker("idle")) == "idle"
    assert sync_view.worker_state(worker("syncing")) == "syncing"
    assert sync_view.worker_state(worker("idle", "sync-1")) == "syncing"  # heartbeat mid-sync
    assert sync_view.worker_state(worker("idle"), running) == "syncing"  # request claimed between heartbeats


def test_many_workers_are_listed_with_the_accounts_each_holds() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    old = now - dt.timedelta(minutes=5)
    busy = dataclasses.replace(worker("syncing", "s1"), worker_id="a:1:x", accounts=("act_1", "act_2"))
    idle = dataclasses.replace(worker("idle"), worker_id="b:2:y")
    dead = dataclasses.replace(worker("idle"), worker_id="c:3:z", heartbeat_at=old)
    status = dataclasses.replace(busy, workers=(busy, idle, dead))
    line = sync_view.describe_workers(status, now)
    assert line.startswith("2 of 3 workers seen in the last day are alive: ")
    shown = formatting.literal  # ids and host names are shown literally (no markdown)
    assert shown("syncing act_1, act_2") in line and shown("b:2:y") in line and shown("c:3:z") not in line
    assert [w.worker_id for w in status.alive_workers(now)] == ["a:1:x", "b:2:y"]
    assert len(worker("idle").alive_workers(now)) == 1  # one worker (SQLite): itself
