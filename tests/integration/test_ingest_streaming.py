"""Booking files are streamed: scanned in fixed-size reads, then read and staged batch by batch.

What streaming must not change: the checksum and the verdict on a file (against reading it whole),
the line numbers and the rows loaded (against one big batch). What it must give: memory that does
not grow with the file.
"""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.ingest import bookings, files, load_bookings_day
from backoffice.ingest.files import numbered_lines, read_landing_file, scan_landing_file

LANDING = Path(__file__).parents[1] / "fixtures" / "landing"
DAYS = [date(2026, 11, d) for d in (25, 26, 27, 28)]
TABLES = {
    "raw.booking_snapshots": "dossier_number, version, updated_at, payload, file, line",
    "raw.landing_files": "source, path, sha256, partition_date, bytes, rows_loaded, rows_rejected",
    "raw.rejections": "source, file, line, record_key, reason",
    "app.dossiers": "*",
    "app.travellers": "*",
    "app.services": "*",
    "app.price_lines": "*",
    "app.payment_schedule": "*",
}

# Byte strings whose verdict depends on where a read stops: a 7-byte read splits "é" (2 bytes),
# "€" (3) and "😀" (4) at every possible place across the cases.
TRICKY = {
    "clean.jsonl": b'{"a": "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}\n' * 5,
    "bom.jsonl": b"\xef\xbb\xbf" + b'{"a": "\xc3\xa9"}\r\n' * 4,
    "bom_then_bad.jsonl": b"\xef\xbb\xbf" + b'{"a": "x"}\n' * 3 + b'{"a": "\xe9"}\n',
    "bad_late.jsonl": b'{"a": "\xe2\x82\xac"}\n' * 6 + b"\xff\n",
    "cut_at_end.jsonl": b'{"a": "ok"}\n' * 3 + b'{"a": "\xf0\x9f\x98',
    "bad_continuation.jsonl": b'{"a": "\xe2\x82"}\n',
    "nul_after_bad_utf8.jsonl": b"\xff" + b"x" * 20 + b"\x00\n",
}


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_a_scan_gives_the_checksum_and_verdict_of_reading_the_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(files, "SCAN_CHUNK", chunk)
    for name, data in TRICKY.items():
        (tmp_path / name).write_bytes(data)
    paths = sorted(tmp_path.glob("*.jsonl")) + sorted((LANDING / "bookings").glob("*/*.jsonl"))
    verdicts = {}
    for path in paths:
        root = tmp_path if path.parent == tmp_path else LANDING
        whole, scanned = read_landing_file(path, root), scan_landing_file(path, root)
        assert (scanned.name, scanned.sha256, scanned.size) == (whole.name, whole.sha256, whole.size)
        assert scanned.unreadable == whole.unreadable, path.name
        verdicts[path.name] = scanned.unreadable
    assert verdicts["clean.jsonl"] is None and verdicts["bom.jsonl"] is None
    assert "byte 0xe9 at offset 40" in verdicts["bom_then_bad.jsonl"]
    assert "byte 0xf0 at offset 43" in verdicts["cut_at_end.jsonl"]
    assert verdicts["nul_after_bad_utf8.jsonl"].startswith("binary file (NUL byte at offset 21)")


def test_lines_read_one_by_one_are_the_lines_of_the_whole_text(tmp_path: Path) -> None:
    (tmp_path / "ragged.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n  \r\n{"b": "\xc3\xa9"}\r\r\n{"c": 3}')
    for path in [tmp_path / "ragged.jsonl", *sorted((LANDING / "bookings").glob("*/*.jsonl"))]:
        whole = read_landing_file(path, path.parent)
        if whole.text is None:
            continue
        streamed = list(numbered_lines(path))
        assert [(n, line) for n, line, _ in streamed] == whole.lines()
        assert [end for *_, end in streamed] == [False] * (len(streamed) - 1) + [not whole.text.endswith("\n")]


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(sa.text(f"SELECT {c} FROM {t} ORDER BY 1, 2, 3"))]
            for t, c in TABLES.items()
        }


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


@pytest.mark.parametrize("worker", [False, True], ids=["in-process", "worker-process"])
def test_batches_of_two_lines_load_what_one_batch_loads(
    db: Engine, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    """The fixture days hold new dossiers, new versions, a stale version, re-sent records and
    breaches; with two lines a batch they fall in different batches of one transaction. The same
    when a worker process parses them (forced here: small days are parsed in-process)."""
    results = [vars(load_bookings_day(day, LANDING, db)) for day in DAYS]
    one_batch = _dump(db)
    _empty(db)
    monkeypatch.setattr(bookings, "BATCH_LINES", 2)
    if worker:
        monkeypatch.setattr(bookings, "WORKER_BYTES", 0)

    small = [vars(load_bookings_day(day, LANDING, db)) for day in DAYS]

    assert _dump(db) == one_batch
    assert [{**r, "duration_s": 0} for r in small] == [{**r, "duration_s": 0} for r in results]
    assert len(one_batch["raw.rejections"]) == 10 and len(one_batch["app.dossiers"]) == 6


def _day_of(lines: int, root: Path) -> Path:
    """A day folder of `lines` new dossiers made from a fixture snapshot (~1.9 KB a line)."""
    template = orjson.loads((LANDING / "bookings/2026-11-25/platform.jsonl").read_text().splitlines()[0])
    folder = root / "bookings" / "2026-03-02"
    folder.mkdir(parents=True)
    with (folder / "day.jsonl").open("wb") as f:
        for i in range(lines):
            f.write(orjson.dumps({**template, "dossier_number": f"BK-2026-{i:06d}"}) + b"\n")
    return root


def _peak_of_load(root: Path, engine: Engine) -> int:
    tracemalloc.start()
    try:
        assert load_bookings_day(date(2026, 3, 2), root, engine).rows_rejected == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_day(db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five times the lines, 50 a batch: the load's peak Python allocation stays where it was.
    Reading the file whole would add two to three times the file (bytes, text, lines): ~6 MB here."""
    monkeypatch.setattr(bookings, "BATCH_LINES", 50)
    monkeypatch.setattr(files, "SCAN_CHUNK", 1 << 16)  # its reads are a constant too, smaller than both files
    small = _peak_of_load(_day_of(250, tmp_path / "small"), db)
    _empty(db)

    large = _peak_of_load(_day_of(1250, tmp_path / "large"), db)

    assert large < small * 1.3, f"peak {large:,} bytes for 1,250 lines, {small:,} for 250"


def test_values_with_tabs_newlines_and_backslashes_load_exactly(db: Engine, tmp_path: Path) -> None:
    """JSON escapes can put COPY's own delimiters into a value, and JSON allows tabs between tokens."""
    template = orjson.loads((LANDING / "bookings/2026-11-25/platform.jsonl").read_text().splitlines()[0])
    awkward = 'Mar\ttin \\ "O\nBrien"\r'
    escaped = orjson.dumps({**template, "client": {**template["client"], "last_name": awkward}}).decode()
    padded = "{\t" + orjson.dumps({**template, "dossier_number": "BK-2026-000077"}).decode()[1:-1] + "\t}"
    folder = tmp_path / "bookings" / "2026-03-02"
    folder.mkdir(parents=True)
    (folder / "awkward.jsonl").write_text(f"{escaped}\n{padded}\n", encoding="utf-8")

    assert load_bookings_day(date(2026, 3, 2), tmp_path, db).rows_loaded == 2

    with db.connect() as conn:
        names = conn.execute(sa.text("SELECT client_last_name FROM app.dossiers ORDER BY 1")).scalars().all()
        payloads = conn.execute(sa.text("SELECT payload FROM raw.booking_snapshots ORDER BY 1")).scalars().all()
    assert sorted(names) == sorted([awkward, template["client"]["last_name"]])
    assert payloads == [orjson.loads(escaped), orjson.loads(padded)]
