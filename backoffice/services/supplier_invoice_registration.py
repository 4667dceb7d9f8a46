"""Supplier invoices registered by hand in the accounting space: typed in a form, or dropped as a file.

Both go through ingestion's own contract (backoffice.ingest): a form becomes contract lines as a
CSV record would (every value as text), a file is read by ingestion's parsers (`read_lines`: CSV in
the landing format, UBL 2.1, Factur-X PDF), and `assemble` checks the lines and groups them into
invoices. So a registered invoice obeys ingestion's rules: every bad field is named; the same
invoice registered (or ingested) again with the same content changes nothing; the same supplier
and number with other content is refused as a conflict naming the invoice held. Invoices are
written with origin 'manual' under the ingestion's lock, so a registration and a day's load never
interleave.

New lines reach matching at once: after the commit, their candidates are computed by the dbt
model int_matching_candidates itself (compiled by dbt once per process, run for the new invoices
only and added to its table), so the marts show them automatic, suggested or unmatched right away
(docs/supplier_invoices.md). The amounts still open per dossier (int_matching_open_amounts) are the
last build's: what the new invoice's own lines invoice closes its dossiers' amounts at the next
build, which may then suggest the new invoice's other lines elsewhere.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.db.engine import DatabaseUnavailable, owner_engine, resolve_database_url
from backoffice.dbt_runner import DBT_PROJECT_DIR, DbtFailed, run_dbt_process, target_path
from backoffice.domain.errors import InvalidInput
from backoffice.domain.periods import PERIOD_CLOSED_SQLSTATE, PeriodClosed
from backoffice.domain.permissions import Actor
from backoffice.domain.text import optional_text
from backoffice.ingest.files import landing_file
from backoffice.ingest.invoice_contract import Invoice, SourceLine, assemble, incl_from_excl
from backoffice.ingest.invoice_xml import SupplierDirectory
from backoffice.ingest.supplier_invoices import SOURCE, SUFFIXES, read_lines
from backoffice.services import audit, idempotency
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "supplier_invoice_registration"
FORM_FILE = "form"  # the `file` of a typed invoice, in problems and in source_file ("manual/form")
LINE_FIELDS = ("reference", "description", "amount_excl_tax", "vat_rate", "amount_incl_tax")
HEADER_FIELDS = ("supplier_code", "invoice_number", "kind", "invoice_date", "due_date", "currency")
MAX_LINES = 500
MAX_TEXT = 300
MAX_NUMBER = 100
MAX_FILE_BYTES = 10 * 1024 * 1024
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    field: str  # `supplier_code`, `lines[2].amount_incl_tax`, or `file` (with the file's line in the message)
    message: str


@dataclass(frozen=True)
class Draft:
    """One invoice as checked, and what registering it would do: `new`, `unchanged` or `conflict`."""

    invoice: Invoice
    state: str
    held_source: str | None  # the file (or manual/...) the invoice already held came from

    @property
    def head(self) -> Any:
        return self.invoice.lines[0]

    def conflict(self) -> InvalidInput:
        return InvalidInput(
            "invoice_number",
            f"invoice {self.head.invoice_number} of supplier {self.head.supplier_code} was already received with "
            f"different content ({self.held_source}): not replaced",
        )

    @property
    def total_incl_tax(self) -> Decimal:
        return sum((line.amount_incl_tax for line in self.invoice.lines), Decimal("0.00"))


@dataclass(frozen=True)
class Preview:
    source: str  # `manual/form` or `manual/<file name>`
    drafts: tuple[Draft, ...]
    problems: tuple[Problem, ...]

    def first_error(self) -> InvalidInput | None:
        """What registering would be refused for: the first bad field, else the first conflict."""
        if self.problems:
            return InvalidInput(self.problems[0].field, self.problems[0].message)
        for d in self.drafts:
            if d.state == "conflict":
                return d.conflict()
        if not self.drafts:
            return InvalidInput("lines", "no invoice line to register")
        return None


@dataclass(frozen=True)
class Registration:
    invoices: tuple[tuple[str, str, str], ...]  # (supplier_code, invoice_number, 'new' | 'unchanged')
    lines: int  # lines written
    matched: bool  # whether the new lines got their candidates now (else at the next dbt build)


# ---------------------------------------------------------------- reading a form or a file


def _suppliers(conn: Connection) -> SupplierDirectory:
    return SupplierDirectory.of(
        tuple(r) for r in conn.execute(sa.text("SELECT supplier_code, name, vat_number FROM app.suppliers"))
    )


def _text(value: object, field: str, limit: int = MAX_TEXT) -> str | None:
    """A form value as the text a CSV cell would hold; dates are written out, floats refused."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    return optional_text(value, field, limit)


def _form_lines(header: dict[str, object], lines: object) -> list[SourceLine]:
    if not isinstance(lines, list | tuple) or not lines:
        raise InvalidInput("lines", "at least one invoice line is required")
    if len(lines) > MAX_LINES:
        raise InvalidInput("lines", f"at most {MAX_LINES} lines per invoice")
    fields = {name: _text(header[name], name, MAX_NUMBER) for name in HEADER_FIELDS}
    if fields["kind"] is None:
        fields["kind"] = "invoice"
    out = []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict) or set(line) - set(LINE_FIELDS):
            raise InvalidInput(f"lines[{number}]", f"expected the fields {', '.join(LINE_FIELDS)}")
        values = {name: _text(line.get(name), f"lines[{number}].{name}") for name in LINE_FIELDS}
        if values["amount_incl_tax"] is None:  # as UBL: computed from the net amount and the rate
            values["amount_incl_tax"] = incl_from_excl(values["amount_excl_tax"], values["vat_rate"])
        out.append(SourceLine(number, {**fields, "line_number": str(number), **values}))
    return out


def _problems(rejections: list[tuple], form: bool) -> list[Problem]:
    """Each rejection's `field: problem` parts as named problems; a form's header problems once."""
    problems: list[Problem] = []
    for _, line, _, reason in rejections:
        if " is rejected whole: " in reason:  # a good line of a bad invoice: its bad lines say why
            continue
        for part in reason.split("; "):
            field, _, message = part.partition(": ")
            if not form:
                problems.append(Problem("file", f"line {line}: {part}" if line else part))
            elif field in HEADER_FIELDS or field == "line_number":
                problems.append(Problem(field, message))
            else:
                problems.append(Problem(f"lines[{line}].{field}", message))
    return list(dict.fromkeys(problems))


def _classify(conn: Connection, invoices: list[Invoice]) -> tuple[Draft, ...]:
    drafts = []
    for invoice in invoices:
        head = invoice.lines[0]
        held = conn.execute(
            sa.text(
                "SELECT sha256, source_file FROM app.supplier_invoices WHERE supplier_code = :s AND invoice_number = :n"
            ),
            {"s": head.supplier_code, "n": head.invoice_number},
        ).first()
        if held is None:
            drafts.append(Draft(invoice, "new", None))
        else:
            state = "unchanged" if held.sha256 == invoice.sha256 else "conflict"
            drafts.append(Draft(invoice, state, held.source_file))
    return tuple(drafts)


def preview_form(
    conn: Connection,
    *,
    supplier_code: object,
    invoice_number: object,
    kind: object = "invoice",
    invoice_date: object,
    due_date: object = None,
    currency: object,
    lines: object,
) -> Preview:
    """The typed invoice as ingestion would read it: checked lines, or every problem by field."""
    header = {
        "supplier_code": supplier_code,
        "invoice_number": invoice_number,
        "kind": kind,
        "invoice_date": invoice_date,
        "due_date": due_date,
        "currency": currency,
    }
    source = f"manual/{FORM_FILE}"
    source_lines = _form_lines(header, lines)
    invoices, rejections = assemble(source, source_lines, _suppliers(conn).codes)
    return Preview(source, _classify(conn, invoices), tuple(_problems(rejections, True)))


def preview_file(conn: Connection, *, filename: object, data: object) -> Preview:
    """A dropped file read by ingestion's parsers: its invoices, or every problem with its line."""
    if not isinstance(filename, str) or not filename.strip():
        raise InvalidInput("file", "a file name is required")
    name = PurePath(filename.strip()).name
    if PurePath(name).suffix.lower() not in SUFFIXES:
        raise InvalidInput("file", f"{name}: expected a {', '.join(SUFFIXES)} file (CSV, UBL 2.1, Factur-X)")
    if not isinstance(data, bytes) or not data:
        raise InvalidInput("file", f"{name} is empty")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput("file", f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    root = Path("/manual")
    source = f"manual/{name}"
    f = landing_file(root / "manual" / name, root, data, keep_bytes=True)
    suppliers = _suppliers(conn)
    source_lines, unreadable = read_lines(f, data, suppliers)
    invoices, rejections = assemble(source, source_lines, suppliers.codes)
    problems = _problems([*unreadable, *rejections], False)
    return Preview(source, _classify(conn, invoices), tuple(problems))


# ---------------------------------------------------------------- registering


_INSERT_INVOICE = sa.text(
    """INSERT INTO app.supplier_invoices (supplier_code, invoice_number, kind, invoice_date, due_date, currency,
                                          sha256, source_file, origin)
       VALUES (:supplier_code, :invoice_number, :kind, :invoice_date, :due_date, :currency, :sha256, :source,
               'manual')"""
)
_INSERT_LINE = sa.text(
    """INSERT INTO app.supplier_invoice_lines (supplier_code, invoice_number, line_number, reference, description,
                                               amount_excl_tax, vat_rate, amount_incl_tax)
       VALUES (:supplier_code, :invoice_number, :line_number, :reference, :description, :amount_excl_tax, :vat_rate,
               :amount_incl_tax)"""
)


def _insert(conn: Connection, draft: Draft, source: str) -> int:
    """Write one new invoice and its lines; returns how many lines."""
    head = draft.head
    conn.execute(
        _INSERT_INVOICE,
        {
            "supplier_code": head.supplier_code,
            "invoice_number": head.invoice_number,
            "kind": head.kind,
            "invoice_date": head.invoice_date,
            "due_date": head.due_date,
            "currency": head.currency,
            "sha256": draft.invoice.sha256,
            "source": source,
        },
    )
    conn.execute(
        _INSERT_LINE,
        [
            {
                "supplier_code": r.supplier_code,
                "invoice_number": r.invoice_number,
                "line_number": r.line_number,
                "reference": r.reference,
                "description": r.description,
                "amount_excl_tax": r.amount_excl_tax,
                "vat_rate": r.vat_rate,
                "amount_incl_tax": r.amount_incl_tax,
            }
            for r in draft.invoice.lines
        ],
    )
    return len(draft.invoice.lines)


def _register(uow: UnitOfWork, actor: Actor, preview: Preview, request: dict[str, Any], key: str) -> Registration:
    """Write the new invoices of a checked preview; shared by the form and the file drop."""
    error = preview.first_error()
    if error is not None:
        audit.refuse(uow, actor, ACTION, None, error)
    earlier = idempotency.claim(uow.conn, key, ACTION, request, actor.login)
    if earlier is not None:
        return Registration(
            tuple(tuple(i) for i in earlier["invoices"]), int(earlier["lines"]), bool(earlier["matched"])
        )
    # Ingestion's lock: a day's load classifies invoices against app.supplier_invoices, then writes.
    uow.conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"backoffice.ingest.{SOURCE}"})
    drafts = _classify(uow.conn, [d.invoice for d in preview.drafts])
    done: list[tuple[str, str, str]] = []
    written = 0
    for draft in drafts:
        head = draft.head
        if draft.state == "conflict":  # registered or ingested since the preview
            audit.refuse(uow, actor, ACTION, None, draft.conflict())
        if draft.state == "new":
            try:
                written += _insert(uow.conn, draft, preview.source)
            except sa.exc.DBAPIError as exc:
                # The database refuses an invoice dated in a closed accounting period (0021).
                if getattr(exc.orig, "sqlstate", None) != PERIOD_CLOSED_SQLSTATE:
                    raise
                reason = getattr(getattr(exc.orig, "diag", None), "message_primary", None) or str(exc.orig)
                audit.refuse(uow, actor, ACTION, None, PeriodClosed(reason))
        audit.record(
            uow.conn,
            actor.login,
            ACTION,
            detail=f"{draft.state}: {head.supplier_code} {head.invoice_number} ({preview.source})",
            after={
                "supplier_code": head.supplier_code,
                "invoice_number": head.invoice_number,
                "kind": head.kind,
                "invoice_date": head.invoice_date,
                "due_date": head.due_date,
                "currency": head.currency,
                "lines": len(draft.invoice.lines),
                "total_incl_tax": draft.total_incl_tax,
                "sha256": draft.invoice.sha256,
                "source": preview.source,
                "state": draft.state,
            },
        )
        done.append((head.supplier_code, head.invoice_number, draft.state))
    new = [(s, n) for s, n, state in done if state == "new"]
    result = {"invoices": done, "lines": written, "matched": not new}
    idempotency.store(uow.conn, key, result)
    uow.commit()
    matched = refresh_candidates(new) if new else True
    if matched != result["matched"]:
        idempotency.store(uow.conn, key, {**result, "matched": matched})
        uow.commit()
    return Registration(tuple(done), written, matched)


def register_form(
    uow: UnitOfWork,
    actor: Actor,
    *,
    supplier_code: str,
    invoice_number: str,
    kind: str = "invoice",
    invoice_date: date | str,
    due_date: date | str | None = None,
    currency: str,
    lines: list[dict[str, str | None]],
    idempotency_key: str,
) -> Registration:
    """Register one typed invoice (or credit note): `lines` are dicts of LINE_FIELDS as text, amounts
    positive (a credit note's kind gives the sign), `vat_rate` a fraction ('0.20'); an empty
    `amount_incl_tax` is computed from the net amount and the rate."""
    audit.require(uow.engine, actor, "reconcile", ACTION)
    try:
        preview = preview_form(
            uow.conn,
            supplier_code=supplier_code,
            invoice_number=invoice_number,
            kind=kind,
            invoice_date=invoice_date,
            due_date=due_date,
            currency=currency,
            lines=lines,
        )
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, None, error)
    request = {"source": preview.source, "sha256": sorted(d.invoice.sha256 for d in preview.drafts)}
    request["invoices"] = sorted(f"{d.head.supplier_code}/{d.head.invoice_number}" for d in preview.drafts)
    return _register(uow, actor, preview, request, idempotency_key)


def register_file(uow: UnitOfWork, actor: Actor, *, filename: str, data: bytes, idempotency_key: str) -> Registration:
    """Register every invoice of a dropped CSV, UBL 2.1 or Factur-X file, all or none."""
    audit.require(uow.engine, actor, "reconcile", ACTION)
    try:
        preview = preview_file(uow.conn, filename=filename, data=data)
    except InvalidInput as error:
        audit.refuse(uow, actor, ACTION, None, error)
    request = {"source": preview.source, "file_sha256": hashlib.sha256(data).hexdigest()}
    return _register(uow, actor, preview, request, idempotency_key)


# ---------------------------------------------------------------- matching the new lines

MODEL = "int_matching_candidates"
READS = ("int_matching_open_amounts",)  # the tables of the last build the model reads besides its own
MODEL_FILES = (
    DBT_PROJECT_DIR / "dbt_project.yml",
    DBT_PROJECT_DIR / "models" / "intermediate" / f"{MODEL}.sql",
    *sorted((DBT_PROJECT_DIR / "macros").glob("**/*.sql")),
)
COMPILED = Path("compiled") / "backoffice" / "models" / "intermediate" / f"{MODEL}.sql"  # in dbt's target
# dbt writes relations as "database"."schema"."table": the database is whichever dbt compiled for.
_DATABASE = re.compile(r'"[^"]+"\.("[A-Za-z0-9_]+"\."[A-Za-z0-9_]+")')


@functools.cache
def _compiled_model(digest: str, database_url: str) -> str:
    """The model's full SELECT, every line (`digest`: of its sources, so an edit compiles again).

    The builds compile the model incrementally (the lines of their own changes): registration
    compiles it apart, `--full-refresh` into a target of its own, some seconds the first time."""
    sources = max(p.stat().st_mtime for p in MODEL_FILES if p.exists())
    target = target_path() / "registration"
    compiled = target / COMPILED
    if not compiled.exists() or compiled.stat().st_mtime < sources:
        proc = run_dbt_process(["compile", "--full-refresh", "--select", MODEL], database_url, target)
        if proc.returncode != 0:
            raise DbtFailed(f"dbt compile of {MODEL} failed: {(proc.stdout + proc.stderr)[-2000:]}")
    return _DATABASE.sub(r"\1", compiled.read_text(encoding="utf-8"))


def candidate_sql(database_url: str) -> str:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in MODEL_FILES if p.exists())).hexdigest()
    return _compiled_model(digest, database_url)


def refresh_candidates(invoices: list[tuple[str, str]], database_url: str | None = None) -> bool:
    """Compute the matching candidates of these invoices' lines with the model's own SQL and add
    them to intermediate.int_matching_candidates. False (the lines wait for the next dbt build)
    when the table is not built yet or the model cannot run.

    Runs as the database owner, as dbt does (DATABASE_URL): the application's role only reads
    dbt's schemas."""
    if not invoices:
        return True
    engine = None
    try:
        url = database_url or resolve_database_url()
        select = candidate_sql(url)
        engine = owner_engine(url)
        with engine.begin() as conn:
            for table in (MODEL, *READS):
                if conn.execute(sa.text(f"SELECT to_regclass('intermediate.{table}')")).scalar() is None:
                    return False
            columns = ", ".join(
                f'"{c}"'
                for c in conn.execute(
                    sa.text(
                        """SELECT column_name FROM information_schema.columns
                           WHERE table_schema = 'intermediate' AND table_name = :t ORDER BY ordinal_position"""
                    ),
                    {"t": MODEL},
                ).scalars()
            )
            keys = {"s": [s for s, _ in invoices], "n": [n for _, n in invoices]}
            wanted = "(supplier_code, invoice_number) IN (SELECT * FROM unnest(CAST(:s AS text[]), CAST(:n AS text[])))"
            conn.execute(sa.text(f"DELETE FROM intermediate.{MODEL} WHERE {wanted}"), keys)
            conn.execute(
                sa.text(
                    f"INSERT INTO intermediate.{MODEL} ({columns}) SELECT {columns} FROM ({select}) AS c WHERE {wanted}"
                ),
                keys,
            )
    except (DbtFailed, DatabaseUnavailable, OSError, sa.exc.DBAPIError) as exc:
        _log.warning("matching candidates of %s not computed now (next dbt build will): %s", invoices, exc)
        return False
    finally:
        if engine is not None:
            engine.dispose()
    return True
