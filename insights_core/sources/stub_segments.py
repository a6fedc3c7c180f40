"""The stub's breakdowns: each ad-day's totals split into segments (age and gender, country, placement, device).

Shares are a pure function of (ad id, day), like the totals: each ad takes a profile from its ad
set's targeting (ages, genders, countries, placements) and its id, and each day adds a little noise
per segment. Totals are split by largest-remainder apportionment on integers (cents for money), so
the segments of every ad, day and family sum exactly to the ad's row. Every family keeps a small
"unknown" segment, as Meta's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from insights_core.models import BREAKDOWN_SOURCE_COLUMNS, Account, BreakdownBatch, BreakdownFamily, DateWindow, Scope
from insights_core.sources import stub
from insights_core.sources.stub import uniforms

if TYPE_CHECKING:
    from insights_core.sources.stub import StubSource

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

AGE_BUCKETS = (("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54), ("55-64", 55, 64),
               ("65+", 65, 74))  # fmt: skip
"""Meta's age buckets; 65+ counts as ten years of audience."""
GENDERS = ("female", "male", "unknown")
AGE_GENDER_KEYS = [(bucket, g) for bucket, _, _ in AGE_BUCKETS for g in GENDERS] + [("Unknown", "unknown")]
PLACEMENT_KEYS = [
    ("facebook", "feed"),
    ("instagram", "feed"),
    ("instagram", "story"),
    ("instagram", "instagram_reels"),
    ("facebook", "facebook_reels"),
    ("facebook", "story"),
    ("facebook", "right_hand_column"),
    ("instagram", "instagram_explore"),
    ("audience_network", "an_classic"),
    ("messenger", "messenger_inbox"),
    ("unknown", "unknown"),
]
AUTOMATIC_PLACEMENT_MIX = (0.35, 0.2, 0.12, 0.1, 0.07, 0.05, 0.03, 0.03, 0.03, 0.02, 0.0)
"""Advantage+ placements: where Meta tends to deliver, in PLACEMENT_KEYS order (unknown added apart)."""
PLACEMENT_NAMES = {
    "facebook_feed": ("facebook", "feed"),
    "instagram_feed": ("instagram", "feed"),
    "instagram_stories": ("instagram", "story"),
    "instagram_reels": ("instagram", "instagram_reels"),
    "facebook_reels": ("facebook", "facebook_reels"),
    "messenger_inbox": ("messenger", "messenger_inbox"),
    "audience_network": ("audience_network", "an_classic"),
}
"""The stub's ad set placement names -> (publisher_platform, platform_position) as Meta reports them."""
DEVICE_KEYS = [("mobile_app", ""), ("mobile_web", ""), ("desktop", ""), ("unknown", "")]


@dataclass(frozen=True)
class AdTargeting:
    """Each ad's ad set targeting, one entry per ad (the columns of the ad set table)."""

    age_min: IntArray
    age_max: IntArray
    genders: npt.NDArray[np.object_]
    countries: list[tuple[str, ...]]
    placements: list[tuple[str, ...]]


def apportion(totals: IntArray, weights: FloatArray) -> IntArray:
    """Split each integer total over its row of weights; each row sums exactly to its total.

    Largest remainder: every share gets the floor of its quota, and the units left over go to the
    largest fractional parts. A zero weight never gets a unit.
    """
    n, k = weights.shape
    row_sum = weights.sum(axis=1, keepdims=True)
    quotas = totals[:, None] * weights / np.where(row_sum > 0, row_sum, 1.0)
    base = np.floor(quotas).astype(np.int64)
    left = totals - base.sum(axis=1)
    fraction = np.where(weights > 0, quotas - base, -1.0)
    order = np.argsort(-fraction, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(k), (n, k)), axis=1)
    out: IntArray = base + (rank < left[:, None]).astype(np.int64)
    return out


def family_keys(family: BreakdownFamily, countries: list[str]) -> list[tuple[str, str]]:
    if family == "age_gender":
        return AGE_GENDER_KEYS
    if family == "country":
        return [(c, "") for c in countries] + [("unknown", "")]
    if family == "placement":
        return PLACEMENT_KEYS
    return DEVICE_KEYS


def base_weights(
    family: BreakdownFamily, keys: list[tuple[str, str]], targeting: AdTargeting, ad_hash: npt.NDArray[np.uint64]
) -> FloatArray:
    """Each ad's segment profile, shape (ads, segments): who its ad set's targeting reaches, skewed per ad."""
    n, k = len(ad_hash), len(keys)
    if family == "age_gender":
        return _age_gender_weights(targeting, ad_hash)
    jitter = np.stack([uniforms(ad_hash, 70 + j) for j in range(k)], axis=1)
    if family == "device_platform":
        mix = np.array([0.82, 0.08, 0.07, 0.0])
        return _with_unknown(mix * (0.6 + 0.8 * jitter), ad_hash, 0.002, 0.006)
    column = {key: j for j, key in enumerate(keys)}
    chosen = np.zeros((n, k))
    if family == "country":
        for i, countries in enumerate(targeting.countries):
            for rank, country in enumerate(countries):
                chosen[i, column[(country, "")]] = 1.0 if rank == 0 else 0.15 + 0.5 * jitter[i, rank]
        return _with_unknown(chosen, ad_hash, 0.002, 0.008)
    automatic = np.array([p == ("automatic",) for p in targeting.placements])
    for i, placements in enumerate(targeting.placements):
        for name in placements:
            if name in PLACEMENT_NAMES:
                chosen[i, column[PLACEMENT_NAMES[name]]] = 1.0
    mix = np.array(AUTOMATIC_PLACEMENT_MIX)
    weights = np.where(automatic[:, None], mix * (0.7 + 0.6 * jitter), chosen * (0.3 + 0.7 * jitter))
    return _with_unknown(weights, ad_hash, 0.001, 0.004)


def _age_gender_weights(targeting: AdTargeting, ad_hash: npt.NDArray[np.uint64]) -> FloatArray:
    low = targeting.age_min.astype(np.float64)
    high = np.where(targeting.age_max >= 65, 74, targeting.age_max).astype(np.float64)
    peak = low + (high - low) * (0.15 + 0.5 * uniforms(ad_hash, 61))
    ages = []
    for _, lo, hi in AGE_BUCKETS:
        years = np.clip(np.minimum(hi, high) - np.maximum(lo, low) + 1, 0, None)
        ages.append(years * (0.25 + np.exp(-((((lo + hi) / 2 - peak) / 11.0) ** 2))))
    age = np.stack(ages, axis=1)
    female = np.select(
        [targeting.genders == "female", targeting.genders == "male"], [1.0, 0.0], 0.35 + 0.3 * uniforms(ad_hash, 62)
    )
    unknown = 0.01 + 0.02 * uniforms(ad_hash, 63)
    split = np.stack([female * (1 - unknown), (1 - female) * (1 - unknown), unknown], axis=1)
    weights = (age[:, :, None] * split[:, None, :]).reshape(len(ad_hash), -1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return _with_unknown(np.concatenate([weights, np.zeros((len(ad_hash), 1))], axis=1), ad_hash, 0.003, 0.01)


def _with_unknown(weights: FloatArray, ad_hash: npt.NDArray[np.uint64], low: float, high: float) -> FloatArray:
    """Normalise each row and give the last column (the unknown segment) a small share."""
    share = low + (high - low) * uniforms(ad_hash, 65)
    known = weights[:, :-1] / weights[:, :-1].sum(axis=1, keepdims=True)
    out: FloatArray = np.concatenate([known * (1 - share)[:, None], share[:, None]], axis=1)
    return out


def split_ad_days(
    family: BreakdownFamily,
    keys: list[tuple[str, str]],
    profile: FloatArray,
    ad_hash: npt.NDArray[np.uint64],
    seeds: npt.NDArray[np.uint64],
    ad_index: IntArray,
    totals: dict[str, IntArray],
) -> dict[str, IntArray]:
    """Segment values, shape (ad-days, segments), for the ad-days given by `ad_index` (their ad) and
    `seeds` (their (ad, day) seed), whose totals are `totals` (money in cents).

    Impressions follow the profile with daily noise; each later metric is split by the segment's
    share of the one before it (spend and clicks by impressions, conversions by clicks, revenue by
    conversions) times a per-ad segment factor, so CPM, CTR and conversion rate differ by segment
    and a segment without impressions gets nothing else.
    """
    k = len(keys)
    stream = {"age_gender": 100, "country": 200, "placement": 300, "device_platform": 400}[family]
    noise = np.stack([0.85 + 0.3 * uniforms(seeds, stream + j) for j in range(k)], axis=1)
    impressions = apportion(totals["impressions"], profile[ad_index] * noise)

    def factor(offset: int, spread: float) -> FloatArray:
        per_ad = np.stack([1 - spread / 2 + spread * uniforms(ad_hash, stream + offset + j) for j in range(k)], axis=1)
        return per_ad[ad_index]

    clicks = apportion(totals["clicks"], impressions * factor(30, 0.6))
    conversions = apportion(totals["conversions"], clicks * factor(60, 0.8))
    ratio = totals["reach"] / np.maximum(totals["impressions"], 1)
    reach = np.floor(impressions * ratio[:, None] * (0.9 + (noise - 0.85) / 3)).astype(np.int64)
    return {
        "impressions": impressions,
        "spend": apportion(totals["spend"], impressions * factor(90, 0.5)),
        "clicks": clicks,
        "conversions": conversions,
        "revenue": apportion(totals["revenue"], conversions * factor(120, 0.4)),
        "reach": np.where(impressions > 0, np.clip(reach, 1, impressions), 0),
    }


def segment_frame(
    account_id: str,
    family: BreakdownFamily,
    keys: list[tuple[str, str]],
    ad_ids: np.ndarray,
    dates: np.ndarray,
    values: dict[str, IntArray],
) -> pd.DataFrame:
    """Long rows (ad-day x segment with impressions) in BREAKDOWN_SOURCE_COLUMNS; money back to currency units.

    `ad_ids` and `dates` have one entry per ad-day row of `values`.
    """
    row, segment = np.nonzero(values["impressions"] > 0)
    n = len(row)
    key_1 = np.array([key for key, _ in keys], dtype=object)[segment]
    key_2 = np.array([key for _, key in keys], dtype=object)[segment]
    frame = pd.DataFrame(
        {
            "account_id": stub._text_strings(np.full(n, account_id)),
            "entity_type": stub._text_strings(np.full(n, "ad")),
            "entity_id": stub._text_strings(ad_ids[row]),
            "date_start": dates[row],
            "breakdown": stub._text_strings(np.full(n, family)),
            "key_1": stub._text_strings(key_1),
            "key_2": stub._text_strings(key_2),
            "spend": values["spend"][row, segment] / 100.0,
            "impressions": values["impressions"][row, segment],
            "clicks": values["clicks"][row, segment],
            "conversions": values["conversions"][row, segment].astype(np.float64),
            "revenue": values["revenue"][row, segment] / 100.0,
            "reach": values["reach"][row, segment],
        }
    )
    return frame[list(BREAKDOWN_SOURCE_COLUMNS)]


AD_DAYS_PER_CHUNK = 10_000
"""Ad-days split per batch: bounds the (ad-days x segments) arrays to a few MB (50,000 cost ~120 MB more peak RSS)."""


def iter_segment_batches(
    source: StubSource,
    account: Account,
    window: DateWindow,
    scope: Scope,
    families: tuple[BreakdownFamily, ...],
    sync_id: str,
) -> Iterator[BreakdownBatch]:
    """Ad-level batches per chunk of ads and family; the engine rolls ad sets and campaigns up.

    The ads' totals come from `stub.generate_ad_days` (looked up at call time, as `fetch_insights`
    does), and an ad that fails in a sync fails for both (the same draw per sync id).
    """
    wanted = scope.ids("ad")
    if not wanted:  # an empty batch per family still says the family is supported
        for family in families:
            yield BreakdownBatch("ad", family, pd.DataFrame(columns=list(BREAKDOWN_SOURCE_COLUMNS)))
        return
    tree = source.fetch_entities(account)
    ads, adsets = tree.ads, tree.adsets
    ad_ids = ads["ad_id"].to_numpy(dtype=object)
    positions = np.flatnonzero(np.isin(ad_ids, np.array(sorted(wanted), dtype=object)))
    parent = ads["adset_id"].to_numpy(dtype=object)
    adset_row = pd.Series(np.arange(len(adsets)), index=adsets["adset_id"].to_numpy(dtype=object))
    countries = sorted({c for text in adsets["countries"].dropna() for c in str(text).split(",") if c})
    days = np.array([(d - stub._EPOCH).days for d in window.dates()], dtype=np.int64)
    dates = np.array(window.dates(), dtype="datetime64[D]")
    per_chunk = max(1, AD_DAYS_PER_CHUNK // window.days)
    for start in range(0, len(positions), per_chunk):
        chunk = positions[start : start + per_chunk]
        ids = ad_ids[chunk].astype(str)
        ad_hash = stub.hash_ids(ids)
        totals = stub.generate_ad_days(ad_hash, days, active=ads["status"].to_numpy(dtype=object)[chunk] == "ACTIVE")
        failures = source._failures(ids, sync_id)
        keep = ~np.isin(ids, np.array(sorted(failures), dtype=object))
        ad_index, day_index = np.nonzero(keep[:, None] & (totals["impressions"] > 0))
        seeds = stub._day_seed(ad_hash, days)[ad_index, day_index]
        flat = {
            name: totals[name][ad_index, day_index]
            for name in ("spend", "impressions", "clicks", "conversions", "revenue", "reach")
        }
        rows = adset_row[parent[chunk]].to_numpy()
        targeting = AdTargeting(
            age_min=adsets["age_min"].to_numpy(dtype=np.int64)[rows],
            age_max=adsets["age_max"].to_numpy(dtype=np.int64)[rows],
            genders=adsets["genders"].to_numpy(dtype=object)[rows],
            countries=[tuple(str(t).split(",")) for t in adsets["countries"].to_numpy(dtype=object)[rows]],
            placements=[tuple(str(t).split(",")) for t in adsets["placements"].to_numpy(dtype=object)[rows]],
        )
        for family in families:
            keys = family_keys(family, countries)
            profile = base_weights(family, keys, targeting, ad_hash)
            values = split_ad_days(family, keys, profile, ad_hash, seeds, ad_index, flat)
            frame = segment_frame(account.account_id, family, keys, ids[ad_index], dates[day_index], values)
            yield BreakdownBatch("ad", family, frame, failures)
