"""Translations and locale formats. Message ids are English; catalogs are Babel .po files.

The .po files under apps/streamlit/locales/<lang>/LC_MESSAGES/messages.po are read at runtime
with babel's read_po, so a new message needs no compile step. A message missing from the
catalog shows its English id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import streamlit as st
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

from backoffice.config import get_settings
from backoffice.domain.errors import DomainError, InvalidInput
from ui import state

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("fr", "en")
# Babel needs a territory for currency and date conventions.
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


@cache
def catalog(language: str) -> dict[str, str]:
    path = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        messages = read_po(handle, locale=language)
    return {m.id: m.string for m in messages if m.id and isinstance(m.id, str) and m.string}


def language() -> str:
    chosen = st.session_state.get(state.LOCALE) or get_settings().default_locale
    return chosen if chosen in LANGUAGES else "fr"


def gettext(message: str) -> str:
    return catalog(language()).get(message, message)


def translator() -> Callable[[str], str]:
    """`gettext` bound to the language of this run, for a widget's `format_func`.

    Streamlit may call a format function outside the script run that drew the widget (AppTest
    does, to map the chosen option back to its label); `gettext` there would read no session
    and answer in the default language, so the label would no longer be among the options."""
    messages = catalog(language())
    return lambda message: messages.get(message, message)


def _babel() -> str:
    return BABEL_LOCALES[language()]


def money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else format_currency(amount, currency, locale=_babel())


def number(value: Decimal | int) -> str:
    return format_decimal(value, locale=_babel())


def percent(rate: Decimal) -> str:
    return format_percent(rate, format="#,##0.##%", locale=_babel())


def day(value: date | None) -> str:
    return "" if value is None else format_date(value, format="medium", locale=_babel())


def moment(value: datetime | None) -> str:
    return "" if value is None else format_datetime(value, format="short", locale=_babel())


def error(exc: DomainError) -> str:
    """A refusal in the user's language: the field's label, then the service's explanation."""
    if isinstance(exc, InvalidInput):
        return f"{gettext(exc.field)}: {exc.problem}"
    return str(exc)
