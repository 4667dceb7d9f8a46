"""The Payments tab of a dossier: schedule with each item's state, the automatic card charges,
payments received, refunds, and the forms to record a payment, retry a declined charge, ask for a
refund, and approve or refuse someone else's."""

from __future__ import annotations

import streamlit as st

from backoffice.config import get_settings
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import DomainError
from backoffice.domain.permissions import Actor
from backoffice.queries.dossier import DossierView
from backoffice.services.balances import ItemCharges, charge_now, item_charges
from backoffice.services.payments import METHODS, record_payment, schedule_states
from backoffice.services.refunds import Refund, approve_refund, refund_method, refuse_refund, request_refund
from backoffice.services.unit_of_work import UnitOfWork
from ui import i18n, readers, state, widgets

_ = i18n.gettext
ss = st.session_state
PAYMENT_WIDGETS = (
    state.W_PAY_AMOUNT,
    state.W_PAY_RECEIVED_ON,
    state.W_PAY_VOUCHER,
    state.W_PAY_REFERENCE,
    state.W_PAY_PAYER,
    state.W_PAY_NOTE,
)
REFUND_WIDGETS = (state.W_REFUND_PAYMENT, state.W_REFUND_AMOUNT, state.W_REFUND_REASON)


def _state_label(state_id: str) -> str:
    """Literal ids, so the catalog check sees every label; looked up at each run, in the user's language."""
    return {
        "paid": _("paid"),
        "due": _("due"),
        "overdue": _("overdue"),
        "upcoming": _("upcoming"),
        "pending_approval": _("pending_approval"),
        "executed": _("executed"),
        "refused": _("refused"),
    }[state_id]


def _charge_label(value: str) -> str:
    """An attempt's state or the provider's decline reason, in the user's language."""
    return {
        "captured": _("captured"),
        "declined": _("declined"),
        "pending": _("pending"),
        "insufficient_funds": _("insufficient funds"),
        "card_expired": _("card expired"),
        "do_not_honor": _("refused by the bank"),
    }.get(value, value)


def _charges(view: DossierView) -> dict[int, ItemCharges]:
    with readers.engine().connect() as conn:
        return item_charges(conn, view.summary.dossier_number)


def _charges_table(view: DossierView, charges: dict[int, ItemCharges]) -> None:
    if not charges:
        return
    kinds = {item.seq: item.kind for item in view.schedule}

    def next_try(item: ItemCharges, attempt_no: int) -> str:
        if attempt_no != item.attempts[-1].attempt_no:
            return ""
        if item.state == "given_up":
            return _("given up")
        return i18n.day(item.next_try) if item.next_try else ""

    st.markdown(f"**{_('Automatic card charges')}**")
    widgets.table(
        [
            {
                _("Tried on"): i18n.day(a.attempted_on),
                _("Kind"): _(kinds[a.seq]) if a.seq in kinds else str(a.seq),
                _("Amount"): i18n.money(a.amount, a.currency),
                _("State"): _charge_label(a.state),
                _("Reason"): _charge_label(a.decline_reason) if a.decline_reason else "",
                _("By"): _("daily run") if a.trigger == "schedule" else a.requested_by,
                _("Reference"): a.provider_reference or "",
                _("Next try"): next_try(item, a.attempt_no),
            }
            for item in charges.values()
            for a in item.attempts
        ],
        "",
    )


def _retry_forms(view: DossierView, who: Actor, charges: dict[int, ItemCharges]) -> None:
    """A "retry the charge now" button per declined card item still left to pay."""
    left = {s.seq: s.remaining for s in schedule_states(view.schedule, view.paid_total, accounting_today())}
    for item in charges.values():
        if not item.retry_allowed or left.get(item.seq, 0) <= 0:
            continue
        form = f"charge_now_{item.seq}"
        with st.form(form):
            st.markdown(
                _("The card charge of {amount} was declined.").format(
                    amount=i18n.money(left[item.seq], view.summary.currency)
                )
            )
            submitted = st.form_submit_button(_("Retry the charge now"))
        if not submitted:
            continue
        try:
            with UnitOfWork(readers.engine()) as uow:
                attempt = charge_now(
                    uow,
                    who,
                    dossier_number=view.summary.dossier_number,
                    seq=item.seq,
                    expected_version=view.summary.version,
                    idempotency_key=state.idempotency_key(form),
                )
        except DomainError as exc:
            st.error(i18n.error(exc))
            return
        if attempt.state == "captured":
            message = _("Card charged: {amount}.").format(amount=i18n.money(attempt.amount, attempt.currency))
        else:
            message = _("The card was declined again ({reason}); the client was mailed.").format(
                reason=_charge_label(attempt.decline_reason or "")
            )
        _done(form, (), message)


def _done(form: str, widgets_to_clear: tuple[str, ...], message: str) -> None:
    """After a write: a fresh key for the form, its fields emptied, the dossier read again."""
    state.renew_key(form)
    for widget in widgets_to_clear:
        ss.pop(widget, None)
    readers.dossier.clear()
    ss[state.PAYMENTS_FLASH] = message
    st.rerun()


def _tables(view: DossierView, charges: dict[int, ItemCharges]) -> None:
    currency, money = view.summary.currency, i18n.money
    a, b, c = st.columns(3)
    a.metric(_("Due so far"), money(view.due_to_date, currency))
    b.metric(_("Paid"), money(view.paid_total, currency))
    c.metric(_("Balance outstanding"), money(view.balance_outstanding, currency))
    st.markdown(f"**{_('Payment schedule')}**")
    widgets.table(
        [
            {
                _("Due date"): i18n.day(item.due_date),
                _("Amount"): money(item.amount, currency),
                _("Kind"): _(item.kind),
                _("Method"): _(item.method),
                _("State"): _state_label(item.state),
                _("Left to pay"): money(item.remaining, currency),
            }
            for item in schedule_states(view.schedule, view.paid_total, accounting_today())
        ],
        _("No payment schedule."),
    )
    _charges_table(view, charges)
    st.markdown(f"**{_('Payments received')}**")
    widgets.table(
        [
            {
                _("Received"): i18n.moment(p.received_at),
                _("Amount"): money(p.amount, p.currency),
                _("Method"): _(p.method),
                _("Status"): _(p.status),
                _("Provider"): p.provider or "",
                _("Reference"): p.provider_reference or "",
                _("Voucher code"): p.voucher_code or "",
                _("Payer"): p.payer_name or "",
                _("Refund of"): p.refund_of or "",
                _("By"): p.created_by,
                _("payment_id"): p.payment_id,
            }
            for p in view.payments
        ],
        _("No payments."),
    )
    if view.refunds:
        st.markdown(f"**{_('Refunds')}**")
        widgets.table(
            [
                {
                    _("Asked"): i18n.moment(r.requested_at),
                    _("Amount"): money(r.amount, r.currency),
                    _("Method"): _(r.method),
                    _("State"): _state_label(r.state),
                    _("Reason"): r.reason,
                    _("Asked by"): r.requested_by,
                    _("Decided by"): r.decided_by or "",
                    _("Note"): r.decision_note or "",
                    _("payment_id"): r.payment_id,
                }
                for r in view.refunds
            ],
            "",
        )


def _decision_form(view: DossierView, who: Actor, refund: Refund) -> None:
    form = f"approve_refund_{refund.id}"
    with st.form(form):
        st.markdown(
            _("Refund of {amount} on {payment}, asked by {who}: {reason}").format(
                amount=i18n.money(refund.amount, refund.currency),
                payment=refund.payment_id,
                who=refund.requested_by,
                reason=refund.reason,
            )
        )
        note = st.text_input(_("note"), key=f"{state.W_REFUND_DECISION}_{refund.id}", help=_("Required to refuse."))
        left, right = st.columns(2)
        approve = left.form_submit_button(_("Approve"))
        refuse = right.form_submit_button(_("Refuse"))
    if not (approve or refuse):
        return
    try:
        with UnitOfWork(readers.engine()) as uow:
            if approve:
                approve_refund(
                    uow,
                    who,
                    refund_id=refund.id,
                    note=note or None,
                    expected_version=view.summary.version,
                    idempotency_key=state.idempotency_key(form),
                )
            else:
                refuse_refund(
                    uow,
                    who,
                    refund_id=refund.id,
                    reason=note,
                    expected_version=view.summary.version,
                    idempotency_key=state.idempotency_key(form),
                )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    _done(
        form,
        (f"{state.W_REFUND_DECISION}_{refund.id}",),
        _("Refund approved and executed.") if approve else _("Refund refused."),
    )


def _pending(view: DossierView, who: Actor) -> None:
    pending = [r for r in view.refunds if r.state == "pending_approval"]
    if not pending:
        return
    st.markdown(f"**{_('Refunds waiting for approval')}**")
    for refund in pending:
        if who.can("approve_refund") and who.login != refund.requested_by:
            _decision_form(view, who, refund)
        else:
            st.caption(
                _("{amount} asked by {who}: waiting for another person's approval.").format(
                    amount=i18n.money(refund.amount, refund.currency), who=refund.requested_by
                )
            )


def _payment_form(view: DossierView, who: Actor) -> None:
    # Not cleared on submit, so a refused form keeps what was typed; emptied after success.
    with st.form("record_payment"):
        st.markdown(f"**{_('Record a payment')}**")
        left, right = st.columns(2)
        method = left.selectbox(_("method"), METHODS, format_func=i18n.translator(), key=state.W_PAY_METHOD)
        amount = right.text_input(_("amount"), key=state.W_PAY_AMOUNT, help=view.summary.currency)
        received_on = left.date_input(
            _("received_on"), value=accounting_today(), max_value=accounting_today(), key=state.W_PAY_RECEIVED_ON
        )
        voucher = right.text_input(_("voucher_code"), key=state.W_PAY_VOUCHER, help=_("Required for a gift voucher."))
        reference = left.text_input(
            _("reference"), key=state.W_PAY_REFERENCE, help=_("Cheque number, card authorisation, transfer reference.")
        )
        payer = right.text_input(_("payer_name"), key=state.W_PAY_PAYER)
        note = st.text_input(_("note"), key=state.W_PAY_NOTE)
        submitted = st.form_submit_button(_("Record the payment"))
    if not submitted:
        return
    try:
        with UnitOfWork(readers.engine()) as uow:
            record_payment(
                uow,
                who,
                dossier_number=view.summary.dossier_number,
                method=method,
                amount=amount,
                received_on=received_on,
                voucher_code=voucher or None,
                reference=reference or None,
                payer_name=payer or None,
                note=note or None,
                expected_version=view.summary.version,
                idempotency_key=state.idempotency_key("record_payment"),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    _done("record_payment", PAYMENT_WIDGETS, _("Payment recorded."))


def _refund_form(view: DossierView, who: Actor) -> None:
    refundable = {p.payment_id: p for p in view.payments if p.status == "captured" and p.amount > 0}
    if not refundable:
        return

    # Labels fixed now, in this run's language (see i18n.translator).
    labels = {
        pid: f"{pid} · {_(p.method)} · {i18n.money(p.amount, p.currency)} · {i18n.day(p.received_at.date())}"
        f" → {_(refund_method(p.method))}"
        for pid, p in refundable.items()
    }

    with st.form("request_refund"):
        st.markdown(f"**{_('Refund the client')}**")
        rule = _("A card is refunded to the card, others by transfer; above {threshold}, a second person approves.")
        st.caption(rule.format(threshold=i18n.money(get_settings().refund_approval_threshold, view.summary.currency)))
        payment_id = st.selectbox(
            _("payment_id"), list(refundable), format_func=labels.__getitem__, key=state.W_REFUND_PAYMENT
        )
        amount = st.text_input(_("amount"), key=state.W_REFUND_AMOUNT)
        reason = st.text_area(_("reason"), key=state.W_REFUND_REASON)
        submitted = st.form_submit_button(_("Refund"))
    if not submitted:
        return
    try:
        with UnitOfWork(readers.engine()) as uow:
            refund = request_refund(
                uow,
                who,
                dossier_number=view.summary.dossier_number,
                payment_id=payment_id,
                amount=amount,
                reason=reason,
                expected_version=view.summary.version,
                idempotency_key=state.idempotency_key("request_refund"),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    waiting = refund.state == "pending_approval"
    _done(
        "request_refund",
        REFUND_WIDGETS,
        _("Refund waiting for another person's approval.") if waiting else _("Refund executed."),
    )


def render(view: DossierView) -> None:
    message = ss.pop(state.PAYMENTS_FLASH, None)
    if message:
        st.success(message)
    charges = _charges(view)
    _tables(view, charges)
    who = state.actor()
    if who is None:
        return
    _pending(view, who)
    if who.can("record_payment"):
        _retry_forms(view, who, charges)
        _payment_form(view, who)
    if who.can("refund"):
        _refund_form(view, who)
