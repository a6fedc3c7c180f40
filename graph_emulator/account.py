"""The emulator's seeded ad account: Meta-shaped entities and the daily truth behind its insights.

Ads' daily numbers come from the stub's pure generator (`generate_ad_days`), so they are a
function of (ad id, date) alone; ad sets and campaigns add up their children for the additive
metrics and take their own, overlapping reach and unique clicks. Ids use their own ranges, so an
emulated account never collides with the stub account in one data directory.

An emulator may serve several accounts (`seeded_accounts`): the n-th (from 0) is `act_<5550001 + n>`
and its campaigns, ad sets, ads and creatives take the n-th block of ID_BLOCK ids of each range, so
two accounts never share an id and the first one keeps the ids it always had.

Every account has entities in each status a collector must not lose: paused, archived and
deleted campaigns, ad sets and ads, which still have history on the days they delivered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from insights_core.levels import LEVELS, Level
from insights_core.sources.stub import generate_ad_days, hash_ids, uniforms

ACCOUNT_ID = "act_5550001"
ADDITIVE = ("spend", "impressions", "clicks", "conversions", "revenue")
_BASES = {"campaign": 238_510_000_000_000_000, "adset": 238_520_000_000_000_000, "ad": 238_530_000_000_000_000}
_CREATIVE_BASE = 238_540_000_000_000_000
ID_BLOCK = 1_000_000_000
"""Ids of one account per level; the ranges above are 10**13 apart, so MAX_ACCOUNTS blocks fit in each."""
MAX_ACCOUNTS = 10_000
_ACCOUNT_NUMBER = 5_550_001
_EPOCH = dt.date(1970, 1, 1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_OBJECTIVES = ("OUTCOME_SALES", "OUTCOME_SALES", "OUTCOME_TRAFFIC", "OUTCOME_AWARENESS", "OUTCOME_LEADS")
_TARGETING = (
    {"age_min": 18, "age_max": 65, "geo_locations": {"countries": ["US"]}},
    {
        "age_min": 25,
        "age_max": 44,
        "genders": [2],
        "geo_locations": {"countries": ["US", "CA"]},
        "publisher_platforms": ["facebook", "instagram"],
        "facebook_positions": ["feed"],
        "instagram_positions": ["stream", "story"],
    },
    {
        "age_min": 18,
        "age_max": 34,
        "genders": [1],
        "geo_locations": {"countries": ["GB", "IE"]},
        "publisher_platforms": ["instagram"],
        "instagram_positions": ["reels"],
    },
    {
        "age_min": 35,
        "age_max": 65,
        "geo_locations": {"countries": ["ES", "MX"]},
        "publisher_platforms": ["facebook", "audience_network"],
        "facebook_positions": ["feed", "marketplace"],
    },
)


@dataclass(frozen=True)
class AccountShape:
    campaigns: int = 4
    adsets_per_campaign: int = 3
    ads_per_adset: int = 2


def account_id_for(index: int) -> str:
    """The act id of the emulator's `index`-th account (0 is ACCOUNT_ID)."""
    return f"act_{_ACCOUNT_NUMBER + index}"


HOSTILE_HOST = "127.0.0.2:9"
"""A loopback address nothing listens on: a browser that fetches from it shows the markup was rendered."""
HOSTILE_NAMES = (
    f"![x](http://{HOSTILE_HOST}/p.png) [phish](http://{HOSTILE_HOST}/phish)",
    f'<img src="http://{HOSTILE_HOST}/h.png"> <a href="http://{HOSTILE_HOST}/phish">html</a>',
    f"see http://{HOSTILE_HOST}/phish or www.example.invalid <http://{HOSTILE_HOST}/phish>",
    ":red[alarm] :material/warning: :smile: $x^2$ # *bold* _it_ `code` ~~gone~~ | a | b | mail@example.invalid",
    "back\\slash \\*not bold\\* &amp; &lt;b&gt; [ref]: http://127.0.0.2:9/ref",
)
"""Names an ad's owner could give it (`hostile_names=True`): markdown and HTML that must show as text."""


class SeededAccount:
    """Entities as Graph returns them, and `daily(level, since, until)`: the truth per entity and day."""

    def __init__(
        self,
        shape: AccountShape = AccountShape(),
        account_id: str = ACCOUNT_ID,
        timezone_name: str = "America/Los_Angeles",
        currency: str = "USD",
        hostile_names: bool = False,
        index: int = 0,
    ) -> None:
        """`index` picks the account's block of ids (see `seeded_accounts`); the act id is the caller's."""
        s = shape
        ads = s.campaigns * s.adsets_per_campaign * s.ads_per_adset
        if not 0 <= index < MAX_ACCOUNTS:
            raise ValueError(f"account index {index} is outside 0..{MAX_ACCOUNTS - 1}")
        if max(s.campaigns * s.adsets_per_campaign, ads) >= ID_BLOCK:
            raise ValueError(f"an account holds fewer than {ID_BLOCK} entities per level")
        self.shape = shape
        self.hostile_names = hostile_names
        self.account_id = account_id
        self.index = index
        self.timezone_name = timezone_name
        self.currency = currency
        offset = index * ID_BLOCK
        self.ids = {
            "campaign": [str(_BASES["campaign"] + offset + i + 1) for i in range(s.campaigns)],
            "adset": [str(_BASES["adset"] + offset + i + 1) for i in range(s.campaigns * s.adsets_per_campaign)],
            "ad": [str(_BASES["ad"] + offset + i + 1) for i in range(ads)],
        }
        self.creative_ids = [str(_CREATIVE_BASE + offset + i + 1) for i in range(ads)]
        self.adset_parent = np.repeat(np.arange(s.campaigns), s.adsets_per_campaign)
        self.ad_parent = np.repeat(np.arange(len(self.ids["adset"])), s.ads_per_adset)
        self.status = self._statuses()
        self.entities: dict[Level, list[dict]] = {lvl: self._entity_json(lvl) for lvl in LEVELS}
        self.by_id: dict[str, tuple[Level, dict]] = {e["id"]: (lvl, e) for lvl in LEVELS for e in self.entities[lvl]}

    def account_json(self) -> dict:
        return {
            "id": self.account_id,
            "account_id": self.account_id.removeprefix("act_"),
            "name": self._name("Emulated Store" if self.index == 0 else f"Emulated Store {self.index + 1}", 0),
            "currency": self.currency,
            "timezone_name": self.timezone_name,
            "account_status": 1,
        }

    def _name(self, plain: str, index: int) -> str:
        return f"{plain} {HOSTILE_NAMES[index % len(HOSTILE_NAMES)]}" if self.hostile_names else plain

    def campaign_index(self, level: Level) -> np.ndarray:
        """Each entity's campaign position."""
        if level == "campaign":
            return np.arange(self.shape.campaigns)
        if level == "adset":
            return self.adset_parent
        return self.adset_parent[self.ad_parent]

    def daily(self, level: Level, since: dt.date, until: dt.date) -> dict[str, np.ndarray]:
        """Arrays shaped (entities, days): money in cents, counts as integers. Cached per window."""
        return _daily(self, level, since, until)

    def ground_truth(self, level: Level, since: dt.date, until: dt.date) -> pd.DataFrame:
        """What a correct collector stores: one row per entity and day with delivery, money in currency units."""
        values = self.daily(level, since, until)
        days = pd.date_range(since, until, freq="D")
        entity, day = np.nonzero(values["impressions"] > 0)
        frame = pd.DataFrame(
            {
                "entity_id": np.array(self.ids[level], dtype=object)[entity],
                "date_start": [d.date() for d in days[day]],
                "spend": values["spend"][entity, day] / 100,
                "impressions": values["impressions"][entity, day],
                "clicks": values["clicks"][entity, day],
                "conversions": values["conversions"][entity, day].astype(float),
                "revenue": values["revenue"][entity, day] / 100,
                "reach": values["reach"][entity, day],
                "unique_clicks": values["unique_clicks"][entity, day],
            }
        )
        return frame.sort_values(["entity_id", "date_start"]).reset_index(drop=True)

    def _statuses(self) -> dict[Level, list[str]]:
        """Own statuses: a few paused, archived and deleted at every level, inherited downwards."""
        c = len(self.ids["campaign"])
        own_c = ["ACTIVE"] * c
        for index, status in ((1, "PAUSED"), (2, "ARCHIVED"), (3, "DELETED")):
            if index < c and c >= 4:
                own_c[index] = status
        for i in range(4, c):
            u = uniforms(hash_ids([self.ids["campaign"][i]]), 1)[0]
            own_c[i] = "PAUSED" if u < 0.12 else "ARCHIVED" if u < 0.17 else "DELETED" if u < 0.20 else "ACTIVE"
        adset = [self._inherit(own_c[p], self._own("adset", i)) for i, p in enumerate(self.adset_parent)]
        ad = [self._inherit(adset[p], self._own("ad", i)) for i, p in enumerate(self.ad_parent)]
        return {"campaign": own_c, "adset": adset, "ad": ad}

    def _own(self, level: Level, index: int) -> str:
        per_parent = self.shape.adsets_per_campaign if level == "adset" else self.shape.ads_per_adset
        if index == per_parent - 1 and per_parent >= 2:
            return "DELETED" if level == "ad" else "ARCHIVED"  # the first parent's last child
        u = uniforms(hash_ids([self.ids[level][index]]), 1)[0]
        return "PAUSED" if u < 0.10 else "ARCHIVED" if u < 0.12 else "ACTIVE"

    @staticmethod
    def _inherit(parent: str, own: str) -> str:
        return parent if parent in ("ARCHIVED", "DELETED") else own

    def _effective(self, level: Level, index: int) -> str:
        own = self.status[level][index]
        if own != "ACTIVE" or level == "campaign":
            return own
        parent = (
            self.status["campaign"][self.adset_parent[index]]
            if level == "adset"
            else self.status["adset"][self.ad_parent[index]]
        )
        return own if parent == "ACTIVE" else "CAMPAIGN_PAUSED" if level == "adset" else "ADSET_PAUSED"

    def _schedule(self, campaign: int, created: dt.datetime, u: float) -> dict[str, str]:
        """Every other campaign has a lifetime budget over 90 days from 2026-10-01 (so it covers the
        tests' November windows); the others a daily budget and no stop time (they run on)."""
        if campaign % 2 == 1:
            start = dt.datetime(2026, 10, 1, 7, tzinfo=dt.timezone.utc)
            stop = start + dt.timedelta(days=90)
            return {
                "lifetime_budget": str(int(400_000 + u * 4_000_000) // 100 * 100),
                "start_time": start.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "stop_time": stop.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
        start = created + dt.timedelta(days=1)
        return {
            "daily_budget": str(int(5000 + u * 100_000) // 100 * 100),
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        }

    def _entity_json(self, level: Level) -> list[dict]:
        account = self.account_id.removeprefix("act_")
        out = []
        for i, entity_id in enumerate(self.ids[level]):
            u = uniforms(hash_ids([entity_id]), 2)[0]
            created = dt.datetime(2025, 1, 6, 9, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=int(u * 400 * 86400))
            item = {
                "id": entity_id,
                "account_id": account,
                "name": self._name(f"{level.title()} {i + 1}", i),
                "status": self.status[level][i],
                "effective_status": self._effective(level, i),
                "created_time": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
            if level == "campaign":
                item["objective"] = _OBJECTIVES[i % len(_OBJECTIVES)]
                item.update(self._schedule(i, created, u))
            elif level == "adset":
                campaign = self.adset_parent[i]
                item["campaign_id"] = self.ids["campaign"][campaign]
                # an ad set starts after it is created and ends when its campaign stops (Graph: `end_time`)
                schedule = self._schedule(campaign, created, u)
                item["start_time"] = schedule["start_time"]
                if "stop_time" in schedule:
                    item["end_time"] = schedule["stop_time"]
                item.update(
                    optimization_goal="OFFSITE_CONVERSIONS",
                    billing_event="IMPRESSIONS",
                    targeting=_TARGETING[i % len(_TARGETING)],
                )
            else:
                parent = self.ad_parent[i]
                item.update(
                    campaign_id=self.ids["campaign"][self.adset_parent[parent]],
                    adset_id=self.ids["adset"][parent],
                    creative={"id": self.creative_ids[i]},
                )
            out.append(item)
        return out


def seeded_accounts(
    count: int, shape: AccountShape = AccountShape(), hostile_names: bool = False
) -> list[SeededAccount]:
    """`count` accounts of one shape, the first being the single-account default (ACCOUNT_ID, its ids);
    each has its own act id and id blocks, and its own numbers (they are a function of the ids)."""
    if not 1 <= count <= MAX_ACCOUNTS:
        raise ValueError(f"an emulator serves 1 to {MAX_ACCOUNTS} accounts, not {count}")
    return [SeededAccount(shape, account_id_for(n), hostile_names=hostile_names, index=n) for n in range(count)]


@lru_cache(maxsize=256)
def _daily(account: SeededAccount, level: Level, since: dt.date, until: dt.date) -> dict[str, np.ndarray]:
    days = np.arange((since - _EPOCH).days, (until - _EPOCH).days + 1, dtype=np.int64)
    active = np.array([s == "ACTIVE" for s in account.status["ad"]])
    ad = generate_ad_days(hash_ids(account.ids["ad"]), days, active)
    if level == "ad":
        return ad
    adset = _roll_up(ad, account.ad_parent, len(account.ids["adset"]), hash_ids(account.ids["adset"]), days)
    if level == "adset":
        return adset
    return _roll_up(adset, account.adset_parent, len(account.ids["campaign"]), hash_ids(account.ids["campaign"]), days)


def _roll_up(
    children: dict[str, np.ndarray], parent_of: np.ndarray, parents: int, parent_hash: np.ndarray, days: np.ndarray
) -> dict[str, np.ndarray]:
    """Sums for the additive metrics; reach and unique clicks between the largest child and the sum."""
    out = {}
    for name, values in children.items():
        total = np.zeros((parents, values.shape[1]), dtype=values.dtype)
        np.add.at(total, parent_of, values)
        out[name] = total
    with np.errstate(over="ignore"):
        seed = parent_hash[:, None] ^ (days.astype(np.uint64) * _GOLDEN)[None, :]
    for name, stream, low in (("reach", 40, 0.72), ("unique_clicks", 41, 0.88)):
        largest = np.zeros_like(out[name])
        np.maximum.at(largest, parent_of, children[name])
        overlap = low + (1 - low) * uniforms(seed.ravel(), stream).reshape(seed.shape)
        out[name] = np.maximum(largest, np.floor(out[name] * overlap)).astype(np.int64)
    return out
