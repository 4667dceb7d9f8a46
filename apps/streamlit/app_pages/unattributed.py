"""Payments without a dossier: what the bank or a provider sent us naming no dossier (or one we do
not have), oldest first. An agent picks the dossier, checks it, and confirms the assignment."""

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.errors import DomainError, NotFound
from backoffice.services.payments import assign_payment, unattributed_payments
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state
who = state.actor()

st.title(_("Payments without a dossier"))
message = ss.pop(state.PAYMENTS_FLASH, None)
if message:
    st.success(message)

with readers.engine().connect() as conn:
    waiting = {p.payment_id: p for p in unattributed_payments(conn)}

widgets.table(
    [
        {
            _("Received"): i18n.moment(p.received_at),
            _("Amount"): i18n.money(p.amount, p.currency),
            _("Method"): _(p.method),
            _("Status"): _(p.status),
            _("Payer"): p.payer_name or "",
            _("Reference"): p.provider_reference or "",
            _("Dossier named"): p.named_dossier or "",
            _("payment_id"): p.payment_id,
        }
        for p in waiting.values()
    ],
    _("Every payment belongs to a dossier."),
)

if waiting and who is not None and who.can("record_payment"):
    with st.form("find_assignment"):
        st.markdown(f"**{_('Assign a payment to a dossier')}**")
        chosen = st.selectbox(
            _("payment_id"),
            list(waiting),
            format_func={
                pid: f"{pid} · {i18n.money(p.amount, p.currency)} · {p.payer_name or ''}" for pid, p in waiting.items()
            }.__getitem__,
            key=state.W_ASSIGN_PAYMENT,
        )
        typed = st.text_input(_("dossier_number"), key=state.W_ASSIGN_DOSSIER, placeholder="BK-2026-000123")
        reason = st.text_area(_("reason"), key=state.W_ASSIGN_REASON)
        if st.form_submit_button(_("Check the dossier")):
            number = typed.strip().upper()
            readers.dossier.clear()  # the assignment is confirmed against the dossier as it is now
            try:
                view = readers.dossier(number)
            except NotFound:
                st.error(_("There is no dossier {number}.").format(number=number))
            else:
                ss[state.PENDING_ASSIGNMENT] = {
                    "payment_id": chosen,
                    "dossier_number": number,
                    "version": view.summary.version,
                    "reason": reason,
                    "client": f"{view.client.last_name.upper()} {view.client.first_name}",
                    "currency": view.summary.currency,
                    "balance": view.balance_outstanding,
                }

pending = ss.get(state.PENDING_ASSIGNMENT)
if pending and pending["payment_id"] in waiting and who is not None:
    payment = waiting[pending["payment_id"]]
    with st.container(border=True):
        st.markdown(
            _("Assign {payment} ({amount}, {payer}) to {number}, {client}, balance outstanding {balance}?").format(
                payment=payment.payment_id,
                amount=i18n.money(payment.amount, payment.currency),
                payer=payment.payer_name or "",
                number=pending["dossier_number"],
                client=pending["client"],
                balance=i18n.money(pending["balance"], pending["currency"]),
            )
        )
        left, right = st.columns(2)
        if left.button(_("Confirm the assignment"), key="w_assign_confirm", type="primary"):
            try:
                with UnitOfWork(readers.engine()) as uow:
                    assign_payment(
                        uow,
                        who,
                        payment_id=payment.payment_id,
                        dossier_number=pending["dossier_number"],
                        reason=pending["reason"],
                        expected_version=pending["version"],
                        idempotency_key=state.idempotency_key("assign_payment"),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
                readers.dossier.clear()  # checking the dossier again reads its current version
            else:
                state.renew_key("assign_payment")
                ss.pop(state.PENDING_ASSIGNMENT, None)
                for widget in (state.W_ASSIGN_DOSSIER, state.W_ASSIGN_REASON):
                    ss.pop(widget, None)
                readers.dossier.clear()
                ss[state.PAYMENTS_FLASH] = _("Payment {payment} assigned to {number}.").format(
                    payment=payment.payment_id, number=pending["dossier_number"]
                )
                st.rerun()
        if right.button(_("Cancel"), key="w_assign_cancel"):
            ss.pop(state.PENDING_ASSIGNMENT, None)
            st.rerun()
