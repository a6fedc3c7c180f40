"""A local Graph API emulator for live mode: tests, the benchmark and demos run the real
facebook-business SDK against it, with no network and no token.

    with GraphEmulator(AccountShape(4, 3, 2), faults=Faults(...)) as emulator:
        ... META_GRAPH_URL=emulator.url ...
        truth = emulator.ground_truth("ad", since, until)
        segments = emulator.breakdown_truth("ad", "age_gender", since, until)

    with GraphEmulator(AccountShape(20, 3, 2), accounts=16) as emulator:  # act_5550001 .. act_5550016
        truth = emulator.ground_truth("ad", since, until, account_id="act_5550002")
"""

from graph_emulator.account import (
    ACCOUNT_ID,
    HOSTILE_HOST,
    HOSTILE_NAMES,
    AccountShape,
    SeededAccount,
    account_id_for,
    seeded_accounts,
)
from graph_emulator.faults import (
    BREAKDOWN_MALFORMATIONS,
    HARMLESS_MALFORMATIONS,
    MALFORMATIONS,
    FaultRule,
    Faults,
    Malformation,
)
from graph_emulator.server import GraphEmulator, ReportRun

__all__ = [
    "ACCOUNT_ID",
    "BREAKDOWN_MALFORMATIONS",
    "HARMLESS_MALFORMATIONS",
    "HOSTILE_HOST",
    "HOSTILE_NAMES",
    "MALFORMATIONS",
    "AccountShape",
    "FaultRule",
    "Faults",
    "GraphEmulator",
    "Malformation",
    "ReportRun",
    "SeededAccount",
    "account_id_for",
    "seeded_accounts",
]
