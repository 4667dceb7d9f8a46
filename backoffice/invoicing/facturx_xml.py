"""The Factur-X XML (UN/CEFACT CII D16B, EN 16931 profile) of an invoice or credit note.

Under the margin scheme every line and the single VAT breakdown are in category E with the
exemption reason "Régime particulier – Agences de voyages" (code VATEX-EU-D), at 0 % and with
0.00 of VAT: the totals are VAT included, no VAT amount is shown. A credit note (type code 381)
carries positive amounts, as printed, and cites the invoice it credits (BT-25/BT-26). A line
taken back (a negative amount) has a negative quantity and a positive price, because EN 16931
forbids a negative item price (BR-27).

The output is deterministic: the same document always gives the same bytes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from backoffice.invoicing.document import (
    MARGIN_SCHEME_MENTION,
    VAT_CATEGORY,
    VAT_EXEMPTION_CODE,
    InvoiceDocument,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
EN16931 = "urn:cen.eu:en16931:2017"
TYPE_CODES = {"invoice": "380", "credit_note": "381"}
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the French SIREN
UNIT = "C62"  # "one": a unit without a measure


def _el(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _date(parent: etree._Element, tag: str, value: date, ns: str = UDT) -> None:
    holder = _el(parent, RAM, tag)
    _el(holder, ns, "DateTimeString", value.strftime("%Y%m%d"), format="102")


def _address(parent: etree._Element, party: dict) -> None:
    address = _el(parent, RAM, "PostalTradeAddress")
    if party.get("postal_code"):
        _el(address, RAM, "PostcodeCode", party["postal_code"])
    if party.get("address_line"):
        _el(address, RAM, "LineOne", party["address_line"])
    if party.get("city"):
        _el(address, RAM, "CityName", party["city"])
    _el(address, RAM, "CountryID", party["country"])


def _tax(parent: etree._Element, basis: Decimal | None = None) -> None:
    """A VAT breakdown (header, with its amounts) or a line's VAT category (basis None)."""
    tax = _el(parent, RAM, "ApplicableTradeTax")
    if basis is not None:
        _el(tax, RAM, "CalculatedAmount", "0.00")
    _el(tax, RAM, "TypeCode", "VAT")
    if basis is not None:
        _el(tax, RAM, "ExemptionReason", MARGIN_SCHEME_MENTION)
        _el(tax, RAM, "BasisAmount", _amount(basis))
    _el(tax, RAM, "CategoryCode", VAT_CATEGORY)
    if basis is not None:
        _el(tax, RAM, "ExemptionReasonCode", VAT_EXEMPTION_CODE)
    _el(tax, RAM, "RateApplicablePercent", "0")


def build(document: InvoiceDocument) -> bytes:
    """The CII XML of `document`, UTF-8 with its declaration."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, RSM, "ExchangedDocumentContext")
    _el(_el(context, RAM, "GuidelineSpecifiedDocumentContextParameter"), RAM, "ID", EN16931)

    head = _el(root, RSM, "ExchangedDocument")
    _el(head, RAM, "ID", document.number)
    _el(head, RAM, "TypeCode", TYPE_CODES[document.kind])
    _date(head, "IssueDateTime", document.issue_date)
    _el(_el(head, RAM, "IncludedNote"), RAM, "Content", MARGIN_SCHEME_MENTION)
    if document.reason:
        _el(_el(head, RAM, "IncludedNote"), RAM, "Content", document.reason)

    trade = _el(root, RSM, "SupplyChainTradeTransaction")
    for line in document.lines:
        item = _el(trade, RAM, "IncludedSupplyChainTradeLineItem")
        _el(_el(item, RAM, "AssociatedDocumentLineDocument"), RAM, "LineID", str(line.number))
        _el(_el(item, RAM, "SpecifiedTradeProduct"), RAM, "Name", line.label)
        sign = -1 if line.unit_amount < 0 else 1
        price = _el(_el(item, RAM, "SpecifiedLineTradeAgreement"), RAM, "NetPriceProductTradePrice")
        _el(price, RAM, "ChargeAmount", _amount(sign * line.unit_amount))
        delivery = _el(item, RAM, "SpecifiedLineTradeDelivery")
        _el(delivery, RAM, "BilledQuantity", str(sign * line.quantity), unitCode=UNIT)
        settlement = _el(item, RAM, "SpecifiedLineTradeSettlement")
        _tax(settlement)
        summation = _el(settlement, RAM, "SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, RAM, "LineTotalAmount", _amount(line.amount))

    agreement = _el(trade, RAM, "ApplicableHeaderTradeAgreement")
    _el(agreement, RAM, "BuyerReference", document.dossier_number)
    seller, buyer = document.seller, document.buyer
    seller_party = _el(agreement, RAM, "SellerTradeParty")
    _el(seller_party, RAM, "Name", seller["legal_name"])
    _el(_el(seller_party, RAM, "SpecifiedLegalOrganization"), RAM, "ID", seller["siren"], schemeID=SIREN_SCHEME)
    _address(seller_party, seller)
    _el(_el(seller_party, RAM, "SpecifiedTaxRegistration"), RAM, "ID", seller["vat_number"], schemeID="VA")
    buyer_party = _el(agreement, RAM, "BuyerTradeParty")
    _el(buyer_party, RAM, "Name", buyer["name"])
    _address(buyer_party, buyer)
    if buyer.get("email"):
        _el(_el(buyer_party, RAM, "URIUniversalCommunication"), RAM, "URIID", buyer["email"], schemeID="EM")

    _el(trade, RAM, "ApplicableHeaderTradeDelivery")

    settlement = _el(trade, RAM, "ApplicableHeaderTradeSettlement")
    _el(settlement, RAM, "InvoiceCurrencyCode", document.currency)
    total = document.total
    _tax(settlement, basis=total)
    if not document.is_credit_note:
        terms = _el(settlement, RAM, "SpecifiedTradePaymentTerms")
        _el(terms, RAM, "Description", f"Payable per the payment schedule of dossier {document.dossier_number}")
    summation = _el(settlement, RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, RAM, "LineTotalAmount", _amount(total))
    _el(summation, RAM, "TaxBasisTotalAmount", _amount(total))
    _el(summation, RAM, "TaxTotalAmount", "0.00", currencyID=document.currency)
    _el(summation, RAM, "GrandTotalAmount", _amount(total))
    _el(summation, RAM, "DuePayableAmount", _amount(total))
    if document.cited_number is not None:
        cited = _el(settlement, RAM, "InvoiceReferencedDocument")
        _el(cited, RAM, "IssuerAssignedID", document.cited_number)
        if document.cited_date is not None:
            _date(cited, "FormattedIssueDateTime", document.cited_date, ns=QDT)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
