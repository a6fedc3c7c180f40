"""Helpers for the live-mode tests: the emulator on a loopback port, settings and a worker process
pointed at it, stored rows, ground-truth comparison and a fake clock for waits of minutes."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import duckdb
import pandas as pd

from graph_emulator import ACCOUNT_ID, AccountShape, GraphEmulator
from insights_core.settings import Settings
from tests.helpers import PYTHON, ROOT, make_settings, subprocess_env

SHAPE = AccountShape(campaigns=4, adsets_per_campaign=3, ads_per_adset=2)
TOKEN = "EAAG-not-a-real-token-but-secret-7f3a9c"
"""Not shaped like a Meta token on purpose: it must be masked because it is a secret, not by pattern."""
METRICS = ("spend", "impressions", "clicks", "conversions", "revenue")


class FakeClock:
    """`now` and `sleep` for a source under test: sleeping advances time at once and is recorded."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


def live_settings(data_dir: Path, emulator: GraphEmulator, **overrides: object) -> Settings:
    """Live settings on the emulator, with waits shrunk so faults cost milliseconds."""
    values: dict = dict(
        mode="live",
        graph_url=emulator.url,
        access_token=TOKEN,
        ad_account_ids=ACCOUNT_ID,
        report_poll_seconds=0.005,
        rate_limit_retry_delay=0.01,
    )
    values.update(overrides)
    return make_settings(data_dir, **values)


def live_env(emulator: GraphEmulator, **extra: str) -> dict[str, str]:
    return {
        "META_INSIGHTS_MODE": "live",
        "META_GRAPH_URL": emulator.url,
        "META_ACCESS_TOKEN": TOKEN,
        "META_AD_ACCOUNT_IDS": ACCOUNT_ID,
        "META_REPORT_POLL_SECONDS": "0.005",
        "META_API_RATE_LIMIT_RETRY_DELAY": "0.01",
        **extra,
    }


def run_worker(
    data_dir: Path, emulator: GraphEmulator, *args: str, timeout: float = 90, **extra: str
) -> subprocess.CompletedProcess:
    """`python sync_worker.py <args>` in live mode against the emulator; waits for it to exit."""
    return subprocess.run(
        [PYTHON, str(ROOT / "sync_worker.py"), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(data_dir, **live_env(emulator, **extra)),
        timeout=timeout,
        cwd=data_dir.parent,
    )


def stored_rows(db_path: Path, level: str) -> pd.DataFrame:
    """A level's stored insight rows, read-only (the worker has exited)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        frame = con.execute(
            "SELECT entity_id, date_start, CAST(spend AS DOUBLE) AS spend, impressions, clicks,"
            " CAST(conversions AS DOUBLE) AS conversions, CAST(revenue AS DOUBLE) AS revenue, reach, unique_clicks,"
            " campaign_id, adset_id, ad_id, account_id FROM meta_ad_insights WHERE entity_type = ?"
            " ORDER BY entity_id, date_start",
            [level],
        ).df()
    frame["date_start"] = pd.to_datetime(frame["date_start"]).dt.date
    return frame


def assert_equals_truth(
    stored: pd.DataFrame,
    truth: pd.DataFrame,
    without: set[str] = frozenset(),
    columns: tuple[str, ...] = METRICS,
    without_rows: set[tuple[str, dt.date]] = frozenset(),
) -> None:
    """Same (entity, day) keys and the same metrics to the cent, except entities in `without` and
    (entity, day) keys in `without_rows`, which must not be stored at all."""

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        keys = pd.Series(list(zip(frame["entity_id"], frame["date_start"])), index=frame.index, dtype=object)
        return frame[~frame["entity_id"].isin(without) & ~keys.isin(without_rows)].reset_index(drop=True)

    stored_keys = set(zip(stored["entity_id"], stored["date_start"]))
    assert not stored_keys & set(without_rows), sorted(stored_keys & set(without_rows))
    expected, got = keep(truth), keep(stored)
    keys_expected = set(zip(expected["entity_id"], expected["date_start"]))
    keys_got = set(zip(got["entity_id"], got["date_start"]))
    assert keys_got == keys_expected, (
        f"missing {sorted(keys_expected - keys_got)[:5]}, unexpected {sorted(keys_got - keys_expected)[:5]}"
    )
    merged = expected.merge(got, on=["entity_id", "date_start"], suffixes=("_truth", "_stored"))
    for column in columns:
        diff = (merged[f"{column}_truth"].astype(float) - merged[f"{column}_stored"].astype(float)).abs()
        assert (diff < 0.005).all(), merged.loc[
            diff >= 0.005, ["entity_id", "date_start", f"{column}_truth", f"{column}_stored"]
        ].head()


def window_of(report: dict) -> tuple[dt.date, dt.date]:
    return dt.date.fromisoformat(report["since"]), dt.date.fromisoformat(report["until"])


def entities_under(emulator: GraphEmulator, campaign_id: str) -> dict[str, set[str]]:
    """A campaign's own id, its ad sets and its ads, per level."""
    entities = emulator.account.entities
    return {
        "campaign": {campaign_id},
        "adset": {e["id"] for e in entities["adset"] if e["campaign_id"] == campaign_id},
        "ad": {e["id"] for e in entities["ad"] if e["campaign_id"] == campaign_id},
    }
