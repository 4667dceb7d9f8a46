"""The daily accounting export: a day's journal entries as a checked FEC, CSV, Parquet and manifest.

What day D carries: every entry of marts.accounting_entries validated before the end of D (Paris
calendar day, as dbt's var accounting_timezone) and never exported. Normally that is the entries
validated on D; an entry posted late (a correction, a record that arrived after its day's export)
goes into the next export instead of being lost, as the FEC wants an offsetting entry to.

The files are written to a temporary folder and the FEC is checked (backoffice.export.fec_check)
before anything else happens: a file with a fault is not delivered, nothing is recorded, and the
refusal lists every fault. Otherwise, in one transaction: the export row (files, SHA-256, counts,
totals, manifest), one app.exported_entries row per entry (its primary key refuses an entry
exported twice) and marts.accounting_entries.exported_in; the files are delivered, then the
transaction commits. A re-run of D regenerates the files from the entries recorded for D, in the
format recorded for D, and checks they are byte-identical to what was recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from backoffice.config import get_settings
from backoffice.domain.clock import ACCOUNTING_TIMEZONE
from backoffice.domain.errors import DomainError, InvalidInput
from backoffice.domain.permissions import SYSTEM, Actor
from backoffice.export import companions, fec, fec_check
from backoffice.export import frame as export_frame
from backoffice.export.delivery import Delivery, DeliveryFailed
from backoffice.services import audit
from backoffice.services.unit_of_work import UnitOfWork

ACTION = "accounting_export"
PERMISSION = "export"
# The calendar an accounting day follows; dbt's var accounting_timezone says the same.
# Exports serialise on this advisory lock: two runs must not pick the same entries.
_LOCK = 0x46454321
# The scheduler and the `backoffice export` command act as the system, allowed to export.
SYSTEM_EXPORTER = Actor(SYSTEM, SYSTEM, frozenset({PERMISSION}))


class ExportFaulty(DomainError):
    """The FEC failed its checks: nothing was delivered or recorded."""

    def __init__(self, what: str, faults: list[fec_check.Fault]) -> None:
        self.faults = faults
        shown = "; ".join(str(f) for f in faults[:20])
        more = f" (and {len(faults) - 20} more)" if len(faults) > 20 else ""
        super().__init__(f"the FEC of {what} has {len(faults)} fault(s), not delivered: {shown}{more}")


class ExportDiffers(DomainError):
    """A re-run did not reproduce the recorded files: the entries changed under the export."""


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    day: date
    rerun: bool
    location: str
    files: dict[str, dict[str, Any]]  # name -> {"sha256", "bytes"}
    entries: int
    lines: int
    totals: dict[str, dict[str, Any]]  # journal -> entries, lines, debit, credit

    def summary_lines(self) -> list[str]:
        what = "re-written" if self.rerun else "written"
        out = [f"export {self.export_id} {what} to {self.location}: {self.entries} entries, {self.lines} lines"]
        out += [f"  {name} {meta['bytes']} bytes sha256 {meta['sha256']}" for name, meta in self.files.items()]
        out += [
            f"  {journal}: {t['entries']} entries, debit {t['debit']}, credit {t['credit']}"
            for journal, t in self.totals.items()
        ]
        return out


def _refuse(uow: UnitOfWork, actor: Actor, error: DomainError) -> NoReturn:
    audit.record_apart(uow.engine, actor.login, ACTION, outcome="refused", detail=str(error))
    raise error


def export_id(day: date) -> str:
    return f"EXP-{day:%Y%m%d}"


def day_end(day: date) -> datetime:
    """The first instant after `day` in the accounting calendar."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ACCOUNTING_TIMEZONE)


# The file's order: by validation, then journal and number. An entry posted late keeps the number
# it was given, so it sorts at the latest validation time of its journal's earlier numbers: the
# numbers of each journal then always rise through the file, as the FEC's continuity needs.
_ORDERED = """
WITH lines AS (
    SELECT e.*, extract(year FROM e.entry_date)::integer AS fiscal_year
    FROM marts.accounting_entries AS e
    WHERE {where}
),
entries AS (
    SELECT journal_code, fiscal_year, entry_number, min(validated_at) AS validated_at
    FROM lines GROUP BY journal_code, fiscal_year, entry_number
),
ordered AS (
    SELECT journal_code, fiscal_year, entry_number,
           max(validated_at) OVER (PARTITION BY journal_code, fiscal_year ORDER BY entry_number) AS sort_at
    FROM entries
)
SELECT {select} FROM lines AS l JOIN ordered AS o USING (journal_code, fiscal_year, entry_number)
ORDER BY o.sort_at, l.journal_code, l.fiscal_year, l.entry_number,
         l.debit DESC, l.credit DESC, l.account, l.aux_account NULLS FIRST, l.label, l.source_type, l.source_id
"""
_NEW_WHERE = """e.validated_at < :until AND NOT EXISTS (
            SELECT 1 FROM app.exported_entries AS x
            WHERE x.journal_code = e.journal_code AND x.fiscal_year = extract(year FROM e.entry_date)
              AND x.entry_number = e.entry_number)"""
_RECORDED_WHERE = """EXISTS (
            SELECT 1 FROM app.exported_entries AS x
            WHERE x.export_id = :export_id AND x.journal_code = e.journal_code
              AND x.fiscal_year = extract(year FROM e.entry_date) AND x.entry_number = e.entry_number)"""
_NEW = sa.text(_ORDERED.format(select="l.*", where=_NEW_WHERE))
_RECORDED = sa.text(_ORDERED.format(select="l.*", where=_RECORDED_WHERE))
_YEAR = sa.text(_ORDERED.format(select="l.*", where="e.entry_date >= :first AND e.entry_date < :after"))


def _copied(where: str) -> str:
    """The ordered lines as export_frame.read takes them: its columns, psycopg's placeholders."""
    return _ORDERED.format(select=export_frame.SELECT, where=re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", where))


# A day is read by one COPY into an Arrow table (backoffice.export.frame), a year by one COPY in batches.
_NEW_COPY = _copied(_NEW_WHERE)
_RECORDED_COPY = _copied(_RECORDED_WHERE)
_YEAR_COPY = _copied("e.entry_date >= :first AND e.entry_date < :after")


def _rows(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    """Every row as a dict: fetched at once and zipped, much faster than a RowMapping per row."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]


def _totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"entries": 0, "lines": 0, "debit": Decimal("0.00"), "credit": Decimal("0.00")}
    )
    seen: set[tuple[str, int, int]] = set()
    for row in rows:
        journal = totals[row["journal_code"]]
        journal["lines"] += 1
        journal["debit"] += row["debit"]
        journal["credit"] += row["credit"]
        key = (row["journal_code"], row["fiscal_year"], row["entry_number"])
        if key not in seen:
            seen.add(key)
            journal["entries"] += 1
    return {j: {**t, "debit": str(t["debit"]), "credit": str(t["credit"])} for j, t in sorted(totals.items())}


def _write(folder: Path, siren: str, day: date, fmt: fec.FecFormat, table: pa.Table) -> dict[str, Path]:
    """The three data files in `folder`, built by columns from the day's lines (export_frame), the
    FEC checked first; raises the faults as a list."""
    fec_path = folder / fec.file_name(siren, day)
    csv_path = fec_path.with_suffix(".csv")
    parquet_path = fec_path.with_suffix(".parquet")
    data = export_frame.fec_bytes(table, fmt)
    fec_path.write_bytes(data)
    faults = fec_check.check_bytes(data, fmt) if len(data) <= fec_check.FAST_MAX_BYTES else None
    if faults is None:  # larger than a day: the streaming check
        faults = fec_check.check_file(fec_path, fmt)
    if faults:
        raise ExportFaulty(str(day), faults)
    del data
    csv_path.write_bytes(export_frame.csv_bytes(table))
    export_frame.write_parquet(table, parquet_path)
    return {p.name: p for p in (fec_path, csv_path, parquet_path)}


def _format(separator: str, encoding: str) -> fec.FecFormat:
    try:
        return fec.FecFormat(separator=separator, encoding=encoding)
    except ValueError as error:
        field, _, problem = str(error).partition(": ")
        raise InvalidInput(field, problem) from None


def export_day(uow: UnitOfWork, actor: Actor, day: date, delivery: Delivery) -> ExportResult:
    """Write, check, record and deliver the export of `day`; a re-run re-delivers the same bytes.

    Format (BACKOFFICE_FEC_SEPARATOR / _ENCODING) and SIREN come from the settings on the first
    run and from the export's row afterwards. Refused (and audited): without the `export`
    permission, a bad day, an FEC with faults (ExportFaulty, every fault listed), a re-run whose
    files differ from the recorded ones (ExportDiffers).
    """
    audit.require(uow.engine, actor, PERMISSION, ACTION)
    if not isinstance(day, date) or isinstance(day, datetime):
        _refuse(uow, actor, InvalidInput("day", f"{day!r} is not a date"))
    settings = get_settings()
    conn = uow.conn
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    recorded = (
        conn.execute(sa.text("SELECT * FROM app.accounting_exports WHERE export_date = :d"), {"d": day})
        .mappings()
        .first()
    )
    ident = export_id(day)
    try:
        if recorded is not None:
            fmt = _format(recorded["separator"], recorded["encoding"])
            siren = recorded["manifest"]["siren"]
            rows = export_frame.read(conn, _RECORDED_COPY, {"export_id": ident})
        else:
            fmt = _format(settings.fec_separator, settings.fec_encoding)
            siren = settings.siren
            fec.file_name(siren, day)  # a bad SIREN is refused before any work
            rows = export_frame.read(conn, _NEW_COPY, {"until": day_end(day)})
    except ValueError as error:
        _refuse(uow, actor, InvalidInput("siren", str(error).partition(": ")[2]))
    except InvalidInput as error:
        _refuse(uow, actor, error)
    totals = export_frame.totals(rows)
    entries = sum(t["entries"] for t in totals.values())
    _remove_orphaned_work()
    with tempfile.TemporaryDirectory(prefix=f"{_WORK_PREFIX}{os.getpid()}-") as tmp:
        folder = Path(tmp)
        try:
            files = _write(folder, siren, day, fmt, rows)
        except ExportFaulty as error:
            _refuse(uow, actor, error)
        described = {name: {"sha256": companions.sha256(p), "bytes": p.stat().st_size} for name, p in files.items()}
        manifest = {
            "export_id": ident,
            "date": day.isoformat(),
            "siren": siren,
            "separator": fmt.separator,
            "encoding": fmt.encoding,
            "entries": entries,
            "lines": rows.num_rows,
            "totals": totals,
            "files": described,
        }
        manifest_path = folder / "manifest.json"
        companions.write_manifest(manifest, manifest_path)
        manifest_sha = companions.sha256(manifest_path)
        if recorded is not None:
            if recorded["manifest_sha256"] != manifest_sha:
                _refuse(
                    uow,
                    actor,
                    ExportDiffers(
                        f"export {ident}: the re-generated files differ from those recorded on "
                        f"{recorded['created_at']:%Y-%m-%d}; the entries it carried were changed"
                    ),
                )
        else:
            _record(conn, actor, ident, day, fmt, files, described, manifest, manifest_sha, rows)
        try:
            location = delivery.deliver(day.isoformat(), {**files, "manifest.json": manifest_path})
        except DeliveryFailed as error:
            _refuse(uow, actor, error)  # rolls back: nothing is recorded as exported
    result = ExportResult(ident, day, recorded is not None, location, described, entries, rows.num_rows, totals)
    audit.record(
        conn,
        actor.login,
        ACTION,
        after={
            "export_id": ident,
            "date": day,
            "rerun": result.rerun,
            "location": location,
            "entries": entries,
            "lines": rows.num_rows,
            "totals": totals,
            "files": described,
        },
    )
    uow.commit()
    return result


_WORK_PREFIX = "backoffice-export-"


def _remove_orphaned_work() -> None:
    """Remove the folders of runs killed with -9 (they cannot remove their own): a run writes its
    files under a folder named with its process id, and a folder whose process is gone is an orphan."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_WORK_PREFIX}*-*"):
        pid = folder.name.removeprefix(_WORK_PREFIX).partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # another user's process, alive


def _record(
    conn: Connection,
    actor: Actor,
    ident: str,
    day: date,
    fmt: fec.FecFormat,
    files: dict[str, Path],
    described: dict[str, dict[str, Any]],
    manifest: dict[str, Any],
    manifest_sha: str,
    rows: pa.Table,
) -> None:
    fec_name, csv_name, parquet_name = files
    conn.execute(
        sa.text(
            """INSERT INTO app.accounting_exports (
                   id, export_date, created_by, separator, encoding,
                   fec_name, fec_sha256, fec_bytes, csv_name, csv_sha256, csv_bytes,
                   parquet_name, parquet_sha256, parquet_bytes, manifest_sha256,
                   entry_count, line_count, totals, manifest)
               VALUES (:id, :day, :by, :sep, :enc, :fn, :fs, :fb, :cn, :cs, :cb, :pn, :ps, :pb, :ms,
                   :entries, :lines, CAST(:totals AS jsonb), CAST(:manifest AS jsonb))"""
        ),
        {
            "id": ident,
            "day": day,
            "by": actor.login,
            "sep": fmt.separator,
            "enc": fmt.encoding,
            **{f"{k}n": name for k, name in zip("fcp", (fec_name, csv_name, parquet_name), strict=True)},
            **{f"{k}s": described[n]["sha256"] for k, n in zip("fcp", (fec_name, csv_name, parquet_name), strict=True)},
            **{f"{k}b": described[n]["bytes"] for k, n in zip("fcp", (fec_name, csv_name, parquet_name), strict=True)},
            "ms": manifest_sha,
            "entries": manifest["entries"],
            "lines": manifest["lines"],
            "totals": json.dumps(manifest["totals"], sort_keys=True),
            "manifest": json.dumps(manifest, sort_keys=True),
        },
    )
    journals, years, numbers = export_frame.keys(rows)
    conn.execute(
        sa.text(
            """INSERT INTO app.exported_entries (export_id, journal_code, fiscal_year, entry_number)
               SELECT :id, j, y, n FROM unnest(CAST(:j AS text[]), CAST(:y AS integer[]), CAST(:n AS integer[]))
                   AS k (j, y, n)"""
        ),
        {"id": ident, "j": journals, "y": years, "n": numbers},
    )
    conn.execute(
        sa.text(
            """UPDATE marts.accounting_entries AS e SET exported_in = x.export_id
               FROM app.exported_entries AS x
               WHERE x.export_id = :id AND x.journal_code = e.journal_code
                 AND x.fiscal_year = extract(year FROM e.entry_date) AND x.entry_number = e.entry_number"""
        ),
        {"id": ident},
    )


@dataclass(frozen=True)
class YearFec:
    path: Path
    lines: int
    debit: Decimal
    credit: Decimal


def fiscal_year_fec(conn: Connection, year: int, fmt: fec.FecFormat, out: Path) -> YearFec:
    """The FEC of every entry of fiscal `year` (entry date in that calendar year), written to `out`.

    Streamed from one COPY, parsed and written in batches, so memory stays bounded whatever the
    year's size; the file is checked before it is renamed to `out`, and a file with a fault is
    removed and raised as ExportFaulty. The caller checks the `export` permission.
    """
    partial = out.with_name(f".{out.name}.partial")
    lines = debit = credit = 0
    params = {"first": date(year, 1, 1), "after": date(year + 1, 1, 1)}
    try:
        with partial.open("wb") as handle:
            handle.write((fmt.char.join(fec.COLUMNS) + "\r\n").encode(fmt.encoding))
            # One COPY, parsed and written batch by batch (export_frame.batches): bounded memory.
            for batch in export_frame.batches(conn, _YEAR_COPY, params):
                handle.write(export_frame.fec_bytes(batch, fmt, with_header=False))
                lines += batch.num_rows
                debit += export_frame.cents(batch, "debit")
                credit += export_frame.cents(batch, "credit")
        faults = fec_check.check_file(partial, fmt)
        if faults:
            raise ExportFaulty(f"fiscal year {year}", faults)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return YearFec(out, lines, _money(debit, lines), _money(credit, lines))


def _money(cents: int, lines: int) -> Decimal:
    """Cents as the Decimal a running sum of the lines' amounts gives (Decimal(0) for no line at all)."""
    return Decimal(cents).scaleb(-2) if lines else Decimal(0)


VIEW_PERMISSION = "view_accounting"
DOWNLOAD_ACTION = "accounting_export_download"
YEAR_ACTION = "fiscal_year_fec"


@dataclass(frozen=True)
class ExportRecord:
    """One exported day as app.accounting_exports holds it."""

    export_id: str
    day: date
    created_at: datetime
    created_by: str
    separator: str
    encoding: str
    entries: int
    lines: int
    totals: dict[str, dict[str, Any]]  # journal -> entries, lines, debit, credit (decimal strings)
    files: dict[str, dict[str, Any]]  # name -> {"sha256", "bytes"}, the manifest's data files


def list_exports(uow: UnitOfWork, actor: Actor, limit: int = 400) -> list[ExportRecord]:
    """The exported days, latest first (`view_accounting`)."""
    audit.require(uow.engine, actor, VIEW_PERMISSION, "list_accounting_exports")
    rows = uow.conn.execute(
        sa.text(
            """SELECT id, export_date, created_at, created_by, separator, encoding, entry_count, line_count,
                      totals, manifest -> 'files' AS files
               FROM app.accounting_exports ORDER BY export_date DESC LIMIT :limit"""
        ),
        {"limit": limit},
    )
    return [ExportRecord(*row) for row in rows]


def recorded_files(uow: UnitOfWork, actor: Actor, day: date, folder: Path) -> dict[str, Path]:
    """Write the recorded export of `day` into `folder` (FEC, CSV, Parquet, manifest), for download.

    The files are regenerated from the entries recorded for the day, in its recorded format, and
    each must have the SHA-256 recorded for it (else ExportDiffers): what is downloaded is exactly
    what was delivered, wherever the delivery went. Needs `view_accounting`; audited.
    """
    audit.require(uow.engine, actor, VIEW_PERMISSION, DOWNLOAD_ACTION)
    recorded = (
        uow.conn.execute(sa.text("SELECT * FROM app.accounting_exports WHERE export_date = :d"), {"d": day})
        .mappings()
        .first()
    )
    if recorded is None:
        _refuse(uow, actor, InvalidInput("day", f"no export was recorded for {day}"))
    manifest = recorded["manifest"]
    fmt = _format(recorded["separator"], recorded["encoding"])
    rows = export_frame.read(uow.conn, _RECORDED_COPY, {"export_id": recorded["id"]})
    try:
        files = _write(folder, manifest["siren"], day, fmt, rows)
    except ExportFaulty as error:
        _refuse(uow, actor, error)
    manifest_path = folder / "manifest.json"
    companions.write_manifest(manifest, manifest_path)
    expected = {name: meta["sha256"] for name, meta in manifest["files"].items()}
    expected["manifest.json"] = recorded["manifest_sha256"]
    files["manifest.json"] = manifest_path
    changed = sorted(name for name, path in files.items() if companions.sha256(path) != expected.get(name))
    if changed:
        error = ExportDiffers(f"export {recorded['id']}: {', '.join(changed)} no longer match the recorded files")
        _refuse(uow, actor, error)
    audit.record(uow.conn, actor.login, DOWNLOAD_ACTION, after={"export_id": recorded["id"], "files": sorted(files)})
    uow.commit()
    return files


def year_fec(uow: UnitOfWork, actor: Actor, year: int, folder: Path) -> YearFec:
    """The FEC of fiscal `year` on demand (`export`): `<SIREN>FEC<year>1231.txt` in `folder`, streamed
    and checked by fiscal_year_fec, in the format of the settings; audited with its line count and totals."""
    audit.require(uow.engine, actor, PERMISSION, YEAR_ACTION)
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
        _refuse(uow, actor, InvalidInput("year", f"{year!r} is not a year between 2000 and 2100"))
    settings = get_settings()
    try:
        fmt = _format(settings.fec_separator, settings.fec_encoding)
        name = fec.file_name(settings.siren, date(year, 12, 31))
    except ValueError as error:
        _refuse(uow, actor, InvalidInput("siren", str(error).partition(": ")[2]))
    except InvalidInput as error:
        _refuse(uow, actor, error)
    try:
        result = fiscal_year_fec(uow.conn, year, fmt, folder / name)
    except ExportFaulty as error:
        _refuse(uow, actor, error)
    audit.record(
        uow.conn,
        actor.login,
        YEAR_ACTION,
        after={"year": year, "file": name, "lines": result.lines, "debit": result.debit, "credit": result.credit},
    )
    uow.commit()
    return result
