"""Modifications and cancellations at the service boundary, against a real PostgreSQL, with the
mails received by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from test_mail_outbox import Server

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.mail.sender import deliver_due
from backoffice.queries.dossier import dossier_view
from backoffice.services.modifications import (
    Decision,
    StaleRequest,
    list_modifications,
    record_modification,
    validate_modification,
)
from backoffice.services.price_adjustments import add_price_adjustment
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

EXTRA_NIGHT = {
    "service_id": "S1",
    "label": "Extra night",
    "quantity": 2,
    "unit_sale_amount": "80.00",
    "unit_purchase_amount": "60.00",
    "vat_rate": "0.10",
}
FEE = {
    "service_id": "S1",
    "label": "Hotel cancellation fee",
    "unit_sale_amount": "150.00",
    "unit_purchase_amount": "100.00",
}


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def two_services(db: sa.Engine, **overrides: Any) -> str:
    """A hotel (S1, 2 x 500.00) and a transfer (S2, 1 x 100.00): sale total 1100.00."""
    return f.dossier(
        db,
        sale_total="1100.00",
        services=[{}, {"service_id": "S2", "kind": "transfer", "supplier_code": "TRF01", "label": "Private transfer"}],
        lines=[
            {"service_id": "S1", "quantity": 2, "unit_sale_amount": "500.00", "unit_purchase_amount": "400.00"},
            {
                "service_id": "S2",
                "label": "Private transfer",
                "unit_sale_amount": "100.00",
                "unit_purchase_amount": "70.00",
                "supplier_code": "TRF01",
            },
        ],
        **overrides,
    )


def line_id(db: sa.Engine, number: str, service_id: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            sa.text("SELECT id FROM app.price_lines WHERE dossier_number = :n AND service_id = :s ORDER BY id LIMIT 1"),
            {"n": number, "s": service_id},
        ).scalar_one()


def record(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> int:
    arguments: dict[str, Any] = {
        "dossier_number": number,
        "kind": "dates",
        "description": "The client stays one more night",
        "lines_to_add": [EXTRA_NIGHT],
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return record_modification(uow, who, **arguments)


def decide(db: sa.Engine, who: Actor, request_id: Any, **overrides: Any) -> Decision:
    arguments: dict[str, Any] = {
        "request_id": request_id,
        "decision": "validate",
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return validate_modification(uow, who, **arguments)


def dossier_state(db: sa.Engine, number: str) -> tuple[int, Decimal, str, int]:
    """(version, stored sale total, status, number of price lines)."""
    with db.connect() as conn:
        version, total, status = conn.execute(
            sa.text("SELECT version, sale_total, status FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).one()
        lines = conn.execute(
            sa.text("SELECT count(*) FROM app.price_lines WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    return version, total, status, lines


def events(db: sa.Engine, *actions: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT actor, action, outcome, dossier_number, before, after, detail FROM audit.events "
                    "WHERE action IN :actions ORDER BY id"
                ).bindparams(sa.bindparam("actions", expanding=True)),
                {"actions": list(actions)},
            )
        )


def received(db: sa.Engine, smtp: Server) -> dict[str, Any]:
    """Deliver the outbox to the SMTP server; the messages it got, by recipient."""
    report = deliver_due(db, "127.0.0.1", smtp.port, now=datetime.now(UTC) + timedelta(minutes=1))
    assert report.failed == report.deferred == 0
    return {m["To"]: m for m in smtp.inbox.messages}


def client_address(number: str) -> str:
    """The factory's client address for dossier BK-2026-<n>."""
    return f"client{int(number[-6:])}@example.com"


def body(message: Any) -> str:
    return message.get_body(("plain",)).get_content()


def test_a_recorded_request_is_pending_and_changes_nothing(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = two_services(db)
    transfer = line_id(db, number, "S2")
    request_id = record(db, alice, number, kind="services", lines_to_cancel=[str(transfer)])
    assert dossier_state(db, number) == (1, Decimal("1100.00"), "confirmed", 2)
    with db.connect() as conn:
        [request] = list_modifications(conn, number)
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar_one() == 0
    assert (request.id, request.state, request.kind, request.recorded_by, request.dossier_version) == (
        request_id,
        "pending",
        "services",
        "alice",
        1,
    )
    assert request.decided_by is None and request.refund_estimate is None
    added, cancelled = request.lines
    assert (added.action, added.label, added.sale_total, added.purchase_total, added.purchase_currency) == (
        "add",
        "Extra night",
        Decimal("160.00"),
        Decimal("120.00"),
        "EUR",
    )
    assert (cancelled.action, cancelled.cancels_line_id, cancelled.label, cancelled.sale_total) == (
        "cancel",
        transfer,
        "Private transfer",
        Decimal("-100.00"),
    )
    [event] = events(db, "record_modification")
    assert (event.actor, event.outcome, event.dossier_number) == ("alice", "done", number)
    assert event.after["request_id"] == request_id and event.after["lines_to_cancel"] == [transfer]


def test_validation_writes_the_lines_and_mails_the_client_and_each_supplier(
    db: sa.Engine, smtp: Server, price_lines_mart: None
) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    f.supplier(db, "HOTEL01", name="Hotel Miramar SA", email="resa@miramar.example", language="fr")
    f.supplier(db, "TRF01", name="Lisbon Transfers", email="ops@transfers.example", language="en")
    number = two_services(db, client_language="en", client_first_name="Jane", client_last_name="Doe")
    transfer = line_id(db, number, "S2")
    request_id = record(db, alice, number, kind="services", lines_to_cancel=[transfer])

    decision = decide(db, bob, request_id)

    assert (decision.state, decision.version, decision.sale_total_after, decision.refund_due) == (
        "validated",
        2,
        Decimal("1160.00"),
        None,
    )
    assert len(decision.mail_ids) == 3
    assert dossier_state(db, number) == (2, Decimal("1160.00"), "confirmed", 4)
    with db.connect() as conn:
        view = dossier_view(conn, number)
    by_label = {(line.origin, line.label, line.sale_total): line.is_active for line in view.devis.lines}
    assert by_label == {
        ("booking", "Double room", Decimal("1000.00")): True,
        ("booking", "Private transfer", Decimal("100.00")): False,
        ("modification", "Private transfer", Decimal("-100.00")): False,
        ("modification", "Extra night", Decimal("160.00")): True,
    }
    assert view.devis.sale_total == view.summary.sale_total == Decimal("1160.00")
    [request] = view.modifications
    assert (request.state, request.decided_by, request.sale_total_after, request.unmailed) == (
        "validated",
        "bob",
        Decimal("1160.00"),
        (),
    )
    [event] = events(db, "validate_modification")
    assert (event.actor, event.outcome, event.dossier_number) == ("bob", "done", number)
    assert event.before["dossier_version"] == 1 and event.after["dossier_version"] == 2
    assert event.after["reversed_line_ids"] == [transfer]

    mails = received(db, smtp)
    assert set(mails) == {client_address(number), "resa@miramar.example", "ops@transfers.example"}
    client = mails[client_address(number)]
    assert client["Subject"] == f"Your booking {number} has been changed"
    text = body(client)
    assert "Dear Jane Doe," in text and "Your request: The client stays one more night" in text
    assert "- Added: Extra night (x2), €160.00" in text and "- Removed: Private transfer (x1), €100.00" in text
    assert "New total price: €1,160.00." in text
    hotel = mails["resa@miramar.example"]
    assert hotel["Subject"] == f"Modification de la réservation REF-{int(number[-6:])}-1 (dossier {number})"
    assert "Bonjour Hotel Miramar SA," in body(hotel) and "- Ajouté : Extra night (x2), 120,00\u00a0€" in body(hotel)
    assert "Private transfer" not in body(hotel)
    transfers = mails["ops@transfers.example"]
    assert transfers["Subject"].startswith("Change of booking REF-")
    assert "- Removed: Private transfer (x1), €70.00" in body(transfers) and "Extra night" not in body(transfers)


def test_a_cancellation_cancels_everything_but_its_fees_and_states_the_refund(
    db: sa.Engine, smtp: Server, price_lines_mart: None
) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    f.supplier(db, "TRF01", name="Lisbon Transfers", email="ops@transfers.example", language="en")
    number = two_services(db)
    f.payment(db, number, "1000.00")
    f.payment(db, number, "-100.00", status="refunded")
    f.payment(db, number, "500.00", status="failed")
    with UnitOfWork(db) as uow:  # a line without a service: cancelling the services would not stop it counting
        add_price_adjustment(
            uow,
            alice,
            dossier_number=number,
            label="Loyalty discount",
            quantity=1,
            unit_sale_amount="-50.00",
            unit_purchase_amount="0",
            vat_rate="0",
            reason="loyal client",
            expected_version=1,
            idempotency_key=uuid.uuid4().hex,
        )
    request_id = record(
        db, alice, number, kind="cancellation", description="Client ill", lines_to_add=[], fee_lines=[FEE],
        expected_version=2,
    )  # fmt: skip
    with db.connect() as conn:
        [pending] = list_modifications(conn, number)
    assert pending.refund_estimate == Decimal("750.00")  # 900.00 paid net, less the 150.00 fee

    decision = decide(db, bob, request_id)

    assert (decision.sale_total_after, decision.refund_due) == (Decimal("150.00"), Decimal("750.00"))
    assert dossier_state(db, number) == (3, Decimal("150.00"), "cancelled", 5)
    with db.connect() as conn:
        view = dossier_view(conn, number)
    assert {s.service_id: s.status for s in view.services} == {"S1": "cancelled", "S2": "cancelled"}
    assert [(line.origin, line.sale_total) for line in view.devis.lines if line.is_active] == [
        ("cancellation_fee", Decimal("150.00"))
    ]
    assert view.devis.sale_total == view.summary.sale_total == Decimal("150.00")
    [request] = view.modifications
    assert request.refund_due == Decimal("750.00") and request.refund_estimate is None
    # HOTEL01 has no row in app.suppliers, so no address: said on the request, not silently dropped.
    assert request.unmailed == ({"recipient": "supplier HOTEL01", "reason": "no e-mail address"},)

    mails = received(db, smtp)
    assert set(mails) == {client_address(number), "ops@transfers.example"}
    client = mails[client_address(number)]
    assert client["Subject"] == f"Annulation de votre dossier {number}"
    assert "Frais d'annulation : 150,00\u00a0€." in body(client)
    assert "Montant qui vous sera remboursé : 750,00\u00a0€." in body(client)
    transfers = mails["ops@transfers.example"]
    assert transfers["Subject"].startswith("Cancellation of booking REF-")
    assert "- Cancelled: Private transfer" in body(transfers)


def test_the_refund_is_never_negative(db: sa.Engine) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    number = f.dossier(db)
    f.payment(db, number, "100.00")
    request_id = record(db, alice, number, kind="cancellation", lines_to_add=[], fee_lines=[FEE])
    assert decide(db, bob, request_id).refund_due == Decimal("0.00")


def test_a_refusal_keeps_who_and_why_and_changes_nothing(db: sa.Engine) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    number = two_services(db)
    request_id = record(db, alice, number)
    with pytest.raises(InvalidInput) as refused:
        decide(db, bob, request_id, decision="refuse", reason="  ")
    assert refused.value.field == "reason"
    decision = decide(db, bob, request_id, decision="refuse", reason="the hotel is full that night")
    assert (decision.state, decision.version, decision.mail_ids) == ("refused", 2, ())
    assert dossier_state(db, number) == (1, Decimal("1100.00"), "confirmed", 2)
    with db.connect() as conn:
        [request] = list_modifications(conn, number)
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar_one() == 0
    assert (request.state, request.decided_by, request.refusal_reason) == (
        "refused",
        "bob",
        "the hotel is full that night",
    )
    assert request.decided_at is not None
    [event] = [e for e in events(db, "refuse_modification") if e.outcome == "done"]
    assert event.after["reason"] == "the hotel is full that night" and event.dossier_number == number


def test_a_dossier_changed_since_the_request_is_refused_as_stale_then_the_request_can_be_refused(
    db: sa.Engine,
) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    number = two_services(db)
    first, second = record(db, alice, number), record(db, alice, number)
    decide(db, bob, first)
    with pytest.raises(StaleRequest) as stale:
        decide(db, bob, second)
    assert isinstance(stale.value, StaleVersion)
    assert f"dossier {number} changed since this request was recorded (recorded on version 1, now 2)" in str(
        stale.value
    )
    assert dossier_state(db, number) == (2, Decimal("1260.00"), "confirmed", 3)
    [refusal] = [e for e in events(db, "validate_modification") if e.outcome == "refused"]
    assert refusal.dossier_number == number and "changed since this request was recorded" in refusal.detail
    assert decide(db, bob, second, decision="refuse", reason="stale: recorded again").state == "refused"


def test_a_stale_dossier_version_is_refused_at_recording(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = two_services(db)
    with pytest.raises(StaleVersion, match="your version 3, now 1"):
        record(db, alice, number, expected_version=3)
    with db.connect() as conn:
        assert list_modifications(conn, number) == []


def test_a_request_decided_meanwhile_is_refused(db: sa.Engine) -> None:
    alice, bob, carol = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent"), actor(db, "carol", "admin")
    number = two_services(db)
    request_id = record(db, alice, number)
    decide(db, bob, request_id)
    with pytest.raises(StaleVersion, match=f"modification request {request_id} was changed by someone else"):
        decide(db, carol, request_id, decision="refuse", reason="too late")
    with pytest.raises(InvalidInput, match="is already validated"):
        decide(db, carol, request_id, expected_version=2)
    assert dossier_state(db, number)[0] == 2


def test_same_key_same_request_returns_the_first_result_other_request_refused(db: sa.Engine) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    number = two_services(db)
    key = uuid.uuid4().hex
    request_id = record(db, alice, number, idempotency_key=key)
    assert record(db, alice, number, idempotency_key=key) == request_id
    with pytest.raises(IdempotencyConflict):
        record(db, alice, number, idempotency_key=key, description="Another request")
    decision_key = uuid.uuid4().hex
    first = decide(db, bob, request_id, idempotency_key=decision_key)
    assert decide(db, bob, request_id, idempotency_key=decision_key) == first
    with pytest.raises(IdempotencyConflict):
        decide(db, bob, request_id, idempotency_key=decision_key, decision="refuse", reason="no")
    with db.connect() as conn:
        assert len(list_modifications(conn, number)) == 1
        assert conn.execute(sa.text("SELECT count(*) FROM app.outbox_mails")).scalar_one() == 1
    assert dossier_state(db, number)[0] == 2


@pytest.mark.parametrize("role", ["accountant"])
def test_a_role_without_record_modification_is_refused_and_audited(db: sa.Engine, role: str) -> None:
    number = two_services(db)
    with pytest.raises(PermissionDenied, match="record_modification"):
        record(db, actor(db, "carla", role), number)
    [refusal] = events(db, "record_modification")
    assert (refusal.actor, refusal.outcome, refusal.dossier_number) == ("carla", "refused", number)


@pytest.mark.parametrize("role", ["agent", "accountant"])
@pytest.mark.parametrize("decision", ["validate", "refuse"])
def test_a_role_without_validate_modification_is_refused_and_audited(db: sa.Engine, role: str, decision: str) -> None:
    number = two_services(db)
    request_id = record(db, actor(db, "alice", "senior_agent"), number)
    with pytest.raises(PermissionDenied, match="validate_modification"):
        decide(db, actor(db, "dan", role), request_id, decision=decision, reason="no")
    action = "refuse_modification" if decision == "refuse" else "validate_modification"
    [refusal] = events(db, action)
    assert (refusal.actor, refusal.outcome, refusal.dossier_number) == ("dan", "refused", number)
    with db.connect() as conn:
        assert list_modifications(conn, number)[0].state == "pending"


@pytest.mark.parametrize("role", ["senior_agent", "admin"])
def test_the_roles_granted_validate_modification_may_decide(db: sa.Engine, role: str) -> None:
    number = two_services(db)
    request_id = record(db, actor(db, "alice", "agent"), number)
    assert decide(db, actor(db, "erin", role), request_id).state == "validated"


BAD_INPUT = [
    ({"kind": "weather"}, "kind", "is not one of"),
    ({"description": " "}, "description", "is required"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "unit_sale_amount": "10.005"}]}, "lines_to_add", "line 1, unit_sale_amount"),
    ({"lines_to_add": [EXTRA_NIGHT, {**EXTRA_NIGHT, "quantity": 0}]}, "lines_to_add", "line 2, quantity"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "vat_rate": "1.5"}]}, "lines_to_add", "line 1, vat_rate"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "unit_purchase_amount": 1.5}]}, "lines_to_add", "not a float"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "label": ""}]}, "lines_to_add", "line 1, label: is required"),
    ({"lines_to_add": [{"label": "Late checkout"}]}, "lines_to_add", "line 1, unit_sale_amount: is required"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "service_id": "S9"}]}, "lines_to_add", "S9 is not a service of"),
    ({"lines_to_add": [{**EXTRA_NIGHT, "purchase_currency": "EURO"}]}, "lines_to_add", "ISO 4217"),
    ({"lines_to_cancel": [999999]}, "lines_to_cancel", "not a line of the Devis"),
    ({"lines_to_cancel": ["x"]}, "lines_to_cancel", "not a whole number"),
    ({"fee_lines": [FEE]}, "fee_lines", "only a cancellation"),
    ({"kind": "cancellation"}, "lines_to_add", "a cancellation adds fee lines"),
    (
        {"kind": "cancellation", "lines_to_add": [], "fee_lines": [{**FEE, "unit_sale_amount": "-1.00"}]},
        "fee_lines",
        "a fee is positive",
    ),
]


def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = two_services(db)
    for overrides, field, problem in BAD_INPUT:
        with pytest.raises(InvalidInput) as refused:
            record(db, alice, number, **overrides)
        assert (refused.value.field, problem in refused.value.problem) == (field, True), refused.value
    with db.connect() as conn:
        assert list_modifications(conn, number) == []
    assert [e.outcome for e in events(db, "record_modification")] == ["refused"] * len(BAD_INPUT)


def test_unknown_or_cancelled_dossiers_and_unknown_requests_are_refused(db: sa.Engine) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    with pytest.raises(NotFound, match="dossier BK-1999-000000 does not exist"):
        record(db, alice, "BK-1999-000000")
    cancelled = f.dossier(db, status="cancelled")
    with pytest.raises(InvalidInput, match="is already cancelled"):
        record(db, alice, cancelled, lines_to_add=[])
    with pytest.raises(NotFound, match="modification request 424242 does not exist"):
        decide(db, bob, 424242)
    with pytest.raises(InvalidInput) as refused:
        decide(db, bob, 1, decision="maybe")
    assert refused.value.field == "decision"
    outcomes = [(e.action, e.outcome) for e in events(db, "record_modification", "validate_modification")]
    assert outcomes == [("record_modification", "refused")] * 2 + [("validate_modification", "refused")] * 2


def test_the_database_keeps_decided_requests_and_request_lines_as_they_are(db: sa.Engine) -> None:
    alice, bob = actor(db, "alice", "agent"), actor(db, "bob", "senior_agent")
    request_id = record(db, alice, two_services(db))
    decide(db, bob, request_id)
    for statement in (
        "UPDATE app.modification_requests SET state = 'refused', refusal_reason = 'x', sale_total_after = NULL "
        "WHERE id = :id",
        "DELETE FROM app.modification_requests WHERE id = :id",
        "UPDATE app.modification_request_lines SET label = 'other' WHERE request_id = :id",
        "DELETE FROM app.modification_request_lines WHERE request_id = :id",
    ):
        with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
            conn.execute(sa.text(statement), {"id": request_id})
