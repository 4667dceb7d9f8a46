select
    supplier_code,
    invoice_number,
    kind,
    invoice_date,
    due_date,
    currency,
    origin,
    received_at
from {{ source('app', 'supplier_invoices') }}
