"""The dossier's "Client invoices" tab: the invoices and credit notes with their PDF, the issue
form (with a preview of what issuing would produce) and the credit note form citing an invoice."""

from __future__ import annotations

from functools import partial

import streamlit as st

from backoffice.domain.errors import DomainError
from backoffice.queries.dossier import DossierView
from backoffice.services.client_invoices import issue_credit_note, issue_invoice, preview, read_pdf
from backoffice.services.unit_of_work import UnitOfWork
from ui import i18n, readers, state, widgets

_ = i18n.gettext
ISSUE_FORM = "issue_invoice"
CREDIT_FORM = "issue_credit_note"
# Message ids, translated where shown: a module is imported once per process, so a label
# translated here would stay in the language of whoever loaded it first.
KIND_LABELS = {"invoice": "invoice", "credit_note": "credit note"}


def _pdf(invoice_number: str) -> bytes:
    """Read only when the download is clicked."""
    with readers.engine().connect() as conn:
        return read_pdf(conn, invoice_number)


def _done(form: str, message: str) -> None:
    state.renew_key(form)
    readers.dossier.clear()
    st.session_state[state.FLASH] = message
    st.rerun()


def render(view: DossierView) -> None:
    number, currency = view.summary.dossier_number, view.summary.currency
    widgets.flash()
    widgets.table(
        [
            {
                _("Number"): i.invoice_number,
                _("Kind"): _(KIND_LABELS[i.kind]),
                _("Date"): i18n.day(i.issue_date),
                _("Total incl. VAT"): i18n.money(i.total_amount, i.currency),
                _("Cites"): i.cited_invoice or "",
                _("Reason"): i.reason or "",
                _("Mailed"): i.mailed,
                _("By"): i.issued_by,
            }
            for i in view.client_invoices
        ],
        _("No client invoices."),
    )
    for invoice in view.client_invoices:
        st.download_button(
            _("Download {number}").format(number=invoice.invoice_number),
            data=partial(_pdf, invoice.invoice_number),
            file_name=f"{invoice.invoice_number}.pdf",
            mime="application/pdf",
            key=f"w_invoice_pdf_{invoice.invoice_number}",
            on_click="ignore",
        )
    who = state.actor()
    if who is None or not who.can("issue_invoice"):
        return
    with readers.engine().connect() as conn:
        plan = preview(conn, number)
    with st.form(ISSUE_FORM):
        st.markdown(f"**{_('Issue from the Devis')}**")
        if plan.kind is None:
            st.caption(_("Everything in the Devis is already invoiced."))
        else:
            st.write(
                _("Issuing now gives a {kind} of {total}.").format(
                    kind=_(KIND_LABELS[plan.kind]), total=i18n.money(plan.total, currency)
                )
            )
            widgets.table(
                [
                    {
                        _("Label"): line.label,
                        _("Quantity"): line.quantity,
                        _("Unit price"): i18n.money(line.unit_amount, currency),
                        _("Amount"): i18n.money(line.amount, currency),
                    }
                    for line in plan.lines
                ],
                "",
            )
        issue_reason = st.text_area(_("reason"), key="w_invoice_reason", help=_("Required for a credit note."))
        if st.form_submit_button(_("Issue")):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    result = issue_invoice(
                        uow,
                        who,
                        dossier_number=number,
                        expected_version=view.summary.version,
                        reason=issue_reason,
                        idempotency_key=state.idempotency_key(ISSUE_FORM),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                st.session_state.pop("w_invoice_reason", None)
                _done(ISSUE_FORM, _("{number} issued and mailed.").format(number=result["invoice_number"]))
    creditable = [i.invoice_number for i in view.client_invoices if i.kind == "invoice" and i.creditable > 0]
    if not creditable:
        return
    with st.form(CREDIT_FORM):
        st.markdown(f"**{_('Cancel an invoice with a credit note')}**")
        cited = st.selectbox(_("invoice_number"), creditable, key="w_credit_invoice")
        credit_reason = st.text_area(_("reason"), key="w_credit_reason")
        if st.form_submit_button(_("Issue the credit note")):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    result = issue_credit_note(
                        uow,
                        who,
                        invoice_number=cited,
                        reason=credit_reason,
                        idempotency_key=state.idempotency_key(CREDIT_FORM),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                st.session_state.pop("w_credit_reason", None)
                _done(CREDIT_FORM, _("{number} issued and mailed.").format(number=result["invoice_number"]))
