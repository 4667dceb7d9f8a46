"""Built-in shortcuts: the searches every agent needs, defined in code, offered to everyone.

Names are English message ids; the UI translates them through its catalogs.
"""

from __future__ import annotations

from dataclasses import dataclass

from backoffice.queries.criteria import SearchCriteria


@dataclass(frozen=True)
class Shortcut:
    key: str
    name: str
    criteria: SearchCriteria
    sort: str = "departure_date"
    descending: bool = False


_ACTIVE = ("quote", "option", "confirmed")

SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(
        "unpaid_departures_14d",
        "Departures in the next 14 days with an unpaid balance",
        SearchCriteria(statuses=_ACTIVE, departure_within_days=14, balance_unpaid=True),
    ),
    Shortcut(
        "departures_7d",
        "Departures in the next 7 days",
        SearchCriteria(statuses=("option", "confirmed"), departure_within_days=7),
    ),
    Shortcut("options_to_confirm", "Options to confirm", SearchCriteria(statuses=("option",))),
    Shortcut(
        "recent_cancellations",
        "Recent cancellations",
        SearchCriteria(statuses=("cancelled",), updated_within_days=7),
        sort="updated_at",
        descending=True,
    ),
)
