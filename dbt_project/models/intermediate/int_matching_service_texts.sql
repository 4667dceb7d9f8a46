{#- Per dossier and supplier: the labels and the supplier's own references of the dossier's services
    with that supplier, as written. What int_matching_candidates reads of the services' texts (the
    label a line's description may repeat, the reference rule 2 looks up) kept in one row per pair,
    so that int_matching_dirty_lines can tell, from its copy before a change
    (int_matching_before_service_texts), whether a change of a dossier touched what a line's
    candidate row read of it with that supplier: a supplement, a payment or a traveller's change
    touch none of it (docs/dbt.md, "Candidates touched by a change"). Incremental by dossier, as
    the other per-dossier tables (macros/matching_changes.sql). -#}
-- depends_on: {{ ref('int_matching_changes') }}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_changed_dossiers',
    on_schema_change='fail',
    indexes=[{'columns': ['dossier_number', 'supplier_code'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

select
    s.dossier_number,
    s.supplier_code,
    array_agg(distinct coalesce(s.label, '') order by coalesce(s.label, '')) as labels,
    array_agg(distinct coalesce(s.supplier_reference, '') order by coalesce(s.supplier_reference, ''))
        as supplier_references
from {{ ref('stg_app__services') }} as s
{% if is_incremental() %}
where {{ matching_changed('s.dossier_number') }}
{% endif %}
group by s.dossier_number, s.supplier_code
