"""The Modifications tab of a dossier: each client request with its state, its lines and who did
what; the form to record one; validate / refuse for those allowed."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from backoffice.domain.errors import DomainError
from backoffice.domain.permissions import Actor
from backoffice.queries.dossier import DossierView
from backoffice.services.modifications import (
    KINDS,
    ModificationRequest,
    record_modification,
    validate_modification,
)
from backoffice.services.unit_of_work import UnitOfWork
from ui import i18n, readers, state, widgets

_ = i18n.gettext
ss = st.session_state
RECORD_FORM = "record_modification"
RECORD_WIDGETS = (
    state.W_MODIFICATION_KIND,
    state.W_MODIFICATION_DESCRIPTION,
    state.W_MODIFICATION_CANCEL,
    state.W_MODIFICATION_ADD,
    state.W_MODIFICATION_FEES,
)
LINE_COLUMNS = ("service_id", "label", "quantity", "unit_sale_amount", "unit_purchase_amount", "vat_rate")


# Built when drawn (this module is imported once, the language is the user's of this run); literal
# ids, so the catalog check sees every label.
def _kinds() -> dict[str, str]:
    return {
        "dates": _("Change of dates"),
        "travellers": _("Change of travellers"),
        "services": _("Change of services"),
        "cancellation": _("Cancellation of the dossier"),
    }


def _states() -> dict[str, str]:
    return {"pending": _("pending"), "validated": _("validated"), "refused": _("refused")}


def _actions() -> dict[str, str]:
    return {"add": _("Line added"), "cancel": _("Line cancelled"), "fee": _("Cancellation fee")}


def _done(form: str, widgets_to_clear: tuple[str, ...], message: str) -> None:
    state.renew_key(form)
    for widget in widgets_to_clear:
        ss.pop(widget, None)
    readers.dossier.clear()
    ss[state.MODIFICATION_FLASH] = message
    st.rerun()


def _request(view: DossierView, request: ModificationRequest, who: Actor | None) -> None:
    currency, money = view.summary.currency, i18n.money
    with st.container(border=True):
        st.markdown(f"**#{request.id} · {_kinds()[request.kind]}** · {_states()[request.state]}")
        st.write(request.description)
        st.caption(
            _("Recorded by {who} on {when} (dossier version {version})").format(
                who=request.recorded_by, when=i18n.moment(request.recorded_at), version=request.dossier_version
            )
        )
        if request.state == "validated":
            st.caption(
                _("Validated by {who} on {when}; sale total afterwards: {total}").format(
                    who=request.decided_by,
                    when=i18n.moment(request.decided_at),
                    total=money(request.sale_total_after, currency),
                )
            )
        elif request.state == "refused":
            st.caption(
                _("Refused by {who} on {when}: {reason}").format(
                    who=request.decided_by, when=i18n.moment(request.decided_at), reason=request.refusal_reason
                )
            )
        if request.refund_due is not None:
            st.info(_("Refund due to the client: {amount}").format(amount=money(request.refund_due, currency)))
        if request.refund_estimate is not None:
            st.info(_("Refund due if validated now: {amount}").format(amount=money(request.refund_estimate, currency)))
        for missed in request.unmailed:
            st.warning(
                _("Not mailed: {recipient} ({reason}); tell them another way.").format(
                    recipient=missed["recipient"], reason=missed["reason"]
                )
            )
        widgets.table(
            [
                {
                    _("Action"): _actions()[line.action],
                    _("Service"): line.service_id or "",
                    _("Label"): line.label,
                    _("Quantity"): line.quantity,
                    _("Sale total"): money(line.sale_total, currency),
                    _("Purchase total"): money(line.purchase_total, line.purchase_currency),
                    _("VAT"): i18n.percent(line.vat_rate),
                }
                for line in request.lines
            ],
            _("No price change."),
        )
        if request.state == "pending" and who is not None and who.can("validate_modification"):
            _decide_form(request, who)


def _decide_form(request: ModificationRequest, who: Actor) -> None:
    form = f"decide_modification_{request.id}"
    with st.form(form):
        reason = st.text_input(_("reason"), key=f"{state.W_DECIDE_REASON}_{request.id}", help=_("Required to refuse."))
        left, right = st.columns(2)
        validate = left.form_submit_button(_("Validate the request"), type="primary")
        refuse = right.form_submit_button(_("Refuse the request"))
    if not (validate or refuse):
        return
    decision = "validate" if validate else "refuse"
    try:
        with UnitOfWork(readers.engine()) as uow:
            validate_modification(
                uow,
                who,
                request_id=request.id,
                decision=decision,
                reason=reason if refuse else None,
                expected_version=request.version,
                idempotency_key=state.idempotency_key(f"{form}_{decision}"),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    message = _("Request #{id} validated.") if validate else _("Request #{id} refused.")
    _done(f"{form}_{decision}", (f"{state.W_DECIDE_REASON}_{request.id}",), message.format(id=request.id))


def _editor_lines(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The editor's rows as the service takes them: empty cells left out, empty rows dropped."""
    lines = []
    for row in frame.to_dict("records"):
        cells = {}
        for column, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
                continue
            cells[column] = int(value) if isinstance(value, float) and value.is_integer() else value
        if cells:
            lines.append(cells)
    return lines


def _line_editor(label: str, key: str, service_ids: list[str]) -> pd.DataFrame:
    st.markdown(f"**{label}**")
    empty = pd.DataFrame({column: pd.Series(dtype="object") for column in LINE_COLUMNS})
    return st.data_editor(
        empty,
        num_rows="dynamic",
        key=key,
        hide_index=True,
        column_config={
            "service_id": st.column_config.SelectboxColumn(_("service_id"), options=service_ids),
            "label": st.column_config.TextColumn(_("label"), max_chars=200),
            "quantity": st.column_config.NumberColumn(_("quantity"), min_value=1, step=1, default=1),
            "unit_sale_amount": st.column_config.TextColumn(_("unit_sale_amount"), default="0.00"),
            "unit_purchase_amount": st.column_config.TextColumn(_("unit_purchase_amount"), default="0.00"),
            "vat_rate": st.column_config.TextColumn(_("vat_rate"), default="0", help=_("A rate: 0.20 for 20 %.")),
        },
    )


def _record_form(view: DossierView, who: Actor) -> None:
    currency, money = view.summary.currency, i18n.money
    cancellable = {
        int(line.line_key): f"{line.label} · {line.service_label or _('No service')} · "
        f"{money(line.sale_total, line.sale_currency)}"
        for line in view.devis.lines
        if line.is_active
    }
    service_ids = [service.service_id for service in view.services if service.status != "cancelled"]
    with st.form(RECORD_FORM):
        st.markdown(f"**{_('Record a client request')}**")
        kind = st.selectbox(_("kind"), KINDS, format_func=_kinds().__getitem__, key=state.W_MODIFICATION_KIND)
        description = st.text_area(
            _("description"),
            key=state.W_MODIFICATION_DESCRIPTION,
            help=_("The client's request as they made it; the client's mail quotes it."),
        )
        to_cancel = st.multiselect(
            _("lines_to_cancel"),
            list(cancellable),
            format_func=cancellable.__getitem__,
            key=state.W_MODIFICATION_CANCEL,
            help=_("Not for a cancellation: it cancels every line itself."),
        )
        added = _line_editor(_("lines_to_add"), state.W_MODIFICATION_ADD, service_ids)
        fees = _line_editor(_("fee_lines"), state.W_MODIFICATION_FEES, service_ids)
        st.caption(
            _(
                "Fee lines are for a cancellation only, as the supplier's conditions set them. Amounts in {currency}."
            ).format(currency=currency)
        )
        if not st.form_submit_button(_("Record the request")):
            return
    try:
        with UnitOfWork(readers.engine()) as uow:
            request_id = record_modification(
                uow,
                who,
                dossier_number=view.summary.dossier_number,
                kind=kind,
                description=description,
                lines_to_add=_editor_lines(added),
                lines_to_cancel=to_cancel,
                fee_lines=_editor_lines(fees),
                expected_version=view.summary.version,
                idempotency_key=state.idempotency_key(RECORD_FORM),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    _done(RECORD_FORM, RECORD_WIDGETS, _("Request #{id} recorded: it waits for a senior agent.").format(id=request_id))


def render(view: DossierView, who: Actor | None) -> None:
    message = ss.pop(state.MODIFICATION_FLASH, None)
    if message:
        st.success(message)
    if not view.modifications:
        st.caption(_("No modifications."))
    for request in view.modifications:
        _request(view, request, who)
    if who is None or not who.can("record_modification"):
        return
    if view.summary.status == "cancelled":
        st.caption(_("The dossier is cancelled: no request can be recorded."))
        return
    _record_form(view, who)
