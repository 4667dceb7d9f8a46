"""Supplier regulations at the service boundary, against the real PostgreSQL: single and mass,
preview = apply, rights, bad input, versions, idempotency, all-or-nothing over 10,000 dossiers, undo."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import factories as f
import pytest
import sqlalchemy as sa

from backoffice.domain.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.dossier import dossier_view
from backoffice.services.price_adjustments import add_price_adjustment
from backoffice.services.regulations import (
    PreviewChanged,
    apply_mass_regulation,
    apply_regulation,
    list_regulations,
    preview_mass_regulation,
    undo_regulation,
)
from backoffice.services.unit_of_work import UnitOfWork
from backoffice.services.users import load_actor

ADJUSTMENT: dict[str, Any] = {
    "supplier_code": "HOTEL01",
    "service_kinds": ["hotel"],
    "mode": "amount",
    "purchase_value": "35.50",
    "sale_value": "40.00",
    "currency": "EUR",
    "reason": "tourist tax raised by the hotel",
}


def actor(engine: sa.Engine, login: str, role: str) -> Actor:
    f.user(engine, login, role)
    with UnitOfWork(engine) as uow:
        return load_actor(uow, login)


def single(db: sa.Engine, who: Actor, number: str, **overrides: Any) -> int:
    arguments = {
        **ADJUSTMENT,
        "dossier_number": number,
        "expected_version": 1,
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    with UnitOfWork(db) as uow:
        return apply_regulation(uow, who, **arguments)


def preview(db: sa.Engine, who: Actor, **overrides: Any) -> Any:
    with UnitOfWork(db) as uow:
        return preview_mass_regulation(uow, who, **{**ADJUSTMENT, **overrides})


def mass(db: sa.Engine, who: Actor, token: str, **overrides: Any) -> int:
    arguments = {**ADJUSTMENT, "preview_token": token, "idempotency_key": uuid.uuid4().hex, **overrides}
    with UnitOfWork(db) as uow:
        return apply_mass_regulation(uow, who, **arguments)


def undo(db: sa.Engine, who: Actor, regulation_id: int, **overrides: Any) -> int:
    arguments = {"reason": "supplier withdrew it", "idempotency_key": uuid.uuid4().hex, **overrides}
    with UnitOfWork(db) as uow:
        return undo_regulation(uow, who, regulation_id=regulation_id, **arguments)


def dossier_state(db: sa.Engine, number: str) -> tuple[int, Decimal, int]:
    """(version, stored sale total, number of price lines) of the dossier."""
    with db.connect() as conn:
        return tuple(
            conn.execute(
                sa.text(
                    """SELECT d.version, d.sale_total,
                              (SELECT count(*) FROM app.price_lines l WHERE l.dossier_number = d.dossier_number)
                       FROM app.dossiers d WHERE d.dossier_number = :n"""
                ),
                {"n": number},
            ).one()
        )


def events(db: sa.Engine, *actions: str) -> list[sa.Row]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT actor, action, outcome, dossier_number, before, after, detail FROM audit.events "
                    "WHERE action = ANY(:actions) ORDER BY id"
                ),
                {"actions": list(actions)},
            )
        )


def count(db: sa.Engine, sql: str) -> int:
    with db.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


# ---------------------------------------------------------------- single dossier
def test_a_single_regulation_adds_a_line_per_service_and_the_devis_follows(
    db: sa.Engine, price_lines_mart: None
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(
        db,
        services=[{}, {"service_id": "S2", "label": "Hotel annex"}, {"service_id": "S3", "supplier_code": "TRF09"}],
        lines=[
            {"service_id": "S1", "quantity": 2, "unit_sale_amount": "500.00", "unit_purchase_amount": "400.00"},
            {"service_id": "S2", "unit_sale_amount": "100.00", "unit_purchase_amount": "90.00"},
        ],
        sale_total="1100.00",
    )
    rid = single(db, alice, number, mode="percent", purchase_value="10", sale_value="5", currency=None)
    with db.connect() as conn:
        view = dossier_view(conn, number)
        lines = conn.execute(
            sa.text(
                """SELECT service_id, origin, unit_purchase_amount, unit_sale_amount, purchase_currency, supplier_code,
                          source_type, source_id, reason, created_by, vat_rate
                   FROM app.price_lines WHERE origin = 'regulation' ORDER BY service_id"""
            )
        ).all()
    # 10 % of each matching service's purchase, 5 % of its sale; TRF09's transfer untouched
    assert [tuple(r) for r in lines] == [
        ("S1", "regulation", Decimal("80.00"), Decimal("50.00"), "EUR", "HOTEL01", "regulation", str(rid),
         ADJUSTMENT["reason"], "alice", Decimal("0")),
        ("S2", "regulation", Decimal("9.00"), Decimal("5.00"), "EUR", "HOTEL01", "regulation", str(rid),
         ADJUSTMENT["reason"], "alice", Decimal("0")),
    ]  # fmt: skip
    assert view.devis.sale_total == Decimal("1155.00") == view.summary.sale_total
    assert view.summary.version == 2
    [event] = events(db, "regulation")
    assert (event.actor, event.outcome, event.dossier_number) == ("alice", "done", number)
    assert event.before == {"version": 1, "sale_total": "1100.00"}
    assert (event.after["version"], event.after["sale_total"], event.after["regulation_id"]) == (2, "1155.00", rid)
    assert event.after["mode"] == "percent" and event.after["scope"] == "single"


@pytest.mark.parametrize(
    ("overrides", "dossier", "field", "problem"),
    [
        ({}, {"status": "cancelled"}, "dossier_number", "cancelled"),
        ({}, {"currency": "GBP"}, "currency", "another currency"),
        ({"supplier_code": "HOTEL99"}, {}, "supplier_code", "no confirmed service"),
        ({"service_kinds": ["flight"]}, {}, "supplier_code", "no confirmed service"),
        ({}, {"services": [{"status": "cancelled"}]}, "supplier_code", "no confirmed service"),
        (
            {"mode": "percent", "purchase_value": "0.01", "sale_value": "0", "currency": None},
            {"lines": [{"service_id": "S1", "unit_purchase_amount": "10.00"}]},
            "purchase_value",
            "gives 0.00",
        ),
        (
            {"mode": "percent", "currency": None},
            {
                "lines": [
                    {"service_id": "S1", "unit_purchase_amount": "10.00"},
                    {"service_id": "S1", "unit_purchase_amount": "10.00", "purchase_currency": "USD"},
                ]
            },
            "mode",
            "several currencies",
        ),
    ],
)
def test_an_ineligible_dossier_is_refused_with_its_reason(
    db: sa.Engine, overrides: dict[str, Any], dossier: dict[str, Any], field: str, problem: str
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db, **dossier)
    before = dossier_state(db, number)
    with pytest.raises(InvalidInput) as refused:
        single(db, alice, number, **overrides)
    assert refused.value.field == field and problem in refused.value.problem
    assert dossier_state(db, number) == before
    assert [e.outcome for e in events(db, "regulation")] == ["refused"]


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"reason": " "}, "reason", "is required"),
        ({"supplier_code": ""}, "supplier_code", "is required"),
        ({"service_kinds": []}, "service_kinds", "at least one"),
        ({"service_kinds": ["boat"]}, "service_kinds", "'boat' is not one of"),
        ({"mode": "ratio"}, "mode", "'ratio' is not one of"),
        ({"purchase_value": 12.5}, "purchase_value", "not a float"),
        ({"sale_value": "1.005"}, "sale_value", "more than 2 decimals"),
        ({"purchase_value": "0", "sale_value": "0.00"}, "purchase_value", "non-zero"),
        ({"mode": "percent", "purchase_value": "150"}, "purchase_value", "between -100 and 100"),
        ({"currency": "EURO"}, "currency", "ISO 4217"),
        ({"dossier_number": " "}, "dossier_number", "is required"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    db: sa.Engine, overrides: dict[str, Any], field: str, problem: str
) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    with pytest.raises(InvalidInput) as refused:
        single(db, alice, number, **overrides)
    assert refused.value.field == field and problem in refused.value.problem
    assert dossier_state(db, number) == (1, Decimal("1000.00"), 1)
    assert [e.outcome for e in events(db, "regulation")] == ["refused"]


def test_unknown_dossier_and_stale_version_are_refused_and_audited(db: sa.Engine) -> None:
    alice, sam = actor(db, "alice", "agent"), actor(db, "sam", "senior_agent")
    with pytest.raises(NotFound, match="dossier BK-1999-000000 does not exist"):
        single(db, alice, "bk-1999-000000")
    number = f.dossier(db)
    single(db, sam, number)
    with pytest.raises(StaleVersion, match=r"your version 1, now 2"):
        single(db, alice, number, expected_version=1)
    assert dossier_state(db, number) == (2, Decimal("1040.00"), 2)
    assert [(e.outcome, e.dossier_number) for e in events(db, "regulation")] == [
        ("refused", "BK-1999-000000"),
        ("done", number),
        ("refused", number),
    ]


def test_same_key_same_request_returns_the_first_regulation_other_request_refused(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    number = f.dossier(db)
    key = uuid.uuid4().hex
    first = single(db, alice, number, idempotency_key=key)
    assert single(db, alice, number, idempotency_key=key) == first
    with pytest.raises(IdempotencyConflict):
        single(db, alice, number, idempotency_key=key, purchase_value="36.00")
    assert dossier_state(db, number) == (2, Decimal("1040.00"), 2)
    assert count(db, "SELECT count(*) FROM app.regulations") == 1


@pytest.fixture
def accountant_without_regulation(db: sa.Engine) -> Iterator[None]:
    """Every built-in role may regulate since accountants turn invoice differences into regulations
    (migration 0017): an admin taking the right away is what a refusal looks like."""
    grant = {"r": "accountant", "p": "regulation"}
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.role_permissions WHERE role = :r AND permission = :p"), grant)
    yield
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO app.role_permissions (role, permission) VALUES (:r, :p)"), grant)


@pytest.mark.parametrize("role", ["agent", "senior_agent", "accountant"])
def test_single_regulation_is_allowed_to_every_built_in_role(db: sa.Engine, role: str) -> None:
    who = actor(db, f"user_{role}", role)
    number = f.dossier(db)
    single(db, who, number)
    assert dossier_state(db, number)[0] == 2


def test_single_regulation_is_refused_without_the_permission(db: sa.Engine, accountant_without_regulation) -> None:
    who = actor(db, "user_accountant", "accountant")
    number = f.dossier(db)
    with pytest.raises(PermissionDenied, match="'regulation'"):
        single(db, who, number)
    assert dossier_state(db, number) == (1, Decimal("1000.00"), 1)
    [refusal] = events(db, "regulation")
    assert (refusal.actor, refusal.outcome, refusal.dossier_number) == (who.login, "refused", number)


# ---------------------------------------------------------------- mass
def test_the_preview_lists_found_not_found_not_eligible_and_totals_and_apply_does_exactly_that(db: sa.Engine) -> None:
    sam = actor(db, "sam", "senior_agent")
    good = [f.dossier(db) for _ in range(3)]
    cancelled = f.dossier(db, status="cancelled")
    pounds = f.dossier(db, currency="GBP")
    other = f.dossier(db, services=[{"supplier_code": "HOTEL02"}])
    pasted = f"{good[0]}\n{good[1].lower()}, {good[2]} ; {cancelled}\nBK-0000-404 {pounds} {other}\n{good[0]}"
    shown = preview(db, sam, numbers=pasted)
    assert shown.eligible == tuple(good)
    assert shown.not_found == ("BK-0000-404",)
    assert shown.not_eligible == ((cancelled, "cancelled"), (pounds, "other_currency"), (other, "no_service"))
    assert (shown.duplicates, shown.selected, shown.line_count) == (1, 7, 3)
    assert shown.purchase_totals == {"EUR": Decimal("106.50")} and shown.sale_totals == {"EUR": Decimal("120.00")}
    assert count(db, "SELECT count(*) FROM app.regulations") == 0  # a preview writes nothing

    rid = mass(db, sam, shown.token, numbers=pasted)
    for number in good:
        assert dossier_state(db, number) == (2, Decimal("1040.00"), 2)
    for number in (cancelled, pounds, other):
        assert dossier_state(db, number) == (1, Decimal("1000.00"), 1)
    per_dossier = events(db, "regulation")
    assert sorted(e.dossier_number for e in per_dossier) == sorted(good)
    assert all(e.after["regulation_id"] == rid and e.after["scope"] == "mass" for e in per_dossier)
    [batch] = events(db, "mass_regulation")
    assert (batch.after["dossiers"], batch.after["lines"], batch.after["not_found"]) == (3, 3, ["BK-0000-404"])
    assert batch.after["purchase_totals"] == {"EUR": "106.50"}
    with UnitOfWork(db) as uow:
        [listed] = list_regulations(uow, sam)
    assert (listed.id, listed.scope, listed.dossier_count, listed.line_count, listed.reversed_by) == (
        rid,
        "mass",
        3,
        3,
        None,
    )


def test_a_search_selects_every_match_not_one_page(db: sa.Engine) -> None:
    sam = actor(db, "sam", "senior_agent")
    numbers = f.bulk_dossiers(db, 250, prefix="BK-2098-")
    f.dossier(db)  # does not match the search
    criteria = SearchCriteria(dossier_number="BK-2098-", statuses=("confirmed",))
    shown = preview(db, sam, criteria=criteria)
    assert shown.eligible == tuple(numbers) and not shown.not_found and not shown.not_eligible
    rid = mass(db, sam, shown.token, criteria=criteria)
    assert count(db, f"SELECT count(*) FROM app.price_lines WHERE source_id = '{rid}'") == 250
    assert count(db, "SELECT count(*) FROM app.dossiers WHERE version = 2") == 250


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"numbers": " \n , "}, "numbers", "is required"),
        ({"numbers": "BK-1", "criteria": SearchCriteria(brands=("Soleil",))}, "numbers", "either"),
        ({"criteria": SearchCriteria()}, "criteria", "at least one search criterion"),
        ({"criteria": SearchCriteria(statuses=("lost",))}, "statuses", "'lost' is not one of"),
        ({"numbers": "X" * 41}, "numbers", "is not a dossier number"),
        ({"numbers": "BK-1", "mode": "percent", "sale_value": "-101"}, "sale_value", "between -100 and 100"),
    ],
)
def test_bad_mass_input_is_refused_naming_the_field(
    db: sa.Engine, overrides: dict[str, Any], field: str, problem: str
) -> None:
    sam = actor(db, "sam", "senior_agent")
    with pytest.raises(InvalidInput) as refused:
        preview(db, sam, **overrides)
    assert refused.value.field == field and problem in refused.value.problem
    assert [e.outcome for e in events(db, "mass_regulation")] == ["refused"]


@pytest.mark.parametrize("role", ["agent", "accountant"])
def test_mass_regulation_and_its_undo_are_refused_without_the_permission(db: sa.Engine, role: str) -> None:
    sam, who = actor(db, "sam", "senior_agent"), actor(db, f"user_{role}", role)
    number = f.dossier(db)
    shown = preview(db, sam, numbers=number)
    with pytest.raises(PermissionDenied, match="mass_regulation"):
        preview(db, who, numbers=number)
    with pytest.raises(PermissionDenied, match="mass_regulation"):
        mass(db, who, shown.token, numbers=number)
    rid = mass(db, sam, shown.token, numbers=number)
    with pytest.raises(PermissionDenied):
        undo(db, who, rid)
    assert dossier_state(db, number) == (2, Decimal("1040.00"), 2)
    refusals = [e for e in events(db, "mass_regulation", "regulation_undo") if e.outcome == "refused"]
    assert [(e.actor, e.action) for e in refusals] == [
        (who.login, "mass_regulation"),
        (who.login, "mass_regulation"),
        (who.login, "regulation_undo"),
    ]


def test_apply_is_refused_when_a_dossier_changed_since_the_preview(db: sa.Engine) -> None:
    sam = actor(db, "sam", "senior_agent")
    numbers = [f.dossier(db) for _ in range(3)]
    shown = preview(db, sam, numbers=numbers)
    with UnitOfWork(db) as uow:  # another agent changes one of them meanwhile
        add_price_adjustment(
            uow,
            sam,
            dossier_number=numbers[1],
            label="Late checkout",
            quantity=1,
            unit_sale_amount="20.00",
            unit_purchase_amount="0",
            vat_rate="0",
            reason="asked at the desk",
            expected_version=1,
            idempotency_key=uuid.uuid4().hex,
        )
    with pytest.raises(PreviewChanged, match="preview again"):
        mass(db, sam, shown.token, numbers=numbers)
    # the preview is bound to the request as well: another amount is not what was shown
    fresh = preview(db, sam, numbers=numbers)
    with pytest.raises(PreviewChanged):
        mass(db, sam, fresh.token, numbers=numbers, purchase_value="99.00")
    assert [dossier_state(db, n)[0] for n in numbers] == [1, 2, 1]
    assert count(db, "SELECT count(*) FROM app.regulations") == 0
    assert [e.outcome for e in events(db, "mass_regulation")] == ["refused", "refused"]


def test_mass_same_key_same_request_returns_the_first_other_request_refused(db: sa.Engine) -> None:
    sam = actor(db, "sam", "senior_agent")
    numbers = [f.dossier(db) for _ in range(2)]
    shown = preview(db, sam, numbers=numbers)
    key = uuid.uuid4().hex
    first = mass(db, sam, shown.token, numbers=numbers, idempotency_key=key)
    # replayed after it committed (the versions moved on): the first result, nothing applied twice
    assert mass(db, sam, shown.token, numbers=numbers, idempotency_key=key) == first
    with pytest.raises(IdempotencyConflict):
        mass(db, sam, shown.token, numbers=numbers[:1], idempotency_key=key)
    assert [dossier_state(db, n)[0] for n in numbers] == [2, 2]
    assert count(db, "SELECT count(*) FROM app.regulations") == 1


def test_ten_thousand_dossiers_all_or_nothing_then_applied_then_undone(db: sa.Engine) -> None:
    sam = actor(db, "sam", "senior_agent")
    numbers = f.bulk_dossiers(db, 10_000)
    pasted = "\n".join(numbers)
    shown = preview(db, sam, numbers=pasted)
    assert len(shown.eligible) == 10_000 and shown.line_count == 10_000

    # A fault half-way through writing the dossiers, after the lines were inserted.
    with db.begin() as conn:
        conn.execute(
            sa.text(
                f"""CREATE FUNCTION public.regulation_fault() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'injected fault'; END $$;
                    CREATE TRIGGER regulation_fault BEFORE UPDATE ON app.dossiers FOR EACH ROW
                    WHEN (NEW.dossier_number = '{numbers[5_000]}') EXECUTE FUNCTION public.regulation_fault()"""
            )
        )
    try:
        with pytest.raises(sa.exc.DBAPIError, match="injected fault"):
            mass(db, sam, shown.token, numbers=pasted)
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER regulation_fault ON app.dossiers"))
            conn.execute(sa.text("DROP FUNCTION public.regulation_fault()"))
    assert count(db, "SELECT count(*) FROM app.price_lines WHERE origin = 'regulation'") == 0
    assert count(db, "SELECT count(*) FROM app.regulations") == 0
    assert count(db, "SELECT count(*) FROM app.dossiers WHERE version <> 1 OR sale_total <> 1000") == 0
    assert count(db, "SELECT count(*) FROM audit.events WHERE action LIKE '%regulation' AND outcome = 'done'") == 0

    # A fault from the caller's side (the progress hook) rolls back just the same.
    def crash(fraction: float, phase: str) -> None:
        if phase == "audit":
            raise RuntimeError("the app died")

    with pytest.raises(RuntimeError, match="the app died"):
        mass(db, sam, shown.token, numbers=pasted, progress=crash)
    assert count(db, "SELECT count(*) FROM app.price_lines WHERE origin = 'regulation'") == 0

    phases: list[str] = []
    rid = mass(db, sam, shown.token, numbers=pasted, progress=lambda _, phase: phases.append(phase))
    assert phases == ["selection", "plan", "lines", "dossiers", "audit", "commit", "done"]
    assert count(db, "SELECT count(*) FROM app.dossiers WHERE version = 2 AND sale_total = 1040.00") == 10_000
    assert count(db, "SELECT count(*) FROM audit.events WHERE action = 'regulation' AND outcome = 'done'") == 10_000
    assert count(db, f"SELECT count(*) FROM app.regulation_dossiers WHERE regulation_id = {rid}") == 10_000

    back = undo(db, sam, rid)
    assert count(db, "SELECT count(*) FROM app.dossiers WHERE version = 3 AND sale_total = 1000.00") == 10_000
    assert (
        count(
            db,
            f"""SELECT count(*) FROM app.price_lines u JOIN app.price_lines o ON o.id = u.reverses_id
                WHERE u.source_id = '{back}' AND o.source_id = '{rid}'
                  AND u.unit_purchase_amount = -o.unit_purchase_amount AND u.unit_sale_amount = -o.unit_sale_amount""",
        )
        == 10_000
    )


def test_undo_is_audited_once_and_an_undo_is_not_undone(db: sa.Engine) -> None:
    alice, sam = actor(db, "alice", "agent"), actor(db, "sam", "senior_agent")
    number = f.dossier(db)
    rid = single(db, alice, number)
    back = undo(db, alice, rid)  # a single regulation needs only the 'regulation' permission
    assert dossier_state(db, number) == (3, Decimal("1000.00"), 3)
    with pytest.raises(InvalidInput, match=f"already undone by regulation {back}"):
        undo(db, sam, rid)
    with pytest.raises(InvalidInput, match="is an undo"):
        undo(db, sam, back)
    with pytest.raises(NotFound):
        undo(db, sam, 999_999)
    with pytest.raises(InvalidInput) as refused:
        undo(db, sam, rid, reason="")
    assert refused.value.field == "reason"
    assert [(e.actor, e.outcome) for e in events(db, "regulation_undo")] == [
        ("alice", "done"),  # the dossier's event
        ("alice", "done"),  # the undo's own
        ("sam", "refused"),
        ("sam", "refused"),
        ("sam", "refused"),
        ("sam", "refused"),
    ]
    with UnitOfWork(db) as uow:
        listed = {r.id: r for r in list_regulations(uow, sam)}
    assert listed[rid].reversed_by == back and listed[back].reverses_regulation_id == rid
    assert listed[back].purchase_value == Decimal("-35.50")


def test_the_database_refuses_to_change_a_regulation(db: sa.Engine) -> None:
    alice = actor(db, "alice", "agent")
    single(db, alice, f.dossier(db))
    for statement in (
        "UPDATE app.regulations SET reason = 'nothing happened'",
        "DELETE FROM app.regulation_dossiers",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="immutable"), db.begin() as conn:
            conn.execute(sa.text(statement))
