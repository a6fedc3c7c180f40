"""Deterministic hand-made syncs for the engine tests: what one sync of one account writes.

Sync `n` of an account re-reads a 5-day window that slides by one day per sync, restates some
rows (spend changes with n), and leaves one ad out (Meta dropped it), so each sync inserts,
updates, leaves rows alone and deletes stale ones, as a real one does. Importable by spawned
processes (the concurrent writers' test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from insights_core.models import INSIGHT_SOURCE_COLUMNS, Account, SyncReport, SyncRequest
from insights_core.settings import Settings
from insights_core.store.warehouse import Warehouse
from tests.helpers import FIXED_NOW

FIRST_DAY = dt.date(2026, 10, 1)
ADS = 8
DAYS = 5


def window(n: int) -> tuple[dt.date, dt.date]:
    since = FIRST_DAY + dt.timedelta(days=n)
    return since, since + dt.timedelta(days=DAYS - 1)


def insight_rows(account_id: str, n: int) -> pd.DataFrame:
    since, _ = window(n)
    rows = []
    for ad in range(ADS):
        if ad == n % ADS:
            continue  # not returned this time: its stored rows in the window are stale
        for offset in range(DAYS):
            day = since + dt.timedelta(days=offset)
            restated = n if ad % 3 == 0 else 0
            impressions = 1000 + 10 * ad + offset
            rows.append(
                dict(
                    account_id=account_id,
                    entity_type="ad",
                    entity_id=f"{account_id}-ad-{ad}",
                    campaign_id=f"{account_id}-c",
                    adset_id=f"{account_id}-s",
                    ad_id=f"{account_id}-ad-{ad}",
                    date_start=day,
                    date_end=day,
                    spend=round(12.5 + ad + restated + (day - FIRST_DAY).days / 4, 2),
                    impressions=impressions,
                    clicks=impressions // 20,
                    conversions=1.0 + (ad % 2),
                    revenue=30.25 + ad,
                    reach=impressions - 100,
                    unique_clicks=impressions // 25,
                    frequency=1.1,
                )
            )
    return pd.DataFrame(rows, columns=list(INSIGHT_SOURCE_COLUMNS))


def save_sync(warehouse: Warehouse, account_id: str, n: int, meanwhile: Callable[[], object] | None = None) -> None:
    """Sync `n` of `account_id`, in one transaction, as the engine writes one; `meanwhile` runs just
    before the commit (another writer's sync)."""
    now = FIXED_NOW + dt.timedelta(hours=n)
    since, until = window(n)
    report = SyncReport.for_request(
        SyncRequest(days_back=DAYS), sync_id=f"{account_id}-sync-{n}", sync_timestamp=now.isoformat(), mode="stub"
    )
    report.status, report.success = "succeeded", True
    with warehouse.transaction():
        warehouse.upsert_account(Account(account_id, f"Account {account_id}", "USD", "UTC"), now)
        warehouse.upsert_insights(insight_rows(account_id, n), now)
        warehouse.delete_stale_insights(account_id, "ad", since, until, None)
        warehouse.save_synced_days(account_id, "ad", [since + dt.timedelta(days=d) for d in range(DAYS)], now)
        warehouse.save_sync_run(report)
        if meanwhile is not None:
            meanwhile()


def write_accounts(settings: Settings, accounts: list[str], syncs: int, start: object = None) -> int:
    """One writer process: `syncs` syncs of each of its accounts into the lake; returns its replayed commits.

    `start` is a multiprocessing barrier the writers pass together, so their commits overlap.
    """
    from insights_core.store.lake_warehouse import LakeWarehouse

    warehouse = LakeWarehouse(settings)
    try:
        if start is not None:
            start.wait()  # type: ignore[attr-defined]
        for n in range(syncs):
            for account_id in accounts:
                save_sync(warehouse, account_id, n)
        return warehouse.replays
    finally:
        warehouse.close()


def fetch_state(con) -> dict[str, list[tuple]]:
    """Every stored row of the tables a sync writes, sorted (timestamps included: they are deterministic)."""
    return {
        "meta_ad_insights": con.execute(
            "SELECT account_id, entity_type, entity_id, date_start, spend, impressions, clicks, conversions, revenue,"
            " reach, unique_clicks, frequency, created_at, updated_at FROM meta_ad_insights ORDER BY ALL"
        ).fetchall(),
        "synced_days": con.execute("SELECT * FROM synced_days ORDER BY ALL").fetchall(),
        "ad_accounts": con.execute("SELECT * FROM ad_accounts ORDER BY ALL").fetchall(),
        "sync_runs": con.execute("SELECT sync_id, status, success FROM sync_runs ORDER BY ALL").fetchall(),
    }


def writer_process(settings: Settings, accounts: list[str], syncs: int, start: object, results: object) -> None:
    """A spawned writer's target: `write_accounts`, its replay count put on the `results` queue."""
    results.put(write_accounts(settings, accounts, syncs, start))  # type: ignore[attr-defined]
