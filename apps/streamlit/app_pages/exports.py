"""Accounting exports (accounting space, `view_accounting`): one row per exported day with its
counts, per-journal totals, who and when; the day's files to download (regenerated from what was
recorded and checked against its SHA-256); for holders of `export`, the export of a day run or
re-run through the configured delivery, and the fiscal year's FEC on demand."""

from __future__ import annotations

import tempfile
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.config import get_settings
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import DomainError
from backoffice.export import fec
from backoffice.export.delivery import configured
from backoffice.services.exports import ExportRecord, export_day, list_exports, recorded_files, year_fec
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"

# This page's own session keys: the files prepared for download (kept until another day is chosen)
# and the zipped year FEC last produced.
PREPARED = "exports_prepared"
YEAR_ZIP = "exports_year_zip"
W_DAY = "w_exports_day"
W_RUN_DAY = "w_exports_run_day"
W_YEAR = "w_exports_year"
MIME = {".txt": "text/plain", ".csv": "text/csv", ".parquet": "application/octet-stream", ".json": "application/json"}

st.title(_("Accounting exports"))
widgets.flash()

try:
    with UnitOfWork(readers.engine()) as uow:
        exports = list_exports(uow, actor)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()


def journal_cell(totals: dict[str, str | int]) -> str:
    debit = i18n.money(Decimal(str(totals["debit"])), fec.BOOK_CURRENCY)
    credit = i18n.money(Decimal(str(totals["credit"])), fec.BOOK_CURRENCY)
    return _("{entries} entries · debit {debit} · credit {credit}").format(
        entries=i18n.number(int(totals["entries"])), debit=debit, credit=credit
    )


def history_row(record: ExportRecord, journals: list[str]) -> dict[str, object]:
    row: dict[str, object] = {
        _("Day"): i18n.day(record.day),
        _("Export"): record.export_id,
        _("Entries"): record.entries,
        _("Lines"): record.lines,
    }
    for journal in journals:
        row[journal] = journal_cell(record.totals[journal]) if journal in record.totals else ""
    row[_("Files")] = ", ".join([*record.files, "manifest.json"])
    row[_("Exported by")] = record.created_by
    row[_("Exported at")] = i18n.moment(record.created_at)
    return row


journals = sorted({j for record in exports for j in record.totals})
widgets.table([history_row(r, journals) for r in exports], _("No day has been exported yet."))

if exports:
    st.subheader(_("Files of a day"))
    chosen = st.selectbox(_("Day"), [r.day for r in exports], format_func=i18n.day, key=W_DAY)
    prepared = ss.get(PREPARED)
    if prepared is None or prepared["day"] != chosen:
        if st.button(_("Prepare the files"), key="w_exports_prepare"):
            try:
                with tempfile.TemporaryDirectory(prefix="backoffice-download-") as tmp:
                    with UnitOfWork(readers.engine()) as uow:
                        paths = recorded_files(uow, actor, chosen, Path(tmp))
                    ss[PREPARED] = {"day": chosen, "files": {n: p.read_bytes() for n, p in paths.items()}}
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                st.rerun()
    else:
        st.caption(_("Regenerated from the recorded entries; each file matches the SHA-256 recorded for it."))
        columns = st.columns(len(prepared["files"]))
        for column, (name, data) in zip(columns, prepared["files"].items(), strict=True):
            column.download_button(
                name, data, file_name=name, mime=MIME.get(Path(name).suffix), key=f"w_exports_download_{name}"
            )

if actor.can("export"):
    st.subheader(_("Run the export of a day"))
    with st.form("exports_run"):
        day = st.date_input(_("Day"), value=accounting_today() - timedelta(days=1), format="DD/MM/YYYY", key=W_RUN_DAY)
        st.caption(_("A day already exported is re-delivered with byte-identical files; nothing is exported twice."))
        if st.form_submit_button(_("Run the export")):
            try:
                delivery = configured(get_settings())
                with UnitOfWork(readers.engine()) as uow:
                    result = export_day(uow, actor, day, delivery)
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                done = _("Export {export_id} re-delivered to {location}: {entries} entries, {lines} lines.")
                if not result.rerun:
                    done = _("Export {export_id} written to {location}: {entries} entries, {lines} lines.")
                ss[state.FLASH] = done.format(**vars(result))
                ss.pop(PREPARED, None)
                st.rerun()

    st.subheader(_("Fiscal year FEC"))
    with st.form("exports_year"):
        year = st.number_input(
            _("Fiscal year"), min_value=2000, max_value=2100, value=accounting_today().year, step=1, key=W_YEAR
        )
        if st.form_submit_button(_("Produce the year's FEC")):
            try:
                with tempfile.TemporaryDirectory(prefix="backoffice-year-") as tmp:
                    with UnitOfWork(readers.engine()) as uow:
                        made = year_fec(uow, actor, int(year), Path(tmp))
                    # Zipped: a year's FEC is large and compresses about tenfold.
                    archive = Path(tmp) / f"{made.path.name}.zip"
                    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
                        out.write(made.path, made.path.name)
                    ss[YEAR_ZIP] = {
                        "name": archive.name,
                        "data": archive.read_bytes(),
                        "lines": made.lines,
                        "debit": made.debit,
                        "credit": made.credit,
                    }
            except DomainError as exc:
                st.error(i18n.error(exc))
    produced = ss.get(YEAR_ZIP)
    if produced is not None:
        st.caption(
            _("{name}: {lines} lines, debit {debit}, credit {credit}.").format(
                name=produced["name"],
                lines=i18n.number(produced["lines"]),
                debit=i18n.money(produced["debit"], fec.BOOK_CURRENCY),
                credit=i18n.money(produced["credit"], fec.BOOK_CURRENCY),
            )
        )
        st.download_button(
            _("Download the year's FEC"),
            produced["data"],
            file_name=produced["name"],
            mime="application/zip",
            key="w_exports_year_download",
        )
