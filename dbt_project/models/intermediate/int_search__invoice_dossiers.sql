{#- The dossiers each supplier invoice is matched to (marts.supplier_invoice_line_matches) with the
    status of that (dossier, supplier) pair (int_search__supplier_status), as of this build, for the
    accountants' supplier invoice search: a page of it reads these rows, not the status of every
    dossier. Read with the live views for the invoices with a line changed since (a decision, a
    line registered in the app) and the dossiers changed since (app.mart_changes). Incremental by
    dossier (macros/billing_changes.sql): a pair appears or goes only when a line moves to or away
    from its dossier, which puts the dossier among those a build recomputes. -#}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_mart_changes_fingerprint') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{% set dossiers = billing_changed_dossiers() if is_incremental() else none %}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_billing_dossiers',
    on_schema_change='fail',
    indexes=[
        {'columns': ['supplier_code', 'invoice_number', 'dossier_number'], 'unique': true},
        {'columns': ['dossier_number']},
    ],
    post_hook="analyze {{ this }}"
) }}

with matched as (
    select distinct m.supplier_code, m.invoice_number, m.dossier_number
    from (
        {{ rows_of_dossiers(ref('supplier_invoice_line_matches'), ['supplier_code', 'invoice_number', 'dossier_number'], 'dossier_number', dossiers) }}
    ) as m
    where m.dossier_number is not null
)

select m.supplier_code, m.invoice_number, m.dossier_number, s.status
from matched as m
left join {{ ref('int_search__supplier_status') }} as s
    on s.dossier_number = m.dossier_number and s.supplier_code = m.supplier_code
