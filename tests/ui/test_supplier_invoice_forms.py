"""Supplier invoices through AppTest: the dossier's tab, and the accounting space's page (the list,
the typed invoice and the dropped file, each previewed, refused when bad, then registered).

One data set for the module: supplier HOTUI, one dossier expecting 550.00 from it, invoice FUI-1
(registered through the service, naming the dossier: matched automatically), and the billing
marts built by dbt once per test database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_app import log_in

from backoffice.dbt_runner import run_dbt
from backoffice.domain.clock import accounting_today
from backoffice.domain.permissions import Actor
from backoffice.generator.catalog import Supplier
from backoffice.generator.supplier_invoices import Intent, InvoiceDoc
from backoffice.generator.ubl import render_ubl
from backoffice.services import supplier_invoice_registration as registration
from backoffice.services.unit_of_work import UnitOfWork

TAB = 8  # Devis, Client, Travellers, Services, Payments, Modifications, Documents, Client invoices, Supplier invoices
PREVIEW = "FormSubmitter:supplier_invoice_form-Aperçu"
READ_FILE = "FormSubmitter:supplier_invoice_file-Lire le fichier"
TODAY = accounting_today()


@pytest.fixture(scope="module")
def si_data(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate')
                     AND tablename NOT IN ('roles', 'permissions', 'role_permissions')"""
            )
        ).scalars()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        conn.execute(
            sa.text(
                """INSERT INTO app.suppliers (supplier_code, name, country, vat_number, currency, ledger_account)
                   VALUES ('HOTUI', 'Hotel Interface', 'FR', 'FR66123456789', 'EUR', '401HOTUI')"""
            )
        )
    number = f.dossier(
        engine,
        services=[{"service_id": "H1", "supplier_code": "HOTUI", "label": "Hotel Interface"}],
        lines=[{"service_id": "H1", "unit_purchase_amount": "550.00", "supplier_code": "HOTUI"}],
    )
    f.user(engine, "carla", "accountant", f.PASSWORD, locale="fr")
    with engine.connect() as conn:
        built = conn.execute(
            sa.text("SELECT to_regclass('marts.supplier_billing_status') IS NOT NULL "
                    "AND to_regclass('reference.exchange_rates') IS NOT NULL")
        ).scalar_one()  # fmt: skip
    if not built:
        run_dbt(["seed", "--select", "exchange_rates"], database_url)
        run_dbt(["run", "--select", "+supplier_billing_status", "+supplier_invoice_line_matches"], database_url)
    with UnitOfWork(engine) as uow:
        registration.register_form(
            uow,
            Actor("carla", "accountant", frozenset({"reconcile"})),
            supplier_code="HOTUI",
            invoice_number="FUI-1",
            invoice_date=TODAY,
            currency="EUR",
            lines=[{"reference": number, "description": "Nuitees", "amount_excl_tax": "500.00", "vat_rate": "0.10"}],
            idempotency_key=uuid.uuid4().hex,
        )
    st.cache_data.clear()
    yield number
    st.cache_data.clear()


def open_page() -> AppTest:
    return log_in("carla").switch_page("app_pages/supplier_invoices.py").run()


def held(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT i.invoice_number, i.origin, i.source_file, count(*) FROM app.supplier_invoices i
                   JOIN app.supplier_invoice_lines USING (supplier_code, invoice_number)
                   GROUP BY 1, 2, 3 ORDER BY 1"""
            )
        )
        return [tuple(r) for r in rows]


def test_the_dossier_tab_shows_the_matched_lines_and_the_billing_status(si_data: str) -> None:
    at = log_in("carla")
    at.session_state["open_dossier"] = si_data
    at.session_state["open_section"] = "supplier_invoices"
    at = at.switch_page("app_pages/dossier.py").run()
    assert not at.exception
    billing, lines = at.tabs[TAB].dataframe[0].value, at.tabs[TAB].dataframe[1].value
    assert list(billing["Fournisseur"]) == ["HOTUI · Hotel Interface"]
    assert list(billing["Statut"]) == ["facturé"]
    assert list(lines["Facture"]) == ["FUI-1"]
    assert list(lines["État"]) == ["automatique"]
    assert list(lines["Référence"]) == [si_data]


def test_a_typed_invoice_is_previewed_refused_when_bad_then_registered(engine: sa.Engine, si_data: str) -> None:
    at = open_page()
    assert not at.exception
    assert list(at.dataframe[0].value["Facture"]) == ["FUI-1"]
    at.text_input(key="w_si_invoice_number").input("FUI-2")
    at.text_input(key="w_si_line_1_reference").input(si_data)
    at.text_input(key="w_si_line_1_description").input("Petit-déjeuner")
    at.text_input(key="w_si_line_1_amount_excl_tax").input("40.00")
    at.text_input(key="w_si_line_1_vat_rate").input("0.10")
    at.text_input(key="w_si_line_1_amount_incl_tax").input("45.00")
    at = at.button(key=PREVIEW).click().run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("lines[1].amount_incl_tax: 45.00 is not amount_excl_tax 40.00")
    assert not [b for b in at.button if b.key == "w_si_register_form"]
    at.text_input(key="w_si_line_1_amount_incl_tax").input("")  # computed from the net amount and the rate
    at = at.button(key=PREVIEW).click().run()
    assert not at.error
    assert any("nouvelle : sera enregistrée" in m.value for m in at.markdown)
    at = at.button(key="w_si_register_form").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Enregistrée(s) : FUI-2 (1 lignes)."]
    listed = at.dataframe[0].value
    assert list(listed["Facture"]) == ["FUI-1", "FUI-2"]
    assert set(listed["Origine"]) == {"saisie manuelle"}
    assert ("FUI-2", "manual", "manual/form", 1) in held(engine)


def _ubl(number: str, reference: str) -> bytes:
    supplier = Supplier(
        "HOTUI", "Hotel Interface", "FR", "FR66123456789", "FR76", "EUR", 30, "hotel", "ubl", "after_service", "0.10",
        "", False,
    )  # fmt: skip
    lines = (Intent(0, "HOTUI", "invoice", "Diner", 2000, 2200, "0.10", reference, "dossier_number", reference),)
    return render_ubl(
        InvoiceDoc(supplier, number, "invoice", TODAY.isoformat(), (TODAY + timedelta(30)).isoformat(), lines)
    )


def test_a_dropped_file_is_previewed_then_registered_and_a_bad_one_refused(engine: sa.Engine, si_data: str) -> None:
    at = open_page()
    at.file_uploader(key="w_si_file").set_value(("broken.xml", b"<Invoice", "text/xml"))
    at = at.button(key=READ_FILE).click().run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("Fichier: not well-formed XML")
    assert not [b for b in at.button if b.key == "w_si_register_file"]
    at.file_uploader(key="w_si_file").set_value(("fui3.xml", _ubl("FUI-3", si_data), "text/xml"))
    at = at.button(key=READ_FILE).click().run()
    assert not at.error
    assert any("FUI-3" in m.value and "nouvelle" in m.value for m in at.markdown)
    at = at.button(key="w_si_register_file").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Enregistrée(s) : FUI-3 (1 lignes)."]
    assert ("FUI-3", "manual", "manual/fui3.xml", 1) in held(engine)
