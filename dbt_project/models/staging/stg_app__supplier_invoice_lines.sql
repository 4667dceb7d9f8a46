-- A credit note's amounts are delivered positive; its kind gives the sign (landing contract).
-- signed_amount_incl_tax carries that sign so sums need no case of their own.
select
    l.supplier_code,
    l.invoice_number,
    l.line_number,
    i.kind,
    i.invoice_date,
    i.due_date,
    i.currency,
    l.reference,
    l.description,
    l.amount_excl_tax,
    l.vat_rate,
    l.amount_incl_tax,
    case when i.kind = 'credit_note' then -l.amount_incl_tax else l.amount_incl_tax end as signed_amount_incl_tax
from {{ source('app', 'supplier_invoice_lines') }} as l
join {{ source('app', 'supplier_invoices') }} as i using (supplier_code, invoice_number)
