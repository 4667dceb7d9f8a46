"""A bounded load generator at the service boundary: concurrent sessions acting on overlapping dossiers.

Each session is a thread with its own actor. It loops until the time is up: reads a dossier as a
page would (its version), thinks a little, then acts on it as of that version: records a payment,
refunds part of one, adds a price adjustment, applies a supplier regulation, issues an invoice, or
applies a mass regulation over a few dossiers that other sessions are editing too. Dossiers are
few, so sessions collide all the time: the stale ones must be refused, never applied on top.

`check(engine, report)` then states what the ledger must hold after any such run, each check
returning the rows that disagree:
- zero lost updates: each dossier's version is 1 + the writes that succeeded on it;
- each dossier's stored sale total equals its Devis lines;
- zero duplicates: every payment id and refund a session was told about exists exactly once, and
  the audit log holds one `done` event per success;
- refunds never exceed payments; invoice numbers continuous.
Errors other than the expected, explained kinds (stale version, a limit, a changed preview, nothing
left to invoice) are failures.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from backoffice.db.sale_total import active_sale_total
from backoffice.domain.errors import ConcurrentConflict, InvalidInput, StaleVersion
from backoffice.domain.permissions import Actor
from backoffice.services import client_invoices, payments, price_adjustments, refunds, regulations
from backoffice.services.unit_of_work import UnitOfWork

# What a refusal may be under contention: anything else is a bug.
EXPECTED = (StaleVersion, InvalidInput, regulations.PreviewChanged, ConcurrentConflict)
# Actions that move a dossier's version by one on each dossier they touch.
VERSIONED = ("payment", "refund", "adjustment", "regulation", "mass_regulation")
PERMISSION = {
    "payment": "record_payment",
    "refund": "refund",
    "adjustment": "price_adjustment",
    "regulation": "regulation",
    "invoice": "issue_invoice",
    "mass_regulation": "mass_regulation",
}


@dataclass
class Report:
    sessions: int
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)  # "action: done" / "action: StaleVersion"
    writes: Counter[str] = field(default_factory=Counter)  # dossier -> successful versioned writes
    payment_ids: list[str] = field(default_factory=list)
    refund_ids: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def actions(self) -> int:
        return sum(self.outcomes.values())

    def done(self, action: str) -> int:
        return self.outcomes[f"{action}: done"]


def _version(engine: sa.Engine, number: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT version FROM app.dossiers WHERE dossier_number = :n"), {"n": number}
        ).scalar_one()


def _payment_of(engine: sa.Engine, number: str, rng: random.Random) -> str | None:
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.text("SELECT payment_id FROM app.dossier_payments WHERE dossier_number = :n AND amount > 0"),
                {"n": number},
            )
            .scalars()
            .all()
        )
    return rng.choice(sorted(ids)) if ids else None


def _session(engine: sa.Engine, actor: Actor, dossiers: list[str], deadline: float, seed: int, report: Report) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        number = rng.choice(dossiers)
        version = _version(engine, number)
        time.sleep(rng.uniform(0, 0.02))  # the person reads the page: others write meanwhile
        action = rng.choice(("payment", "payment", "refund", "adjustment", "regulation", "invoice", "mass_regulation"))
        if not actor.can(PERMISSION[action]):
            continue  # a person only sees the buttons of their role (refusals have their own tests)
        touched = [number]
        try:
            with UnitOfWork(engine) as uow:
                key = uuid.uuid4().hex
                if action == "payment":
                    pid = payments.record_payment(
                        uow, actor, dossier_number=number, method="transfer", amount=f"{rng.randint(10, 400)}.00",
                        reference=f"VIR-{key[:8]}", expected_version=version, idempotency_key=key,
                    )  # fmt: skip
                    with report.lock:
                        report.payment_ids.append(pid)
                elif action == "refund":
                    paid = _payment_of(engine, number, rng)
                    if paid is None:
                        continue
                    done = refunds.request_refund(
                        uow, actor, dossier_number=number, payment_id=paid, amount=f"{rng.randint(1, 200)}.00",
                        reason="load test", expected_version=version, idempotency_key=key,
                    )  # fmt: skip
                    with report.lock:
                        report.refund_ids.append(done.id)
                elif action == "adjustment":
                    price_adjustments.add_price_adjustment(
                        uow, actor, dossier_number=number, label="Supplement", quantity=1,
                        unit_sale_amount=f"{rng.randint(-50, 120)}.00", unit_purchase_amount="10.00", vat_rate="0",
                        reason="load test", expected_version=version, idempotency_key=key,
                    )  # fmt: skip
                elif action == "regulation":
                    regulations.apply_regulation(
                        uow, actor, dossier_number=number, supplier_code="HOTEL01", service_kinds=["hotel"],
                        mode="amount", purchase_value="5.00", sale_value="5.00", currency="EUR", reason="load test",
                        expected_version=version, idempotency_key=key,
                    )  # fmt: skip
                elif action == "invoice":
                    client_invoices.issue_invoice(
                        uow, actor, dossier_number=number, expected_version=version, idempotency_key=key,
                        reason="Devis lowered",
                    )  # fmt: skip
                else:
                    touched = rng.sample(dossiers, 3)
                    arguments: dict[str, Any] = {
                        "supplier_code": "HOTEL01", "service_kinds": ["hotel"], "mode": "amount",
                        "purchase_value": "2.00", "sale_value": "2.00", "currency": "EUR", "reason": "load test",
                        "numbers": touched,
                    }  # fmt: skip
                    preview = regulations.preview_mass_regulation(uow, actor, **arguments)
                    time.sleep(rng.uniform(0, 0.02))
                    with UnitOfWork(engine) as apply_uow:
                        regulations.apply_mass_regulation(
                            apply_uow, actor, preview_token=preview.token, idempotency_key=key, **arguments
                        )
        except EXPECTED as error:
            with report.lock:
                report.outcomes[f"{action}: {type(error).__name__}"] += 1
            continue
        except Exception as error:  # an unexplained error is what this run looks for
            with report.lock:
                report.unexpected.append(f"{action} on {touched}: {type(error).__name__}: {error}")
                report.outcomes[f"{action}: unexpected"] += 1
            continue
        with report.lock:
            report.outcomes[f"{action}: done"] += 1
            if action in VERSIONED:
                report.writes.update(touched)


def run(engine: sa.Engine, actors: list[Actor], dossiers: list[str], seconds: float, seed: int = 7) -> Report:
    """`len(actors)` sessions acting on `dossiers` for `seconds`; returns what they did."""
    report = Report(sessions=len(actors), seconds=seconds)
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_session, args=(engine, actor, dossiers, deadline, seed + i, report), daemon=True)
        for i, actor in enumerate(actors)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report


Check = Callable[[sa.Connection, Report], list[Any]]


def lost_updates(conn: sa.Connection, report: Report) -> list[Any]:
    """Dossiers whose version is not 1 + the writes that succeeded on them."""
    versions = dict(conn.execute(sa.text("SELECT dossier_number, version FROM app.dossiers")).all())
    return [(n, v, 1 + report.writes[n]) for n, v in sorted(versions.items()) if v != 1 + report.writes[n]]


def totals_off(conn: sa.Connection, report: Report) -> list[Any]:
    """Dossiers whose stored sale total is not what their Devis lines add up to."""
    devis = active_sale_total(
        "app.dossiers",
        """(SELECT l.dossier_number, l.service_id, l.origin, l.sale_total
            FROM app.price_lines l JOIN app.dossiers o ON o.dossier_number = l.dossier_number
            WHERE l.origin <> 'booking' OR l.booking_version = o.platform_version)""",
        "(SELECT dossier_number, service_id FROM app.services WHERE status = 'cancelled')",
    )
    return conn.execute(
        sa.text(
            f"""SELECT d.dossier_number, d.sale_total, t.sale_total FROM app.dossiers d
                JOIN ({devis}) t USING (dossier_number) WHERE d.sale_total <> t.sale_total"""
        )
    ).all()


def duplicates(conn: sa.Connection, report: Report) -> list[Any]:
    """Payments and refunds told to a session that are not in the database exactly once."""
    found = Counter(
        conn.execute(
            sa.text("SELECT payment_id FROM app.payments WHERE payment_id = ANY(:ids)"), {"ids": report.payment_ids}
        )
        .scalars()
        .all()
    )
    refunds_found = Counter(
        conn.execute(sa.text("SELECT id FROM app.refunds WHERE id = ANY(:ids)"), {"ids": report.refund_ids})
        .scalars()
        .all()
    )
    told = Counter(report.payment_ids) + Counter(f"refund {i}" for i in report.refund_ids)
    have = found + Counter(f"refund {i}" for i in refunds_found.elements())
    return sorted((k, told[k], have[k]) for k in told | have if told[k] != 1 or have[k] != 1)


def audit_mismatch(conn: sa.Connection, report: Report) -> list[Any]:
    """Actions whose `done` audit events differ from the successes the sessions counted."""
    events = dict(
        conn.execute(
            sa.text(
                """SELECT action, count(*) FROM audit.events WHERE outcome = 'done'
                   AND action IN ('record_payment', 'refund', 'price_adjustment', 'issue_invoice', 'mass_regulation')
                   GROUP BY action"""
            )
        ).all()
    )
    expected = {
        "record_payment": report.done("payment"),
        "refund": report.done("refund"),
        "price_adjustment": report.done("adjustment"),
        "issue_invoice": report.done("invoice"),
        "mass_regulation": report.done("mass_regulation"),
    }
    return [(a, n, events.get(a, 0)) for a, n in expected.items() if events.get(a, 0) != n]


def overdrawn(conn: sa.Connection, report: Report) -> list[Any]:
    """Dossiers refunded beyond what was paid on them, and broken invoice series."""
    refunds_over = conn.execute(
        sa.text(
            """SELECT dossier_number FROM app.dossier_payments GROUP BY dossier_number
               HAVING sum(amount) < 0"""
        )
    ).all()
    gaps = conn.execute(
        sa.text(
            """SELECT brand, series, year FROM app.client_invoices GROUP BY brand, series, year
               HAVING max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)"""
        )
    ).all()
    return [*refunds_over, *gaps]


CHECKS: tuple[Check, ...] = (lost_updates, totals_off, duplicates, audit_mismatch, overdrawn)


def check(engine: sa.Engine, report: Report) -> dict[str, list[Any]]:
    """Every check's disagreeing rows (empty lists when the run kept the ledger whole)."""
    with engine.connect() as conn:
        found = {c.__name__: c(conn, report) for c in CHECKS}
    found["unexpected errors"] = report.unexpected
    return found


def paid_total(engine: sa.Engine) -> Decimal:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT coalesce(sum(amount), 0) FROM app.dossier_payments")).scalar_one()


# (sessions, seconds, dossiers) per scale: few dossiers, so sessions collide on purpose.
LOAD = {"tiny": (4, 5, 4), "small": (20, 30, 10), "medium": (20, 60, 20), "full": (20, 120, 20)}
SELLER = {
    "brand": "*", "legal_name": "Voyages Soleil SAS", "address_line": "12 rue du Port", "postal_code": "13002",
    "city": "Marseille", "country": "FR", "vat_number": "FR12345678901", "siren": "345678901",
    "licence": "IM013100001",
}  # fmt: skip


def _seed(engine: sa.Engine, count: int) -> tuple[list[Actor], list[str]]:
    """Users of two roles, an invoice seller and `count` dossiers (one hotel service, one line each)."""
    from backoffice.services.users import add_user, load_actor

    numbers = [f"BK-2098-{i:06d}" for i in range(1, count + 1)]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.invoice_sellers"))
        conn.execute(
            sa.text(f"INSERT INTO app.invoice_sellers ({', '.join(SELLER)}) VALUES (:{', :'.join(SELLER)})"), SELLER
        )
        for statement in (
            """INSERT INTO app.dossiers (dossier_number, platform_version, status, channel, brand, currency,
                   departure_date, return_date, destination, destination_country, client_id, client_first_name,
                   client_last_name, client_email, client_language, sale_total, created_at, updated_at)
               SELECT n, 1, 'confirmed', 'web', 'Soleil', 'EUR', current_date + 60, current_date + 67, 'Lisbonne',
                      'PT', 'C-' || n, 'Paul', 'Load ' || n, 'load@example.com', 'fr', 1000.00, now(), now()
               FROM unnest(CAST(:numbers AS text[])) AS n""",
            """INSERT INTO app.services (dossier_number, service_id, kind, supplier_code, label, status)
               SELECT n, 'S1', 'hotel', 'HOTEL01', 'Hotel Miramar', 'confirmed'
               FROM unnest(CAST(:numbers AS text[])) AS n""",
            """INSERT INTO app.price_lines (dossier_number, service_id, line_id, origin, booking_version, label,
                   quantity, unit_sale_amount, sale_currency, unit_purchase_amount, purchase_currency, vat_rate,
                   supplier_code)
               SELECT n, 'S1', 'L1', 'booking', 1, 'Double room', 2, 500.00, 'EUR', 400.00, 'EUR', 0, 'HOTEL01'
               FROM unnest(CAST(:numbers AS text[])) AS n""",
        ):
            conn.execute(sa.text(statement), {"numbers": numbers})
    actors = []
    for i in range(LOAD_SESSIONS_MAX):
        login = f"load{i:02d}"
        with UnitOfWork(engine) as uow:
            add_user(uow, None, login, "senior_agent" if i % 2 else "accountant", "load test password 42")
        with UnitOfWork(engine) as uow:
            actors.append(load_actor(uow, login))
    return actors, numbers


LOAD_SESSIONS_MAX = max(s for s, _, _ in LOAD.values())


def measure(scale: Any, url: str) -> list[Any]:
    """`make bench`: the sessions of the scale for its duration; the figure is the count of rows that disagree."""
    import os

    from backoffice.config import get_settings
    from backoffice.dbt_runner import run_dbt
    from bench import harness
    from bench.report import Figure

    sessions, seconds, count = LOAD[scale.name]
    harness.empty_database(url)
    os.environ["BACKOFFICE_REFUND_APPROVAL_THRESHOLD"] = "1000000.00"  # refunds execute at once
    get_settings.cache_clear()
    engine = sa.create_engine(url, pool_size=sessions, max_overflow=sessions)
    try:
        run_dbt(["run", "--select", "+dossier_price_lines"], database_url=url)
        actors, numbers = _seed(engine, count)
        report = run(engine, actors[:sessions], numbers, seconds)
        found = check(engine, report)
    finally:
        engine.dispose()
        os.environ.pop("BACKOFFICE_REFUND_APPROVAL_THRESHOLD", None)
        get_settings.cache_clear()
    wrong = sum(len(rows) for rows in found.values())
    refused = sum(n for k, n in report.outcomes.items() if not k.endswith(": done"))
    return [
        Figure(
            name=f"Concurrency: {sessions} sessions for {seconds} s on {count} dossiers",
            target="0 lost updates, 0 duplicates, 0 unexplained errors",
            measured=f"{wrong} rows disagree; {report.actions:,} actions ({report.actions / seconds:.0f}/s), "
            f"{refused:,} refused as expected",
            ratio="-",
            passed=wrong == 0,
            about=(
                "bench/load.py: each session reads a dossier's version, thinks 0-20 ms, then acts as of that version "
                "(payment, refund, price adjustment, regulation, invoice, mass regulation over 3 dossiers others "
                "edit too), at the service boundary on real PostgreSQL. Then the checks return the rows that "
                "disagree: versions vs successful writes (lost updates), stored vs Devis totals, payments and refunds "
                "present exactly once, one audit event per success, refunds within payments, invoice series without "
                "gaps; any error other than a stale version, a limit or a changed preview counts as a failure."
            ),
            details=[
                "Outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())),
                *[f"{name}: {rows[:5]}" for name, rows in found.items() if rows],
            ],
        )
    ]
