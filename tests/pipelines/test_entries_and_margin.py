"""Margin under the travel agents' scheme and the accounting entries, built by dbt on a small dataset.

Two dossiers: one in Portugal (every service in the EU), one in Morocco with an insurance bought
in France (a small EU part); payments, a refund and a failed attempt; a supplier invoice over two
dossiers and a credit note. The margin VAT is checked against a computation written here from the
rule (CGI art. 268 bis, Directive 2006/112 art. 306-310), the entries against what was recorded,
and a second build after a new payment must keep every entry number already given. On the same
data, client invoices and a credit note issued by the service give the sales journal (VE).
"""

from __future__ import annotations

import csv
import uuid
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from factories import dossier, invoice_seller, payment
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt
from backoffice.domain.permissions import Actor
from backoffice.services.client_invoices import issue_credit_note, issue_invoice
from backoffice.services.unit_of_work import UnitOfWork

EU = "BK-2026-900001"
MOROCCO = "BK-2026-900002"
AS_OF = ["--vars", "{accounting_as_of: '2026-11-26'}"]
# Our models and their parents with the data tests of what we build. Left out: tests of other
# marts that merely share a parent (cautious), staging's tests and the unit tests, which the
# project's own `dbt build` runs and which this dataset adds nothing to.
SELECT = [
    "--select",
    "+accounting_entries +dossier_margin +int_client__balances",
    "--indirect-selection",
    "cautious",
    "--exclude",
    "path:models/staging,resource_type:test",
    "test_type:unit",
]
CENT = Decimal("0.01")

SUPPLIERS = [
    ("HOTPT", "Hotel Lisboa", "PT", "401HOTPT"),
    ("AIRFR", "Air Francaise", "FR", "401AIRFR"),
    ("HOTMA", "Riad Atlas", "MA", "401HOTMA"),
    ("INSFR", "Assur Voyage", "FR", "401INSFR"),
]


def margin_vat(sale: Decimal, costs: list[tuple[Decimal, bool]]) -> tuple[Decimal, Decimal]:
    """(margin, VAT) of one dossier: VAT is included in the margin, only on its EU part, never negative."""
    total = sum((amount for amount, _ in costs), Decimal(0))
    in_eu = sum((amount for amount, eu in costs if eu), Decimal(0))
    margin = sale - total
    if margin <= 0:
        return margin, Decimal("0.00")
    return margin, (margin * in_eu / total * Decimal("0.20") / Decimal("1.20")).quantize(CENT, ROUND_HALF_UP)


def _insert(db: Engine, sql: str, rows: list[dict[str, Any]]) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(sql), rows)


def _dataset(db: Engine) -> None:
    _insert(
        db,
        "INSERT INTO app.suppliers (supplier_code, name, country, currency, ledger_account) "
        "VALUES (:code, :name, :country, 'EUR', :ledger)",
        [dict(zip(("code", "name", "country", "ledger"), s, strict=True)) for s in SUPPLIERS],
    )
    dossier(
        db,
        dossier_number=EU,
        destination="Lisbonne",
        destination_country="PT",
        client_id="C900001",
        departure_date=date(2026, 10, 1),
        return_date=date(2026, 10, 8),
        services=[{"kind": "hotel", "supplier_code": "HOTPT"}, {"kind": "flight", "supplier_code": "AIRFR"}],
        lines=[
            {
                "service_id": "S1",
                "unit_sale_amount": "1200.00",
                "unit_purchase_amount": "900.00",
                "supplier_code": "HOTPT",
            },
            {
                "service_id": "S2",
                "unit_sale_amount": "200.00",
                "unit_purchase_amount": "150.00",
                "quantity": 2,
                "supplier_code": "AIRFR",
            },
        ],
    )
    dossier(
        db,
        dossier_number=MOROCCO,
        destination="Marrakech",
        destination_country="MA",
        client_id="C900002",
        departure_date=date(2027, 2, 1),
        return_date=date(2027, 2, 8),
        services=[
            {"kind": "hotel", "supplier_code": "HOTMA"},
            {"kind": "flight", "supplier_code": "AIRFR"},
            {"kind": "insurance", "supplier_code": "INSFR"},
        ],
        lines=[
            {
                "service_id": "S1",
                "unit_sale_amount": "1500.00",
                "unit_purchase_amount": "1100.00",
                "supplier_code": "HOTMA",
            },
            {
                "service_id": "S2",
                "unit_sale_amount": "500.00",
                "unit_purchase_amount": "400.00",
                "supplier_code": "AIRFR",
            },
            {
                "service_id": "S3",
                "unit_sale_amount": "100.00",
                "unit_purchase_amount": "60.00",
                "supplier_code": "INSFR",
            },
        ],
        schedule=[
            {"due_date": date(2026, 7, 1), "amount": "600.00", "kind": "deposit"},
            {"due_date": date(2027, 1, 1), "amount": "1500.00", "kind": "balance"},
        ],
    )
    # A quote with nothing paid has no margin to speak of.
    dossier(db, dossier_number="BK-2026-900003", status="quote")
    for payment_id, number, amount, status, method, day in [
        ("PAY-A1", EU, "500.00", "captured", "card", "2026-06-01 10:00+00"),
        ("PAY-B1", MOROCCO, "600.00", "captured", "card", "2026-07-01 10:00+00"),
        ("PAY-B2", MOROCCO, "-100.00", "refunded", "card", "2026-08-01 10:00+00"),
        ("PAY-B3", MOROCCO, "300.00", "failed", "card", "2026-08-02 10:00+00"),
        ("PAY-A2", EU, "1100.00", "captured", "cheque", "2026-09-01 10:00+00"),
    ]:
        payment(db, number, amount, status, payment_id=payment_id, method=method, received_at=day, created_at=day)
    _insert(
        db,
        "INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency, "
        "sha256, source_file, received_at) VALUES (:s, :n, :k, :d, 'EUR', 'x', 'f.csv', :r)",
        [
            {"s": "HOTPT", "n": "PT-1", "k": "invoice", "d": date(2026, 10, 10), "r": "2026-10-12 08:00+00"},
            {"s": "AIRFR", "n": "AF-7", "k": "invoice", "d": date(2026, 10, 11), "r": "2026-10-12 09:00+00"},
            {"s": "HOTPT", "n": "PT-1-AV", "k": "credit_note", "d": date(2026, 10, 20), "r": "2026-10-21 08:00+00"},
        ],
    )
    _insert(
        db,
        "INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference, "
        "description, amount_excl_tax, vat_rate, amount_incl_tax) VALUES (:s, :n, :l, :ref, 'x', :a, 0, :a)",
        [
            {"s": "HOTPT", "n": "PT-1", "l": 1, "ref": f"Dossier {EU} Lisboa", "a": Decimal("950.00")},
            {"s": "AIRFR", "n": "AF-7", "l": 1, "ref": EU.lower(), "a": Decimal("320.00")},
            {"s": "AIRFR", "n": "AF-7", "l": 2, "ref": f"PNR X7 / {MOROCCO}", "a": Decimal("400.00")},
            {"s": "HOTPT", "n": "PT-1-AV", "l": 1, "ref": EU, "a": Decimal("50.00")},
        ],
    )


def _rows(db: Engine, sql: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def test_margin_vat_and_entries(db: Engine, database_url: str) -> None:
    _dataset(db)

    run_dbt(["build", *SELECT, *AS_OF], database_url)

    margins = {r["dossier_number"]: r for r in _rows(db, "SELECT * FROM marts.dossier_margin")}
    assert set(margins) == {EU, MOROCCO}
    # Portugal: hotel and an intra-EU flight, both invoiced (the credit note subtracted): actual.
    estimated, vat_estimated = margin_vat(Decimal(1600), [(Decimal(900), True), (Decimal(300), True)])
    actual, vat_actual = margin_vat(Decimal(1600), [(Decimal(950 - 50), True), (Decimal(320), True)])
    pt = margins[EU]
    assert (pt["margin_estimated"], pt["margin_vat_estimated"]) == (estimated, vat_estimated)
    assert (pt["purchase_total_actual"], pt["margin_actual"], pt["margin_vat_actual"]) == (
        Decimal(1220),
        actual,
        vat_actual,
    )
    assert (pt["computed_from"], pt["eu_share"]) == ("actual", Decimal(1))
    # Morocco: hotel and flight outside the EU, insurance from France; the hotel is not invoiced yet.
    estimated, vat_estimated = margin_vat(
        Decimal(2100), [(Decimal(1100), False), (Decimal(400), False), (Decimal(60), True)]
    )
    ma = margins[MOROCCO]
    assert (
        (ma["margin_estimated"], ma["margin_vat_estimated"])
        == (estimated, vat_estimated)
        == (Decimal(540), Decimal("3.46"))
    )
    assert ma["computed_from"] == "estimated"
    assert ma["eu_share"] == (Decimal(60) / Decimal(1560)).quantize(Decimal("0.000001"), ROUND_HALF_UP)

    balance = _rows(db, f"SELECT * FROM intermediate.int_client__balances WHERE dossier_number = '{MOROCCO}'")[0]
    assert (balance["client_paid_amount"], balance["client_refunded_amount"], balance["client_balance_due"]) == (
        Decimal(500),
        Decimal(100),
        Decimal(1600),
    )
    # 500 paid against a 600 deposit: the deposit is still what is due next, for its remaining 100.
    assert (balance["next_payment_due_date"], balance["next_payment_amount"]) == (date(2026, 7, 1), Decimal(100))

    entries = _rows(db, "SELECT * FROM marts.accounting_entries")
    by_entry: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        by_entry[(e["journal_code"], e["entry_date"].year, e["entry_number"])].append(e)
    for key, lines in by_entry.items():
        assert sum(x["debit"] for x in lines) == sum(x["credit"] for x in lines), key
    numbers = defaultdict(list)
    for journal, year, number in by_entry:
        numbers[(journal, year)].append(number)
    assert {k: sorted(v) for k, v in numbers.items()} == {
        ("AC", 2026): [1, 2, 3],
        ("BQ", 2026): [1, 2, 3, 4],
        ("OD", 2026): [1],
    }

    def posted(journal: str, account: str, column: str) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for e in entries:
            if e["journal_code"] == journal and e["account"] == account:
                sums[e["aux_account"] or e["dossier_number"]] += (
                    e[column] - e["debit" if column == "credit" else "credit"]
                )
        return dict(sums)

    # Net money-moving payments on each client's 411 account (the failed attempt is not posted).
    assert posted("BQ", "411", "credit") == {"411C900001": Decimal(1600), "411C900002": Decimal(500)}
    # The cheque waits on 5112, the cards went to the bank.
    assert posted("BQ", "5112", "debit") == {EU: Decimal(1100)}
    # Each supplier's 401 account holds its signed invoice totals (the credit note subtracted).
    assert posted("AC", "401", "credit") == {"401HOTPT": Decimal(900), "401AIRFR": Decimal(720)}
    assert posted("AC", "604", "debit") == {EU: Decimal(1220), MOROCCO: Decimal(400)}
    # Margin VAT of the departed dossier only (Morocco leaves in 2027), on its final margin.
    od = {e["account"]: e for e in entries if e["journal_code"] == "OD"}
    assert (od["706"]["debit"], od["44571"]["credit"], od["706"]["entry_date"]) == (
        vat_actual,
        vat_actual,
        date(2026, 10, 1),
    )
    # In validation order: the first bank entry is the first payment recorded.
    first_bq = {e["source_id"] for e in by_entry[("BQ", 2026, 1)]}
    assert first_bq == {"PAY-A1"}

    numbered = {(e["source_type"], e["source_id"], e["account"]): e["entry_number"] for e in entries}
    # A payment recorded now, dated before the others: it still comes after every number given.
    payment(db, MOROCCO, "250.00", payment_id="PAY-B4", method="transfer", received_at="2026-11-20 10:00+00")

    run_dbt(["build", "--select", "accounting_entries", "--indirect-selection", "cautious", *AS_OF], database_url)

    after = _rows(db, "SELECT * FROM marts.accounting_entries")
    renumbered = {(e["source_type"], e["source_id"], e["account"]): e["entry_number"] for e in after}
    assert {k: v for k, v in renumbered.items() if k in numbered} == numbered
    assert {v for k, v in renumbered.items() if k[1] == "PAY-B4"} == {5}
    assert len(after) == len(entries) + 2

    run_dbt(["run", "--select", "accounting_entries", "--full-refresh", *AS_OF], database_url)

    rebuilt = _rows(db, "SELECT * FROM marts.accounting_entries")
    assert {(e["source_type"], e["source_id"], e["account"]): e["entry_number"] for e in rebuilt} == renumbered


US = "BK-2026-900004"
EXCHANGE_RATES = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "exchange_rates.csv"


def _accountant(db: Engine) -> Actor:
    """An accountant with the permissions the database maps to the role (no login: none is needed here)."""
    with db.connect() as conn:
        permissions = conn.execute(
            sa.text("SELECT permission FROM app.role_permissions WHERE role = 'accountant'")
        ).scalars()
        return Actor("compta", "accountant", frozenset(permissions))


def _rate_to_eur(currency: str, day: date) -> Decimal:
    """The seed's rate of `day`: the latest one on or before it."""
    with EXCHANGE_RATES.open() as f:
        rates = [
            r for r in csv.DictReader(f) if r["currency"] == currency and date.fromisoformat(r["rate_date"]) <= day
        ]
    return Decimal(max(rates, key=lambda r: r["rate_date"])["rate_to_eur"])


def test_sales_journal_from_client_invoices(db: Engine, database_url: str) -> None:
    """Client invoices and credit notes issued by the service post balanced VE entries (411 + the
    client / 706, VAT included), numbered after the ones already posted, converted to EUR; the
    client's invoiced amount is the invoices net of credit notes."""
    _dataset(db)
    invoice_seller(db)
    compta = _accountant(db)
    dossier(
        db, dossier_number=US, currency="USD", destination="New York", destination_country="US", client_id="C900004"
    )

    def issue(number: str) -> dict[str, Any]:
        with UnitOfWork(db) as uow:
            return issue_invoice(
                uow, compta, dossier_number=number, expected_version=1, idempotency_key=uuid.uuid4().hex
            )

    eu_invoice, us_invoice = issue(EU), issue(US)

    run_dbt(["build", *SELECT, *AS_OF], database_url)

    def sales_entries() -> dict[str, list[dict[str, Any]]]:
        by_piece: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in _rows(db, "SELECT * FROM marts.accounting_entries WHERE journal_code = 'VE'"):
            by_piece[e["source_id"]].append(e)
        return dict(by_piece)

    def invoices() -> dict[str, Any]:
        return {r["invoice_number"]: r for r in _rows(db, "SELECT * FROM app.client_invoices")}

    def invoiced(number: str) -> Decimal:
        return _rows(
            db,
            f"SELECT client_invoiced_amount FROM intermediate.int_client__balances WHERE dossier_number = '{number}'",
        )[0]["client_invoiced_amount"]

    def check(entry: list[dict[str, Any]], invoice: dict[str, Any], client: str, eur: Decimal) -> None:
        """One entry: 411 + client on one side, 706 on the other, for the invoice total."""
        sides = {e["account"]: e for e in entry}
        assert set(sides) == {"411", "706"}
        client_side, sales_side = sides["411"], sides["706"]
        debit_411 = invoice["kind"] == "invoice"
        assert (client_side["debit"], client_side["credit"]) == ((eur, 0) if debit_411 else (0, eur))
        assert (sales_side["debit"], sales_side["credit"]) == ((0, eur) if debit_411 else (eur, 0))
        assert (client_side["aux_account"], sales_side["aux_account"]) == (client, None)
        for e in entry:
            assert (e["entry_date"], e["piece_date"], e["piece_ref"], e["validated_at"]) == (
                invoice["issue_date"],
                invoice["issue_date"],
                invoice["invoice_number"],
                invoice["issued_at"],
            )
            assert (e["source_type"], e["currency"], e["currency_amount"]) == (
                "client_invoice",
                invoice["currency"].strip(),
                invoice["total_amount"],
            )
            assert e["dossier_number"] == invoice["dossier_number"]

    issued = invoices()
    first = sales_entries()
    assert set(first) == {eu_invoice["invoice_number"], us_invoice["invoice_number"]}
    eu = issued[eu_invoice["invoice_number"]]
    us = issued[us_invoice["invoice_number"]]
    assert (eu["total_amount"], us["total_amount"]) == (Decimal(1600), Decimal(1000))
    check(first[eu["invoice_number"]], eu, "411C900001", Decimal(1600))
    us_eur = (Decimal(1000) * _rate_to_eur("USD", us["issue_date"])).quantize(CENT, ROUND_HALF_UP)
    assert us_eur != Decimal(1000)
    check(first[us["invoice_number"]], us, "411C900004", us_eur)
    # The VE journal is numbered on its own, in issue order; the other journals are untouched.
    numbers = {piece: {e["entry_number"] for e in lines} for piece, lines in first.items()}
    assert numbers == {eu["invoice_number"]: {1}, us["invoice_number"]: {2}}
    assert (invoiced(EU), invoiced(US), invoiced(MOROCCO)) == (Decimal(1600), Decimal(1000), Decimal(0))

    with UnitOfWork(db) as uow:
        credit_note = issue_credit_note(
            uow, compta, invoice_number=eu["invoice_number"], reason="trip cancelled", idempotency_key="cn-1"
        )

    # The incremental run and the singular test of VE against the invoices (named: it has a
    # staging parent, and rebuilding a staging view would drop the views that depend on it).
    entries_and_check = "accounting_entries accounting_entries_client_invoices"
    run_dbt(["build", "--select", entries_and_check, "--indirect-selection", "cautious", *AS_OF], database_url)

    after = sales_entries()
    note = invoices()[credit_note["invoice_number"]]
    assert note["kind"] == "credit_note" and note["cited_invoice"] == eu["invoice_number"]
    check(after[note["invoice_number"]], note, "411C900001", Decimal(1600))
    # Numbered after the entries already posted, which keep theirs.
    assert {e["entry_number"] for e in after[note["invoice_number"]]} == {3}
    assert {piece: {e["entry_number"] for e in lines} for piece, lines in after.items() if piece in first} == numbers
    assert (invoiced(EU), invoiced(US)) == (Decimal(0), Decimal(1000))
    # Every entry of every journal still balances, and the 411 side of VE is the signed invoices.
    by_entry: dict[tuple[str, int, int], Decimal] = defaultdict(Decimal)
    for e in _rows(db, "SELECT * FROM marts.accounting_entries"):
        by_entry[(e["journal_code"], e["entry_date"].year, e["entry_number"])] += e["debit"] - e["credit"]
    assert set(by_entry.values()) == {Decimal(0)}
    assert {(j, n) for j, _, n in by_entry if j in ("AC", "BQ", "OD")} == {
        ("AC", 1),
        ("AC", 2),
        ("AC", 3),
        ("BQ", 1),
        ("BQ", 2),
        ("BQ", 3),
        ("BQ", 4),
        ("OD", 1),
    }
    client_411 = defaultdict(Decimal)
    for lines in after.values():
        for e in lines:
            if e["account"] == "411":
                client_411[e["aux_account"]] += e["debit"] - e["credit"]
    assert dict(client_411) == {"411C900001": Decimal(0), "411C900004": us_eur}
