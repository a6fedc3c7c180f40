"""The dashboard's read side against a real published stub snapshot: totals equal the store's sums."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from insights_core.errors import InputError
from insights_core.models import ADDITIVE_METRICS
from insights_core.store import lists, queries
from insights_core.store.lake_reader import LakeReader
from insights_core.store.snapshots import connect_snapshot, resolve_current_snapshot
from tests.dashboard_data import build_stub_data_dir
from tests.postgres import clone_lake
from tests.store.conftest import ENGINES
from tests.store.test_lake import GENERATED


@pytest.fixture(scope="module", params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A stub sync's published data, read as the pages read it: the snapshot file, or the lake pinned."""
    root = tmp_path_factory.mktemp("queries")
    if request.param == "duckdb":
        settings = build_stub_data_dir(root / "data", days_back=60)
        path = resolve_current_snapshot(settings.current_snapshot_link)
        assert path.parent == settings.snapshot_dir and path != settings.db_path
        con = connect_snapshot(path)
        cursor, close = con.cursor(), con.close
    else:
        lake = root / "lake"
        lake.mkdir()
        url = clone_lake(request.getfixturevalue("postgres_server"), request.getfixturevalue("lake_template"), lake)
        settings = build_stub_data_dir(
            root / "data", days_back=60, store="ducklake", catalog_url=url, lake_data_path=str(lake)
        )
        reader = LakeReader(settings)
        snapshot = reader.fetch_published_snapshot()
        con, cursor, close = reader.cursor(snapshot), reader.cursor(snapshot), reader.close
    rows = con.execute("SELECT * EXCLUDE (created_at, updated_at) FROM meta_ad_insights").df()
    rows = rows.drop(columns=[c for c in GENERATED if c in rows.columns])
    rows[["spend", "conversions", "revenue"]] = rows[["spend", "conversions", "revenue"]].astype(float)
    rows["date_start"] = pd.to_datetime(rows["date_start"]).dt.date
    yield cursor, rows
    close()


@pytest.fixture(scope="module")
def window(store) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    bounds = queries.fetch_data_bounds(store[0])
    until = bounds.last_day
    since = until - dt.timedelta(days=29)
    return since, until, since - dt.timedelta(days=30), since - dt.timedelta(days=1)


def pandas_sums(rows: pd.DataFrame, level: str, since: dt.date, until: dt.date, by: str | None = None):
    part = rows[(rows["entity_type"] == level) & (rows["date_start"] >= since) & (rows["date_start"] <= until)]
    metrics = list(ADDITIVE_METRICS)
    return part.groupby(by)[metrics].sum() if by else part[metrics].sum()


def test_bounds_cover_the_synced_window(store) -> None:
    con, rows = store
    bounds = queries.fetch_data_bounds(con)
    assert bounds.first_day == rows["date_start"].min() and bounds.last_day == rows["date_start"].max()
    assert list(bounds.accounts["currency"]) == ["USD"]


def test_totals_equal_the_stores_sums_at_every_level(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    totals = queries.fetch_totals(con, since, until)
    assert set(totals) == set(ADDITIVE_METRICS)  # reach and frequency are never summed
    for level in ("campaign", "adset", "ad"):
        expected = pandas_sums(rows, level, since, until)
        for metric in ADDITIVE_METRICS:
            assert totals[metric] == pytest.approx(expected[metric], abs=0.005), (level, metric)
    assert totals["spend"] > 0
    assert queries.fetch_totals(con, until + dt.timedelta(days=1), until + dt.timedelta(days=5))["spend"] == 0


def test_period_totals_are_both_periods_totals_from_one_query(store, window) -> None:
    con, _ = store
    since, until, prev_since, prev_until = window
    current, previous = queries.fetch_period_totals(con, since, until, prev_since, prev_until)
    assert current == pytest.approx(queries.fetch_totals(con, since, until), abs=0.005)
    assert previous == pytest.approx(queries.fetch_totals(con, prev_since, prev_until), abs=0.005)
    assert previous["spend"] > 0
    later = until + dt.timedelta(days=1), until + dt.timedelta(days=5)
    assert queries.fetch_period_totals(con, *later, since, until)[0]["spend"] == 0


def test_daily_totals_per_day(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    daily = queries.fetch_daily_totals(con, since, until)
    expected = pandas_sums(rows, "campaign", since, until, by="date_start")
    assert len(daily) == len(expected) == 30
    assert daily["spend"].to_numpy() == pytest.approx(expected["spend"].to_numpy())
    assert daily["clicks"].tolist() == expected["clicks"].tolist()


def test_campaign_summary_has_both_periods(store, window) -> None:
    con, rows = store
    since, until, prev_since, prev_until = window
    summary = queries.fetch_campaign_summary(con, since, until, prev_since, prev_until).set_index("campaign_id")
    current = pandas_sums(rows, "campaign", since, until, by="entity_id")
    previous = pandas_sums(rows, "campaign", prev_since, prev_until, by="entity_id")
    assert summary.loc[current.index, "spend"].to_numpy() == pytest.approx(current["spend"].to_numpy())
    assert summary.loc[previous.index, "prev_revenue"].to_numpy() == pytest.approx(previous["revenue"].to_numpy())
    assert summary["spend"].is_monotonic_decreasing
    assert summary["name"].notna().all() and summary["objective"].notna().all()


def test_campaign_counts(store) -> None:
    con, _ = store
    total, active = queries.fetch_campaign_counts(con)
    assert total == 6 and 0 < active <= total
    assert active == con.execute("SELECT count(*) FROM campaigns WHERE effective_status = 'ACTIVE'").fetchone()[0]


def test_children_of_a_campaign_add_up_to_it(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    campaign = queries.fetch_campaign_summary(con, since, until, since, since)["campaign_id"].iloc[0]
    totals = queries.fetch_entity_totals(con, "campaign", campaign, since, until)
    adsets = queries.fetch_children(con, "adset", "campaign", campaign, since, until)
    ads = queries.fetch_children(con, "ad", "campaign", campaign, since, until)
    assert len(adsets) == 3 and len(ads) == 6  # every child listed, delivering or not
    for children in (adsets, ads):
        for metric in ADDITIVE_METRICS:
            assert children[metric].sum() == pytest.approx(totals[metric], abs=0.01)
    adset = adsets["entity_id"].iloc[0]
    adset_ads = queries.fetch_children(con, "ad", "adset", adset, since, until)
    assert len(adset_ads) == 2 and set(adset_ads["adset_id"]) == {adset}
    with pytest.raises(InputError):
        queries.fetch_children(con, "campaign", "ad", adset, since, until)


def test_entity_daily_rows_keep_reach_as_reported(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    ad = rows[rows["entity_type"] == "ad"]["entity_id"].iloc[0]
    daily = queries.fetch_entity_daily(con, "ad", ad, since, until)
    expected = rows[(rows["entity_id"] == ad) & (rows["date_start"] >= since)].sort_values("date_start")
    assert daily["reach"].tolist() == expected["reach"].tolist()
    assert daily["frequency"].to_numpy() == pytest.approx(expected["frequency"].to_numpy())


def test_ad_peers_are_the_delivering_ads_of_the_campaign(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    campaign = rows[rows["entity_type"] == "campaign"]["entity_id"].iloc[0]
    peers = queries.fetch_ad_peers(con, campaign, since, until).set_index("ad_id")
    part = rows[(rows["entity_type"] == "ad") & (rows["campaign_id"] == campaign) & (rows["date_start"] >= since)]
    expected = part.groupby("entity_id")["clicks"].sum()
    assert sorted(peers.index) == sorted(expected.index)
    assert peers.loc[expected.index, "clicks"].tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("level", "known"),
    [("campaign", "120210000000000001"), ("adset", "120220000000000002"), ("ad", "120230000000000003")],
)
def test_fetch_entity(store, level: str, known: str) -> None:
    con, _ = store
    entity = queries.fetch_entity(con, level, known)
    assert entity is not None and entity[f"{level}_id"] == known and entity["currency"] == "USD"
    assert queries.fetch_entity(con, level, "999") is None


def test_levels_are_checked_before_any_sql(store) -> None:
    con, _ = store
    with pytest.raises(InputError, match="entity type"):
        queries.fetch_entity(con, "campaigns; DROP TABLE ads", "1")
    with pytest.raises(InputError):
        queries.fetch_entity_daily(con, "account", "1", dt.date(2026, 1, 1), dt.date(2026, 1, 2))


@pytest.mark.parametrize("text", ["' OR 1=1 --", "'; DROP TABLE campaigns; --", "%", "_", "\\"])
def test_search_treats_input_as_text(store, text: str) -> None:
    con, _ = store
    assert queries.search_campaigns(con, text).empty
    assert con.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 6


def test_search_by_name_part_or_id(store) -> None:
    con, _ = store
    name = con.execute("SELECT name FROM campaigns ORDER BY campaign_id LIMIT 1").fetchone()[0]
    found = queries.search_campaigns(con, name.split(" ")[0].upper())
    assert name in set(found["name"])
    by_id = queries.search_campaigns(con, "120210000000000004")
    assert by_id["campaign_id"].iloc[0] == "120210000000000004"


def test_existing_ids(store) -> None:
    con, _ = store
    assert queries.fetch_existing_ids(con, "ad", ["120230000000000001", "5", "1 OR 1=1"]) == {"120230000000000001"}


def test_rows_stream_in_batches(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    count = queries.count_insight_rows(con, "ad", since, until)
    batches = list(queries.iter_insight_rows(con, "ad", since, until, batch_rows=100))
    assert count == sum(len(b) for b in batches) > 100 and len(batches) > 1
    assert all(len(b) <= 100 for b in batches)
    frame = pd.concat(batches)
    assert tuple(frame.columns) == queries.EXPORT_COLUMNS
    assert frame["spend"].sum() == pytest.approx(pandas_sums(rows, "ad", since, until)["spend"])
    assert frame["name"].notna().all()


def test_snapshot_is_opened_read_only(store) -> None:
    con, _ = store
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM campaigns")


# the list pages' query (insights_core.store.lists): one page, sums and ratios from the period's rows


def _store_list(con, level: str, since: dt.date, until: dt.date) -> pd.DataFrame:
    """Every entity of `level` with its sums in the period, computed here from the raw rows (pandas)."""
    table, id_column = {
        "campaign": ("campaigns", "campaign_id"),
        "adset": ("adsets", "adset_id"),
        "ad": ("ads", "ad_id"),
    }[level]
    rows = con.execute(
        "SELECT entity_id, spend::DOUBLE AS spend, revenue::DOUBLE AS revenue, clicks, impressions"
        " FROM meta_ad_insights WHERE entity_type = ? AND date_start BETWEEN ? AND ?",
        [level, since, until],
    ).df()
    sums = rows.groupby("entity_id")[["spend", "revenue", "clicks", "impressions"]].sum()
    entities = con.execute(f"SELECT {id_column} AS entity_id, name FROM {table}").df().set_index("entity_id")
    return entities.join(sums).fillna(0.0)


@pytest.mark.parametrize("level", ["campaign", "adset", "ad"])
def test_a_list_holds_every_entity_with_the_stores_sums_and_ratios(store, window, level: str) -> None:
    con, _ = store
    since, until, *_ = window
    expected = _store_list(con, level, since, until)
    page = lists.fetch_entity_list(con, lists.ListRequest(level, since, until, limit=500))
    assert page.total == len(page.rows) == len(expected)
    got = page.rows.set_index("entity_id")
    for metric in ("spend", "revenue", "clicks", "impressions"):
        assert got[metric].to_dict() == pytest.approx(expected[metric].to_dict(), abs=0.005), metric
    spent = expected[expected["spend"] > 0]
    assert got.loc[spent.index, "roas"].to_numpy() == pytest.approx((spent["revenue"] / spent["spend"]).to_numpy())
    assert got.loc[expected["spend"] == 0, "roas"].isna().all()  # no spend: no ROAS, never 0
    if level == "ad":  # the ad's ad set and campaign, by name, beside it
        names = con.execute(
            "SELECT a.ad_id, s.name, c.name FROM ads a JOIN adsets s USING (adset_id) JOIN campaigns c"
            " ON c.campaign_id = a.campaign_id"
        ).fetchall()
        assert {(a, s, c) for a, s, c in names} == set(
            zip(page.rows["entity_id"], page.rows["adset_name"], page.rows["campaign_name"])
        )


def test_worst_roas_first_among_those_that_spent_pages_through_the_store_order(store, window) -> None:
    con, _ = store
    since, until, *_ = window
    expected = _store_list(con, "ad", since, until)
    expected = expected[expected["spend"] >= 1].assign(roas=lambda f: f["revenue"] / f["spend"])
    order = list(expected.reset_index().sort_values(["roas", "entity_id"], kind="stable")["entity_id"])
    request = lists.ListRequest("ad", since, until, min_spend=1, sort="roas", best_first=False, limit=5)
    pages = [lists.fetch_entity_list(con, replace(request, offset=offset)) for offset in range(0, len(order), 5)]
    assert all(p.total == len(order) for p in pages)
    assert [e for p in pages for e in p.rows["entity_id"]] == order


def test_costs_sort_lowest_first_when_best_first(store, window) -> None:
    con, _ = store
    since, until, *_ = window
    page = lists.fetch_entity_list(con, lists.ListRequest("adset", since, until, sort="cpc", limit=500))
    cpc = page.rows["cpc"].dropna().tolist()
    assert cpc == sorted(cpc)
    missing = page.rows["cpc"].isna().tolist()
    assert missing == sorted(missing)  # ad sets without clicks (no CPC) come last


def test_filters_status_objective_parent_name_and_min_spend(store, window) -> None:
    con, _ = store
    since, until, *_ = window
    campaign = con.execute("SELECT campaign_id, objective FROM campaigns ORDER BY campaign_id LIMIT 1").fetchone()
    adset = con.execute(
        "SELECT adset_id FROM adsets WHERE campaign_id = ? ORDER BY 1 LIMIT 1", [campaign[0]]
    ).fetchone()
    page = lists.fetch_entity_list(con, lists.ListRequest("ad", since, until, campaign_id=campaign[0], limit=500))
    assert set(page.rows["campaign_id"]) == {campaign[0]} and page.total == len(page.rows) > 0
    page = lists.fetch_entity_list(con, lists.ListRequest("ad", since, until, adset_id=adset[0], limit=500))
    assert set(page.rows["adset_id"]) == {adset[0]}
    page = lists.fetch_entity_list(con, lists.ListRequest("adset", since, until, objectives=(campaign[1],), limit=500))
    assert set(page.rows["objective"]) == {campaign[1]}
    statuses, objectives = lists.fetch_list_choices(con, "ad")
    assert campaign[1] in objectives
    for status in statuses:
        page = lists.fetch_entity_list(con, lists.ListRequest("ad", since, until, statuses=(status,), limit=500))
        [(count,)] = con.execute("SELECT count(*) FROM ads WHERE effective_status = ?", [status]).fetchall()
        assert page.total == count and set(page.rows["effective_status"]) == {status}
    name = con.execute("SELECT name FROM campaigns ORDER BY campaign_id LIMIT 1").fetchone()[0]
    word = name.split(" ")[0].upper()
    page = lists.fetch_entity_list(con, lists.ListRequest("campaign", since, until, name=word, limit=500))
    assert page.total > 0 and all(word.lower() in n.lower() for n in page.rows["name"])
    page = lists.fetch_entity_list(con, lists.ListRequest("campaign", since, until, name="100%_", limit=500))
    assert page.total == 0  # LIKE wildcards typed are matched literally
    page = lists.fetch_entity_list(con, lists.ListRequest("ad", since, until, min_spend=50, limit=500))
    assert (page.rows["spend"] >= 50).all()
    beyond = lists.fetch_entity_list(con, lists.ListRequest("ad", since, until, offset=10_000))
    assert beyond.rows.empty and beyond.total == len(_store_list(con, "ad", since, until))


@pytest.mark.parametrize(
    "request_",
    [
        lists.ListRequest("ad", dt.date(2026, 1, 2), dt.date(2026, 1, 1)),
        lists.ListRequest("ad", dt.date(2026, 1, 1), dt.date(2026, 1, 2), sort="spend; DROP TABLE ads"),
        lists.ListRequest("ad", dt.date(2026, 1, 1), dt.date(2026, 1, 2), limit=0),
        lists.ListRequest("account", dt.date(2026, 1, 1), dt.date(2026, 1, 2)),  # type: ignore[arg-type]
    ],
)
def test_a_bad_list_request_is_refused_before_any_sql(store, request_) -> None:
    with pytest.raises(InputError):
        lists.fetch_entity_list(store[0], request_)


def test_campaign_summary_with_another_or_no_comparison(store, window) -> None:
    con, rows = store
    since, until, *_ = window
    year_before = (since - dt.timedelta(days=365), until - dt.timedelta(days=365))
    summary = queries.fetch_campaign_summary(con, since, until, *year_before)
    assert (summary["prev_spend"] == 0).all()  # nothing stored a year back
    none = queries.fetch_campaign_summary(con, since, until, None, None)
    assert none["spend"].sum() == pytest.approx(pandas_sums(rows, "campaign", since, until)["spend"], abs=0.01)
    overlapping = queries.fetch_campaign_summary(con, since, until, since, until)
    assert overlapping["prev_spend"].tolist() == pytest.approx(overlapping["spend"].tolist())
    totals, previous = queries.fetch_period_totals(con, since, until, None, None)
    assert previous == dict.fromkeys(ADDITIVE_METRICS, 0.0) and totals["spend"] > 0
