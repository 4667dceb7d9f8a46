"""Reconciliation workbench (accounting space): supplier invoice lines waiting for an accountant,
with their candidates and scores; confirm, reject, match by hand (or split), undo (on an automatic
match: withdraw it); settle the difference of a line's dossier and supplier (write it off, or turn
it into a supplier regulation); bulk confirm of the filtered suggestions after counting them.
Every write goes through backoffice.services.reconciliation or .write_offs, which check the
`reconcile`, `write_off` and `regulation` permissions again."""

from __future__ import annotations

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.errors import DomainError, InvalidInput
from backoffice.queries import reconciliation as workbench
from backoffice.services import reconciliation, write_offs
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state
who = state.actor()
ACTIONS = ("confirm", "reject", "manual", "unmatch")

st.title(_("Reconciliation"))
message = ss.pop(state.RECON_FLASH, None)
if message:
    st.success(message)

filters: workbench.Filters = ss.get(state.RECON_FILTERS, workbench.Filters())
with st.form("reconciliation_filters"):
    top = st.columns(3)
    supplier = top[0].text_input(_("supplier_code"), value=filters.supplier_code or "")
    states = top[1].multiselect(_("States"), list(workbench.STATES), default=list(filters.states), format_func=_)
    reference = top[2].text_input(_("Reference"), value=filters.reference or "")
    bottom = st.columns(4)
    date_from = bottom[0].date_input(_("Invoiced from"), value=filters.date_from, format="DD/MM/YYYY")
    date_to = bottom[1].date_input(_("Invoiced until"), value=filters.date_to, format="DD/MM/YYYY")
    amount_min = bottom[2].text_input(_("Amount from"), value=str(filters.amount_min or ""))
    amount_max = bottom[3].text_input(_("Amount up to"), value=str(filters.amount_max or ""))
    if st.form_submit_button(_("Filter")):
        wanted = workbench.Filters(
            supplier, tuple(states), date_from or None, date_to or None, amount_min, amount_max, reference
        )
        try:
            ss[state.RECON_FILTERS] = filters = wanted.checked()
        except InvalidInput as exc:
            st.error(i18n.error(exc))
        ss[state.RECON_CURSORS] = []
        ss.pop(state.RECON_BULK, None)

cursors: list = ss.setdefault(state.RECON_CURSORS, [])
with readers.engine().connect() as conn:
    page = workbench.read_page(conn, filters, after=cursors[-1] if cursors else None)


def _label(line: workbench.WorkbenchLine) -> str:
    return f"{line.supplier_code} / {line.invoice_number} / {line.line_number}"


def _candidates(line: workbench.WorkbenchLine) -> str:
    return ", ".join(f"{c.dossier_number} ({c.confidence:.2f})" for c in line.candidates)


widgets.table(
    [
        {
            _("Line"): _label(line),
            _("Invoice date"): i18n.day(line.invoice_date),
            _("Reference"): line.reference or "",
            _("Amount"): i18n.money(line.amount_incl_tax, line.currency),
            _("State"): _(line.state),
            _("dossier_number"): line.dossier_number or "",
            _("Confidence"): f"{line.confidence:.2f}",
            _("Candidates"): _candidates(line),
        }
        for line in page.lines
    ],
    _("No line matches these filters."),
)
nav = st.columns(2)
if cursors and nav[0].button(_("Previous page"), key="w_recon_previous"):
    cursors.pop()
    st.rerun()
if page.next_after is not None and nav[1].button(_("Next page"), key="w_recon_next"):
    cursors.append(page.next_after)
    st.rerun()

lines = {_label(line): line for line in page.lines}
if lines and who is not None and who.can("reconcile"):
    with st.form("reconciliation_action"):
        st.markdown(f"**{_('Decide on a line')}**")
        chosen = st.selectbox(_("Line"), list(lines), key=state.W_RECON_LINE)
        action = st.radio(_("Action"), ACTIONS, format_func=_, horizontal=True, key=state.W_RECON_ACTION)
        dossier = st.text_input(
            _("dossier_number"), key=state.W_RECON_DOSSIER, help=_("Empty: the dossier shown for the line.")
        )
        split = st.text_area(_("Split (one dossier=amount a line)"), key=state.W_RECON_SPLIT)
        reason = st.text_input(_("reason"), key=state.W_RECON_REASON)
        if st.form_submit_button(_("Record the decision")):
            line = lines[chosen]
            common = {
                "supplier_code": line.supplier_code,
                "invoice_number": line.invoice_number,
                "line_number": line.line_number,
                "expected_decision_id": line.decision_id,
                "idempotency_key": state.idempotency_key("reconciliation"),
            }
            number = dossier.strip() or line.dossier_number or ""
            try:
                with UnitOfWork(readers.engine()) as uow:
                    if action == "confirm":
                        reconciliation.confirm(uow, who, dossier_number=number, **common)
                    elif action == "reject":
                        reconciliation.reject(uow, who, dossier_number=number, reason=reason, **common)
                    elif action == "manual":
                        parts = [p.split("=", 1) for p in split.splitlines() if p.strip()]
                        allocations = [(p[0], p[1] if len(p) > 1 else None) for p in parts] or number
                        reconciliation.manual_match(uow, who, allocations=allocations, reason=reason, **common)
                    else:
                        reconciliation.unreconcile(uow, who, reason=reason, **common)
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                state.renew_key("reconciliation")
                for widget in (state.W_RECON_DOSSIER, state.W_RECON_SPLIT, state.W_RECON_REASON):
                    ss.pop(widget, None)
                ss.pop(state.RECON_BULK, None)
                ss[state.RECON_FLASH] = _("Decision recorded for {line}.").format(line=chosen)
                st.rerun()


def _settle(line: workbench.WorkbenchLine) -> None:
    """The difference of the line's dossier and supplier, and the two ways to settle it."""
    with readers.engine().connect() as conn:
        found = workbench.difference(conn, line.dossier_number or "", line.supplier_code)
    if found is None:
        st.info(_("Nothing is expected from nor invoiced by this supplier on this dossier."))
        return
    st.markdown(
        _("{dossier} / {supplier}: expected {expected}, invoiced {invoiced}, written off {written_off}.").format(
            dossier=found.dossier_number,
            supplier=found.supplier_code,
            expected=i18n.money(found.expected_amount, found.currency),
            invoiced=i18n.money(found.invoiced_amount, found.currency),
            written_off=i18n.money(found.written_off_amount, found.currency),
        )
    )
    if found.remaining == 0:
        st.info(_("No difference left to settle."))
        return
    st.markdown(f"**{_('Difference left')}: {i18n.money(found.remaining, found.currency)}** ({_(found.status)})")
    with st.form("reconciliation_settle"):
        reason = st.text_input(_("reason"), key="w_recon_settle_reason")
        cols = st.columns(2)
        write = who.can("write_off") and cols[0].form_submit_button(_("Write off the difference"))
        regulate = who.can("regulation") and cols[1].form_submit_button(_("Turn into a regulation"))
    if not (write or regulate):
        return
    request = {
        "dossier_number": found.dossier_number,
        "supplier_code": found.supplier_code,
        "amount_seen": found.remaining,
        "reason": reason,
    }
    form = "write_off" if write else "difference_regulation"
    try:
        with UnitOfWork(readers.engine()) as uow:
            if write:
                write_offs.write_off(uow, who, **request, idempotency_key=state.idempotency_key(form))
            else:
                write_offs.turn_into_regulation(uow, who, **request, idempotency_key=state.idempotency_key(form))
    except DomainError as exc:
        st.error(i18n.error(exc))
    else:
        state.renew_key(form)
        ss.pop("w_recon_settle_reason", None)
        done = _("Difference written off for {dossier}.") if write else _("Regulation recorded on {dossier}.")
        ss[state.RECON_FLASH] = done.format(dossier=found.dossier_number)
        st.rerun()


settleable = {k: v for k, v in lines.items() if v.dossier_number and v.state != "rejected"}
if settleable and who is not None and (who.can("write_off") or who.can("regulation")):
    st.markdown(f"**{_('Settle the difference')}**")
    _settle(settleable[st.selectbox(_("Line"), list(settleable), key="w_recon_settle_line")])

if who is not None and who.can("reconcile"):
    st.markdown(f"**{_('Bulk confirm')}**")
    if st.button(_("Count the filtered suggestions"), key="w_recon_count"):
        with readers.engine().connect() as conn:
            ss[state.RECON_BULK] = workbench.count_suggestions(conn, filters)
    counted = ss.get(state.RECON_BULK)
    if counted is not None:
        if counted == 0:
            st.info(_("No suggestion to confirm with these filters."))
        elif st.button(
            _("Confirm these {count} suggestions").format(count=counted), key="w_recon_bulk", type="primary"
        ):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    done = reconciliation.bulk_confirm(
                        uow,
                        who,
                        filters=filters,
                        expected_count=counted,
                        idempotency_key=state.idempotency_key("reconciliation_bulk"),
                    )
            except DomainError as exc:
                ss.pop(state.RECON_BULK, None)
                st.error(i18n.error(exc))
            else:
                state.renew_key("reconciliation_bulk")
                ss.pop(state.RECON_BULK, None)
                ss[state.RECON_FLASH] = _("{count} suggestions confirmed.").format(count=done)
                st.rerun()
