"""GET /meta/insights/openapi.json describes every route, and answers carry the documented fields."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import Route

from insights_core.api.routes import api_routes
from insights_core.settings import Settings
from tests.api.helpers import PREFIX, TestClient, api_client, bearer, build_api_data_dir, issue_token
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_api_data_dir(tmp_path_factory.mktemp("openapi") / "data")


@pytest.fixture
def client(store: Settings) -> Iterator[TestClient]:
    with api_client(store) as client:
        yield client


def test_every_route_is_described(client: TestClient) -> None:
    answer = client.get(f"{PREFIX}/openapi.json")  # no token needed to read the description
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1") and document["components"]["securitySchemes"]["bearer"]
    templates = {
        r.path for r in api_routes() if isinstance(r, Route) and "{rest:path}" not in r.path and r.path != PREFIX
    }
    assert templates == set(document["paths"])
    for path, operations in document["paths"].items():
        for operation in operations.values():
            placeholders = set(re.findall(r"{(\w+)}", path))
            assert placeholders == {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}, path


def test_answers_carry_the_documented_fields(store: Settings, client: TestClient) -> None:
    document = client.get(f"{PREFIX}/openapi.json").json()
    _, token = issue_token(store, "admin")
    for path, concrete in (
        (f"{PREFIX}/overview", f"{PREFIX}/overview"),
        (f"{PREFIX}/campaign/{{campaign_id}}", f"{PREFIX}/campaign/{CAMPAIGN}"),
        (f"{PREFIX}/adset/{{adset_id}}", f"{PREFIX}/adset/{ADSET}"),
        (f"{PREFIX}/ad/{{ad_id}}", f"{PREFIX}/ad/{AD}"),
    ):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        body = client.get(concrete, headers=bearer(token)).json()
        missing = set(schema["properties"]) - set(body)
        assert not missing, (path, missing)
    seed_overview = {
        "timestamp",
        "date_range",
        "total_campaigns",
        "active_campaigns",
        "global_metrics",
        "top_campaigns",
        "last_sync",
        "alerts",
    }
    assert seed_overview <= set(
        document["paths"][f"{PREFIX}/overview"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )
    metrics = document["components"]["schemas"]["Metrics"]["properties"]
    assert {"spend", "impressions", "clicks", "conversions", "revenue", "ctr", "cpc", "roas"} <= set(metrics)


def test_the_readme_shows_every_endpoint_with_curl() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    base = re.search(r"^BASE=(\S+)$", readme, re.M)
    assert base is not None and base.group(1).endswith(PREFIX)
    commands = readme.replace("\\\n", " ").replace("$BASE", base.group(1))
    curls = [line for line in commands.splitlines() if "curl " in line]
    for fragment in (
        "/meta/insights/overview",
        "/meta/insights/campaign/",
        "/meta/insights/adset/",
        "/meta/insights/ad/",
        "/meta/insights/recent-insights/",
        "/meta/insights/sync-now",
        "/metrics",
        "/healthz",
    ):
        assert any(fragment in line for line in curls), fragment
    assert "python -m insights_core.auth new-token" in readme
