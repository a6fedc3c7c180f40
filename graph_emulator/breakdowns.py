"""Breakdowns in the emulator: the ground truth of every segment, and Meta's rules around them.

For each ad and day, each family's segments are an exact split of the ad's daily totals
(integers exactly, money to the cent) by a largest-remainder rule on integer weights, so a
client that sums segments must land on the totals. Weights come from the ad set's targeting
(its ages, genders, countries and placements) times per-ad and per-day noise, plus a small
"unknown" segment Meta always has. Clicks are split by the segments' impressions, conversions by
their clicks, money by impressions and conversions, so every segment obeys the funnel.

Reach per segment is de-duplicated on its own: it never adds up to the entity's reach. Ad sets
and campaigns get sums of their children's segments for additive metrics and their own reach
per segment (between the largest child's and the children's sum).

Everything is a pure function of (ids, day), cached per window like `SeededAccount.daily`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from graph_emulator.account import ADDITIVE, SeededAccount
from graph_emulator.faults import Malformation, malform
from graph_emulator.payloads import action_lists, row_ids
from insights_core.levels import Level
from insights_core.models import BreakdownFamily
from insights_core.sources.stub import hash_ids, uniforms

_EPOCH = dt.date(1970, 1, 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_WEIGHT_SCALE = 1_000_000
"""Float weights become integers at this resolution, so the split itself is exact integer math."""

BREAKDOWN_FIELDS: dict[BreakdownFamily, tuple[str, ...]] = {
    "age_gender": ("age", "gender"),
    "country": ("country",),
    "placement": ("publisher_platform", "platform_position"),
    "device_platform": ("device_platform",),
}
"""The Graph `breakdowns` of each family (device_platform: impression_device needs an opt-in)."""
VALID_COMBINATIONS = frozenset(
    frozenset(c)
    for c in (
        ("age",),
        ("gender",),
        ("age", "gender"),
        ("country",),
        ("region",),
        ("publisher_platform",),
        ("publisher_platform", "platform_position"),
        ("publisher_platform", "platform_position", "device_platform"),
        ("publisher_platform", "device_platform"),
        ("device_platform",),
        ("impression_device",),
    )
)
"""Breakdown combinations Meta accepts (a subset of its table); others answer code 100 / 1504041."""
OPT_IN_BREAKDOWNS = frozenset({"impression_device"})
"""Since August 2026 these need an opt-in the emulated app does not have."""
REACH_MONTHS = 13
"""With breakdowns and a start date further back than this, Meta leaves reach and frequency out."""

AGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_SPAN = {
    "18-24": (18, 24),
    "25-34": (25, 34),
    "35-44": (35, 44),
    "45-54": (45, 54),
    "55-64": (55, 64),
    "65+": (65, 99),
}
_AGE_WEIGHT = {"18-24": 0.9, "25-34": 1.6, "35-44": 1.4, "45-54": 1.0, "55-64": 0.7, "65+": 0.45}
COUNTRIES = ("US", "CA", "GB", "IE", "ES", "MX")
PLACEMENTS = (
    ("facebook", "feed"),
    ("facebook", "marketplace"),
    ("facebook", "facebook_reels"),
    ("facebook", "right_hand_column"),
    ("facebook", "story"),
    ("instagram", "feed"),
    ("instagram", "instagram_stories"),
    ("instagram", "instagram_reels"),
    ("instagram", "instagram_explore"),
    ("audience_network", "an_classic"),
    ("messenger", "messenger_inbox"),
)
_TARGETED_POSITION = {
    ("facebook", "feed"): ("facebook", "feed"),
    ("facebook", "marketplace"): ("facebook", "marketplace"),
    ("instagram", "stream"): ("instagram", "feed"),
    ("instagram", "story"): ("instagram", "instagram_stories"),
    ("instagram", "reels"): ("instagram", "instagram_reels"),
}
"""Targeting's position names -> the platform_position a breakdown reports."""
DEVICES = (("mobile_app", 0.72), ("mobile_web", 0.14), ("desktop", 0.12))
UNKNOWN_WEIGHT = 0.03


def segment_keys(family: BreakdownFamily) -> list[tuple[str, str]]:
    """Every segment of a family as (key_1, key_2), in the contract's key shape ('' when unused)."""
    if family == "age_gender":
        return [(a, g) for a in AGES for g in ("female", "male", "unknown")] + [("Unknown", "unknown")]
    if family == "country":
        return [(c, "") for c in COUNTRIES] + [("unknown", "")]
    if family == "placement":
        return [*PLACEMENTS, ("unknown", "unknown")]
    return [(d, "") for d, _ in DEVICES] + [("unknown", "")]


def segment_fields(family: BreakdownFamily, key: tuple[str, str]) -> dict[str, str]:
    """The breakdown fields a Graph row of this segment carries."""
    names = BREAKDOWN_FIELDS[family]
    return {name: key[i] for i, name in enumerate(names)}


def _targeting_weights(targeting: dict, family: BreakdownFamily) -> np.ndarray:
    """Base weight of each segment for an ad set's targeting; the unknown segment is the last one."""
    keys = segment_keys(family)
    weights = np.zeros(len(keys))
    if family == "age_gender":
        low, high = int(targeting.get("age_min", 18)), int(targeting.get("age_max", 65))
        chosen_genders = set(targeting.get("genders") or [])
        genders = ("male",) if chosen_genders == {1} else ("female",) if chosen_genders == {2} else ("female", "male")
        for i, (age, gender) in enumerate(keys[:-1]):
            span = _AGE_SPAN[age]
            if span[0] > high or span[1] < low:
                continue
            if gender in genders:
                weights[i] = _AGE_WEIGHT[age] * (1.1 if gender == "female" else 1.0)
            elif gender == "unknown":
                weights[i] = _AGE_WEIGHT[age] * 0.04
    elif family == "country":
        wanted = (targeting.get("geo_locations") or {}).get("countries") or ["US"]
        for i, (country, _) in enumerate(keys[:-1]):
            if country in wanted:
                weights[i] = 1.0 if country == wanted[0] else 0.45
    elif family == "placement":
        platforms = targeting.get("publisher_platforms")
        chosen: set[tuple[str, str]] = set()
        for platform in platforms or []:
            positions = targeting.get(f"{platform}_positions") or []
            if not positions:
                chosen |= {p for p in PLACEMENTS if p[0] == platform}
            chosen |= {
                _TARGETED_POSITION[(platform, pos)] for pos in positions if (platform, pos) in _TARGETED_POSITION
            }
        for i, key in enumerate(keys[:-1]):
            if not platforms or key in chosen:  # no platforms: Advantage+ placements, everywhere
                weights[i] = 1.0 if key[1] in ("feed", "instagram_reels") else 0.4
    else:
        weights[:-1] = [w for _, w in DEVICES]
    weights[-1] = UNKNOWN_WEIGHT * weights[:-1].sum()
    return weights


def split_exact(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Integer `total` (N, D) split over segments by integer `weights` (N, D, S), summing exactly.

    Largest remainder: each segment gets floor(total * w / sum w), and the units left go to the
    largest remainders (ties to the earlier segment). When the weights are the segments' own caps
    (a count split by impressions) and total <= their sum, no segment exceeds its cap.
    """
    weights = weights.astype(np.int64)
    wsum = weights.sum(axis=-1)
    safe = np.where(wsum > 0, wsum, 1)[..., None]
    numerator = total[..., None].astype(np.int64) * weights
    base = numerator // safe
    remainder = numerator % safe
    left = total - base.sum(axis=-1)
    order = np.argsort(-remainder, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(order.shape[-1]), order.shape), axis=-1)
    out = base + (ranks < left[..., None])
    return np.where(wsum[..., None] > 0, out, 0).astype(np.int64)


def _ad_segments(account: SeededAccount, family: BreakdownFamily, since: dt.date, until: dt.date) -> dict:
    ad = account.daily("ad", since, until)
    days = np.arange((since - _EPOCH).days, (until - _EPOCH).days + 1, dtype=np.int64)
    ad_hash = hash_ids(account.ids["ad"])
    adset_targeting = [e["targeting"] for e in account.entities["adset"]]
    base = np.stack([_targeting_weights(adset_targeting[p], family) for p in account.ad_parent])  # (ads, S)
    segments = base.shape[1]
    with np.errstate(over="ignore"):
        ad_seed = ad_hash[:, None] ^ np.arange(1, segments + 1, dtype=np.uint64)[None, :] * _GOLDEN
        day_seed = ad_seed[:, None, :] ^ (days.astype(np.uint64) * _GOLDEN)[None, :, None] * np.uint64(3)
    per_ad = 0.5 + uniforms(ad_seed.ravel(), 60).reshape(ad_seed.shape)
    per_day = 0.85 + 0.3 * uniforms(day_seed.ravel(), 61).reshape(day_seed.shape)
    weights = np.rint(base[:, None, :] * per_ad[:, None, :] * per_day * _WEIGHT_SCALE).astype(np.int64)
    impressions = split_exact(ad["impressions"], weights)
    clicks = split_exact(ad["clicks"], impressions)
    conversions = split_exact(ad["conversions"], clicks)
    spend = split_exact(ad["spend"], impressions)
    revenue = split_exact(ad["revenue"], np.where(ad["conversions"][..., None] > 0, conversions, impressions))
    frequency = 1.0 + 0.45 * uniforms(day_seed.ravel(), 62).reshape(day_seed.shape)
    reach = np.where(impressions > 0, np.maximum(np.floor(impressions / frequency), 1), 0).astype(np.int64)
    return {
        "spend": spend,
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "revenue": revenue,
        "reach": reach,
    }


def _roll_up_segments(children: dict, parent_of: np.ndarray, parent_ids: Sequence[str], days: np.ndarray) -> dict:
    """Additive metrics summed; reach between the largest child's segment reach and the sum."""
    parents = len(parent_ids)
    out = {}
    for name in (*ADDITIVE, "reach"):
        values = children[name]
        total = np.zeros((parents, *values.shape[1:]), dtype=np.int64)
        np.add.at(total, parent_of, values)
        out[name] = total
    largest = np.zeros_like(out["reach"])
    np.maximum.at(largest, parent_of, children["reach"])
    with np.errstate(over="ignore"):
        seed = hash_ids(list(parent_ids))[:, None, None] ^ (
            (days.astype(np.uint64) * _GOLDEN)[None, :, None]
            + np.arange(largest.shape[2], dtype=np.uint64)[None, None, :]
        )
    overlap = 0.72 + 0.28 * uniforms(seed.ravel(), 63).reshape(seed.shape)
    out["reach"] = np.maximum(largest, np.floor(out["reach"] * overlap)).astype(np.int64)
    return out


def segments(account: SeededAccount, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date) -> dict:
    """Arrays shaped (entities, days, segments): money in cents, counts as integers, per-segment reach."""
    return _segments(account, level, family, since, until)


@lru_cache(maxsize=256)
def _segments(account: SeededAccount, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date) -> dict:
    if level == "ad":
        return _ad_segments(account, family, since, until)
    days = np.arange((since - _EPOCH).days, (until - _EPOCH).days + 1, dtype=np.int64)
    ad = _segments(account, "ad", family, since, until)
    adset = _roll_up_segments(ad, account.ad_parent, account.ids["adset"], days)
    if level == "adset":
        return adset
    return _roll_up_segments(adset, account.adset_parent, account.ids["campaign"], days)


def breakdown_truth(
    account: SeededAccount, level: Level, family: BreakdownFamily, since: dt.date, until: dt.date
) -> pd.DataFrame:
    """What a correct collector stores: one row per entity, day and segment with delivery, money in units."""
    values = segments(account, level, family, since, until)
    keys = segment_keys(family)
    entity, day, seg = np.nonzero(values["impressions"] > 0)
    frame = pd.DataFrame(
        {
            "entity_id": np.array(account.ids[level], dtype=object)[entity],
            "date_start": [since + dt.timedelta(days=int(d)) for d in day],
            "key_1": [keys[s][0] for s in seg],
            "key_2": [keys[s][1] for s in seg],
            "spend": values["spend"][entity, day, seg] / 100,
            "impressions": values["impressions"][entity, day, seg],
            "clicks": values["clicks"][entity, day, seg],
            "conversions": values["conversions"][entity, day, seg].astype(float),
            "revenue": values["revenue"][entity, day, seg] / 100,
            "reach": values["reach"][entity, day, seg],
        }
    )
    return frame.sort_values(["entity_id", "date_start", "key_1", "key_2"]).reset_index(drop=True)


def months_back(today: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier (the month's last day when it has fewer days)."""
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    month += 1
    for day in (today.day, 30, 29, 28):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def reach_omitted(since: dt.date, today: dt.date) -> bool:
    """Meta's rule: with breakdowns, reach is left out when the start date is over 13 months back."""
    return since < months_back(today, REACH_MONTHS)


def family_of(breakdowns: Sequence[str]) -> BreakdownFamily | None:
    """The family a `breakdowns` list asks for, or None when the emulator serves no truth for it."""
    wanted = tuple(breakdowns)
    return next((f for f, names in BREAKDOWN_FIELDS.items() if names == wanted), None)


def breakdown_rows(
    account: SeededAccount,
    level: Level,
    family: BreakdownFamily,
    since: dt.date,
    until: dt.date,
    mask: np.ndarray,
    fields: Sequence[str] | None,
    malformed: Sequence[Malformation] = (),
    omit_reach: bool = False,
) -> list[dict]:
    """Meta-shaped rows of a breakdown report: one per entity, day and segment with delivery.

    Numbers are strings, `actions` as in the totals (the purchase family three times over), the
    breakdown fields as Meta names them. A malformation of (entity, day) hits each of its segments.
    """
    values = segments(account, level, family, since, until)
    keys = segment_keys(family)
    delivered = (values["impressions"] > 0) & mask[:, None, None]
    day_index, entity_index, seg_index = np.nonzero(delivered.transpose(1, 0, 2))
    with np.errstate(over="ignore"):
        seeds = hash_ids(account.ids[level])[entity_index] ^ (
            (day_index + (since - _EPOCH).days).astype(np.uint64) * _GOLDEN + seg_index.astype(np.uint64)
        )
    omit_omni = uniforms(seeds, 50) < 0.3
    pixel_short = uniforms(seeds, 51) < 0.4
    wanted = set(fields) | {"date_start", "date_stop", *BREAKDOWN_FIELDS[family]} if fields else None
    broken = {(m.entity_id, m.date): m.kind for m in malformed if m.level == level}
    campaign_pos = account.campaign_index(level)
    account_number = account.account_id.removeprefix("act_")
    rows = []
    for k in range(len(entity_index)):
        e, d, s = int(entity_index[k]), int(day_index[k]), int(seg_index[k])
        day = since + dt.timedelta(days=d)
        v = {name: int(array[e, d, s]) for name, array in values.items()}
        row = row_ids(account, level, e, campaign_pos[e], account_number, day)
        row.update(segment_fields(family, keys[s]))
        spend = v["spend"] / 100
        row.update(spend=f"{spend:.2f}", impressions=str(v["impressions"]), clicks=str(v["clicks"]))
        if not omit_reach:
            row.update(reach=str(v["reach"]), frequency=f"{v['impressions'] / max(v['reach'], 1):.6f}")
        actions, action_values = action_lists(v, bool(omit_omni[k]), bool(pixel_short[k]))
        if actions:
            row["actions"], row["action_values"] = actions, action_values
        if wanted is not None:
            row = {key: value for key, value in row.items() if key in wanted}
        kind = broken.get((account.ids[level][e], day))
        if kind:
            malform(row, kind, BREAKDOWN_FIELDS[family])
        rows.append(row)
    return rows
