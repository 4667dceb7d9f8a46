{#- Incremental per-dossier tables (docs/dbt.md, "Incremental per-dossier tables"): a model built
    with incremental_strategy='replace_changed_dossiers' recomputes, on an incremental build, only
    the dossiers of the build's snapshot of app.matching_changes (int_matching_changes): its SQL
    keeps them with matching_changed(), and the strategy deletes every row of theirs before
    inserting what was recomputed, so a dossier that lost all its rows (a traveller removed, its
    last service of a supplier deleted) loses them in the table too. When the snapshot holds an
    `everything` row (a TRUNCATE, the migration that created the log), or more dossiers than
    var('matching_incremental_max_dossiers'), every dossier is recomputed. -#}

{#- The changed dossiers written out as a constant array: the planner then knows how many there
    are and hashes them, where `= any(array(select ...))` compared each row with every element in
    turn (a delete from a 500,000-row table against 6,000 numbers took 41 s). -#}
{% macro matching_changed(column) -%}
    {{ matching_among(column, matching_changed_dossiers()) }}
{%- endmacro %}

{#- A condition keeping the rows of `dossiers`, a list of dossier numbers (none: every row). -#}
{% macro matching_among(column, dossiers) -%}
    {%- if dossiers is none -%}
        true
    {%- elif dossiers | length == 0 -%}
        false
    {%- else -%}
        {{ column }} = any({{ text_array(dossiers) }})
    {%- endif -%}
{%- endmacro %}

{#- `values` as a constant text[] literal. -#}
{% macro text_array(values) -%}
    array[
    {%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ "," if not loop.last }}
    {%- endfor -%}
    ]::text[]
{%- endmacro %}

{#- The snapshot's distinct dossier numbers, or none for "every dossier" (and at parse time).
    `changes`: the snapshot's relation, for a caller that cannot ref it (a generic test's `where`). -#}
{% macro matching_changed_dossiers(changes=none) -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set changes = changes if changes is not none else ref('int_matching_changes') -%}
    {%- set limit = var('matching_incremental_max_dossiers') | int -%}
    {%- set everything = run_query("select coalesce(bool_or(everything), false) from " ~ changes) -%}
    {%- if everything.columns[0].values()[0] -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set numbers = run_query(
        "select distinct dossier_number from " ~ changes ~ " where dossier_number is not null"
        ~ " order by 1 limit " ~ (limit + 1)
    ).columns[0].values() -%}
    {{- return(none if numbers | length > limit else numbers) -}}
{%- endmacro %}

{% macro get_incremental_replace_changed_dossiers_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {{ matching_keep_before(arg_dict['target_relation']) }}
    delete from {{ arg_dict['target_relation'] }} where {{ matching_changed('dossier_number') }};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}
