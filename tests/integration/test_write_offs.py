"""Write-offs and "turn into a regulation" of supplier invoice differences, at the service boundary,
against the real PostgreSQL and the dbt views (billing status, OD entries) read live.

One data set for the module: supplier WOSUP, dossiers that each expect 800.00 from it (2 x 400.00)
and one invoice whose lines name each dossier by number (matched automatically by dbt): invoiced
812.00 (+12.00), 790.00 (-10.00), 900.00 (+100.00), 805.00 (+5.00), 800.00 (no difference), and a
dossier with two services of WOSUP invoiced 830.00.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt
from backoffice.domain.errors import InvalidInput, PermissionDenied
from backoffice.domain.permissions import Actor
from backoffice.queries import reconciliation as workbench
from backoffice.services import write_offs
from backoffice.services.unit_of_work import UnitOfWork

SUPPLIER = "WOSUP"
ACCOUNTANT = Actor("compta", "accountant", frozenset({"reconcile", "write_off", "regulation"}))
AGENT = Actor("agent1", "agent", frozenset({"search_dossiers", "regulation"}))
INVOICED = {"gain": "812.00", "loss": "790.00", "big": "900.00", "stale": "805.00", "even": "800.00", "two": "830.00"}


def _key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def data(engine: Engine, database_url: str) -> Iterator[dict[str, str]]:
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate', 'marts')
                     AND tablename NOT IN ('roles', 'permissions', 'role_permissions')"""
            )
        ).scalars()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    f.supplier(engine, SUPPLIER)
    line = {"service_id": "S1", "quantity": 2, "unit_purchase_amount": "400.00", "supplier_code": SUPPLIER}
    numbers = {
        name: f.dossier(
            engine,
            services=[{"supplier_code": SUPPLIER}, *([{"supplier_code": SUPPLIER}] if name == "two" else [])],
            lines=[line],
        )
        for name in INVOICED
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                       sha256, source_file)
                   VALUES (:s, 'WO-1', 'invoice', current_date, 'EUR', md5('WO-1'), 'test')"""
            ),
            {"s": SUPPLIER},
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       description, amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES (:s, 'WO-1', :n, :ref, 'Sejour', :amount, 0, :amount)"""
            ),
            [
                {"s": SUPPLIER, "n": n, "ref": numbers[name], "amount": Decimal(amount)}
                for n, (name, amount) in enumerate(INVOICED.items(), start=1)
            ],
        )
    # One dbt invocation (build takes the seeds the selection needs); the tests are other modules'.
    run_dbt(
        [
            "build",
            "--select",
            "+supplier_invoice_line_matches +supplier_billing_status +int_entries__write_offs",
            "--exclude",
            "resource_type:test resource_type:unit_test",
        ],
        database_url,
    )
    yield numbers


def status(engine: Engine, number: str) -> tuple:
    with engine.connect() as conn:
        d = workbench.difference(conn, number, SUPPLIER)
    assert d is not None
    return (d.status, d.invoiced_amount - d.expected_amount, d.written_off_amount, d.remaining)


def entries(engine: Engine, number: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    """SELECT e.source_id::bigint - w0.first_id AS nth, account, aux_account, debit, credit
                       FROM intermediate.int_entries__write_offs e
                       CROSS JOIN (SELECT min(id) AS first_id FROM app.write_offs WHERE dossier_number = :n) w0
                       WHERE dossier_number = :n ORDER BY source_id::bigint, account"""
                ),
                {"n": number},
            )
        ]


def refused(engine: Engine, action: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT detail FROM audit.events WHERE action = :a AND outcome = 'refused' ORDER BY id"),
                {"a": action},
            ).scalars()
        )


def test_write_off_settles_the_difference_posts_od_and_undo_reverses(engine: Engine, data: dict[str, str]) -> None:
    number = data["gain"]
    assert status(engine, number) == ("over_invoiced", Decimal("12.00"), Decimal("0.00"), Decimal("12.00"))
    key = _key()
    request = {"dossier_number": number, "supplier_code": SUPPLIER, "amount_seen": "12.00", "reason": "not worth it"}
    with UnitOfWork(engine) as uow:
        first = write_offs.write_off(uow, ACCOUNTANT, **request, idempotency_key=key)
    with UnitOfWork(engine) as uow:  # replayed: the first result, nothing written twice
        assert write_offs.write_off(uow, ACCOUNTANT, **request, idempotency_key=key) == first
    assert status(engine, number) == ("invoiced", Decimal("12.00"), Decimal("12.00"), Decimal("0.00"))
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM app.write_offs WHERE id = :i"), {"i": first}).one()
        done = conn.execute(
            sa.text("SELECT count(*) FROM audit.events WHERE action = 'write_off' AND outcome = 'done'")
        ).scalar_one()
    assert (row.amount, row.invoiced_amount, row.expected_amount, row.currency, row.threshold, row.created_by) == (
        Decimal("12.00"),
        Decimal("812.00"),
        Decimal("800.00"),
        "EUR",
        Decimal("50.00"),
        "compta",
    )
    assert done == 1
    # Nothing left to write off now.
    with UnitOfWork(engine) as uow, pytest.raises(InvalidInput) as nothing:
        write_offs.write_off(uow, ACCOUNTANT, **{**request, "amount_seen": "0.00"}, idempotency_key=_key())
    assert nothing.value.field == "amount_seen"
    # The database refuses to change it; the undo is a new row.
    with engine.begin() as conn, pytest.raises(sa.exc.DBAPIError, match="immutable"):
        conn.execute(sa.text("UPDATE app.write_offs SET amount = 1 WHERE id = :i"), {"i": first})
    with UnitOfWork(engine) as uow:
        undo = write_offs.undo_write_off(uow, ACCOUNTANT, write_off_id=first, reason="asked", idempotency_key=_key())
    assert status(engine, number) == ("over_invoiced", Decimal("12.00"), Decimal("0.00"), Decimal("12.00"))
    with UnitOfWork(engine) as uow, pytest.raises(InvalidInput, match="already undone"):
        write_offs.undo_write_off(uow, ACCOUNTANT, write_off_id=first, reason="again", idempotency_key=_key())
    # OD: a gain on the supplier's account, then its reversal on the same accounts.
    assert entries(engine, number) == [
        (0, "401", "401WOSUP", Decimal("12.00"), Decimal("0.00")),
        (0, "758", None, Decimal("0.00"), Decimal("12.00")),
        (undo - first, "401", "401WOSUP", Decimal("0.00"), Decimal("12.00")),
        (undo - first, "758", None, Decimal("12.00"), Decimal("0.00")),
    ]


def test_under_invoice_written_off_is_a_loss(engine: Engine, data: dict[str, str]) -> None:
    number = data["loss"]
    with UnitOfWork(engine) as uow:
        write_offs.write_off(
            uow,
            ACCOUNTANT,
            dossier_number=number,
            supplier_code=SUPPLIER,
            amount_seen="-10.00",
            reason="supplier rounding",
            idempotency_key=_key(),
        )
    assert status(engine, number) == ("invoiced", Decimal("-10.00"), Decimal("-10.00"), Decimal("0.00"))
    assert entries(engine, number) == [
        (0, "401", "401WOSUP", Decimal("0.00"), Decimal("10.00")),
        (0, "658", None, Decimal("10.00"), Decimal("0.00")),
    ]


def test_write_off_refusals_name_the_field(engine: Engine, data: dict[str, str]) -> None:
    def attempt(name: str, seen: str, actor: Actor = ACCOUNTANT, reason: str = "why") -> None:
        with UnitOfWork(engine) as uow:
            write_offs.write_off(
                uow,
                actor,
                dossier_number=data[name],
                supplier_code=SUPPLIER,
                amount_seen=seen,
                reason=reason,
                idempotency_key=_key(),
            )

    before = len(refused(engine, "write_off"))
    cases = [
        ("big", "100.00", "amount_seen", "beyond the write-off threshold"),
        ("stale", "4.00", "amount_seen", "is now 5.00 EUR"),
        ("even", "0.00", "amount_seen", "no difference"),
        ("stale", "5.001", "amount_seen", "more than 2 decimals"),
        ("stale", "5.00", "reason", "required"),
    ]
    for name, seen, field, words in cases:
        with pytest.raises(InvalidInput, match=words) as error:
            attempt(name, seen, reason="" if field == "reason" else "why")
        assert error.value.field == field
    with pytest.raises(PermissionDenied):
        attempt("stale", "5.00", actor=AGENT)
    assert len(refused(engine, "write_off")) == before + len(cases) + 1
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM app.write_offs WHERE dossier_number = :n"), {"n": data["big"]}
            ).scalar_one()
            == 0
        )
    assert status(engine, data["stale"])[0] == "over_invoiced"


def test_turn_a_difference_into_a_regulation(engine: Engine, data: dict[str, str]) -> None:
    number = data["big"]
    with engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    request = {"dossier_number": number, "supplier_code": SUPPLIER, "amount_seen": "100.00", "reason": "new rate"}
    with UnitOfWork(engine) as uow, pytest.raises(PermissionDenied):
        write_offs.turn_into_regulation(
            uow, Actor("compta2", "accountant", frozenset({"write_off"})), **request, idempotency_key=_key()
        )
    key = _key()
    with UnitOfWork(engine) as uow:
        regulation = write_offs.turn_into_regulation(uow, ACCOUNTANT, **request, idempotency_key=key)
    with UnitOfWork(engine) as uow:  # replayed: the same regulation, not a second one
        assert write_offs.turn_into_regulation(uow, ACCOUNTANT, **request, idempotency_key=key) == regulation
    # The Devis now expects what the supplier invoiced; the client's price is unchanged.
    assert status(engine, number) == ("invoiced", Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))
    with engine.connect() as conn:
        lines = conn.execute(
            sa.text(
                """SELECT unit_purchase_amount, unit_sale_amount, origin FROM app.price_lines
                   WHERE dossier_number = :n AND source_type = 'regulation'"""
            ),
            {"n": number},
        ).all()
        after = conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()
    assert [tuple(r) for r in lines] == [(Decimal("100.00"), Decimal("0.00"), "regulation")]
    assert after == version + 1
    # A dossier with two services of the supplier: which one changed is the agent's call.
    with UnitOfWork(engine) as uow, pytest.raises(InvalidInput, match="2 confirmed services") as two:
        write_offs.turn_into_regulation(
            uow,
            ACCOUNTANT,
            **{**request, "dossier_number": data["two"], "amount_seen": "30.00"},
            idempotency_key=_key(),
        )
    assert two.value.field == "supplier_code"
