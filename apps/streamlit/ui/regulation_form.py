"""Supplier regulation forms: the adjustment's fields (shared with the Regulations page) and the
single-dossier form drawn at the bottom of the Devis tab."""

from __future__ import annotations

from typing import Any

import streamlit as st

from backoffice.domain.errors import DomainError
from backoffice.domain.permissions import Actor
from backoffice.queries.dossier import DossierView
from backoffice.services.regulations import MODES, SERVICE_KINDS, apply_regulation
from backoffice.services.unit_of_work import UnitOfWork
from ui import i18n, readers, state

_ = i18n.gettext
FIELDS = ("supplier_code", "service_kinds", "mode", "purchase_value", "sale_value", "currency", "reason")
FORM = "dossier_regulation"


def mode_labels() -> dict[str, str]:
    return {"amount": _("An amount per service"), "percent": _("A percentage of the service's lines")}


def adjustment_fields(
    prefix: str, currency: str, suppliers: list[str] | None = None, kinds: tuple[str, ...] = SERVICE_KINDS
) -> dict[str, Any]:
    """Draw the adjustment's widgets (inside the caller's form); returns the request as typed.

    `suppliers` offers a choice (the dossier's own); None lets the code be typed."""
    left, right = st.columns(2)
    if suppliers is None:
        supplier = left.text_input(_("supplier_code"), key=prefix + "supplier_code", placeholder="SUP0001")
    else:
        supplier = left.selectbox(_("supplier_code"), suppliers, key=prefix + "supplier_code")
    chosen_kinds = right.multiselect(
        _("service_kinds"), kinds, format_func=i18n.translator(), key=prefix + "service_kinds"
    )
    labels = mode_labels()
    mode = st.radio(_("mode"), MODES, format_func=labels.__getitem__, horizontal=True, key=prefix + "mode")
    left, middle, right = st.columns(3)
    purchase = left.text_input(
        _("purchase_value"),
        value="0.00",
        key=prefix + "purchase_value",
        help=_("An amount such as 12.50, or a percentage such as 5 or -2.5; negative lowers the price."),
    )
    sale = middle.text_input(
        _("sale_value"), value="0.00", key=prefix + "sale_value", help=_("0 keeps the client's price as it is.")
    )
    typed_currency = right.text_input(
        _("currency"), value=currency, key=prefix + "currency", help=_("For an amount only.")
    )
    reason = st.text_area(_("reason"), key=prefix + "reason")
    return {
        "supplier_code": (supplier or "").strip(),
        "service_kinds": list(chosen_kinds),
        "mode": mode,
        "purchase_value": purchase,
        "sale_value": sale,
        "currency": typed_currency.strip().upper() or None,
        "reason": reason,
    }


def clear(prefix: str) -> None:
    for name in FIELDS:
        st.session_state.pop(prefix + name, None)


def render(view: DossierView, who: Actor) -> None:
    """The single-dossier regulation form, for a user allowed to regulate."""
    if not who.can("regulation"):
        return
    confirmed = [sv for sv in view.services if sv.status == "confirmed"]
    if not confirmed:
        return
    summary = view.summary
    prefix = state.W_DOSSIER_REGULATION
    with st.form(FORM):
        st.markdown(f"**{_('Apply a supplier regulation')}**")
        request = adjustment_fields(
            prefix,
            summary.currency,
            suppliers=sorted({sv.supplier_code for sv in confirmed}),
            kinds=tuple(k for k in SERVICE_KINDS if k in {sv.kind for sv in confirmed}),
        )
        if not st.form_submit_button(_("Apply the regulation")):
            return
    try:
        with UnitOfWork(readers.engine()) as uow:
            apply_regulation(
                uow,
                who,
                dossier_number=summary.dossier_number,
                **request,
                expected_version=summary.version,
                idempotency_key=state.idempotency_key(FORM),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    # The new lines and totals are the confirmation: the page is drawn again from the database.
    state.renew_key(FORM)
    clear(prefix)
    readers.dossier.clear()
    st.rerun()
