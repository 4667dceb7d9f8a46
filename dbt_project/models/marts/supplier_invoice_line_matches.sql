{#- The dossier of each supplier invoice line, as outputs.md publishes it. A view, so a decision
    shows at once (int_invoice_lines__matched reads the decisions live). -#}
select
    supplier_code::text as supplier_code,
    invoice_number::text as invoice_number,
    line_number::integer as line_number,
    kind::text as kind,
    amount_incl_tax::numeric(14, 2) as amount_incl_tax,
    currency::text as currency,
    dossier_number::text as dossier_number,
    match_method::text as match_method,
    confidence::numeric(5, 4) as confidence,
    state::text as state
from {{ ref('int_invoice_lines__matched') }}
