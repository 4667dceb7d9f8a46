"""Integrity of records against the real PostgreSQL: the application's least-privilege role, and the
hash chains of the audit log and the issued invoices that `backoffice verify` recomputes.

Tampering is done the only way left: as the owner, around the immutability triggers."""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from backoffice import cli
from backoffice.db.engine import get_engine
from backoffice.db.roles import APP_ROLE
from backoffice.domain.permissions import Actor
from backoffice.integrity import GENESIS, verify
from backoffice.services import audit
from backoffice.services.client_invoices import issue_credit_note, issue_invoice
from backoffice.services.unit_of_work import UnitOfWork

# Immutable tables the application must not even try to change (issue 9, item 4).
MUST_BE_IMMUTABLE = {
    "audit.events",
    "app.client_invoices",
    "app.client_invoice_lines",
    "app.price_lines",
    "app.payments",
    "app.supplier_invoices",
    "app.supplier_invoice_lines",
    "app.reconciliation_decisions",
    "app.accounting_exports",
    "app.exported_entries",
    "app.write_offs",
    "app.closed_periods",
}
ACCOUNTANT = Actor("compta", "accountant", frozenset({"issue_invoice"}))


@pytest.fixture
def app_engine(db: Engine, database_url: str) -> Engine:
    """The engine the application uses (Streamlit, CLI, Dagster): sessions act as backoffice_app."""
    return get_engine(database_url)


def _issue(db: Engine, **dossier: Any) -> str:
    number = f.dossier(db, **dossier)
    with UnitOfWork(db) as uow:
        issued = issue_invoice(uow, ACCOUNTANT, dossier_number=number, expected_version=1, idempotency_key=_key())
    return str(issued["invoice_number"])


def _key() -> str:
    return uuid.uuid4().hex


def _tamper(db: Engine, table: str, statement: str, **params: Any) -> None:
    """As the owner: switch the table's immutability trigger off, change it, switch it back on."""
    with db.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER immutable"))
        conn.execute(sa.text(statement), params)
        conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER immutable"))


def _events(db: Engine, count: int) -> None:
    for i in range(count):
        audit.record_apart(db, "tester", "probe", detail=f"event {i}")


def _broken(db: Engine, chain: str) -> Any:
    return {report.chain: report for report in verify(db)}[chain].broken


def test_services_and_the_app_engine_act_as_the_application_role(db: Engine, app_engine: Engine) -> None:
    with UnitOfWork(db) as uow:
        assert uow.conn.execute(sa.text("SELECT current_user")).scalar() == APP_ROLE
        uow.commit()  # the next transaction of the unit of work too
        assert uow.conn.execute(sa.text("SELECT current_user")).scalar() == APP_ROLE
    with app_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == APP_ROLE


def test_no_immutable_table_grants_the_application_update_delete_or_truncate(db: Engine) -> None:
    with db.connect() as conn:
        protected = dict(
            conn.execute(
                sa.text(
                    """SELECT tgrelid::regclass::text, bool_or(tgtype & 16 <> 0)
                       FROM pg_trigger
                       WHERE tgfoid IN ('app.refuse_change'::regproc, 'app.refuse_change_unless_sealing'::regproc)
                       GROUP BY 1"""
                )
            ).all()
        )
        assert protected.keys() >= MUST_BE_IMMUTABLE
        rights = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename AS name,
                          has_table_privilege(:role, schemaname || '.' || tablename, 'UPDATE') AS can_update,
                          has_table_privilege(:role, schemaname || '.' || tablename, 'DELETE') AS can_delete,
                          has_table_privilege(:role, schemaname || '.' || tablename, 'TRUNCATE') AS can_truncate,
                          has_table_privilege(:role, schemaname || '.' || tablename, 'INSERT') AS can_insert
                   FROM pg_tables WHERE schemaname IN ('raw', 'app', 'audit')"""
            ),
            {"role": APP_ROLE},
        ).all()
        assert not conn.execute(
            sa.text(
                "SELECT has_schema_privilege(:role, 'app', 'CREATE') OR has_schema_privilege(:role, 'raw', 'CREATE')"
            ),
            {"role": APP_ROLE},
        ).scalar()
    by_name = {r.name: r for r in rights}
    for table, on_update in protected.items():
        assert not by_name[table].can_delete, table
        assert not (on_update and by_name[table].can_update), table
    assert not any(r.can_truncate for r in rights)
    assert by_name["app.dossiers"].can_update and by_name["app.price_lines"].can_insert  # it can still work


def test_the_application_role_cannot_change_an_issued_invoice_or_an_audit_event(db: Engine, app_engine: Engine) -> None:
    f.invoice_seller(db)
    number = _issue(db, lines=[{"service_id": "S1", "quantity": 1, "unit_sale_amount": "700.00"}])
    for statement in (
        "UPDATE app.client_invoices SET total_amount = 1",
        "DELETE FROM app.client_invoices",
        "UPDATE app.client_invoice_lines SET unit_amount = 1",
        "DELETE FROM app.client_invoice_lines",
        "UPDATE audit.events SET detail = 'forged'",
        "DELETE FROM audit.events",
        "UPDATE app.price_lines SET unit_sale_amount = 1",
        "TRUNCATE app.dossiers CASCADE",
        "TRUNCATE audit.events",
        "DROP TABLE app.client_invoice_lines",
        "ALTER TABLE audit.events DISABLE TRIGGER immutable",
        "CREATE TABLE app.smuggled (id int)",
        "UPDATE audit.chain_heads SET seq = 0",
    ):
        with pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|must be owner"), app_engine.begin() as c:
            c.execute(sa.text(statement))
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT total_amount FROM app.client_invoices")).scalar() == 700
    # and the services still work through it
    with UnitOfWork(app_engine) as uow:
        credit = issue_credit_note(uow, ACCOUNTANT, invoice_number=number, reason="cancelled", idempotency_key=_key())
    assert credit["kind"] == "credit_note"


def test_every_row_is_chained_and_verify_passes_on_sound_chains(db: Engine) -> None:
    f.invoice_seller(db)
    _events(db, 3)
    first = _issue(db)
    second = _issue(db)
    with db.connect() as conn:
        events = conn.execute(sa.text("SELECT chain_seq, prev_hash, hash FROM audit.events ORDER BY id")).all()
        invoices = conn.execute(
            sa.text("SELECT invoice_number, chain_seq, prev_hash, hash FROM app.client_invoices ORDER BY chain_seq")
        ).all()
    assert [e.chain_seq for e in events] == list(range(1, len(events) + 1)) and len(events) >= 5
    assert events[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
    assert [(i.invoice_number, i.chain_seq) for i in invoices] == [(first, 1), (second, 2)]
    assert invoices[1].prev_hash == invoices[0].hash
    reports = verify(db)
    assert [(r.chain, r.rows, r.broken) for r in reports] == [
        ("audit.events", len(events), None),
        ("app.client_invoices", 2, None),
    ]
    assert reports[0].head == events[-1].hash


def test_verify_finds_a_changed_event_and_a_deleted_one(db: Engine) -> None:
    _events(db, 5)
    _tamper(db, "audit.events", "UPDATE audit.events SET detail = 'nothing happened' WHERE id = 3")
    broken = _broken(db, "audit.events")
    assert (broken.row, broken.field) == ("3", "hash")
    assert broken.found != broken.expected and len(broken.expected) == 64

    db_fixture_reset(db)
    _events(db, 5)
    _tamper(db, "audit.events", "DELETE FROM audit.events WHERE id = 3")
    broken = _broken(db, "audit.events")
    assert (broken.row, broken.field, broken.expected) == ("4", "chain_seq", "3")

    db_fixture_reset(db)
    _events(db, 5)
    _tamper(db, "audit.events", "DELETE FROM audit.events WHERE id = 5")
    broken = _broken(db, "audit.events")
    assert (broken.row, broken.field) == ("-", "head")


def db_fixture_reset(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit.events, audit.chain_heads RESTART IDENTITY"))


def test_verify_finds_a_changed_invoice_its_lines_or_its_pdf(db: Engine) -> None:
    f.invoice_seller(db)
    first, second = _issue(db), _issue(db)
    assert _broken(db, "app.client_invoices") is None
    _tamper(
        db,
        "app.client_invoice_lines",
        "UPDATE app.client_invoice_lines SET unit_amount = 1 WHERE invoice_number = :n",
        n=second,
    )
    broken = _broken(db, "app.client_invoices")
    assert (broken.row, broken.field) == (second, "hash")
    _tamper(
        db, "app.client_invoices", "UPDATE app.client_invoices SET total_amount = 1 WHERE invoice_number = :n", n=first
    )
    assert (_broken(db, "app.client_invoices").row, _broken(db, "app.client_invoices").field) == (first, "hash")


def test_a_pdf_swapped_under_its_digest_is_found(db: Engine) -> None:
    f.invoice_seller(db)
    number = _issue(db)
    _tamper(
        db, "app.client_invoices", "UPDATE app.client_invoices SET pdf = 'forged' WHERE invoice_number = :n", n=number
    )
    broken = _broken(db, "app.client_invoices")
    assert (broken.row, broken.field) == (number, "pdf sha256")


def test_concurrent_writers_chain_linearly(db: Engine, app_engine: Engine) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                with UnitOfWork(app_engine) as uow:
                    audit.record(uow.conn, f"writer{n}", "probe", detail=str(i))
                    audit.record(uow.conn, f"writer{n}", "probe", detail=f"{i} bis")
                    uow.commit()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = verify(db)[0]
    assert (report.rows, report.broken) == (180, None)


def test_backoffice_verify_exits_1_naming_the_broken_link(db: Engine) -> None:
    """In-process (the command's own code, typer's runner): a subprocess would cost seconds of imports."""
    _events(db, 3)
    sound = CliRunner().invoke(cli.app, ["verify"])
    assert sound.exit_code == 0, sound.output
    assert "audit.events: 3 rows, chain intact" in sound.stdout
    assert "app.client_invoices: 0 rows, chain intact" in sound.stdout
    _tamper(db, "audit.events", "UPDATE audit.events SET actor = 'someone else' WHERE id = 2")
    broken = CliRunner().invoke(cli.app, ["verify"])
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: hash chain broken: audit.events row 2: hash expected "), broken.output
