"""Reconciliation decisions at the service boundary, against the real PostgreSQL and the dbt marts.

One data set for the module (bench.reconciliation.load_lines, then dbt builds the matching):
20 suggested lines (a traveller's last name in the reference, HOTBENCH invoices FB-000000 and
FB-000001, line i suggesting BK-2098-00000i+1) and 20 unmatched ones (FB-000002, FB-000003),
plus, written before, supplier AUTOSUP's invoice AU-1 whose two lines name dossier AUTO by its
number: matched automatically. Decisions are immutable, so each test works on lines of its own.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.domain.errors import InvalidInput, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.queries import reconciliation as workbench
from backoffice.services import reconciliation
from backoffice.services.unit_of_work import UnitOfWork

# The workbench benchmark's data builder, at a small size: the repository root holds `bench`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.reconciliation import SUPPLIER, load_lines

ACCOUNTANT = Actor("compta", "accountant", frozenset({"reconcile", "write_off"}))
AGENT = Actor("agent1", "agent", frozenset({"search_dossiers", "regulation"}))
AUTO_SUPPLIER = "AUTOSUP"


def _key() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def data(engine: Engine, database_url: str) -> Iterator[Engine]:
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                """SELECT schemaname || '.' || tablename FROM pg_tables
                   WHERE schemaname IN ('raw', 'app', 'audit', 'intermediate', 'marts')
                     AND tablename NOT IN ('roles', 'permissions', 'role_permissions')"""
            )
        ).scalars()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    _automatic_lines(engine)
    load_lines(engine, database_url, open_lines=20, suggested=20, billing=False)
    yield engine


def _automatic_lines(engine: Engine) -> str:
    """Dossier AUTO with a service of AUTOSUP; invoice AU-1 whose 2 lines name it by number."""
    f.supplier(engine, AUTO_SUPPLIER)
    number = f.dossier(
        engine,
        services=[{"supplier_code": AUTO_SUPPLIER}],
        lines=[{"service_id": "S1", "unit_purchase_amount": "300.00", "supplier_code": AUTO_SUPPLIER}],
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                       sha256, source_file)
                   VALUES (:s, 'AU-1', 'invoice', current_date, 'EUR', md5('AU-1'), 'test')"""
            ),
            {"s": AUTO_SUPPLIER},
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       description, amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES (:s, 'AU-1', 1, :n, 'Nuitees', 150.00, 0, 150.00),
                          (:s, 'AU-1', 2, 'Dossier ' || :n, 'Nuitees', 150.00, 0, 150.00)"""
            ),
            {"s": AUTO_SUPPLIER, "n": number},
        )
    return number


def mart(engine: Engine, invoice: str, line: int) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    """SELECT state, dossier_number, amount_incl_tax FROM marts.supplier_invoice_line_matches
                       WHERE supplier_code = :s AND invoice_number = :i AND line_number = :n
                       ORDER BY dossier_number"""
                ),
                {"s": SUPPLIER, "i": invoice, "n": line},
            )
        ]


def latest(engine: Engine, invoice: str, line: int) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                """SELECT max(id) FROM app.reconciliation_decisions
                   WHERE supplier_code = :s AND invoice_number = :i AND line_number = :n"""
            ),
            {"s": SUPPLIER, "i": invoice, "n": line},
        ).scalar()


def events(engine: Engine, outcome: str, actor: str = "compta") -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM audit.events WHERE actor = :a AND outcome = :o"), {"a": actor, "o": outcome}
        ).scalar_one()


def line(invoice: str, n: int) -> dict[str, object]:
    return {"supplier_code": SUPPLIER, "invoice_number": invoice, "line_number": n}


def test_confirm_then_unreconcile(data: Engine) -> None:
    assert mart(data, "FB-000000", 1) == [("suggested", "BK-2098-000001", Decimal("100.00"))]
    key = _key()
    with UnitOfWork(data) as uow:
        decision = reconciliation.confirm(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 1),
            dossier_number="BK-2098-000001",
            expected_decision_id=None,
            idempotency_key=key,
        )
    assert mart(data, "FB-000000", 1) == [("confirmed", "BK-2098-000001", Decimal("100.00"))]
    with UnitOfWork(data) as uow:  # the same request again: the first result, nothing written
        again = reconciliation.confirm(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 1),
            dossier_number="BK-2098-000001",
            expected_decision_id=None,
            idempotency_key=key,
        )
    assert again == decision == latest(data, "FB-000000", 1)
    with UnitOfWork(data) as uow:
        undone = reconciliation.unreconcile(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 1),
            reason="wrong dossier",
            expected_decision_id=decision,
            idempotency_key=_key(),
        )
    assert mart(data, "FB-000000", 1) == [("suggested", "BK-2098-000001", Decimal("100.00"))]
    with data.connect() as conn:
        row = conn.execute(
            sa.text("SELECT decision, supersedes_id FROM app.reconciliation_decisions WHERE id = :id"),
            {"id": undone[0]},
        ).one()
    assert tuple(row) == ("unmatch", decision)


def test_stale_and_wrong_dossier_are_refused(data: Engine) -> None:
    with UnitOfWork(data) as uow:
        first = reconciliation.reject(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 2),
            dossier_number="BK-2098-000002",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    refused = events(data, "refused")
    with UnitOfWork(data) as uow, pytest.raises(StaleVersion):
        reconciliation.unreconcile(
            uow, ACCOUNTANT, **line("FB-000000", 2), reason="x", expected_decision_id=None, idempotency_key=_key()
        )
    with UnitOfWork(data) as uow, pytest.raises(InvalidInput) as wrong:
        reconciliation.confirm(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 3),
            dossier_number="BK-2098-000004",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    assert wrong.value.field == "dossier_number"
    assert events(data, "refused") == refused + 2
    assert latest(data, "FB-000000", 2) == first


def test_reject_then_undo(data: Engine) -> None:
    with UnitOfWork(data) as uow:
        rejected = reconciliation.reject(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 4),
            dossier_number="BK-2098-000004",
            reason="other client",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    # No candidate is left: the line says which dossier was refused.
    assert mart(data, "FB-000000", 4) == [("rejected", "BK-2098-000004", Decimal("103.00"))]
    with UnitOfWork(data) as uow, pytest.raises(InvalidInput) as twice:
        reconciliation.reject(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 4),
            dossier_number="BK-2098-000004",
            expected_decision_id=rejected,
            idempotency_key=_key(),
        )
    assert twice.value.field == "dossier_number"
    with UnitOfWork(data) as uow:
        reconciliation.unreconcile(
            uow,
            ACCOUNTANT,
            **line("FB-000000", 4),
            reason="my mistake",
            expected_decision_id=rejected,
            idempotency_key=_key(),
        )
    assert mart(data, "FB-000000", 4)[0][0] == "suggested"


def test_manual_split_over_two_dossiers_and_its_undo(data: Engine) -> None:
    # FB-000002 line 1 is unmatched, 120.00.
    assert mart(data, "FB-000002", 1) == [("unmatched", None, Decimal("120.00"))]
    with UnitOfWork(data) as uow, pytest.raises(InvalidInput) as wrong_sum:
        reconciliation.manual_match(
            uow,
            ACCOUNTANT,
            **line("FB-000002", 1),
            allocations=[("BK-2098-000005", "70.00"), ("BK-2098-000006", "40.00")],
            reason="two rooms",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    assert wrong_sum.value.field == "allocations"
    with UnitOfWork(data) as uow:
        ids = reconciliation.manual_match(
            uow,
            ACCOUNTANT,
            **line("FB-000002", 1),
            allocations=[("BK-2098-000005", "70.00"), ("BK-2098-000006", "50.00")],
            reason="two rooms",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    assert mart(data, "FB-000002", 1) == [
        ("confirmed", "BK-2098-000005", Decimal("70.00")),
        ("confirmed", "BK-2098-000006", Decimal("50.00")),
    ]
    with UnitOfWork(data) as uow, pytest.raises(InvalidInput) as reconciled:
        reconciliation.manual_match(
            uow,
            ACCOUNTANT,
            **line("FB-000002", 1),
            allocations="BK-2098-000007",
            reason="again",
            expected_decision_id=max(ids),
            idempotency_key=_key(),
        )
    assert "unreconcile" in str(reconciled.value)
    with UnitOfWork(data) as uow:
        undone = reconciliation.unreconcile(
            uow,
            ACCOUNTANT,
            **line("FB-000002", 1),
            reason="split was wrong",
            expected_decision_id=max(ids),
            idempotency_key=_key(),
        )
    assert len(undone) == 2  # one unmatch per decision it replaces
    assert mart(data, "FB-000002", 1) == [("unmatched", None, Decimal("120.00"))]


def test_several_lines_to_one_dossier(data: Engine) -> None:
    for n in (2, 3):
        with UnitOfWork(data) as uow:
            reconciliation.manual_match(
                uow,
                ACCOUNTANT,
                **line("FB-000002", n),
                allocations="bk-2098-000008",
                reason="same stay",
                expected_decision_id=None,
                idempotency_key=_key(),
            )
    with data.connect() as conn:
        count = conn.execute(
            sa.text(
                """SELECT count(*) FROM marts.supplier_invoice_line_matches
                   WHERE dossier_number = 'BK-2098-000008' AND state = 'confirmed' AND match_method = 'manual'"""
            )
        ).scalar_one()
    assert count == 2


def test_workbench_page_agrees_with_the_mart_and_pages_by_key(data: Engine) -> None:
    with data.connect() as conn:
        expected = {
            (r.invoice_number, r.line_number): (r.state, r.dossier_number)
            for r in conn.execute(
                sa.text(
                    """SELECT DISTINCT ON (invoice_number, line_number) invoice_number, line_number, state,
                              dossier_number
                       FROM marts.supplier_invoice_line_matches WHERE supplier_code = :s
                       ORDER BY invoice_number, line_number, dossier_number"""
                ),
                {"s": SUPPLIER},
            )
        }
        seen = {}
        after = None
        filters = workbench.Filters(supplier_code=SUPPLIER, states=workbench.STATES)
        for _ in range(10):
            page = workbench.read_page(conn, filters, after=after, page_size=7)
            seen.update({(x.invoice_number, x.line_number): (x.state, x.dossier_number) for x in page.lines})
            after = page.next_after
            if after is None:
                break
        assert seen == expected
        narrow = workbench.read_page(
            conn, workbench.Filters(reference="zqaaaab", amount_min="110.00", amount_max="112.00")
        )
        assert [(x.invoice_number, x.line_number) for x in narrow.lines] == [("FB-000001", n) for n in (1, 2, 3)]
        assert narrow.lines[0].candidates[0].dossier_number == "BK-2098-000011"
    with pytest.raises(InvalidInput) as bad:
        workbench.Filters(amount_min="abc").checked()
    assert bad.value.field == "amount_min"


def test_bulk_confirm_of_a_filtered_set(data: Engine) -> None:
    # Names of dossiers 10 to 19: FB-000000 line 10, FB-000001 lines 1 to 9.
    filters = workbench.Filters(supplier_code=SUPPLIER, reference="ZQAAAAB")
    with data.connect() as conn:
        count = workbench.count_suggestions(conn, filters)
    assert count == 10
    with UnitOfWork(data) as uow, pytest.raises(reconciliation.SelectionChanged):
        reconciliation.bulk_confirm(uow, ACCOUNTANT, filters=filters, expected_count=9, idempotency_key=_key())
    with UnitOfWork(data) as uow:
        done = reconciliation.bulk_confirm(uow, ACCOUNTANT, filters=filters, expected_count=10, idempotency_key=_key())
    assert done == 10
    assert mart(data, "FB-000000", 10)[0][0] == "confirmed"
    assert all(mart(data, "FB-000001", n)[0][0] == "confirmed" for n in range(1, 10))
    with data.connect() as conn:
        per_line = conn.execute(
            sa.text("SELECT count(*) FROM audit.events WHERE detail = 'confirm (bulk)' AND actor = 'compta'")
        ).scalar_one()
        batch = conn.execute(
            sa.text(
                "SELECT count(*) FROM audit.events WHERE action = 'reconciliation_bulk_confirm' AND outcome = 'done'"
            )
        ).scalar_one()
    assert (per_line, batch) == (10, 1)
    with data.connect() as conn:
        assert workbench.count_suggestions(conn, filters) == 0


SINGLE = {
    "confirm": lambda uow, a: reconciliation.confirm(
        uow,
        a,
        **line("FB-000000", 9),
        dossier_number="BK-2098-000009",
        expected_decision_id=None,
        idempotency_key=_key(),
    ),
    "reject": lambda uow, a: reconciliation.reject(
        uow,
        a,
        **line("FB-000000", 9),
        dossier_number="BK-2098-000009",
        expected_decision_id=None,
        idempotency_key=_key(),
    ),
    "manual_match": lambda uow, a: reconciliation.manual_match(
        uow,
        a,
        **line("FB-000000", 9),
        allocations="BK-2098-000009",
        reason="x",
        expected_decision_id=None,
        idempotency_key=_key(),
    ),
    "unreconcile": lambda uow, a: reconciliation.unreconcile(
        uow, a, **line("FB-000000", 9), reason="x", expected_decision_id=None, idempotency_key=_key()
    ),
    "bulk_confirm": lambda uow, a: reconciliation.bulk_confirm(
        uow, a, filters=workbench.Filters(), expected_count=1, idempotency_key=_key()
    ),
}


@pytest.mark.parametrize("action", sorted(SINGLE))
def test_refused_without_reconcile(data: Engine, action: str) -> None:
    refused = events(data, "refused", AGENT.login)
    with UnitOfWork(data) as uow, pytest.raises(PermissionDenied):
        SINGLE[action](uow, AGENT)
    assert events(data, "refused", AGENT.login) == refused + 1
    assert latest(data, "FB-000000", 9) is None


def _auto(engine: Engine, n: int) -> tuple[list[tuple], tuple[str, str | None] | None]:
    """Line AU-1/n as the mart and as the workbench reader see it."""
    key = {"s": AUTO_SUPPLIER, "i": "AU-1", "n": n}
    with engine.connect() as conn:
        rows = [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    """SELECT state, dossier_number FROM marts.supplier_invoice_line_matches
                       WHERE supplier_code = :s AND invoice_number = :i AND line_number = :n"""
                ),
                key,
            )
        ]
        return rows, workbench.line_state(conn, (AUTO_SUPPLIER, "AU-1", n))


def test_unreconcile_an_automatic_match_withdraws_it_and_can_be_undone(data: Engine) -> None:
    auto = {"supplier_code": AUTO_SUPPLIER, "invoice_number": "AU-1", "line_number": 1}
    rows, read = _auto(data, 1)
    assert rows[0][0] == "auto_matched" and read == rows[0]
    number = rows[0][1]
    with UnitOfWork(data) as uow:
        withdrawn = reconciliation.unreconcile(
            uow, ACCOUNTANT, **auto, reason="not this dossier", expected_decision_id=None, idempotency_key=_key()
        )
    # No candidate left: unmatched (not rejected), in the mart and in the workbench alike.
    assert _auto(data, 1) == ([("unmatched", None)], ("unmatched", None))
    with data.connect() as conn:
        row = conn.execute(
            sa.text("SELECT decision, dossier_number, supersedes_id FROM app.reconciliation_decisions WHERE id = :i"),
            {"i": withdrawn[0]},
        ).one()
        page = workbench.read_page(conn, workbench.Filters(supplier_code=AUTO_SUPPLIER, states=("unmatched",)))
    assert tuple(row) == ("unmatch", number, None)
    assert [(x.line_number, [d.decision for d in x.decisions]) for x in page.lines] == [(1, ["unmatch"])]
    assert page.lines[0].decision_id == withdrawn[0]
    # The other line of the invoice is untouched.
    assert _auto(data, 2)[0] == [("auto_matched", number)]
    # Unreconcile again: the withdrawal is undone, the automatic match is back.
    with UnitOfWork(data) as uow:
        undone = reconciliation.unreconcile(
            uow, ACCOUNTANT, **auto, reason="it was right", expected_decision_id=withdrawn[0], idempotency_key=_key()
        )
    assert _auto(data, 1) == ([("auto_matched", number)], ("auto_matched", number))
    with data.connect() as conn:
        supersedes = conn.execute(
            sa.text("SELECT supersedes_id FROM app.reconciliation_decisions WHERE id = :i"), {"i": undone[0]}
        ).scalar_one()
    assert supersedes == withdrawn[0]


def test_withdrawn_line_matched_by_hand_then_nothing_left_to_undo(data: Engine) -> None:
    auto = {"supplier_code": AUTO_SUPPLIER, "invoice_number": "AU-1", "line_number": 2}
    number = _auto(data, 2)[0][0][1]
    with UnitOfWork(data) as uow:
        withdrawn = reconciliation.unreconcile(
            uow, ACCOUNTANT, **auto, reason="check it", expected_decision_id=None, idempotency_key=_key()
        )
    with UnitOfWork(data) as uow:
        manual = reconciliation.manual_match(
            uow,
            ACCOUNTANT,
            **auto,
            allocations=number,
            reason="checked: it is this one",
            expected_decision_id=withdrawn[0],
            idempotency_key=_key(),
        )
    assert _auto(data, 2) == ([("confirmed", number)], ("confirmed", number))
    # Undoing now undoes the match and the withdrawal together: back to automatic.
    with UnitOfWork(data) as uow:
        undone = reconciliation.unreconcile(
            uow, ACCOUNTANT, **auto, reason="start again", expected_decision_id=manual[0], idempotency_key=_key()
        )
    assert len(undone) == 2
    assert _auto(data, 2) == ([("auto_matched", number)], ("auto_matched", number))
    # A line neither matched automatically nor decided has nothing to undo.
    with UnitOfWork(data) as uow, pytest.raises(InvalidInput) as nothing:
        reconciliation.unreconcile(
            uow, ACCOUNTANT, **line("FB-000003", 5), reason="x", expected_decision_id=None, idempotency_key=_key()
        )
    assert nothing.value.field == "line_number"
