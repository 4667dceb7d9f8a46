{#- Per dossier and supplier, each traveller's name as int_matching_candidates reads it (lower case,
    no accent, words of letters only) with the first word of the last and of the first name, and
    the dossier's dates with the supplier (int_matching_dossier_keys). A table indexed on
    (supplier, first word of the last name, booking day), so a name in an invoice reference is an
    index lookup among that supplier's dossiers the invoice date fits, newest booking first,
    instead of a join with every dossier holding that common name (docs/dbt.md); on (supplier,
    both first words) for full names; on the dossier for the names of candidates other clues found.

    is_first_of_name: one row per (supplier, dossier, last name), the one the last-name lookup
    reads, so a family of four Duponts counts once. Last names whose first word has fewer than two
    letters are left out: no word of a reference is looked up under them. Names are normalised once
    per traveller (materialised), then copied to each supplier of the dossier. Incremental by
    dossier: a build recomputes the dossiers whose travellers, services or dossier row changed
    (macros/matching_changes.sql); every row depends on its dossier's only. Analysed once built,
    as int_matching_dossier_keys is (int_matching_candidates is planned on its statistics). -#}
-- depends_on: {{ ref('int_matching_changes') }}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_changed_dossiers',
    on_schema_change='fail',
    indexes=[
        {'columns': ['supplier_code', 'last_token', 'is_first_of_name', 'booked_on', 'dossier_number']},
        {'columns': ['supplier_code', 'last_token', 'first_token']},
        {'columns': ['dossier_number', 'supplier_code']},
    ],
    post_hook="analyze {{ this }}"
) }}

with normalised as materialized (
    select
        dossier_number,
        trim(regexp_replace(app.normalise_text(last_name), '[^a-z]+', ' ', 'g')) as last_name,
        trim(regexp_replace(app.normalise_text(first_name), '[^a-z]+', ' ', 'g')) as first_name
    from {{ ref('stg_app__travellers') }}
    {% if is_incremental() %}
    where {{ matching_changed('dossier_number') }}
    {% endif %}
),

travellers as materialized (
    select
        dossier_number,
        last_name,
        first_name,
        split_part(last_name, ' ', 1) as last_token,
        split_part(first_name, ' ', 1) as first_token,
        row_number() over (partition by dossier_number, last_name order by first_name) = 1 as is_first_of_name
    from normalised
    where {{ dbt.length("split_part(last_name, ' ', 1)") }} >= 2
)

select
    k.supplier_code,
    t.dossier_number,
    t.last_name,
    t.first_name,
    t.last_token,
    t.first_token,
    k.booked_on,
    k.last_date,
    t.is_first_of_name
from travellers as t
inner join {{ ref('int_matching_dossier_keys') }} as k on k.dossier_number = t.dossier_number
