"""Supplier invoices (accounting space, `reconcile`): the searchable list of invoices with their open
lines, and registering one by hand, typed in a form or dropped as a file (CSV, UBL 2.1, Factur-X).
Both are read by ingestion's own parsers and checks and shown as a preview first; "Register" then
goes through backoffice.services.supplier_invoice_registration, which checks everything again."""

from __future__ import annotations

from typing import Any

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import DomainError, InvalidInput
from backoffice.queries.supplier_invoice_list import search_invoices, suppliers
from backoffice.services import supplier_invoice_registration as registration
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state
who = state.actor()
FORM = "supplier_invoice_form"
FILE = "supplier_invoice_file"
LINE_FIELDS = registration.LINE_FIELDS
KIND_LABELS = {"invoice": _("invoice"), "credit_note": _("credit note")}
STATE_LABELS = {
    "new": _("new: will be registered"),
    "unchanged": _("already registered with this content: nothing to do"),
    "conflict": _("already registered with other content: refused"),
}
ORIGIN_LABELS = {"ingestion": _("ingestion"), "manual": _("registered by hand")}

st.title(_("Supplier invoices"))
message = ss.pop(state.SI_FLASH, None)
if message:
    st.success(message)

# ---------------------------------------------------------------- the list
search: dict[str, Any] = ss.get(state.SI_SEARCH, {"text": "", "date_from": None, "date_to": None})
with st.form("supplier_invoice_search"):
    top = st.columns([2, 1, 1])
    text = top[0].text_input(_("Supplier or invoice number"), value=search["text"])
    date_from = top[1].date_input(_("Invoiced from"), value=search["date_from"], format="DD/MM/YYYY")
    date_to = top[2].date_input(_("Invoiced until"), value=search["date_to"], format="DD/MM/YYYY")
    if st.form_submit_button(_("Search")):
        ss[state.SI_SEARCH] = search = {"text": text, "date_from": date_from or None, "date_to": date_to or None}
try:
    with readers.engine().connect() as conn:
        listed = search_invoices(conn, **search)
except InvalidInput as exc:
    st.error(i18n.error(exc))
    listed = []
widgets.table(
    [
        {
            _("Supplier"): f"{r.supplier_code} · {r.supplier_name}" if r.supplier_name else r.supplier_code,
            _("Invoice"): r.invoice_number,
            _("Kind"): KIND_LABELS[r.kind],
            _("Date"): i18n.day(r.invoice_date),
            _("Due"): i18n.day(r.due_date),
            _("Total incl. VAT"): i18n.money(r.total_incl_tax, r.currency),
            _("Lines"): r.lines,
            _("Open lines"): r.open_lines,
            _("Origin"): ORIGIN_LABELS[r.origin],
        }
        for r in listed
    ],
    _("No supplier invoices."),
)


# ---------------------------------------------------------------- registering
def show(preview: registration.Preview) -> bool:
    """The invoices as they would be registered, and every problem; True when registering can go on."""
    for draft in preview.drafts:
        head = draft.head
        st.markdown(
            f"**{head.supplier_code} · {head.invoice_number}** · {KIND_LABELS[head.kind]} · "
            f"{i18n.day(head.invoice_date)} · {i18n.money(draft.total_incl_tax, head.currency)} · "
            f"{STATE_LABELS[draft.state]}"
        )
        widgets.table(
            [
                {
                    _("Line"): r.line_number,
                    _("Reference"): r.reference or "",
                    _("Description"): r.description or "",
                    _("Amount excl. VAT"): i18n.money(r.amount_excl_tax, r.currency),
                    _("VAT"): i18n.percent(r.vat_rate),
                    _("Total incl. VAT"): i18n.money(r.amount_incl_tax, r.currency),
                }
                for r in draft.invoice.lines
            ],
            "",
        )
    for problem in preview.problems:
        st.error(f"{_(problem.field)}: {problem.message}")
    error = preview.first_error()
    if error is not None and not preview.problems:
        st.error(i18n.error(error))
    return error is None


def registered(done: registration.Registration) -> str:
    new = [n for _s, n, what in done.invoices if what == "new"]
    if not new:
        return _("Already registered with this content: nothing changed.")
    text = _("Registered: {invoices} ({lines} lines).").format(invoices=", ".join(new), lines=done.lines)
    if not done.matched:
        text += " " + _("Their lines will be matched at the next pipeline run.")
    return text


if who is not None and who.can("reconcile"):
    with readers.engine().connect() as conn:
        known = suppliers(conn)
    currencies = {code: currency for code, _name, currency in known}
    names = {code: f"{code} · {name}" for code, name, _currency in known}
    typed_tab, file_tab = st.tabs([_("Type an invoice"), _("Drop a file")])

    with typed_tab:
        count = st.number_input(_("Number of lines"), min_value=1, max_value=50, value=3, key=state.W_SI_LINE_COUNT)
        with st.form(FORM):
            top = st.columns(3)
            supplier = top[0].selectbox(
                _("supplier_code"), list(names), format_func=names.get, key=f"{state.W_SI}supplier_code"
            )
            number = top[1].text_input(_("invoice_number"), key=f"{state.W_SI}invoice_number")
            kind = top[2].radio(
                _("kind"), list(KIND_LABELS), format_func=KIND_LABELS.get, horizontal=True, key=f"{state.W_SI}kind"
            )
            middle = st.columns(3)
            invoice_date = middle[0].date_input(
                _("invoice_date"), value=accounting_today(), format="DD/MM/YYYY", key=f"{state.W_SI}invoice_date"
            )
            due_date = middle[1].date_input(_("due_date"), value=None, format="DD/MM/YYYY", key=f"{state.W_SI}due_date")
            currency = middle[2].text_input(
                _("currency"), key=f"{state.W_SI}currency", help=_("Empty: the supplier's currency.")
            )
            st.caption(
                _("Amounts as on the invoice, positive even on a credit note; VAT rate as a fraction: 0.10 for 10 %.")
            )
            typed_lines = []
            for n in range(1, int(count) + 1):
                cells = st.columns([2, 3, 1, 1, 1])
                typed_lines.append(
                    {
                        name: cell.text_input(
                            _(name),
                            key=f"{state.W_SI}line_{n}_{name}",
                            label_visibility="visible" if n == 1 else "collapsed",
                        )
                        for cell, name in zip(cells, LINE_FIELDS, strict=True)
                    }
                )
            if st.form_submit_button(_("Preview")):
                ss[state.SI_FORM_REQUEST] = {
                    "supplier_code": supplier or "",
                    "invoice_number": number,
                    "kind": kind,
                    "invoice_date": invoice_date,
                    "due_date": due_date,
                    "currency": currency.strip().upper() or currencies.get(supplier or "", ""),
                    # A line left blank is no line.
                    "lines": [line for line in typed_lines if any(v.strip() for v in line.values())],
                }
        request = ss.get(state.SI_FORM_REQUEST)
        if request is not None:
            try:
                with readers.engine().connect() as conn:
                    ready = show(registration.preview_form(conn, **request))
            except InvalidInput as exc:
                st.error(i18n.error(exc))
                ready = False
            if ready and st.button(_("Register this invoice"), key="w_si_register_form", type="primary"):
                try:
                    with UnitOfWork(readers.engine()) as uow:
                        done = registration.register_form(
                            uow, who, **request, idempotency_key=state.idempotency_key(FORM)
                        )
                except DomainError as exc:
                    st.error(i18n.error(exc))
                else:
                    state.renew_key(FORM)
                    ss.pop(state.SI_FORM_REQUEST, None)
                    for key in [k for k in ss if isinstance(k, str) and k.startswith(state.W_SI)]:
                        ss.pop(key, None)
                    ss[state.SI_FLASH] = registered(done)
                    st.rerun()

    with file_tab:
        with st.form(FILE):
            dropped = st.file_uploader(
                _("Invoice file: CSV (landing format), UBL 2.1 XML or Factur-X PDF"),
                type=["csv", "xml", "pdf"],
                key="w_si_file",
            )
            if st.form_submit_button(_("Read the file")):
                if dropped is None:
                    st.error(_("Choose a file first."))
                else:
                    ss[state.SI_FILE] = (dropped.name, dropped.getvalue())
        held = ss.get(state.SI_FILE)
        if held is not None:
            filename, data = held
            try:
                with readers.engine().connect() as conn:
                    ready = show(registration.preview_file(conn, filename=filename, data=data))
            except InvalidInput as exc:
                st.error(i18n.error(exc))
                ready = False
            if ready and st.button(_("Register the file's invoices"), key="w_si_register_file", type="primary"):
                try:
                    with UnitOfWork(readers.engine()) as uow:
                        done = registration.register_file(
                            uow, who, filename=filename, data=data, idempotency_key=state.idempotency_key(FILE)
                        )
                except DomainError as exc:
                    st.error(i18n.error(exc))
                else:
                    state.renew_key(FILE)
                    ss.pop(state.SI_FILE, None)
                    ss[state.SI_FLASH] = registered(done)
                    st.rerun()
