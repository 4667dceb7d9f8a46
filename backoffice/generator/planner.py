"""The pure part of generation: a batch of new dossiers in, everything they will produce out.

A dossier's outputs depend only on (seed, its sequence number, its number, its creation day):
nothing here reads or writes shared state, which is what makes the output reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .clock import Calendar
from .dossiers import plan_dossier
from .ground_truth import billing_rows
from .payments import Pending, plan_payments
from .supplier_invoices import Intent, plan_invoices


@dataclass(frozen=True)
class PlanContext:
    end: int  # first day not generated
    seed: int
    client_pool: int


class Planned(NamedTuple):
    snapshots: list[tuple[int, str]]
    payments: list[Pending]
    intents: list[Intent]
    billing: list[list[str]]


def plan_batch(ctx: PlanContext, cal: Calendar, batch: list[tuple[int, str, int]]) -> list[Planned]:
    """Plan dossiers given as (sequence, dossier number, creation day)."""
    out = []
    for seq, number, day in batch:
        plan = plan_dossier(seq, number, day, ctx.end, cal, ctx.seed, ctx.client_pool)
        payments = plan_payments(plan, cal, ctx.end)
        intents = plan_invoices(plan, ctx.end)
        out.append(Planned(plan.snapshots, payments, intents, billing_rows(plan, intents)))
    return out
