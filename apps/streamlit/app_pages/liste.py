"""Liste: find the dossiers to work on, by criteria or one-click shortcuts, and open one."""

import json

import pandas as pd
import streamlit as st
from ui import i18n, readers, search_form, state, widgets

from backoffice.domain.errors import DomainError
from backoffice.queries import criteria as criteria_json
from backoffice.queries.criteria import validate
from backoffice.queries.search import SORT_KEYS
from backoffice.services.saved_searches import SavedSearch, delete_search, save_search, update_search
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"
ss = st.session_state


def apply(search: SavedSearch) -> None:
    ss[state.CRITERIA] = search.criteria
    ss[state.SORT], ss[state.DESCENDING], ss[state.PAGE] = search.sort, search.descending, 1
    ss[state.W_SORT], ss[state.W_DESCENDING] = search.sort, search.descending
    search_form.seed(search.criteria, overwrite=True)


def turn_page(step: int) -> None:
    ss[state.PAGE] += step


def remember_view() -> None:
    ss[state.SORT], ss[state.DESCENDING] = ss[state.W_SORT], ss[state.W_DESCENDING]
    ss[state.PAGE_SIZE], ss[state.PAGE] = ss[state.W_PAGE_SIZE], 1


st.title(_("Dossiers"))
widgets.flash()

saved = readers.saved_searches(actor, actor.login, actor.role)
st.caption(_("Shortcuts"))
columns = st.columns(4)
for i, search in enumerate(saved):
    label = _(search.name) if search.builtin else search.name
    columns[i % 4].button(
        label, key=f"w_shortcut_{search.key or search.id}", on_click=apply, args=(search,), width="stretch"
    )

search_form.seed(ss[state.CRITERIA])
if search_form.render():
    try:
        ss[state.CRITERIA] = validate(search_form.read())
        ss[state.PAGE] = 1
    except DomainError as exc:
        st.error(i18n.error(exc))

ss.setdefault(state.W_SORT, ss[state.SORT])
ss.setdefault(state.W_DESCENDING, ss[state.DESCENDING])
ss.setdefault(state.W_PAGE_SIZE, ss[state.PAGE_SIZE])
a, b, c = st.columns([2, 1, 1])
tr = i18n.translator()
a.selectbox(_("Sort by"), list(SORT_KEYS), format_func=tr, key=state.W_SORT, on_change=remember_view)
b.toggle(_("Descending"), key=state.W_DESCENDING, on_change=remember_view)
c.selectbox(_("Rows per page"), [25, 50, 100], key=state.W_PAGE_SIZE, on_change=remember_view)

criteria = json.dumps(criteria_json.to_dict(ss[state.CRITERIA]), sort_keys=True)
page = readers.search_page(criteria, ss[state.SORT], ss[state.DESCENDING], ss[state.PAGE], ss[state.PAGE_SIZE])
st.caption(
    _("{total} dossiers · page {page} of {pages}").format(
        total=i18n.number(page.total), page=page.page, pages=page.page_count
    )
    if page.total_exact
    # Past the search's count cap the total is a lower bound, shown as such (docs/scaling.md).
    else _("More than {total} dossiers · page {page}").format(total=i18n.number(page.total), page=page.page)
)
frame = pd.DataFrame(
    [
        {
            _("Dossier"): r.dossier_number,
            _("Client"): f"{r.client_last_name.upper()} {r.client_first_name}",
            _("Departure"): i18n.day(r.departure_date),
            _("Status"): _(r.status),
            _("Brand"): r.brand,
            _("Destination"): r.destination,
            _("Amount"): i18n.money(r.sale_total, r.currency),
        }
        for r in page.rows
    ],
    columns=[_("Dossier"), _("Client"), _("Departure"), _("Status"), _("Brand"), _("Destination"), _("Amount")],
)
event = st.dataframe(
    frame, key=state.results_table_key(), on_select="rerun", selection_mode="single-row", hide_index=True
)
if event.selection.rows:
    state.open_dossier(page.rows[event.selection.rows[0]].dossier_number)
    st.switch_page("app_pages/dossier.py")
st.caption(_("Select a row to open the dossier."))

left, right, _spacer = st.columns([1, 1, 4])
left.button(_("Previous page"), on_click=turn_page, args=(-1,), disabled=page.page <= 1, key="w_prev")
right.button(_("Next page"), on_click=turn_page, args=(1,), disabled=page.page >= page.page_count, key="w_next")

with st.expander(_("Save this search")), st.form("save_search", clear_on_submit=True):
    name = st.text_input(_("name"), key=state.W_SAVE_NAME)
    roles = [None, "agent", "senior_agent", "accountant", "admin"] if actor.can("share_searches") else [None]
    share = st.selectbox(
        _("Share with"), roles, format_func=lambda r: tr("Only me") if r is None else tr(r), key=state.W_SAVE_SHARE
    )
    if st.form_submit_button(_("Save")):
        try:
            with UnitOfWork(readers.engine()) as uow:
                save_search(
                    uow,
                    actor,
                    name,
                    ss[state.CRITERIA],
                    sort=ss[state.SORT],
                    descending=ss[state.DESCENDING],
                    shared_with_role=share,
                    idempotency_key=state.idempotency_key("save_search"),
                )
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            state.renew_key("save_search")
            readers.saved_searches.clear()
            ss[state.FLASH] = _("Search saved.")
            st.rerun()


def edit_saved(search: SavedSearch, name: str, share: str | None, replace: bool) -> None:
    form = f"edit_search_{search.id}"
    try:
        with UnitOfWork(readers.engine()) as uow:
            update_search(
                uow,
                actor,
                search.id,
                name=name,
                criteria=ss[state.CRITERIA] if replace else search.criteria,
                sort=ss[state.SORT] if replace else search.sort,
                descending=ss[state.DESCENDING] if replace else search.descending,
                shared_with_role=share,
                expected_version=search.version,
                idempotency_key=state.idempotency_key(form),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    state.renew_key(form)
    readers.saved_searches.clear()
    ss[state.FLASH] = _("Search updated.")
    st.rerun()


mine = [s for s in saved if s.owner == actor.login]
if mine:
    with st.expander(_("My saved searches")):
        for search in mine:
            with st.container(border=True):
                left, right = st.columns([4, 1])
                shared = f" · {_(search.shared_with_role)}" if search.shared_with_role else ""
                left.markdown(f"**{search.name}**{shared}")
                if right.button(_("Delete"), key=f"w_delete_{search.id}"):
                    form = f"delete_{search.id}"
                    try:
                        with UnitOfWork(readers.engine()) as uow:
                            delete_search(uow, actor, search.id, idempotency_key=state.idempotency_key(form))
                    except DomainError as exc:
                        st.error(i18n.error(exc))
                    else:
                        readers.saved_searches.clear()
                        st.rerun()
                with st.form(f"edit_search_{search.id}"):
                    new_name = st.text_input(_("name"), value=search.name, key=f"w_edit_name_{search.id}")
                    share_options = list(dict.fromkeys([*roles, search.shared_with_role]))
                    new_share = st.selectbox(
                        _("Share with"),
                        share_options,
                        index=share_options.index(search.shared_with_role),
                        format_func=lambda r: tr("Only me") if r is None else tr(r),
                        key=f"w_edit_share_{search.id}",
                    )
                    replace = st.checkbox(
                        _("Replace its criteria with the search shown above"), key=f"w_edit_replace_{search.id}"
                    )
                    if st.form_submit_button(_("Save changes")):
                        edit_saved(search, new_name, new_share, replace)
