"""`kill -9` of `backoffice export --date D` while it writes real entries, then a re-run: the files are
those of a clean export, every entry is exported once, the export is recorded once.

Two identical databases (the second a copy of the first, `CREATE DATABASE ... TEMPLATE`) hold a few
thousand entry lines in marts.accounting_entries, spread from the day before D to the day after (the
export carries those validated before the end of D, the late ones of D-1 included, and none of
D+1). The clean database is exported once, undisturbed, and timed. On the other, the same command
runs as a real process in its own process group and is SIGKILLed:
- twice at chosen points, held there by a lock the test takes first and releases once the process
  is dead: in the UPDATE of exported_in (export row and app.exported_entries written, no file
  delivered), then in the audit event, its last statement (every file delivered, nothing committed);
- at STARTUP_KILLS seeded random moments while the command starts, then KILLS once it holds the
  export's advisory lock, one in each slice of the clean run's start and export times;
then it runs to the end; then RERUN_KILLS kills of re-runs (which re-deliver the recorded files) the
same way, and a re-run to the end. Each run meets what the kills before it left behind.

After every kill, once the killed run's server session is gone, the state must be one of the two an
atomic export allows: nothing recorded (no app.accounting_exports row, no app.exported_entries row,
no exported_in set, no audit event) or everything recorded (one export row, exactly the clean run's
entries in app.exported_entries and exported_in, the delivered manifest being the recorded one);
and every whole file in the export folder (a `.partial` aside) is byte for byte the clean run's.
Files written but entries not marked, or entries marked but files missing, fail here; so would a
re-run that found them. The two chosen kills must leave "nothing" and "files delivered, not
recorded": an export committing the export row or the marks in a transaction of their own, or
before its delivery, fails there (both were tried by patching `_record`: the test failed).

At the end: the folder equals the clean one byte for byte (no leftover partial file);
app.accounting_exports (but created_at), app.exported_entries and marts.accounting_entries'
exported_in equal the clean database's; every line validated before the end of D is exported once
and no other; the audit log holds one first export and no refusal.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from backoffice.db.engine import owner_engine
from backoffice.db.migrate import migrate
from backoffice.services.exports import _LOCK as EXPORT_LOCK

DAY = date(2026, 3, 14)
EXPORT_ID = "EXP-20260314"
ENTRIES = 2_400  # about 6,000 lines, 5,200 of them exported on DAY
# Validated from 22:00 on D-1 (Paris) for 30 hours: the last 4 hours fall on D+1 and stay unexported.
START = datetime(2026, 3, 13, 21, 0, tzinfo=UTC)
SPAN = timedelta(hours=30)
STARTUP_KILLS = 2
KILLS = 8
RERUN_KILLS = 3
SEED = 9
BACKOFFICE = str(Path(sys.executable).with_name("backoffice"))

# Entry i (from 0): journal VE, AC, BQ, OD in turn, numbered on in its journal, validated at
# :start + i * :step; sales and purchases of three lines, bank and miscellaneous of two; balanced.
_ENTRIES = sa.text(
    """
    WITH e AS (
        SELECT i, (ARRAY['VE', 'AC', 'BQ', 'OD'])[i % 4 + 1] AS j, i / 4 + 1 AS num,
               CAST(:start AS timestamptz) + i * CAST(:step AS interval) AS at,
               round(10 + (i * 7919 % 250000) / 100.0, 2) AS ht
        FROM generate_series(0, :n - 1) AS i
    ),
    n AS (SELECT e.*, round(ht * 1.20, 2) AS ttc, (at AT TIME ZONE 'Europe/Paris')::date AS d FROM e)
    INSERT INTO marts.accounting_entries (journal_code, entry_number, entry_date, account, aux_account,
        account_label, piece_ref, piece_date, label, debit, credit, currency_amount, currency, validated_at,
        source_type, source_id, dossier_number)
    SELECT n.j, n.num, n.d, l.account, l.aux, l.account_label, n.j || '-' || n.num, n.d, l.label,
           l.debit, l.credit, greatest(l.debit, l.credit), 'EUR', n.at, 'kill_soak', n.j || '/' || n.i,
           'BK-KILL-' || lpad((n.i % 500)::text, 4, '0')
    FROM n CROSS JOIN LATERAL (VALUES
        ('VE', '411000', 'C' || lpad((n.i % 97)::text, 3, '0'), 'Clients', 'Facture client ' || n.i, n.ttc, 0.00),
        ('VE', '706000', NULL, 'Prestations de services', 'Facture client ' || n.i, 0.00, n.ht),
        ('VE', '445710', NULL, 'TVA collectée', 'Facture client ' || n.i, 0.00, n.ttc - n.ht),
        ('AC', '604000', NULL, 'Achats de prestations', 'Hôtel Łódź ' || n.i, n.ht, 0.00),
        ('AC', '445660', NULL, 'TVA déductible', 'Hôtel Łódź ' || n.i, n.ttc - n.ht, 0.00),
        ('AC', '401000', 'F' || lpad((n.i % 31)::text, 3, '0'), 'Fournisseurs', 'Hôtel Łódź ' || n.i, 0.00, n.ttc),
        ('BQ', '512000', NULL, 'Banque', 'Règlement client ' || n.i, n.ttc, 0.00),
        ('BQ', '411000', 'C' || lpad((n.i % 97)::text, 3, '0'), 'Clients', 'Règlement client ' || n.i, 0.00, n.ttc),
        ('OD', '658000', NULL, 'Charges diverses', 'Écart de règlement ' || n.i, n.ht, 0.00),
        ('OD', '471000', NULL, 'Compte d''attente', 'Écart de règlement ' || n.i, 0.00, n.ht)
    ) AS l (journal, account, aux, account_label, label, debit, credit)
    WHERE l.journal = n.j
    """
)


@pytest.fixture
def twin_databases(database_url: str) -> Iterator[tuple[str, str]]:
    """Two identical databases with the entries: (clean, killed). Built once (migrations, dbt's
    accounting_entries, the entries), then copied as a template, so both hold the same rows."""
    from backoffice.dbt_runner import run_dbt

    base = make_url(database_url)
    names = [f"{base.database}_export_{run}_{uuid.uuid4().hex[:6]}" for run in ("killed", "clean")]
    urls = [base.set(database=name).render_as_string(hide_password=False) for name in names]
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{names[0]}"'))
        migrate(urls[0])
        run_dbt(
            ["build", "--select", "+accounting_entries", "--resource-type", "seed", "--resource-type", "model"],
            database_url=urls[0],
        )
        engine = owner_engine(urls[0])
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE marts.accounting_entries"))
            conn.execute(_ENTRIES, {"n": ENTRIES, "start": START, "step": SPAN / ENTRIES})
        engine.dispose()
        _wait_for_sessions(admin, names[0])
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"'))
        yield urls[1], urls[0]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _wait_for_sessions(admin: Engine, database: str, timeout: float = 60) -> None:
    """Until no session is connected to `database`: a killed client's server session finishes
    (rolls back or commits) on its own, and only then is the state it left final."""
    deadline = time.monotonic() + timeout
    while True:
        with admin.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": database},
            ).scalar_one()
        if not left:
            return
        assert time.monotonic() < deadline, f"{left} session(s) still on {database}"
        time.sleep(0.05)


def _start(url: str, out: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [BACKOFFICE, "export", "--date", DAY.isoformat(), "--out", str(out)],
        # its own TMPDIR: the temporary folders a killed run leaves behind are counted
        env={**os.environ, "DATABASE_URL": url, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes every process of the run
    )


def _exporting(proc: subprocess.Popen[bytes], admin: Engine, database: str, held: bool = True) -> float:
    """Wait until the run holds the export's advisory lock (its transaction has begun), or with
    `held=False` until it no longer does (committed or rolled back); returns when."""
    deadline = time.monotonic() + 240
    while True:
        with admin.connect() as conn:
            holds = conn.execute(
                sa.text(
                    """SELECT 1 FROM pg_locks AS l JOIN pg_database AS d ON d.oid = l.database
                       WHERE l.locktype = 'advisory' AND l.granted AND d.datname = :d
                         AND (l.classid::bigint << 32) + l.objid::bigint = :key"""
                ),
                {"d": database, "key": EXPORT_LOCK},
            ).first()
        if bool(holds) == held:
            return time.monotonic()
        assert proc.poll() is None, f"the run ended before exporting: {proc.communicate()[0].decode()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _kill_held(url: str, lock: str, waits_in: str, out: Path, temp: Path, admin: Engine) -> None:
    """Start a run while this test's transaction holds `lock`; SIGKILL it once it waits for that
    lock in a statement starting with `waits_in`; then release the lock."""
    owner = owner_engine(url)
    try:
        with owner.connect() as holder:
            holder.execute(sa.text(lock))
            proc = _start(url, out, temp)
            deadline = time.monotonic() + 120
            while not _table(
                url,
                f"""SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                    AND ltrim(query) LIKE '{waits_in}%'""",
            ):
                assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
                assert time.monotonic() < deadline, f"the run never waited in {waits_in}"
                time.sleep(0.02)
            assert _kill(proc, admin, make_url(url).database)
            holder.rollback()
    finally:
        owner.dispose()


def _finish(proc: subprocess.Popen[bytes]) -> str:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output.decode()[-2000:]
    return output.decode()


def _kill(proc: subprocess.Popen[bytes], admin: Engine, database: str) -> str | None:
    """SIGKILL the run's process group; returns what its database session was doing just before
    (None if the run had already finished: then it must have succeeded)."""
    with admin.connect() as conn:
        doing = conn.execute(
            sa.text(
                """SELECT state || ': ' || split_part(ltrim(query), ' ', 1) || ' ' || split_part(ltrim(query), ' ', 2)
                   FROM pg_stat_activity WHERE datname = :d AND backend_type = 'client backend'
                   ORDER BY backend_start DESC LIMIT 1"""
            ),
            {"d": database},
        ).scalar()
    if proc.poll() is not None:
        _finish(proc)
        return None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return doing or "no session (starting, or between sessions)"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _state(url: str) -> dict[str, object]:
    """What the database says was exported."""
    engine = owner_engine(url)
    try:
        with engine.connect() as conn:
            one = conn.execute
            return {
                "exports": one(sa.text("SELECT count(*) FROM app.accounting_exports")).scalar_one(),
                "manifest_sha256": one(sa.text("SELECT min(manifest_sha256) FROM app.accounting_exports")).scalar(),
                "entries": sorted(
                    one(
                        sa.text("SELECT export_id, journal_code, fiscal_year, entry_number FROM app.exported_entries")
                    ).tuples()
                ),
                "marked": one(
                    sa.text("SELECT count(*) FROM marts.accounting_entries WHERE exported_in IS NOT NULL")
                ).scalar_one(),
                "audited": sorted(
                    one(
                        sa.text(
                            """SELECT outcome, coalesce((after ->> 'rerun')::boolean, false) FROM audit.events
                               WHERE action = 'accounting_export'"""
                        )
                    ).tuples()
                ),
            }
    finally:
        engine.dispose()


def _table(url: str, query: str) -> list[tuple[object, ...]]:
    engine = owner_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def _check_atomic(
    state: dict[str, object], clean: dict[str, object], folder: Path, clean_files: dict[str, bytes]
) -> str:
    """The state a kill left is all or nothing, and every whole file is the clean run's. Returns its name."""
    whole = {name: data for name, data in _files(folder).items() if not name.startswith(".")}
    assert all(clean_files.get(name) == data for name, data in whole.items()), "a delivered file differs"
    if "manifest.json" in whole:  # delivered last: a reader that waits for it finds the whole set
        assert whole == clean_files, "a manifest without all its files"
    if state["exports"] == 0:
        assert (state["entries"], state["marked"], state["audited"]) == ([], 0, []), state
        if not whole:
            return "nothing"
        return "files delivered, not recorded" if whole == clean_files else "some files delivered, not recorded"
    assert state["exports"] == 1
    assert state["entries"] == clean["entries"] and state["marked"] == clean["marked"]
    assert ("done", False) in state["audited"]
    # recorded: its files were delivered whole before the commit
    assert whole == clean_files and state["manifest_sha256"] == clean["manifest_sha256"]
    return "recorded"


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_an_export_killed_at_random_moments_then_rerun_equals_a_clean_export(
    twin_databases: tuple[str, str], database_url: str, tmp_path: Path
) -> None:
    clean_url, killed_url = twin_databases
    killed_db = make_url(killed_url).database
    admin = sa.create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    temp = tmp_path / "tmp"
    temp.mkdir()

    # The clean export, undisturbed and timed.
    clean_out, out = tmp_path / "clean", tmp_path / "killed"
    started = time.monotonic()
    proc = _start(clean_url, clean_out, temp)
    locked = _exporting(proc, admin, make_url(clean_url).database)
    window = _exporting(proc, admin, make_url(clean_url).database, held=False) - locked  # its transaction
    startup = locked - started
    clean_output = _finish(proc)
    clean_files = _files(clean_out / DAY.isoformat())
    clean = _state(clean_url)
    expected_lines = _table(
        clean_url,
        f"""SELECT count(*) FROM marts.accounting_entries
            WHERE validated_at < TIMESTAMPTZ '{DAY + timedelta(days=1)} 00:00 Europe/Paris'""",
    )[0][0]
    assert f"written to {clean_out / DAY.isoformat()}: " in clean_output
    assert clean["exports"] == 1 and clean["marked"] == expected_lines > 4_000
    assert len(clean_files) == 4 and sum(map(len, clean_files.values())) > 1_000_000

    folder = out / DAY.isoformat()
    seen: list[str] = []

    # 1. Two kills at chosen points, each held there by a lock this test takes first (released once
    # the process is dead, so its session can only roll back): in the UPDATE of exported_in (the
    # export row and app.exported_entries written, no file delivered yet), then in its last
    # statement, the audit event (every file delivered, nothing committed).
    for lock, waits_in, state in [
        ("marts.accounting_entries", "UPDATE marts.accounting_entries", "nothing"),
        ("audit.events", "INSERT INTO audit.events", "files delivered, not recorded"),
    ]:
        _kill_held(killed_url, f"LOCK TABLE {lock} IN SHARE MODE", waits_in, out, temp, admin)
        _wait_for_sessions(admin, killed_db)
        seen.append(_check_atomic(_state(killed_url), clean, folder, clean_files))
        assert seen[-1] == state, f"killed waiting in {waits_in}"

    # 2. Kills at seeded random moments: STARTUP_KILLS while the command starts (imports, migrations
    # checked), one in each slice of the clean run's start; then KILLS once it holds the export's
    # lock, one in each slice of the clean run's export transaction (read, files, record, delivery,
    # commit: from taking the lock to its release).
    # 3. A run to the end; then RERUN_KILLS of re-runs the same way, and a re-run to the end.
    rng = random.Random(SEED)
    kills: list[tuple[str, float]] = []
    rounds = [(STARTUP_KILLS, startup, False), (KILLS, window, True), (RERUN_KILLS, window, True)]
    for count, span, in_export in rounds:
        for k in range(count):
            moment = rng.uniform(k, k + 1) * span / count
            proc = _start(killed_url, out, temp)
            if in_export:
                _exporting(proc, admin, killed_db)
            time.sleep(moment)
            doing = _kill(proc, admin, killed_db)
            _wait_for_sessions(admin, killed_db)
            seen.append(_check_atomic(_state(killed_url), clean, folder, clean_files))
            kills.append((doing or "finished before its kill", moment))
        if count == KILLS:
            first_output = _finish(_start(killed_url, out, temp))
    final_output = _finish(_start(killed_url, out, temp))
    _wait_for_sessions(admin, killed_db)
    admin.dispose()
    after = _state(killed_url)
    real = [doing for doing, _ in kills if doing != "finished before its kill"]
    print(
        f"\n{ENTRIES} entries, {expected_lines} lines exported; clean run: {startup:.2f} s start, {window:.2f} s "
        f"export transaction; {len(real) + 2} kills: in the UPDATE of exported_in, after delivery before commit; "
        f"then (what the session was doing, seconds after the start or the export's lock): "
        f"{[(d, round(m, 2)) for d, m in kills]}; "
        f"states left: {seen}; temporary folders left by killed runs: {len(list(temp.iterdir()))}; "
        f"first complete run: {first_output.splitlines()[0]}; last: {final_output.splitlines()[0]}"
    )
    assert len(real) >= (STARTUP_KILLS + KILLS + RERUN_KILLS) // 2, "most moments fell after the run's end"
    assert "nothing" in seen and "recorded" in seen
    assert "re-written" in final_output

    # (a) the files: the clean export's, byte for byte, and nothing else (no partial file left).
    assert _files(folder) == clean_files
    # (b) every entry validated before the end of D exported once, in this export; none other.
    assert after["entries"] == clean["entries"] and len(set(after["entries"])) == len(after["entries"])
    assert len(after["entries"]) == _table(clean_url, "SELECT entry_count FROM app.accounting_exports")[0][0]
    marks = """SELECT journal_code, entry_number, validated_at, exported_in FROM marts.accounting_entries
               ORDER BY 1, 2, 3, account, debit, credit"""
    assert _table(killed_url, marks) == _table(clean_url, marks)
    assert after["marked"] == expected_lines
    assert _table(killed_url, "SELECT DISTINCT exported_in FROM marts.accounting_entries ORDER BY 1") == [
        (EXPORT_ID,),
        (None,),
    ]
    # (c) the export recorded once, as the clean run recorded it; one first export, no refusal.
    exports = "SELECT * FROM app.accounting_exports"
    [recorded], [clean_recorded] = _table(killed_url, exports), _table(clean_url, exports)
    columns = _columns(killed_url, "app", "accounting_exports")
    assert {c: v for c, v in zip(columns, recorded, strict=True) if c != "created_at"} == {
        c: v for c, v in zip(columns, clean_recorded, strict=True) if c != "created_at"
    }
    assert after["audited"].count(("done", False)) == 1
    assert {outcome for outcome, _ in after["audited"]} == {"done"}


def _columns(url: str, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in _table(
            url,
            f"""SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}'
                AND table_name = '{table}' ORDER BY ordinal_position""",
        )
    ]
