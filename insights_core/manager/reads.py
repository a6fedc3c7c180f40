"""The frames the detectors read, from any store connection (a published snapshot or the worker's file).

Values are bound parameters; the only text spliced into SQL are names from `LEVEL_SPECS`, picked by a
level checked against LEVELS. Frames carry sums per entity and day; ratios are computed by the
detectors from sums, never averaged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import pandas as pd

from insights_core.errors import InputError
from insights_core.levels import LEVEL_SPECS, LEVELS

Con = duckdb.DuckDBPyConnection

DAILY_COLUMNS = ("entity_id", "date", "spend", "impressions", "clicks", "conversions", "revenue", "reach")


def fetch_last_day(con: Con) -> dt.date | None:
    """The latest day with campaign insights: the detectors' "today"."""
    row = con.execute("SELECT max(date_start) FROM meta_ad_insights WHERE entity_type = 'campaign'").fetchone()
    return row[0] if row else None


def fetch_daily(con: Con, level: str, since: dt.date, until: dt.date) -> pd.DataFrame:
    """One row per (entity, day with delivery) of `level`, additive metrics and that day's reach."""
    if level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {level!r}")
    frame = con.execute(
        """
        SELECT entity_id, date_start AS date, spend::DOUBLE AS spend, impressions, clicks,
               conversions::DOUBLE AS conversions, revenue::DOUBLE AS revenue, reach
        FROM meta_ad_insights
        WHERE entity_type = $level AND date_start BETWEEN $since AND $until
        ORDER BY entity_id, date_start
        """,
        {"level": level, "since": since, "until": until},
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def fetch_account_daily(con: Con, since: dt.date, until: dt.date) -> pd.DataFrame:
    """Each ad account's daily sums (from campaign rows), `entity_id` being the account id."""
    frame = con.execute(
        """
        SELECT account_id AS entity_id, date_start AS date, sum(spend)::DOUBLE AS spend,
               sum(impressions)::BIGINT AS impressions, sum(clicks)::BIGINT AS clicks,
               sum(conversions)::DOUBLE AS conversions, sum(revenue)::DOUBLE AS revenue
        FROM meta_ad_insights
        WHERE entity_type = 'campaign' AND date_start BETWEEN $since AND $until
        GROUP BY account_id, date_start ORDER BY account_id, date_start
        """,
        {"since": since, "until": until},
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def fetch_entities(con: Con, level: str, ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Id, name, campaign, effective status, budgets and schedule (start_time, stop_time) of every `level`
    entity, or of `ids` only (`entity_id` names the id). Ads have neither: their columns are NULL."""
    if level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {level!r}")
    spec = LEVEL_SPECS[level]
    budgeted = "daily_budget" in spec.column_names
    columns = ", ".join(
        f"{name}::{sql_type} AS {name}" if budgeted else f"NULL::{sql_type} AS {name}"
        for name, sql_type in (
            ("daily_budget", "DOUBLE"),
            ("lifetime_budget", "DOUBLE"),
            ("start_time", "TIMESTAMP"),
            ("stop_time", "TIMESTAMP"),
        )
    )
    # IN over the unnested list: DuckDB makes it a hash semi-join (list_contains is a per-row function)
    where = f" WHERE {spec.id_column} IN (SELECT unnest($ids))" if ids is not None else ""
    return con.execute(
        f"SELECT {spec.id_column} AS entity_id, name, campaign_id, account_id, effective_status, {columns} "
        f"FROM {spec.table}{where} ORDER BY {spec.id_column}",
        {"ids": list(ids)} if ids is not None else {},
    ).df()


def fetch_has_budget(con: Con, level: str) -> bool:
    """Whether any `level` entity has a daily or lifetime budget (ads have none): pacing reads nothing else."""
    if level not in LEVELS:
        raise InputError(f"entity type must be one of {', '.join(LEVELS)}, got {level!r}")
    spec = LEVEL_SPECS[level]
    if "daily_budget" not in spec.column_names:
        return False
    row = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {spec.table} WHERE daily_budget > 0 OR lifetime_budget > 0)"
    ).fetchone()
    return bool(row and row[0])


FREQUENCY_GATE_SLACK = 1e-6
"""How far under `min_frequency` an ad is still returned: the gate is a superset of the detector's own
(which compares with a 1e-9 tolerance), so a rounding difference between DuckDB and numpy drops nothing."""


def fetch_ad_two_week_sums(
    con: Con, as_of: dt.date, days: int, min_frequency: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per ad, for the `days` ending `as_of` and for the `days` before them: spend, impressions, clicks and
    the sum of impressions x that day's frequency (impressions / reach), each frame indexed by entity_id and
    holding the ads with a row in its window: what `fatigue.fatigue_from_week_sums` reads.

    One scan grouped by ad and window (the rule runs after every sync; two queries cost twice the scan).
    With `min_frequency` (the fatigue warning level), only ads whose recent frequency (the impressions-
    weighted daily mean) reaches it are returned, in both frames: the detector looks at no other ad, and
    on 100k ads turning every ad's sums into pandas rows costs more than the scan."""
    split = as_of - dt.timedelta(days=days)
    frame = con.execute(
        """
        WITH sums AS (
            SELECT entity_id, date_start > $split AS recent, sum(spend)::DOUBLE AS spend,
                   sum(impressions)::DOUBLE AS impressions, sum(clicks)::DOUBLE AS clicks,
                   sum(CASE WHEN reach > 0 THEN impressions::DOUBLE * impressions / reach ELSE 0 END) AS freq_x_impr
            FROM meta_ad_insights
            WHERE entity_type = 'ad' AND date_start BETWEEN $since AND $until
            GROUP BY entity_id, recent
        )
        SELECT * FROM sums
        WHERE $min_frequency <= 0 OR entity_id IN (
            SELECT entity_id FROM sums
            WHERE recent AND impressions > 0 AND freq_x_impr >= ($min_frequency - $slack) * impressions
        )
        """,
        {
            "since": split - dt.timedelta(days=days - 1),
            "split": split,
            "until": as_of,
            "min_frequency": min_frequency,
            "slack": FREQUENCY_GATE_SLACK,
        },
    ).df()
    recent = frame.pop("recent").to_numpy(dtype=bool)
    return frame[recent].set_index("entity_id"), frame[~recent].set_index("entity_id")
