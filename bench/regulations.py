"""A mass supplier regulation over 10,000 dossiers that the ingestion loaded, timed as the page runs it.

The dossiers come from the generator (one day of new bookings) through `load_bookings_day`, so
they have the services, price lines and indexes of real data. The regulation is the one supplier
and service kind found on the most dossiers, a percentage of the purchase and of the sale (so
dossiers in every currency qualify). Each run previews (untimed), applies (timed: the re-check,
lines, dossiers, audit, commit), then undoes it (timed apart), so every run starts from the same
dossiers.
"""

from __future__ import annotations

import time
import uuid
from statistics import median

import sqlalchemy as sa

from backoffice.domain.permissions import Actor
from backoffice.services.regulations import apply_mass_regulation, preview_mass_regulation, undo_regulation
from backoffice.services.unit_of_work import UnitOfWork
from bench import harness
from bench.report import Figure

TARGET_S = 10.0
# Dossiers regulated, and dossiers generated so that one supplier and kind covers that many.
COUNTS = {"tiny": (200, 1_000)}
DEFAULT_COUNTS = (10_000, 30_000)
ACTOR = Actor("bench", "senior_agent", frozenset({"regulation", "mass_regulation"}))

_BUSIEST = sa.text(
    """SELECT s.supplier_code, s.kind, array_agg(DISTINCT s.dossier_number ORDER BY s.dossier_number) AS numbers
       FROM app.services s JOIN app.dossiers d ON d.dossier_number = s.dossier_number
       WHERE s.status = 'confirmed' AND d.status <> 'cancelled'
       GROUP BY s.supplier_code, s.kind ORDER BY count(DISTINCT s.dossier_number) DESC LIMIT 1"""
)


def _request(supplier: str, kind: str, numbers: list[str]) -> dict[str, object]:
    return {
        "supplier_code": supplier,
        "service_kinds": [kind],
        "mode": "percent",
        "purchase_value": "3.5",
        "sale_value": "2",
        "reason": "benchmark: fuel surcharge",
        "numbers": "\n".join(numbers),
    }


def _load(scale: harness.Scale, url: str, generated: int) -> None:
    from backoffice.ingest.bookings import load_bookings_day

    data = harness.landing(scale, "bookings", 1, generated)
    harness.empty_database(url)
    engine = sa.create_engine(url)
    try:
        load_bookings_day(data.start, data.root, engine)
    finally:
        engine.dispose()


def measure(scale: harness.Scale, url: str) -> list[Figure]:
    count, generated = COUNTS.get(scale.name, DEFAULT_COUNTS)
    _load(scale, url, generated)
    engine = sa.create_engine(url)
    previews, applies, undos = [], [], []
    try:
        with engine.connect() as conn:
            supplier, kind, candidates = conn.execute(_BUSIEST).one()
        with UnitOfWork(engine) as uow:
            shown = preview_mass_regulation(uow, ACTOR, **_request(supplier, kind, candidates))
        numbers = list(shown.eligible[:count])
        if len(numbers) < count:
            raise RuntimeError(
                f"only {len(numbers):,} dossiers eligible for {supplier}/{kind} among {generated:,} generated; "
                f"generate more for {count:,}"
            )
        request = _request(supplier, kind, numbers)
        for _ in range(scale.repeats):
            started = time.perf_counter()
            with UnitOfWork(engine) as uow:
                shown = preview_mass_regulation(uow, ACTOR, **request)
            previews.append(time.perf_counter() - started)
            started = time.perf_counter()
            with UnitOfWork(engine) as uow:
                rid = apply_mass_regulation(
                    uow, ACTOR, **request, preview_token=shown.token, idempotency_key=uuid.uuid4().hex
                )
            applies.append(time.perf_counter() - started)
            started = time.perf_counter()
            with UnitOfWork(engine) as uow:
                undo_regulation(
                    uow, ACTOR, regulation_id=rid, reason="benchmark: undo", idempotency_key=uuid.uuid4().hex
                )
            undos.append(time.perf_counter() - started)
        with engine.connect() as conn:
            lines = conn.execute(
                sa.text("SELECT count(*) FROM app.price_lines WHERE source_id = :rid"), {"rid": str(rid)}
            ).scalar_one()
    finally:
        engine.dispose()
    if lines < count:
        raise RuntimeError(f"the last regulation added {lines:,} lines for {count:,} dossiers")
    took = median(applies)
    about = (
        f"{count:,} dossiers out of {generated:,} generated for one day and loaded by `load_bookings_day`; the "
        f"regulation: supplier {supplier}, kind {kind}, +3.5 % of each matching service's active purchase and "
        f"+2 % of its sale ({lines:,} price lines a run). Measured: `apply_mass_regulation` as the Regulations "
        "page calls it after a preview, numbers pasted: COPY of the numbers to a temp table, the plan recomputed "
        "and checked against the preview's fingerprint, INSERT ... SELECT of the lines, one UPDATE of the "
        "dossiers' version and sale total, one audit event per dossier and one for the batch, commit; one "
        "transaction. Each run is followed by the undo (timed apart), so the runs see the same dossiers."
    )
    details = [
        "Runs (s): preview "
        + ", ".join(f"{t:.2f}" for t in previews)
        + "; apply "
        + ", ".join(f"{t:.2f}" for t in applies)
        + "; undo "
        + ", ".join(f"{t:.2f}" for t in undos)
        + "."
    ]
    return [
        Figure(
            f"Mass regulation: {count:,} dossiers",
            f"<= {TARGET_S:.0f} s",
            f"{took:.2f} s",
            f"{took / TARGET_S:.2f}",
            took <= TARGET_S,
            about,
            details,
        )
    ]
