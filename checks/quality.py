"""Run a Great Expectations suite on one loaded partition and say, in words, what failed.

The context is ephemeral and the suites are defined in code (checks/suites.py): nothing is
written to disk, and a check is a pure function of the rows it is given. Great Expectations
is imported lazily because its import costs several seconds (stack notes), and only the
pipeline needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Outcome:
    passed: bool
    rows: int
    failures: tuple[str, ...]  # one sentence per failed expectation

    def metadata(self) -> dict[str, Any]:
        return {"rows": self.rows, "failures": "\n".join(self.failures) or "none"}


def _describe(result: Any) -> str:
    config = result.expectation_config
    column = config.kwargs.get("column") or config.kwargs.get("column_list") or ""
    details = result.result or {}
    examples = details.get("partial_unexpected_list") or []
    count = details.get("unexpected_count")
    text = f"{config.type} {column}".strip()
    if count is not None:
        text += f": {count} row(s)"
    if examples:
        text += f", e.g. {', '.join(map(str, examples[:5]))}"
    return text


def validate(frame: pd.DataFrame, suite_name: str, expectations: list[Any]) -> Outcome:
    """Validate `frame` against `expectations` (Great Expectations expectation objects)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if frame.empty:
        return Outcome(passed=True, rows=0, failures=())
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("partition")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = tuple(_describe(r) for r in result.results if not r.success)
    return Outcome(passed=result.success, rows=len(frame), failures=failures)
