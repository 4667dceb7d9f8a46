{#- int_matching_open_amounts incremental by dossier (docs/dbt.md, "Incremental open amounts"): what
    is still open for a dossier depends on its own expected amounts, amounts and dates (the change
    log names the dossier when they change) and on the invoice lines the rules name it alone for;
    those move only with the lines int_matching_rule_changes lists. So a build recomputes the
    dossiers of the log and those named by the rules, before or now, of a line that changed or
    whose rules' dossiers changed; none (every dossier) when the matching recomputes everything or
    there are more than var('matching_incremental_max_dossiers'). `rule_changes` and `changes`: the
    relations of int_matching_rule_changes and int_matching_changes, for a caller that cannot ref
    them (a generic test's `where`). -#}
{% macro matching_open_dossiers(rule_changes=none, changes=none) -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set rule_changes = rule_changes if rule_changes is not none else ref('int_matching_rule_changes') -%}
    {%- if matching_candidates_everything(rule_changes) -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set limit = var('matching_incremental_max_dossiers') | int -%}
    {%- set moved = run_query(
        "select distinct d.dossier_number from " ~ rule_changes ~ " as r"
        ~ " cross join unnest(r.rules_before || r.rules_now) as d(dossier_number)"
        ~ " where r.line_changed or r.rules_before <> r.rules_now"
    ).columns[0].values() -%}
    {%- set changed = matching_changed_dossiers(changes) -%}
    {%- if changed is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set dossiers = (changed | list + moved | list) | unique | sort | list -%}
    {{- return(none if dossiers | length > limit else dossiers) -}}
{%- endmacro %}

{#- Incremental strategy of int_matching_open_amounts: the recomputed dossiers' rows replaced (a
    dossier with nothing open any more loses its rows), or every row. -#}
{% macro get_incremental_replace_open_dossiers_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set dossiers = matching_open_dossiers() -%}
    {%- if dossiers is none %}
    truncate table {{ arg_dict['target_relation'] }};
    {%- else %}
    delete from {{ arg_dict['target_relation'] }} where {{ matching_among('dossier_number', dossiers) }};
    {%- endif %}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}
