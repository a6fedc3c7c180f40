"""INSIGHTS_BREAKDOWNS: which segment families are collected; a bad one stops start-up with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights_core.errors import ConfigError
from insights_core.models import BREAKDOWN_FAMILIES
from insights_core.settings import load_settings
from tests.core.test_worker import SMALL, run_cli


def test_default_is_every_family_and_empty_is_none() -> None:
    assert load_settings().breakdowns == BREAKDOWN_FAMILIES
    assert load_settings(INSIGHTS_BREAKDOWNS="").breakdowns == ()
    assert load_settings(INSIGHTS_BREAKDOWNS=" country , placement,country").breakdowns == ("country", "placement")


@pytest.mark.parametrize("value", ["age,country", "impression_device", "Country"])
def test_an_unknown_family_is_one_line_naming_it_and_the_valid_ones(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(INSIGHTS_BREAKDOWNS=value)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("invalid setting INSIGHTS_BREAKDOWNS: unknown breakdown family")
    assert repr(value.split(",")[0]) in message
    assert "valid: age_gender, country, placement, device_platform" in message


@pytest.mark.slow
def test_the_worker_refuses_to_start_on_an_unknown_family(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_cli(data, "--once", env={**SMALL, "INSIGHTS_BREAKDOWNS": "country,region"})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "INSIGHTS_BREAKDOWNS" in lines[0] and "'region'" in lines[0], result.stderr
    assert not data.exists(), "nothing written"
