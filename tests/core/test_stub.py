"""The demo account: deterministic across processes, realistic, and consistent across levels."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess

import numpy as np
import pandas as pd
import pytest

from insights_core.models import ADDITIVE_METRICS, DateWindow, Scope
from insights_core.sources.stub import StubShape, StubSource
from tests.helpers import PYTHON, ROOT

WINDOW = DateWindow(dt.date(2026, 9, 1), dt.date(2026, 10, 30))


def full_scope(source: StubSource) -> Scope:
    tree = source.fetch_entities(source.account)
    return Scope(
        {
            "campaign": frozenset(tree.campaigns["campaign_id"]),
            "adset": frozenset(tree.adsets["adset_id"]),
            "ad": frozenset(tree.ads["ad_id"]),
        },
        is_full=True,
    )


def all_rows(source: StubSource, window: DateWindow = WINDOW, scope: Scope | None = None) -> pd.DataFrame:
    batches = source.fetch_insights(source.account, window, scope or full_scope(source), "sync-1")
    return pd.concat([b.rows for b in batches], ignore_index=True)


@pytest.fixture(scope="module")
def default_rows() -> pd.DataFrame:
    """The default 100 x 5 x 3 account over 60 days."""
    return all_rows(StubSource())


DIGEST_SCRIPT = """
import datetime as dt, hashlib
from insights_core.models import DateWindow, Scope
from insights_core.sources.stub import StubSource, StubShape
src = StubSource(StubShape(7, 3, 2))
tree = src.fetch_entities(src.account)
scope = Scope(dict(campaign=frozenset(tree.campaigns.campaign_id), adset=frozenset(tree.adsets.adset_id),
                   ad=frozenset(tree.ads.ad_id)), True)
window = DateWindow(dt.date(2026, 1, 1), dt.date(2026, 3, 31))
rows = [b.rows for b in src.fetch_insights(src.account, window, scope, "s")]
h = hashlib.sha256()
for frame in rows:
    h.update(frame.sort_values(["entity_type", "entity_id", "date_start"]).to_csv(index=False).encode())
h.update(tree.adsets.to_csv(index=False).encode())
print(h.hexdigest())
"""


def test_same_ids_give_same_numbers_in_separate_processes_with_different_hash_seeds() -> None:
    digests = {
        subprocess.run(
            [PYTHON, "-c", DIGEST_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert len(digests) == 1
    assert len(next(iter(digests))) == 64


def test_numbers_depend_only_on_entity_and_date_not_on_window_or_scope() -> None:
    source = StubSource(StubShape(4, 2, 2))
    wide = all_rows(source, DateWindow(dt.date(2026, 9, 1), dt.date(2026, 9, 30)))
    narrow = all_rows(source, DateWindow(dt.date(2026, 9, 10), dt.date(2026, 9, 12)))
    tree = source.fetch_entities(source.account)
    one_ad = str(tree.ads["ad_id"].iloc[3])
    only_ad = all_rows(
        source,
        DateWindow(dt.date(2026, 9, 10), dt.date(2026, 9, 12)),
        Scope({"ad": frozenset({one_ad})}, is_full=False),
    )
    key = ["entity_type", "entity_id", "date_start"]
    merged = narrow.merge(wide, on=key, suffixes=("", "_wide"))
    assert len(merged) == len(narrow) > 0
    for metric in ADDITIVE_METRICS + ("reach", "unique_clicks"):
        assert (merged[metric] == merged[f"{metric}_wide"]).all(), metric
    assert set(only_ad["entity_id"]) == {one_ad}
    same = only_ad.merge(narrow, on=key, suffixes=("", "_n"))
    assert len(same) == len(only_ad) and (same["spend"] == same["spend_n"]).all()


def test_default_account_shape_and_entity_details() -> None:
    tree = StubSource().fetch_entities(StubSource().account)
    assert (len(tree.campaigns), len(tree.adsets), len(tree.ads)) == (100, 500, 1500)
    assert tree.campaigns["campaign_id"].is_unique and tree.ads["ad_id"].is_unique
    statuses = tree.campaigns["status"].value_counts()
    assert statuses["ACTIVE"] > 60 and statuses.get("PAUSED", 0) > 0 and statuses.get("ARCHIVED", 0) > 0
    assert tree.campaigns["objective"].nunique() >= 3
    # one budget per campaign: daily, lifetime (with a schedule), or none when its ad sets hold them (ABO)
    c = tree.campaigns
    daily, lifetime = c["daily_budget"] > 0, c["lifetime_budget"] > 0
    abo = c["campaign_id"].isin(tree.adsets.loc[tree.adsets["daily_budget"] > 0, "campaign_id"])
    assert not (daily & lifetime).any() and not (abo & (daily | lifetime)).any() and (daily | lifetime | abo).all()
    assert 40 <= daily.sum() <= 75 and 10 <= lifetime.sum() <= 30 and 10 <= abo.sum() <= 40
    assert (c.loc[lifetime, "stop_time"] > c.loc[lifetime, "start_time"]).all() and c["start_time"].notna().all()
    assert c.loc[~lifetime, "stop_time"].isna().all()
    adsets = tree.adsets
    assert (adsets["age_min"] >= 18).all() and (adsets["age_max"] > adsets["age_min"]).all()
    assert set(adsets["genders"]) == {"all", "male", "female"}
    assert adsets["countries"].str.len().gt(0).all() and adsets["placements"].str.len().gt(0).all()
    # children point at existing parents
    assert set(adsets["campaign_id"]) <= set(tree.campaigns["campaign_id"])
    assert set(tree.ads["adset_id"]) <= set(adsets["adset_id"])


def test_shape_is_configurable() -> None:
    tree = StubSource(StubShape(3, 4, 5)).fetch_entities(StubSource().account)
    assert (len(tree.campaigns), len(tree.adsets), len(tree.ads)) == (3, 12, 60)


def test_funnel_holds_for_every_row(default_rows: pd.DataFrame) -> None:
    rows = default_rows
    assert len(rows) > 100_000
    for metric in ADDITIVE_METRICS + ("reach", "unique_clicks"):
        assert (rows[metric] >= 0).all(), metric
    assert (rows["impressions"] > 0).all(), "days without delivery have no row, as in Meta"
    assert (rows["reach"] <= rows["impressions"]).all()
    assert (rows["clicks"] <= rows["impressions"]).all()
    assert (rows["unique_clicks"] <= rows["clicks"]).all()
    assert (rows["conversions"] <= rows["clicks"]).all()
    assert (rows["frequency"] >= 1).all()
    assert ((rows["revenue"] > 0) <= (rows["conversions"] > 0)).all(), "revenue needs a conversion"


def test_parents_equal_the_sum_of_their_children(default_rows: pd.DataFrame) -> None:
    rows = default_rows
    by = {level: rows[rows["entity_type"] == level] for level in ("campaign", "adset", "ad")}
    metrics = list(ADDITIVE_METRICS)
    campaign = by["campaign"].set_index(["entity_id", "date_start"])[metrics].sort_index()
    from_adsets = by["adset"].groupby(["campaign_id", "date_start"])[metrics].sum()
    from_ads = by["ad"].groupby(["campaign_id", "date_start"])[metrics].sum()
    from_adsets.index.names = from_ads.index.names = campaign.index.names
    pd.testing.assert_frame_equal(campaign, from_adsets.sort_index(), check_exact=False, rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(campaign, from_ads.sort_index(), check_exact=False, rtol=0, atol=1e-6)
    adset = by["adset"].set_index(["entity_id", "date_start"])[metrics].sort_index()
    adset_from_ads = by["ad"].groupby(["adset_id", "date_start"])[metrics].sum()
    adset_from_ads.index.names = adset.index.names
    pd.testing.assert_frame_equal(adset, adset_from_ads.sort_index(), check_exact=False, rtol=0, atol=1e-6)


def test_parent_reach_overlaps_children_instead_of_summing(default_rows: pd.DataFrame) -> None:
    rows = default_rows
    ads = rows[rows["entity_type"] == "ad"].groupby(["adset_id", "date_start"])["reach"].agg(["sum", "max"])
    adsets = rows[rows["entity_type"] == "adset"].set_index(["entity_id", "date_start"])["reach"]
    ads.index.names = adsets.index.names
    joined = ads.join(adsets)
    assert (joined["reach"] >= joined["max"]).all()
    assert (joined["reach"] <= joined["sum"]).all()
    assert (joined["reach"] < joined["sum"]).mean() > 0.5, "reach is de-duplicated, not summed"


def test_weekly_seasonality_and_spread_between_ads(default_rows: pd.DataFrame) -> None:
    ads = default_rows[default_rows["entity_type"] == "ad"]
    campaigns = default_rows[default_rows["entity_type"] == "campaign"]
    daily = campaigns.groupby("date_start")["spend"].sum()
    weekday = daily.groupby(pd.to_datetime(daily.index).day_of_week).mean()
    assert weekday[5] < 0.95 * weekday[2], "saturdays spend less than wednesdays"
    per_ad = ads.groupby("entity_id")[["clicks", "impressions", "revenue", "spend"]].sum()
    per_ad = per_ad[per_ad["impressions"] > 10_000]
    ad_ctr = per_ad["clicks"] / per_ad["impressions"]
    assert ad_ctr.quantile(0.9) > 2.5 * ad_ctr.quantile(0.1), "good and bad ads differ"
    roas = per_ad["revenue"] / per_ad["spend"]
    assert 1.0 < roas.median() < 5.0


def test_paused_ads_have_history_but_deliver_less_than_active_ones() -> None:
    source = StubSource()
    tree = source.fetch_entities(source.account)
    ads = all_rows(source)
    ads = ads[ads["entity_type"] == "ad"]
    days_per_ad = ads.groupby("entity_id").size()
    status = tree.ads.set_index("ad_id")["status"]
    active_days = days_per_ad[status[days_per_ad.index] == "ACTIVE"]
    paused_days = days_per_ad[status[days_per_ad.index] != "ACTIVE"]
    assert active_days.min() == WINDOW.days
    assert 0 < paused_days.mean() < 0.6 * WINDOW.days


def test_error_rate_fails_some_entities_differently_per_sync() -> None:
    source = StubSource(StubShape(10, 3, 3), error_rate=0.2)
    scope = full_scope(source)
    first = list(source.fetch_insights(source.account, WINDOW, scope, "sync-a"))
    second = list(source.fetch_insights(source.account, WINDOW, scope, "sync-b"))
    failed_a = {i for b in first for i in b.failures}
    failed_b = {i for b in second for i in b.failures}
    total = 10 + 30 + 90
    assert 0.08 * total < len(failed_a) < 0.35 * total
    assert failed_a != failed_b
    rows_a = pd.concat([b.rows for b in first])
    assert not set(rows_a["entity_id"]) & failed_a, "a failed entity has no rows"
    assert source.stats.rate_limit_hits == len(failed_a) + len(failed_b)


def test_hash_is_blake2b_not_python_hash() -> None:
    from insights_core.sources.stub import hash_ids

    expected = int.from_bytes(hashlib.blake2b(b"120230000000000001", digest_size=8).digest(), "little")
    assert hash_ids(["120230000000000001"])[0] == np.uint64(expected)
