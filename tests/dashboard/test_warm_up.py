"""The server's start-up warm-up (insights_core.dashboard.warm_up): what it leaves behind for sessions."""

from __future__ import annotations

import gc
import inspect
import weakref

import pytest

from insights_core.dashboard import warm_up


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_settling_the_heap_freezes_what_is_loaded_and_fills_inspects_cache(unfrozen) -> None:
    assert gc.get_freeze_count() == 0
    inspect._filesbymodname.clear()  # as in a process that never walked a stack

    warm_up.settle_the_heap()

    assert gc.get_freeze_count() > 10_000  # every module's objects, not a handful
    assert inspect._filesbymodname  # a session's first inspect.stack() finds it filled


def test_what_a_session_builds_after_settling_is_still_collected(unfrozen) -> None:
    warm_up.settle_the_heap()

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(node)
    del node
    gc.collect(2)

    assert gone() is None


def test_garbage_made_before_settling_is_freed_not_frozen(unfrozen) -> None:
    class Node:
        pass

    node = Node()
    node.self = node
    gone = weakref.ref(node)
    del node

    warm_up.settle_the_heap()

    assert gone() is None
