"""Suppliers: where each supplier's mails go (the reference file carries no address)."""

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.errors import DomainError
from backoffice.services.supplier_contacts import LANGUAGES, list_supplier_contacts, set_supplier_contact
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"

st.title(_("Suppliers"))
st.caption(_("Modification and cancellation mails go to these addresses; a supplier without one is not mailed."))
widgets.flash()

try:
    with UnitOfWork(readers.engine()) as uow:
        contacts = list_supplier_contacts(uow, actor)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()

widgets.table(
    [
        {
            _("supplier_code"): c.supplier_code,
            _("Name"): c.name,
            _("Country"): c.country,
            _("email"): c.email or "",
            _("Language"): c.language,
        }
        for c in contacts
    ],
    _("No suppliers."),
)
if not contacts:
    st.stop()

by_code = {c.supplier_code: c for c in contacts}
code = st.selectbox(
    _("supplier_code"),
    list(by_code),
    format_func={c.supplier_code: f"{c.supplier_code} · {c.name}" for c in contacts}.__getitem__,
    key=state.W_SUPPLIER_CODE,
)
chosen = by_code[code]
form = f"supplier_contact_{code}"
with st.form(form):
    email = st.text_input(
        _("email"),
        value=chosen.email or "",
        help=_("Empty: the supplier is not mailed."),
        key=f"w_supplier_email_{code}",
    )
    language = st.selectbox(
        _("Language"), LANGUAGES, index=LANGUAGES.index(chosen.language), key=f"w_supplier_language_{code}"
    )
    if st.form_submit_button(_("Save")):
        try:
            with UnitOfWork(readers.engine()) as uow:
                set_supplier_contact(
                    uow,
                    actor,
                    supplier_code=code,
                    email=email,
                    language=language,
                    expected_version=chosen.contact_version,
                    idempotency_key=state.idempotency_key(form),
                )
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            state.renew_key(form)
            st.session_state[state.FLASH] = _("Supplier contact saved.")
            st.rerun()
