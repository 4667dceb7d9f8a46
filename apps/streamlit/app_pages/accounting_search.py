"""Accounting search (`view_accounting`): client invoices and credit notes, or supplier invoices, with
the billing status of each dossier they concern; named search lists kept per user (saved searches
of scope `client_documents` / `supplier_invoices`): save, rename, share with a role, delete."""

from __future__ import annotations

import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.domain.errors import DomainError
from backoffice.queries import accounting_search as documents
from backoffice.queries.accounting_search import DocumentCriteria
from backoffice.services.saved_searches import SavedSearch, delete_search, list_searches, save_search, update_search
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
tr = i18n.translator()
ss = st.session_state
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"

# This page's own session keys: per scope, the criteria and sort in force (they outlive the widgets).
CRITERIA = "acct_criteria"
SORT = "acct_sort"
W_SCOPE = "w_acct_scope"
W_PREFIX = "w_acct_"
SCOPE_LABELS = {
    documents.CLIENT_DOCUMENTS: "Client invoices and credit notes",
    documents.SUPPLIER_INVOICES: "Supplier invoices",
}

st.title(_("Accounting search"))
widgets.flash()
scope = st.radio(
    _("Search in"), list(SCOPE_LABELS), format_func=lambda s: tr(SCOPE_LABELS[s]), horizontal=True, key=W_SCOPE
)
criteria: DocumentCriteria = ss.setdefault(CRITERIA, {}).get(scope, DocumentCriteria())
sort, descending = ss.setdefault(SORT, {}).get(scope, ("document_date", True))

try:
    with UnitOfWork(readers.engine()) as uow:
        saved = list_searches(uow, actor, scope=scope)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()


def apply(search: SavedSearch) -> None:
    ss[CRITERIA][search.scope] = search.criteria
    ss[SORT][search.scope] = (search.sort, search.descending)
    for name in ("kinds", "number", "dossier_number", "party", "date_from", "date_to", "billing_statuses"):
        ss.pop(f"{W_PREFIX}{search.scope}_{name}", None)
    ss.pop(f"{W_PREFIX}{search.scope}_amount_min", None)
    ss.pop(f"{W_PREFIX}{search.scope}_amount_max", None)


if saved:
    st.caption(_("Search lists"))
    columns = st.columns(4)
    for i, search in enumerate(saved):
        shared = "" if search.owner == actor.login else f" ({search.owner})"
        columns[i % 4].button(
            f"{search.name}{shared}", key=f"w_acct_list_{search.id}", on_click=apply, args=(search,), width="stretch"
        )

party_label = _("Client name") if scope == documents.CLIENT_DOCUMENTS else _("supplier_code")
with st.form(f"acct_criteria_{scope}"):
    key = f"{W_PREFIX}{scope}_"
    top = st.columns(4)
    kinds = top[0].multiselect(
        _("Kind"), list(documents.KINDS), default=list(criteria.kinds), format_func=tr, key=f"{key}kinds"
    )
    number = top[1].text_input(_("Document number"), value=criteria.number or "", key=f"{key}number")
    dossier = top[2].text_input(_("dossier_number"), value=criteria.dossier_number or "", key=f"{key}dossier_number")
    party = top[3].text_input(party_label, value=criteria.party or "", key=f"{key}party")
    bottom = st.columns(5)
    date_from = bottom[0].date_input(_("From"), value=criteria.date_from, format="DD/MM/YYYY", key=f"{key}date_from")
    date_to = bottom[1].date_input(_("Until"), value=criteria.date_to, format="DD/MM/YYYY", key=f"{key}date_to")
    amount_min = bottom[2].text_input(_("Amount from"), value=str(criteria.amount_min or ""), key=f"{key}amount_min")
    amount_max = bottom[3].text_input(_("Amount up to"), value=str(criteria.amount_max or ""), key=f"{key}amount_max")
    statuses = bottom[4].multiselect(
        _("Billing status"),
        list(documents.BILLING_STATUSES),
        default=list(criteria.billing_statuses),
        format_func=tr,
        key=f"{key}billing_statuses",
    )
    left, right = st.columns([3, 1])
    new_sort = left.selectbox(
        _("Sort by"), list(documents.SORT_KEYS), index=documents.SORT_KEYS.index(sort), format_func=tr
    )
    new_descending = right.toggle(_("Descending"), value=descending)
    if st.form_submit_button(_("Search")):
        wanted = DocumentCriteria(
            tuple(kinds),
            number,
            dossier,
            party,
            date_from or None,
            date_to or None,
            amount_min or None,
            amount_max or None,
            tuple(statuses),
        )
        try:
            ss[CRITERIA][scope] = criteria = documents.validate(wanted)
            ss[SORT][scope] = sort, descending = new_sort, new_descending
        except DomainError as exc:
            st.error(i18n.error(exc))

with readers.engine().connect() as conn:
    found = documents.search_documents(conn, scope, criteria, sort, descending)


def status_text(row: documents.DocumentRow) -> str:
    listed = ", ".join(f"{number} ({tr(status) if status else '-'})" for number, status in row.dossiers)
    if row.dossier_count <= len(row.dossiers):
        return listed
    counts = ", ".join(f"{i18n.number(n)} {tr(status)}" for status, n in row.status_counts)
    return _("{count} dossiers: {counts}; the first: {listed}, …").format(
        count=i18n.number(row.dossier_count), counts=counts, listed=listed
    )


widgets.table(
    [
        {
            _("Number"): row.number,
            _("Kind"): _(row.kind),
            _("Date"): i18n.day(row.document_date),
            party_label: row.party,
            _("Amount"): i18n.money(row.amount, row.currency),
            _("Dossiers and billing status"): status_text(row),
        }
        for row in found
    ],
    _("No document matches these criteria."),
)
st.caption(_("{count} documents (at most {limit})").format(count=len(found), limit=documents.MAX_ROWS))

roles = [None, "agent", "senior_agent", "accountant", "admin"] if actor.can("share_searches") else [None]


def role_label(role: str | None) -> str:
    return tr("Only me") if role is None else tr(role)


with st.expander(_("Save this search")), st.form(f"acct_save_{scope}", clear_on_submit=True):
    name = st.text_input(_("name"), key=f"w_acct_save_name_{scope}")
    share = st.selectbox(_("Share with"), roles, format_func=role_label, key=f"w_acct_save_share_{scope}")
    if st.form_submit_button(_("Save")):
        form = f"acct_save_{scope}"
        try:
            with UnitOfWork(readers.engine()) as uow:
                save_search(
                    uow,
                    actor,
                    name,
                    criteria,
                    sort=sort,
                    descending=descending,
                    shared_with_role=share,
                    idempotency_key=state.idempotency_key(form),
                    scope=scope,
                )
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            state.renew_key(form)
            ss[state.FLASH] = _("Search saved.")
            st.rerun()

mine = [s for s in saved if s.owner == actor.login]
if mine:
    with st.expander(_("My search lists")):
        for search in mine:
            with st.container(border=True):
                left, right = st.columns([4, 1])
                shared = f" · {tr(search.shared_with_role)}" if search.shared_with_role else ""
                left.markdown(f"**{search.name}**{shared}")
                if right.button(_("Delete"), key=f"w_acct_delete_{search.id}"):
                    form = f"acct_delete_{search.id}"
                    try:
                        with UnitOfWork(readers.engine()) as uow:
                            delete_search(
                                uow, actor, search.id, idempotency_key=state.idempotency_key(form), scope=scope
                            )
                    except DomainError as exc:
                        st.error(i18n.error(exc))
                    else:
                        state.renew_key(form)
                        ss[state.FLASH] = _("Search deleted.")
                        st.rerun()
                with st.form(f"acct_edit_{search.id}"):
                    new_name = st.text_input(_("name"), value=search.name, key=f"w_acct_edit_name_{search.id}")
                    options = list(dict.fromkeys([*roles, search.shared_with_role]))
                    new_share = st.selectbox(
                        _("Share with"),
                        options,
                        index=options.index(search.shared_with_role),
                        format_func=role_label,
                        key=f"w_acct_edit_share_{search.id}",
                    )
                    replace = st.checkbox(
                        _("Replace its criteria with the search shown above"), key=f"w_acct_edit_replace_{search.id}"
                    )
                    if st.form_submit_button(_("Save changes")):
                        form = f"acct_edit_{search.id}"
                        try:
                            with UnitOfWork(readers.engine()) as uow:
                                update_search(
                                    uow,
                                    actor,
                                    search.id,
                                    name=new_name,
                                    criteria=criteria if replace else search.criteria,
                                    sort=sort if replace else search.sort,
                                    descending=descending if replace else search.descending,
                                    shared_with_role=new_share,
                                    expected_version=search.version,
                                    idempotency_key=state.idempotency_key(form),
                                    scope=scope,
                                )
                        except DomainError as exc:
                            st.error(i18n.error(exc))
                        else:
                            state.renew_key(form)
                            ss[state.FLASH] = _("Search updated.")
                            st.rerun()
