"""dbt's unit tests run here, in `make test`, and not in the production build (assets/dbt.py).

They test the models' SQL on fixed inputs, whatever the day's data: running them in every daily
build cost ~0.4 s of dbt overhead each for nothing new (docs/dbt.md)."""

from __future__ import annotations

import json

from backoffice.dbt_runner import run_dbt, target_path


def test_every_unit_test_passes_and_the_production_build_leaves_them_out(database_url: str) -> None:
    from assets.dbt import BUILD_ARGS

    # Seeds and every model (on this empty database: unit tests read their inputs' columns), then
    # the unit tests; no data test (`--empty` is no shortcut: it breaks models aliasing a ref).
    run_dbt(["build", "--exclude-resource-type", "test"], database_url)

    results = json.loads((target_path() / "run_results.json").read_text())["results"]
    unit = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(unit) >= 27, sorted(unit)
    assert set(unit.values()) == {"pass"}, {k: v for k, v in unit.items() if v != "pass"}
    assert "unit_test.backoffice.int_matching_candidates.matching_last_name_alone_capped" in unit
    assert "unit_test.backoffice.int_matching_candidates.matching_full_name_alone_capped" in unit
    assert BUILD_ARGS[0] == "build" and BUILD_ARGS[1:] == ["--exclude-resource-type", "unit_test"]
