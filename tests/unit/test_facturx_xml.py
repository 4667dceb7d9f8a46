"""The Factur-X XML of invoices and credit notes, checked against the EN 16931 XSD (no I/O)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import facturx

from backoffice.invoicing import facturx_xml
from backoffice.invoicing.document import InvoiceDocument, Line

SELLER = {
    "legal_name": "Voyages Soleil SAS",
    "address_line": "12 rue du Port",
    "postal_code": "13002",
    "city": "Marseille",
    "country": "FR",
    "vat_number": "FR12345678901",
    "siren": "345678901",
}
BUYER = {"name": "Jean Dupont", "country": "FR", "email": "jean@example.org"}


def document(**overrides: object) -> InvoiceDocument:
    values: dict = {
        "number": "SOLEIL-FA-2026-000001",
        "kind": "invoice",
        "issue_date": date(2026, 3, 2),
        "dossier_number": "BK-2026-000001",
        "currency": "EUR",
        "language": "fr",
        "seller": SELLER,
        "buyer": BUYER,
        "lines": (Line(1, "Chambre double", 2, Decimal("980.00")), Line(2, "Remise", 1, Decimal("-50.00"))),
        **overrides,
    }
    return InvoiceDocument(**values)


def test_an_invoice_is_valid_en16931_under_the_margin_scheme() -> None:
    xml = facturx_xml.build(document())
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    text = xml.decode()
    assert "<ram:ID>urn:cen.eu:en16931:2017</ram:ID>" in text
    assert "<ram:TypeCode>380</ram:TypeCode>" in text
    assert text.count("<ram:CategoryCode>E</ram:CategoryCode>") == 3  # two lines and the breakdown
    assert "<ram:ExemptionReason>Régime particulier – Agences de voyages</ram:ExemptionReason>" in text
    assert "<ram:ExemptionReasonCode>VATEX-EU-D</ram:ExemptionReasonCode>" in text
    assert "<ram:GrandTotalAmount>1910.00</ram:GrandTotalAmount>" in text
    assert '<ram:TaxTotalAmount currencyID="EUR">0.00</ram:TaxTotalAmount>' in text
    assert "<ram:ChargeAmount>50.00</ram:ChargeAmount>" in text  # never a negative price (BR-27)


def test_a_credit_note_cites_its_invoice_and_the_output_is_deterministic() -> None:
    note = document(
        number="SOLEIL-AV-2026-000001",
        kind="credit_note",
        cited_number="SOLEIL-FA-2026-000001",
        cited_date=date(2026, 3, 2),
        reason="voyage annulé",
    )
    xml = facturx_xml.build(note)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert b"<ram:IssuerAssignedID>SOLEIL-FA-2026-000001</ram:IssuerAssignedID>" in xml
    assert xml == facturx_xml.build(note)


def test_a_broken_document_fails_the_xsd() -> None:
    xml = facturx_xml.build(document()).replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    try:
        valid = facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception:
        valid = False
    assert not valid
