"""The dossier's "Supplier invoices" tab: the supplier invoice lines matched or suggested to the
dossier (its part of a split line), and per supplier what is expected, what is invoiced and the
billing status, as the marts state them (backoffice.queries.dossier_supplier_invoices).

Read at each draw, not cached: the reader takes a few milliseconds, and an accountant's decision
on the Reconciliation page must show here at once."""

from __future__ import annotations

import streamlit as st

from backoffice.queries import dossier_supplier_invoices
from backoffice.queries.dossier import DossierView
from ui import i18n, readers, widgets

_ = i18n.gettext
# Message ids, translated where shown: a module is imported once per process, so a label
# translated here would stay in the language of whoever loaded it first.
STATE_LABELS = {
    "automatic": "automatic",
    "suggested": "suggested",
    "confirmed": "confirmed",
    "manual": "manual",
}
STATUS_LABELS = {
    "not_invoiced": "not_invoiced",
    "partially_invoiced": "partially_invoiced",
    "invoiced": "invoiced",
    "over_invoiced": "over_invoiced",
}
KIND_LABELS = {"invoice": "invoice", "credit_note": "credit note"}


def _supplier(code: str, name: str | None) -> str:
    return f"{code} · {name}" if name else code


def render(view: DossierView) -> None:
    with readers.engine().connect() as conn:
        found = dossier_supplier_invoices.read(conn, view.summary.dossier_number)
    if not found.built:
        st.info(_("Supplier invoice matching has not run yet: nothing to show before the first pipeline run."))
        return
    money = i18n.money
    st.markdown(f"**{_('Billing status per supplier')}**")
    widgets.table(
        [
            {
                _("Supplier"): _supplier(b.supplier_code, b.supplier_name),
                _("Expected"): money(b.expected_amount, b.currency),
                _("Invoiced"): money(b.invoiced_amount, b.currency),
                _("Difference"): money(b.difference, b.currency),
                _("Written off"): money(b.written_off_amount, b.currency),
                _("Status"): _(STATUS_LABELS[b.status]),
                _("Last invoice"): i18n.day(b.last_invoice_date),
            }
            for b in found.billing
        ],
        _("Nothing expected from a supplier and no invoice matched."),
    )
    st.caption(
        _("Only automatic and confirmed lines count as invoiced; a suggestion counts once an accountant confirms it.")
    )
    st.markdown(f"**{_('Supplier invoice lines')}**")
    widgets.table(
        [
            {
                _("Invoice"): r.invoice_number,
                _("Supplier"): _supplier(r.supplier_code, r.supplier_name),
                _("Kind"): _(KIND_LABELS[r.kind]),
                _("Date"): i18n.day(r.invoice_date),
                _("Line"): r.line_number,
                _("Reference"): r.reference or "",
                _("Description"): r.description or "",
                _("Amount"): money(r.line_amount, r.currency),
                _("This dossier's part"): money(r.allocated, r.currency),
                _("State"): _(STATE_LABELS[r.shown_state]),
                _("Confidence"): i18n.percent(r.confidence),
            }
            for r in found.lines
        ],
        _("No supplier invoices."),
    )
