"""The dossier view: every section assembled, the Devis read from the dbt mart with its totals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import NotFound
from backoffice.queries.dossier import dossier_view
from backoffice.services import audit


def test_every_section_of_a_dossier(db: sa.Engine, price_lines_mart: None) -> None:
    number = f.dossier(
        db,
        client_first_name="Jean",
        client_last_name="Dupont",
        sale_total="2300.00",
        platform_version=2,
        services=[
            {"service_id": "H1", "label": "Hotel Miramar"},
            {
                "service_id": "F1",
                "kind": "flight",
                "supplier_code": "AIR01",
                "label": "Paris-Lisbonne",
                "status": "cancelled",
            },
        ],
        lines=[
            {
                "line_id": "L1",
                "service_id": "H1",
                "booking_version": 2,
                "label": "Double room",
                "quantity": 2,
                "unit_sale_amount": "1000.00",
                "unit_purchase_amount": "800.00",
            },
            {
                "line_id": "L2",
                "service_id": "F1",
                "booking_version": 2,
                "label": "Flight",
                "quantity": 2,
                "unit_sale_amount": "150.00",
                "unit_purchase_amount": "120.00",
                "purchase_currency": "USD",
            },
            {
                "line_id": "L0",
                "service_id": "H1",
                "booking_version": 1,
                "label": "Single room (old version)",
                "quantity": 1,
                "unit_sale_amount": "900.00",
                "unit_purchase_amount": "700.00",
            },
            {
                "line_id": "R1",
                "service_id": "H1",
                "origin": "regulation",
                "booking_version": None,
                "label": "Hotel price regulation",
                "unit_sale_amount": "0.00",
                "unit_purchase_amount": "35.50",
                "reason": "supplier regulation",
                "created_by": "alice",
            },
        ],
        travellers=[
            {"first_name": "Jean", "last_name": "Dupont"},
            {"first_name": "Zoé", "last_name": "Dupont", "kind": "child"},
        ],
        schedule=[
            {"due_date": accounting_today() - timedelta(days=10), "amount": "600.00"},
            {"due_date": accounting_today() + timedelta(days=20), "amount": "1700.00", "kind": "balance"},
        ],
    )
    f.payment(db, number, "400.00")
    f.payment(db, number, "600.00", status="failed")
    with db.begin() as conn:
        audit.record(conn, "alice", "record_payment", dossier_number=number, after={"amount": "400.00"})
        audit.record(conn, "bob", "note", dossier_number="BK-OTHER")

    with db.connect() as conn:
        view = dossier_view(conn, number)

    assert view.summary.dossier_number == number and view.summary.sale_total == Decimal("2300.00")
    assert (view.client.first_name, view.client.last_name, view.client.address["city"]) == ("Jean", "Dupont", "Paris")
    assert [t.first_name for t in view.travellers] == ["Jean", "Zoé"]
    assert [s.service_id for s in view.services] == ["F1", "H1"]
    devis = view.devis
    assert [(line.label, line.origin, line.is_active) for line in devis.lines] == [
        ("Double room", "booking", True),
        ("Flight", "booking", False),
        ("Hotel price regulation", "regulation", True),
    ]
    assert devis.sale_total == Decimal("2000.00")
    assert devis.purchase_totals == {"EUR": Decimal("1635.50")}
    assert [p.amount for p in view.schedule] == [Decimal("600.00"), Decimal("1700.00")]
    assert [p.status for p in view.payments] == ["captured", "failed"]
    assert (view.due_to_date, view.paid_total, view.balance_outstanding) == (
        Decimal("600.00"),
        Decimal("400.00"),
        Decimal("200.00"),
    )
    assert [(e.actor, e.action) for e in view.history] == [("alice", "record_payment")]
    assert view.modifications == view.documents == view.client_invoices == ()


def test_unknown_dossier_is_not_found(db: sa.Engine, price_lines_mart: None) -> None:
    with db.connect() as conn, pytest.raises(NotFound):
        dossier_view(conn, "BK-0000-000000")
