"""The deterministic demo account: realistic Meta Ads data with no network and no token.

Every daily number is a pure function of (entity id, date): ids are hashed with BLAKE2b (Python's
`hash()` is salted per process) and days are mixed in with SplitMix64, all vectorized in numpy, so
the same ids give the same numbers in every process and on every machine. Ads are generated; ad
sets and campaigns are the sums of their children for the additive metrics, and take their own
(non-additive) reach and unique clicks between the largest child's and the children's sum.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from insights_core.levels import LEVEL_SPECS, LEVELS, Level
from insights_core.manager.stub_scenarios import plant_stub_scenarios
from insights_core.models import (
    INSIGHT_SOURCE_COLUMNS,
    Account,
    BreakdownBatch,
    BreakdownFamily,
    Creative,
    DateWindow,
    EntityTree,
    InsightBatch,
    Scope,
    SourceStats,
)
from insights_core.settings import Settings
from insights_core.sources import StatusCallback
from insights_core.sources.stub_creatives import stub_creatives

STUB_ACCOUNT = Account(
    account_id="act_1000000000001", name="Demo Store (stub)", currency="USD", timezone_name="America/New_York"
)
ROWS_PER_CHUNK = 250_000
"""Ad-days generated per chunk: bounds the memory a batch takes (ids as Arrow strings, numpy arrays)."""

_CAMPAIGN_BASE = 120_210_000_000_000_000
_ADSET_BASE = 120_220_000_000_000_000
_AD_BASE = 120_230_000_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_THEMES = (
    "Holiday Sale",
    "Spring Collection",
    "Retargeting",
    "Brand Awareness",
    "New Arrivals",
    "Clearance",
    "Loyalty Members",
    "Lookalike Prospecting",
    "Back to School",
    "Summer Deals",
    "Cart Abandoners",
    "Video Views",
    "Lead Magnet",
    "App Installs",
    "Black Friday",
)
_OBJECTIVES = ("OUTCOME_SALES",) * 5 + (
    "OUTCOME_TRAFFIC",
    "OUTCOME_TRAFFIC",
    "OUTCOME_AWARENESS",
    "OUTCOME_LEADS",
    "OUTCOME_ENGAGEMENT",
)
_GOALS = {
    "OUTCOME_SALES": "OFFSITE_CONVERSIONS",
    "OUTCOME_TRAFFIC": "LINK_CLICKS",
    "OUTCOME_AWARENESS": "REACH",
    "OUTCOME_LEADS": "LEAD_GENERATION",
    "OUTCOME_ENGAGEMENT": "POST_ENGAGEMENT",
}
_AUDIENCES = (
    "Broad",
    "Lookalike 1%",
    "Lookalike 3%",
    "Interests: Fashion",
    "Interests: Fitness",
    "Website visitors 30d",
    "Customers list",
    "Engaged shoppers",
    "Advantage+ audience",
)
_AGE_RANGES = ((18, 65), (18, 34), (25, 44), (25, 54), (35, 65), (18, 24), (45, 65))
_GENDERS = ("all",) * 7 + ("female", "female", "male")
_COUNTRY_SETS = (
    ("US",),
    ("US", "CA"),
    ("GB", "IE"),
    ("ES", "MX"),
    ("DE", "AT", "CH"),
    ("FR", "BE"),
    ("BR",),
    ("AU", "NZ"),
    ("US",),
    ("US", "GB", "CA", "AU"),
)
_PLACEMENT_SETS = (
    ("facebook_feed", "instagram_feed"),
    ("instagram_stories", "instagram_reels"),
    ("facebook_feed", "instagram_feed", "instagram_stories", "messenger_inbox"),
    ("automatic",),
    ("automatic",),
    ("facebook_reels", "instagram_reels"),
    ("audience_network", "facebook_feed"),
)
_FORMATS = ("Video 15s", "Carousel", "Single image", "Collection", "Reel 9:16", "Video 30s")
_ANGLES = (
    "UGC testimonial",
    "Product demo",
    "20% off",
    "Free shipping",
    "Bundle offer",
    "Founder story",
    "Best sellers",
    "Limited stock",
    "Before/after",
    "Gift guide",
)
_WEEKDAY_SPEND = np.array([1.00, 1.03, 1.04, 1.01, 0.96, 0.86, 0.90])  # monday first
_WEEKDAY_CVR = np.array([0.97, 1.00, 1.00, 0.99, 1.00, 1.06, 1.10])
FLIGHT_WEEKS = 0.35
"""Share of weeks an inactive ad delivers anyway (flighting, so paused ads have history)."""
LIFETIME_SHARE, ABO_SHARE = 0.20, 0.25
"""Campaigns with a lifetime budget, and with their budgets on the ad sets (the rest: a daily budget)."""


@dataclass(frozen=True)
class StubShape:
    campaigns: int = 100
    adsets_per_campaign: int = 5
    ads_per_adset: int = 3

    @property
    def adsets(self) -> int:
        return self.campaigns * self.adsets_per_campaign

    @property
    def ads(self) -> int:
        return self.adsets * self.ads_per_adset


def hash_ids(ids: list[str] | np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes of id strings (BLAKE2b), identical across processes and machines."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijective scramble of uint64 values."""
    x = x.copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def uniforms(seed: np.ndarray, stream: int) -> npt.NDArray[np.float64]:
    """Uniform floats in [0, 1), one per seed, independent across `stream` numbers."""
    with np.errstate(over="ignore"):
        mixed = _mix(seed + _GOLDEN * np.uint64(stream + 1))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _normal(seed: np.ndarray, stream: int) -> npt.NDArray[np.float64]:
    """Standard normal draws (Box-Muller) from two uniform streams."""
    u1 = np.maximum(uniforms(seed, stream), 1e-12)
    u2 = uniforms(seed, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _day_seed(entity_hash: np.ndarray, day_numbers: np.ndarray) -> np.ndarray:
    """One seed per (entity, day): shape (entities, days)."""
    with np.errstate(over="ignore"):
        return _mix(entity_hash[:, None] ^ (day_numbers[None, :].astype(np.uint64) * _GOLDEN))


def _pick(options: tuple[object, ...], hashes: np.ndarray, stream: int) -> np.ndarray:
    idx = (uniforms(hashes, stream) * len(options)).astype(np.int64)
    out = np.empty(len(hashes), dtype=object)
    out[:] = [options[i] for i in idx]
    return out


class StubSource:
    """A demo ad account of `shape` whose numbers never change for a given (id, date)."""

    mode = "stub"

    def __init__(
        self,
        shape: StubShape = StubShape(),
        error_rate: float = 0.0,
        account: Account = STUB_ACCOUNT,
        scenarios: tuple[str, ...] = (),
        today: dt.date | None = None,
        id_offset: int = 0,
    ) -> None:
        """`id_offset` shifts every entity id, so several demo accounts (`StubAccounts`) never share one."""
        self.shape = shape
        # budgets and lifetime flights are set around yesterday (the last day a sync stores), so the
        # demo always has budgets in scale with the season and flights that are running; tests fix it
        self.today = today
        self.error_rate = error_rate
        self.scenarios = scenarios  # INSIGHTS_STUB_SCENARIOS: shapes planted for the manager detectors
        self.account = account
        self.id_offset = id_offset
        self.stats = SourceStats()
        self._tree: EntityTree | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StubSource:
        shape = StubShape(settings.stub_campaigns, settings.stub_adsets_per_campaign, settings.stub_ads_per_adset)
        return cls(shape, settings.stub_error_rate, scenarios=settings.stub_scenarios)

    def interrupt(self) -> None:
        pass  # nothing here waits

    def close(self) -> None:
        pass

    def fetch_accounts(self) -> list[Account]:
        return [self.account]

    # ids are positional: campaign c, its ad set a, that ad set's ad d
    def campaign_ids(self) -> np.ndarray:
        return (np.arange(self.shape.campaigns, dtype=np.int64) + _CAMPAIGN_BASE + self.id_offset + 1).astype(str)

    def adset_ids(self) -> np.ndarray:
        return (np.arange(self.shape.adsets, dtype=np.int64) + _ADSET_BASE + self.id_offset + 1).astype(str)

    def ad_ids(self) -> np.ndarray:
        return (np.arange(self.shape.ads, dtype=np.int64) + _AD_BASE + self.id_offset + 1).astype(str)

    def fetch_entities(self, account: Account) -> EntityTree:
        if self._tree is None:
            self._tree = self._build_tree()
        return self._tree

    def _build_tree(self) -> EntityTree:
        s = self.shape
        acct = self.account.account_id
        c_ids, a_ids, d_ids = self.campaign_ids(), self.adset_ids(), self.ad_ids()
        c_hash, a_hash, d_hash = hash_ids(c_ids), hash_ids(a_ids), hash_ids(d_ids)
        today = self.today or dt.datetime.now(dt.timezone.utc).date()
        anchor = (today - _EPOCH).days - 1

        c_status = _status(c_hash, paused=0.12, archived=0.06)
        objectives = _pick(_OBJECTIVES, c_hash, 3)
        themes = _pick(_THEMES, c_hash, 4)
        campaigns = pd.DataFrame(
            {
                "campaign_id": c_ids,
                "account_id": acct,
                "name": [
                    f"{t} · {o.removeprefix('OUTCOME_').title()} #{i + 1}"
                    for i, (t, o) in enumerate(zip(themes, objectives))
                ],
                "status": c_status,
                "effective_status": c_status,
                "objective": objectives,
                "created_time": _created_times(c_hash),
            }
        )

        parent = np.repeat(np.arange(s.campaigns), s.adsets_per_campaign)
        a_own = _status(a_hash, paused=0.08, archived=0.02)
        a_status = np.where(c_status[parent] == "ACTIVE", a_own, c_status[parent])
        ad_parent = np.repeat(np.arange(s.adsets), s.ads_per_adset)
        d_own = _status(d_hash, paused=0.10, archived=0.02)
        d_status = np.where(a_status[ad_parent] == "ACTIVE", d_own, a_status[ad_parent])
        budgets = stub_budgets(c_hash, a_hash, d_hash, d_status == "ACTIVE", anchor)
        campaigns = campaigns.assign(**{k: v for k, v in budgets.items() if not k.startswith("adset_")})
        campaigns["start_time"] = campaigns["start_time"].fillna(campaigns["created_time"] + np.timedelta64(1, "h"))
        ages = [_AGE_RANGES[i] for i in (uniforms(a_hash, 6) * len(_AGE_RANGES)).astype(np.int64)]
        genders = _pick(_GENDERS, a_hash, 7)
        countries = [_COUNTRY_SETS[i] for i in (uniforms(a_hash, 8) * len(_COUNTRY_SETS)).astype(np.int64)]
        placements = [_PLACEMENT_SETS[i] for i in (uniforms(a_hash, 9) * len(_PLACEMENT_SETS)).astype(np.int64)]
        audiences = _pick(_AUDIENCES, a_hash, 10)
        adsets = pd.DataFrame(
            {
                "adset_id": a_ids,
                "account_id": acct,
                "campaign_id": c_ids[parent],
                "name": [
                    f"{aud} · {lo}-{hi} · {'+'.join(cs)}" for aud, (lo, hi), cs in zip(audiences, ages, countries)
                ],
                "status": a_status,
                "effective_status": _effective(a_own, c_status[parent], "CAMPAIGN_PAUSED"),
                "optimization_goal": [_GOALS[o] for o in objectives[parent]],
                "billing_event": "IMPRESSIONS",
                "daily_budget": budgets["adset_daily_budget"],
                "lifetime_budget": np.nan,
                "age_min": [lo for lo, _ in ages],
                "age_max": [hi for _, hi in ages],
                "genders": genders,
                "countries": [",".join(cs) for cs in countries],
                "placements": [",".join(ps) for ps in placements],
                "targeting_json": [
                    _targeting_json(a, g, cs, ps) for a, g, cs, ps in zip(ages, genders, countries, placements)
                ],
                "created_time": _created_times(a_hash),
            }
        )
        # an ad set starts when it is created (or with its campaign's flight) and stops with the flight
        flight_start = campaigns["start_time"].to_numpy()[parent]
        created = adsets["created_time"].to_numpy()
        adsets["start_time"] = np.where(np.isnat(flight_start) | (flight_start < created), created, flight_start)
        adsets["stop_time"] = campaigns["stop_time"].to_numpy()[parent]

        formats = _pick(_FORMATS, d_hash, 11)
        angles = _pick(_ANGLES, d_hash, 12)
        ads = pd.DataFrame(
            {
                "ad_id": d_ids,
                "account_id": acct,
                "campaign_id": c_ids[parent][ad_parent],
                "adset_id": a_ids[ad_parent],
                "name": [f"{f} · {a} v{(i % s.ads_per_adset) + 1}" for i, (f, a) in enumerate(zip(formats, angles))],
                "status": d_status,
                "effective_status": _effective(d_own, a_status[ad_parent], "ADSET_PAUSED"),
                "creative_id": (np.arange(s.ads, dtype=np.int64) + 120_240_000_000_000_001 + self.id_offset).astype(
                    str
                ),
                "created_time": _created_times(d_hash),
            }
        )
        return EntityTree(
            self.account, _table_frame("campaign", campaigns), _table_frame("adset", adsets), _table_frame("ad", ads)
        )

    def fetch_creatives(self, account: Account, creative_ids: Sequence[str]) -> list[Creative]:
        return stub_creatives(account.account_id, creative_ids)

    def fetch_insights(
        self, account: Account, window: DateWindow, scope: Scope, sync_id: str, on_status: StatusCallback | None = None
    ) -> Iterator[InsightBatch]:
        tree = self.fetch_entities(account)
        s = self.shape
        needed = np.zeros(s.campaigns, dtype=bool)
        campaign_index = {cid: i for i, cid in enumerate(tree.campaigns["campaign_id"])}
        for level in LEVELS:
            ids = scope.ids(level)
            if not ids:
                continue
            frame = tree.frame(level)
            parents = frame[frame[LEVEL_SPECS[level].id_column].isin(ids)]["campaign_id"]
            needed[[campaign_index[c] for c in parents]] = True
        chunk = max(1, ROWS_PER_CHUNK // max(1, s.adsets_per_campaign * s.ads_per_adset * window.days))
        campaigns = np.flatnonzero(needed)
        for start in range(0, len(campaigns), chunk):
            yield from self._chunk_batches(campaigns[start : start + chunk], window, scope, sync_id)

    def _chunk_batches(
        self, campaigns: np.ndarray, window: DateWindow, scope: Scope, sync_id: str
    ) -> Iterator[InsightBatch]:
        s = self.shape
        acct = self.account.account_id
        days = np.array([(d - _EPOCH).days for d in window.dates()], dtype=np.int64)
        dates = np.array(window.dates(), dtype="datetime64[D]")
        a_per_c, d_per_a = s.adsets_per_campaign, s.ads_per_adset
        adsets = (campaigns[:, None] * a_per_c + np.arange(a_per_c)[None, :]).ravel()
        ads = (adsets[:, None] * d_per_a + np.arange(d_per_a)[None, :]).ravel()

        base = self.id_offset + 1
        c_num, a_num, d_num = campaigns + _CAMPAIGN_BASE + base, adsets + _ADSET_BASE + base, ads + _AD_BASE + base
        c_ids, a_ids, d_ids = c_num.astype(str), a_num.astype(str), d_num.astype(str)
        ad_status = self.fetch_entities(self.account).ads["status"].to_numpy()[ads]
        ad = generate_ad_days(hash_ids(d_ids), days, active=ad_status == "ACTIVE")
        if self.scenarios:
            tree, ads_per_campaign = self.fetch_entities(self.account), a_per_c * d_per_a
            ad = plant_stub_scenarios(ad, self.scenarios, tree, ads_per_campaign, ads, days, window.until)

        n_c, n_days = len(campaigns), len(days)
        per_adset = {k: v.reshape(n_c * a_per_c, d_per_a, n_days) for k, v in ad.items()}
        adset = _roll_up(per_adset, hash_ids(a_ids), days)
        per_campaign = {k: v.reshape(n_c, a_per_c, n_days) for k, v in adset.items()}
        campaign = _roll_up(per_campaign, hash_ids(c_ids), days)

        # ids travel as integers (each entity's lineage, outermost first) and become strings in _frame
        levels: list[tuple[Level, np.ndarray, dict[str, np.ndarray], tuple[np.ndarray, ...]]] = [
            ("campaign", c_ids, campaign, (c_num,)),
            ("adset", a_ids, adset, (np.repeat(c_num, a_per_c), a_num)),
            ("ad", d_ids, ad, (np.repeat(c_num, a_per_c * d_per_a), np.repeat(a_num, d_per_a), d_num)),
        ]
        for level, ids, values, lineage in levels:
            in_scope = (
                np.ones(len(ids), dtype=bool)
                if scope.is_full
                else np.isin(ids, np.array(sorted(scope.ids(level)), dtype=ids.dtype))
            )
            if not in_scope.any():
                continue
            failures = self._failures(ids[in_scope], sync_id)
            keep = in_scope & ~np.isin(ids, np.array(sorted(failures), dtype=ids.dtype))
            rows = _frame(acct, level, lineage, values, dates, keep)
            self.stats.rate_limit_hits += len(failures)
            yield InsightBatch(level, rows, failures, entities_done=int(in_scope.sum()))

    def fetch_breakdowns(
        self,
        account: Account,
        window: DateWindow,
        scope: Scope,
        families: tuple[BreakdownFamily, ...],
        sync_id: str,
        on_status: StatusCallback | None = None,
    ) -> Iterator[BreakdownBatch]:
        """Ad-level segments that sum exactly to each ad's totals; the engine rolls the parents up."""
        from insights_core.sources.stub_segments import iter_segment_batches  # it imports this module

        return iter_segment_batches(self, account, window, scope, families, sync_id)

    def _failures(self, ids: np.ndarray, sync_id: str) -> dict[str, str]:
        """Entities that fail in this sync when INSIGHTS_STUB_ERROR_RATE > 0 (a different draw per sync)."""
        if self.error_rate <= 0 or len(ids) == 0:
            return {}
        draw = uniforms(hash_ids(ids) ^ hash_ids([sync_id])[0], 99)
        failed = ids[draw < self.error_rate]
        return {str(i): "Rate limit exceeded (simulated by INSIGHTS_STUB_ERROR_RATE)" for i in failed}


def generate_ad_days(ad_hash: np.ndarray, days: np.ndarray, active: np.ndarray) -> dict[str, np.ndarray]:
    """Daily metrics for ads, shape (ads, days); money in cents. A pure function of (hash, day).

    Each ad has a personality (budget, CPM, CTR, conversion rate, order value) drawn from its id;
    each day adds weekday seasonality, a yearly wave, a late-November peak and noise. Inactive ads
    deliver in the weeks their id switches on (flighting), so paused ones still have history.
    """
    spend, impressions, seed, weekday = _ad_spend_cents(ad_hash, days, active)
    base_ctr = np.clip(np.exp(np.log(0.011) + 0.55 * _normal(ad_hash, 23)), 0.002, 0.06)
    base_cvr = np.clip(np.exp(np.log(0.02) + 0.7 * _normal(ad_hash, 25)), 0.002, 0.2)
    order_value = 20.0 + 100.0 * uniforms(ad_hash, 27)
    reach = np.floor(impressions / (1.0 + 0.45 * uniforms(seed, 3))).astype(np.int64)
    reach = np.where(impressions > 0, np.maximum(reach, 1), 0)
    clicks = np.floor(impressions * base_ctr[:, None] * (0.7 + 0.6 * uniforms(seed, 4)) + uniforms(seed, 5))
    clicks = np.minimum(clicks, impressions).astype(np.int64)
    unique_clicks = np.floor(clicks * (0.82 + 0.16 * uniforms(seed, 6))).astype(np.int64)
    conversions = np.floor(
        clicks * base_cvr[:, None] * _WEEKDAY_CVR[weekday][None, :] * (0.55 + 0.9 * uniforms(seed, 7))
        + uniforms(seed, 8)
    )
    conversions = np.minimum(conversions, clicks).astype(np.int64)
    revenue = np.round(conversions * order_value[:, None] * (0.85 + 0.3 * uniforms(seed, 9)) * 100).astype(np.int64)
    return {
        "spend": spend,
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "revenue": revenue,
        "reach": reach,
        "unique_clicks": unique_clicks,
    }


def _ad_spend_cents(
    ad_hash: np.ndarray, days: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(spend in cents, impressions, the day seeds, weekdays), each (ads, days): the part of
    `generate_ad_days` the budgets are set from."""
    budget = _ad_budget(ad_hash)
    base_cpm = 4.0 + 18.0 * uniforms(ad_hash, 22)
    seed = _day_seed(ad_hash, days)
    weekday = (days + 3) % 7  # 1970-01-01 was a thursday; 0 = monday
    week = days // 7
    flight_on = uniforms(_day_seed(ad_hash, week), 30) < FLIGHT_WEEKS
    delivering = active[:, None] | flight_on
    spend_dollars = (
        budget[:, None] * (_WEEKDAY_SPEND[weekday] * _season(days))[None, :] * (0.8 + 0.4 * uniforms(seed, 1))
    )
    impressions = np.floor(spend_dollars / (base_cpm[:, None] * (0.85 + 0.3 * uniforms(seed, 2))) * 1000)
    impressions = np.where(delivering, impressions, 0).astype(np.int64)
    spend = np.where(impressions > 0, np.round(spend_dollars * 100), 0).astype(np.int64)
    return spend, impressions, seed, weekday


REALIZED_CHUNK_ADS = 20_000
"""Ads per block when summing their spend for the budgets (bounds memory: ads x days int64 arrays)."""


def realized_ad_spend(ad_hash: np.ndarray, active: np.ndarray, first_day: np.ndarray, last_day: int) -> np.ndarray:
    """Each ad's spend in dollars from its own `first_day` to `last_day` (day numbers), as
    `generate_ad_days` gives it (before any planted scenario)."""
    total = np.zeros(len(ad_hash))
    for start in range(0, len(ad_hash), REALIZED_CHUNK_ADS):
        part = slice(start, start + REALIZED_CHUNK_ADS)
        days = np.arange(int(first_day[part].min()), last_day + 1, dtype=np.int64)
        spend = _ad_spend_cents(ad_hash[part], days, active[part])[0]
        total[part] = np.where(days[None, :] >= first_day[part, None], spend, 0).sum(axis=1) / 100
    return total


def _ad_budget(ad_hash: np.ndarray) -> npt.NDArray[np.float64]:
    """Each ad's spend personality in dollars a day (median ~9), before weekday, season and noise."""
    return np.exp(2.2 + 0.75 * _normal(ad_hash, 20))


def _season(days: np.ndarray) -> npt.NDArray[np.float64]:
    """The yearly wave (±12%) times the late-November peak (x1.6), per day number."""
    day_of_year = (days.astype("datetime64[D]") - days.astype("datetime64[D]").astype("datetime64[Y]")).astype(np.int64)
    season: npt.NDArray[np.float64] = 1.0 + 0.12 * np.sin(2 * np.pi * (day_of_year - 80) / 365.25)
    peak = np.where((day_of_year >= 325) & (day_of_year <= 334), 1.6, 1.0)  # black friday week
    return season * peak


def pace_factors(hashes: np.ndarray, stream: int) -> npt.NDArray[np.float64]:
    """Budget / spend per entity, 0.97-1.03 by id: the demo account paces every budget, so the
    detectors stay quiet on it; `INSIGHTS_STUB_SCENARIOS=overpacing` plants one that does not."""
    return 0.97 + 0.06 * uniforms(hashes, stream)


def stub_budgets(
    c_hash: np.ndarray, a_hash: np.ndarray, d_hash: np.ndarray, d_active: np.ndarray, anchor: int
) -> dict[str, np.ndarray]:
    """Budgets the account's own spend so far paces (times `pace_factors`), and the campaigns' flights.

    Each budget is what its entity really spent (`generate_ad_days`, its ads' sum) from its period's
    first day to day `anchor` (yesterday), per day elapsed, times its pace factor: so a budget matches
    the spend's season, flighting and noise, and pacing as of `anchor` is within ±3%. Three kinds of
    campaign, by id: ~20% a lifetime budget over a flight of 28-91 days holding day numbers anchor-1 to
    anchor+2 (flights relaunch on a grid of their own, so a flight stays put while it runs); ~25%
    budgets on their ad sets (ABO: no campaign budget); the rest a daily budget. Returns campaign
    columns (daily_budget, lifetime_budget, start_time, stop_time; a NaT start is the caller's) and
    `adset_daily_budget`."""
    n_c, n_a = len(c_hash), len(a_hash)
    kind = uniforms(c_hash, 50)
    lifetime, abo = kind < LIFETIME_SHARE, (kind >= LIFETIME_SHARE) & (kind < LIFETIME_SHARE + ABO_SHARE)
    length = 28 + (uniforms(c_hash, 51) * 64).astype(np.int64)
    grid = length - 3
    phase = (uniforms(c_hash, 52) * grid).astype(np.int64)
    first_day = anchor - 1 - np.mod(anchor - 1 - phase, grid)
    start = np.where(lifetime, first_day, 0).astype("datetime64[D]").astype("datetime64[s]")
    stop = np.where(lifetime, first_day + length, 0).astype("datetime64[D]").astype("datetime64[s]")
    month = np.datetime64(_EPOCH, "D") + np.timedelta64(anchor, "D")
    month_first = int((month.astype("datetime64[M]").astype("datetime64[D]") - np.datetime64(_EPOCH, "D")).astype(int))
    period_first = np.where(lifetime, first_day, month_first)
    ads_per_campaign = len(d_hash) // max(n_c, 1)
    spent = realized_ad_spend(d_hash, d_active, np.repeat(period_first, ads_per_campaign), anchor)
    per_adset = spent.reshape(n_a, -1).sum(axis=1)
    per_campaign = per_adset.reshape(n_c, -1).sum(axis=1)
    c_rate = per_campaign / (anchor - period_first + 1) * pace_factors(c_hash, 53)
    adset_campaign = np.repeat(np.arange(n_c), n_a // max(n_c, 1))
    a_rate = per_adset / (anchor - month_first + 1) * pace_factors(a_hash, 53)
    return {
        "daily_budget": np.where(lifetime | abo, np.nan, np.maximum(np.round(c_rate), 1.0)),
        "lifetime_budget": np.where(lifetime, np.maximum(np.round(c_rate * length), 1.0), np.nan),
        "start_time": np.where(lifetime, start, np.datetime64("NaT")),
        "stop_time": np.where(lifetime, stop, np.datetime64("NaT")),
        "adset_daily_budget": np.where(abo[adset_campaign], np.maximum(np.round(a_rate), 1.0), np.nan),
    }


def _roll_up(children: dict[str, np.ndarray], parent_hash: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
    """Parent rows from children shaped (parents, children, days).

    Additive metrics are sums. Reach and unique clicks overlap across children, so the parent's
    value lies between the largest child's and the children's sum (an overlap drawn per parent-day).
    """
    out = {k: children[k].sum(axis=1) for k in ("spend", "impressions", "clicks", "conversions", "revenue")}
    seed = _day_seed(parent_hash, days)
    for name, stream, low in (("reach", 40, 0.72), ("unique_clicks", 41, 0.88)):
        overlap = low + (1 - low) * uniforms(seed, stream)
        total = children[name].sum(axis=1)
        out[name] = np.maximum(children[name].max(axis=1), np.floor(total * overlap)).astype(np.int64)
    return out


def _frame(
    account_id: str,
    level: Level,
    lineage: tuple[np.ndarray, ...],
    values: dict[str, np.ndarray],
    dates: np.ndarray,
    keep: np.ndarray,
) -> pd.DataFrame:
    """Long rows (entity x day) for kept entities with delivery; money back from cents to currency units.

    `lineage` holds each entity's ancestors' numbers, outermost first, then its own. Ids arrive as
    integers and leave as Arrow-backed strings: DuckDB scans those about three times faster than
    Python string objects, which matters at millions of rows.
    """
    mask = keep[:, None] & (values["impressions"] > 0)
    entity_index, day_index = np.nonzero(mask)
    n = len(entity_index)
    impressions = values["impressions"][mask]
    reach = values["reach"][mask]
    spec = LEVEL_SPECS[level]
    id_strings = [_id_strings(numbers[entity_index]) for numbers in lineage]
    named = dict(zip((*spec.parent_id_columns, spec.id_column), id_strings))
    frame = pd.DataFrame(
        {
            "account_id": _text_strings(np.full(n, account_id)),
            "entity_type": _text_strings(np.full(n, level)),
            "entity_id": id_strings[-1],
            **{c: named[c] if c in named else _null_strings(n) for c in (s.id_column for s in LEVEL_SPECS.values())},
            "date_start": dates[day_index],
            "date_end": dates[day_index],
            "spend": values["spend"][mask] / 100.0,
            "impressions": impressions,
            "clicks": values["clicks"][mask],
            "conversions": values["conversions"][mask].astype(np.float64),
            "revenue": values["revenue"][mask] / 100.0,
            "reach": reach,
            "unique_clicks": values["unique_clicks"][mask],
            "frequency": impressions / np.maximum(reach, 1),
        }
    )
    return frame[list(INSIGHT_SOURCE_COLUMNS)]


_ARROW_STRING = pd.ArrowDtype(pa.string())


def _table_frame(level: Level, frame: pd.DataFrame) -> pd.DataFrame:
    """The level's entity table columns, in table order, with text as Arrow strings."""
    return _arrow_strings(frame[list(LEVEL_SPECS[level].column_names)])


def _arrow_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Arrow strings: a third of the memory of Python str objects, and faster to scan."""
    text = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    return frame.astype(dict.fromkeys(text, _ARROW_STRING))


def _text_strings(texts: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.array(texts), dtype=_ARROW_STRING)


def _id_strings(numbers: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.array(numbers).cast(pa.string()), dtype=_ARROW_STRING)


def _null_strings(n: int) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.nulls(n, pa.string()), dtype=_ARROW_STRING)


def _status(hashes: np.ndarray, paused: float, archived: float) -> np.ndarray:
    u = uniforms(hashes, 1)
    return np.where(u < paused, "PAUSED", np.where(u < paused + archived, "ARCHIVED", "ACTIVE")).astype(object)


def _effective(own: np.ndarray, parent: np.ndarray, paused_by_parent: str) -> np.ndarray:
    """Meta's effective_status: an active child of a paused parent reports e.g. CAMPAIGN_PAUSED."""
    return np.where((own == "ACTIVE") & (parent != "ACTIVE"), paused_by_parent, own).astype(object)


def _created_times(hashes: np.ndarray) -> np.ndarray:
    base = np.datetime64("2025-01-06T09:00:00")
    return base + (uniforms(hashes, 2) * 500 * 86400).astype("timedelta64[s]")


def _targeting_json(ages: tuple[int, int], gender: str, countries: tuple[str, ...], placements: tuple[str, ...]) -> str:
    """The shape Meta's `targeting` field has, so live and stub ad sets read alike."""
    targeting: dict[str, object] = {
        "age_min": ages[0],
        "age_max": ages[1],
        "geo_locations": {"countries": list(countries)},
    }
    if gender != "all":
        targeting["genders"] = [1 if gender == "male" else 2]
    if placements != ("automatic",):
        platforms = sorted({p.split("_")[0] for p in placements})
        targeting["publisher_platforms"] = platforms
        targeting["placements"] = list(placements)
    return json.dumps(targeting, sort_keys=True)
