{#- marts.dossier_billing_status's supplier_status of every dossier as of this build, rolled up
    from int_search__supplier_status by the view's own rule (macro billing_rollup_*), for the
    accountants' client document search; read with the live view for the dossiers changed since,
    as int_search__supplier_status is. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[{'columns': ['dossier_number'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

with suppliers as (
    {{ billing_rollup_counts(ref('int_search__supplier_status')) }}
)

select d.dossier_number, {{ billing_rollup_status('s') }} as supplier_status
from {{ ref('stg_app__dossiers') }} as d
left join suppliers as s on s.dossier_number = d.dossier_number
