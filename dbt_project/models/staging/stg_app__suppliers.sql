select
    supplier_code,
    name as supplier_name,
    country,
    vat_number,
    iban,
    currency,
    payment_terms_days,
    ledger_account
from {{ source('app', 'suppliers') }}
