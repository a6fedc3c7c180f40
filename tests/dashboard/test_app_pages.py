"""Every page renders for every role that may open it, on stub data, with the figures and tables it promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from insights_core.dashboard.formatting import format_money
from insights_core.roles import ROLES, can, pages_for
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from insights_core.store.warehouse import Warehouse
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN, PAGE_QUERIES, assert_clean, open_page, texts, use_data_dir

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 60


CASES = [(role, page.key, page.path, page.title) for role in ROLES for page in pages_for(role)]


@pytest.mark.parametrize(("role", "key", "path", "title"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_page_renders_for_role(role: str, key: str, path: str, title: str) -> None:
    at = open_page(role, path, PAGE_QUERIES.get(key))
    assert_clean(at)
    assert [t.value for t in at.title] == [title]
    downloads = len(at.get("download_button"))
    if key == "sync" or key == "users":
        assert downloads > 0  # admins and managers may export
    elif can(role, "export"):
        assert downloads >= 2, f"{role} should see CSV and Excel downloads on {key}"
    else:
        assert downloads == 0, f"{role} must not see downloads on {key}"


def test_overview_shows_totals_and_ratios(data_dir: Path) -> None:
    at = open_page("viewer", "pages/overview.py")
    assert_clean(at)
    labels = [m.label for m in at.metric]
    for label in (
        "Campaigns",
        "Active campaigns",
        "Spend",
        "Impressions",
        "Clicks",
        "Conversions",
        "Revenue",
        "CTR",
        "CPC",
        "ROAS",
    ):
        assert label in labels
    campaigns = next(m for m in at.metric if m.label == "Campaigns")
    assert campaigns.value == "6"
    spend = next(m for m in at.metric if m.label == "Spend")
    assert spend.value.startswith("$") and spend.delta  # compared with the previous period
    page_text = texts(at)
    for section in ("Alerts", "Daily trend", "Top campaigns", "Last sync"):
        assert section in page_text
    assert "succeeded" in page_text and "stub" in page_text
    assert len(at.get("plotly_chart")) >= 2


def test_top_campaigns_sort_by_roas(data_dir: Path) -> None:
    at = open_page("analyst", "pages/overview.py")
    at.radio(key="overview_sort").set_value("roas").run()
    assert_clean(at)
    table = at.dataframe(key="overview_campaigns").value
    roas = [float(v.removesuffix("×")) for v in table["ROAS"] if v != "—"]
    assert roas == sorted(roas, reverse=True) and len(roas) == 6


def test_campaign_page_lists_its_ad_sets_and_ads_with_a_score(data_dir: Path) -> None:
    at = open_page("viewer", "pages/campaign.py", {"campaign_id": CAMPAIGN})
    assert_clean(at)
    assert at.selectbox(key="campaign_pick").value == CAMPAIGN
    headings = [h.value for h in at.subheader]
    assert "Ad sets (3)" in headings and "Ads (6)" in headings
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ad sets"] == "3" and metrics["Ads"] == "6"
    score = float(metrics["Efficiency score"])
    assert 0 <= score <= 100
    assert "Efficiency score (0–100)" in next(m.help for m in at.metric if m.label == "Efficiency score")
    assert len(at.dataframe(key="campaign_adsets").value) == 3


def test_campaign_search_by_name(data_dir: Path) -> None:
    at = open_page("viewer", "pages/campaign.py")
    assert_clean(at)
    names = list(at.dataframe(key="campaign_list").value["Campaign"])
    assert len(names) == 6  # the page opens on the list of every campaign
    word = names[0].split(" ")[0]
    at.text_input(key="campaign_search").input(word).run()
    assert_clean(at)
    found = list(at.dataframe(key="campaign_list").value["Campaign"])
    assert found and all(word.lower() in name.lower() for name in found)
    assert len(found) == sum(word.lower() in name.lower() for name in names)


def test_adset_page_shows_targeting(data_dir: Path) -> None:
    at = open_page("viewer", "pages/adset.py", {"adset_id": ADSET})
    assert_clean(at)
    labels = {m.label for m in at.metric}
    assert {"Ages", "Genders", "Countries"} <= labels
    assert "Placements" in texts(at)
    assert len(at.dataframe(key="adset_ads").value) == 2


def test_ad_page_compares_with_peers(data_dir: Path) -> None:
    at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    assert_clean(at)
    comparisons = [d.value for d in at.dataframe if "Peer median" in d.value.columns]
    assert len(comparisons) == 2  # same ad set, same campaign
    for table in comparisons:
        assert list(table["Metric"]) == ["CTR", "CPC", "ROAS"]
        assert {"Percentile", "Peer median", "vs median"} <= set(table.columns)
    assert len(at.get("plotly_chart")) == 2 + 1  # daily trend, peers; the Breakdowns section's open family


def test_timeline_switches_metric(data_dir: Path) -> None:
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "campaign", "entity_id": CAMPAIGN, "days": "14"})
    assert_clean(at)
    assert len(next(d.value for d in at.dataframe if "Reach" in d.value.columns)) == 14
    at.selectbox(key="timeline_metric").set_value("frequency").run()
    assert_clean(at)
    assert "Frequency per day" in str(at.get("plotly_chart")[0].proto.spec)


def test_no_snapshot_yet_gives_a_plain_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_data_dir(monkeypatch, tmp_path / "empty")
    for path in ("pages/overview.py", "pages/campaign.py", "pages/timeline.py"):
        at = open_page("admin", path)
        assert not at.exception
        assert any("No data has been published yet" in i.value for i in at.info), path


def test_the_app_never_opens_the_workers_file(data_dir: Path) -> None:
    for path in ("pages/overview.py", "pages/campaign.py", "pages/sync.py"):
        assert_clean(open_page("admin", path, PAGE_QUERIES.get(Path(path).stem)))
    # an open read-only handle on insights.duckdb in this process would make this fail
    warehouse = Warehouse(data_dir / "insights.duckdb")
    warehouse.close()


def test_picking_another_campaign_updates_the_deep_link(data_dir: Path) -> None:
    at = open_page("viewer", "pages/campaign.py", {"campaign_id": CAMPAIGN})
    other = next(o for o in at.selectbox(key="campaign_pick").options if not o.endswith(CAMPAIGN))
    other_id = other.rsplit(" · ", 1)[1]
    at.selectbox(key="campaign_pick").set_value(other_id).run()
    assert_clean(at)
    assert at.query_params["campaign_id"] == other_id
    assert at.selectbox(key="campaign_pick").value == other_id


def test_users_page_lists_users_without_password_hashes(data_dir: Path) -> None:
    at = open_page("admin", "pages/users.py")
    assert_clean(at)
    users = next(d.value for d in at.dataframe if "User" in d.value.columns)
    assert sorted(users["User"]) == ["admin", "analyst", "manager", "viewer"]
    shown = texts(at) + "".join(d.value.to_csv() for d in at.dataframe)
    assert "$2b$" not in shown and "password" not in users.columns.str.lower()


def test_overview_figures_equal_the_stores_sums(data_dir: Path) -> None:
    """The default period: the 30 complete days before today (the stub syncs through today, a partial day)."""
    con = connect_snapshot(resolve_current_snapshot(data_dir / "current.duckdb"))
    last = con.execute("SELECT max(date_start) FROM meta_ad_insights").fetchone()[0]
    spend, revenue, clicks, impressions = con.execute(
        "SELECT sum(spend)::DOUBLE, sum(revenue)::DOUBLE, sum(clicks), sum(impressions) FROM meta_ad_insights"
        " WHERE entity_type = 'ad' AND date_start BETWEEN ?::DATE - 30 AND ?::DATE - 1",
        [last, last],
    ).fetchone()
    con.close()
    at = open_page("viewer", "pages/overview.py")
    assert at.query_params["until"] == str(last - dt.timedelta(days=1))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Spend"] == format_money(spend)
    assert metrics["Revenue"] == format_money(revenue)
    assert metrics["Clicks"] == f"{clicks:,}"
    assert metrics["ROAS"] == f"{revenue / spend:.2f}×"
    assert metrics["CTR"] == f"{clicks / impressions * 100:.2f}%"
