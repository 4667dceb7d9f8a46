"""The Liste search and the dossier page at scale: p95 of a fixed mix of 20 queries, and of the page's data.

Dataset: N dossiers (tiny 2,000, small 100,000, medium 300,000, full 1,000,000) created over the
year before a fixed "today", with their travellers, services, price lines, payment schedule and
payments, drawn with the generator's distributions (backoffice/generator: names, brands,
channels, destinations, booking leads, statuses and how quotes and options end) but built as
columns with numpy/polars and COPYed straight into the tables: the generator's per-dossier
JSON and the ingestion would take an hour at a million. The tables keep every index, constraint
and trigger of the migrations (the search terms are collected by their trigger during the COPY).
The database is kept between runs (`backoffice_bench_<scale>_search_data`): rebuilt when the
dataset's parameters change, brought up to date in place (migrations, then the Devis views) when
a migration or a dbt model changed.

Measured at the service boundary, as the pages call it: `backoffice.queries.search.search` (first
page of 50, the Liste's default sort or the shortcut's own), each query of the mix run REPEATS times
with values drawn anew each time from sampled dossiers (a different client, e-mail, reference...),
so the figure is not one cached row; and `backoffice.queries.dossier.dossier_view` over random
dossiers. `python -m bench.search --scale small --explain` prints EXPLAIN ANALYZE of each query.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from backoffice.generator import catalog, people
from backoffice.generator.dossiers import ADULTS_CUM, LEAD_CUM, LEADS, REF_ALPHABET, STATUS_CUM
from backoffice.queries.criteria import SearchCriteria
from backoffice.queries.dossier import dossier_view
from backoffice.queries.search import COUNT_CAP, search
from backoffice.queries.shortcuts import SHORTCUTS
from bench import harness
from bench.report import Figure

TARGET_MS = 50.0
TODAY = date(2026, 11, 2)
NOW = datetime.combine(TODAY, clock(10), UTC)
SEED = 20261102
DOSSIERS = {"tiny": 2_000, "small": 100_000, "medium": 300_000, "full": 1_000_000}
REPEATS = {"tiny": 2, "small": 30, "medium": 30, "full": 30}
PAGE_VIEWS = {"tiny": 5, "small": 200, "medium": 200, "full": 200}
PAGE_BUDGET_S = 60.0  # the page views stop there (with at least 5), so a slow page cannot stall the run
COPY_ROWS = 250_000  # rows a COPY statement, so the terms trigger's transition table stays small
NOTES = [
    "Search figures: the p95 is over every run of every query of the mix (20 queries x the repeats); the "
    "per-query p95 is under the figure. The queries and their plans are in docs/scaling.md (Search plans).",
    "Search totals are exact up to the count cap and shown as 'more than' past it (docs/scaling.md, 0023).",
]


# ---------------------------------------------------------------- dataset
def _draw(rng: np.random.Generator, cum: tuple[int, ...], size: int) -> np.ndarray:
    """Indexes drawn with the generator's cumulative weights."""
    weights = np.diff(np.array((0, *cum)))
    return rng.choice(len(cum), size=size, p=weights / weights.sum())


def _refs(rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` six-character references from the generator's alphabet."""
    alphabet = np.frombuffer(REF_ALPHABET.encode(), dtype=np.uint8)
    return alphabet[rng.integers(0, len(alphabet), (size, 6))].copy().view("S6").ravel().astype(str)


def _dossiers(rng: np.random.Generator, n: int) -> pl.DataFrame:
    start = TODAY - timedelta(days=365)
    created = rng.integers(0, 365, n)  # day index from `start`
    lead_bucket = _draw(rng, LEAD_CUM, n)
    low, high = np.array([lo for lo, _ in LEADS]), np.array([hi for _, hi in LEADS])
    lead = rng.integers(low[lead_bucket], high[lead_bucket] + 1)
    nights = rng.choice(np.array((2, 3, 4, 5, 7, 7, 7, 10, 14)), n)
    age = 365 - created  # days from booking to today
    drawn = _draw(rng, STATUS_CUM, n)  # quote, option, confirmed
    drawn[lead < 14] = 2
    status = np.full(n, "confirmed", dtype=object)
    updated = created.copy()
    # A quote lives up to 7 days (60 % confirmed), an option 3 days (75 %); the others expire.
    for kind, lives, confirms in ((0, 7, 0.6), (1, 3, 0.75)):
        mine = drawn == kind
        status[mine & (age <= lives)] = ("quote", "option")[kind]
        expired = mine & (age > lives) & (rng.random(n) >= confirms)
        status[expired] = "cancelled"
        updated[expired] = created[expired] + lives
    # 6 % of the confirmed are cancelled before departure (when that day has come).
    cancel_day = created + 1 + (rng.random(n) * np.maximum(lead - 1, 1)).astype(int)
    cancelled = (status == "confirmed") & (rng.random(n) < 0.06) & (cancel_day <= 365)
    status[cancelled] = "cancelled"
    updated[cancelled] = cancel_day[cancelled]
    changed = (status == "confirmed") & (rng.random(n) < 0.14)
    updated[changed] = np.minimum(created[changed] + rng.integers(1, 30, changed.sum()), 365)

    brand = _draw(rng, catalog.BRAND_CUM, n)
    brands = catalog.BRANDS
    language = np.array([b.language for b in brands])[brand]
    channel = _draw(rng, catalog.CHANNEL_CUM, n)
    agencies = np.array(catalog.AGENCY_CODES)[rng.integers(0, len(catalog.AGENCY_CODES), n)]
    partners = np.array(catalog.PARTNER_CODES)[rng.integers(0, len(catalog.PARTNER_CODES), n)]
    agency = np.where(channel == 1, agencies, np.where(channel == 3, partners, None))
    dest = _draw(rng, catalog.DESTINATION_CUM, n)

    # Returning clients: a pool smaller than the dossiers; a client's name and e-mail follow its number.
    pool = max(n * 6 // 10, 1)
    client = rng.integers(0, pool, n)
    c_rng = np.random.default_rng(SEED + 1)
    french = language == "fr"
    fr_first, fr_last = c_rng.integers(0, len(people.FR_FIRST), pool), c_rng.integers(0, len(people.FR_LAST), pool)
    en_first, en_last = c_rng.integers(0, len(people.EN_FIRST), pool), c_rng.integers(0, len(people.EN_LAST), pool)
    mail_n, domain = c_rng.integers(1, 100, pool), c_rng.integers(0, len(people.EMAIL_DOMAINS), pool)
    first = np.where(french, np.array(people.FR_FIRST)[fr_first[client]], np.array(people.EN_FIRST)[en_first[client]])
    last = np.where(french, np.array(people.FR_LAST)[fr_last[client]], np.array(people.EN_LAST)[en_last[client]])
    fold = np.vectorize(people.ascii_fold, otypes=[object])
    email = (
        pl.DataFrame({"f": fold(first).astype(str), "l": fold(last).astype(str)})
        .select(
            pl.concat_str(
                pl.col("f"),
                pl.lit("."),
                pl.col("l"),
                pl.Series(mail_n[client]).cast(pl.String),
                pl.lit("@"),
                pl.Series(np.array(people.EMAIL_DOMAINS)[domain[client]]),
            )
        )
        .to_series()
    )
    seconds = rng.integers(7 * 3600, 23 * 3600, n)
    first_day = np.datetime64(start, "D")
    created_at = (first_day + created).astype("datetime64[us]") + seconds.astype("timedelta64[s]")
    cents = rng.integers(30_000, 600_000, n)
    frame = pl.DataFrame(
        {
            "dossier_number": [f"BK-2026-{i:07d}" for i in range(1, n + 1)],
            "status": status.astype(str),
            "channel": np.array(catalog.CHANNELS)[channel],
            "brand": np.array([b.name for b in brands])[brand],
            "agency_code": pl.Series(agency.tolist(), dtype=pl.String),
            "currency": np.array([b.currency for b in brands])[brand],
            "destination": np.array([d.city for d in catalog.DESTINATIONS])[dest],
            "destination_country": np.array([d.country for d in catalog.DESTINATIONS])[dest],
            "dest": dest,
            "client_id": np.char.add(np.where(french, "CLF", "CLE"), np.char.zfill(client.astype(str), 7)),
            "client_first_name": first,
            "client_last_name": last,
            "client_email": email,
            "client_language": language,
            "cents": cents,
        }
    )
    return frame.with_columns(
        departure_date=pl.Series(first_day + created + lead),
        return_date=pl.Series(first_day + created + lead + nights),
        created_at=pl.Series(created_at).dt.replace_time_zone("UTC"),
        updated_at=pl.Series(
            created_at + ((updated - created) * 86400 + 60).astype("timedelta64[s]")
        ).dt.replace_time_zone("UTC"),
        sale_total=(pl.col("cents") / 100).cast(pl.Decimal(14, 2)),
    )


def _children(rng: np.random.Generator, d: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Travellers, services, price lines, schedule and payments of the dossiers `d`."""
    n = d.height
    adults = _draw(rng, ADULTS_CUM, n) + 1
    children = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 4, n))
    count = adults + children
    owner = np.repeat(np.arange(n), count)
    seat = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    french = d["client_language"].to_numpy()[owner] == "fr"
    firsts = np.where(
        french,
        np.array(people.FR_FIRST)[rng.integers(0, len(people.FR_FIRST), len(owner))],
        np.array(people.EN_FIRST)[rng.integers(0, len(people.EN_FIRST), len(owner))],
    )
    numbers = d["dossier_number"].to_numpy()
    travellers = pl.DataFrame(
        {
            "dossier_number": numbers[owner],
            "traveller_id": np.char.add("T", (seat + 1).astype(str)),
            "first_name": np.where(seat == 0, d["client_first_name"].to_numpy()[owner], firsts),
            "last_name": d["client_last_name"].to_numpy()[owner],
            "kind": np.where(seat < adults[owner], "adult", "child"),
        }
    )

    # Two services each (lodging, transport) and an insurance for a third of them.
    dests = catalog.DESTINATIONS
    dest = d["dest"].to_numpy()
    lodging_supplier = np.array([x.hotel or catalog.CRUISE_SUPPLIER for x in dests])[dest]
    lodging_kind = np.array(["hotel" if x.hotel else "cruise" for x in dests])[dest]
    transport_supplier = np.array([x.flight or x.transfer for x in dests])[dest]
    transport_kind = np.array(["flight" if x.flight else "transfer" for x in dests])[dest]
    insured = rng.random(n) < 0.35
    prefix = {s.code: s.reference_prefix for s in catalog.SUPPLIERS}
    cents = d["cents"].to_numpy()
    lodging_cents = cents * 6 // 10
    insurance_cents = np.where(insured, cents * 3 // 100, 0)
    parts = []
    for sid, kind, supplier, amount, keep in (
        ("S1", lodging_kind, lodging_supplier, lodging_cents, np.ones(n, bool)),
        ("S2", transport_kind, transport_supplier, cents - lodging_cents - insurance_cents, np.ones(n, bool)),
        ("S3", np.full(n, "insurance"), np.full(n, catalog.INSURANCE_SUPPLIER), insurance_cents, insured),
    ):
        k = int(keep.sum())
        parts.append(
            pl.DataFrame(
                {
                    "i": np.arange(n)[keep],
                    "service_id": np.full(k, sid),
                    "kind": kind[keep],
                    "supplier_code": supplier[keep],
                    "supplier_reference": np.char.add(np.vectorize(prefix.get)(supplier[keep]), _refs(rng, k)),
                    "cents": amount[keep],
                }
            )
        )
    svc = pl.concat(parts).join(
        d.select(
            pl.int_range(pl.len()).alias("i"),
            "dossier_number",
            "departure_date",
            "return_date",
            "currency",
            "created_at",
            pl.when(pl.col("status") == "cancelled")
            .then(pl.lit("cancelled"))
            .otherwise(pl.lit("confirmed"))
            .alias("svc_status"),
        ),
        on="i",
    )
    services = svc.select(
        "dossier_number",
        "service_id",
        "kind",
        "supplier_code",
        "supplier_reference",
        label=pl.col("kind").str.to_titlecase() + " " + pl.col("supplier_code"),
        start_date="departure_date",
        end_date="return_date",
        status="svc_status",
    )
    price_lines = svc.select(
        "dossier_number",
        "service_id",
        line_id=pl.lit("L") + pl.col("service_id"),
        origin=pl.lit("booking"),
        booking_version=pl.lit(1),
        label=pl.col("kind").str.to_titlecase(),
        quantity=pl.lit(1),
        unit_sale_amount=(pl.col("cents") / 100).cast(pl.Decimal(14, 2)),
        sale_currency="currency",
        unit_purchase_amount=(pl.col("cents") * 8 // 1000).cast(pl.Decimal(14, 2)),
        purchase_currency="currency",
        vat_rate=pl.lit(0).cast(pl.Decimal(6, 4)),
        supplier_code="supplier_code",
        created_at="created_at",
    )

    # A deposit at booking and the balance 30 days before departure; expired or cancelled owe nothing.
    live = d.filter(pl.col("status") != "cancelled").with_columns(
        deposit=(pl.col("cents") * 3 // 10),
        balance_due=pl.max_horizontal(pl.col("departure_date") - pl.duration(days=30), pl.col("created_at").dt.date()),
    )
    deposits = live.select(
        "dossier_number",
        seq=pl.lit(1),
        due_date=pl.col("created_at").dt.date(),
        amount=(pl.col("deposit") / 100).cast(pl.Decimal(14, 2)),
        kind=pl.lit("deposit"),
        method=pl.lit("card_on_file"),
    )
    balances = live.select(
        "dossier_number",
        seq=pl.lit(2),
        due_date="balance_due",
        amount=((pl.col("cents") - pl.col("deposit")) / 100).cast(pl.Decimal(14, 2)),
        kind=pl.lit("balance"),
        method=pl.lit("card_on_file"),
    )
    schedule = pl.concat([deposits, balances])
    # Confirmed dossiers paid their deposit; 92 % of the balances that fell due were charged.
    paid = schedule.join(live.select("dossier_number", "status", "currency"), on="dossier_number").filter(
        (pl.col("status") == "confirmed") & (pl.col("due_date") <= TODAY)
    )
    charged = paid.filter((pl.col("seq") == 1) | pl.Series(rng.random(paid.height) < 0.92))
    payments = charged.select(
        payment_id=pl.lit("PAY-") + pl.col("dossier_number") + "-" + pl.col("seq").cast(pl.String),
        dossier_number="dossier_number",
        received_at=pl.col("due_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(hours=9),
        method=pl.lit("card"),
        amount="amount",
        currency="currency",
        status=pl.lit("captured"),
        provider=pl.lit("adyen"),
    )
    return {
        "app.travellers": travellers,
        "app.services": services,
        "app.price_lines": price_lines,
        "app.payment_schedule": schedule,
        "app.payments": payments,
    }


DOSSIER_COLUMNS = (
    "dossier_number",
    "status",
    "channel",
    "brand",
    "agency_code",
    "currency",
    "departure_date",
    "return_date",
    "destination",
    "destination_country",
    "client_id",
    "client_first_name",
    "client_last_name",
    "client_email",
    "client_language",
    "sale_total",
    "created_at",
    "updated_at",
)


def _copy(cur: psycopg.Cursor, table: str, frame: pl.DataFrame) -> None:
    columns = ", ".join(frame.columns)
    for offset in range(0, frame.height, COPY_ROWS):
        buffer = io.BytesIO()
        frame.slice(offset, COPY_ROWS).write_csv(buffer, include_header=False)
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())


def _psycopg(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def _schema_version() -> str:
    """A digest of the migrations: the cached dataset is rebuilt when the schema it was loaded into changes."""
    versions = harness.ROOT / "backoffice" / "db" / "migrations" / "versions"
    digest = hashlib.sha256()
    for path in sorted(versions.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _models_version() -> str:
    """A digest of the dbt models: the dossier page reads the Devis through their views."""
    digest = hashlib.sha256()
    for path in sorted((harness.ROOT / "dbt_project" / "models").rglob("*.sql")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _comment(name: str) -> dict[str, Any] | None:
    """What the database `name` says it holds (its comment), or None if it does not exist or is incomplete."""
    admin = sa.create_engine(make_url(harness.server_url()).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            comment = conn.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).scalar_one_or_none()
    finally:
        admin.dispose()
    return json.loads(comment) if comment else None


def _upgrade(url: str) -> None:
    """Bring a cached dataset to the current migrations and Devis views, in place.

    The migrations carry existing data forward (that is their job in production too), and
    rebuilding a million dossiers takes far longer than adding an index to them. A migration
    edited after it was applied is not applied again: drop the database to rebuild it then."""
    from backoffice.db.migrate import migrate
    from backoffice.dbt_runner import run_dbt

    migrate(url)
    run_dbt(["run", "--select", "+dossier_price_lines"], url)
    with _psycopg(url) as conn:
        conn.autocommit = True
        conn.execute("ANALYZE app.dossiers, app.services, app.search_terms, app.dossier_arrears")


def dataset(scale: harness.Scale, any_schema: bool = False) -> tuple[str, float | None]:
    """The URL of this scale's search database, built if missing, upgraded if its schema is behind;
    and the build or upgrade time (None: used as it was).

    `any_schema`: use a complete database as it is even if the migrations changed since it was built."""
    n = DOSSIERS[scale.name]
    name = f"backoffice_bench_{scale.name}_search_data"
    data = {"dossiers": n, "seed": SEED, "today": TODAY.isoformat()}
    key = {**data, "schema": _schema_version(), "models": _models_version()}
    url = make_url(harness.server_url()).set(database=name).render_as_string(hide_password=False)
    found = _comment(name)
    if found == key or (any_schema and found):
        return url, None
    started = time.perf_counter()
    if found and all(found.get(k) == v for k, v in data.items()):
        _upgrade(url)
        harness._admin([f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(key)}'"])
        return url, time.perf_counter() - started
    harness.drop_bench_database(f"{scale.name}_search_data")
    built = harness.bench_database(f"{scale.name}_search_data")
    assert built == url
    rng = np.random.default_rng(SEED)
    dossiers = _dossiers(rng, n)
    children = _children(rng, dossiers)
    with _psycopg(url) as conn, conn.cursor() as cur:
        _copy(cur, "app.dossiers", dossiers.select(DOSSIER_COLUMNS).with_columns(platform_version=pl.lit(1)))
        for table, frame in children.items():
            _copy(cur, table, frame)
        conn.commit()
        conn.autocommit = True
        cur.execute(
            "VACUUM (ANALYZE) app.dossiers, app.travellers, app.services, app.price_lines, "
            "app.payment_schedule, app.payments, app.search_terms"
        )
    from backoffice.dbt_runner import run_dbt

    run_dbt(["run", "--select", "+dossier_price_lines"], url)
    harness._admin([f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(key)}'"])
    return url, time.perf_counter() - started


# ---------------------------------------------------------------- the query mix
@dataclass(frozen=True)
class Sample:
    number: str
    last_name: str
    first_name: str
    email: str
    reference: str
    supplier: str
    brand: str
    destination: str
    departure: date
    created: date


def _samples(conn: sa.Connection, n: int, count: int) -> list[Sample]:
    picked = [f"BK-2026-{i:07d}" for i in random.Random(SEED).sample(range(1, n + 1), min(count, n))]
    rows = conn.execute(
        sa.text(
            """SELECT d.dossier_number, d.client_last_name, d.client_first_name, d.client_email,
                      s.supplier_reference, s.supplier_code, d.brand, d.destination, d.departure_date,
                      (d.created_at AT TIME ZONE 'UTC')::date AS created
               FROM app.dossiers d JOIN app.services s ON s.dossier_number = d.dossier_number AND s.service_id = 'S2'
               WHERE d.dossier_number = ANY(:numbers) ORDER BY d.dossier_number"""
        ),
        {"numbers": picked},
    ).all()
    return [Sample(*r) for r in rows]


def _typo(word: str, rng: random.Random) -> str:
    """One letter dropped, doubled or replaced inside the word, as an agent mistypes it."""
    if len(word) < 5:
        return word
    i = rng.randrange(2, len(word) - 1)
    how = rng.choice(("drop", "double", "replace"))
    if how == "drop":
        return word[:i] + word[i + 1 :]
    if how == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiourstdn") + word[i + 1 :]


def _strip_accents(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


Query = Callable[[Sample, random.Random], tuple[SearchCriteria, str, bool]]
_SHORTCUT = {s.key: s for s in SHORTCUTS}
_ACTIVE = ("quote", "option", "confirmed")


def _shortcut(key: str) -> Query:
    s = _SHORTCUT[key]
    return lambda sample, rng: (s.criteria, s.sort, s.descending)


def _plain(**criteria: Any) -> tuple[SearchCriteria, str, bool]:
    return SearchCriteria(**criteria), "departure_date", False


MIX: dict[str, Query] = {
    "number, exact": lambda s, r: _plain(dossier_number=s.number),
    "number, first digits": lambda s, r: _plain(dossier_number=s.number[:-2]),
    "last name with a typo": lambda s, r: _plain(client_name=_typo(s.last_name, r)),
    "last and first name, typo": lambda s, r: _plain(client_name=f"{_typo(s.last_name, r)} {s.first_name}"),
    "first then last name, no accents": lambda s, r: _plain(
        client_name=_strip_accents(f"{s.first_name} {s.last_name}")
    ),
    "start of a last name": lambda s, r: _plain(client_name=s.last_name[:4]),
    "name typo + status": lambda s, r: _plain(client_name=_typo(s.last_name, r), statuses=("confirmed",)),
    "e-mail, whole": lambda s, r: _plain(email=s.email.upper()),
    "e-mail, local part": lambda s, r: _plain(email=s.email.split("@")[0]),
    "supplier reference": lambda s, r: _plain(supplier_reference=s.reference.lower()),
    "supplier + departure month": lambda s, r: _plain(
        supplier_code=s.supplier, departure_from=s.departure, departure_to=s.departure + timedelta(days=30)
    ),
    "booking dates, one week": lambda s, r: _plain(created_from=s.created, created_to=s.created + timedelta(days=6)),
    "departure dates, one month + brand": lambda s, r: _plain(
        departure_from=s.departure, departure_to=s.departure + timedelta(days=30), brands=(s.brand,)
    ),
    "status + brand + departure window": lambda s, r: _plain(
        statuses=("confirmed",),
        brands=(s.brand,),
        departure_from=TODAY + timedelta(days=r.randrange(0, 60)),
        departure_to=TODAY + timedelta(days=r.randrange(60, 75)),
    ),
    "destination + departure month": lambda s, r: _plain(
        destination=s.destination[:5].lower(), departure_from=s.departure, departure_to=s.departure + timedelta(30)
    ),
    "amount range + active statuses": lambda s, r: _plain(
        amount_min=Decimal(r.randrange(1000, 3000)),
        amount_max=Decimal(r.randrange(3000, 3100)),
        statuses=_ACTIVE,
        departure_from=TODAY,
    ),
    "shortcut: unpaid departures in 14 days": _shortcut("unpaid_departures_14d"),
    "shortcut: departures in 7 days": _shortcut("departures_7d"),
    "shortcut: options to confirm": _shortcut("options_to_confirm"),
    "shortcut: recent cancellations": _shortcut("recent_cancellations"),
}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def run_mix(engine: sa.Engine, samples: list[Sample], repeats: int) -> dict[str, tuple[list[float], list[int]]]:
    """Each query of the mix `repeats` times, on one connection as the Liste's reader; times in ms and totals."""
    rng = random.Random(SEED)
    out: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in MIX}
    with engine.connect() as conn:
        for i in range(repeats):
            for name, query in MIX.items():
                criteria, sort, descending = query(samples[(i * 7 + len(name)) % len(samples)], rng)
                started = time.perf_counter()
                page = search(conn, criteria, sort, descending, 1, 50, today=TODAY, now=NOW)
                out[name][0].append((time.perf_counter() - started) * 1000)
                out[name][1].append(page.total)
            conn.rollback()
    return out


def run_pages(engine: sa.Engine, samples: list[Sample], views: int) -> list[float]:
    times: list[float] = []
    deadline = time.perf_counter() + PAGE_BUDGET_S
    with engine.connect() as conn:
        for i in range(views):
            if i >= 5 and time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            view = dossier_view(conn, samples[i % len(samples)].number, today=TODAY)
            times.append((time.perf_counter() - started) * 1000)
            assert view.services, view.summary.dossier_number
            conn.rollback()
    return times


def measure(scale: harness.Scale) -> list[Figure]:
    """The search and dossier page figures, on this scale's cached dataset."""
    n = DOSSIERS[scale.name]
    data_url, built = dataset(scale)
    engine = sa.create_engine(data_url)
    try:
        with engine.connect() as conn:
            samples = _samples(conn, n, 200)
            terms = dict(conn.execute(sa.text("SELECT kind, count(*) FROM app.search_terms GROUP BY kind")).all())
        run_mix(engine, samples, 1)  # warm-up: the first touch of each index reads it from disk
        mix = run_mix(engine, samples, REPEATS[scale.name])
        pages = run_pages(engine, samples, PAGE_VIEWS[scale.name])
    finally:
        engine.dispose()
    every = [t for times, _ in mix.values() for t in times]
    overall, worst = p95(every), max(p95(times) for times, _ in mix.values())
    page = p95(pages)
    capped = f"{COUNT_CAP:,} is the count cap: more than {COUNT_CAP:,}"
    rows = [f"| query | p50 ms | p95 ms | matches (median; {capped}) |", "| --- | --- | --- | --- |"]
    for name, (times, totals) in mix.items():
        rows.append(
            f"| {name} | {statistics.median(times):.1f} | {p95(times):.1f} | {statistics.median(totals):,.0f} |"
        )
    made = f"built or brought up to date for this run in {built:.0f} s" if built else "reused from an earlier run"
    about = (
        f"{n:,} dossiers ({made}; distinct search terms: {terms.get('name', 0):,} names, {terms.get('email', 0):,} "
        f"e-mails, {terms.get('destination', 0):,} destinations). `search()` as the Liste calls it, first page of 50, "
        f"{len(MIX)} queries x {REPEATS[scale.name]} runs with values drawn from 200 sampled dossiers, after one "
        "warm-up pass. Target: p95 <= 50 ms over the whole mix at the service boundary."
    )
    return [
        Figure(
            f"Search: p95 of the 20-query mix, {n:,} dossiers",
            f"<= {TARGET_MS:.0f} ms",
            f"{overall:.1f} ms (slowest query p95 {worst:.1f} ms)",
            f"{overall / TARGET_MS:.2f}",
            overall <= TARGET_MS,
            about,
            rows,
        ),
        Figure(
            f"Dossier page data: p95, {n:,} dossiers",
            f"<= {TARGET_MS:.0f} ms",
            f"{page:.1f} ms",
            f"{page / TARGET_MS:.2f}",
            page <= TARGET_MS,
            f"`dossier_view()` as the Dossier page calls it (summary, client, travellers, services, the Devis from "
            f"marts.dossier_price_lines, schedule, payments, history, documents, invoices, refunds, modifications, "
            f"travel book), {len(pages)} views of random dossiers (at most {PAGE_VIEWS[scale.name]}, or what fits in "
            f"{PAGE_BUDGET_S:.0f} s); p50 {statistics.median(pages):.1f} ms.",
        ),
    ]


# ---------------------------------------------------------------- plans
def explain(scale: harness.Scale) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL `search()` sends for one instance of each query of the mix."""
    data_url, _ = dataset(scale, any_schema=True)
    engine = sa.create_engine(data_url)
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    out = []
    try:
        with engine.connect() as conn:
            samples = _samples(conn, DOSSIERS[scale.name], 200)
            rng = random.Random(SEED)
            run_mix(engine, samples, 1)
            for i, (name, query) in enumerate(MIX.items()):
                criteria, sort, descending = query(samples[i], rng)
                sent.clear()
                sa.event.listen(engine, "before_cursor_execute", capture)
                try:
                    search(conn, criteria, sort, descending, 1, 50, today=TODAY, now=NOW)
                finally:
                    sa.event.remove(engine, "before_cursor_execute", capture)
                shown = {k: v for k, v in criteria.__dict__.items() if v not in (None, (), False)}
                out += [f"### {name}", "", f"Criteria: `{shown}`, sort `{sort}`.", ""]
                # One statement: the page, and the capped count when the page is full (a count of
                # its own only when the page is empty).
                for which, (statement, parameters) in zip(("Page and count", "Count"), sent, strict=False):
                    cursor = conn.connection.driver_connection.cursor()
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    out += [f"{which}:", "", "```", plan, "```", ""]
    finally:
        engine.dispose()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description="EXPLAIN ANALYZE of the search mix")
    parser.add_argument("--scale", choices=sorted(DOSSIERS), default="small")
    parser.add_argument("--explain", action="store_true", help="print the plans instead of measuring")
    args = parser.parse_args()
    scale = harness.SCALES[args.scale]
    if args.explain:
        print(explain(scale))
    else:
        for figure in measure(scale):
            print(f"{figure.name}: {figure.measured}")
            print("\n".join(figure.details))


if __name__ == "__main__":
    main()
