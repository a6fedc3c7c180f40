"""The role policy: which role has which permission (analytics:read, export, sync:run, ...) and the pages
each role gets."""

from __future__ import annotations

import itertools
import subprocess

import pytest

from insights_core.roles import PAGES, ROLES, can, highest_role, pages_for, permissions_for
from tests.helpers import PYTHON, ROOT

MANAGER_PAGES = ["pacing", "forecast", "alerts"]


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("admin", "analytics:read", True),
        ("manager", "analytics:read", True),
        ("analyst", "analytics:read", True),
        ("viewer", "analytics:read", True),
        ("admin", "sync:run", True),
        ("manager", "sync:run", True),
        ("analyst", "sync:run", False),
        ("viewer", "sync:run", False),
        ("admin", "export", True),
        ("manager", "export", True),
        ("analyst", "export", True),
        ("viewer", "export", False),
        ("admin", "sync:health", True),
        ("manager", "sync:health", False),
        ("analyst", "sync:health", False),
        ("admin", "users:list", True),
        ("manager", "users:list", False),
        ("viewer", "users:list", False),
        ("admin", "alerts:manage", True),
        ("manager", "alerts:manage", True),
        ("analyst", "alerts:manage", False),
        ("viewer", "alerts:manage", False),
        ("intruder", "analytics:read", False),
        (None, "analytics:read", False),
        ("", "export", False),
    ],
)
def test_permission_map_by_role(role: str | None, permission: str, allowed: bool) -> None:
    assert can(role, permission) is allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        ("admin", ["overview", "campaign", "adset", "ad", "timeline", *MANAGER_PAGES, "sync", "users"]),
        ("manager", ["overview", "campaign", "adset", "ad", "timeline", *MANAGER_PAGES, "sync"]),
        ("analyst", ["overview", "campaign", "adset", "ad", "timeline", *MANAGER_PAGES]),
        ("viewer", ["overview", "campaign", "adset", "ad", "timeline", *MANAGER_PAGES]),
        ("nobody", []),
        (None, []),
    ],
)
def test_pages_for_role(role: str | None, pages: list[str]) -> None:
    assert [p.key for p in pages_for(role)] == pages


def test_every_page_file_exists_and_url_paths_are_unique() -> None:
    assert len({p.url_path for p in PAGES}) == len(PAGES)
    assert len({p.title for p in PAGES}) == len(PAGES)
    for page in PAGES:
        assert (ROOT / page.path).is_file(), page.path


def test_each_page_file_checks_its_own_permission() -> None:
    for page in PAGES:
        source = (ROOT / page.path).read_text(encoding="utf-8")
        assert f'widgets.require("{page.permission}")' in source, page.path


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["viewer", "admin"], "admin"),
        (["analyst"], "analyst"),
        ("manager", "manager"),
        (["owner", "viewer"], "viewer"),
        (["owner"], None),
        ([], None),
        (None, None),
        (42, None),
    ],
)
def test_highest_role(roles: object, expected: str | None) -> None:
    assert highest_role(roles) == expected


def test_roles_are_nested_so_the_highest_role_carries_all_permissions() -> None:
    for higher, lower in itertools.pairwise(ROLES):
        assert permissions_for(lower) <= permissions_for(higher)


PURE_MODULES = (
    "insights_core.roles",
    "insights_core.auth",
    "insights_core.store.queries",
    "insights_core.dashboard.alerts",
    "insights_core.dashboard.scoring",
    "insights_core.dashboard.formatting",
    "insights_core.dashboard.exports",
    "insights_core.dashboard.inputs",
    "insights_core.dashboard.periods",
    "insights_core.dashboard.sync_health",
)


def test_policy_and_pure_helpers_do_not_import_streamlit() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PURE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'streamlit' in sys.modules:\n"
        "        sys.exit(name + ' imports streamlit')\n"
    )
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
