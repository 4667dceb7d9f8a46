"""What an issued invoice or credit note says, independent of how it is printed.

Built from the stored rows (app.client_invoices and app.client_invoice_lines), so the Factur-X
XML and the PDF can be produced again, identically, at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
# Travel agents' margin scheme (CGI art. 266-1-e and 297 A, directive 2006/112/EC art. 306-310):
# the invoice shows no VAT. The mention is the one art. 226-13 of the directive prescribes (French
# version, also CGI art. 242 nonies A); EN 16931 files such lines under category E with the
# exemption reason code VATEX-EU-D ("D" is UNTDID 5305's "VAT margin scheme - travel agents").
MARGIN_SCHEME_MENTION = "Régime particulier – Agences de voyages"
VAT_CATEGORY = "E"
VAT_EXEMPTION_CODE = "VATEX-EU-D"


@dataclass(frozen=True)
class Line:
    number: int
    label: str
    quantity: int
    unit_amount: Decimal
    # The Devis line this one invoices (not printed; stored with the line).
    price_line_id: int | None = None

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_amount


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    kind: str
    issue_date: date
    dossier_number: str
    currency: str
    language: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    lines: tuple[Line, ...]
    cited_number: str | None = None
    cited_date: date | None = None
    reason: str | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def is_credit_note(self) -> bool:
        return self.kind == CREDIT_NOTE
