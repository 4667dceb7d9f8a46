{#- dbt's filter of a generic test's relation (config `where`), with two words of our own, for a
    daily build's checks (every row on full and weekly builds):
    - `entries_since_checked`, on a test of accounting_entries: the lines numbered after those the
      last build checked (macros/entries_checked.sql);
    - `changed_lines`, on a view of the supplier invoice lines: the rows of the lines that may read
      differently since the last build (int_mart_changed_lines, each line by its key: macro
      rows_of_lines), as the line-level rows_hold checks read them. The list is read without a ref
      (a generic test has no depends_on of its own): the view's model comes after the lines' tables.
    - `matching_changed_dossiers`, on a table of the matching built incrementally by dossier
      (strategy replace_changed_dossiers): the rows of the dossiers this build recomputed, the
      snapshot of app.matching_changes (every row when it says `everything` or holds too many).
    - `matching_open_dossiers`, on int_matching_open_amounts (strategy replace_open_dossiers): the
      rows of the dossiers this build recomputed (macro matching_open_dossiers), every row when it
      recomputed every dossier, on full and weekly builds.
    - `billing_changed_dossiers`, on a billing copy (strategy replace_billing_dossiers): the rows
      of the dossiers this build recomputed (macro billing_changed_dossiers), likewise.
    - `logged_dossiers`, on a staging view or a source keyed by dossier: the rows of the dossiers
      the change log names (macro logged_dossiers), each read through the relation filtered on it.
    - `logged_lines`, on the supplier invoice lines: the rows of the lines the change log names.
    Any other `where` is dbt's own: `(select * from relation where ...)`. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'entries_since_checked' -%}
        {{- return('(' ~ entries_since_checked(entries_checked()) ~ ') dbt_subquery') -}}
    {%- elif where == 'changed_lines' -%}
        {%- set listed = adapter.get_relation(
            database=target.database, schema='intermediate', identifier='int_mart_changed_lines') -%}
        {{- return('(' ~ rows_of_lines(relation, ['*'], changed_lines(listed)) ~ ') dbt_subquery') -}}
    {%- elif where == 'matching_changed_dossiers' -%}
        {%- set changes = adapter.get_relation(
            database=target.database, schema='intermediate', identifier='int_matching_changes') -%}
        {%- set dossiers = none if changes is none or flags.FULL_REFRESH or var('mart_checks_all')
            else matching_changed_dossiers(changes) -%}
        {{- return('(select * from ' ~ relation ~ ' where ' ~ matching_among('dossier_number', dossiers) ~ ') dbt_subquery') -}}
    {%- elif where == 'matching_open_dossiers' -%}
        {%- set rule_changes = adapter.get_relation(
            database=target.database, schema='intermediate', identifier='int_matching_rule_changes') -%}
        {%- set changes = adapter.get_relation(
            database=target.database, schema='intermediate', identifier='int_matching_changes') -%}
        {%- set dossiers = none if rule_changes is none or changes is none or flags.FULL_REFRESH
            or var('mart_checks_all') else matching_open_dossiers(rule_changes, changes) -%}
        {{- return('(select * from ' ~ relation ~ ' where ' ~ matching_among('dossier_number', dossiers) ~ ') dbt_subquery') -}}
    {%- elif where == 'billing_changed_dossiers' -%}
        {%- set dossiers = none if var('mart_checks_all') else billing_changed_dossiers(by_ref=false) -%}
        {{- return('(select * from ' ~ relation ~ ' where ' ~ matching_among('dossier_number', dossiers) ~ ') dbt_subquery') -}}
    {%- elif where == 'logged_dossiers' -%}
        {{- return('(' ~ rows_of_dossiers(relation, ['*'], 'dossier_number', logged_dossiers()) ~ ') dbt_subquery') -}}
    {%- elif where == 'logged_lines' -%}
        {{- return('(' ~ rows_of_lines(relation, ['*'], changed_lines(change_log())) ~ ') dbt_subquery') -}}
    {%- elif where -%}
        {{- return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -}}
    {%- else -%}
        {{- return(relation) -}}
    {%- endif -%}
{%- endmacro %}
