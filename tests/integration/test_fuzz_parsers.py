"""The landing-file parsers fed generated garbage (hypothesis): never a crash, always a load or a reason.

Each target starts from a valid record or file of the contract (shared/contracts/landing.md) and
breaks it: fields replaced by random text or JSON values, bytes inserted, deleted or flipped, files
cut short. What may come out is a parsed record, or the contract's own refusal (ContractBreach,
Unparseable, a rejection tuple) with a reason; anything else (a KeyError, a decimal.InvalidOperation,
a traceback from lxml) fails. A refused record must name a field that was broken. The day loaders
then run on garbage files against the real database: the day is loaded or rejected record by record,
every record is accounted for, and a second run changes nothing.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from backoffice.domain.errors import InvalidInput
from backoffice.generator.catalog import SUPPLIERS
from backoffice.generator.facturx_pdf import render_facturx
from backoffice.generator.supplier_invoices import Intent, InvoiceDoc
from backoffice.generator.ubl import render_ubl
from backoffice.ingest import load_suppliers
from backoffice.ingest.booking_contract import ContractBreach, Snapshot, parse_snapshot
from backoffice.ingest.csv_records import read_csv
from backoffice.ingest.files import landing_file
from backoffice.ingest.invoice_contract import assemble
from backoffice.ingest.invoice_xml import SupplierDirectory
from backoffice.ingest.payment_contract import COLUMNS as PAYMENT_COLUMNS
from backoffice.ingest.payment_contract import Payment, parse_payment
from backoffice.ingest.payments import load_payments_day
from backoffice.ingest.supplier_invoices import load_supplier_invoices_day, read_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BOOKING_LINE = (FIXTURES / "landing" / "bookings" / "2026-11-25" / "platform.jsonl").read_text().splitlines()[0]
PAYMENTS_CSV = (FIXTURES / "ingest_landing" / "payments" / "2026-11-25" / "provider.csv").read_bytes()
INVOICES_CSV = (FIXTURES / "ingest_landing" / "supplier_invoices" / "2026-11-26" / "SUP0001_resent.csv").read_bytes()
DIRECTORY = SupplierDirectory.of((s.code, s.name, s.vat_number) for s in SUPPLIERS)
# `make soak` multiplies every count (BACKOFFICE_FUZZ_SCALE=20: 4,000 cases per parser).
SCALE = int(os.environ.get("BACKOFFICE_FUZZ_SCALE", "1"))
FAST = settings(max_examples=200 * SCALE, deadline=None)
GARBAGE_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "NaN", "Infinity", "-0", "1e309", "0x1F", "١٢٣", "12,50", "2026-02-30", "\x00", "null"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | GARBAGE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _invoice_doc() -> InvoiceDoc:
    supplier = SUPPLIERS[1]
    intents = (
        Intent(0, supplier.code, "invoice", "Vol x2", 81234, 81234, "0", "BK-2026-000042", "dossier_number", ""),
        Intent(0, supplier.code, "invoice", "Hotel", 10000, 12000, "0.20", "DUPONT/JEAN", "traveller_name", ""),
    )
    return InvoiceDoc(supplier, "INV2026-000007", "invoice", "2026-11-20", "2026-12-05", intents)


UBL = render_ubl(_invoice_doc())
FACTURX = render_facturx(_invoice_doc())


@st.composite
def broken_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with a few random edits: bytes inserted, deleted or replaced, or the tail cut off."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        chunk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.sampled_from(
                    [b'"', b",", b"\n", b"\r", b"\x00", b"\xff\xfe", b"<", b"&amp;", b"]]>", b"\xef\xbb\xbf"]
                ),
            )
        )
        if edit == "insert":
            data[at:at] = chunk
        elif edit == "delete":
            del data[at : at + len(chunk)]
        elif edit == "replace":
            data[at : at + len(chunk)] = chunk
        else:
            del data[at:]
    return bytes(data)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return []
    found = []
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


BOOKING = json.loads(BOOKING_LINE)
BOOKING_PATHS = _paths(BOOKING)


@FAST
@given(
    paths=st.lists(st.sampled_from(BOOKING_PATHS), min_size=1, max_size=3),
    values=st.lists(JSON_VALUES, min_size=3, max_size=3),
    drop=st.booleans(),
)
def test_a_booking_line_with_broken_fields_is_parsed_or_refused_naming_a_field(
    paths: list[tuple[Any, ...]], values: list[Any], drop: bool
) -> None:
    doc = copy.deepcopy(BOOKING)
    for path, value in zip(paths, values, strict=False):
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if drop and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced a parent of this path
    line = json.dumps(doc, ensure_ascii=False)
    try:
        snapshot = parse_snapshot(line)
    except ContractBreach as breach:
        assert breach.reason.strip()
        named = {str(part) for path in paths for part in path if isinstance(part, str)}
        assert any(name in breach.reason for name in named), (breach.reason, paths)
        return
    assert isinstance(snapshot, Snapshot) and snapshot.dossier_number


@FAST
@given(
    data=st.one_of(
        st.text(max_size=200), broken_bytes(BOOKING_LINE.encode()).map(lambda b: b.decode("utf-8", "replace"))
    )
)
def test_a_garbage_booking_line_is_refused_with_a_reason(data: str) -> None:
    try:
        parse_snapshot(data)
    except ContractBreach as breach:
        assert breach.reason.strip()


def _payment() -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(PAYMENTS_CSV.decode("utf-8-sig"))))
    return rows[0]


@FAST
@given(broken=st.dictionaries(st.sampled_from(PAYMENT_COLUMNS), GARBAGE_TEXT, min_size=1, max_size=4))
def test_a_payment_with_broken_fields_is_parsed_or_refused_naming_a_broken_field(broken: dict[str, str]) -> None:
    record = {**_payment(), **broken}
    try:
        payment = parse_payment(record)
    except ContractBreach as breach:
        assert any(name in breach.reason for name in broken), (breach.reason, broken)
        return
    assert isinstance(payment, Payment)
    assert payment.amount == payment.amount.quantize(payment.amount.__class__("0.01"))


def _file(tmp_path: Path, name: str, data: bytes, keep_bytes: bool = False):
    path = tmp_path / name
    path.write_bytes(data)
    return landing_file(path, tmp_path, data, keep_bytes=keep_bytes)


@FAST
@given(data=broken_bytes(PAYMENTS_CSV))
def test_a_broken_payments_file_gives_records_or_rejections_never_an_error(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("p", numbered=True)
    parsed = read_csv(_file(folder, "payments.csv", data), PAYMENT_COLUMNS)
    for rejection in parsed.rejections:
        assert rejection[0] == "payments.csv" and rejection[3].strip()
    for record in parsed.records:
        assert record.line >= 2
        try:
            parse_payment(record.fields)
        except ContractBreach as breach:
            assert breach.reason.strip()


@FAST
@given(
    name=st.sampled_from(["invoice.csv", "invoice.xml", "invoice.pdf"]),
    edits=st.data(),
)
def test_a_broken_supplier_invoice_gives_lines_or_a_reason_never_an_error(
    name: str, edits: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    valid = {"invoice.csv": INVOICES_CSV, "invoice.xml": UBL, "invoice.pdf": FACTURX}[name]
    data = edits.draw(broken_bytes(valid))
    folder = tmp_path_factory.mktemp("i", numbered=True)
    f = _file(folder, name, data, keep_bytes=True)
    lines, unreadable = read_lines(f, data, DIRECTORY)
    invoices, rejected = assemble(name, lines, DIRECTORY.codes)
    for _, _, _, reason in unreadable + rejected:
        assert reason.strip()
    assert all(line.amount_incl_tax is not None for invoice in invoices for line in invoice.lines)


def test_an_xml_invoice_cannot_read_local_files_or_expand_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = UBL.decode()
    declaration, rest = body.split("?>", 1) if body.startswith("<?xml") else ("", body)
    for dtd in (
        f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file://{secret}">]>',
        '<!DOCTYPE Invoice [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY x "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    ):
        document = (declaration + "?>" if declaration else "") + dtd + rest.replace("INV2026-000007", "&x;", 1)
        data = document.encode()
        lines, unreadable = read_lines(_file(tmp_path, "x.xml", data, keep_bytes=True), data, DIRECTORY)
        assert "TOP-SECRET-CONTENT" not in repr(lines) + repr(unreadable)
        assert "aaaaaaaaaa" * 10 not in repr(lines)


# The day loaders against the real database, on fewer examples (each is one day's transaction).
DAYS = iter(date(2030, 1, 1) + timedelta(days=n) for n in range(10_000))


@pytest.fixture(scope="module")
def landing(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Path]:
    root = tmp_path_factory.mktemp("landing")
    reference = root / "reference"
    reference.mkdir()
    (reference / "suppliers.csv").write_bytes((FIXTURES / "landing" / "reference" / "suppliers.csv").read_bytes())
    load_suppliers(date(2030, 1, 1), root, engine)
    return engine, root


def _ledger_files(engine: Engine, source: str, day: date) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM raw.landing_files WHERE source = :s AND partition_date = :d"),
            {"s": source, "d": day},
        ).scalar_one()


@settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payments=broken_bytes(PAYMENTS_CSV), invoices=broken_bytes(INVOICES_CSV), xml=broken_bytes(UBL))
def test_garbage_landing_files_load_record_by_record_and_a_rerun_changes_nothing(
    landing: tuple[Engine, Path], payments: bytes, invoices: bytes, xml: bytes
) -> None:
    engine, root = landing
    day = next(DAYS)
    for source, name, data in (
        ("payments", "fuzz.csv", payments),
        ("supplier_invoices", "fuzz.csv", invoices),
        ("supplier_invoices", "fuzz.xml", xml),
    ):
        folder = root / source / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    first = [load_payments_day(day, root, engine), load_supplier_invoices_day(day, root, engine)]
    for result in first:
        assert result.files >= 1 and result.files_skipped == 0
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.text("SELECT reason FROM raw.rejections WHERE file LIKE :f"), {"f": f"%/{day.isoformat()}/%"}
        ).scalars()
        assert all(reason and reason.strip() for reason in reasons)
    # Every file is in the ledger, and a second run of the day skips them all.
    assert _ledger_files(engine, "payments", day) == 1
    assert _ledger_files(engine, "supplier_invoices", day) == 2
    again = [load_payments_day(day, root, engine), load_supplier_invoices_day(day, root, engine)]
    for result in again:
        assert result.files_skipped == result.files and result.rows_loaded == result.rows_rejected == 0


@settings(max_examples=100 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["invoice.csv", "invoice.xml", "invoice.pdf", "../../etc/invoice.xml", "x.exe", "", "a.PDF"]),
    edits=st.data(),
)
def test_the_supplier_invoice_file_drop_previews_or_refuses_the_file(
    landing: tuple[Engine, Path], name: str, edits: st.DataObject
) -> None:
    from backoffice.services.supplier_invoice_registration import preview_file

    valid = {".csv": INVOICES_CSV, ".xml": UBL, ".pdf": FACTURX}.get(Path(name).suffix.lower(), FACTURX)
    data = edits.draw(st.one_of(broken_bytes(valid), st.just(valid), st.binary(max_size=64)))
    try:
        with landing[0].connect() as conn:
            preview = preview_file(conn, filename=name, data=data)
    except InvalidInput as refused:
        assert refused.field == "file" and refused.problem.strip()
        return
    assert "/" not in preview.source.removeprefix("manual/")
    assert all(problem.field and problem.message.strip() for problem in preview.problems)
