{#- The incremental candidates (docs/dbt.md, "Incremental candidates"). An incremental build of
    int_matching_candidates recomputes only the lines int_matching_dirty_lines names, and
    deletes their rows before inserting what was recomputed (strategy replace_dirty_lines below).
    To know which lines a change can reach, it keeps what the table was last computed from, the
    "seen" tables, written in the same transaction as the table itself (matching_seen_sync, a
    post-hook of the model), so they always describe it:

    - int_matching_seen_lines: every invoice line as the matching read it, with the keys its
      reference gives (dossier numbers, readings one slip away, words), so that "which old lines
      hold this new number or name" is an equality join, not a regular expression per line;
    - int_matching_seen_names, int_matching_seen_amounts, int_matching_seen_open_amounts: copies of
      int_matching_traveller_names, int_matching_dossier_amounts and int_matching_open_amounts.

    A full build (first build, --full-refresh, a change log holding `everything` or too many
    dossiers, a seen table missing) rebuilds every line and every seen table. -#}

{% macro matching_relation(name) -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier=name)) -}}
{%- endmacro %}

{% macro matching_seen_tables() -%}
    {{- return(['int_matching_seen_lines', 'int_matching_seen_names', 'int_matching_seen_amounts',
                'int_matching_seen_open_amounts']) -}}
{%- endmacro %}

{#- Whether this build recomputes every line: decided once, by int_matching_dirty_lines (which
    writes it as its `everything` row); the candidates and the seen tables read that row. -#}
{% macro matching_candidates_must_rebuild() -%}
    {%- if not execute or flags.FULL_REFRESH or matching_changed_dossiers() is none -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- for name in ['int_matching_candidates'] + matching_seen_tables() -%}
        {%- if adapter.get_relation(database=target.database, schema='intermediate', identifier=name) is none -%}
            {{- return(true) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(false) -}}
{%- endmacro %}

{% macro matching_candidates_everything() -%}
    {%- if not execute -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set result = run_query(
        "select coalesce(bool_or(everything), true) from " ~ ref('int_matching_dirty_lines')
    ) -%}
    {{- return(result.columns[0].values()[0]) -}}
{%- endmacro %}

{% macro matching_dirty_lines_where() -%}
    (supplier_code, invoice_number, line_number) in (
        select supplier_code, invoice_number, line_number from {{ ref('int_matching_dirty_lines') }}
    )
{%- endmacro %}

{#- Every supplier invoice line (or those `lines_where` keeps) as the matching reads it, with the
    keys of its reference, computed as int_matching_candidates and macro matching_rule_ctes
    compute them: `numbers`, the dossier numbers rule 1 looks up (as written or repaired);
    `ref_norm`, what rule 2 compares with a supplier's reference; `near_numbers`, year:digits of
    each number that may be one slip away; `tokens`, the words of the reference (null when it has
    no two letters in a row, as the name clue reads it). -#}
{% macro matching_line_keys(lines_where=none) %}
    select
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        l.kind,
        l.invoice_date,
        l.currency,
        l.reference,
        l.description,
        l.amount_incl_tax,
        r.ref_norm,
        array(
            select f.found[1] from regexp_matches(r.ref_norm, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
            union
            select f.found[1] from regexp_matches(r.ref_fixed, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
        ) as numbers,
        array(
            select m.found[1] || ':' || m.found[2]
            from regexp_matches(r.ref_fixed, '{{ var("dossier_number_near") }}', 'g') as m(found)
        ) as near_numbers,
        case when l.reference ~ '[A-Za-z]{2}' then array(
            select distinct t.token
            from regexp_split_to_table(trim(regexp_replace(app.normalise_text(l.reference), '[^a-z]+', ' ', 'g')), ' ') as t(token)
            where t.token <> ''
        ) end as tokens
    from {{ ref('stg_app__supplier_invoice_lines') }} as l
    cross join lateral (
        select upper(regexp_replace(coalesce(l.reference, ''), '[^A-Za-z0-9]', '', 'g')) as ref_norm
    ) as n
    cross join lateral (
        select
            n.ref_norm,
            regexp_replace(
                translate(n.ref_norm, 'O', '0'), '{{ var("dossier_number_short_year") }}', 'BK20\1\2', 'g'
            ) as ref_fixed
    ) as r
    {% if lines_where is not none %}
    where {{ lines_where }}
    {% endif %}
{% endmacro %}

{#- The seen tables brought to what int_matching_candidates was just computed from: a post-hook
    of the model, so in its transaction (a failed build leaves both as they were). -#}
{% macro matching_seen_sync() -%}
    {%- if not execute -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set lines = matching_relation('int_matching_seen_lines') -%}
    {%- set copies = [
        (matching_relation('int_matching_seen_names'), ref('int_matching_traveller_names')),
        (matching_relation('int_matching_seen_amounts'), ref('int_matching_dossier_amounts')),
        (matching_relation('int_matching_seen_open_amounts'), ref('int_matching_open_amounts')),
    ] -%}
    {%- if matching_candidates_everything() %}
        drop table if exists {{ lines }};
        create table {{ lines }} as {{ matching_line_keys() }};
        create index on {{ lines }} (supplier_code, invoice_number, line_number);
        {%- for seen, source in copies %}
        drop table if exists {{ seen }};
        create table {{ seen }} as select * from {{ source }};
        create index on {{ seen }} (dossier_number);
        {%- endfor %}
    {%- else %}
        delete from {{ lines }} as s
        using {{ ref('int_matching_dirty_lines') }} as d
        where d.line_changed and s.supplier_code = d.supplier_code and s.invoice_number = d.invoice_number
            and s.line_number = d.line_number;
        insert into {{ lines }}
        {{ matching_line_keys(
            "(l.supplier_code, l.invoice_number, l.line_number) in (select supplier_code, invoice_number, line_number from "
            ~ ref('int_matching_dirty_lines') ~ " where line_changed)"
        ) }};
        {%- for seen, source in copies[:2] %}
        delete from {{ seen }} where {{ matching_changed('dossier_number') }};
        insert into {{ seen }} select * from {{ source }} where {{ matching_changed('dossier_number') }};
        {%- endfor %}
        delete from {{ copies[2][0] }}
        where dossier_number in (select dossier_number from {{ ref('int_matching_open_amount_changes') }});
        insert into {{ copies[2][0] }}
        select * from {{ copies[2][1] }}
        where dossier_number in (select dossier_number from {{ ref('int_matching_open_amount_changes') }});
    {%- endif %}
    analyze {{ lines }};
{%- endmacro %}

{#- Incremental strategy of int_matching_candidates: the dirty lines' rows replaced by what was
    recomputed for them (a line no longer there loses its rows), or every row when the build
    recomputed everything. -#}
{% macro get_incremental_replace_dirty_lines_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if matching_candidates_everything() %}
    truncate table {{ arg_dict['target_relation'] }};
    {%- else %}
    delete from {{ arg_dict['target_relation'] }} as t
    using {{ ref('int_matching_dirty_lines') }} as d
    where t.supplier_code = d.supplier_code and t.invoice_number = d.invoice_number
        and t.line_number = d.line_number;
    {%- endif %}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}
