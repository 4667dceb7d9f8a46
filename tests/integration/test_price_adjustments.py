"""Price adjustments: a manual line in the Devis, with its reason, rights, version, idempotency and audit."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.ingest import load_bookings_day
from backoffice.queries.dossier import dossier_view
from backoffice.services.price_adjustments import add_price_adjustment
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def adjust(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> int:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "service_id": "S1",
        "label": "Late checkout",
        "quantity": 1,
        "unit_sale_amount": "50.00",
        "unit_purchase_amount": "30.00",
        "purchase_currency": "EUR",
        "vat_rate": "0.20",
        "reason": "client asked at the desk",
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return add_price_adjustment(uow, who, **arguments)


def events(db: sa.Engine) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT actor, outcome, dossier_number, before, after, detail FROM audit.events "
                    "WHERE action = 'price_adjustment' ORDER BY id"
                )
            )
        )


def state(db: sa.Engine, number: str) -> tuple[int, Decimal, int]:
    """(version, stored sale total, number of price lines) of the dossier."""
    with db.connect() as conn:
        version, total = conn.execute(
            sa.text("SELECT version, sale_total FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).one()
        lines = conn.execute(
            sa.text("SELECT count(*) FROM app.price_lines WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    return version, total, lines


def test_the_line_appears_in_the_devis_with_its_reason_and_the_totals_follow(
    db: sa.Engine, price_lines_mart: None
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db, sale_total="1000.00", services=[{}, {"service_id": "S2", "supplier_code": "TRF09"}])
    line_id = adjust(db, alice, number, service_id="S2", quantity=2)
    discount = adjust(
        db,
        alice,
        number,
        service_id=None,
        label="Loyalty discount",
        unit_sale_amount="-80.00",
        unit_purchase_amount="0",
        reason="loyal client",
        expected_version=2,
    )
    with db.connect() as conn:
        view = dossier_view(conn, number)
        row = conn.execute(
            sa.text(
                "SELECT origin, reason, created_by, supplier_code, service_id, sale_total, purchase_total, is_active "
                "FROM marts.dossier_price_lines WHERE line_key = :k"
            ),
            {"k": str(line_id)},
        ).one()
    assert tuple(row) == (
        "adjustment",
        "client asked at the desk",
        "alice",
        "TRF09",
        "S2",
        Decimal("100.00"),
        Decimal("60.00"),
        True,
    )
    [free] = [line for line in view.devis.lines if line.line_key == str(discount)]
    assert (free.origin, free.sale_total, free.purchase_total, free.supplier_code) == (
        "adjustment",
        Decimal("-80.00"),
        Decimal("0.00"),
        None,
    )
    assert view.devis.sale_total == Decimal("1020.00") == view.summary.sale_total
    assert view.devis.purchase_totals == {"EUR": Decimal("860.00")}
    assert view.summary.version == 3
    first, second = events(db)
    assert (first.actor, first.outcome, first.dossier_number) == ("alice", "done", number)
    assert first.before == {"version": 1, "sale_total": "1000.00"}
    assert (first.after["version"], first.after["sale_total"], first.after["price_line_id"]) == (2, "1100.00", line_id)
    assert first.after["reason"] == "client asked at the desk" and second.after["sale_total"] == "1020.00"


def test_a_line_of_a_cancelled_service_is_shown_but_not_counted(db: sa.Engine, price_lines_mart: None) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db, services=[{}, {"service_id": "S2", "status": "cancelled"}])
    adjust(db, alice, number, service_id="S2")
    with db.connect() as conn:
        view = dossier_view(conn, number)
    assert [line.is_active for line in view.devis.lines if line.origin == "adjustment"] == [False]
    assert view.devis.sale_total == Decimal("1000.00") == view.summary.sale_total


def test_a_stale_version_is_refused_and_nothing_is_written(db: sa.Engine) -> None:
    alice, sam = actor(db, "alice", "agent"), actor(db, "sam", "senior_agent")
    number = f.dossier(db)
    adjust(db, sam, number)
    before = state(db, number)
    with pytest.raises(StaleVersion, match=r"your version 1, now 2"):
        adjust(db, alice, number, expected_version=1)
    assert state(db, number) == before == (2, Decimal("1050.00"), 2)
    assert [e.outcome for e in events(db)] == ["done", "refused"]


def test_a_concurrent_change_between_read_and_write_is_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    with UnitOfWork(db) as uow:
        # Another agent's change commits after this request read the dossier, before it writes.
        original = uow.conn.execute
        bumped = False

        def execute(statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal bumped
            if not bumped and "UPDATE app.dossiers d SET version" in str(statement):
                bumped = True
                with db.begin() as other:
                    other.execute(
                        sa.text("UPDATE app.dossiers SET version = version + 1 WHERE dossier_number = :n"),
                        {"n": number},
                    )
            return original(statement, *args, **kwargs)

        uow.conn.execute = execute  # type: ignore[method-assign]
        with pytest.raises(StaleVersion, match=r"your version 1, now 2"):
            add_price_adjustment(
                uow,
                alice,
                dossier_number=number,
                label="Extra night",
                quantity=1,
                unit_sale_amount="90.00",
                unit_purchase_amount="70.00",
                vat_rate="0",
                reason="client stays longer",
                expected_version=1,
                idempotency_key=uuid.uuid4().hex,
            )
    assert state(db, number) == (2, Decimal("1000.00"), 1)


def test_same_key_same_request_returns_the_first_line_other_request_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    request_key = uuid.uuid4().hex
    first = adjust(db, alice, number, idempotency_key=request_key)
    assert adjust(db, alice, number, idempotency_key=request_key) == first
    with pytest.raises(IdempotencyConflict):
        adjust(db, alice, number, idempotency_key=request_key, unit_sale_amount="51.00")
    assert state(db, number) == (2, Decimal("1050.00"), 2)
    assert [e.outcome for e in events(db)] == ["done"]


@pytest.mark.parametrize("role", ["accountant"])
def test_a_role_without_the_permission_is_refused_and_the_refusal_audited(db: sa.Engine, role: str) -> None:
    carla = actor(db, "carla", role)
    number = f.dossier(db)
    with pytest.raises(PermissionDenied, match="price_adjustment"):
        adjust(db, carla, number)
    assert state(db, number) == (1, Decimal("1000.00"), 1)
    [refusal] = events(db)
    assert (refusal.actor, refusal.outcome, refusal.dossier_number) == ("carla", "refused", number)
    assert "price_adjustment" in refusal.detail


@pytest.mark.parametrize("role", ["agent", "senior_agent", "admin"])
def test_the_roles_granted_the_permission_may_adjust(db: sa.Engine, role: str) -> None:
    number = f.dossier(db)
    adjust(db, actor(db, f"user_{role}", role), number)
    assert state(db, number) == (2, Decimal("1050.00"), 2)


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"reason": "  "}, "reason", "is required"),
        ({"label": ""}, "label", "is required"),
        ({"unit_sale_amount": "10.005"}, "unit_sale_amount", "more than 2 decimals"),
        ({"unit_purchase_amount": 12.5}, "unit_purchase_amount", "not a float"),
        ({"unit_sale_amount": "0", "unit_purchase_amount": "0.00"}, "unit_sale_amount", "non-zero"),
        ({"quantity": 0}, "quantity", "between 1 and"),
        ({"vat_rate": "1.5"}, "vat_rate", "between 0 and 1"),
        ({"purchase_currency": "EURO"}, "purchase_currency", "ISO 4217"),
        ({"service_id": "S9"}, "service_id", "is not a service of dossier"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    db: sa.Engine, overrides: dict[str, Any], field: str, problem: str
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    with pytest.raises(InvalidInput) as refused:
        adjust(db, alice, number, **overrides)
    assert refused.value.field == field and problem in refused.value.problem
    assert state(db, number) == (1, Decimal("1000.00"), 1)
    assert [e.outcome for e in events(db)] == ["refused"]


def test_a_service_of_another_dossier_is_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    f.dossier(db, services=[{}, {"service_id": "S2"}])
    with pytest.raises(InvalidInput) as refused:
        adjust(db, alice, number, service_id="S2")
    assert refused.value.field == "service_id" and f"not a service of dossier {number}" in refused.value.problem
    assert state(db, number) == (1, Decimal("1000.00"), 1)


def test_an_unknown_dossier_is_refused_and_audited(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    with pytest.raises(NotFound, match="dossier BK-1999-000000 does not exist"):
        adjust(db, alice, "BK-1999-000000")
    [refusal] = events(db)
    assert (refusal.outcome, refusal.dossier_number) == ("refused", "BK-1999-000000")


def test_the_database_refuses_to_update_or_delete_an_adjustment(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    line_id = adjust(db, alice, f.dossier(db))
    for statement in (
        "UPDATE app.price_lines SET reason = 'nothing happened' WHERE id = :id",
        "DELETE FROM app.price_lines WHERE id = :id",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="immutable"), db.begin() as conn:
            conn.execute(sa.text(statement), {"id": line_id})
    with db.connect() as conn:
        assert conn.execute(
            sa.text("SELECT reason FROM app.price_lines WHERE id = :id"), {"id": line_id}
        ).scalar_one() == ("client asked at the desk")


def test_a_new_platform_version_keeps_the_adjustment_in_the_stored_total(db: sa.Engine, price_lines_mart: None) -> None:
    landing = Path(__file__).parents[1] / "fixtures" / "landing"
    load_bookings_day(date(2026, 11, 25), landing, db)
    number = "BK-2026-000001"
    adjust(db, actor(db, "alice", "agent"), number, service_id=None, unit_sale_amount="100.00")
    assert state(db, number)[:2] == (2, Decimal("1550.02"))
    load_bookings_day(date(2026, 11, 26), landing, db)
    with db.connect() as conn:
        view = dossier_view(conn, number)
    # 870.00 from the platform's version 2 (see test_ingest_bookings), plus the adjustment
    assert view.summary.sale_total == view.devis.sale_total == Decimal("970.00")
    assert view.summary.version == 3
