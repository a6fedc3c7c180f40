"""The Breakdowns section of the Overview, Campaign, Ad set and Ad pages, headless (AppTest) on stub data."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights_core.dashboard.breakdowns import FAMILY_TITLES
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN, assert_clean, new_app, open_page, texts, use_data_dir
from tests.dashboard.markdown_text import unescape

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")
STUB_DAYS_BACK = 20
PAGES = {
    "overview": ("pages/overview.py", {}),
    "campaign": ("pages/campaign.py", {"campaign_id": CAMPAIGN}),
    "adset": ("pages/adset.py", {"adset_id": ADSET}),
    "ad": ("pages/ad.py", {"ad_id": AD}),
}


def section_tables(at) -> dict[str, object]:
    """The section's data frames drawn in this run, by their first column (the open tab's family)."""
    frames = [f.value for f in at.dataframe if "Impressions" in f.value.columns and "Reach" not in f.value.columns]
    segment_frames = [f for f in frames if f.columns[0] in ("Age", "Country", "Platform", "Device")]
    return {f.columns[0]: f for f in segment_frames}


@pytest.mark.usefixtures("app_on_data_dir")
@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_has_a_breakdowns_section_with_every_family(page: str) -> None:
    path, query = PAGES[page]
    prefix = "overview" if page == "overview" else page
    at = open_page("analyst", path, query)
    assert_clean(at)
    assert "Breakdowns" in [s.value for s in at.subheader]
    assert [t.label for t in at.tabs][-4:] == list(FAMILY_TITLES.values())
    downloads = {b.key for b in at.get("download_button") if b.key and "_breakdown_" in b.key}
    assert any(k.startswith(f"{prefix}_breakdown_age_gender") for k in downloads), downloads
    tables: dict[str, object] = {}
    for title in FAMILY_TITLES.values():
        at.session_state[f"{prefix}_breakdown_family"] = title  # what clicking the tab sends
        at.run()
        assert_clean(at)
        shown = section_tables(at)
        assert len(shown) == 1, f"only the open tab ({title}) is drawn, got {list(shown)}"
        tables.update(shown)
    assert set(tables) == {"Age", "Country", "Platform", "Device"}, list(tables)
    for table in tables.values():
        assert len(table) > 0 and "Reach" not in table.columns, "period tables never show a summed reach"
    assert "unknown" in set(tables["Device"]["Device"])
    at.radio(key=f"{prefix}_breakdown_metric").set_value("roas").run()
    assert_clean(at)


@pytest.mark.usefixtures("app_on_data_dir")
def test_reach_is_per_day_as_reported_on_ads_and_absent_where_rolled_up() -> None:
    ad = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    assert_clean(ad)
    reach_tables = [f.value for f in ad.dataframe if "Reach" in f.value.columns and "Age" in f.value.columns]
    assert reach_tables and "Date" in reach_tables[0].columns, "an ad's reach per segment is shown per day"
    assert "Reach per segment and day, as reported (never summed)" in [e.label for e in ad.expander]
    campaign = open_page("viewer", "pages/campaign.py", {"campaign_id": CAMPAIGN})
    assert "Reach per segment is not available for this campaign" in texts(campaign)
    overview = open_page("viewer", "pages/overview.py")
    assert "Reach is not shown for all campaigns together" in texts(overview)


@pytest.mark.usefixtures("app_on_data_dir")
def test_the_overview_age_table_adds_up_to_the_campaigns_totals(data_dir: Path) -> None:
    con = connect_snapshot(resolve_current_snapshot(data_dir / "current.duckdb"))
    try:
        since, until = con.execute(
            "SELECT max(date_start) - INTERVAL 29 DAY, max(date_start) FROM meta_ad_insights"
        ).fetchone()
        impressions = con.execute(
            "SELECT sum(impressions) FROM meta_ad_insights"
            " WHERE entity_type = 'campaign' AND date_start BETWEEN ? AND ?",
            [since, until],
        ).fetchone()[0]
    finally:
        con.close()
    # the period in the URL, as a shared link gives it (the default period ends yesterday)
    at = open_page("analyst", "pages/overview.py", {"since": str(since)[:10], "until": str(until)[:10]})
    shown = section_tables(at)["Age"]
    shown_impressions = shown["Impressions"].astype(str).str.replace(",", "").astype(int).sum()
    assert shown_impressions == impressions


def test_a_bad_family_stops_the_dashboard_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_data_dir(monkeypatch, tmp_path / "data", INSIGHTS_BREAKDOWNS="age_gender,gender")
    at = new_app("admin")
    at.run()
    assert not at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "INSIGHTS_BREAKDOWNS" in errors[0] and "'gender'" in errors[0], errors
    assert len(errors[0].splitlines()) == 1
