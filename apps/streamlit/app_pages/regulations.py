"""Regulations: a supplier's price change applied to many dossiers at once, previewed first; past
regulations and their undo."""

import streamlit as st
from ui import i18n, readers, regulation_form, state, widgets

from backoffice.domain.errors import DomainError
from backoffice.queries.criteria import SearchCriteria, to_dict
from backoffice.services.regulations import (
    Preview,
    PreviewChanged,
    apply_mass_regulation,
    list_regulations,
    preview_mass_regulation,
    undo_regulation,
)
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"
money = i18n.money
# Literal ids, so the catalog check sees every label.
REASONS = {
    "cancelled": _("the dossier is cancelled"),
    "other_currency": _("the dossier is in another currency"),
    "no_service": _("no confirmed service of this supplier and kind"),
    "mixed_currencies": _("purchases in several currencies"),
    "nothing_to_adjust": _("the percentage gives 0.00"),
}
PHASES = {
    "selection": _("Reading the selection"),
    "plan": _("Checking every dossier again"),
    "lines": _("Adding the price lines"),
    "dossiers": _("Updating the dossiers"),
    "audit": _("Writing the history"),
    "commit": _("Saving"),
    "done": _("Done"),
}
SOURCES = {"numbers": _("Pasted dossier numbers"), "search": _("The current search of the list")}

st.title(_("Supplier regulations"))
widgets.flash()


def _totals(totals: dict) -> str:
    return " + ".join(money(v, cur) for cur, v in totals.items()) or "0"


def _selection() -> dict:
    if ss.get(state.W_REGULATION_SOURCE) == "search":
        criteria: SearchCriteria = ss[state.CRITERIA]
        return {"criteria": criteria}
    return {"numbers": ss.get(state.W_REGULATION_NUMBERS, "")}


st.subheader(_("Dossiers"))
source = st.radio(
    _("Select dossiers by"), list(SOURCES), format_func=SOURCES.__getitem__, key=state.W_REGULATION_SOURCE
)
if source == "search":
    chosen = to_dict(ss[state.CRITERIA])
    if chosen:
        st.write(" · ".join(f"**{_(name)}**: {value}" for name, value in chosen.items()))
    else:
        st.warning(_("The list has no search criteria: search there first."))
    st.page_link("app_pages/liste.py", label=_("Change the search in the list"), icon=":material/search:")
else:
    st.text_area(
        _("Dossier numbers"),
        key=state.W_REGULATION_NUMBERS,
        height=150,
        help=_("One per line, or separated by commas, semicolons or spaces."),
    )

st.subheader(_("Adjustment"))
with st.form("mass_regulation"):
    request = regulation_form.adjustment_fields(state.W_MASS_REGULATION, "EUR")
    if st.form_submit_button(_("Preview")):
        selection = _selection()
        try:
            with UnitOfWork(readers.engine()) as uow:
                shown = preview_mass_regulation(uow, actor, **request, **selection)
        except DomainError as exc:
            ss.pop(state.REGULATION_PREVIEW, None)
            st.error(i18n.error(exc))
        else:
            # The request is kept with its preview: what is applied is what was shown.
            ss[state.REGULATION_PREVIEW] = {"request": {**request, **selection}, "preview": shown}

pending = ss.get(state.REGULATION_PREVIEW)
if pending is not None:
    shown: Preview = pending["preview"]
    # Emptied when the preview turns out stale, so no outdated figures or button stay on screen.
    slot = st.empty()
    with slot.container():
        st.subheader(_("Preview"))
        a, b, c, d = st.columns(4)
        a.metric(_("Dossiers found"), i18n.number(len(shown.eligible) + len(shown.not_eligible)))
        b.metric(_("Eligible"), i18n.number(len(shown.eligible)))
        c.metric(_("Not found"), i18n.number(len(shown.not_found)))
        d.metric(_("Not eligible"), i18n.number(len(shown.not_eligible)))
        a, b, c = st.columns(3)
        a.metric(_("Lines to add"), i18n.number(shown.line_count))
        b.metric(_("Purchase change"), _totals(shown.purchase_totals))
        c.metric(_("Sale change"), _totals(shown.sale_totals))
        if shown.duplicates:
            st.caption(_("{count} numbers pasted twice were counted once.").format(count=shown.duplicates))
        if shown.not_found:
            st.markdown(f"**{_('Not found')}**")
            widgets.table([{_("Dossier"): n} for n in shown.not_found], "")
        if shown.not_eligible:
            st.markdown(f"**{_('Not eligible')}**")
            widgets.table([{_("Dossier"): n, _("Reason"): REASONS[r]} for n, r in shown.not_eligible], "")
        with st.expander(_("Eligible dossiers")):
            widgets.table([{_("Dossier"): n} for n in shown.eligible], _("No eligible dossier."))
        left, right = st.columns(2)
        apply = left.button(
            _("Apply to {count} dossiers").format(count=i18n.number(len(shown.eligible))),
            type="primary",
            disabled=not shown.eligible,
            key="w_regulation_apply",
        )
        if right.button(_("Cancel"), key="w_regulation_cancel"):
            ss.pop(state.REGULATION_PREVIEW, None)
            st.rerun()
    if apply:
        bar = st.progress(0.0, text=PHASES["selection"])
        try:
            with UnitOfWork(readers.engine()) as uow:
                rid = apply_mass_regulation(
                    uow,
                    actor,
                    **pending["request"],
                    preview_token=shown.token,
                    idempotency_key=state.idempotency_key("mass_regulation"),
                    progress=lambda fraction, phase: bar.progress(fraction, text=PHASES[phase]),
                )
        except PreviewChanged as exc:
            ss.pop(state.REGULATION_PREVIEW, None)
            slot.empty()
            bar.empty()
            st.error(i18n.error(exc))
        except DomainError as exc:
            st.error(i18n.error(exc))
        else:
            state.renew_key("mass_regulation")
            ss.pop(state.REGULATION_PREVIEW, None)
            regulation_form.clear(state.W_MASS_REGULATION)
            readers.dossier.clear()
            readers.search_page.clear()
            ss[state.FLASH] = _("Regulation {id} applied to {count} dossiers.").format(
                id=rid, count=i18n.number(len(shown.eligible))
            )
            st.rerun()

st.subheader(_("Past regulations"))
try:
    with UnitOfWork(readers.engine()) as uow:
        past = list_regulations(uow, actor)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()
widgets.table(
    [
        {
            _("Regulation"): r.id,
            _("When"): i18n.moment(r.created_at),
            _("Who"): r.created_by,
            _("supplier_code"): r.supplier_code,
            _("service_kinds"): ", ".join(_(k) for k in r.service_kinds),
            _("mode"): _(r.mode),
            _("purchase_value"): str(r.purchase_value),
            _("sale_value"): str(r.sale_value),
            _("currency"): r.currency or "",
            _("Dossiers"): r.dossier_count,
            _("Lines"): r.line_count,
            _("reason"): r.reason,
            _("Undoes"): r.reverses_regulation_id or "",
            _("Undone by"): r.reversed_by or "",
        }
        for r in past
    ],
    _("No regulations yet."),
)
undoable = [r.id for r in past if r.reverses_regulation_id is None and r.reversed_by is None]
if undoable:
    with st.form("regulation_undo"):
        st.markdown(f"**{_('Undo a regulation')}**")
        chosen_id = st.selectbox(_("regulation_id"), undoable, key=state.W_REGULATION_UNDO_ID)
        undo_reason = st.text_area(_("reason"), key=state.W_REGULATION_UNDO_REASON)
        if st.form_submit_button(_("Undo")):
            bar = st.progress(0.0, text=PHASES["selection"])
            try:
                with UnitOfWork(readers.engine()) as uow:
                    back = undo_regulation(
                        uow,
                        actor,
                        regulation_id=chosen_id,
                        reason=undo_reason,
                        idempotency_key=state.idempotency_key("regulation_undo"),
                        progress=lambda fraction, phase: bar.progress(fraction, text=PHASES[phase]),
                    )
            except DomainError as exc:
                st.error(i18n.error(exc))
            else:
                state.renew_key("regulation_undo")
                ss.pop(state.W_REGULATION_UNDO_REASON, None)
                readers.dossier.clear()
                readers.search_page.clear()
                ss[state.FLASH] = _("Regulation {id} undone by regulation {back}.").format(id=chosen_id, back=back)
                st.rerun()
