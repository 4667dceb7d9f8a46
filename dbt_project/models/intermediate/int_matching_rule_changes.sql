{#- The supplier invoice lines whose rules may name other dossiers than when int_matching_candidates
    was last computed, each with the dossiers its rules named then (`rules_before`, the table's
    `is_rule` rows) and name now (`rules_now`, the rules computed again for these lines only). A
    line's rules depend on the line and on the dossiers' numbers and their services' supplier
    references, so the lines are those:

    - line_changed: new, changed or gone (compared with int_matching_seen_lines): the lines the
      change log names, each read by its key (macro matching_logged_lines; every line on full and
      weekly builds: comparing all 2.17 M lines at 1,000,000 dossiers took 15 s a build);
    - number_gain: holding, in the keys of its reference, the number of a dossier the change log
      names (it may exist now);
    - reference_gain: whose reference is a supplier's reference of a changed dossier's service;
    - those the table rules to a changed dossier (it may have lost its number or reference).

    Read by int_matching_open_amounts (what the rules found invoiced moves only for these lines'
    dossiers) and int_matching_dirty_lines (these lines, and the invoices whose single dossier, the
    sibling clue, moved). Also where the build decides, once, whether the matching recomputes
    everything (matching_candidates_must_rebuild): then one row with `everything` set. -#}
-- depends_on: {{ ref('int_matching_changes') }}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('stg_app__supplier_invoice_lines') }}
-- depends_on: {{ ref('stg_app__dossiers') }}
-- depends_on: {{ ref('stg_app__services') }}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[{'columns': ['supplier_code', 'invoice_number', 'line_number']}],
    post_hook="analyze {{ this }}"
) }}

{% if matching_candidates_must_rebuild() %}
select
    null::text as supplier_code,
    null::text as invoice_number,
    null::int as line_number,
    true as everything,
    true as line_changed,
    false as number_gain,
    false as reference_gain,
    null::text[] as rules_before,
    null::text[] as rules_now
{% else %}
{% set previous = matching_relation('int_matching_candidates') %}
{% set seen_lines = matching_relation('int_matching_seen_lines') %}
with current_lines as (
    select supplier_code, invoice_number, line_number, kind, invoice_date, currency, reference, description,
        amount_incl_tax
    from {{ ref('stg_app__supplier_invoice_lines') }}
),

seen as (
    select supplier_code, invoice_number, line_number, kind, invoice_date, currency, reference, description,
        amount_incl_tax
    from {{ seen_lines }}
),

{%- set logged = matching_logged_lines() %}
changed_lines as (
    {%- if logged is none %}
    select supplier_code, invoice_number, line_number
    from (select * from current_lines except select * from seen) as now_
    union
    select supplier_code, invoice_number, line_number
    from (select * from seen except select * from current_lines) as before_
    {%- else %}
    select k.supplier_code, k.invoice_number, k.line_number
    from (
        select distinct supplier_code, invoice_number, line_number from {{ logged }} where invoice_number is not null
    ) as k
    left join lateral (
        select * from current_lines as c
        where c.supplier_code = k.supplier_code and c.invoice_number = k.invoice_number
            and c.line_number = k.line_number
        offset 0
    ) as c on true
    left join lateral (
        select * from seen as s
        where s.supplier_code = k.supplier_code and s.invoice_number = k.invoice_number
            and s.line_number = k.line_number
        offset 0
    ) as s on true
    -- a side without the line reads as nulls: new or gone differs, neither (added then deleted) does not
    where (c.supplier_code, c.kind, c.invoice_date, c.currency, c.reference, c.description, c.amount_incl_tax)
        is distinct from (s.supplier_code, s.kind, s.invoice_date, s.currency, s.reference, s.description,
            s.amount_incl_tax)
    {%- endif %}
),

changed_keys as (
    select dossier_number, upper(regexp_replace(dossier_number, '[^A-Za-z0-9]', '', 'g')) as dossier_key
    from {{ ref('stg_app__dossiers') }}
    where {{ matching_changed('dossier_number') }}
),

number_gains as (
    select distinct s.supplier_code, s.invoice_number, s.line_number
    from {{ seen_lines }} as s
    cross join unnest(s.numbers) as n(found)
    inner join changed_keys as k on k.dossier_key = n.found
),

reference_gains as (
    select distinct l.supplier_code, l.invoice_number, l.line_number
    from {{ seen_lines }} as l
    inner join {{ ref('stg_app__services') }} as s
        on s.supplier_code = l.supplier_code
        and upper(regexp_replace(s.supplier_reference, '[^A-Za-z0-9]', '', 'g')) = l.ref_norm
    where l.ref_norm <> '' and {{ matching_changed('s.dossier_number') }}
),

ruled_to_changed as (
    select distinct supplier_code, invoice_number, line_number
    from {{ previous }}
    where is_rule and {{ matching_changed('dossier_number') }}
),

touched as materialized (
    select
        supplier_code, invoice_number, line_number,
        bool_or(reason = 'line') as line_changed,
        bool_or(reason = 'number') as number_gain,
        bool_or(reason = 'supplier_reference') as reference_gain
    from (
        select supplier_code, invoice_number, line_number, 'line' as reason from changed_lines
        union all
        select supplier_code, invoice_number, line_number, 'number' from number_gains
        union all
        select supplier_code, invoice_number, line_number, 'supplier_reference' from reference_gains
        union all
        select supplier_code, invoice_number, line_number, 'ruled' from ruled_to_changed
    ) as t
    group by supplier_code, invoice_number, line_number
),

{{ matching_rule_ctes(
    lines_where="(supplier_code, invoice_number, line_number) in (select supplier_code, invoice_number, line_number from touched)"
) }},

ruled_now as (
    select supplier_code, invoice_number, line_number, array_agg(dossier_number order by dossier_number) as dossiers
    from rule_pairs
    group by supplier_code, invoice_number, line_number
),

ruled_before as (
    select p.supplier_code, p.invoice_number, p.line_number,
        array_agg(p.dossier_number order by p.dossier_number) as dossiers
    from touched as t
    inner join {{ previous }} as p using (supplier_code, invoice_number, line_number)
    where p.is_rule
    group by p.supplier_code, p.invoice_number, p.line_number
)

select
    t.supplier_code,
    t.invoice_number,
    t.line_number,
    false as everything,
    t.line_changed,
    t.number_gain,
    t.reference_gain,
    coalesce(b.dossiers, '{}') as rules_before,
    coalesce(n.dossiers, '{}') as rules_now
from touched as t
left join ruled_before as b using (supplier_code, invoice_number, line_number)
left join ruled_now as n using (supplier_code, invoice_number, line_number)
{% endif %}
