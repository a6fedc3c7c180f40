"""A tiny reader of .xlsx cell values for tests (no spreadsheet library needed)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_xlsx_cells(data: bytes, sheet: int = 1) -> dict[tuple[str, int], object]:
    """{(column letters, row number): value} of one worksheet; numbers as float/int, text as str."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in archive.namelist():
            root = ET.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")) for si in root.findall("m:si", _NS)]
        root = ET.fromstring(archive.read(f"xl/worksheets/sheet{sheet}.xml"))
    cells: dict[tuple[str, int], object] = {}
    for cell in root.iter(f"{{{_NS['m']}}}c"):
        column, row = re.match(r"([A-Z]+)(\d+)", cell.get("r", "")).groups()  # type: ignore[union-attr]
        kind = cell.get("t")
        value = cell.find("m:v", _NS)
        if kind == "s" and value is not None:
            cells[(column, int(row))] = shared[int(value.text or 0)]
        elif kind == "inlineStr":
            cells[(column, int(row))] = "".join(t.text or "" for t in cell.iter(f"{{{_NS['m']}}}t"))
        elif kind in ("str", "e") and value is not None:
            cells[(column, int(row))] = value.text or ""
        elif kind == "b" and value is not None:
            cells[(column, int(row))] = value.text == "1"
        elif value is not None and value.text is not None:
            number = float(value.text)
            cells[(column, int(row))] = int(number) if number.is_integer() else number
    return cells
