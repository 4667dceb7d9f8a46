"""A view's table as the files the dashboards offer: CSV (UTF-8, dot decimals, ISO dates) and Excel.

Both are functions of the table alone: the workbook's creation date is fixed (xlsxwriter would
stamp the current time), so the same table gives the same bytes."""

from __future__ import annotations

import io
from datetime import datetime

import polars as pl
import xlsxwriter

CREATED = datetime(2000, 1, 1)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(date_format="%Y-%m-%d").encode("utf-8")


def excel_bytes(frame: pl.DataFrame, sheet: str) -> bytes:
    """One worksheet named `sheet` (Excel allows 31 characters), the header row frozen."""
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True}) as book:
        book.set_properties({"created": CREATED})
        frame.write_excel(
            book, worksheet=sheet[:31], autofit=True, freeze_panes=(1, 0), dtype_formats={pl.Date: "yyyy-mm-dd"}
        )
    return buffer.getvalue()
