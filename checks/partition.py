"""Quality of one loaded day partition: its suite, and its rejection rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks.quality import Outcome, validate
from checks.suites import SUITES

# Past WARN_RATE of a day's records rejected, the check warns; past FAIL_RATE it fails the run,
# once at least FAIL_MIN_REJECTED records are rejected: on a quiet day two bad lines out of
# thirty are worth a look, not a stopped pipeline.
WARN_RATE = 0.01
FAIL_RATE = 0.05
FAIL_MIN_REJECTED = 10


def run_suite(engine: Engine, suite_name: str, day: date) -> Outcome:
    suite = SUITES[suite_name]
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(suite.sql), conn, params={"prefix": f"{suite.source}/{day.isoformat()}/%"})
    return validate(frame, suite.name, suite.expectations_factory())


@dataclass(frozen=True)
class RejectionRate:
    loaded: int
    rejected: int
    severity: str  # ok, warn, fail

    @property
    def rate(self) -> float:
        total = self.loaded + self.rejected
        return self.rejected / total if total else 0.0


def rejection_rate(engine: Engine, source: str, day: date) -> RejectionRate:
    """Rejected versus loaded records of the files that landed in that day's folder."""
    with engine.connect() as conn:
        loaded, rejected = conn.execute(
            sa.text(
                """SELECT coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0)
                   FROM raw.landing_files WHERE source = :source AND partition_date = :day"""
            ),
            {"source": source, "day": day},
        ).one()
    rate = RejectionRate(int(loaded), int(rejected), "ok")
    if rate.rate > FAIL_RATE and rate.rejected >= FAIL_MIN_REJECTED:
        severity = "fail"
    else:
        severity = "warn" if rate.rate > WARN_RATE else "ok"
    return RejectionRate(rate.loaded, rate.rejected, severity)
