"""Every session-state key the app uses, declared here so pages never invent one.

Widgets are forgotten by Streamlit when their page is not shown, so what must survive a visit
to another page (the search, its sort and page) lives under keys no widget owns; widget keys
(prefix `w_`) are seeded from them each time the page is drawn.
"""

from __future__ import annotations

import uuid

import streamlit as st

from backoffice.domain.permissions import Actor
from backoffice.queries.criteria import SearchCriteria
from backoffice.services.sessions import Session

ACTOR = "actor"
LOCALE = "locale"
CRITERIA = "criteria"
SORT = "sort"
DESCENDING = "descending"
PAGE = "page"
PAGE_SIZE = "page_size"
OPEN_DOSSIER = "open_dossier"
# A section id of the Dossier page (its SECTIONS) to show when it opens next, e.g. "payments".
OPEN_SECTION = "open_section"
# Bumped to give the results table a fresh key: its old row selection must not reopen a dossier.
RESULTS_GENERATION = "results_generation"
IDEMPOTENCY_KEYS = "idempotency_keys"
FLASH = "flash"

W_SORT = "w_sort"
W_DESCENDING = "w_descending"
W_PAGE_SIZE = "w_page_size"
W_SAVE_NAME = "w_save_name"
W_SAVE_SHARE = "w_save_share"
W_OPEN_NUMBER = "w_open_number"
W_DOSSIER_TAB = "w_dossier_tab"
W_LOGIN = "w_login"
W_PASSWORD = "w_password"
W_NEW_PASSWORD = "w_new_password"
W_NEW_PASSWORD_AGAIN = "w_new_password_again"
# The login whose one-time password was just accepted: the login page then asks for a new one.
PASSWORD_CHANGE = "password_change"
# Why the last session ended (backoffice.services.sessions: idle, expired, account_closed...),
# shown once on the login page; and the token of the open session (its row in app.sessions).
SESSION_ENDED = "session_ended"
SESSION_TOKEN = "session_token"
# A one-time password the Admin page shows once, after the rerun that follows its creation.
ONE_TIME_PASSWORD = "one_time_password"
RESULTS_TABLE = "w_results"
# Admin page. Per-account widgets add `_<login>` so each account's form starts from its own values.
W_ADMIN_USER = "w_admin_user"
W_ADMIN_NEW_LOGIN = "w_admin_new_login"
W_ADMIN_NEW_NAME = "w_admin_new_name"
W_ADMIN_NEW_ROLE = "w_admin_new_role"
W_ADMIN_NEW_LOCALE = "w_admin_new_locale"
W_ADMIN_EDIT_NAME = "w_admin_edit_name"
W_ADMIN_EDIT_ROLE = "w_admin_edit_role"
W_ADMIN_NEW_ROLE_ID = "w_admin_new_role_id"
W_ADMIN_NEW_ROLE_LABEL = "w_admin_new_role_label"
# The matrix editor's key is `w_admin_matrix_<generation>`: a new generation drops its pending edits.
W_ADMIN_MATRIX = "w_admin_matrix"
ADMIN_MATRIX_GENERATION = "admin_matrix_generation"
# The roles (with their versions) the matrix editor was drawn from, kept until it is saved or reloaded.
ADMIN_ROLES_SEEN = "admin_roles_seen"
# Regulations page: the request and the preview shown, kept until applied or cancelled.
REGULATION_PREVIEW = "regulation_preview"
W_REGULATION_SOURCE = "w_regulation_source"
W_REGULATION_NUMBERS = "w_regulation_numbers"
W_REGULATION_UNDO_ID = "w_regulation_undo_id"
W_REGULATION_UNDO_REASON = "w_regulation_undo_reason"
# The regulation forms' adjustment widgets are `<prefix><field>`: the mass page's, and the Devis tab's.
W_MASS_REGULATION = "w_mass_regulation_"
W_DOSSIER_REGULATION = "w_dossier_regulation_"
# Search form widgets: one per SearchCriteria field, named `w_criterion_<field>`.
FORM_PREFIX = "w_criterion_"
# Payments tab and the queue of payments without a dossier. A confirmation shown once after a write
# (kept apart from FLASH, which the Documents tab shows and consumes on the same run).
PAYMENTS_FLASH = "payments_flash"
# The queue's assignment waiting for the agent's confirmation: payment, dossier, its version, reason.
PENDING_ASSIGNMENT = "pending_assignment"
W_PAY_METHOD = "w_pay_method"
W_PAY_AMOUNT = "w_pay_amount"
W_PAY_RECEIVED_ON = "w_pay_received_on"
W_PAY_VOUCHER = "w_pay_voucher"
W_PAY_REFERENCE = "w_pay_reference"
W_PAY_PAYER = "w_pay_payer"
W_PAY_NOTE = "w_pay_note"
W_REFUND_PAYMENT = "w_refund_payment"
W_REFUND_AMOUNT = "w_refund_amount"
W_REFUND_REASON = "w_refund_reason"
# Per pending refund: `w_refund_decision_<id>`.
W_REFUND_DECISION = "w_refund_decision"
W_ASSIGN_PAYMENT = "w_assign_payment"
W_ASSIGN_DOSSIER = "w_assign_dossier"
W_ASSIGN_REASON = "w_assign_reason"
# Modifications tab: a confirmation shown once after a write (apart from FLASH, for the same reason
# as PAYMENTS_FLASH); the record form's widgets; per request, `w_decide_reason_<id>`.
MODIFICATION_FLASH = "modification_flash"
W_MODIFICATION_KIND = "w_modification_kind"
W_MODIFICATION_DESCRIPTION = "w_modification_description"
W_MODIFICATION_CANCEL = "w_modification_cancel"
W_MODIFICATION_ADD = "w_modification_add"
W_MODIFICATION_FEES = "w_modification_fees"
W_DECIDE_REASON = "w_decide_reason"
W_SUPPLIER_CODE = "w_supplier_code"
# Reconciliation workbench: the filters applied, the keyset of each page opened so far (page n
# starts after cursors[n - 1]), a confirmation shown once, the suggestions counted for a bulk confirm.
RECON_FILTERS = "recon_filters"
RECON_CURSORS = "recon_cursors"
RECON_FLASH = "recon_flash"
RECON_BULK = "recon_bulk"
W_RECON_LINE = "w_recon_line"
W_RECON_ACTION = "w_recon_action"
W_RECON_DOSSIER = "w_recon_dossier"
W_RECON_SPLIT = "w_recon_split"
W_RECON_REASON = "w_recon_reason"
# Supplier invoices page: the search applied, a confirmation shown once, and what waits for
# "Register" after its preview: the typed invoice (the service's arguments) or the dropped file.
SI_SEARCH = "si_search"
SI_FLASH = "si_flash"
SI_FORM_REQUEST = "si_form_request"
SI_FILE = "si_file"
W_SI_LINE_COUNT = "w_si_line_count"
# The registration form's widgets are `w_si_<field>`, its line widgets `w_si_line_<n>_<field>`.
W_SI = "w_si_"

DEFAULTS = {
    CRITERIA: SearchCriteria(),
    SORT: "departure_date",
    DESCENDING: False,
    PAGE: 1,
    PAGE_SIZE: 25,
    RESULTS_GENERATION: 0,
}


def init() -> None:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(IDEMPOTENCY_KEYS, {})


def actor() -> Actor | None:
    return st.session_state.get(ACTOR)


def sign_in(who: Actor) -> None:
    st.session_state[ACTOR] = who
    st.session_state[LOCALE] = who.locale


def start_session(session: Session) -> None:
    st.session_state[SESSION_TOKEN] = session.token
    sign_in(session.actor)


def session_token() -> str | None:
    return st.session_state.get(SESSION_TOKEN)


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def idempotency_key(form: str) -> str:
    """The key of this render of `form`: stable across reruns until `renew_key` after success."""
    return st.session_state[IDEMPOTENCY_KEYS].setdefault(form, uuid.uuid4().hex)


def renew_key(form: str) -> None:
    st.session_state[IDEMPOTENCY_KEYS].pop(form, None)


def results_table_key() -> str:
    return f"{RESULTS_TABLE}_{st.session_state[RESULTS_GENERATION]}"


def open_dossier(number: str) -> None:
    st.session_state[OPEN_DOSSIER] = number
    st.session_state[RESULTS_GENERATION] += 1
