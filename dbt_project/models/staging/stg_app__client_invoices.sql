-- Client invoices and credit notes as issued (app.client_invoices: immutable). total_amount is
-- printed positive on both kinds; signed_total_amount carries the kind's sign (a credit note takes
-- back what the client owes) so sums need no case of their own. The PDF bytes stay in the app.
select
    invoice_number,
    kind,
    brand,
    series,
    year,
    seq,
    issue_date,
    dossier_number,
    cited_invoice,
    reason,
    cast(currency as text) as currency,
    total_amount,
    case when kind = 'credit_note' then -total_amount else total_amount end as signed_total_amount,
    issued_at,
    issued_by
from {{ source('app', 'client_invoices') }}
