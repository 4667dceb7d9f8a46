{#- What each supplier should invoice us per dossier: the purchase totals of the Devis' active
    lines (booking lines of the current version, modifications, regulations, adjustments; a
    cancelled service counts only by its cancellation fee), per purchase currency. A view, so an
    agent's regulation or cancellation changes the expected amount at once. -#}
{{ config(schema='intermediate', materialized='view') }}

select
    l.dossier_number,
    l.supplier_code,
    l.purchase_currency as currency,
    sum(l.purchase_total)::numeric(14, 2) as expected_amount,
    count(*)::integer as active_lines
from {{ ref('dossier_price_lines') }} as l
inner join {{ ref('stg_app__dossiers') }} as d on d.dossier_number = l.dossier_number
-- Quotes and options commit us to nothing with suppliers; a cancelled dossier still owes its fees.
where l.is_active and d.status in ('confirmed', 'cancelled') and l.supplier_code is not null
group by l.dossier_number, l.supplier_code, l.purchase_currency
