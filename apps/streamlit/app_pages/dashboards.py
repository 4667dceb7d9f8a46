"""Dashboards (accounting space, `view_accounting`): the accountants' views over the Parquet
archive, read with DuckDB (backoffice.analytics), each with its chart, its table and the table
as CSV and Excel. PostgreSQL is not queried for the figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st
from ui import i18n, readers, state

from backoffice.analytics import reader
from backoffice.analytics.access import dashboards_archive
from backoffice.analytics.billing_status_mix import billing_status_mix
from backoffice.analytics.client_balance_ageing import client_balance_ageing
from backoffice.analytics.downloads import csv_bytes, excel_bytes
from backoffice.analytics.margin import margin_by_brand_destination_month
from backoffice.analytics.over_invoiced import over_invoiced_by_supplier
from backoffice.analytics.supplier_invoice_ageing import supplier_invoice_ageing
from backoffice.analytics.unmatched_invoice_ageing import unmatched_invoice_ageing
from backoffice.domain.errors import DomainError

_ = i18n.gettext
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"

# This page's own widget keys.
W_RANGE = "w_dashboards_range"
W_BRAND = "w_dashboards_brand"
W_SUPPLIER = "w_dashboards_supplier"
DEFAULT_DAYS = 90

st.title(_("Dashboards"))
try:
    root = dashboards_archive(readers.engine(), actor)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()


@st.cache_data(ttl=300, show_spinner=False)
def view(name: str, archive: str, filters: reader.Filters) -> pl.DataFrame:
    return VIEWS[name](Path(archive), filters)


@st.cache_data(ttl=300, show_spinner=False)
def choices(archive: str, column: str, table: str) -> list[str]:
    return reader.choices(Path(archive), column, table)


VIEWS: dict[str, Callable[[Path, reader.Filters], pl.DataFrame]] = {
    "billing_status_mix": billing_status_mix,
    "over_invoiced_by_supplier": over_invoiced_by_supplier,
    "unmatched_invoice_ageing": unmatched_invoice_ageing,
    "client_balance_ageing": client_balance_ageing,
    "supplier_invoice_ageing": supplier_invoice_ageing,
    "margin": margin_by_brand_destination_month,
}

days = reader.snapshot_dates(root, "supplier_billing_status")
if not days:
    st.info(_("The archive holds no snapshot yet: the daily_archive job writes one a day."))
    st.stop()

last = days[-1]
tr = i18n.translator()
left, middle, right = st.columns([2, 1, 1])
chosen = left.date_input(
    _("Period"), value=(max(days[0], last - timedelta(days=DEFAULT_DAYS)), last), format="DD/MM/YYYY", key=W_RANGE
)
if not isinstance(chosen, tuple) or len(chosen) != 2:
    st.stop()  # the second day of the range is still being picked
brand = middle.selectbox(
    _("Brand"),
    [None, *choices(str(root), "brand", "dossier_billing_status")],
    format_func=lambda b: tr("All") if b is None else b,
    key=W_BRAND,
)
supplier = right.selectbox(
    _("Supplier"),
    [None, *choices(str(root), "supplier_code", "supplier_billing_status")],
    format_func=lambda s: tr("All") if s is None else s,
    key=W_SUPPLIER,
)
filters = reader.Filters(start=chosen[0], end=chosen[1], brand=brand, supplier=supplier)
st.caption(
    _("Snapshots from {first} to {last}; views of a state read the latest snapshot of the period.").format(
        first=i18n.day(days[0]), last=i18n.day(last)
    )
)

BUCKETS = [tr(b) for b in reader.AGEING_BUCKETS]


def chartable(frame: pl.DataFrame) -> pl.DataFrame:
    """Amounts as floats for drawing only (tables and files keep the exact decimals), buckets and
    statuses in the user's language."""
    out = frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    for column in ("bucket", "status"):
        if column in out.columns:
            out = out.with_columns(pl.col(column).map_elements(tr, return_dtype=pl.String))
    return out


def section(name: str, title: str, chart: Callable[[alt.Chart], alt.Chart], caption: str) -> None:
    st.subheader(title)
    frame = view(name, str(root), filters)
    if frame.is_empty():
        st.info(_("Nothing for these filters."))
        return
    st.altair_chart(chart(alt.Chart(chartable(frame).to_pandas())), width="stretch")
    st.caption(caption)
    dates = {c: st.column_config.DateColumn(format="YYYY-MM-DD") for c, kind in frame.schema.items() if kind == pl.Date}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=dates)
    csv, excel, _spacer = st.columns([1, 1, 4])
    stem = f"{name}_{filters.start.isoformat()}_{filters.end.isoformat()}"
    csv.download_button(
        _("CSV"), csv_bytes(frame), file_name=f"{stem}.csv", mime="text/csv", key=f"w_dashboards_csv_{name}"
    )
    excel.download_button(
        _("Excel"),
        excel_bytes(frame, name),
        file_name=f"{stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key=f"w_dashboards_xlsx_{name}",
    )


def bucket_axis() -> alt.X:
    return alt.X("bucket:N", title=_("Age (days)"), sort=BUCKETS)


section(
    "billing_status_mix",
    _("Billing status mix over time"),
    lambda c: c.mark_area().encode(
        x=alt.X("date:T", title=_("Snapshot")),
        y=alt.Y("rows:Q", stack="normalize", title=_("Share of (dossier, supplier) rows")),
        color=alt.Color("status:N", title=_("Status")),
        tooltip=["date:T", "status:N", "rows:Q", "share:Q"],
    ),
    _("Each snapshot of the period: how the (dossier, supplier) rows are spread over the statuses."),
)
section(
    "over_invoiced_by_supplier",
    _("Over-invoiced amounts by supplier"),
    lambda c: c.mark_bar().encode(
        x=alt.X("over_invoiced_amount:Q", title=_("Invoiced over what the dossiers expect")),
        y=alt.Y("supplier_code:N", sort="-x", title=_("Supplier")),
        color=alt.Color("currency:N", title=_("Currency")),
        tooltip=["supplier_code:N", "currency:N", "dossiers:Q", "over_invoiced_amount:Q"],
    ),
    _("Dossiers whose supplier invoiced more than expected plus the tolerance, on the latest snapshot."),
)
section(
    "unmatched_invoice_ageing",
    _("Unmatched invoice ageing"),
    lambda c: c.mark_bar().encode(
        x=bucket_axis(),
        y=alt.Y("sum(amount):Q", title=_("Amount")),
        color=alt.Color("supplier_code:N", title=_("Supplier")),
        tooltip=["supplier_code:N", "bucket:N", "currency:N", "lines:Q", "amount:Q"],
    ),
    _("Invoice lines unmatched, suggested or rejected, by days since the invoice date."),
)
section(
    "client_balance_ageing",
    _("Client balances due"),
    lambda c: c.mark_bar().encode(
        x=bucket_axis(),
        y=alt.Y("balance_due:Q", title=_("Balance due")),
        color=alt.Color("currency:N", title=_("Currency")),
        tooltip=["bucket:N", "currency:N", "dossiers:Q", "balance_due:Q"],
    ),
    _("Aged from the due date of the first schedule item not paid yet."),
)
section(
    "supplier_invoice_ageing",
    _("Supplier invoice ageing"),
    lambda c: c.mark_bar().encode(
        x=bucket_axis(),
        y=alt.Y("open_amount:Q", title=_("Not reconciled yet")),
        color=alt.Color("currency:N", title=_("Currency")),
        tooltip=["bucket:N", "currency:N", "invoices:Q", "amount:Q", "open_amount:Q"],
    ),
    _("Supplier invoices by days since their date; the chart shows the part not reconciled yet."),
)
section(
    "margin",
    _("Margin per brand, destination and month"),
    lambda c: c.mark_bar().encode(
        x=alt.X("yearmonth(month):O", title=_("Departure month")),
        y=alt.Y("sum(margin):Q", title=_("Margin")),
        color=alt.Color("brand:N", title=_("Brand")),
        tooltip=["brand:N", "destination:N", "month:T", "currency:N", "dossiers:Q", "margin:Q", "margin_vat:Q"],
    ),
    _("Dossiers departing in the period: the actual margin once fully invoiced, else the estimate."),
)
