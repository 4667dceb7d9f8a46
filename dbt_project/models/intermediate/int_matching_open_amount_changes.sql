{#- The rows of int_matching_open_amounts that differ from what int_matching_candidates was last
    computed from (int_matching_seen_open_amounts): `now` as they are, `before` as they were. What
    is still open moves with the lines the rules match, so also for dossiers no change log names
    (a new invoice line closing a dossier's amount): only a comparison of the whole table finds
    them. The incremental candidates recompute the lines that had one of these dossiers as a
    candidate or carry one of the `now` amounts. Empty when the build recomputes every line. -#}
-- depends_on: {{ ref('int_matching_changes') }}
{{ config(schema='intermediate', materialized='table') }}

{% if matching_candidates_must_rebuild() %}
select null::text as side, *
from {{ ref('int_matching_open_amounts') }}
where false
{% else %}
{% set seen = matching_relation('int_matching_seen_open_amounts') %}
select 'now' as side, *
from (select * from {{ ref('int_matching_open_amounts') }} except select * from {{ seen }}) as n
union all
select 'before', *
from (select * from {{ seen }} except select * from {{ ref('int_matching_open_amounts') }}) as b
{% endif %}
