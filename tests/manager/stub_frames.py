"""The stub account's entities and daily rows as the detectors read them, for a fixed window (no store,
no clock): the detectors' inputs are then a pure function of the shape, the scenarios and the dates."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from insights_core.models import DateWindow, Scope
from insights_core.sources.stub import StubShape, StubSource

SMALL = StubShape(6, 3, 2)
AS_OF_DAYS = (dt.date(2026, 9, 16), dt.date(2026, 10, 14), dt.date(2026, 11, 20))
"""Days the tests look from: mid-month, outside the stub's late-November peak."""
ALL_SCENARIOS = ("overpacing", "fatigue", "anomaly")


def stub_frames(
    as_of: dt.date, scenarios: tuple[str, ...] = (), days: int = 200, shape: StubShape = SMALL
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], StubSource]:
    """(entities by level, daily rows by level, the source) for a sync window ending `as_of`."""
    source = StubSource(shape, scenarios=scenarios, today=as_of + dt.timedelta(days=1))
    tree = source.fetch_entities(source.account)
    window = DateWindow(as_of - dt.timedelta(days=days - 1), as_of)
    ids = {lvl: frozenset(tree.frame(lvl)[f"{lvl}_id"]) for lvl in ("campaign", "adset", "ad")}
    rows: dict[str, list[pd.DataFrame]] = {"campaign": [], "adset": [], "ad": []}
    for batch in source.fetch_insights(source.account, window, Scope(ids, is_full=True), "sync-test"):
        rows[batch.level].append(batch.rows)
    daily = {}
    for level, parts in rows.items():
        frame = pd.concat(parts, ignore_index=True)
        daily[level] = pd.DataFrame(
            {
                "entity_id": frame["entity_id"].astype(str),
                "date": pd.to_datetime(frame["date_start"]),
                **{m: frame[m].astype("float64") for m in ("spend", "impressions", "clicks", "conversions", "revenue")},
                "reach": frame["reach"].astype("float64"),
            }
        )
    entities = {}
    for level in ("campaign", "adset", "ad"):
        frame = tree.frame(level)
        entities[level] = pd.DataFrame(
            {
                "entity_id": frame[f"{level}_id"].astype(str),
                "name": frame["name"].astype(str),
                "campaign_id": frame["campaign_id"].astype(str),
                "effective_status": frame["effective_status"].astype(str),
                **{
                    c: frame[c].astype("float64") if c in frame else float("nan")
                    for c in ("daily_budget", "lifetime_budget")
                },
                **{c: frame.get(c, pd.NaT) for c in ("start_time", "stop_time")},
            }
        )
    return entities, daily, source
