"""UBL 2.1 Invoice / CreditNote rendering (EN 16931 customisation), from plain strings.

String templates rather than an XML library: a few hundred documents a day, each with up to a
few hundred lines, must not dominate generation time. The output passes the UBL 2.1 XSD.
"""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from .amounts import fmt
from .catalog import BUYER_ACCOUNT, BUYER_NAME, BUYER_VAT
from .supplier_invoices import InvoiceDoc

NS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
REFERENCE_IN_DOCUMENT = ("dossier_number", "supplier_reference", "typo")


def percent(rate: str) -> str:
    """'0.10' -> '10', '0.055' -> '5.5'."""
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f}"


def tax_category(rate: str) -> str:
    return "S" if Decimal(rate) else "Z"


def _party(name: str, country: str, vat: str, ident: str) -> str:
    return (
        f"<cac:Party><cac:PartyIdentification><cbc:ID>{escape(ident)}</cbc:ID></cac:PartyIdentification>"
        f"<cac:PartyName><cbc:Name>{escape(name)}</cbc:Name></cac:PartyName>"
        f"<cac:PostalAddress><cac:Country><cbc:IdentificationCode>{country}</cbc:IdentificationCode>"
        f"</cac:Country></cac:PostalAddress>"
        f"<cac:PartyTaxScheme><cbc:CompanyID>{escape(vat)}</cbc:CompanyID>"
        f"<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
        f"<cac:PartyLegalEntity><cbc:RegistrationName>{escape(name)}</cbc:RegistrationName>"
        f"</cac:PartyLegalEntity></cac:Party>"
    )


def render_ubl(doc: InvoiceDoc) -> bytes:
    credit = doc.kind == "credit_note"
    root = "CreditNote" if credit else "Invoice"
    line_tag = "CreditNoteLine" if credit else "InvoiceLine"
    qty_tag = "CreditedQuantity" if credit else "InvoicedQuantity"
    cur = doc.supplier.currency
    s = doc.supplier
    excl = sum(it.excl for it in doc.lines)
    incl = sum(it.incl for it in doc.lines)
    rate = doc.lines[0].vat_rate
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{root} xmlns="{NS[root]}" xmlns:cac="{CAC}" xmlns:cbc="{CBC}">',
        "<cbc:UBLVersionID>2.1</cbc:UBLVersionID>",
        "<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>",
        f"<cbc:ID>{escape(doc.number)}</cbc:ID><cbc:IssueDate>{doc.invoice_date}</cbc:IssueDate>",
    ]
    if credit:
        parts.append("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>")
    else:
        parts.append(f"<cbc:DueDate>{doc.due_date}</cbc:DueDate><cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>")
    parts += [
        f"<cbc:DocumentCurrencyCode>{cur}</cbc:DocumentCurrencyCode>",
        f"<cac:AccountingSupplierParty>{_party(s.name, s.country, s.vat_number, s.code)}</cac:AccountingSupplierParty>",
        f"<cac:AccountingCustomerParty>{_party(BUYER_NAME, 'FR', BUYER_VAT, BUYER_ACCOUNT)}"
        "</cac:AccountingCustomerParty>",
    ]
    if credit:
        parts.append(
            f"<cac:PaymentMeans><cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>"
            f"<cbc:PaymentDueDate>{doc.due_date}</cbc:PaymentDueDate></cac:PaymentMeans>"
        )
    category = (
        f"<cac:TaxCategory><cbc:ID>{tax_category(rate)}</cbc:ID><cbc:Percent>{percent(rate)}</cbc:Percent>"
        f"<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory>"
    )
    parts += [
        f'<cac:TaxTotal><cbc:TaxAmount currencyID="{cur}">{fmt(incl - excl)}</cbc:TaxAmount>',
        f'<cac:TaxSubtotal><cbc:TaxableAmount currencyID="{cur}">{fmt(excl)}</cbc:TaxableAmount>',
        f'<cbc:TaxAmount currencyID="{cur}">{fmt(incl - excl)}</cbc:TaxAmount>{category}</cac:TaxSubtotal>',
        "</cac:TaxTotal>",
        f'<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="{cur}">{fmt(excl)}</cbc:LineExtensionAmount>',
        f'<cbc:TaxExclusiveAmount currencyID="{cur}">{fmt(excl)}</cbc:TaxExclusiveAmount>',
        f'<cbc:TaxInclusiveAmount currencyID="{cur}">{fmt(incl)}</cbc:TaxInclusiveAmount>',
        f'<cbc:PayableAmount currencyID="{cur}">{fmt(incl)}</cbc:PayableAmount></cac:LegalMonetaryTotal>',
    ]
    for n, it in enumerate(doc.lines, start=1):
        note = ""
        doc_ref = ""
        if it.reference and it.reference_kind in REFERENCE_IN_DOCUMENT:
            # An object identifier (BT-128): what suppliers use for our booking number.
            doc_ref = (
                f"<cac:DocumentReference><cbc:ID>{escape(it.reference)}</cbc:ID>"
                "<cbc:DocumentTypeCode>130</cbc:DocumentTypeCode></cac:DocumentReference>"
            )
        elif it.reference:
            note = f"<cbc:Note>{escape(it.reference)}</cbc:Note>"
        parts.append(
            f"<cac:{line_tag}><cbc:ID>{n}</cbc:ID>{note}"
            f'<cbc:{qty_tag} unitCode="C62">1</cbc:{qty_tag}>'
            f'<cbc:LineExtensionAmount currencyID="{cur}">{fmt(it.excl)}</cbc:LineExtensionAmount>{doc_ref}'
            f"<cac:Item><cbc:Name>{escape(it.description)}</cbc:Name>"
            f"<cac:ClassifiedTaxCategory><cbc:ID>{tax_category(it.vat_rate)}</cbc:ID>"
            f"<cbc:Percent>{percent(it.vat_rate)}</cbc:Percent>"
            f"<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>"
            f'<cac:Price><cbc:PriceAmount currencyID="{cur}">{fmt(it.excl)}</cbc:PriceAmount></cac:Price>'
            f"</cac:{line_tag}>"
        )
    parts.append(f"</{root}>\n")
    return "".join(parts).encode("utf-8")
