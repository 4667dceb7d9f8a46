{#- The dossiers each supplier invoice is matched to (marts.supplier_invoice_line_matches) with the
    status of that (dossier, supplier) pair (int_search__supplier_status), as of this build, for the
    accountants' supplier invoice search: a page of it reads these rows, not the status of every
    dossier. Read with the live views for the invoices with a line changed since (a decision, a
    line registered in the app) and the dossiers changed since (app.mart_changes). -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[
        {'columns': ['supplier_code', 'invoice_number', 'dossier_number'], 'unique': true},
        {'columns': ['dossier_number']},
    ],
    post_hook="analyze {{ this }}"
) }}

with matched as (
    select distinct supplier_code, invoice_number, dossier_number
    from {{ ref('supplier_invoice_line_matches') }}
    where dossier_number is not null
)

select m.supplier_code, m.invoice_number, m.dossier_number, s.status
from matched as m
left join {{ ref('int_search__supplier_status') }} as s
    on s.dossier_number = m.dossier_number and s.supplier_code = m.supplier_code
