{#- marts.dossier_billing_status's supplier_status of every dossier as of this build, rolled up
    from int_search__supplier_status by the view's own rule (macro billing_rollup_*), for the
    accountants' client document search; read with the live view for the dossiers changed since,
    as int_search__supplier_status is, and incremental by dossier as it is. -#}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_mart_changes_fingerprint') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{% set dossiers = billing_changed_dossiers() if is_incremental() else none %}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_billing_dossiers',
    on_schema_change='fail',
    indexes=[{'columns': ['dossier_number'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

with suppliers as (
    {{ billing_rollup_counts(
        "(" ~ rows_of_dossiers(ref('int_search__supplier_status'), ['dossier_number', 'status'], 'dossier_number', dossiers)
        ~ ") as changed"
    ) }}
)

select d.dossier_number, {{ billing_rollup_status('s') }} as supplier_status
from ({{ rows_of_dossiers(ref('stg_app__dossiers'), ['dossier_number'], 'dossier_number', dossiers) }}) as d
left join suppliers as s on s.dossier_number = d.dossier_number
