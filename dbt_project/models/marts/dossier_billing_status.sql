{#- One row per dossier: the supplier side rolled up from supplier_billing_status, beside the
    client side (int_client__balances) and the Devis margin (int_margin__by_dossier). A view, so
    it moves with every decision and payment. -#}
with suppliers as (
    select
        dossier_number,
        count(*) as supplier_rows,
        count(*) filter (where status = 'over_invoiced') as over_rows,
        count(*) filter (where status = 'invoiced') as invoiced_rows,
        count(*) filter (where status = 'not_invoiced') as not_invoiced_rows
    from {{ ref('supplier_billing_status') }}
    group by dossier_number
)

select
    d.dossier_number::text as dossier_number,
    -- outputs.md roll-up, in its order. A dossier with no supplier row (a quote, or nothing
    -- bought) has nothing outstanding: every one of its (zero) suppliers is invoiced.
    (case
        when s.over_rows > 0 then 'over_invoiced'
        when coalesce(s.invoiced_rows = s.supplier_rows, true) then 'invoiced'
        when s.not_invoiced_rows = s.supplier_rows then 'not_invoiced'
        else 'partially_invoiced'
    end)::text as supplier_status,
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
