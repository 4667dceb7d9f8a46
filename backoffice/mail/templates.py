"""Mail templates: `templates/<kind>.<language>.txt.j2`, and optionally `.html.j2` beside it.

The text template's first line is the subject, then a blank line, then the body. A missing
context variable is an error (StrictUndefined), never a silently blank spot in a client's mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from backoffice.domain.errors import InvalidInput

KINDS = (
    "modification_validated",
    "cancellation_confirmed",
    "supplier_modification",
    "travel_book",
    "balance_charge_failed",
    "client_invoice",
    "client_credit_note",
)
LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

_loader = jinja2.PackageLoader("backoffice.mail", "templates")
_text = jinja2.Environment(
    loader=_loader, undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
)
_html = jinja2.Environment(
    loader=_loader, undefined=jinja2.StrictUndefined, autoescape=True, trim_blocks=True, lstrip_blocks=True
)


@dataclass(frozen=True)
class RenderedMail:
    language: str
    subject: str
    body_text: str
    body_html: str | None


def language_for(language: str | None) -> str:
    """The client's language when we have templates in it, else French."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def render(kind: str, language: str | None, context: dict[str, Any]) -> RenderedMail:
    if kind not in KINDS:
        raise InvalidInput("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    language = language_for(language)
    try:
        text = _text.get_template(f"{kind}.{language}.txt.j2").render(context)
        try:
            html_template = _html.get_template(f"{kind}.{language}.html.j2")
        except jinja2.TemplateNotFound:
            html = None
        else:
            html = html_template.render(context)
    except jinja2.UndefinedError as exc:
        raise InvalidInput("context", f"the {kind} mail needs {exc.message}") from None
    subject, _, body = text.partition("\n\n")
    # A subject is one header line: a newline from the context must not inject headers.
    return RenderedMail(language, " ".join(subject.split()), body.strip() + "\n", html)
