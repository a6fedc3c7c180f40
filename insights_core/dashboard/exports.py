"""CSV and Excel exports, safe to open in a spreadsheet, written batch by batch.

Text cells starting with `=`, `+`, `-`, `@` (or a tab or carriage return) are prefixed with `'`
so a spreadsheet shows them as text instead of running them as formulas: campaign and ad names
come from Meta and anyone with access to the ad account can type them. Numbers stay numbers.

Writers take an iterable of frames, so a large export flows from DuckDB record batches into a
temporary file and is never held as a DataFrame and as a file in memory at once.

What a file holds (`export_frame`, documented in docs/exports.md): the page's column labels as
headers (or, as the second option, the stored field names), counts as whole numbers, ratios rounded
(percentages such as CTR in percent with 2 decimals, money ratios and ROAS with 2), everything else
(spend, revenue, ids, Meta's enum values) exactly as stored. CSV is UTF-8 with a byte-order mark,
which Excel needs to read names with non-ASCII characters.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO, Literal

import pandas as pd
import xlsxwriter

from insights_core.dashboard.formatting import COLUMN_LABELS

ExportFormat = Literal["csv", "xlsx"]
Headers = Literal["labels", "raw"]
"""`labels`: the headers the page shows (CTR, Ad set id); `raw`: the stored field names (ctr, adset_id)."""
CSV_ENCODING = "utf-8-sig"
"""UTF-8 with a byte-order mark: without it Excel reads the file as the local code page (Mañana -> MaÃ±ana)."""
RATIO_DECIMALS: dict[str, int] = {
    "ctr": 2,
    "conversion_rate": 2,
    "coverage_pct": 1,
    "cpc": 2,
    "cpm": 2,
    "cost_per_conversion": 2,
    "roas": 2,
    "efficiency_score": 1,
    "roas_change": 1,
    "spend_change": 1,
}
"""Derived columns and their decimals. CTR and conversion rate are percentages (4.21 means 4.21%),
as on the pages. Stored figures (spend, revenue, frequency as Meta reported it) are never rounded."""
COUNT_COLUMNS = frozenset({"impressions", "clicks", "reach", "unique_clicks", "conversions", "peers"})
"""Written as whole numbers when every value is one (Meta may report fractional conversions: then kept)."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXCEL_MAX_DATA_ROWS = 1_048_575
"""Rows per worksheet below the header; larger exports continue on another sheet."""
MIME_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def neutralize_formula(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot be read as formulas (numbers, dates and missing values untouched)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            out[column] = values.map(lambda v: neutralize_formula(v) if isinstance(v, str) else v).astype(object)
    out.columns = [neutralize_formula(str(c)) for c in out.columns]
    return out


def export_headers(columns: Iterable[str], labels: Mapping[str, str] | None = None) -> list[str]:
    """The page's label of each column (`COLUMN_LABELS`, then `labels`); a label two columns would share
    stays on the first, the second keeps its field name, so no header is ever ambiguous."""
    names = {**COLUMN_LABELS, **(labels or {})}
    headers: list[str] = []
    for column in columns:
        label = names.get(str(column), str(column))
        headers.append(label if label not in headers else str(column))
    return headers


def export_frame(
    frame: pd.DataFrame, headers: Headers = "labels", labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """`frame` as it is written to a file: counts as integers, derived ratios rounded, headers chosen."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column in COUNT_COLUMNS and pd.api.types.is_numeric_dtype(values):
            present = values.dropna()
            if (present == present.round()).all():
                out[column] = values.round().astype("Int64")
        elif column in RATIO_DECIMALS and pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype("float64").round(RATIO_DECIMALS[column])
    if headers == "labels":
        out.columns = export_headers(out.columns, labels)
    return out


def with_ancestor_names(frame: pd.DataFrame, names: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """`frame` with a `<level>_name` column right after each ancestor id column in `names`
    (`entity_names.fetch_ancestor_names`): campaign_id, campaign_name, adset_id, adset_name."""
    out = frame.copy()
    for id_column, by_id in names.items():
        if id_column in out.columns:
            name_column = id_column.removesuffix("_id") + "_name"
            position = list(out.columns).index(id_column) + 1
            out.insert(position, name_column, out[id_column].map(by_id))
    return out


def write_csv(frames: Iterable[pd.DataFrame], handle: BinaryIO) -> int:
    """Write the frames as one UTF-8 CSV with a byte-order mark (header once); return the data rows written."""
    text = io.TextIOWrapper(handle, encoding=CSV_ENCODING, newline="")
    rows, first = 0, True
    try:
        for frame in frames:
            neutralize_frame(frame).to_csv(
                text, header=first, index=False, na_rep="", date_format="%Y-%m-%d", lineterminator="\n"
            )
            rows += len(frame)
            first = False
        if first:
            text.write("")
        text.flush()
    finally:
        text.detach()
    return rows


def write_xlsx(frames: Iterable[pd.DataFrame], handle: BinaryIO, sheet_name: str = "data") -> int:
    """Write the frames as one Excel workbook, row by row (xlsxwriter's constant-memory mode)."""
    workbook = xlsxwriter.Workbook(
        handle,
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    header_format = workbook.add_format({"bold": True})
    sheet, header, row, rows, sheets = None, None, 0, 0, 0
    for frame in frames:
        safe = neutralize_frame(frame)
        if header is None:
            header = list(safe.columns)
        for record in safe.itertuples(index=False, name=None):
            if sheet is None or row > EXCEL_MAX_DATA_ROWS:
                sheets += 1
                sheet = workbook.add_worksheet(sheet_name[:28] + (f" {sheets}" if sheets > 1 else ""))
                sheet.write_row(0, 0, header, header_format)
                row = 1
            for col, value in enumerate(record):
                _write_cell(sheet, row, col, value, date_format, time_format)
            row += 1
            rows += 1
    if sheet is None:
        sheet = workbook.add_worksheet(sheet_name[:31])
        if header:
            sheet.write_row(0, 0, header, header_format)
    workbook.close()
    return rows


def _write_cell(
    sheet: xlsxwriter.worksheet.Worksheet, row: int, col: int, value: object, date_format: object, time_format: object
) -> None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT or value is pd.NA:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float)):
        sheet.write_number(row, col, value)
    elif isinstance(value, (pd.Timestamp, dt.datetime)):
        moment = pd.Timestamp(value)
        if moment.tzinfo is not None:
            moment = moment.tz_convert("UTC").tz_localize(None)
        sheet.write_datetime(row, col, moment.to_pydatetime(), time_format)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), date_format)
    elif hasattr(value, "item"):  # numpy scalars
        _write_cell(sheet, row, col, value.item(), date_format, time_format)
    else:
        sheet.write_string(row, col, str(value))


def write_export(frames: Iterable[pd.DataFrame], handle: BinaryIO, fmt: ExportFormat, sheet_name: str = "data") -> int:
    if fmt == "csv":
        return write_csv(frames, handle)
    if fmt == "xlsx":
        return write_xlsx(frames, handle, sheet_name)
    raise ValueError(f"unknown export format {fmt!r}")


def export_bytes(
    frame: pd.DataFrame,
    fmt: ExportFormat,
    sheet_name: str = "data",
    headers: Headers = "labels",
    labels: Mapping[str, str] | None = None,
) -> bytes:
    """A small table (already on screen) as file bytes, with the page's labels or the field names."""
    buffer = io.BytesIO()
    write_export([export_frame(frame, headers, labels)], buffer, fmt, sheet_name)
    return buffer.getvalue()


def export_streamed(frames: Callable[[], Iterable[pd.DataFrame]], fmt: ExportFormat, sheet_name: str = "data") -> bytes:
    """A (possibly huge) export's file bytes, written batch by batch through a temporary file.

    Only the finished file is ever in memory, once: Streamlit's download takes bytes (it refuses
    an open temporary file) and keeps them until the browser has fetched them.
    """
    with tempfile.TemporaryFile(prefix="meta-insights-export-") as handle:
        write_export(frames(), handle, fmt, sheet_name)
        handle.seek(0)
        return handle.read()
