"""Every message the app shows has a French translation, and English labels exist for the ids
that are not English sentences (criteria fields, statuses, roles...)."""

from __future__ import annotations

import re
import sys
from dataclasses import fields
from pathlib import Path

from babel.messages.pofile import read_po

from backoffice.domain.permissions import ROLES
from backoffice.queries.criteria import CHANNELS, STATUSES, SearchCriteria
from backoffice.queries.search import SORT_KEYS
from backoffice.queries.shortcuts import SHORTCUTS

APP = Path(__file__).resolve().parents[2] / "apps" / "streamlit"
# Values the pages translate as they come from the database (the schema's CHECK lists).
DATABASE_VALUES = {
    "flight",
    "hotel",
    "transfer",
    "car",
    "insurance",
    "activity",
    "cruise",
    "package",
    "adult",
    "child",
    "infant",
    "deposit",
    "balance",
    "instalment",
    "card_on_file",
    "manual",
    "card",
    "gift_voucher",
    "holiday_voucher",
    "cheque",
    "cash",
    "captured",
    "failed",
    "refunded",
    "chargeback",
    "done",
    "refused",
    "booking",
    "modification",
    "regulation",
    "adjustment",
    "cancellation_fee",
}
LITERAL = re.compile(r"""_\(\s*(?:"([^"]+)"|'([^']+)')\s*\)""")


def catalog(language: str) -> dict[str, str]:
    with (APP / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id and m.string}


def used_messages() -> set[str]:
    found = set()
    for path in APP.rglob("*.py"):
        found |= {a or b for a, b in LITERAL.findall(path.read_text())}
    dynamic = {f.name for f in fields(SearchCriteria)} | set(STATUSES) | set(CHANNELS) | set(ROLES)
    return found | dynamic | DATABASE_VALUES | set(SORT_KEYS) | {s.name for s in SHORTCUTS}


def test_every_message_has_a_french_translation() -> None:
    missing = used_messages() - catalog("fr").keys()
    assert not missing, f"add to locales/fr/LC_MESSAGES/messages.po: {sorted(missing)}"


def test_identifiers_have_english_labels() -> None:
    identifiers = {m for m in used_messages() if re.fullmatch(r"[a-z_]+", m)}
    assert identifiers, "the scan found no identifier-like message ids"
    missing = identifiers - catalog("en").keys()
    assert not missing, f"add to locales/en/LC_MESSAGES/messages.po: {sorted(missing)}"


def test_the_app_reads_the_catalog_at_runtime() -> None:
    sys.path.insert(0, str(APP))
    try:
        from ui import i18n
    finally:
        sys.path.remove(str(APP))
    assert i18n.catalog("fr")["Search"] == "Rechercher"
    assert i18n.catalog("en")["client_name"] == "Client name"
