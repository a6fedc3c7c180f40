"""Ad-account leases in a real PostgreSQL: one holder at a time, expiry and takeover, renewal, fencing,
and each account's scheduled sync taken by exactly one worker per interval."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import pytest

from insights_core.cluster.leases import AccountLeases
from insights_core.errors import LeaseLostError
from tests.helpers import PYTHON, ROOT, wait_for

ACCOUNTS = [f"act_{n}" for n in range(1, 9)]
HOUR = 3600.0


def test_a_held_account_is_not_leased_again_until_released(catalog_url: str) -> None:
    first, second = AccountLeases(catalog_url, "w1", 30), AccountLeases(catalog_url, "w2", 30)
    [lease] = first.claim(["act_1"])
    assert second.claim(["act_1", "act_2"]) == second.held and [h.account_id for h in second.held] == ["act_2"]
    assert second.fetch_holders(["act_1"])["act_1"].holder == "w1"
    first.release([lease])
    assert [lease.account_id for lease in second.claim(["act_1"])] == ["act_1"]


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(catalog_url: str) -> None:
    stalled, other = AccountLeases(catalog_url, "stalled", 0.3), AccountLeases(catalog_url, "other", 30)
    leases = stalled.claim(["act_1"])
    taken = wait_for(lambda: other.claim(["act_1"]), timeout=10, what="the expired lease to be taken over")
    assert [lease.account_id for lease in taken] == ["act_1"]
    with pytest.raises(LeaseLostError, match="act_1"):
        stalled.confirm(leases)  # the commit of the stalled worker is refused
    assert stalled.renew_held() == [] and stalled.held == []
    stalled.release(leases)  # a stale release leaves the new holder's lease alone
    assert other.fetch_holders(["act_1"]) == {} and AccountLeases(catalog_url, "third", 30).claim(["act_1"]) == []
    other.confirm(taken)


def test_an_expired_lease_nobody_took_is_still_ours(catalog_url: str) -> None:
    slow = AccountLeases(catalog_url, "slow", 0.2)
    leases = slow.claim(["act_1"])
    time.sleep(0.4)  # past expiry, but no claim bumped the fence: renewing is safe
    slow.confirm(leases)
    assert slow.renew_held() == []


def test_renewed_leases_are_never_taken(catalog_url: str) -> None:
    holder, rival = AccountLeases(catalog_url, "holder", 1.5), AccountLeases(catalog_url, "rival", 30)
    holder.claim(["act_1"])
    stolen: list[object] = []
    deadline = time.monotonic() + 4.0  # more than two lease periods of renewing
    while time.monotonic() < deadline:
        assert holder.renew_held() == []
        stolen += rival.claim(["act_1"])
        time.sleep(0.1)
    assert stolen == []
    wait_for(lambda: rival.claim(["act_1"]), timeout=10, what="takeover once renewals stop")


def test_threads_racing_for_accounts_never_hold_one_at_once(catalog_url: str) -> None:
    """16 workers grab, hold briefly, confirm and release 2 accounts for a while: an account is never
    inside two of them at once, and every grab that confirmed was alone."""
    inside: Counter[str] = Counter()
    overlaps: list[str] = []
    grabs: Counter[str] = Counter()
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        leases = AccountLeases(catalog_url, name, 5)
        try:
            for _ in range(15):
                for lease in leases.claim(["act_1", "act_2"]):
                    with guard:
                        inside[lease.account_id] += 1
                        grabs[lease.account_id] += 1
                        if inside[lease.account_id] > 1:
                            overlaps.append(lease.account_id)
                    time.sleep(0.005)
                    leases.confirm([lease])
                    with guard:
                        inside[lease.account_id] -= 1
                    leases.release([lease])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and overlaps == []
    assert grabs["act_1"] > 1 and grabs["act_2"] > 1  # the accounts did change hands


_CLAIM_DUE = """
import sys
from insights_core.cluster.leases import AccountLeases
leases = AccountLeases(sys.argv[1], sys.argv[2], 30)
while True:
    got = leases.claim_due(3600.0, 1)
    if not got:
        break
    print(got[0].account_id, flush=True)
    leases.release(got, scheduled_done=True)
"""


def test_processes_take_each_accounts_scheduled_sync_once_per_interval(catalog_url: str) -> None:
    AccountLeases(catalog_url, "setup", 30).save_accounts(ACCOUNTS)
    workers = [
        subprocess.Popen([PYTHON, "-c", _CLAIM_DUE, catalog_url, f"p{n}"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for n in range(4)
    ]
    outputs = [worker.communicate(timeout=60)[0].split() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    assert Counter(account for output in outputs for account in output) == Counter(ACCOUNTS)
    # nothing is due again within the interval; with a zero interval, everything is
    late = AccountLeases(catalog_url, "late", 30)
    assert late.claim_due(HOUR, 8) == []
    assert [lease.account_id for lease in late.claim_due(0.0, 8)] == ACCOUNTS


def test_claim_due_takes_never_synced_accounts_first_and_only_those_asked(catalog_url: str) -> None:
    leases = AccountLeases(catalog_url, "w", 30)
    leases.save_accounts(["act_1", "act_2", "act_3"])
    first = leases.claim_due(0.0, 1, among=["act_2", "act_3"])
    assert [lease.account_id for lease in first] == ["act_2"]
    leases.release(first, scheduled_done=True)
    assert [lease.account_id for lease in leases.claim_due(0.0, 2)] == ["act_1", "act_3"]


def test_a_cancelled_scheduled_sync_leaves_the_account_due(catalog_url: str) -> None:
    leases = AccountLeases(catalog_url, "w", 30)
    leases.save_accounts(["act_1"])
    due = leases.claim_due(HOUR, 1)
    leases.release(due, scheduled_done=False)
    assert [lease.account_id for lease in AccountLeases(catalog_url, "x", 30).claim_due(HOUR, 1)] == ["act_1"]


def test_a_failed_scheduled_sync_is_due_again_after_the_retry_delay_not_an_interval(catalog_url: str) -> None:
    leases = AccountLeases(catalog_url, "w", 30)
    leases.save_accounts(["act_1", "act_2"])
    failed, succeeded = leases.claim_due(HOUR, 1), leases.claim_due(HOUR, 1)
    leases.release(failed, scheduled_done=True, retry_in=0.2)
    leases.release(succeeded, scheduled_done=True)
    retried = wait_for(lambda: leases.claim_due(HOUR, 2), timeout=10, what="the failed account due again")
    assert [lease.account_id for lease in retried] == ["act_1"]
    leases.release(retried, scheduled_done=True)  # it worked this time: an interval until the next one
    assert leases.claim_due(HOUR, 2) == []
