"""Supplier invoices as UBL 2.1 `Invoice` or `CreditNote` documents (EN 16931).

A UBL line carries its net amount and VAT rate; the amount tax included is the line's own tax
amount added when it gives one, else computed (rounded half up to the cent), as the supplier does.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from backoffice.ingest.invoice_contract import SourceLine, incl_from_excl, percent_to_rate
from backoffice.ingest.invoice_xml import CREDIT_NOTE_TYPE_CODES, SupplierDirectory, Unparseable, first, parse_xml, text

ROOTS = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": ("InvoiceLine", "invoice"),
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": ("CreditNoteLine", "credit_note"),
}
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def parse_ubl(data: bytes, suppliers: SupplierDirectory) -> list[SourceLine]:
    """The document's lines as contract fields; Unparseable when it is not a UBL invoice we can place."""
    root = parse_xml(data)
    if root.tag not in ROOTS:
        raise Unparseable(f"not a UBL 2.1 Invoice or CreditNote: the root element is {root.tag}")
    line_tag, kind = ROOTS[root.tag]
    if text(root, "cbc:InvoiceTypeCode", NS) in CREDIT_NOTE_TYPE_CODES:
        kind = "credit_note"
    number = text(root, "cbc:ID", NS)
    party = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    supplier = suppliers.resolve(
        [
            text(party, "cac:PartyTaxScheme/cbc:CompanyID", NS),
            text(party, "cac:PartyLegalEntity/cbc:CompanyID", NS),
            text(party, "cbc:EndpointID", NS),
            *(
                text(node, "cbc:ID", NS)
                for node in ([] if party is None else party.findall("cac:PartyIdentification", NS))
            ),
        ],
        [text(party, "cac:PartyName/cbc:Name", NS), text(party, "cac:PartyLegalEntity/cbc:RegistrationName", NS)],
        number,
    )
    header = {
        "supplier_code": supplier,
        "invoice_number": number,
        "kind": kind,
        "invoice_date": text(root, "cbc:IssueDate", NS),
        "due_date": first(text(root, "cbc:DueDate", NS), text(root, "cac:PaymentMeans/cbc:PaymentDueDate", NS)),
        "currency": text(root, "cbc:DocumentCurrencyCode", NS),
    }
    buyer_reference = text(root, "cbc:BuyerReference", NS)
    lines = []
    for position, node in enumerate(root.findall(f"cac:{line_tag}", NS), start=1):
        excl = text(node, "cbc:LineExtensionAmount", NS)
        rate = percent_to_rate(text(node, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", NS))
        tax = text(node, "cac:TaxTotal/cbc:TaxAmount", NS)
        fields = header | {
            "line_number": text(node, "cbc:ID", NS),
            "reference": first(
                text(node, "cac:OrderLineReference/cbc:LineID", NS),
                text(node, "cac:DocumentReference/cbc:ID", NS),
                text(node, "cbc:Note", NS),
                buyer_reference,
            ),
            "description": first(text(node, "cac:Item/cbc:Name", NS), text(node, "cac:Item/cbc:Description", NS)),
            "amount_excl_tax": excl,
            "vat_rate": rate,
            "amount_incl_tax": incl_from_excl(excl, rate) if tax is None else _plus(excl, tax),
        }
        lines.append(SourceLine(position, fields))
    if not lines:
        raise Unparseable(f"no {line_tag} in the document", number)
    return lines


def _plus(excl: str | None, tax: str) -> str | None:
    """Net plus the line's tax amount, as written (no rounding: both are amounts already)."""
    try:
        return str(Decimal(excl or "") + Decimal(tax))
    except InvalidOperation:
        return excl
