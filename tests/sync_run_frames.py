"""Stored sync runs (`sync_runs` rows) as small crafted frames, for the alert and /metrics tests."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def runs(*rows: dict) -> pd.DataFrame:
    """Sync runs, oldest first in the arguments; each row: minutes ago plus overrides."""
    records = []
    for row in rows:
        row = dict(row)
        minutes = row.pop("ago")
        base = {
            "sync_timestamp": pd.Timestamp(NOW.replace(tzinfo=None) - dt.timedelta(minutes=minutes)),
            "sync_type": "scheduled",
            "entity_type": None,
            "status": "succeeded",
            "total_duration_seconds": 10.0,
            "rate_limit_hits": 0,
            "campaigns_processed": 100,
            "campaigns_errors": 0,
            "adsets_processed": 500,
            "adsets_errors": 0,
            "ads_processed": 1400,
            "ads_errors": 0,
        }
        records.append({**base, **row})
    return pd.DataFrame(records).iloc[::-1].reset_index(drop=True)  # newest first, like fetch_sync_runs


def of(*accounts: str) -> str:
    """A stored report naming the accounts its run synced."""
    return json.dumps({"accounts": list(accounts)})
