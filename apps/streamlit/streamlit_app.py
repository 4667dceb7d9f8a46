"""The router: who is logged in decides which pages exist. Run: streamlit run apps/streamlit/streamlit_app.py"""

import streamlit as st
from ui import i18n, mail_loop, state, widgets

st.set_page_config(page_title="Back-office", page_icon=":material/luggage:", layout="wide")
state.init()
mail_loop.start()
widgets.refresh_actor()
_ = i18n.gettext

if state.actor() is None:
    pages = [st.Page("app_pages/login.py", title=_("Log in"), icon=":material/login:", url_path="login")]
else:
    widgets.account_sidebar()
    pages = [
        st.Page("app_pages/liste.py", title=_("Dossiers"), icon=":material/search:", url_path="liste", default=True),
        st.Page("app_pages/dossier.py", title=_("Dossier"), icon=":material/folder_open:", url_path="dossier"),
    ]
    if state.actor().can("record_payment"):
        pages.append(
            st.Page(
                "app_pages/unattributed.py",
                title=_("Payments without a dossier"),
                icon=":material/account_balance:",
                url_path="unattributed",
            )
        )
    if state.actor().can("mass_regulation"):
        pages.append(
            st.Page(
                "app_pages/regulations.py",
                title=_("Regulations"),
                icon=":material/price_change:",
                url_path="regulations",
            )
        )
    if state.actor().can("reconcile"):
        pages.append(
            st.Page(
                "app_pages/reconciliation.py",
                title=_("Reconciliation"),
                icon=":material/rule:",
                url_path="reconciliation",
            )
        )
        pages.append(
            st.Page(
                "app_pages/supplier_invoices.py",
                title=_("Supplier invoices"),
                icon=":material/request_quote:",
                url_path="supplier_invoices",
            )
        )
    if state.actor().can("view_accounting"):
        pages.append(
            st.Page(
                "app_pages/exports.py",
                title=_("Accounting exports"),
                icon=":material/receipt_long:",
                url_path="exports",
            )
        )
        pages.append(
            st.Page(
                "app_pages/accounting_search.py",
                title=_("Accounting search"),
                icon=":material/manage_search:",
                url_path="accounting-search",
            )
        )
    if state.actor().can("view_accounting"):
        pages.append(
            st.Page(
                "app_pages/dashboards.py",
                title=_("Dashboards"),
                icon=":material/monitoring:",
                url_path="dashboards",
            )
        )
    if state.actor().can("manage_suppliers"):
        pages.append(
            st.Page("app_pages/suppliers.py", title=_("Suppliers"), icon=":material/storefront:", url_path="suppliers")
        )
    if state.actor().can("view_outbox"):
        pages.append(
            st.Page("app_pages/outbox.py", title=_("Outbox"), icon=":material/outgoing_mail:", url_path="outbox")
        )
    if state.actor().can("manage_users"):
        pages.append(
            st.Page("app_pages/admin.py", title=_("Admin"), icon=":material/admin_panel_settings:", url_path="admin")
        )
st.navigation(pages).run()
