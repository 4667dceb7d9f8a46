"""A small data builder: writes app.* rows with SQL, so tests state only what they care about.

`dossier(...)` inserts a dossier with one hotel service and one price line by default; every
column can be overridden. Amounts are decimal strings, as everywhere else.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.domain.clock import accounting_today

DBT_MODELS = Path(__file__).resolve().parents[1] / "dbt_project" / "models"
APP_SCRIPT = str(Path(__file__).resolve().parents[1] / "apps" / "streamlit" / "streamlit_app.py")
PASSWORD = "correct horse battery"
# Tables whose rows are reference data written by migrations, kept between tests.
REFERENCE_TABLES = {"app.roles", "app.permissions", "app.role_permissions"}
_numbers = itertools.count(1)
_travellers = itertools.count(1)


def _insert(conn: sa.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f"CAST(:{k} AS jsonb)" if isinstance(row[k], dict) else f":{k}" for k in row)
    params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), params)


def dossier(
    engine: Engine,
    *,
    services: list[dict[str, Any]] | None = None,
    lines: list[dict[str, Any]] | None = None,
    travellers: list[dict[str, Any]] | None = None,
    schedule: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> str:
    """Insert a dossier (and its children); returns its number."""
    n = next(_numbers)
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "dossier_number": f"BK-2026-{n:06d}",
        "platform_version": 1,
        "status": "confirmed",
        "channel": "web",
        "brand": "Soleil",
        "currency": "EUR",
        "departure_date": accounting_today() + timedelta(days=60),
        "return_date": accounting_today() + timedelta(days=67),
        "destination": "Lisbonne",
        "destination_country": "PT",
        "client_id": f"C{n:05d}",
        "client_title": "M.",
        "client_first_name": "Paul",
        "client_last_name": f"Client{n}",
        "client_email": f"client{n}@example.com",
        "client_phone": "+33100000000",
        "client_language": "fr",
        "client_address": {"line1": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"},
        "sale_total": "1000.00",
        "created_at": now - timedelta(days=30),
        "updated_at": now - timedelta(days=30),
    }
    row.update(overrides)
    if row["return_date"] < row["departure_date"]:
        row["return_date"] = row["departure_date"] + timedelta(days=7)
    number = row["dossier_number"]
    services = services if services is not None else [{}]
    with engine.begin() as conn:
        _insert(conn, "app.dossiers", row)
        for i, extra in enumerate(services, start=1):
            _insert(
                conn,
                "app.services",
                {
                    "dossier_number": number,
                    "service_id": f"S{i}",
                    "kind": "hotel",
                    "supplier_code": "HOTEL01",
                    "supplier_reference": f"REF-{n}-{i}",
                    "label": "Hotel Miramar",
                    "start_date": row["departure_date"],
                    "end_date": row["return_date"],
                    "status": "confirmed",
                    **extra,
                },
            )
        default_line = (
            {"service_id": "S1", "quantity": 2, "unit_sale_amount": "500.00", "unit_purchase_amount": "400.00"}
            if services
            else {}
        )
        for i, extra in enumerate(lines if lines is not None else ([default_line] if services else []), start=1):
            _insert(
                conn,
                "app.price_lines",
                {
                    "dossier_number": number,
                    "line_id": f"L{i}",
                    "origin": "booking",
                    "booking_version": 1,
                    "label": "Double room",
                    "quantity": 1,
                    "unit_sale_amount": "0.00",
                    "sale_currency": row["currency"],
                    "unit_purchase_amount": "0.00",
                    "purchase_currency": "EUR",
                    "vat_rate": "0",
                    "supplier_code": "HOTEL01",
                    **extra,
                },
            )
        for t in travellers if travellers is not None else [{}]:
            _insert(
                conn,
                "app.travellers",
                {
                    "dossier_number": number,
                    "traveller_id": f"T{next(_travellers)}",
                    "first_name": row["client_first_name"],
                    "last_name": row["client_last_name"],
                    "kind": "adult",
                    **t,
                },
            )
        for seq, s in enumerate(schedule or [], start=1):
            _insert(
                conn,
                "app.payment_schedule",
                {
                    "dossier_number": number,
                    "seq": seq,
                    "kind": "deposit",
                    "method": "card_on_file",
                    **s,
                },
            )
    return number


def payment(engine: Engine, dossier_number: str, amount: str, status: str = "captured", **overrides: Any) -> str:
    payment_id = overrides.pop("payment_id", f"PAY-{next(_numbers):06d}")
    with engine.begin() as conn:
        _insert(
            conn,
            "app.payments",
            {
                "payment_id": payment_id,
                "dossier_number": dossier_number,
                "received_at": datetime.now(UTC),
                "method": "card",
                "amount": Decimal(amount),
                "currency": "EUR",
                "status": status,
                "provider": "adyen",
                "provider_reference": f"PSP{payment_id}",
                "payer_name": "Payer",
                **overrides,
            },
        )
    return payment_id


def user(engine: Engine, login: str, role: str = "agent", password: str = PASSWORD, locale: str = "fr") -> str:
    """Create an account through the service (so the password is hashed the real way)."""
    from backoffice.services.unit_of_work import UnitOfWork
    from backoffice.services.users import add_user

    with UnitOfWork(engine) as uow:
        add_user(uow, None, login, role, password, display_name=login.title(), locale=locale)
    return login


def ensure_dbt_views(database_url: str, views: list[str], args: list[str]) -> None:
    """Run `dbt <args>` unless every one of `views` (schema.name) exists already.

    Not a once-per-database cache: views over app.* stay current without a run, but a later dbt run
    that rebuilds one of their upstream relations and not them drops them (dbt replaces a relation
    and drops the old one with CASCADE), so a test checks they are there."""
    from backoffice.dbt_runner import run_dbt

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            missing = [v for v in views if conn.execute(sa.text("SELECT to_regclass(:v)"), {"v": v}).scalar() is None]
    finally:
        engine.dispose()
    if missing:
        run_dbt(args, database_url=database_url)


def build_price_lines_mart(database_url: str) -> None:
    """The Devis view (marts.dossier_price_lines), built with dbt if it is not there."""
    ensure_dbt_views(database_url, ["marts.dossier_price_lines"], ["run", "--select", "+dossier_price_lines"])


def bulk_dossiers(
    engine: Engine, count: int, *, prefix: str = "BK-2099-", supplier_code: str = "HOTEL01", kind: str = "hotel"
) -> list[str]:
    """`count` confirmed EUR dossiers in a few set-based statements (fast enough for 10,000), each
    with one service S1 of `supplier_code`/`kind` and one booking line (sale 1000.00, purchase 800.00)."""
    numbers = f"SELECT '{prefix}' || lpad(i::text, 6, '0') AS n FROM generate_series(1, :count) AS i"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency,
                        departure_date, return_date, destination, destination_country, client_id, client_first_name,
                        client_last_name, sale_total, created_at, updated_at)
                    SELECT n, 1, 'confirmed', 'web', 'Soleil', 'EUR', current_date + 60, current_date + 67,
                           'Lisbonne', 'PT', 'C-' || n, 'Paul', 'Bulk ' || n, 1000.00, now(), now()
                    FROM ({numbers}) x"""
            ),
            {"count": count},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.services (dossier_number, service_id, kind, supplier_code, label, status)
                    SELECT n, 'S1', :kind, :supplier, 'Hotel Miramar', 'confirmed' FROM ({numbers}) x"""
            ),
            {"count": count, "kind": kind, "supplier": supplier_code},
        )
        conn.execute(
            sa.text(
                f"""INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, booking_version, label,
                        quantity, unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
                        supplier_code)
                    SELECT n, 'S1', 'L1', 'booking', 1, 'Double room', 2, 500.00, 'EUR', 400.00, 'EUR', 0.10, :supplier
                    FROM ({numbers}) x"""
            ),
            {"count": count, "supplier": supplier_code},
        )
    return [f"{prefix}{i:06d}" for i in range(1, count + 1)]


def supplier(
    engine: Engine, code: str, *, name: str | None = None, email: str | None = None, language: str = "fr"
) -> str:
    """A row of app.suppliers, with the contact the modification mails use."""
    with engine.begin() as conn:
        _insert(
            conn,
            "app.suppliers",
            {
                "supplier_code": code,
                "name": name or f"Supplier {code}",
                "country": "FR",
                "currency": "EUR",
                "ledger_account": f"401{code}",
                "email": email,
                "language": language,
            },
        )
    return code


def invoice_seller(engine: Engine, brand: str = "*", **overrides: Any) -> None:
    """The seller printed on client invoices (migration 0012 seeds one; `db` empties it)."""
    row = {
        "brand": brand,
        "legal_name": "Voyages Soleil SAS",
        "address_line": "12 rue du Port",
        "postal_code": "13002",
        "city": "Marseille",
        "country": "FR",
        "vat_number": "FR12345678901",
        "siren": "345678901",
        "licence": "IM013100001",
        **overrides,
    }
    with engine.begin() as conn:
        _insert(conn, "app.invoice_sellers", row)


def build_accounting_entries_mart(database_url: str) -> None:
    """marts.accounting_entries (empty on empty app tables) and the views it reads, built with dbt
    unless they are all there. Not cached per database: another test's dbt run that rebuilds an
    upstream relation drops these views (a CI run failed so, on int_entries__supplier_invoices)."""
    refs = re.findall(r"ref\('(\w+)'\)", (DBT_MODELS / "marts" / "accounting_entries.sql").read_text())
    schemas = {"int": "intermediate", "stg": "staging"}  # seeds (tables) are never dropped so
    views = [f"{schemas[name.split('_')[0]]}.{name}" for name in refs if name.split("_")[0] in schemas]
    ensure_dbt_views(
        database_url,
        ["marts.accounting_entries", *views],
        ["build", "--select", "+accounting_entries", "--resource-type", "seed", "--resource-type", "model"],
    )


def journal_entry(
    engine: Engine,
    journal: str,
    number: int,
    validated_at: datetime,
    amount: str = "100.00",
    *,
    debit_account: str = "604000",
    credit_account: str = "401000",
    piece_ref: str | None = None,
    credit_amount: str | None = None,
    entry_date: date | None = None,
    **overrides: Any,
) -> None:
    """A posted two-line entry straight into marts.accounting_entries (built first with
    `build_accounting_entries_mart`); `credit_amount` other than `amount` makes it unbalanced."""
    when = entry_date or validated_at.date()
    base = {
        "journal_code": journal,
        "entry_number": number,
        "entry_date": when,
        "aux_account": None,
        "account_label": "Compte",
        "piece_ref": piece_ref or f"{journal}-{number}",
        "piece_date": when,
        "label": f"Ecriture {journal} {number}",
        "currency_amount": Decimal(amount),
        "currency": "EUR",
        "validated_at": validated_at,
        "source_type": "supplier_invoice",
        "source_id": f"{journal}/{when.year}/{number}",
        "dossier_number": None,
        **overrides,
    }
    rows = [
        {**base, "account": debit_account, "debit": Decimal(amount), "credit": Decimal("0.00")},
        {**base, "account": credit_account, "debit": Decimal("0.00"), "credit": Decimal(credit_amount or amount)},
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO marts.accounting_entries (journal_code, entry_number, entry_date, account, aux_account,
                       account_label, piece_ref, piece_date, label, debit, credit, currency_amount, currency,
                       validated_at, source_type, source_id, dossier_number)
                   VALUES (:journal_code, :entry_number, :entry_date, :account, :aux_account, :account_label,
                       :piece_ref, :piece_date, :label, :debit, :credit, :currency_amount, :currency,
                       :validated_at, :source_type, :source_id, :dossier_number)"""
            ),
            rows,
        )


def generated_days(
    engine: Engine, landing: Path, start: date, days: int, per_day: int, seed: int, payments: bool = False
) -> None:
    """Generate `days` days of the fictitious operator from `start` and load them day by day, as the
    pipeline does: suppliers, then each day's bookings (payments if asked) and supplier invoices."""
    from backoffice.generator import generate
    from backoffice.ingest import (
        load_bookings_day,
        load_payments_day,
        load_supplier_invoices_day,
        load_suppliers,
    )

    generate(landing, start, days, per_day, seed=seed)
    load_suppliers(start, landing, engine)
    for offset in range(days):
        day = start + timedelta(days=offset)
        load_bookings_day(day, landing, engine)
        if payments:
            load_payments_day(day, landing, engine)
        load_supplier_invoices_day(day, landing, engine)
