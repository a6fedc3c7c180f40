"""Who may do what in the dashboard: the permission map and the pages each role sees.

Pure policy, no Streamlit: `app.py` turns `pages_for(role)` into `st.navigation`, and each page
checks `can(role, permission)` again. The other pages (`forbidden_pages_for`) are registered
hidden, at their URLs, as a "no access" message: a typed URL says so instead of Streamlit's
"Page not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["admin", "manager", "analyst", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
"""Most privileged first."""

Permission = Literal["analytics:read", "sync:run", "export", "sync:health", "users:list", "alerts:manage"]

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "admin": frozenset({"analytics:read", "sync:run", "export", "sync:health", "users:list", "alerts:manage"}),
    "manager": frozenset({"analytics:read", "sync:run", "export", "alerts:manage"}),
    "analyst": frozenset({"analytics:read", "export"}),
    "viewer": frozenset({"analytics:read"}),
}


@dataclass(frozen=True)
class PageSpec:
    """One dashboard page: its file (relative to app.py), stable title and URL path, and who may open it."""

    key: str
    title: str
    path: str
    url_path: str
    icon: str
    permission: Permission


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "Overview", "pages/overview.py", "overview", ":material/dashboard:", "analytics:read"),
    PageSpec("campaign", "Campaign", "pages/campaign.py", "campaign", ":material/campaign:", "analytics:read"),
    PageSpec("adset", "Ad set", "pages/adset.py", "adset", ":material/group:", "analytics:read"),
    PageSpec("ad", "Ad", "pages/ad.py", "ad", ":material/ad:", "analytics:read"),
    PageSpec("timeline", "Timeline", "pages/timeline.py", "timeline", ":material/timeline:", "analytics:read"),
    PageSpec("pacing", "Pacing", "pages/pacing.py", "pacing", ":material/speed:", "analytics:read"),
    PageSpec("forecast", "Forecast", "pages/forecast.py", "forecast", ":material/query_stats:", "analytics:read"),
    PageSpec("alerts", "Alerts", "pages/alerts.py", "alerts", ":material/notifications:", "analytics:read"),
    PageSpec("sync", "Sync", "pages/sync.py", "sync", ":material/sync:", "sync:run"),
    PageSpec("users", "Users", "pages/users.py", "users", ":material/manage_accounts:", "users:list"),
)
PAGES_BY_KEY: dict[str, PageSpec] = {page.key: page for page in PAGES}


def permissions_for(role: str | None) -> frozenset[Permission]:
    """The role's permissions; an unknown or missing role has none."""
    return ROLE_PERMISSIONS.get(role, frozenset()) if isinstance(role, str) else frozenset()  # type: ignore[call-overload]


def can(role: str | None, permission: Permission) -> bool:
    return permission in permissions_for(role)


def pages_for(role: str | None) -> list[PageSpec]:
    """The pages `role` may open, in navigation order (Overview first); none for an unknown role."""
    return [page for page in PAGES if can(role, page.permission)]


def forbidden_pages_for(role: str | None) -> list[PageSpec]:
    """The pages `role` may not open (every page for an unknown role)."""
    return [page for page in PAGES if not can(role, page.permission)]


def highest_role(roles: object) -> Role | None:
    """The most privileged known role in a user's role list (the auth file allows several).

    Roles are nested (viewer < analyst < manager < admin), so the highest one carries every
    permission of the others. Unknown role names are ignored.
    """
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, (list, tuple, set, frozenset)):
        return None
    for role in ROLES:
        if role in roles:
            return role
    return None
