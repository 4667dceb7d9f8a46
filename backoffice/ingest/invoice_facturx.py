"""Supplier invoices as Factur-X PDFs: the embedded CII XML (EN 16931 or BASIC profile) is read.

Mapped like UBL: seller, document ID, lines, and per line the reference from, in order, the
buyer's order line, the line's object reference (BT-128), the line note, the BuyerReference.
"""

from __future__ import annotations

import logging

import facturx

from backoffice.ingest.invoice_contract import SourceLine, incl_from_excl, percent_to_rate
from backoffice.ingest.invoice_xml import CREDIT_NOTE_TYPE_CODES, SupplierDirectory, Unparseable, first, parse_xml, text

ROOT = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
# factur-x logs every attachment it skips; our rejection says what matters.
logging.getLogger("factur-x").setLevel(logging.ERROR)


def parse_facturx(data: bytes, suppliers: SupplierDirectory) -> list[SourceLine]:
    try:
        # No XSD check here: the contract's own checks name the field at fault, the XSD would not.
        _, xml = facturx.get_facturx_xml_from_pdf(data, check_xsd=False)
    except Exception as exc:  # pypdf raises many types on a damaged or hostile file
        raise Unparseable(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    if not xml:
        raise Unparseable("PDF without embedded Factur-X XML (factur-x.xml or zugferd-invoice.xml)")
    return parse_cii(xml, suppliers)


def parse_cii(data: bytes, suppliers: SupplierDirectory) -> list[SourceLine]:
    """The CII document's lines as contract fields."""
    root = parse_xml(data)
    if root.tag != ROOT:
        raise Unparseable(f"not a CII CrossIndustryInvoice: the root element is {root.tag}")
    number = text(root, "rsm:ExchangedDocument/ram:ID", NS)
    trade = root.find("rsm:SupplyChainTradeTransaction", NS)
    agreement = None if trade is None else trade.find("ram:ApplicableHeaderTradeAgreement", NS)
    settlement = None if trade is None else trade.find("ram:ApplicableHeaderTradeSettlement", NS)
    seller = None if agreement is None else agreement.find("ram:SellerTradeParty", NS)
    supplier = suppliers.resolve(
        [
            *(
                text(reg, "ram:ID", NS)
                for reg in ([] if seller is None else seller.findall("ram:SpecifiedTaxRegistration", NS))
            ),
            text(seller, "ram:SpecifiedLegalOrganization/ram:ID", NS),
            text(seller, "ram:ID", NS),
            text(seller, "ram:GlobalID", NS),
        ],
        [text(seller, "ram:Name", NS), text(seller, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName", NS)],
        number,
    )
    type_code = text(root, "rsm:ExchangedDocument/ram:TypeCode", NS)
    header = {
        "supplier_code": supplier,
        "invoice_number": number,
        "kind": "credit_note" if type_code in CREDIT_NOTE_TYPE_CODES else "invoice",
        "invoice_date": _date(text(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", NS)),
        "due_date": _date(
            text(settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", NS)
        ),
        "currency": text(settlement, "ram:InvoiceCurrencyCode", NS),
    }
    buyer_reference = text(agreement, "ram:BuyerReference", NS)
    lines = []
    items = [] if trade is None else trade.findall("ram:IncludedSupplyChainTradeLineItem", NS)
    for position, item in enumerate(items, start=1):
        line_settlement = item.find("ram:SpecifiedLineTradeSettlement", NS)
        excl = text(line_settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", NS)
        rate = percent_to_rate(text(line_settlement, "ram:ApplicableTradeTax/ram:RateApplicablePercent", NS))
        fields = header | {
            "line_number": text(item, "ram:AssociatedDocumentLineDocument/ram:LineID", NS),
            "reference": first(
                text(item, "ram:SpecifiedLineTradeAgreement/ram:BuyerOrderReferencedDocument/ram:LineID", NS),
                text(line_settlement, "ram:AdditionalReferencedDocument/ram:IssuerAssignedID", NS),
                text(item, "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content", NS),
                buyer_reference,
            ),
            "description": text(item, "ram:SpecifiedTradeProduct/ram:Name", NS),
            "amount_excl_tax": excl,
            "vat_rate": rate,
            "amount_incl_tax": incl_from_excl(excl, rate),
        }
        lines.append(SourceLine(position, fields))
    if not lines:
        raise Unparseable("no IncludedSupplyChainTradeLineItem in the document", number)
    return lines


def _date(value: str | None) -> str | None:
    """CII dates are format 102 (YYYYMMDD); anything else is passed on for the checks to report."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value
