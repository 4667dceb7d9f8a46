{#- The rows of int_matching_open_amounts that differ from what int_matching_candidates was last
    computed from (int_matching_seen_open_amounts): `now` as they are, `before` as they were. What
    is still open moves with the lines the rules match, so also for dossiers no change log names
    (a new invoice line closing a dossier's amount): the rows compared are those of the dossiers
    int_matching_open_amounts recomputed (matching_open_dossiers), the only ones that can differ.
    The incremental candidates recompute the lines that carry one of these amounts. Empty when the
    build recomputes every line. -#}
-- depends_on: {{ ref('int_matching_changes') }}
-- depends_on: {{ ref('int_matching_rule_changes') }}
{{ config(schema='intermediate', materialized='table') }}

{% if matching_candidates_everything('int_matching_rule_changes') %}
select null::text as side, *
from {{ ref('int_matching_open_amounts') }}
where false
{% else %}
{% set seen = matching_relation('int_matching_seen_open_amounts') %}
{% set dossiers = matching_open_dossiers() %}
with now_ as (
    select * from {{ ref('int_matching_open_amounts') }}
    where {{ matching_among('dossier_number', dossiers) }}
),

before_ as (
    select * from {{ seen }}
    where {{ matching_among('dossier_number', dossiers) }}
)

select 'now' as side, *
from (select * from now_ except select * from before_) as n
union all
select 'before', *
from (select * from before_ except select * from now_) as b
{% endif %}
