{#- Per dossier and supplier: the dossier number as a matching key (upper case, no punctuation)
    and the supplier's service dates. A table with a trigram GIN index on the key, so the search
    for a mistyped dossier number in int_matching_candidates is an index lookup within the
    supplier, not a comparison with every dossier. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[
        {'columns': ['dossier_key gin_trgm_ops'], 'type': 'gin'},
        {'columns': ['supplier_code', 'dossier_number'], 'unique': true},
    ]
) }}

select
    dossier_number,
    supplier_code,
    upper(regexp_replace(dossier_number, '[^A-Za-z0-9]', '', 'g')) as dossier_key,
    min(start_date) as first_date,
    max(coalesce(end_date, start_date)) as last_date
from {{ ref('stg_app__services') }}
group by dossier_number, supplier_code
