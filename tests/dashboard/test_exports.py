"""CSV and Excel exports: formula cells neutralized, numbers kept, large exports written batch by batch."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from insights_core.dashboard import exports
from tests.dashboard.xlsx_cells import read_xlsx_cells


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Holiday Sale", "Holiday Sale"),
        ("a=b", "a=b"),
        ("", ""),
        ("'=already", "'=already"),
    ],
)
def test_neutralize_formula(value: str, expected: str) -> None:
    assert exports.neutralize_formula(value) == expected


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["=cmd|'/C calc'!A0", "Plain name", "@evil", None],
            "entity_id": ["120210000000000001", "120210000000000002", "+3", "-4"],
            "spend": [-1.5, 2.25, np.nan, 0.0],
            "clicks": [1, 2, 3, 4],
            "date": [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)],
        }
    )


def test_csv_neutralizes_text_and_keeps_numbers() -> None:
    data = exports.export_bytes(hostile_frame(), "csv", headers="raw")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["name", "entity_id", "spend", "clicks", "date"]
    assert rows[1] == ["'=cmd|'/C calc'!A0", "120210000000000001", "-1.5", "1", "2026-11-01"]
    assert rows[3][:3] == ["'@evil", "'+3", ""]
    assert rows[4][:2] == ["", "'-4"]
    assert len(rows) == 5
    for row in rows[1:]:
        for cell in (row[0], row[1]):
            assert not cell.startswith(exports.FORMULA_PREFIXES)


def test_excel_neutralizes_text_and_never_writes_formulas() -> None:
    data = exports.export_bytes(hostile_frame(), "xlsx", sheet_name="campaigns", headers="raw")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        workbook = archive.read("xl/workbook.xml").decode()
    assert "<f>" not in sheet  # no formula cell anywhere
    assert 'name="campaigns"' in workbook
    cells = read_xlsx_cells(data)
    assert cells[("A", 2)] == "'=cmd|'/C calc'!A0"
    assert cells[("A", 4)] == "'@evil"
    assert cells[("B", 4)] == "'+3"
    assert cells[("C", 2)] == -1.5  # a negative number stays a number
    assert ("C", 4) not in cells  # NaN is an empty cell
    assert cells[("D", 5)] == 4


def test_streamed_export_writes_every_batch_once_with_one_header(tmp_path) -> None:
    batches = [
        pd.DataFrame({"id": [f"{b}-{i}" for i in range(1000)], "value": np.arange(1000) * 1.0}) for b in range(5)
    ]
    calls = []

    def frames():
        calls.append(1)
        yield from batches

    text = exports.export_streamed(frames, "csv").decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "id,value"
    assert len(lines) == 5001 and lines[1] == "0-0,0.0" and lines[-1] == "4-999,999.0"
    assert calls == [1]  # generated once, on demand


def test_excel_continues_on_a_new_sheet_past_the_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "EXCEL_MAX_DATA_ROWS", 3)
    frame = pd.DataFrame({"n": range(7)})
    buffer = io.BytesIO()
    assert exports.write_xlsx([frame.iloc[:4], frame.iloc[4:]], buffer, "rows") == 7
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        names = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    assert len(names) == 3  # 3 + 3 + 1 rows
    cells = read_xlsx_cells(buffer.getvalue(), sheet=3)
    assert cells[("A", 1)] == "n" and cells[("A", 2)] == 6


def test_empty_export_still_has_a_header_in_excel_and_nothing_breaks_in_csv() -> None:
    empty = pd.DataFrame({"name": pd.Series([], dtype=object), "spend": pd.Series([], dtype=float)})
    assert exports.export_bytes(empty, "csv", headers="raw").decode("utf-8-sig").splitlines() == ["name,spend"]
    assert read_xlsx_cells(exports.export_bytes(empty, "xlsx")) == {("A", 1): "Name", ("B", 1): "Spend"}


def summary_frame() -> pd.DataFrame:
    """Two campaigns' sums and ratios as a page table holds them."""
    return pd.DataFrame(
        {
            "name": ["Mañana · Ventas", "Été 2026"],
            "objective": ["OUTCOME_SALES", "OUTCOME_TRAFFIC"],
            "impressions": [12345.0, 0.0],
            "clicks": [321.0, 0.0],
            "conversions": [12.0, 0.0],
            "spend": [1234.56, 0.0],
            "ctr": [321 / 12345 * 100, np.nan],
            "cpc": [1234.56 / 321, np.nan],
            "roas": [2.3777777, np.nan],
            "campaign_id": ["120210000000000001", "120210000000000002"],
        }
    )


def test_csv_has_a_bom_the_pages_labels_and_rounded_ratios() -> None:
    data = exports.export_bytes(summary_frame(), "csv", labels={"name": "Campaign"})
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with it
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == [
        "Campaign", "Objective", "Impressions", "Clicks", "Conversions", "Spend", "CTR", "CPC", "ROAS", "Campaign id"
    ]  # fmt: skip
    assert rows[1] == [
        "Mañana · Ventas", "OUTCOME_SALES", "12345", "321", "12", "1234.56", "2.6", "3.85", "2.38", "120210000000000001"
    ]  # fmt: skip
    assert rows[2][:6] == ["Été 2026", "OUTCOME_TRAFFIC", "0", "0", "0", "0.0"]
    assert rows[2][6:9] == ["", "", ""]  # no value (zero denominator) stays empty, never 0


def test_raw_headers_are_the_field_names_and_numbers_are_the_same() -> None:
    labelled = list(csv.reader(io.StringIO(exports.export_bytes(summary_frame(), "csv").decode("utf-8-sig"))))
    raw = list(csv.reader(io.StringIO(exports.export_bytes(summary_frame(), "csv", headers="raw").decode("utf-8-sig"))))
    assert raw[0] == list(summary_frame().columns)
    assert raw[1:] == labelled[1:]


def test_fractional_conversions_are_not_rounded_to_integers() -> None:
    frame = exports.export_frame(pd.DataFrame({"conversions": [1.5, 2.0], "clicks": [3.0, None]}))
    assert list(frame["Conversions"]) == [1.5, 2.0]
    assert str(frame["Clicks"].dtype) == "Int64" and frame["Clicks"].iloc[0] == 3


def test_excel_gets_labels_and_whole_counts() -> None:
    cells = read_xlsx_cells(exports.export_bytes(summary_frame(), "xlsx"))
    assert cells[("A", 1)] == "Name" and cells[("G", 1)] == "CTR"
    assert cells[("C", 2)] == 12345 and cells[("G", 2)] == 2.6
    assert ("G", 3) not in cells


def test_a_label_two_columns_share_stays_on_the_first() -> None:
    assert exports.export_headers(["status", "effective_status", "date_start"]) == [
        "Status",
        "effective_status",
        "Date",
    ]


def test_ancestor_names_sit_beside_their_ids() -> None:
    rows = pd.DataFrame({"entity_id": ["9"], "campaign_id": ["1"], "adset_id": ["5"], "spend": [1.0]})
    names = {"campaign_id": {"1": "Winter"}, "adset_id": {"5": "Lookalike ES"}}
    out = exports.with_ancestor_names(rows, names)
    assert list(out.columns) == ["entity_id", "campaign_id", "campaign_name", "adset_id", "adset_name", "spend"]
    assert list(out.iloc[0]) == ["9", "1", "Winter", "5", "Lookalike ES", 1.0]
