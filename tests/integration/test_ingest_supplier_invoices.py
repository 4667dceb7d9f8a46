"""Supplier invoice ingestion against a real PostgreSQL: CSV, UBL 2.1 and Factur-X.

tests/fixtures/ingest_landing/supplier_invoices: 11-25 `SUP_mixed.csv` (BOM + CRLF) holds two
good invoices and a credit note beside an invoice with one line whose amounts disagree, and one
breach per kind; five files are unreadable whole. 11-26 re-sends F-100 as it was and changed,
and F-200 corrected. Suppliers come from tests/fixtures/landing/reference (SUP0001, 0004, 0009).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.generator import generate
from backoffice.generator.catalog import SUPPLIERS
from backoffice.generator.facturx_pdf import render_facturx
from backoffice.generator.supplier_invoices import Intent, InvoiceDoc
from backoffice.generator.ubl import render_ubl
from backoffice.ingest import (
    invoice_merge,
    load_bookings_day,
    load_payments_day,
    load_supplier_invoices_day,
    load_suppliers,
)
from backoffice.ingest.files import landing_file
from backoffice.ingest.invoice_contract import assemble
from backoffice.ingest.invoice_xml import SupplierDirectory
from backoffice.ingest.supplier_invoices import read_lines

FIXTURES = Path(__file__).parents[1] / "fixtures"
LANDING = FIXTURES / "ingest_landing"
DAY1, DAY2 = date(2026, 11, 25), date(2026, 11, 26)
MIXED = "supplier_invoices/2026-11-25/SUP_mixed.csv"

TABLES = {
    "raw.supplier_invoice_lines": "supplier_code, invoice_number, line_number, kind, invoice_date, due_date,"
    " currency, reference, description, amount_excl_tax, vat_rate, amount_incl_tax, invoice_sha256, file, line",
    "app.supplier_invoices": "supplier_code, invoice_number, kind, invoice_date, due_date, currency, sha256,"
    " source_file, origin, received_at",
    "app.supplier_invoice_lines": "*",
    "raw.landing_files": "source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected",
    "raw.rejections": "source, file, line, record_key, reason",
}


@pytest.fixture
def suppliers(db: Engine) -> Engine:
    load_suppliers(DAY1, FIXTURES / "landing", db)
    with db.begin() as conn:  # only invoice rejections matter below
        conn.execute(sa.text("TRUNCATE raw.rejections"))
    return db


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(sa.text(f"SELECT {cols} FROM {table} ORDER BY 1, 2, 3"))]
            for table, cols in TABLES.items()
        }


def rejections(engine: Engine) -> dict[tuple[str, int | None], tuple[str | None, str]]:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT file, line, record_key, reason FROM raw.rejections"))
        return {(r.file.rsplit("/", 1)[1], r.line): (r.record_key, r.reason) for r in found}


def lines(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        sql = "SELECT supplier_code, invoice_number, line_number, amount_incl_tax FROM app.supplier_invoice_lines"
        return sorted(tuple(r) for r in conn.execute(sa.text(sql)))


def test_complete_invoices_load_and_an_invoice_with_a_bad_line_is_rejected_whole(suppliers: Engine) -> None:
    result = load_supplier_invoices_day(DAY1, LANDING, suppliers)

    assert (result.files, result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (6, 3, 0, 11)
    assert [(s, n, ln) for s, n, ln, _ in lines(suppliers)] == [
        ("SUP0001", "F-100", 1),
        ("SUP0001", "F-100", 2),
        ("SUP0009", "AV-1", 1),
    ]
    with suppliers.connect() as conn:
        head = conn.execute(sa.text("SELECT * FROM app.supplier_invoices WHERE invoice_number = 'AV-1'")).one()
        raw = conn.execute(sa.text("SELECT * FROM raw.supplier_invoice_lines WHERE line_number = 1 ORDER BY 1")).all()
    assert (head.kind, head.invoice_date, head.due_date, head.currency, head.source_file) == (
        "credit_note", date(2026, 11, 24), date(2026, 12, 9), "EUR", MIXED
    )  # fmt: skip
    assert (raw[0].description, raw[0].reference, raw[0].line) == ("Vol Paris - Marrakech, adulte", "BK-2026-000001", 2)


@pytest.mark.parametrize(
    ("file", "line", "key", "expected"),
    [
        ("SUP_mixed.csv", 5, "SUP0004/F-200/2", "amount_incl_tax: 10.00 is not amount_excl_tax 10.00 x (1 + vat_rate"),
        ("SUP_mixed.csv", 4, "SUP0004/F-200/1", "invoice F-200 of supplier SUP0004 is rejected whole: line(s) 5"),
        ("SUP_mixed.csv", 6, "SUP9999/X-1/1", "supplier_code: 'SUP9999' is not a known supplier"),
        ("SUP_mixed.csv", 7, "SUP0001/F-101/1", "invoice_date: '2026-02-30' is not a date"),
        ("SUP_mixed.csv", 8, "SUP0001/F-102/1", "currency: 'XEU' is not an ISO 4217 currency code"),
        ("SUP_mixed.csv", 9, "SUP0001//1", "invoice_number: is required"),
        ("missing_column.csv", 1, None, "header: missing column(s) vat_rate"),
        ("binary.csv", None, None, "binary file"),
        ("latin1.csv", None, None, "not UTF-8 text"),
        ("broken.xml", None, None, "not well-formed XML"),
        ("scan.pdf", None, None, "PDF without embedded Factur-X XML"),
    ],
)
def test_each_breach_is_rejected_with_file_line_and_reason(
    suppliers: Engine, file: str, line: int | None, key: str | None, expected: str
) -> None:
    load_supplier_invoices_day(DAY1, LANDING, suppliers)

    found = rejections(suppliers)
    assert len(found) == 11
    assert found[(file, line)][0] == key
    assert expected in found[(file, line)][1]


def test_a_resent_invoice_changes_nothing_and_a_changed_one_is_a_conflict(suppliers: Engine) -> None:
    load_supplier_invoices_day(DAY1, LANDING, suppliers)
    before = lines(suppliers)

    result = load_supplier_invoices_day(DAY2, LANDING, suppliers)

    assert (result.rows_loaded, result.rows_unchanged, result.rows_rejected) == (2, 2, 2)
    after = lines(suppliers)
    assert [x for x in after if x[1] != "F-200"] == before  # F-100 not replaced
    assert [x[3] for x in after if x[1] == "F-200"] == [550, 11]  # the corrected invoice loads whole
    reason = "invoice F-100 of supplier SUP0001 was already received with different content (file {}): not replaced"
    found = rejections(suppliers)
    assert found[("SUP0001_changed.csv", 2)] == ("SUP0001/F-100/1", reason.format(MIXED))
    assert found[("SUP0001_changed.csv", 3)] == ("SUP0001/F-100/2", reason.format(MIXED))


def test_loading_twice_changes_nothing(suppliers: Engine, tmp_path: Path) -> None:
    for day in (DAY1, DAY2):
        load_supplier_invoices_day(day, LANDING, suppliers)
    before = dump(suppliers)

    again = [load_supplier_invoices_day(day, LANDING, suppliers) for day in (DAY1, DAY2)]

    assert dump(suppliers) == before
    assert [(r.files_skipped, r.rows_loaded, r.rows_rejected) for r in again] == [(6, 0, 0), (3, 0, 0)]
    # Under another name the same invoices are recognised by their key and content.
    landing = tmp_path / "landing"
    shutil.copytree(LANDING / "supplier_invoices/2026-11-26", landing / "supplier_invoices/2026-11-26")
    for path in (landing / "supplier_invoices/2026-11-26").iterdir():
        path.rename(path.with_name(f"again_{path.name}"))
    resent = load_supplier_invoices_day(DAY2, landing, suppliers)
    assert (resent.rows_loaded, resent.rows_unchanged, resent.rows_rejected) == (0, 4, 2)
    invoices = ("raw.supplier_invoice_lines", "app.supplier_invoices", "app.supplier_invoice_lines")
    after = dump(suppliers)
    assert {t: after[t] for t in invoices} == {t: before[t] for t in invoices}
    assert [r[2:4] for r in after["raw.rejections"] if "again_" in r[1]] == [
        (2, "SUP0001/F-100/1"),
        (3, "SUP0001/F-100/2"),
    ]


def test_a_crash_before_commit_leaves_the_day_untouched(suppliers: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    before = dump(suppliers)
    with monkeypatch.context() as patch:
        patch.setattr(invoice_merge, "MERGE", (*invoice_merge.MERGE, "SELECT 1 / 0"))
        with pytest.raises(psycopg.errors.DivisionByZero):
            load_supplier_invoices_day(DAY1, LANDING, suppliers)

    assert dump(suppliers) == before
    rerun = load_supplier_invoices_day(DAY1, LANDING, suppliers)
    assert (rerun.files_skipped, rerun.rows_loaded, rerun.rows_unchanged, rerun.rows_rejected) == (0, 3, 0, 11)


def _doc(kind: str) -> InvoiceDoc:
    supplier = SUPPLIERS[1]
    intents = (
        Intent(0, supplier.code, kind, "Vol New York x2", 81234, 81234, "0", "BK-2026-000042", "dossier_number", ""),
        Intent(0, supplier.code, kind, "Hotel & taxes", 10000, 12000, "0.20", "DUPONT/JEAN", "traveller_name", ""),
        Intent(0, supplier.code, kind, "Frais <dossier>", 4167, 4584, "0.10", "", "empty", ""),
    )
    return InvoiceDoc(supplier, "INV2026-000007", kind, "2026-11-20", "2026-12-05", intents)


@pytest.mark.parametrize("kind", ["invoice", "credit_note"])
def test_ubl_and_facturx_give_the_same_lines_as_the_csv(tmp_path: Path, kind: str) -> None:
    doc = _doc(kind)
    directory = SupplierDirectory.of((s.code, s.name, s.vat_number) for s in SUPPLIERS)
    header = "supplier_code,invoice_number,kind,invoice_date,due_date,currency,line_number,reference,description,"
    header += "amount_excl_tax,vat_rate,amount_incl_tax"
    files = {
        "invoice.csv": "\n".join([header, *(",".join(f'"{v}"' for v in row) for row in doc.csv_rows())]).encode(),
        "invoice.xml": render_ubl(doc),
        "invoice.pdf": render_facturx(doc),
    }
    normalised = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        f = landing_file(tmp_path / name, tmp_path, data)
        source_lines, unreadable = read_lines(f, data, directory)
        invoices, rejected = assemble(name, source_lines, directory.codes)
        assert unreadable == rejected == []
        normalised[name] = [replace(r, file="", line=0) for invoice in invoices for r in invoice.lines]
        normalised[name + " sha256"] = [invoice.sha256 for invoice in invoices]
    assert normalised["invoice.xml"] == normalised["invoice.csv"] == normalised["invoice.pdf"]
    assert normalised["invoice.xml sha256"] == normalised["invoice.csv sha256"] == normalised["invoice.pdf sha256"]
    assert [(r.kind, r.reference, str(r.amount_incl_tax)) for r in normalised["invoice.xml"]] == [
        (kind, "BK-2026-000042", "812.34"),
        (kind, "DUPONT/JEAN", "120.00"),
        (kind, None, "45.84"),
    ]


def test_an_xml_invoice_from_an_unknown_seller_is_rejected(tmp_path: Path) -> None:
    data = render_ubl(_doc("invoice"))
    directory = SupplierDirectory.of([("SUP0001", "Air Horizon", "FR40303265045")])
    (tmp_path / "x.xml").write_bytes(data)

    _, unreadable = read_lines(landing_file(tmp_path / "x.xml", tmp_path, data), data, directory)

    assert [(line, key) for _, line, key, _ in unreadable] == [(None, "INV2026-000007")]
    assert unreadable[0][3].startswith("seller: no supplier of the reference")


def test_a_generated_dataset_rejects_exactly_its_malformed_records(db: Engine, tmp_path: Path) -> None:
    start, days = date(2026, 11, 20), 5
    generate(tmp_path, start, days, 30, seed=11)
    load_suppliers(start, tmp_path, db)
    for n in range(days):
        day = start + timedelta(days=n)
        for load in (load_bookings_day, load_payments_day, load_supplier_invoices_day):
            load(day, tmp_path, db)

    with (tmp_path / "ground_truth" / "malformed.csv").open(newline="") as fh:
        expected = sorted((r["source"], r["file"], int(r["line"]), r["record_key"]) for r in csv.DictReader(fh))
    with db.connect() as conn:
        found = conn.execute(sa.text("SELECT source, file, line, coalesce(record_key, '') FROM raw.rejections"))
        found = sorted(tuple(r) for r in found)
        assert [r[:3] for r in found] == [r[:3] for r in expected]
        # bookings cannot read the key of a line that is not JSON; ours name every record
        assert [r for r in found if r[0] != "bookings"] == [r for r in expected if r[0] != "bookings"]
        invoiced = conn.execute(sa.text("SELECT count(*) FROM app.supplier_invoice_lines")).scalar_one()
        formats = conn.execute(
            sa.text("SELECT DISTINCT substring(source_file from '\\.(\\w+)$') FROM app.supplier_invoices")
        )
        assert invoiced > 0 and sorted(r[0] for r in formats) == ["csv", "pdf", "xml"]
