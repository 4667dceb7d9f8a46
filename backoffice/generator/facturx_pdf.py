"""Factur-X PDFs: a one-page readable invoice with its CII XML (EN 16931 profile) embedded."""

from __future__ import annotations

import io
from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock
from xml.sax.saxutils import escape

import facturx
from facturx import facturx as facturx_impl
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from .amounts import fmt
from .catalog import BUYER_ACCOUNT, BUYER_NAME, BUYER_VAT
from .supplier_invoices import InvoiceDoc
from .ubl import percent, tax_category

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
REFERENCE_IN_DOCUMENT = ("dossier_number", "supplier_reference", "typo")


def _compact(iso: str) -> str:
    return iso.replace("-", "")


def render_cii(doc: InvoiceDoc) -> bytes:
    s = doc.supplier
    cur = s.currency
    rate = doc.lines[0].vat_rate
    excl = sum(it.excl for it in doc.lines)
    incl = sum(it.incl for it in doc.lines)
    cat = tax_category(rate)
    pct = percent(rate)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<rsm:CrossIndustryInvoice xmlns:rsm="{RSM}" xmlns:ram="{RAM}" xmlns:udt="{UDT}" xmlns:qdt="{QDT}">',
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
        "<ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
        "</rsm:ExchangedDocumentContext>",
        f"<rsm:ExchangedDocument><ram:ID>{escape(doc.number)}</ram:ID>"
        f"<ram:TypeCode>{'381' if doc.kind == 'credit_note' else '380'}</ram:TypeCode>"
        f'<ram:IssueDateTime><udt:DateTimeString format="102">{_compact(doc.invoice_date)}</udt:DateTimeString>'
        "</ram:IssueDateTime></rsm:ExchangedDocument>",
        "<rsm:SupplyChainTradeTransaction>",
    ]
    for n, it in enumerate(doc.lines, start=1):
        note = ""
        obj_ref = ""
        if it.reference and it.reference_kind in REFERENCE_IN_DOCUMENT:
            obj_ref = (
                f"<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>{escape(it.reference)}"
                "</ram:IssuerAssignedID><ram:TypeCode>130</ram:TypeCode></ram:AdditionalReferencedDocument>"
            )
        elif it.reference:
            note = f"<ram:IncludedNote><ram:Content>{escape(it.reference)}</ram:Content></ram:IncludedNote>"
        parts.append(
            f"<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{n}</ram:LineID>"
            f"{note}</ram:AssociatedDocumentLineDocument>"
            f"<ram:SpecifiedTradeProduct><ram:Name>{escape(it.description)}</ram:Name></ram:SpecifiedTradeProduct>"
            f"<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{fmt(it.excl)}"
            "</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
            '<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity>'
            "</ram:SpecifiedLineTradeDelivery>"
            f"<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode>"
            f"<ram:CategoryCode>{tax_category(it.vat_rate)}</ram:CategoryCode>"
            f"<ram:RateApplicablePercent>{percent(it.vat_rate)}</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
            f"<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{fmt(it.excl)}"
            f"</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>{obj_ref}"
            "</ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>"
        )
    parts += [
        "<ram:ApplicableHeaderTradeAgreement>",
        f"<ram:SellerTradeParty><ram:ID>{s.code}</ram:ID><ram:Name>{escape(s.name)}</ram:Name>"
        f"<ram:PostalTradeAddress><ram:CountryID>{s.country}</ram:CountryID></ram:PostalTradeAddress>"
        f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{escape(s.vat_number)}</ram:ID>'
        "</ram:SpecifiedTaxRegistration></ram:SellerTradeParty>",
        f"<ram:BuyerTradeParty><ram:ID>{BUYER_ACCOUNT}</ram:ID><ram:Name>{escape(BUYER_NAME)}</ram:Name>"
        "<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
        f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{BUYER_VAT}</ram:ID></ram:SpecifiedTaxRegistration>'
        "</ram:BuyerTradeParty>",
        "</ram:ApplicableHeaderTradeAgreement>",
        "<ram:ApplicableHeaderTradeDelivery/>",
        f"<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>{cur}</ram:InvoiceCurrencyCode>",
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{fmt(incl - excl)}</ram:CalculatedAmount>"
        f"<ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{fmt(excl)}</ram:BasisAmount>"
        f"<ram:CategoryCode>{cat}</ram:CategoryCode><ram:RateApplicablePercent>{pct}</ram:RateApplicablePercent>"
        "</ram:ApplicableTradeTax>",
        "<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>"
        f'<udt:DateTimeString format="102">{_compact(doc.due_date)}</udt:DateTimeString>'
        "</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>",
        f"<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{fmt(excl)}</ram:LineTotalAmount>"
        f"<ram:TaxBasisTotalAmount>{fmt(excl)}</ram:TaxBasisTotalAmount>"
        f'<ram:TaxTotalAmount currencyID="{cur}">{fmt(incl - excl)}</ram:TaxTotalAmount>'
        f"<ram:GrandTotalAmount>{fmt(incl)}</ram:GrandTotalAmount>"
        f"<ram:DuePayableAmount>{fmt(incl)}</ram:DuePayableAmount>"
        "</ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        "</ram:ApplicableHeaderTradeSettlement>",
        "</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>\n",
    ]
    return "".join(parts).encode("utf-8")


def _pdf_text(text: str) -> str:
    """PDF string literal with the standard fonts: ASCII only, parentheses escaped."""
    folded = text.encode("ascii", "replace").decode("ascii")
    return folded.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _base_pdf(doc: InvoiceDoc) -> bytes:
    title = "AVOIR" if doc.kind == "credit_note" else "FACTURE"
    rows = [
        f"{doc.supplier.name} - {title} {doc.number}",
        f"Date {doc.invoice_date}   Echeance {doc.due_date}   Devise {doc.supplier.currency}",
        f"Client: {BUYER_NAME}",
        "",
    ]
    rows += [
        f"{n:>3}  {it.reference[:24]:<24} {it.description[:50]:<50} {fmt(it.incl):>12}"
        for n, it in enumerate(doc.lines[:60], start=1)
    ]
    if len(doc.lines) > 60:
        rows.append(f"... {len(doc.lines) - 60} autres lignes (voir XML joint)")
    rows.append(f"TOTAL TTC {fmt(sum(it.incl for it in doc.lines))}")
    content = "BT /F1 8 Tf 40 800 Td 11 TL " + " ".join(f"({_pdf_text(r)}) '" for r in rows) + " ET"
    writer = PdfWriter()
    page = writer.add_blank_page(width=595, height=842)
    stream = DecodedStreamObject()
    stream.set_data(content.encode("ascii"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Courier"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@contextmanager
def _frozen_pdf_clock(when: datetime):
    """factur-x stamps PDFs with the current time; pin it so that files are reproducible."""

    def pdf_stamp(date=None):
        return when.strftime("D:%Y%m%d%H%M%S+00'00'")

    with (
        mock.patch.object(facturx_impl, "_get_pdf_timestamp", pdf_stamp),
        mock.patch.object(facturx_impl, "_get_metadata_timestamp", lambda: when.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
    ):
        yield


def render_facturx(doc: InvoiceDoc) -> bytes:
    xml = render_cii(doc)
    when = datetime.fromisoformat(doc.invoice_date).replace(hour=9, tzinfo=UTC)
    metadata = {
        "author": doc.supplier.name,
        "keywords": "Factur-X",
        "title": f"{doc.supplier.name}: {doc.number}",
        "subject": f"Factur-X {doc.kind} {doc.number} dated {doc.invoice_date}",
    }
    with _frozen_pdf_clock(when):
        return facturx.generate_from_binary(
            _base_pdf(doc), xml, flavor="factur-x", level="en16931", check_xsd=False, pdf_metadata=metadata
        )
