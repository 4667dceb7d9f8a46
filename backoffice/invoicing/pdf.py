"""The invoice PDF: HTML rendered to PDF/A-3b by WeasyPrint, with the Factur-X XML embedded.

The page is printed in the client's language (French or English) from the same document the
XML is built from, so the two never disagree. WeasyPrint needs Pango from the system (Debian:
libpango-1.0-0, libpangoft2-1.0-0); it is imported on first use so the rest of the application
runs without it. The PDF bytes are not reproducible to the byte (factur-x stamps the time of
embedding), which is why the issued PDF is stored with its SHA-256; its XML is.
"""

from __future__ import annotations

from decimal import Decimal

import facturx
import jinja2
from babel.dates import format_date
from babel.numbers import format_currency

from backoffice.invoicing import facturx_xml
from backoffice.invoicing.document import MARGIN_SCHEME_MENTION, InvoiceDocument

LOCALES = {"fr": "fr_FR", "en": "en_GB"}
LABELS = {
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "date": "Date",
        "dossier": "Dossier",
        "cites": "Avoir sur la facture",
        "of": "du",
        "reason": "Motif",
        "vat_number": "TVA",
        "licence": "Immatriculation",
        "label": "Désignation",
        "quantity": "Quantité",
        "unit": "Prix unitaire TTC",
        "amount": "Montant TTC",
        "total": "Total TTC",
        "no_vat": "TVA sur la marge non récupérable, non mentionnée (CGI art. 266-1-e et 297 A).",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "date": "Date",
        "dossier": "Dossier",
        "cites": "Credit note on invoice",
        "of": "of",
        "reason": "Reason",
        "vat_number": "VAT",
        "licence": "Registration",
        "label": "Description",
        "quantity": "Quantity",
        "unit": "Unit price incl. VAT",
        "amount": "Amount incl. VAT",
        "total": "Total incl. VAT",
        "no_vat": "Margin scheme: VAT on the margin, not shown and not recoverable.",
    },
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("backoffice.invoicing", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def format_money(value: Decimal, currency: str, language: str) -> str:
    return format_currency(value, currency, locale=LOCALES.get(language, LOCALES["fr"]))


def html(document: InvoiceDocument) -> str:
    language = document.language if document.language in LABELS else "fr"
    locale = LOCALES[language]
    labels = LABELS[language]

    def money(value: Decimal) -> str:
        return format_money(value, document.currency, language)

    return _templates.get_template("invoice.html.j2").render(
        doc=document,
        language=language,
        t={**labels, "title": labels[document.kind]},
        issue_date=format_date(document.issue_date, "long", locale=locale),
        cited_date=format_date(document.cited_date, "long", locale=locale) if document.cited_date else None,
        lines=[
            {
                "label": line.label,
                "quantity": line.quantity,
                "unit": money(line.unit_amount),
                "amount": money(line.amount),
            }
            for line in document.lines
        ],
        total=money(document.total),
        mention=MARGIN_SCHEME_MENTION,
    )


def render(document: InvoiceDocument) -> tuple[bytes, bytes]:
    """(PDF/A-3b bytes with the Factur-X XML embedded, that XML)."""
    import weasyprint  # needs the system's Pango: imported only when an invoice is printed

    xml = facturx_xml.build(document)
    page = weasyprint.HTML(string=html(document)).write_pdf(pdf_variant="pdf/a-3b")
    labels = LABELS.get(document.language, LABELS["fr"])
    title = f"{labels[document.kind]} {document.number}"
    pdf = facturx.generate_from_binary(
        page,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={
            "author": document.seller["legal_name"],
            "keywords": "Factur-X",
            "title": title,
            "subject": f"{title} ({document.dossier_number})",
        },
        lang="fr-FR" if document.language == "fr" else "en-GB",
    )
    return pdf, xml
