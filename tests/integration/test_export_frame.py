"""The export's columnar path (backoffice.export.frame: one COPY into Arrow, files built by columns)
writes exactly the bytes of the row-by-row writers it replaced (fec.lines, companions.write_csv,
companions.write_parquet) on the same lines, read from a real PostgreSQL, including awkward text."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import factories as f
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.export import companions, fec
from backoffice.export import frame as export_frame
from backoffice.services import exports

ALL = datetime(2100, 1, 1, tzinfo=UTC)
AWKWARD = [
    "Hôtel Łódź",
    "tab\there | pipe",
    "new\nline and\r\nCRLF",
    'quote " and, comma',
    "  spaced   out\u00a0nbsp\u2003em  ",
    "emoji 🚀 and ß€œŸ",
    "",
    "ＦＵＬＬ width",
]


@pytest.fixture
def awkward(db: Engine, database_url: str) -> Engine:
    with db.connect() as conn:  # dbt builds the (empty) mart once a session; `db` empties, never drops it
        built = conn.execute(sa.text("SELECT to_regclass('marts.accounting_entries')")).scalar() is not None
    if not built:
        f.build_accounting_entries_mart(database_url)
    at = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    for n, label in enumerate(AWKWARD, start=1):
        f.journal_entry(
            db,
            "AC",
            n,
            at.replace(minute=n, microsecond=n * 137 if n % 2 else 0),
            f"{n * 1234}.{n:02d}",
            label=label,
            account_label=f"Compte {label}",
            aux_account=("", None, "F|01", "F\t02")[n % 4],
            dossier_number=("BK-1", None, "", 'BK,"2"')[n % 4],
            currency=("EUR", "USD", "GBP")[n % 3],
            source_id=f"AC/{n}, {label}",
        )
    f.journal_entry(db, "VE", 1, datetime(2026, 3, 14, 23, 59, 59, 999999, tzinfo=UTC), "-80.10", label="Avoir")
    f.journal_entry(db, "BQ", 1, datetime(2026, 3, 13, 23, 30, tzinfo=UTC), "0.00", entry_date=date(2025, 12, 31))
    f.journal_entry(db, "OD", 7, datetime(2026, 3, 14, 12, 0, tzinfo=UTC), "99999999999.99", debit_account="658000")
    return db


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "fmt", [fec.FecFormat(), fec.FecFormat("pipe", "utf-8"), fec.FecFormat("tab", "utf-8")], ids=str
)
def test_the_columnar_files_are_the_row_by_row_bytes(awkward: Engine, tmp_path: Path, fmt: fec.FecFormat) -> None:
    with awkward.connect() as conn:
        rows = exports._rows(conn.execute(exports._NEW, {"until": ALL}))
        table = export_frame.read(conn, exports._NEW_COPY, {"until": ALL})
    assert table.num_rows == len(rows) == 2 * (len(AWKWARD) + 3)

    reference = b"".join(fec.lines(rows, fmt))
    folded = "Lódz" if fmt.encoding == "iso-8859-15" else "Łódź"
    assert f"Hôtel {folded}".encode(fmt.encoding) in reference  # the data really is awkward
    assert _sha(export_frame.fec_bytes(table, fmt)) == _sha(reference)

    companions.write_csv(rows, tmp_path / "rows.csv")
    companions.write_parquet(rows, tmp_path / "rows.parquet")
    (tmp_path / "frame.csv").write_bytes(export_frame.csv_bytes(table))
    export_frame.write_parquet(table, tmp_path / "frame.parquet")
    assert (tmp_path / "frame.csv").read_bytes() == (tmp_path / "rows.csv").read_bytes()
    assert companions.sha256(tmp_path / "frame.parquet") == companions.sha256(tmp_path / "rows.parquet")

    assert export_frame.totals(table) == exports._totals(rows)
    keys = sorted({(r["journal_code"], r["fiscal_year"], r["entry_number"]) for r in rows})
    assert export_frame.keys(table) == ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])


def test_no_lines_give_the_header_alone(awkward: Engine) -> None:
    with awkward.connect() as conn:
        table = export_frame.read(conn, exports._NEW_COPY, {"until": datetime(2000, 1, 1, tzinfo=UTC)})
        count = conn.execute(sa.text("SELECT count(*) FROM marts.accounting_entries")).scalar_one()
    assert count > 0 and table.num_rows == 0
    assert export_frame.fec_bytes(table, fec.FecFormat()) == b"".join(fec.lines([], fec.FecFormat()))
    assert export_frame.csv_bytes(table).count(b"\r\n") == 1
    assert export_frame.totals(table) == {}


def test_the_year_fec_streamed_in_batches_is_the_row_by_row_file(
    awkward: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_frame, "BATCH_BYTES", 2048)  # a few lines a batch: many batches
    with awkward.begin() as conn:  # the one fault of the awkward data: a label is mandatory
        conn.execute(sa.text("UPDATE marts.accounting_entries SET label = 'x' WHERE label = ''"))
    with awkward.connect() as conn:
        params = {"first": date(2026, 1, 1), "after": date(2027, 1, 1)}
        rows = [dict(r) for r in conn.execute(exports._YEAR, params).mappings()]
        assert len(list(export_frame.batches(conn, exports._YEAR_COPY, params))) > 1
        made = exports.fiscal_year_fec(conn, 2026, fec.FecFormat(), tmp_path / "year.txt")
    assert (tmp_path / "year.txt").read_bytes() == b"".join(fec.lines(rows, fec.FecFormat()))
    assert made.lines == len(rows) == 2 * (len(AWKWARD) + 2)
    assert made.debit == sum(r["debit"] for r in rows) and made.credit == sum(r["credit"] for r in rows)
