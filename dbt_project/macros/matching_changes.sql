{#- Incremental per-dossier tables (docs/dbt.md, "Incremental per-dossier tables"): a model built
    with incremental_strategy='replace_changed_dossiers' recomputes, on an incremental build, only
    the dossiers of the build's snapshot of app.matching_changes (int_matching_changes): its SQL
    keeps them with matching_changed(), and the strategy deletes every row of theirs before
    inserting what was recomputed, so a dossier that lost all its rows (a traveller removed, its
    last service of a supplier deleted) loses them in the table too. When the snapshot holds an
    `everything` row (a TRUNCATE, the migration that created the log), every dossier is recomputed. -#}

{% macro matching_changed(column) -%}
    {%- set changes = ref('int_matching_changes') -%}
    {%- if execute and not matching_changes_everything() -%}
        {{ column }} = any(array(select c.dossier_number from {{ changes }} as c where c.dossier_number is not null))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro matching_changes_everything() -%}
    {%- set result = run_query("select coalesce(bool_or(everything), false) from " ~ ref('int_matching_changes')) -%}
    {{- return(result.columns[0].values()[0]) -}}
{%- endmacro %}

{% macro get_incremental_replace_changed_dossiers_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }} where {{ matching_changed('dossier_number') }};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}
