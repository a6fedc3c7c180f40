"""What a worker among many syncs for a request: the accounts it could lease, and what it skipped.

Pure functions over entity trees; the worker (`insights_core.worker`) does the leasing and the sync.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from insights_core.cluster.leases import LeaseHolder
from insights_core.engine import resolve_scope
from insights_core.models import EntityTree, SyncRequest


def accounts_needed(trees: list[EntityTree], request: SyncRequest) -> list[str]:
    """The accounts a request touches: all of them, or those holding one of its entity ids."""
    if request.entity_type is None:
        return [tree.account.account_id for tree in trees]
    wanted = set(request.entity_ids)
    return [tree.account.account_id for tree in trees if wanted - resolve_scope(tree, request)[1]]


def restrict_request(
    trees: list[EntityTree], request: SyncRequest, leased: set[str]
) -> tuple[SyncRequest, list[EntityTree]]:
    """The request and trees of the leased accounts only; entity ids of skipped accounts are left out
    (so the sync does not call them unknown: they were checked against every account before)."""
    kept = [tree for tree in trees if tree.account.account_id in leased]
    if request.entity_type is None:
        return request, kept
    found: set[str] = set()
    for tree in kept:
        _, not_here = resolve_scope(tree, request)
        found |= set(request.entity_ids) - not_here
    ids = tuple(entity_id for entity_id in request.entity_ids if entity_id in found)
    return dataclasses.replace(request, entity_ids=ids), kept


def describe_skipped(skipped: list[str], holders: dict[str, LeaseHolder], now: dt.datetime) -> list[str]:
    """One report line per account another worker kept leased for longer than this request waited."""
    lines = []
    for account_id in skipped:
        holder = holders.get(account_id)
        if holder is None:
            lines.append(f"{account_id}: skipped, another worker held it while this request waited")
            continue
        left = max(0, round((holder.expires_at - now).total_seconds()))
        lines.append(
            f"{account_id}: skipped, worker {holder.holder} is syncing it (lease for {left} s more); "
            "request it again once that sync is done"
        )
    return lines
