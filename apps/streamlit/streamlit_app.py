"""The router: who is logged in decides which pages exist. Run: streamlit run apps/streamlit/streamlit_app.py"""

import streamlit as st
from ui import i18n, mail_loop, state, widgets

st.set_page_config(page_title="Back-office", page_icon=":material/luggage:", layout="wide")
state.init()
mail_loop.start()
widgets.refresh_actor()
_ = i18n.gettext

if state.actor() is None:
    st.navigation([st.Page("app_pages/login.py", title=_("Log in"), icon=":material/login:", url_path="login")]).run()
    st.stop()

widgets.account_sidebar()
# (section, permission or None for everyone, script, title, icon, url path), in menu order.
PAGES = [
    (_("Dossiers"), None, "liste.py", _("Dossiers"), "search", "liste"),
    (_("Dossiers"), None, "dossier.py", _("Dossier"), "folder_open", "dossier"),
    (_("Dossiers"), "record_payment", "unattributed.py", _("Payments without a dossier"), "account_balance",
     "unattributed"),
    (_("Dossiers"), "mass_regulation", "regulations.py", _("Regulations"), "price_change", "regulations"),
    (_("Accounting"), "reconcile", "reconciliation.py", _("Reconciliation"), "rule", "reconciliation"),
    (_("Accounting"), "reconcile", "supplier_invoices.py", _("Supplier invoices"), "request_quote",
     "supplier_invoices"),
    (_("Accounting"), "view_accounting", "exports.py", _("Accounting exports"), "receipt_long", "exports"),
    (_("Accounting"), "view_accounting", "accounting_search.py", _("Accounting search"), "manage_search",
     "accounting-search"),
    (_("Accounting"), "view_accounting", "dashboards.py", _("Dashboards"), "monitoring", "dashboards"),
    (_("Administration"), "manage_suppliers", "suppliers.py", _("Suppliers"), "storefront", "suppliers"),
    (_("Administration"), "view_outbox", "outbox.py", _("Outbox"), "outgoing_mail", "outbox"),
    (_("Administration"), "manage_users", "admin.py", _("Admin"), "admin_panel_settings", "admin"),
]  # fmt: skip
sections: dict[str, list[st.Page]] = {}
for section, permission, script, title, icon, url_path in PAGES:
    if permission is None or state.actor().can(permission):
        page = st.Page(f"app_pages/{script}", title=title, icon=f":material/{icon}:", url_path=url_path,
                       default=url_path == "liste")  # fmt: skip
        sections.setdefault(section, []).append(page)
st.navigation(sections).run()
