"""Dossier: everything about one dossier, section by section. Opened from Liste or by number."""

from functools import partial

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile
from ui import (
    i18n,
    invoices_section,
    modifications_section,
    payments_section,
    readers,
    regulation_form,
    state,
    supplier_invoices_section,
    widgets,
)

from backoffice.documents import filetypes
from backoffice.domain.errors import DomainError, NotFound
from backoffice.services.documents import (
    CATEGORIES,
    Document,
    default_storage,
    read_version,
    replace_document,
    upload_document,
)
from backoffice.services.price_adjustments import add_price_adjustment
from backoffice.services.travel_book import send_travel_book, set_travel_book
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
ss = st.session_state

with st.sidebar.form("open_by_number"):
    typed = st.text_input(_("Open a dossier by number"), key=state.W_OPEN_NUMBER, placeholder="BK-2026-000123")
    if st.form_submit_button(_("Open")) and typed.strip():
        ss[state.OPEN_DOSSIER] = typed.strip().upper()

number = ss.get(state.OPEN_DOSSIER)
if not number:
    st.title(_("Dossier"))
    st.info(_("Choose a dossier in the list, or type its number in the sidebar."))
    st.page_link("app_pages/liste.py", label=_("Back to the list"), icon=":material/arrow_back:")
    st.stop()

try:
    view = readers.dossier(number)
except NotFound:
    st.title(number)
    st.error(_("There is no dossier {number}.").format(number=number))
    st.stop()

s, client, currency = view.summary, view.client, view.summary.currency
money = i18n.money

st.page_link("app_pages/liste.py", label=_("Back to the list"), icon=":material/arrow_back:")
st.title(f"{s.dossier_number} · {client.last_name.upper()} {client.first_name}")

st.subheader(_("Summary"))
a, b, c, d = st.columns(4)
a.metric(_("Status"), _(s.status))
b.metric(_("Departure"), i18n.day(s.departure_date))
c.metric(_("Sale total"), money(s.sale_total, currency))
d.metric(_("Balance outstanding"), money(view.balance_outstanding, currency))
st.write(
    f"**{_('Brand')}**: {s.brand} · **{_('channels')}**: {_(s.channel)} · **{_('Destination')}**: "
    f"{s.destination} ({s.destination_country}) · **{_('Return')}**: {i18n.day(s.return_date)} · "
    f"**{_('Booked')}**: {i18n.moment(s.created_at)} · **{_('Updated')}**: {i18n.moment(s.updated_at)}"
    + (f" · **{_('Agency')}**: {s.agency_code}" if s.agency_code else "")
)

# Only the open section is drawn (a stateful tabs widget reruns on a switch): drawing all ten,
# tables included, took the browser seconds on a busy dossier. Other pages and tests open a given
# section by putting its id in state.OPEN_SECTION before switching here.
SECTIONS = {
    "devis": _("Devis"),
    "client": _("Client"),
    "travellers": _("Travellers"),
    "services": _("Services"),
    "payments": _("Payments"),
    "modifications": _("Modifications"),
    "documents": _("Documents"),
    "invoices": _("Client invoices"),
    "supplier_invoices": _("Supplier invoices"),
    "history": _("History"),
}
wanted = ss.pop(state.OPEN_SECTION, None)
if wanted in SECTIONS:
    ss[state.W_DOSSIER_TAB] = SECTIONS[wanted]
tabs = st.tabs(list(SECTIONS.values()), key=state.W_DOSSIER_TAB, on_change="rerun")
devis, client_tab, travellers, services, payments, modifications, documents, invoices, supplier, history = tabs

ADJUSTMENT_WIDGETS = (
    "w_adjust_service",
    "w_adjust_label",
    "w_adjust_quantity",
    "w_adjust_vat",
    "w_adjust_sale",
    "w_adjust_purchase",
    "w_adjust_currency",
    "w_adjust_reason",
)

if devis.open:
    with devis:
        widgets.table(
            [
                {
                    _("Service"): line.service_label or "",
                    _("Origin"): _(line.origin),
                    _("Label"): line.label,
                    _("Quantity"): line.quantity,
                    _("Unit sale"): money(line.unit_sale_amount, line.sale_currency),
                    _("Sale total"): money(line.sale_total, line.sale_currency),
                    _("Unit purchase"): money(line.unit_purchase_amount, line.purchase_currency),
                    _("Purchase total"): money(line.purchase_total, line.purchase_currency),
                    _("VAT"): i18n.percent(line.vat_rate),
                    _("Active"): line.is_active,
                    _("Created by"): line.created_by,
                    _("Reason"): line.reason or "",
                }
                for line in view.devis.lines
            ],
            _("No price lines."),
        )
        a, b = st.columns(2)
        a.metric(_("Sale total (active lines)"), money(view.devis.sale_total, currency))
        b.metric(
            _("Purchase total (active lines)"),
            " + ".join(money(v, cur) for cur, v in view.devis.purchase_totals.items()) or money(0, currency),
        )
        who = state.actor()
        if who is not None and who.can("price_adjustment"):
            # Not cleared on submit, so a refused form keeps what was typed; emptied after success.
            with st.form("price_adjustment"):
                st.markdown(f"**{_('Add a price adjustment')}**")
                service_ids = ["", *(sv.service_id for sv in view.services)]
                service_labels = {"": _("No service")} | {
                    sv.service_id: f"{sv.service_id} · {sv.label}" for sv in view.services
                }
                chosen_service = st.selectbox(
                    _("service_id"),
                    service_ids,
                    format_func=service_labels.__getitem__,
                    key="w_adjust_service",
                )
                adjust_label = st.text_input(_("label"), key="w_adjust_label")
                left, right = st.columns(2)
                adjust_quantity = left.number_input(
                    _("quantity"), min_value=1, value=1, step=1, key="w_adjust_quantity"
                )
                adjust_vat = right.text_input(
                    _("vat_rate"), value="0", key="w_adjust_vat", help=_("A rate: 0.20 for 20 %.")
                )
                adjust_sale = left.text_input(
                    _("unit_sale_amount"), value="0.00", key="w_adjust_sale", help=_("Negative for a discount.")
                )
                adjust_purchase = right.text_input(_("unit_purchase_amount"), value="0.00", key="w_adjust_purchase")
                adjust_currency = right.text_input(_("purchase_currency"), value=currency, key="w_adjust_currency")
                adjust_reason = st.text_area(_("reason"), key="w_adjust_reason")
                if st.form_submit_button(_("Add the adjustment")):
                    try:
                        with UnitOfWork(readers.engine()) as uow:
                            add_price_adjustment(
                                uow,
                                who,
                                dossier_number=number,
                                service_id=chosen_service or None,
                                label=adjust_label,
                                quantity=int(adjust_quantity),
                                unit_sale_amount=adjust_sale,
                                unit_purchase_amount=adjust_purchase,
                                purchase_currency=adjust_currency.strip().upper(),
                                vat_rate=adjust_vat,
                                reason=adjust_reason,
                                expected_version=s.version,
                                idempotency_key=state.idempotency_key("price_adjustment"),
                            )
                    except DomainError as exc:
                        st.error(i18n.error(exc))
                    else:
                        # The new line and totals are the confirmation: the page is drawn again from the database.
                        state.renew_key("price_adjustment")
                        for widget in ADJUSTMENT_WIDGETS:
                            ss.pop(widget, None)
                        readers.dossier.clear()
                        st.rerun()
        if who is not None:
            regulation_form.render(view, who)

if client_tab.open:
    with client_tab:
        address = client.address or {}
        st.write(f"**{_('Name')}**: {client.title or ''} {client.first_name} {client.last_name}")
        st.write(
            f"**{_('email')}**: {client.email or ''} · **{_('Phone')}**: {client.phone or ''} · "
            f"**{_('Language')}**: {client.language}"
        )
        st.write(
            f"**{_('Address')}**: "
            + ", ".join(str(address[k]) for k in ("line1", "postal_code", "city", "country") if address.get(k))
        )

if travellers.open:
    with travellers:
        widgets.table(
            [
                {
                    _("Name"): f"{t.last_name.upper()} {t.first_name}",
                    _("Kind"): _(t.kind),
                    _("Birth date"): i18n.day(t.birth_date),
                }
                for t in view.travellers
            ],
            _("No travellers."),
        )

if services.open:
    with services:
        widgets.table(
            [
                {
                    _("Kind"): _(v.kind),
                    _("Label"): v.label,
                    _("supplier_code"): v.supplier_code,
                    _("supplier_reference"): v.supplier_reference or "",
                    _("From"): i18n.day(v.start_date),
                    _("To"): i18n.day(v.end_date),
                    _("Status"): _(v.status),
                }
                for v in view.services
            ],
            _("No services."),
        )

if payments.open:
    with payments:
        payments_section.render(view)

if modifications.open:
    with modifications:
        modifications_section.render(view, state.actor())
# Literal ids, so the catalog check sees every category label.
CATEGORY_LABELS = {
    "ticket": _("ticket"),
    "voucher": _("voucher"),
    "insurance": _("insurance"),
    "itinerary": _("itinerary"),
    "other": _("other"),
}


def document_bytes(version_id: int) -> bytes:
    """Read only when the download is clicked, so drawing the tab reads no file."""
    with readers.engine().connect() as conn:
        return read_version(conn, default_storage(), version_id)[2]


def upload_files(files: list[UploadedFile], title: str, category: str) -> None:
    """One transaction per file; keys derive from the form's, so resubmitting after a partial
    failure replays the files already stored instead of adding them twice."""
    form_key = state.idempotency_key("upload_documents")
    failures = []
    for index, file in enumerate(files):
        try:
            with UnitOfWork(readers.engine()) as uow:
                upload_document(
                    uow,
                    actor,
                    number,
                    title.strip() or file.name,
                    category,
                    file.name,
                    file.getvalue(),
                    idempotency_key=f"{form_key}-{index}",
                )
        except DomainError as exc:
            failures.append(f"{file.name}: {i18n.error(exc)}")
    readers.dossier.clear()
    if failures:
        for failure in failures:
            st.error(failure)
        return
    state.renew_key("upload_documents")
    ss[state.FLASH] = _("{count} documents added.").format(count=len(files))
    st.rerun()


def replace_file(document: Document, file: UploadedFile) -> None:
    form = f"replace_document_{document.id}"
    try:
        with UnitOfWork(readers.engine()) as uow:
            replace_document(
                uow,
                actor,
                document.id,
                file.name,
                file.getvalue(),
                expected_version=document.current.version,
                idempotency_key=state.idempotency_key(form),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    state.renew_key(form)
    readers.dossier.clear()
    ss[state.FLASH] = _("New version saved.")
    st.rerun()


TRAVEL_BOOK_MODES = {
    "automatic": _("Automatic: sent when complete, sent again after each new version"),
    "manual": _("Manual: sent when an agent asks"),
}
SENDING_REASONS = {
    "completed": _("Marked complete"),
    "manual": _("Sent by an agent"),
    "new_version": _("New version"),
}
TRAVEL_BOOK_WIDGETS = ("w_travel_book_complete", "w_travel_book_mode")


def save_travel_book(complete: bool, mode: str) -> None:
    try:
        with UnitOfWork(readers.engine()) as uow:
            change = set_travel_book(
                uow,
                actor,
                dossier_number=number,
                complete=complete,
                mode=mode,
                expected_version=s.version,
                idempotency_key=state.idempotency_key("travel_book"),
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    state.renew_key("travel_book")
    for widget in TRAVEL_BOOK_WIDGETS:
        ss.pop(widget, None)
    readers.dossier.clear()
    ss[state.FLASH] = _("Travel book queued for the client.") if change.sending_id else _("Travel book saved.")
    st.rerun()


def send_book_now() -> None:
    try:
        with UnitOfWork(readers.engine()) as uow:
            send_travel_book(
                uow, actor, dossier_number=number, idempotency_key=state.idempotency_key("send_travel_book")
            )
    except DomainError as exc:
        st.error(i18n.error(exc))
        return
    state.renew_key("send_travel_book")
    readers.dossier.clear()
    ss[state.FLASH] = _("Travel book queued for the client.")
    st.rerun()


actor = state.actor()
can_manage = actor is not None and actor.can("manage_documents")

if documents.open:
    with documents:
        widgets.flash()
        st.markdown(f"**{_('Travel book')}**")
        current_ids = tuple(sorted(d.current.id for d in view.documents))
        last_sent = view.travel_book_sendings[0] if view.travel_book_sendings else None
        up_to_date = last_sent is not None and last_sent.version_ids == current_ids
        st.caption(
            (_("Complete") if view.travel_book_complete else _("Not complete"))
            + " · "
            + TRAVEL_BOOK_MODES[view.travel_book_mode]
            + " · "
            + (
                _("The client has the current versions.")
                if up_to_date
                else _("The client does not have the current versions.")
            )
        )
        if can_manage:
            with st.form("travel_book"):
                chosen_complete = st.toggle(
                    _("Travel book complete"), value=view.travel_book_complete, key="w_travel_book_complete"
                )
                chosen_mode = st.radio(
                    _("Sending"),
                    list(TRAVEL_BOOK_MODES),
                    index=list(TRAVEL_BOOK_MODES).index(view.travel_book_mode),
                    format_func=TRAVEL_BOOK_MODES.get,
                    key="w_travel_book_mode",
                )
                if st.form_submit_button(_("Save")):
                    save_travel_book(chosen_complete, chosen_mode)
            ready = view.travel_book_complete and view.documents and not up_to_date
            if ready and st.button(_("Send the travel book now"), key="w_send_travel_book"):
                send_book_now()
        widgets.table(
            [
                {
                    _("When"): i18n.moment(sending.sent_at),
                    _("Who"): sending.sent_by,
                    _("Why"): SENDING_REASONS[sending.reason],
                    _("Versions"): ", ".join(
                        f"{d.title} ({_('version {version}').format(version=d.version)})" for d in sending.documents
                    ),
                    _("Attached"): sending.attached,
                    _("Recipient"): sending.to_address,
                    _("Mail"): _(sending.mail_state),
                }
                for sending in view.travel_book_sendings
            ],
            _("The travel book has not been sent yet."),
        )
        if not view.documents:
            st.caption(_("No documents."))
        for document in view.documents:
            with st.container(border=True):
                st.markdown(
                    f"**{document.title}** · {CATEGORY_LABELS[document.category]} · "
                    + _("version {version}").format(version=document.current.version)
                )
                widgets.table(
                    [
                        {
                            _("Version"): v.version,
                            _("File"): v.original_filename,
                            _("Size"): i18n.number(v.size_bytes),
                            _("Uploaded"): i18n.moment(v.uploaded_at),
                            _("By"): v.uploaded_by,
                            _("SHA-256"): v.sha256,
                        }
                        for v in document.versions
                    ],
                    "",
                )
                for v in document.versions:
                    button, uploaded = st.columns([1, 2], vertical_alignment="center")
                    button.download_button(
                        _("Download version {version}").format(version=v.version),
                        data=partial(document_bytes, v.id),
                        file_name=v.original_filename,
                        mime=v.media_type,
                        key=f"w_download_{v.id}",
                        on_click="ignore",
                    )
                    uploaded.caption(
                        _("{file}, uploaded {when} by {who}").format(
                            file=v.original_filename, when=i18n.moment(v.uploaded_at), who=v.uploaded_by
                        )
                    )
                if can_manage:
                    with st.form(f"replace_document_{document.id}", clear_on_submit=True):
                        new = st.file_uploader(
                            _("New version"), type=filetypes.ACCEPTED_EXTENSIONS, key=f"w_replace_{document.id}"
                        )
                        if st.form_submit_button(_("Replace")):
                            if new is None:
                                st.error(_("Choose a file first."))
                            else:
                                replace_file(document, new)
        if can_manage:
            with st.form("upload_documents", clear_on_submit=True):
                st.markdown(f"**{_('Add documents')}**")
                chosen = st.file_uploader(
                    _("Files (PDF or images)"),
                    type=filetypes.ACCEPTED_EXTENSIONS,
                    accept_multiple_files=True,
                    key="w_documents_files",
                )
                typed_title = st.text_input(_("title"), key="w_documents_title", help=_("Empty: each file's name."))
                picked = st.selectbox(
                    _("category"), CATEGORIES, format_func=CATEGORY_LABELS.get, key="w_documents_category"
                )
                if st.form_submit_button(_("Upload")):
                    if not chosen:
                        st.error(_("Choose a file first."))
                    else:
                        upload_files(chosen, typed_title, picked)
if invoices.open:
    with invoices:
        invoices_section.render(view)
if supplier.open:
    with supplier:
        supplier_invoices_section.render(view)

if history.open:
    with history:
        widgets.table(
            [
                {
                    _("When"): i18n.moment(e.occurred_at),
                    _("Who"): e.actor,
                    _("Action"): e.action,
                    _("Outcome"): _(e.outcome),
                    _("Detail"): e.detail or "",
                }
                for e in view.history
            ],
            _("No history."),
        )
