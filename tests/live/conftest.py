"""Fixtures of the live-mode tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_emulator import GraphEmulator
from tests.live.helpers import SHAPE


@pytest.fixture
def emulator() -> Iterator[GraphEmulator]:
    """A fresh seeded Graph API emulator on a free loopback port, one per test (its faults and counts start empty)."""
    with GraphEmulator(SHAPE) as running:
        yield running
