{#- One row per dossier: the supplier side rolled up from supplier_billing_status, beside the
    client side (int_client__balances) and the Devis margin (int_margin__by_dossier). A view, so
    it moves with every decision and payment. -#}
with suppliers as (
    {{ billing_rollup_counts(ref('supplier_billing_status')) }}
)

select
    d.dossier_number::text as dossier_number,
    {{ billing_rollup_status('s') }} as supplier_status,
    coalesce(s.supplier_rows, 0)::integer as supplier_count,
    d.currency::text as currency,
    m.sale_total::numeric(14, 2) as sale_total,
    m.purchase_total::numeric(14, 2) as purchase_total,
    m.margin::numeric(14, 2) as margin,
    c.client_invoiced_amount::numeric(14, 2) as client_invoiced_amount,
    c.client_paid_amount::numeric(14, 2) as client_paid_amount,
    c.client_balance_due::numeric(14, 2) as client_balance_due,
    c.next_payment_due_date::date as next_payment_due_date,
    c.next_payment_amount::numeric(14, 2) as next_payment_amount
from {{ ref('stg_app__dossiers') }} as d
left join suppliers as s on s.dossier_number = d.dossier_number
left join {{ ref('int_client__balances') }} as c on c.dossier_number = d.dossier_number
left join {{ ref('int_margin__by_dossier') }} as m on m.dossier_number = d.dossier_number
