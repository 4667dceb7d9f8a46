"""The matching's incremental tables (per dossier, open amounts included; candidates per line) equal a full refresh.

Twenty generated days are loaded and built, with an invoice whose lines name what does not exist
yet (a dossier number, one a digit short, a traveller's name); then random changes of every kind
the tables read are written straight in SQL, as any writer could (renamed, removed and added
travellers, supplements, cancelled, deleted and added services, cancelled dossiers, a new booking
version, a new dossier those old lines name, a write under session_replication_role = replica,
invoice lines added, deleted and edited): the triggers of migration 0028 log the dossiers, an
incremental build applies them, and a full refresh must give the same rows. The incremental build
must have read the log (not recomputed everything), recomputed only some of the lines and of the
dossiers' open amounts, and emptied the log.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from factories import generated_days
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import DbtFailed, run_dbt, target_path

START = date(2026, 3, 2)
DAYS = 20
TABLES = (
    "int_matching_dossier_keys",
    "int_matching_traveller_names",
    "int_matching_dossier_amounts",
    "int_matching_open_amounts",
    "int_matching_candidates",
)
NEW = "BK-2026-999999"  # the dossier the changes create, named by an invoice loaded before it exists
NEW_REFERENCE = "-N"  # added to the supplier's references of the services it copies
# Two alike candidates a line instead of ten: on 240 dossiers every cap (last names, full names,
# amounts open and held) then bites, so a change moving a line's frontier is part of the proof.
SELECT = ["--select", "+int_matching_changes_applied", "--vars", "{matching_alike_candidates: 2}"]


def _rows(db: Engine) -> dict[str, set[tuple]]:
    with db.connect() as conn:
        return {t: set(conn.execute(sa.text(f"SELECT * FROM intermediate.{t}")).all()) for t in TABLES}


def _equals_a_full_refresh(db: Engine, incremental: dict[str, set[tuple]]) -> None:
    """A full refresh gives the same rows as the incremental builds did."""
    run_dbt(["run", "--full-refresh", *SELECT])
    full = _rows(db)
    for table in TABLES:
        assert incremental[table] == full[table], (
            table,
            sorted(incremental[table] - full[table])[:5],
            sorted(full[table] - incremental[table])[:5],
        )


def _pick(conn: sa.Connection, rng: random.Random, sql: str, k: int) -> list:
    rows = conn.execute(sa.text(sql)).scalars().all()
    return rng.sample(sorted(rows), k)


def _copy(conn: sa.Connection, table: str, where: str, params: dict, overrides: dict[str, str]) -> None:
    """Insert copies of the rows of app.<table> matching `where`, some columns replaced by SQL."""
    columns = (
        conn.execute(
            sa.text(
                """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'app' AND table_name = :t AND is_generated = 'NEVER'
                 AND column_name <> 'id'
               ORDER BY ordinal_position"""
            ),
            {"t": table},
        )
        .scalars()
        .all()
    )
    values = ", ".join(overrides.get(c, c) for c in columns)
    conn.execute(
        sa.text(f"INSERT INTO app.{table} ({', '.join(columns)}) SELECT {values} FROM app.{table} WHERE {where}"),
        params,
    )


# Statements run for each dossier picked (:n), by what they change.
RENAME = "UPDATE app.travellers SET last_name = :name WHERE dossier_number = :n"
DROP_TRAVELLER = """DELETE FROM app.travellers WHERE dossier_number = :n
    AND traveller_id = (SELECT max(traveller_id) FROM app.travellers WHERE dossier_number = :n)"""
CANCEL_SERVICE = """UPDATE app.services SET status = 'cancelled' WHERE dossier_number = :n
    AND service_id = (SELECT min(service_id) FROM app.services WHERE dossier_number = :n AND status = 'confirmed')"""
DROP_SERVICE = """DELETE FROM app.services WHERE dossier_number = :n
    AND service_id = (SELECT max(service_id) FROM app.services WHERE dossier_number = :n)"""
CANCEL_DOSSIER = "UPDATE app.dossiers SET status = 'cancelled' WHERE dossier_number = :n"
FIRST_TRAVELLER = (
    "dossier_number = :n AND traveller_id = (SELECT min(traveller_id) FROM app.travellers WHERE dossier_number = :n)"
)
FIRST_SERVICE = (
    "dossier_number = :n AND service_id = (SELECT min(service_id) FROM app.services WHERE dossier_number = :n)"
)
FIRST_SERVICE_LINE = "id = (SELECT min(id) FROM app.price_lines WHERE dossier_number = :n AND service_id IS NOT NULL)"
RELABEL = "UPDATE app.services SET label = 'Autre prestation' WHERE dossier_number = :n AND supplier_code = :s"
REREFERENCE = """UPDATE app.services SET supplier_reference = supplier_reference || '-X'
    WHERE dossier_number = :n AND supplier_code = :s"""


def _invoice(
    conn: sa.Connection, supplier: str, number: str, day: date, lines: list[tuple[str, str]], currency: str = "EUR"
) -> None:
    """A supplier invoice written straight in SQL: (reference, amount incl. tax) per line."""
    conn.execute(
        sa.text(
            """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, currency,
                   sha256, source_file)
               VALUES (:s, :n, 'invoice', :d, :c, md5(:n), 'test')"""
        ),
        {"s": supplier, "n": number, "d": day, "c": currency},
    )
    for line_number, (reference, amount) in enumerate(lines, start=1):
        conn.execute(
            sa.text(
                """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference,
                       description, amount_excl_tax, vat_rate, amount_incl_tax)
                   VALUES (:s, :n, :l, :r, 'Prestation', :a, 0, :a)"""
            ),
            {"s": supplier, "n": number, "l": line_number, "r": reference, "a": amount},
        )


def _source(db: Engine) -> sa.Row:
    """The dossier the new one copies: a supplier of its services with the service's own reference and
    a price line's cost, a day its dates fit, a traveller's name; and two other dossiers."""
    with db.connect() as conn:
        return conn.execute(
            sa.text(
                """SELECT s.dossier_number, s.supplier_code, s.supplier_reference, s.start_date,
                          t.last_name, t.first_name, p.purchase_total, p.purchase_currency,
                          (SELECT array_agg(dossier_number) FROM (
                               SELECT dossier_number FROM app.dossiers ORDER BY 1 DESC LIMIT 2) AS o) AS others
                   FROM app.services AS s
                   JOIN app.travellers AS t USING (dossier_number)
                   JOIN app.price_lines AS p USING (dossier_number, service_id)
                   WHERE s.supplier_reference <> '' AND p.purchase_total > 0
                   ORDER BY s.dossier_number, s.service_id, t.traveller_id, p.id LIMIT 1"""
            )
        ).one()


def _old_invoices(db: Engine, source: sa.Row) -> None:
    """Invoices naming what the changes will create, each line on one of its own so that it is found by
    one way only: the new dossier's number and the supplier's reference of a service it copies (each
    with two other dossiers' numbers: its invoice names no one dossier, before or after), the
    number a digit short, its traveller's name, the name of the travellers the changes add elsewhere, the cost
    of the price line it copies. And an invoice whose one ruled dossier (the sibling clue of its
    other line) stops being its only one when the new dossier its last line names appears; and a line
    ruled to the source dossier alone until the new dossier it also names appears (what the rules
    found invoiced for the source, so its open amounts, move though no change names it)."""
    with db.begin() as conn:
        day, supplier = source.start_date, source.supplier_code
        _invoice(conn, supplier, "OLD-NUMBER", day, [(NEW, "100.00"), *[(n, "99.00") for n in source.others]])
        _invoice(conn, supplier, "OLD-NEAR", day, [(NEW[:-1], "101.00")])
        _invoice(
            conn,
            supplier,
            "OLD-REFERENCE",
            day,
            [(source.supplier_reference + NEW_REFERENCE, "102.00"), *[(n, "98.00") for n in source.others]],
        )
        _invoice(conn, supplier, "OLD-NAME", day, [(f"{source.last_name} {source.first_name}", "103.00")])
        _invoice(conn, supplier, "OLD-ADDED-NAME", day, [("Du Pré Zoé", "104.00")])
        _invoice(conn, supplier, "OLD-AMOUNT", day, [("Divers", str(source.purchase_total))], source.purchase_currency)
        _invoice(
            conn,
            supplier,
            "OLD-SIBLING",
            day,
            [(source.dossier_number, "110.00"), ("Frais de dossier", "111.00"), (f"Ref {NEW}", "112.00")],
        )
        _invoice(
            conn, supplier, "OLD-SHARED", day, [(f"{source.dossier_number} {NEW}", "105.00")], source.purchase_currency
        )


def _change_invoices(db: Engine, rng: random.Random, supplier: str, day: date) -> None:
    """Invoice lines added (a new invoice naming old and new dossiers), deleted and edited, and an
    invoice redated (as a restore would: the application never changes a committed invoice)."""
    with db.begin() as conn:
        numbers = _pick(conn, rng, "SELECT dossier_number FROM app.dossiers ORDER BY 1", 2)
        _invoice(conn, supplier, "NEW-1", day, [(numbers[0], "50.00"), ("Transferts", "37.50"), (NEW, "12.00")])
        lines = conn.execute(
            sa.text(
                """SELECT supplier_code, invoice_number, line_number FROM app.supplier_invoice_lines
                   WHERE invoice_number NOT LIKE 'OLD-%' AND invoice_number <> 'NEW-1' ORDER BY 1, 2, 3"""
            )
        ).all()
        gone, edited, redated = rng.sample(lines, 3)
        # Committed invoices are immutable (the database refuses); a restore in replica mode is not.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            sa.text(
                """DELETE FROM app.supplier_invoice_lines
                   WHERE (supplier_code, invoice_number, line_number) = (:s, :n, :l)"""
            ),
            {"s": gone[0], "n": gone[1], "l": gone[2]},
        )
        conn.execute(
            sa.text(
                """UPDATE app.supplier_invoice_lines SET reference = :r
                   WHERE (supplier_code, invoice_number, line_number) = (:s, :n, :l)"""
            ),
            {"r": numbers[1], "s": edited[0], "n": edited[1], "l": edited[2]},
        )
        # An invoice's header redated (its lines' date windows no longer fit): the header's lines are
        # logged (migration 0033), though none of their rows changed.
        conn.execute(
            sa.text(
                """UPDATE app.supplier_invoices SET invoice_date = invoice_date - 400
                   WHERE (supplier_code, invoice_number) = (:s, :n)"""
            ),
            {"s": redated[0], "n": redated[1]},
        )


def _change(db: Engine, rng: random.Random, source: str) -> set[str]:
    """Random changes of every kind the per-dossier tables read; the dossiers changed."""
    changed: set[str] = set()
    having = "SELECT DISTINCT dossier_number FROM app.{} ORDER BY 1"

    def each(conn: sa.Connection, among: str, k: int, statement: str, **params: object) -> None:
        for number in _pick(conn, rng, among, k):
            conn.execute(sa.text(statement), {"n": number, **params})
            changed.add(number)

    def copy_each(conn: sa.Connection, among: str, k: int, table: str, where: str, overrides: dict[str, str]) -> None:
        for number in _pick(conn, rng, among, k):
            _copy(conn, table, where, {"n": number}, overrides)
            changed.add(number)

    with db.begin() as conn:
        names = conn.execute(sa.text("SELECT DISTINCT last_name FROM app.travellers ORDER BY 1")).scalars().all()
        for name in rng.sample(names, 5):
            each(conn, having.format("travellers"), 1, RENAME, name=name)
        each(conn, having.format("travellers"), 3, DROP_TRAVELLER)
        copy_each(
            conn,
            having.format("travellers"),
            3,
            "travellers",
            FIRST_TRAVELLER,
            {"traveller_id": "traveller_id || '-new'", "first_name": "'Zoé'", "last_name": "'Du Pré'"},
        )
        # Supplements: a new price line on a service, as a modification adds one.
        copy_each(
            conn,
            having.format("price_lines WHERE service_id IS NOT NULL"),
            5,
            "price_lines",
            FIRST_SERVICE_LINE,
            {
                "origin": "'modification'",
                "booking_version": "NULL",
                "line_id": "'SUPP-' || id",
                "unit_purchase_amount": "37.50",
                "reverses_id": "NULL",
            },
        )
        each(conn, having.format("services WHERE status = 'confirmed'"), 3, CANCEL_SERVICE)
        each(conn, having.format("services"), 2, DROP_SERVICE)
        # A later service: the dossier's last date with that supplier moves.
        copy_each(
            conn,
            having.format("services"),
            3,
            "services",
            FIRST_SERVICE,
            {
                "service_id": "service_id || '-late'",
                "start_date": "start_date + 40",
                "end_date": "coalesce(end_date, start_date) + 45",
            },
        )
        each(conn, "SELECT dossier_number FROM app.dossiers WHERE status = 'confirmed' ORDER BY 1", 3, CANCEL_DOSSIER)
        # A new booking version: the Devis drops the old booking lines for the new ones.
        for number in _pick(conn, rng, having.format("price_lines WHERE origin = 'booking'"), 2):
            version = conn.execute(
                sa.text(
                    "UPDATE app.dossiers SET platform_version = platform_version + 1 "
                    "WHERE dossier_number = :n RETURNING platform_version"
                ),
                {"n": number},
            ).scalar_one()
            _copy(
                conn,
                "price_lines",
                "dossier_number = :n AND origin = 'booking' AND booking_version = :v - 1",
                {"n": number, "v": version},
                {"booking_version": "booking_version + 1", "unit_purchase_amount": "unit_purchase_amount + 12"},
            )
            changed.add(number)
        # A new dossier, a copy of an old one under a new number.
        new = NEW
        params = {"n": source}
        _copy(conn, "dossiers", "dossier_number = :n", params, {"dossier_number": f"'{new}'"})
        for table in ("travellers", "services", "price_lines"):
            overrides = {"dossier_number": f"'{new}'", "reverses_id": "NULL"}
            if table == "services":  # the supplier's own references, named by an old line (_old_invoices)
                overrides["supplier_reference"] = f"supplier_reference || '{NEW_REFERENCE}'"
            _copy(conn, table, "dossier_number = :n", params, overrides)
        changed.add(new)
    # Bulk loads and restores silence triggers with replica mode: the log's still fire.
    with db.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        each(
            conn,
            having.format("travellers"),
            2,
            "UPDATE app.travellers SET first_name = 'Anaïs' WHERE dossier_number = :n",
        )
    return changed


# The `amount` reason's frontier (int_matching_dirty_lines, amount_gains): an invoice line per
# condition, each reached by that condition alone when its amount changes for one dossier.
FRONTIER_DAY = date(2026, 3, 8)
RANK, SHORT, NAMES, CANDIDATE = "701.01", "702.02", "704.04", "FRONT-CANDIDATE"
SUPPLEMENT = (
    "id = (SELECT min(id) FROM app.price_lines WHERE dossier_number = :n AND supplier_code = :s "
    "AND purchase_currency = :c AND service_id IS NOT NULL)"
)


def _supplement(conn: sa.Connection, number: str, supplier: str, currency: str, amount: str) -> None:
    """A price line of `amount` on one of the dossier's services with the supplier, as a modification adds one."""
    _copy(
        conn,
        "price_lines",
        SUPPLEMENT,
        {"n": number, "s": supplier, "c": currency},
        {
            "origin": "'modification'",
            "booking_version": "NULL",
            "line_id": "'FRONT-' || id",
            "quantity": "1",
            "unit_purchase_amount": amount,
            "reverses_id": "NULL",
        },
    )


def _frontier_cast(db: Engine, source: sa.Row) -> dict[str, object]:
    """The dossiers of the frontier's lines, read from the built tables: those of the supplier with
    a price line in the source's currency, the most recently booked first, split by whether the
    frontier day fits their dates."""
    supplier, currency = source.supplier_code, source.purchase_currency
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT k.dossier_number, k.booked_on, k.last_date,
                          :d BETWEEN k.booked_on - 3 AND k.last_date + 180 AS fits,
                          (SELECT coalesce(array_agg(DISTINCT n.last_name), '{}')
                           FROM intermediate.int_matching_traveller_names AS n
                           WHERE n.dossier_number = k.dossier_number AND n.supplier_code = k.supplier_code) AS names
                   FROM intermediate.int_matching_dossier_keys AS k
                   WHERE k.supplier_code = :s AND k.dossier_number NOT IN (:src, :o1, :o2)
                     AND EXISTS (SELECT 1 FROM app.price_lines AS p WHERE p.dossier_number = k.dossier_number
                                 AND p.supplier_code = :s AND p.purchase_currency = :c AND p.service_id IS NOT NULL)
                   ORDER BY k.booked_on DESC, k.dossier_number DESC"""
            ),
            {
                "d": FRONTIER_DAY,
                "s": supplier,
                "c": currency,
                "src": source.dossier_number,
                "o1": source.others[0],
                "o2": source.others[1],
            },
        ).all()
        unruled = set(
            conn.execute(
                sa.text(
                    """SELECT k.dossier_number FROM intermediate.int_matching_dossier_keys AS k
                       JOIN intermediate.int_matching_open_amounts AS o
                         ON o.dossier_number = k.dossier_number AND o.supplier_code = k.supplier_code
                       JOIN intermediate.int_expected__by_dossier_supplier AS e
                         ON e.dossier_number = k.dossier_number AND e.supplier_code = k.supplier_code
                         AND e.currency = o.currency AND e.expected_amount = o.amount
                       WHERE k.supplier_code = :s AND o.currency = :c AND o.kind = 'invoice' AND NOT EXISTS (
                           SELECT 1 FROM intermediate.int_matching_candidates AS c
                           WHERE c.dossier_number = k.dossier_number AND c.supplier_code = :s AND c.is_rule)"""
                ),
                {"s": supplier, "c": currency},
            ).scalars()
        )
    fitting = [r for r in rows if r.fits]
    roles = ["rank_new", "rank_1", "rank_2", "rank_3", "open_1", "open_2", "held_1", "held_2", "short_1"]
    assert len(fitting) > len(roles) + 2, len(fitting)
    cast: dict[str, object] = dict(zip(roles, fitting, strict=False))
    # An old dossier whose last name at least two dossiers booked after it hold (so it is none of a
    # line's last-name-only candidates), booked before every holder of the names line's amount.
    for i, row in enumerate(fitting[len(roles) :], start=len(roles)):
        for name in sorted(set(row.names) - {n for n in (*cast["open_1"].names, *cast["open_2"].names)}):
            later = [r for r in fitting[len(roles) : i] if name in r.names and r.booked_on > row.booked_on]
            if len(later) >= 2 and row.booked_on < min(
                cast[k].booked_on for k in ("open_1", "open_2", "held_1", "held_2")
            ):
                cast["names_old"], cast["names_name"] = row, name
                break
        if "names_old" in cast:
            break
    used = {r.dossier_number for r in cast.values() if isinstance(r, sa.Row)}
    cast["short_new"] = next(r for r in rows if not r.fits and r.booked_on - timedelta(days=3) > FRONTIER_DAY)
    # Its line holds its number a digit short: no dossier the changes touch may be one slip from that.
    changed = [cast[k].dossier_number for k in ("rank_new", "short_new", "names_old")]

    def clear(number: str) -> bool:
        short = number[:-1]
        return not any(c[:i] + c[i + 1 :] == short for c in changed for i in range(len(c)))

    # Its invoice is dated after the dates fit (a candidate by its number still), when two other
    # dossiers hold its amount open: the line has as many alike candidates as it keeps.
    used |= {cast["short_new"].dossier_number}
    for row in sorted(rows, key=lambda r: (r.last_date, r.dossier_number)):
        if row.dossier_number not in unruled or row.dossier_number in used or len(row.dossier_number) != len(NEW):
            continue
        if not clear(row.dossier_number):
            continue
        day = row.last_date + timedelta(days=200)
        alike = [
            r
            for r in rows
            if r.dossier_number not in used | {row.dossier_number}
            and r.booked_on - timedelta(days=3) <= day <= r.last_date + timedelta(days=180)
        ]
        if len(alike) >= 2:
            cast["candidate"], cast["candidate_day"], cast["candidate_alike"] = row, day, alike[:2]
            break
    assert "names_old" in cast, "the generated days hold no dossier for the names line"
    assert "candidate" in cast, "the generated days hold no dossier for the candidate line"
    return cast


def _frontier_lines(db: Engine, source: sa.Row, cast: dict) -> None:
    """Before: the amounts the lines carry given to the dossiers that make their frontiers, and the lines."""
    supplier, currency = source.supplier_code, source.purchase_currency
    with db.begin() as conn:
        for key in ("rank_1", "rank_2", "rank_3"):
            _supplement(conn, cast[key].dossier_number, supplier, currency, RANK)
        _supplement(conn, cast["short_1"].dossier_number, supplier, currency, SHORT)
        for key in ("open_1", "open_2", "held_1", "held_2"):
            _supplement(conn, cast[key].dossier_number, supplier, currency, NAMES)
        # held_1 and held_2 invoiced in full by the rules: they hold the amount, not open.
        expected = {
            key: conn.execute(
                sa.text(
                    """SELECT expected_amount FROM intermediate.int_expected__by_dossier_supplier
                       WHERE dossier_number = :n AND supplier_code = :s AND currency = :c"""
                ),
                {"n": cast[key].dossier_number, "s": supplier, "c": currency},
            ).scalar_one()
            for key in ("held_1", "held_2", "candidate")
        }
        cast["candidate_amount"] = str(expected["candidate"])
        for row in cast["candidate_alike"]:
            _supplement(conn, row.dossier_number, supplier, currency, cast["candidate_amount"])
        _invoice(
            conn,
            supplier,
            "FRONT-HELD",
            FRONTIER_DAY,
            [(cast[k].dossier_number, str(expected[k])) for k in ("held_1", "held_2")],
            currency,
        )
        _invoice(conn, supplier, "FRONT-RANK", FRONTIER_DAY, [("Divers", RANK)], currency)
        _invoice(conn, supplier, "FRONT-SHORT", FRONTIER_DAY, [("Divers", SHORT)], currency)
        _invoice(conn, supplier, "FRONT-NAMES", FRONTIER_DAY, [(f"{cast['names_name']} Divers", NAMES)], currency)
        # One slip from the dossier's number (a candidate whatever the date), dated after its dates fit.
        _invoice(
            conn,
            supplier,
            CANDIDATE,
            cast["candidate_day"],
            [(cast["candidate"].dossier_number[:-1], cast["candidate_amount"])],
            currency,
        )


def _frontier_changes(db: Engine, source: sa.Row, cast: dict) -> None:
    """After: each line's amount reaches one more dossier (or leaves one), as only its condition sees."""
    supplier, currency = source.supplier_code, source.purchase_currency
    with db.begin() as conn:
        _supplement(conn, cast["rank_new"].dossier_number, supplier, currency, RANK)  # ranks before the kept
        _supplement(conn, cast["short_new"].dossier_number, supplier, currency, SHORT)  # the date does not fit
        _supplement(conn, cast["names_old"].dossier_number, supplier, currency, NAMES)  # old, but its name is there
        # Invoiced in full by a new line the rules find: its open amounts close, no change log names it.
        _invoice(
            conn,
            supplier,
            "FRONT-CLOSE",
            FRONTIER_DAY,
            [(cast["candidate"].dossier_number, cast["candidate_amount"])],
            currency,
        )


def _frontier(db: Engine, source: sa.Row) -> None:
    """Each line of the frontier is recomputed by the `amount` reason alone, and the build equals a full refresh."""
    cast = _frontier_cast(db, source)
    _frontier_lines(db, source, cast)
    run_dbt(["run", *SELECT])
    _frontier_changes(db, source, cast)
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        reasons = dict(
            conn.execute(
                sa.text(
                    """SELECT invoice_number, reasons FROM intermediate.int_matching_dirty_lines
                       WHERE invoice_number IN ('FRONT-RANK', 'FRONT-SHORT', 'FRONT-NAMES', :c)"""
                ),
                {"c": CANDIDATE},
            ).all()
        )
    assert reasons == dict.fromkeys(["FRONT-RANK", "FRONT-SHORT", "FRONT-NAMES", CANDIDATE], "amount"), reasons
    incremental = _rows(db)
    _equals_a_full_refresh(db, incremental)


# A line's candidate found by a traveller's name, whose dossier holds no amount equal to the line's
# with its supplier: a supplement of another amount touches none of what that row read.
UNTOUCHED = """SELECT c.supplier_code, c.invoice_number, c.line_number, c.dossier_number, p.purchase_currency
    FROM intermediate.int_matching_candidates AS c
    JOIN app.supplier_invoice_lines AS l USING (supplier_code, invoice_number, line_number)
    JOIN app.price_lines AS p ON p.dossier_number = c.dossier_number AND p.supplier_code = c.supplier_code
        AND p.service_id IS NOT NULL
    WHERE c.name_found AND NOT c.is_rule AND l.amount_incl_tax <> 913.17 AND NOT EXISTS (
        SELECT 1 FROM intermediate.int_matching_dossier_amounts AS a
        WHERE a.dossier_number = c.dossier_number AND a.supplier_code = c.supplier_code
          AND a.amount IN (l.amount_incl_tax, l.amount_incl_tax - 913.17))
    ORDER BY 1, 2, 3, 4 LIMIT 1"""


def _untouched_candidate(db: Engine) -> None:
    """A change of a line's candidate dossier that touches nothing its row read leaves the line out
    of the build (the `candidate` reason reads what changed, not only which dossier)."""
    with db.connect() as conn:
        line = conn.execute(sa.text(UNTOUCHED)).one()
    with db.begin() as conn:
        _supplement(conn, line.dossier_number, line.supplier_code, line.purchase_currency, "913.17")
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        applied = conn.execute(sa.text("SELECT dossiers FROM intermediate.int_matching_changes_applied")).scalar_one()
        reasons = conn.execute(
            sa.text(
                """SELECT reasons FROM intermediate.int_matching_dirty_lines
                   WHERE (supplier_code, invoice_number, line_number) = (:s, :i, :l)"""
            ),
            {"s": line.supplier_code, "i": line.invoice_number, "l": line.line_number},
        ).all()
    assert applied == 1  # the supplemented dossier was changed and recomputed
    assert reasons == [], reasons


# A candidate row whose label_found is set, and one rule 2 found, of two other dossiers than the source.
LABEL_FOUND = """SELECT supplier_code, invoice_number, line_number, dossier_number
    FROM intermediate.int_matching_candidates
    WHERE label_found AND dossier_number <> :src ORDER BY 1, 2, 3, 4 LIMIT 1"""
BY_REFERENCE = """SELECT supplier_code, invoice_number, line_number, dossier_number
    FROM intermediate.int_matching_candidates
    WHERE match_method = 'supplier_reference' AND dossier_number NOT IN (:src, :other) ORDER BY 1, 2, 3, 4 LIMIT 1"""
# Why the build recomputed a line (none: it did not), and the line's row for a dossier now.
CANDIDATE_ROW = """SELECT d.reasons, c.label_found, c.is_rule FROM intermediate.int_matching_dirty_lines AS d
    LEFT JOIN intermediate.int_matching_candidates AS c
      ON (c.supplier_code, c.invoice_number, c.line_number) = (d.supplier_code, d.invoice_number, d.line_number)
      AND c.dossier_number = :n
    WHERE (d.supplier_code, d.invoice_number, d.line_number) = (:s, :i, :l)"""


def _texts_changed(db: Engine, source: str) -> None:
    """What a candidate row read of its dossier's services with the line's supplier changed: the
    label its line's description repeats, the supplier's reference rule 2 found it by. Each line is
    recomputed for that alone (int_matching_service_texts against its copy before the change)."""
    with db.connect() as conn:
        labelled = conn.execute(sa.text(LABEL_FOUND), {"src": source}).one()
        referenced = conn.execute(sa.text(BY_REFERENCE), {"src": source, "other": labelled.dossier_number}).one()
    with db.begin() as conn:
        for row, statement in ((labelled, RELABEL), (referenced, REREFERENCE)):
            conn.execute(sa.text(statement), {"n": row.dossier_number, "s": row.supplier_code})
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        label, rule = (
            conn.execute(
                sa.text(CANDIDATE_ROW),
                {"s": row.supplier_code, "i": row.invoice_number, "l": row.line_number, "n": row.dossier_number},
            ).one_or_none()
            for row in (labelled, referenced)
        )
    assert label is not None and "candidate" in label.reasons and not label.label_found, label
    assert rule is not None and "candidate" in rule.reasons and not rule.is_rule, rule  # gone, or a clue's


CHECK = "int_matching_candidates_rows_hold"


def _check_reads_the_dirty_lines(db: Engine) -> None:
    """The candidates' check of an incremental build reads the lines it recomputed, and fails on one."""
    run_dbt(["test", "--select", CHECK])
    (compiled,) = (target_path() / "run").rglob(f"{CHECK}.sql")
    assert "int_matching_dirty_lines" in compiled.read_text(encoding="utf-8")
    duplicate = """INSERT INTO intermediate.int_matching_candidates
                   SELECT c.* FROM intermediate.int_matching_candidates AS c
                   JOIN intermediate.int_matching_dirty_lines USING (supplier_code, invoice_number, line_number)
                   ORDER BY 1, 2, 3, 4 LIMIT 1"""
    with db.begin() as conn:
        conn.execute(sa.text(duplicate))
    try:
        run_dbt(["test", "--select", CHECK])
    except DbtFailed as failed:
        assert CHECK in str(failed)
    else:
        raise AssertionError("a duplicate candidate of a recomputed line passed the check")
    with db.begin() as conn:  # the duplicate out again: one of the two identical rows
        conn.execute(
            sa.text(
                """DELETE FROM intermediate.int_matching_candidates WHERE ctid IN (
                       SELECT max(ctid) FROM intermediate.int_matching_candidates
                       GROUP BY supplier_code, invoice_number, line_number, dossier_number HAVING count(*) > 1)"""
            )
        )


# The tables replaced dossier by dossier and their keys; their unique checks' `where` words are
# matching_changed_dossiers and matching_open_dossiers.
KEYED_BY_DOSSIER = (
    ("int_matching_dossier_amounts", "supplier_code, currency, amount, dossier_number"),
    ("int_matching_open_amounts", "supplier_code, currency, kind, amount, dossier_number"),
)


def _unique_checks_read_the_recomputed_dossiers(db: Engine, changed: set[str]) -> None:
    """The unique check of each table an incremental build replaces dossier by dossier reads the
    dossiers it recomputed (its `where` word) and fails on one of them; the weekly build reads every
    dossier. The changed dossiers are among those recomputed."""
    for table, key in KEYED_BY_DOSSIER:
        daily = ["test", "--select", f"{table},test_name:unique"]
        weekly = [*daily, "--vars", "{mart_checks_all: true}"]
        duplicate = f"""INSERT INTO intermediate.{table} SELECT * FROM intermediate.{table}
                        WHERE dossier_number = :n ORDER BY {key} LIMIT 1"""
        run_dbt(daily)
        (compiled,) = (target_path() / "run").rglob(f"unique_{table[:20]}*.sql")  # the name is hashed
        sql = compiled.read_text(encoding="utf-8")
        listed = re.search(r"dossier_number = any\(array\[(.*?)\]::text\[\]\)", sql, re.S)
        assert listed is not None, (table, sql)
        recomputed = set(re.findall(r"'([^']+)'", listed.group(1)))
        assert changed <= recomputed, (table, changed - recomputed)
        with db.connect() as conn:
            numbers = sorted(
                conn.execute(sa.text(f"SELECT DISTINCT dossier_number FROM intermediate.{table}")).scalars()
            )
        kept = next(n for n in numbers if n not in recomputed)
        changed_with_rows = next(n for n in numbers if n in changed)
        with db.begin() as conn:
            conn.execute(sa.text(duplicate), {"n": kept})
        run_dbt(daily)  # a dossier the build did not recompute is not read
        for args, number in ((weekly, None), (daily, changed_with_rows)):
            if number:
                with db.begin() as conn:
                    conn.execute(sa.text(duplicate), {"n": number})
            try:
                run_dbt(args)
            except DbtFailed as failed:
                assert f"unique_{table}" in str(failed)
            else:
                raise AssertionError(f"a duplicate row of {table} passed {args}")
        with db.begin() as conn:  # the duplicates out again
            conn.execute(
                sa.text(
                    f"""DELETE FROM intermediate.{table} WHERE ctid IN (
                           SELECT max(ctid) FROM intermediate.{table} GROUP BY {key} HAVING count(*) > 1)"""
                )
            )


def _mart_changes_applied(db: Engine) -> None:
    """What int_mart_changes_applied does once a whole build passed (it is not selected here): the
    change log emptied, so the next builds compare only the lines it names with their seen copies."""
    with db.begin() as conn:
        conn.execute(sa.text("DELETE FROM app.mart_changes"))


def test_incremental_tables_equal_a_full_refresh(db: Engine, tmp_path: Path) -> None:
    generated_days(db, tmp_path / "landing", START, DAYS, 12, seed=5)
    source = _source(db)
    _old_invoices(db, source)
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM app.matching_changes")).scalar_one() == 0
    _mart_changes_applied(db)
    before = _rows(db)

    # Nothing changed since: nothing to recompute (not everything), and the same rows.
    run_dbt(["run", *SELECT])
    with db.connect() as conn:
        touched = conn.execute(
            sa.text(
                """SELECT (SELECT count(*) FROM intermediate.int_matching_rule_changes),
                          (SELECT count(*) FROM intermediate.int_matching_dirty_lines)"""
            )
        ).one()
    assert tuple(touched) == (0, 0)
    assert _rows(db) == before

    _frontier(db, source)
    _mart_changes_applied(db)  # the frontier's full refresh logged `everything`
    _untouched_candidate(db)
    _mart_changes_applied(db)
    _texts_changed(db, source.dossier_number)
    _mart_changes_applied(db)

    changed = _change(db, random.Random(7), source.dossier_number)
    _change_invoices(db, random.Random(8), source.supplier_code, source.start_date)
    run_dbt(["run", *SELECT])
    (compiled,) = (target_path() / "run").rglob("int_matching_rule_changes.sql")
    assert "left join lateral" in compiled.read_text(encoding="utf-8")  # the logged lines, each by its key
    with db.connect() as conn:
        applied = conn.execute(sa.text("SELECT * FROM intermediate.int_matching_changes_applied")).one()
        left = conn.execute(sa.text("SELECT count(*) FROM app.matching_changes")).scalar_one()
    assert not applied.everything
    assert applied.dossiers == len(changed)
    assert left == 0
    incremental = _rows(db)
    assert incremental != before  # the changes reached the tables
    with db.connect() as conn:
        everything, dirty, lines = conn.execute(
            sa.text(
                """SELECT bool_or(everything), count(*),
                          (SELECT count(*) FROM app.supplier_invoice_lines)
                   FROM intermediate.int_matching_dirty_lines"""
            )
        ).one()
    assert not everything and 0 < dirty < lines / 2, (dirty, lines)
    with db.connect() as conn:
        recomputed, dossiers = conn.execute(
            sa.text(
                """SELECT (SELECT count(DISTINCT d) FROM intermediate.int_matching_rule_changes AS r
                           CROSS JOIN unnest(r.rules_before || r.rules_now) AS d
                           WHERE r.line_changed OR r.rules_before <> r.rules_now),
                          (SELECT count(*) FROM app.dossiers)"""
            )
        ).one()
    # the open amounts of the dossiers the moved lines' rules name were recomputed, not every dossier's
    assert 0 < recomputed + len(changed) < dossiers / 2, (recomputed, len(changed), dossiers)

    _check_reads_the_dirty_lines(db)
    _unique_checks_read_the_recomputed_dossiers(db, changed)

    _equals_a_full_refresh(db, incremental)
