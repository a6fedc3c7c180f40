"""Browsing like Ads Manager, headless: a list at every level, and one period for the session, kept in the URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from insights_core.dashboard.periods import COMPARISONS, PRESETS
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN, assert_clean, open_page, texts
from tests.dashboard.markdown_text import unescape

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 60


def _last_day(data_dir: Path) -> dt.date:
    with duckdb.connect(str(data_dir / "current.duckdb"), read_only=True) as con:
        return con.execute("SELECT max(date_start) FROM meta_ad_insights").fetchone()[0]


@pytest.mark.parametrize(("page", "rows", "headers"), [
    ("campaign", 6, ["Campaign", "Status", "Objective"]),
    ("adset", 18, ["Ad set", "Campaign", "Status"]),
    ("ad", 36, ["Creative", "Ad", "Ad set", "Campaign", "Status"]),
])  # fmt: skip
def test_each_level_opens_on_its_list(page: str, rows: int, headers: list[str]) -> None:
    at = open_page("analyst", f"pages/{page}.py")
    assert_clean(at)
    table = at.dataframe(key=f"{page}_list").value
    assert len(table) == rows
    assert table.columns[: len(headers)].tolist() == headers  # names first: the ad's ad set and campaign beside it
    assert f"of {rows}" in texts(at)
    assert len(at.get("download_button")) >= 2  # the list exports with names beside ids
    if page == "ad":  # each ad's creative, a thumbnail of the image the worker kept
        assert all(uri.startswith("data:image/") for uri in table["Creative"])


def test_ads_sorted_worst_roas_first_among_those_that_spent(data_dir: Path) -> None:
    at = open_page("viewer", "pages/ad.py")
    at.number_input(key="ad_min_spend").set_value(1.0)
    at.selectbox(key="ad_sort").set_value("roas")
    at.radio(key="ad_order").set_value("worst").run()
    assert_clean(at)
    since, until = at.query_params["since"], at.query_params["until"]
    with duckdb.connect(str(data_dir / "current.duckdb"), read_only=True) as con:
        expected = con.execute(
            "SELECT a.name FROM meta_ad_insights i JOIN ads a ON a.ad_id = i.entity_id WHERE i.entity_type = 'ad'"
            " AND i.date_start BETWEEN ? AND ? GROUP BY a.ad_id, a.name HAVING sum(i.spend) >= 1"
            " ORDER BY sum(i.revenue) / sum(i.spend), a.ad_id",
            [since, until],
        ).fetchall()
    shown = at.dataframe(key="ad_list").value
    assert list(shown["Ad"]) == [name for (name,) in expected][: len(shown)] and len(shown) == min(50, len(expected))


def test_the_ads_list_filters_by_campaign_and_ad_set() -> None:
    at = open_page("viewer", "pages/ad.py")
    at.selectbox(key="ad_campaign").set_value(CAMPAIGN).run()
    assert_clean(at)
    assert set(at.dataframe(key="ad_list").value["Campaign id"]) == {CAMPAIGN}
    at.selectbox(key="ad_adset").set_value(ADSET).run()
    assert set(at.dataframe(key="ad_list").value["Ad set id"]) == {ADSET}


def test_an_entity_page_has_breadcrumbs_and_a_timeline_link() -> None:
    at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    assert_clean(at)
    links = {(link.proto.label, link.proto.page) for link in at.get("page_link")}
    labels = [label for label, _ in links]
    assert "Campaigns" in labels and "Timeline of this ad" in labels
    assert any(page.endswith("campaign") or "campaign" in page for _, page in links)
    assert at.selectbox(key="ad_pick").value == AD


def test_a_period_in_the_url_holds_on_the_next_page(data_dir: Path) -> None:
    last = _last_day(data_dir)
    since, until = str(last - dt.timedelta(days=13)), str(last - dt.timedelta(days=7))
    at = open_page("viewer", "pages/overview.py", {"since": since, "until": until, "compare": "last_year"})
    assert_clean(at)
    assert at.selectbox(key="period_preset").value == "custom"
    assert at.selectbox(key="period_compare").value == "last_year"
    at.switch_page("pages/ad.py")
    at.query_params.clear()  # a link to another page carries no dates: the session does
    at.run()
    assert_clean(at)
    assert (at.query_params["since"], at.query_params["until"], at.query_params["compare"]) == (
        since,
        until,
        "last_year",
    )
    assert f"{since} to {until}" in texts(at)


def test_no_comparison_shows_no_deltas_and_a_comparison_does() -> None:
    at = open_page("viewer", "pages/overview.py")
    spend = next(m for m in at.metric if m.label == "Spend")
    assert spend.delta
    at.selectbox(key="period_compare").set_value("none").run()
    assert_clean(at)
    assert not any(m.delta for m in at.metric)
    assert at.query_params["compare"] == "none"
    at.selectbox(key="period_compare").set_value("previous").run()
    assert next(m for m in at.metric if m.label == "Spend").delta == spend.delta


def test_a_preset_changes_the_url_and_marks_today_partial(data_dir: Path) -> None:
    at = open_page("viewer", "pages/overview.py")
    at.selectbox(key="period_preset").set_value("today").run()
    assert_clean(at)
    assert at.query_params["since"] == at.query_params["until"]
    assert "(today) is partial" in texts(at)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "2026-02-30", "until": "2026-03-01"}, "since='2026-02-30' is not a date"),
        ({"since": "2026-03-09", "until": "2026-03-01"}, "is after until"),
        ({"since": "1999-01-01", "until": "1999-01-31"}, "ends before the first stored day"),
        ({"compare": "everything"}, "compare='everything' is not one of"),
        ({"account": "act_42"}, "There is no ad account 'act_42'"),
    ],
)
def test_a_bad_period_in_the_url_gets_a_message_and_the_default(query: dict[str, str], message: str) -> None:
    default = open_page("viewer", "pages/campaign.py")
    at = open_page("viewer", "pages/campaign.py", query)
    assert not at.exception
    assert any(message in unescape(w.value) for w in at.warning), [w.value for w in at.warning]
    assert at.query_params["since"] == default.query_params["since"]
    assert at.query_params["until"] == default.query_params["until"]
    assert at.dataframe(key="campaign_list").value is not None


def test_the_timeline_opens_on_the_top_spender_without_an_id() -> None:
    at = open_page("viewer", "pages/timeline.py")
    assert_clean(at)
    assert at.header and at.get("plotly_chart")
    assert at.query_params["entity_type"] == "campaign" and at.query_params["entity_id"]


def test_an_old_timeline_link_with_days_sets_the_period(data_dir: Path) -> None:
    last = _last_day(data_dir)
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "ad", "entity_id": AD, "days": "7"})
    assert_clean(at)
    assert (at.query_params["since"], at.query_params["until"]) == (str(last - dt.timedelta(days=6)), str(last))
    assert "days" not in at.query_params


def test_the_timeline_switches_to_another_of_the_top_spenders() -> None:
    at = open_page("viewer", "pages/timeline.py")
    first = at.query_params["entity_id"]
    other = next(o for o in at.selectbox(key="timeline_pick_campaign").options if not o.endswith(first))
    name, other_id = other.rsplit(" · ", 1)
    at.selectbox(key="timeline_pick_campaign").set_value(other_id).run()
    assert_clean(at)
    assert at.query_params["entity_id"] == other_id and at.text_input(key="timeline_id").value == other_id
    assert unescape(at.header[0].value) == name
    assert at.selectbox(key="timeline_pick_campaign").value == other_id  # the box still offers the others


def test_the_list_pages_through_in_sql_and_new_filters_start_on_page_one() -> None:
    at = open_page("viewer", "pages/ad.py")
    at.selectbox(key="ad_page_size").set_value(25).run()
    first = list(at.dataframe(key="ad_list").value["Ad id"])
    assert len(first) == 25 and "1–25 of 36" in texts(at)
    at.number_input(key="ad_page").set_value(2).run()
    assert_clean(at)
    second = list(at.dataframe(key="ad_list").value["Ad id"])
    assert len(second) == 11 and not set(first) & set(second) and "26–36 of 36" in texts(at)
    at.radio(key="ad_order").set_value("worst").run()
    assert at.number_input(key="ad_page").value == 1 and "1–25 of 36" in texts(at)
    assert "lowest Spend first" in texts(at)


def test_each_period_widget_defaults_to_the_value_it_holds() -> None:
    """Streamlit sends a value set through session_state once; a browser that missed it (its run replaced
    by a quicker rerun) shows the widget's default and sends that back, which chose "Today" for a user."""
    at = open_page("viewer", "pages/overview.py")
    assert at.selectbox(key="period_preset").value == "last_30d"
    assert at.selectbox(key="period_preset").proto.default == PRESETS.index("last_30d")
    assert at.selectbox(key="period_compare").proto.default == COMPARISONS.index("previous")
    at.selectbox(key="period_preset").set_value("last_7d").run()
    at.selectbox(key="period_compare").set_value("last_year").run()
    assert_clean(at)
    assert at.selectbox(key="period_preset").proto.default == PRESETS.index("last_7d")
    assert at.selectbox(key="period_compare").proto.default == COMPARISONS.index("last_year")
