"""The rows_hold generic test (dbt_project/tests/generic/rows_hold.sql): every column rule of a view in
one pass. Compiled by dbt as the build compiles it, run on a table with one fault of each kind: it
returns exactly the offending rows, each naming its rule and column."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backoffice.dbt_runner import run_dbt_process

RULES = """not_null=['amount'], unique=['id', ['pair_a', 'pair_b']], accepted_values={'status': ['ok', "it's"]}"""
CALL = "{{ test_rows_hold(model=api.Relation.create(schema='scratch', identifier='checked_rows'), " + RULES + ") }}"
# A daily build's call: the rows of the changed dossiers only (here pair_a stands for the dossier).
SCOPED = (
    "{{ test_rows_hold(model=api.Relation.create(schema='scratch', identifier='checked_rows'), "
    + RULES
    + ", scope_column='pair_a', scope_dossiers=['a', \"o'k\"]) }}"
)


def _compiled(database_url: str, target: Path, call: str = CALL) -> str:
    proc = run_dbt_process(["--quiet", "compile", "--inline", call, "--output", "json"], database_url, target)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["compiled"]


def test_each_offending_row_comes_back_with_its_rule_and_column(db: Engine, database_url: str, tmp_path: Path) -> None:
    with db.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS scratch CASCADE; CREATE SCHEMA scratch"))
        conn.execute(
            sa.text(
                """CREATE TABLE scratch.checked_rows (id int, pair_a text, pair_b text, status text, amount numeric);
                   INSERT INTO scratch.checked_rows VALUES
                       (1, 'a', 'x', 'ok', 1),
                       (1, 'a', 'x', 'bad', NULL),   -- id twice, (a, x) twice, a refused status, no amount
                       (2, 'b', NULL, 'ok', 2),      -- a key with a null part is not compared
                       (3, 'b', NULL, 'it''s', 3),   -- a quoted accepted value
                       (4, 'c', 'y', NULL, 4),       -- a null status is not_null's business
                       (5, 'd', 'z', 'worse', NULL)  -- outside the scope of the daily call"""
            )
        )
    try:
        sql = _compiled(database_url, tmp_path)
        scoped_sql = _compiled(database_url, tmp_path, SCOPED)
        with db.connect() as conn:
            rows = sorted(tuple(r) for r in conn.execute(sa.text(sql)))
            scoped = sorted(tuple(r) for r in conn.execute(sa.text(scoped_sql)))
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA scratch CASCADE"))

    in_scope = [
        ("accepted_values", "status", "bad"),
        ("not_null", "amount", None),
        ("unique", "id", "1"),
        ("unique", "pair_a, pair_b", "a / x"),
    ]
    assert rows == sorted([*in_scope, ("accepted_values", "status", "worse"), ("not_null", "amount", None)])
    assert sql.count('from "scratch"."checked_rows"') == 1  # the model is read once
    # The daily call reads the named dossiers' rows only, each through the model filtered on it.
    assert scoped == in_scope
    assert scoped_sql.count('from "scratch"."checked_rows" where pair_a = scope.scope_dossier') == 1
