"""Ad-account leases in PostgreSQL: which of many workers syncs which account, and when it last did.

A worker claims accounts (`FOR UPDATE SKIP LOCKED`, so two claims never wait on or take the same
row), renews its leases from its heartbeat thread, and releases them when the sync is done. A lease
not renewed for `lease_seconds` expires and any worker may take the account. Every claim bumps the
row's `fence`: a lease is ours only while holder and fence are still the ones we got, so a worker
that stalled past its lease learns at `confirm` (just before its commit) that it lost the account,
and rolls back instead of writing next to the new holder.

Scheduled syncs: `last_scheduled_at` is set when a scheduled sync of the account finishes, and
`claim_due` only takes accounts whose last one is an interval old, so each interval's scheduled
sync of an account is done by exactly one worker. A scheduled sync that failed sets `retry_at`
instead of waiting a whole interval (a lake commit cut by a PostgreSQL restart is retried by
whichever worker comes first). Times are the server's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from insights_core.cluster.schema import SharedTables
from insights_core.errors import LeaseLostError

log = logging.getLogger("meta_insights.leases")


@dataclass(frozen=True)
class Lease:
    account_id: str
    fence: int
    """The row's claim counter when we took it: another claim since means it is no longer ours."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds an account's lease (for reports: 'act_1 is being synced by host:123:ab')."""

    holder: str
    expires_at: dt.datetime


class AccountLeases:
    """The leases one worker (`holder`) claims, renews and releases in the shared schema of `url`.

    Thread-safe: the loop claims and releases, the heartbeat thread renews (`renew_held`). Every
    database error raises ControlChannelError; a lease found taken raises LeaseLostError at `confirm`.
    """

    def __init__(self, url: str, holder: str, lease_seconds: float) -> None:
        self.holder = holder
        self.lease_seconds = float(lease_seconds)
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._db = SharedTables(url, "account leases")

    @property
    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._held.values())

    def save_accounts(self, account_ids: Iterable[str]) -> None:
        """Make the accounts leasable (idempotent: known accounts keep their lease and schedule)."""
        ids = sorted(set(account_ids))
        if not ids:
            return
        with self._db.connect() as con:
            con.execute(
                "INSERT INTO account_leases (account_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", [ids]
            )

    def claim_due(self, interval_seconds: float, limit: int, among: Iterable[str] | None = None) -> list[Lease]:
        """Lease up to `limit` free accounts whose last scheduled sync is `interval_seconds` old (never
        synced first, then the longest waiting); `among` restricts to the accounts this worker can read."""
        wanted = sorted(set(among)) if among is not None else None
        with self._db.connect() as con:
            rows = con.execute(
                """
                UPDATE account_leases l
                SET holder = %(me)s, expires_at = now() + make_interval(secs => %(lease)s), fence = l.fence + 1
                WHERE l.account_id IN (
                    SELECT account_id FROM account_leases
                    WHERE (holder IS NULL OR expires_at <= now())
                      AND (last_scheduled_at IS NULL
                           OR last_scheduled_at <= now() - make_interval(secs => %(interval)s)
                           OR retry_at <= now())
                      AND (%(among)s::text[] IS NULL OR account_id = ANY(%(among)s::text[]))
                    ORDER BY last_scheduled_at NULLS FIRST, account_id
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
                RETURNING l.account_id, l.fence
                """,
                {
                    "me": self.holder,
                    "lease": self.lease_seconds,
                    "interval": float(interval_seconds),
                    "among": wanted,
                    "limit": limit,
                },
            ).fetchall()
        return self._remember(rows)

    def claim(self, account_ids: Iterable[str]) -> list[Lease]:
        """Lease those of the accounts no other worker holds now (Sync now); the others are left out."""
        ids = sorted(set(account_ids))
        if not ids:
            return []
        with self._db.connect() as con:
            con.execute(
                "INSERT INTO account_leases (account_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", [ids]
            )
            rows = con.execute(
                """
                UPDATE account_leases l
                SET holder = %(me)s, expires_at = now() + make_interval(secs => %(lease)s), fence = l.fence + 1
                WHERE l.account_id IN (
                    SELECT account_id FROM account_leases
                    WHERE account_id = ANY(%(ids)s::text[]) AND (holder IS NULL OR expires_at <= now())
                    FOR UPDATE SKIP LOCKED)
                RETURNING l.account_id, l.fence
                """,
                {"me": self.holder, "lease": self.lease_seconds, "ids": ids},
            ).fetchall()
        return self._remember(rows)

    def _remember(self, rows: list[dict[str, Any]]) -> list[Lease]:
        leases = [Lease(row["account_id"], int(row["fence"])) for row in rows]
        with self._lock:
            self._held.update((lease.account_id, lease) for lease in leases)
        return sorted(leases, key=lambda lease: lease.account_id)

    def _extend(self, leases: list[Lease]) -> set[str]:
        """Push the leases' expiry a full period on; return the account ids that are still ours."""
        if not leases:
            return set()
        with self._db.connect() as con:
            rows = con.execute(
                """
                UPDATE account_leases l SET expires_at = now() + make_interval(secs => %s)
                FROM unnest(%s::text[], %s::bigint[]) AS mine(account_id, fence)
                WHERE l.account_id = mine.account_id AND l.fence = mine.fence AND l.holder = %s
                RETURNING l.account_id
                """,
                [
                    self.lease_seconds,
                    [lease.account_id for lease in leases],
                    [lease.fence for lease in leases],
                    self.holder,
                ],
            ).fetchall()
        return {row["account_id"] for row in rows}

    def renew_held(self) -> list[str]:
        """Renew every held lease (from the heartbeat thread); return the accounts found lost."""
        held = self.held
        kept = self._extend(held)
        lost = sorted(lease.account_id for lease in held if lease.account_id not in kept)
        if lost:
            with self._lock:
                for account_id in lost:
                    self._held.pop(account_id, None)
            log.warning("leases lost (another worker took them after they expired): %s", ", ".join(lost))
        return lost

    def confirm(self, leases: list[Lease]) -> None:
        """The fencing check before a commit: renew the leases and raise LeaseLostError unless all are
        still ours. The commit that follows must end within `lease_seconds` of this call."""
        kept = self._extend(leases)
        lost = sorted(lease.account_id for lease in leases if lease.account_id not in kept)
        if lost:
            with self._lock:
                for account_id in lost:
                    self._held.pop(account_id, None)
            raise LeaseLostError(
                f"another worker took over {', '.join(lost)} while this sync held it (the lease expired); "
                "nothing of this sync was committed"
            )

    def release(self, leases: list[Lease], *, scheduled_done: bool = False, retry_in: float | None = None) -> None:
        """Give the accounts back; `scheduled_done` records that this interval's scheduled sync of them ran,
        and `retry_in` (seconds) that it failed and is due again that much later rather than an interval.

        A lease another worker has taken meanwhile is left alone (its fence no longer matches).
        """
        with self._lock:
            for lease in leases:
                if self._held.get(lease.account_id) == lease:
                    del self._held[lease.account_id]
        if not leases:
            return
        with self._db.connect() as con:
            con.execute(
                """
                UPDATE account_leases l SET holder = NULL, expires_at = NULL,
                    last_scheduled_at = CASE WHEN %s THEN now() ELSE l.last_scheduled_at END,
                    retry_at = CASE WHEN %s THEN now() + make_interval(secs => %s) ELSE l.retry_at END
                FROM unnest(%s::text[], %s::bigint[]) AS mine(account_id, fence)
                WHERE l.account_id = mine.account_id AND l.fence = mine.fence AND l.holder = %s
                """,
                [
                    scheduled_done,
                    scheduled_done,
                    retry_in,
                    [lease.account_id for lease in leases],
                    [lease.fence for lease in leases],
                    self.holder,
                ],
            )

    def fetch_holders(self, account_ids: Iterable[str]) -> dict[str, LeaseHolder]:
        """Unexpired leases of other workers on these accounts."""
        with self._db.connect() as con:
            rows = con.execute(
                "SELECT account_id, holder, expires_at FROM account_leases"
                " WHERE account_id = ANY(%s::text[]) AND holder IS NOT NULL AND holder <> %s AND expires_at > now()",
                [sorted(set(account_ids)), self.holder],
            ).fetchall()
        return {row["account_id"]: LeaseHolder(row["holder"], row["expires_at"]) for row in rows}
