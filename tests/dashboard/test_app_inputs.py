"""Bad input in any box gets a clear message; exports from the pages; a new snapshot is picked up."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from insights_core.dashboard import data
from insights_core.models import SyncRequest
from insights_core.store import queries
from insights_core.store.snapshots import connect_snapshot
from insights_core.worker import SyncWorker
from tests.dashboard.app_harness import AD, CAMPAIGN, assert_clean, open_page, texts, use_data_dir
from tests.dashboard.xlsx_cells import read_xlsx_cells
from tests.dashboard_data import build_stub_data_dir

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 40


@pytest.mark.parametrize(
    ("page", "query", "message"),
    [
        ("campaign", {"campaign_id": "abc"}, "is not a Meta object id"),
        ("campaign", {"campaign_id": "1 OR 1=1"}, "is not a Meta object id"),
        ("campaign", {"campaign_id": "999"}, "No campaign with id 999"),
        ("adset", {"adset_id": "1'; DROP TABLE adsets; --"}, "is not a Meta object id"),
        ("adset", {"adset_id": CAMPAIGN}, f"No ad set with id {CAMPAIGN}"),
        ("ad", {"ad_id": "12,13"}, "enter one ad id"),
        ("ad", {"ad_id": "42"}, "No ad with id 42"),
        ("timeline", {"entity_type": "ad", "entity_id": "x; DELETE FROM ads", "days": "30"}, "is not a Meta object id"),
        ("timeline", {"entity_type": "ad", "entity_id": AD, "days": "0"}, "days back must be from 1 to 365"),
        ("timeline", {"entity_type": "ad", "entity_id": AD, "days": "366"}, "days back must be from 1 to 365"),
        ("timeline", {"entity_type": "ad", "entity_id": AD, "days": "soon"}, "days back must be a whole number"),
        ("timeline", {"entity_type": "campaign", "entity_id": AD, "days": "7"}, f"No campaign with id {AD}"),
        ("timeline", {"entity_type": "account", "entity_id": AD, "days": "7"}, "entity type must be one of"),
    ],
)
def test_bad_input_gets_a_clear_message(page: str, query: dict[str, str], message: str) -> None:
    at = open_page("viewer", f"pages/{page}.py", query)
    assert not at.exception, [e.value for e in at.exception]
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("plotly_chart")


def test_sql_typed_in_a_list_search_is_only_text() -> None:
    at = open_page("viewer", "pages/ad.py")
    assert_clean(at)
    at.text_input(key="ad_search").input("DROP TABLE ads").run()
    assert not at.exception
    assert "No ad name or id matches" in at.warning[0].value
    at.text_input(key="ad_search").input(AD).run()  # an exact id finds its ad
    assert_clean(at)
    assert list(at.dataframe(key="ad_list").value["Ad id"]) == [AD]


def test_switching_to_another_ad_updates_the_deep_link() -> None:
    at = open_page("viewer", "pages/ad.py", {"ad_id": AD})
    other = next(option for option in at.selectbox(key="ad_pick").options if not option.endswith(AD))
    other_id = other.rsplit(" · ", 1)[1]
    at.selectbox(key="ad_pick").set_value(other_id).run()
    assert_clean(at)
    assert at.query_params["ad_id"] == other_id


def test_a_search_without_match_says_so() -> None:
    at = open_page("viewer", "pages/campaign.py")
    at.text_input(key="campaign_search").input("'; SELECT * FROM campaigns; --").run()
    assert not at.exception
    assert "No campaign name or id matches" in at.warning[0].value


def test_timeline_days_back_box(data_dir: Path) -> None:
    at = open_page("viewer", "pages/timeline.py", {"entity_type": "campaign", "entity_id": CAMPAIGN, "days": "7"})
    assert_clean(at)
    at.text_input(key="timeline_days").input("400").run()
    assert "days back must be from 1 to 365" in at.error[0].value
    at.text_input(key="timeline_days").input("10").run()
    assert_clean(at)
    assert "(10 days" in texts(at)


def test_streamed_row_export_matches_the_store(data_dir: Path) -> None:
    snapshot = data.Snapshot(str((data_dir / "current.duckdb").resolve()), 0)
    con = connect_snapshot(Path(snapshot.path))
    last = queries.fetch_data_bounds(con).last_day
    since = last - dt.timedelta(days=9)
    expected = queries.count_insight_rows(con, "ad", since, last)
    spend = con.execute(
        "SELECT sum(spend)::DOUBLE FROM meta_ad_insights WHERE entity_type = 'ad' AND date_start BETWEEN ? AND ?",
        [since, last],
    ).fetchone()[0]
    con.close()
    exported = data.rows_export(snapshot, "ad", since, last, None, "csv", headers="raw")()
    rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    assert len(rows) == expected > 0
    # every stored column, in order, with the names of the ad's ad set and campaign beside their ids
    assert [c for c in rows[0] if not c.endswith("_name")][: len(queries.EXPORT_COLUMNS)] == list(
        queries.EXPORT_COLUMNS
    )
    assert all(r["campaign_name"] and r["adset_name"] for r in rows)
    assert {"ctr", "cpc", "roas"} <= set(rows[0])
    assert sum(float(r["spend"]) for r in rows) == pytest.approx(spend, abs=0.01)
    cells = read_xlsx_cells(data.rows_export(snapshot, "campaign", since, last, None, "xlsx")())
    assert cells[("A", 1)] == "Date" and max(row for _, row in cells) == 6 * 10 + 1


def test_pages_follow_a_newly_published_snapshot(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    settings = build_stub_data_dir(tmp_path / "swap", days_back=5)
    use_data_dir(monkeypatch, settings.data_dir)
    at = open_page("admin", "pages/sync.py")
    first = len(next(d.value for d in at.dataframe if "Sync id" in d.value.columns))
    worker = SyncWorker(settings)
    try:
        worker.run_once(SyncRequest(days_back=2))  # publishes a new generation
    finally:
        worker.close()
    at.run()
    assert_clean(at)
    assert len(next(d.value for d in at.dataframe if "Sync id" in d.value.columns)) == first + 1
