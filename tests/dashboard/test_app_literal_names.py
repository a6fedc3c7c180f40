"""Names from Meta (and text a visitor typed) reach the page as text, never as markdown or HTML.

The store is the small stub account with every name replaced by the emulator's hostile names
(markdown images and links to a loopback host, raw HTML, directives, math); every page is run
and every element Streamlit renders as markdown is read back. The browser suite checks the same
on a live sync from the emulator (`test_e2e_browser.py::test_hostile_names_*`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from graph_emulator import HOSTILE_HOST, HOSTILE_NAMES
from insights_core.store.snapshots import publish_snapshot
from tests.dashboard.app_harness import AD, ADSET, CAMPAIGN, PAGE_QUERIES, assert_clean, open_page
from tests.dashboard.markdown_text import unescape
from tests.dashboard_data import build_stub_data_dir

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")

RAW_MARKUP = ("](", "<img", "<a ", f"http://{HOSTILE_HOST}", ":red[", "$x^2$", "www.example.invalid", "&lt;")
"""Pieces of the hostile names that only survive unescaped (escaped, `](` reads `\\]\\(` and `<img` `\\<img`)."""
_RAW = re.compile("|".join(r"(?<!\\)" + re.escape(piece) for piece in RAW_MARKUP))
MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")


def hostile(index: int) -> str:
    return HOSTILE_NAMES[index % len(HOSTILE_NAMES)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stub store with hostile names, statuses and objectives, published as a new generation."""
    path = tmp_path_factory.mktemp("app_literal") / "data"
    settings = build_stub_data_dir(path, days_back=40)
    with duckdb.connect(str(settings.db_path)) as con:
        for table, key in (
            ("campaigns", "campaign_id"),
            ("adsets", "adset_id"),
            ("ads", "ad_id"),
            ("ad_accounts", "account_id"),
        ):
            ids = [row[0] for row in con.execute(f"SELECT {key} FROM {table} ORDER BY {key}").fetchall()]
            for index, entity_id in enumerate(ids):
                con.execute(f"UPDATE {table} SET name = ? WHERE {key} = ?", [f"N{index} {hostile(index)}", entity_id])
        con.execute("UPDATE campaigns SET objective = ?, effective_status = ?", [hostile(0), hostile(1)])
        con.execute(
            "UPDATE adsets SET effective_status = ?, optimization_goal = ?, billing_event = ?",
            [hostile(0), hostile(3), hostile(4)],
        )
        con.execute("UPDATE ads SET effective_status = ?", [hostile(2)])
    publish_snapshot(settings.db_path, settings.snapshot_dir, settings.current_snapshot_link)
    return path


def markdown_bodies(at: AppTest) -> Iterator[str]:
    """Every string of the last run that Streamlit renders as markdown: bodies, alerts, metric labels and
    values, page link labels, widget labels."""
    for kind in MARKDOWN_KINDS:
        for element in getattr(at, kind):
            yield str(element.value)
    for metric in at.metric:
        yield from (metric.label, str(metric.value))
    for link in at.get("page_link"):
        yield link.proto.label
    for widget in (*at.selectbox, *at.text_input, *at.radio):
        yield widget.label


def plotly_strings(at: AppTest) -> Iterator[str]:
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for chart in at.get("plotly_chart"):
        yield from walk(json.loads(chart.proto.spec))


def assert_no_raw_markup(at: AppTest) -> None:
    for body in markdown_bodies(at):
        found = _RAW.findall(body)
        assert not found, (found, body)
    for text in plotly_strings(at):
        assert "<a " not in text and "<img" not in text, text


def shown_names(at: AppTest) -> list[str]:
    """Headers as a reader sees them."""
    return [unescape(str(h.value)) for h in at.header]


PAGES = [
    ("overview", None),
    ("campaign", PAGE_QUERIES["campaign"]),
    ("adset", PAGE_QUERIES["adset"]),
    ("ad", PAGE_QUERIES["ad"]),
    ("timeline", PAGE_QUERIES["timeline"]),
    ("sync", None),
]


@pytest.mark.parametrize(("page", "query"), PAGES, ids=[p for p, _ in PAGES])
def test_hostile_names_render_as_text_on_every_page(page: str, query: dict[str, str] | None) -> None:
    at = open_page("admin", f"pages/{page}.py", query)
    assert_clean(at)
    assert_no_raw_markup(at)


@pytest.mark.parametrize(
    ("page", "query", "entity_id", "table"),
    [
        ("campaign", PAGE_QUERIES["campaign"], CAMPAIGN, "campaigns"),
        ("adset", PAGE_QUERIES["adset"], ADSET, "adsets"),
        ("ad", PAGE_QUERIES["ad"], AD, "ads"),
        ("timeline", PAGE_QUERIES["timeline"], AD, "ads"),
    ],
)
def test_the_heading_shows_the_name_character_for_character(
    data_dir: Path, page: str, query: dict[str, str], entity_id: str, table: str
) -> None:
    key = {"campaigns": "campaign_id", "adsets": "adset_id", "ads": "ad_id"}[table]
    with duckdb.connect(str(data_dir / "current.duckdb"), read_only=True) as con:
        [(name,)] = con.execute(f"SELECT name FROM {table} WHERE {key} = ?", [entity_id]).fetchall()
    at = open_page("viewer", f"pages/{page}.py", query)
    assert_clean(at)
    assert shown_names(at) == [name]


def test_campaign_choices_and_top_campaign_chart_keep_names_as_text() -> None:
    at = open_page("viewer", "pages/campaign.py", PAGE_QUERIES["campaign"])
    options = at.selectbox(key="campaign_pick").options
    assert any(hostile(0) in option for option in options)  # selectbox options are shown as plain text
    overview = open_page("viewer", "pages/overview.py")
    ticks = [
        t
        for chart in overview.get("plotly_chart")
        for trace in json.loads(chart.proto.spec)["data"]
        for t in (trace.get("y") or [])
        if isinstance(t, str)
    ]
    assert any("&lt;img" in t for t in ticks), ticks  # plotly decodes the entity back to "<img" as text


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ("timeline", {"entity_type": hostile(0), "entity_id": AD, "days": "7"}),
        ("timeline", {"entity_type": "ad", "entity_id": AD, "days": hostile(1)}),
        ("campaign", {"campaign_id": hostile(0)}),
        ("ad", {"ad_id": hostile(2)}),
    ],
)
def test_hostile_text_in_a_link_is_echoed_as_text(page: str, query: dict[str, str]) -> None:
    """A crafted URL sent to a colleague must not make their browser fetch or show a link."""
    at = open_page("viewer", f"pages/{page}.py", query)
    assert not at.exception
    assert at.error, "the bad value is refused"
    assert_no_raw_markup(at)


def test_a_hostile_search_is_echoed_as_text() -> None:
    at = open_page("viewer", "pages/campaign.py")
    at.text_input(key="campaign_search").input(f"nothing like this {hostile(0)}").run()
    assert at.warning
    assert_no_raw_markup(at)
