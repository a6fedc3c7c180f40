"""Pacing columns in the Campaigns and Ad sets lists, headless: chosen like any column, and equal to the
Pacing page's figures for the same entities."""

from __future__ import annotations

import pytest

from tests.dashboard.app_harness import assert_clean, open_page

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time", "app_on_data_dir")
STUB_DAYS_BACK = 60
PACING = ["budget", "budget_type", "pacing_status", "pacing_deviation"]


def _percent(text: str) -> float:
    return float(text.rstrip("%"))


@pytest.mark.parametrize("level", ["campaign", "adset"])
def test_pacing_columns_agree_with_the_pacing_page(level: str) -> None:
    at = open_page("analyst", f"pages/{level}.py")
    at.multiselect(key=f"{level}_columns").set_value(["spend", *PACING]).run()
    assert_clean(at)
    listed = at.dataframe(key=f"{level}_list").value
    assert {"Budget", "Budget type", "Pacing", "Pacing deviation"} <= set(listed.columns)
    paced = listed[listed["Pacing"] != "—"]
    assert len(paced) > 0 and (listed["Pacing"] == "—").any()  # paused or unbudgeted rows have no pace

    pacing_page = open_page("analyst", "pages/pacing.py")
    assert_clean(pacing_page)
    table = pacing_page.dataframe[0].value
    label = "campaign" if level == "campaign" else "ad set"
    expected = table[table["Level"] == label].set_index("Id")
    id_column = "Campaign id" if level == "campaign" else "Ad set id"
    assert set(paced[id_column]) == set(expected.index)  # the page's rows with a pace, as on the Pacing page
    for _, row in paced.iterrows():
        page_row = expected.loc[row[id_column]]
        assert row["Pacing"] == page_row["Status"]
        if page_row["Deviation"] != "—":
            assert _percent(row["Pacing deviation"]) == pytest.approx(_percent(page_row["Deviation"]), abs=0.51)
        kind = "lifetime" if page_row["Budget"].endswith("lifetime") else "daily"
        assert row["Budget type"] == kind


def test_the_ads_list_offers_no_pacing_columns() -> None:
    at = open_page("analyst", "pages/ad.py")
    assert_clean(at)
    options = at.multiselect(key="ad_columns").options  # as shown (labels)
    assert "Spend" in options and not {"Budget", "Pacing", "Pacing deviation"} & set(options)
