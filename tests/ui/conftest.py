"""UI fixtures: a user and a few dossiers in the test database, and the Devis mart built once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import factories as f
import pytest
import sqlalchemy as sa
import streamlit as st

from backoffice.domain.clock import accounting_today


@pytest.fixture
def seeded(db: sa.Engine) -> Iterator[dict[str, str]]:
    """Two accounts (French agent, English senior agent) and two dossiers; Streamlit's caches start empty."""
    st.cache_data.clear()
    f.user(db, "alice", "agent", f.PASSWORD, locale="fr")
    f.user(db, "bob", "senior_agent", f.PASSWORD, locale="en")
    dupont = f.dossier(
        db,
        client_first_name="Jean",
        client_last_name="Dupont",
        destination="Lisbonne",
        departure_date=accounting_today() + timedelta(days=10),
        sale_total="2480.00",
        services=[
            {"service_id": "F1", "kind": "flight", "supplier_code": "AIR01", "label": "Paris - Lisbonne"},
            {"service_id": "H1", "label": "Hotel Miramar"},
            {"service_id": "T1", "kind": "transfer", "supplier_code": "TRF01", "label": "Airport transfer"},
        ],
        lines=[
            {
                "service_id": "F1",
                "label": "Vol aller-retour",
                "quantity": 2,
                "unit_sale_amount": "210.00",
                "unit_purchase_amount": "180.00",
                "vat_rate": "0",
                "supplier_code": "AIR01",
            },
            {
                "service_id": "H1",
                "label": "Chambre double vue mer",
                "quantity": 2,
                "unit_sale_amount": "980.00",
                "unit_purchase_amount": "790.00",
                "vat_rate": "0.10",
            },
            {
                "service_id": "T1",
                "label": "Transfert privé",
                "unit_sale_amount": "100.00",
                "unit_purchase_amount": "70.00",
                "vat_rate": "0.20",
                "supplier_code": "TRF01",
            },
            {
                "service_id": "H1",
                "origin": "regulation",
                "booking_version": None,
                "label": "Régularisation hôtel",
                "unit_purchase_amount": "35.50",
                "reason": "Taxe de séjour",
                "created_by": "bob",
            },
        ],
        schedule=[
            {"due_date": accounting_today() - timedelta(days=20), "amount": "500.00"},
            {"due_date": accounting_today() - timedelta(days=1), "amount": "1980.00", "kind": "balance"},
        ],
    )
    f.payment(db, dupont, "500.00")
    martin = f.dossier(
        db,
        client_first_name="Claire",
        client_last_name="Martin",
        destination="Rome",
        status="option",
        sale_total="990.00",
    )
    yield {"dupont": dupont, "martin": martin}
    st.cache_data.clear()
