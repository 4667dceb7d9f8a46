{#- Per supplier invoice, as of this build: its matched dossiers in number order with their billing
    statuses, how many, and how many per status (int_search__invoice_dossiers). The accountants'
    supplier invoice page reads a row as is for an invoice none of whose dossiers changed since
    the build, and recounts the others from the pairs: a page of 500 invoices of ~1,500 dossiers
    each is then 500 index lookups, not 759,000 pairs aggregated. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[{'columns': ['supplier_code', 'invoice_number'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

select
    supplier_code,
    invoice_number,
    array_agg(dossier_number order by dossier_number) as dossiers,
    array_agg(status order by dossier_number) as statuses,
    count(*) as dossier_count,
    {%- for status in ['not_invoiced', 'partially_invoiced', 'invoiced', 'over_invoiced'] %}
    count(*) filter (where status = '{{ status }}') as {{ status }}_count{{ ',' if not loop.last }}
    {%- endfor %}
from {{ ref('int_search__invoice_dossiers') }}
group by supplier_code, invoice_number
