"""Registering supplier invoices by hand, and the dossier's supplier invoice reader, against the real
PostgreSQL and the dbt marts.

One data set for the module: supplier HOTREG (with a VAT number, so UBL and Factur-X sellers
resolve), three confirmed dossiers with a HOTREG hotel service, and dbt's billing marts built once
(seed + `+supplier_billing_status +supplier_invoice_line_matches`). Registered invoices and
decisions are immutable, so each test uses invoice numbers of its own.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt
from backoffice.domain.clock import accounting_today
from backoffice.domain.errors import InvalidInput, PermissionDenied
from backoffice.domain.periods import PeriodClosed
from backoffice.domain.permissions import Actor
from backoffice.generator.catalog import Supplier
from backoffice.generator.facturx_pdf import render_facturx
from backoffice.generator.supplier_invoices import Intent, InvoiceDoc
from backoffice.generator.ubl import render_ubl
from backoffice.ingest.invoice_contract import COLUMNS
from backoffice.queries import dossier_supplier_invoices as reader
from backoffice.services import reconciliation
from backoffice.services import supplier_invoice_registration as registration
from backoffice.services.unit_of_work import UnitOfWork

TODAY = accounting_today()
ACCOUNTANT = Actor("compta", "accountant", frozenset({"reconcile"}))
AGENT = Actor("agent1", "agent", frozenset({"search_dossiers"}))
SUPPLIER = Supplier(
    "HOTREG", "Hotel Registre", "FR", "FR55123456789", "FR76", "EUR", 30, "hotel", "ubl", "after_service", "0.10", "",
    False,
)  # fmt: skip


def _key() -> str:
    return uuid.uuid4().hex


def build_billing_marts(engine: Engine, database_url: str) -> None:
    """The seeds (unless this test database has them already) and the matching and billing marts,
    rebuilt whole: the fixture emptied their tables and the change logs, so an incremental build
    (after another module built them) would find nothing to recompute and leave them empty."""
    with engine.connect() as conn:
        seeded = conn.execute(sa.text("SELECT to_regclass('reference.exchange_rates') IS NOT NULL")).scalar_one()
    if not seeded:
        run_dbt(["seed", "--select", "exchange_rates"], database_url)
    run_dbt(
        ["run", "--full-refresh", "--select", "+supplier_billing_status", "+supplier_invoice_line_matches"],
        database_url,
    )


@pytest.fixture(scope="module")
def data(engine: Engine, database_url: str) -> Iterator[dict[str, str]]:
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
                   VALUES ('HOTREG', 'Hotel Registre', 'FR', 'FR55123456789', 'EUR', '401HOTREG')"""
            )
        )
    hotel = [{"service_id": "H1", "supplier_code": "HOTREG", "label": "Hotel Registre"}]
    numbers = {
        name: f.dossier(
            engine,
            services=hotel,
            lines=[{"service_id": "H1", "label": "Chambre", "unit_purchase_amount": amount, "supplier_code": "HOTREG"}],
        )
        for name, amount in (("a", "1100.00"), ("b", "600.00"))
    }
    # c: a second service cancelled, whose booking line no longer counts but its fee does (500.00 expected).
    numbers["c"] = f.dossier(
        engine,
        services=[*hotel, {"service_id": "H2", "supplier_code": "HOTREG", "label": "Annexe", "status": "cancelled"}],
        lines=[
            {"service_id": "H1", "label": "Chambre", "unit_purchase_amount": "450.00", "supplier_code": "HOTREG"},
            {"service_id": "H2", "label": "Annexe", "unit_purchase_amount": "300.00", "supplier_code": "HOTREG"},
            {
                "service_id": "H2",
                "origin": "cancellation_fee",
                "booking_version": None,
                "label": "Frais",
                "unit_purchase_amount": "50.00",
                "supplier_code": "HOTREG",
            },
        ],
    )
    build_billing_marts(engine, database_url)
    yield numbers


def line(reference: str = "", amount_excl_tax: str = "1000.00", vat_rate: str = "0.10", **overrides: str) -> dict:
    return {
        "reference": reference,
        "description": "Nuitees",
        "amount_excl_tax": amount_excl_tax,
        "vat_rate": vat_rate,
        "amount_incl_tax": overrides.pop("amount_incl_tax", ""),
        **overrides,
    }


def form(number: str, lines: list[dict] | None = None, **overrides: object) -> dict:
    return {
        "supplier_code": "HOTREG",
        "invoice_number": number,
        "kind": "invoice",
        "invoice_date": TODAY.isoformat(),
        "due_date": (TODAY + timedelta(days=30)).isoformat(),
        "currency": "EUR",
        "lines": lines if lines is not None else [line()],
        **overrides,
    }


def register(engine: Engine, actor: Actor = ACCOUNTANT, key: str | None = None, **request: object):
    with UnitOfWork(engine) as uow:
        return registration.register_form(uow, actor, **request, idempotency_key=key or _key())


def held(engine: Engine, number: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    """SELECT i.origin, i.source_file, l.line_number, l.reference, l.amount_incl_tax
                       FROM app.supplier_invoices i
                       JOIN app.supplier_invoice_lines l USING (supplier_code, invoice_number)
                       WHERE i.invoice_number = :n ORDER BY l.line_number"""
                ),
                {"n": number},
            )
        ]


def events(engine: Engine, outcome: str, actor: str = "compta") -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    """SELECT detail FROM audit.events WHERE actor = :a AND outcome = :o
                       AND action = 'supplier_invoice_registration' ORDER BY id"""
                ),
                {"a": actor, "o": outcome},
            ).scalars()
        )


def read(engine: Engine, dossier: str) -> reader.DossierSupplierInvoices:
    with engine.connect() as conn:
        return reader.read(conn, dossier)


@pytest.fixture
def eng(engine: Engine, data: dict[str, str]) -> Engine:
    return engine


def test_typed_invoice_registered_matched_at_once_replayed_and_conflicting(eng: Engine, data: dict[str, str]) -> None:
    a = data["a"]
    assert read(eng, a).billing[0].status == "not_invoiced"
    key = _key()
    request = form("FR-100", [line(reference=a)])
    done = register(eng, key=key, **request)
    assert done == registration.Registration((("HOTREG", "FR-100", "new"),), 1, True)
    assert held(eng, "FR-100") == [("manual", "manual/form", 1, a, Decimal("1100.00"))]
    view = read(eng, a)
    assert [(r.invoice_number, r.shown_state, r.allocated) for r in view.lines] == [("FR-100", "automatic", 1100)]
    assert view.billing[0].status == "invoiced"
    # The same request again: the first result, nothing written.
    assert register(eng, key=key, **request) == done
    # Registered again under another key: a no-op, audited as such.
    again = register(eng, **request)
    assert again.invoices == (("HOTREG", "FR-100", "unchanged"),) and again.lines == 0
    assert held(eng, "FR-100") == [("manual", "manual/form", 1, a, Decimal("1100.00"))]
    assert [d.split(":")[0] for d in events(eng, "done")[-2:]] == ["new", "unchanged"]
    # Other content under the same number: refused, naming the invoice held.
    with pytest.raises(InvalidInput) as refused:
        register(eng, **form("FR-100", [line(reference=a, amount_excl_tax="999.00")]))
    assert refused.value.field == "invoice_number"
    assert "invoice FR-100 of supplier HOTREG was already received with different content (manual/form)" in str(
        refused.value
    )
    assert "already received" in events(eng, "refused")[-1]
    assert held(eng, "FR-100") == [("manual", "manual/form", 1, a, Decimal("1100.00"))]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"supplier_code": "NOPE"}, "supplier_code"),
        ({"invoice_number": " "}, "invoice_number"),
        ({"kind": "bill"}, "kind"),
        ({"invoice_date": "20/11/2026"}, "invoice_date"),
        ({"due_date": (accounting_today() - timedelta(days=1)).isoformat()}, "due_date"),
        ({"currency": "EURO"}, "currency"),
        ({"lines": []}, "lines"),
        ({"lines": [line(amount_excl_tax="12,50")]}, "lines[1].amount_excl_tax"),
        ({"lines": [line(vat_rate="20")]}, "lines[1].vat_rate"),
        ({"lines": [line(), line(amount_incl_tax="1200.00")]}, "lines[2].amount_incl_tax"),
        ({"kind": "credit_note", "lines": [line(amount_excl_tax="-10.00")]}, "lines[1].amount_incl_tax"),
        ({"lines": [line(description="x" * 301)]}, "lines[1].description"),
        ({"lines": [{"amount": "1.00"}]}, "lines[1]"),
    ],
)
def test_each_bad_field_is_named_refused_audited_and_nothing_written(
    eng: Engine, data: dict[str, str], overrides: dict, field: str
) -> None:
    number = f"BAD-{uuid.uuid4().hex[:6]}"
    refused_before = len(events(eng, "refused"))
    with pytest.raises(InvalidInput) as refused:
        request = {"lines": [line()], **overrides}
        register(eng, **form(number, **request))
    assert refused.value.field == field
    assert len(events(eng, "refused")) == refused_before + 1
    assert held(eng, number) == []


def test_without_reconcile_refused_and_audited(eng: Engine, data: dict[str, str]) -> None:
    with pytest.raises(PermissionDenied):
        register(eng, AGENT, **form("FR-AGENT", [line()]))
    assert events(eng, "refused", "agent1") == [str(PermissionDenied("agent1", "reconcile"))]
    with pytest.raises(PermissionDenied), UnitOfWork(eng) as uow:
        registration.register_file(uow, AGENT, filename="x.csv", data=b"x", idempotency_key=_key())
    assert held(eng, "FR-AGENT") == []


def _doc(number: str, kind: str, reference: str) -> InvoiceDoc:
    lines = (
        Intent(0, "HOTREG", kind, "Nuitees", 40000, 44000, "0.10", reference, "dossier_number", reference),
        Intent(0, "HOTREG", kind, "Taxe de sejour", 1000, 1100, "0.10", "", "none", ""),
    )
    return InvoiceDoc(SUPPLIER, number, kind, TODAY.isoformat(), (TODAY + timedelta(days=30)).isoformat(), lines)


def _csv(doc: InvoiceDoc) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(doc.csv_rows())
    return out.getvalue().encode()


def test_the_three_file_formats_give_the_same_registered_lines(eng: Engine, data: dict[str, str]) -> None:
    doc = _doc("FX-200", "invoice", data["b"])
    files = {"fx.csv": _csv(doc), "fx.xml": render_ubl(doc), "fx.pdf": render_facturx(doc)}
    with eng.connect() as conn:
        previews = {name: registration.preview_file(conn, filename=name, data=body) for name, body in files.items()}
    assert all(not p.problems and [d.state for d in p.drafts] == ["new"] for p in previews.values())
    contents = {
        name: [(r.line_number, r.reference, r.description, r.amount_excl_tax, r.vat_rate, r.amount_incl_tax)
               for r in p.drafts[0].invoice.lines]
        for name, p in previews.items()
    }  # fmt: skip
    assert contents["fx.csv"] == contents["fx.xml"] == contents["fx.pdf"]
    assert contents["fx.csv"][0] == (1, data["b"], "Nuitees", Decimal("400.00"), Decimal("0.1000"), Decimal("440.00"))
    with UnitOfWork(eng) as uow:
        done = registration.register_file(
            uow, ACCOUNTANT, filename="fx.xml", data=files["fx.xml"], idempotency_key=_key()
        )
    assert done.invoices == (("HOTREG", "FX-200", "new"),) and done.lines == 2 and done.matched
    for name in ("fx.csv", "fx.pdf"):  # the same invoice in the other formats: nothing to add
        with UnitOfWork(eng) as uow:
            again = registration.register_file(uow, ACCOUNTANT, filename=name, data=files[name], idempotency_key=_key())
        assert again.invoices == (("HOTREG", "FX-200", "unchanged"),) and again.lines == 0
    assert [r[:2] for r in held(eng, "FX-200")] == [("manual", "manual/fx.xml")] * 2
    read(eng, data["b"])


def test_a_file_with_bad_lines_is_refused_naming_each_line(eng: Engine, data: dict[str, str]) -> None:
    body = _csv(_doc("FX-300", "invoice", data["b"])).replace(b",440.00", b",450.00")
    with eng.connect() as conn:
        preview = registration.preview_file(conn, filename="bad.csv", data=body)
    assert [(p.field, p.message.split(":")[0]) for p in preview.problems] == [("file", "line 2")]
    assert "amount_incl_tax: 450.00 is not amount_excl_tax 400.00" in preview.problems[0].message
    with pytest.raises(InvalidInput) as refused, UnitOfWork(eng) as uow:
        registration.register_file(uow, ACCOUNTANT, filename="bad.csv", data=body, idempotency_key=_key())
    assert refused.value.field == "file"
    with pytest.raises(InvalidInput, match="not well-formed XML"), UnitOfWork(eng) as uow:
        registration.register_file(uow, ACCOUNTANT, filename="bad.xml", data=b"<Invoice", idempotency_key=_key())
    with pytest.raises(InvalidInput, match="expected a"), UnitOfWork(eng) as uow:
        registration.register_file(uow, ACCOUNTANT, filename="bad.txt", data=b"x", idempotency_key=_key())
    assert held(eng, "FX-300") == []


def test_the_tab_shows_each_state_and_split(eng: Engine, data: dict[str, str]) -> None:
    a, b, c = data["a"], data["b"], data["c"]
    # Line 1 names dossier c; line 2 has no reference but c's open amount; line 3 names nothing (split
    # by hand over a and c); a credit note for c.
    register(
        eng,
        **form(
            "FR-400",
            [line(reference=c, amount_excl_tax="200.00", vat_rate="0"), line(amount_excl_tax="450.00", vat_rate="0"),
             line(reference="divers", amount_excl_tax="90.00", vat_rate="0")],
        ),
    )  # fmt: skip
    register(eng, **form("AV-400", [line(reference=c, amount_excl_tax="20.00", vat_rate="0")], kind="credit_note"))
    with UnitOfWork(eng) as uow:
        reconciliation.manual_match(
            uow,
            ACCOUNTANT,
            supplier_code="HOTREG",
            invoice_number="FR-400",
            line_number=3,
            allocations=[(a, "30.00"), (c, "60.00")],
            reason="split by phone",
            expected_decision_id=None,
            idempotency_key=_key(),
        )
    view_c = read(eng, c)
    shown = {(r.invoice_number, r.line_number): (r.shown_state, r.allocated) for r in view_c.lines}
    assert shown[("FR-400", 1)] == ("automatic", Decimal("200.00"))
    assert shown[("FR-400", 3)] == ("manual", Decimal("60.00"))
    assert shown[("AV-400", 1)] == ("automatic", Decimal("20.00"))
    # Line 2's amount is c's open hotel service, named by no other dossier: matched automatically too.
    assert shown[("FR-400", 2)] == ("automatic", Decimal("450.00"))
    # Expected 450 + the 50 fee (not the cancelled 300); invoiced 200 + 450 + 60 - 20.
    assert [(b.expected_amount, b.invoiced_amount, b.status) for b in view_c.billing] == [
        (Decimal("500.00"), Decimal("690.00"), "over_invoiced")
    ]
    view_a = read(eng, a)
    assert ("FR-400", 3, Decimal("30.00"), True) in [
        (r.invoice_number, r.line_number, r.allocated, r.is_split) for r in view_a.lines
    ]
    read(eng, b)


def test_reader_follows_withdrawn_matches_and_write_offs(eng: Engine, data: dict[str, str]) -> None:
    b = data["b"]
    register(eng, **form("FR-500", [line(reference=b, amount_excl_tax="100.00", vat_rate="0")]))
    assert ("FR-500", "automatic") in [(r.invoice_number, r.shown_state) for r in read(eng, b).lines]
    with eng.begin() as conn:
        # An accountant withdrew the automatic match (an unmatch replacing nothing), and wrote off 12.50.
        conn.execute(
            sa.text(
                """INSERT INTO app.reconciliation_decisions (supplier_code, invoice_number, line_number, decision,
                       dossier_number, decided_by, reason)
                   VALUES ('HOTREG', 'FR-500', 1, 'unmatch', :d, 'compta', 'not ours')"""
            ),
            {"d": b},
        )
        conn.execute(
            sa.text(
                """INSERT INTO app.write_offs (dossier_number, supplier_code, amount, invoiced_amount, expected_amount,
                       currency, threshold, reason, created_by)
                   VALUES (:d, 'HOTREG', -12.50, 0, 12.50, 'EUR', 50.00, 'rounding', 'compta')"""
            ),
            {"d": b},
        )
    view = read(eng, b)
    assert ("FR-500", "automatic") not in [(r.invoice_number, r.shown_state) for r in view.lines]
    assert [w.written_off_amount for w in view.billing] == [Decimal("-12.50")]


def test_reader_follows_a_confirm_and_a_rejection(eng: Engine, data: dict[str, str]) -> None:
    a = data["a"]
    register(
        eng, **form("FR-600", [line(reference=a, amount_excl_tax="5.00"), line(reference=a, amount_excl_tax="7.00")])
    )
    key = {"supplier_code": "HOTREG", "invoice_number": "FR-600", "expected_decision_id": None}
    with UnitOfWork(eng) as uow:
        reconciliation.confirm(uow, ACCOUNTANT, **key, line_number=1, dossier_number=a, idempotency_key=_key())
    with UnitOfWork(eng) as uow:
        reconciliation.reject(
            uow, ACCOUNTANT, **key, line_number=2, dossier_number=a, reason="not ours", idempotency_key=_key()
        )
    view = read(eng, a)
    shown = {(r.invoice_number, r.line_number): r.shown_state for r in view.lines}
    assert shown.get(("FR-600", 1)) == "confirmed"
    assert ("FR-600", 2) not in shown


def test_an_invoice_dated_in_a_closed_period_is_refused_and_audited(eng: Engine, data: dict[str, str]) -> None:
    closed = TODAY - timedelta(days=400)
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO app.closed_periods (granularity, period_start, period_end, closed_by)
                   VALUES ('day', :d, :d, 'compta')"""
            ),
            {"d": closed},
        )
    with pytest.raises(PeriodClosed, match="refused: the day"):
        register(eng, **form("FR-CLOSED", [line()], invoice_date=closed.isoformat()))
    assert "refused: the day" in events(eng, "refused")[-1]
    assert held(eng, "FR-CLOSED") == []
