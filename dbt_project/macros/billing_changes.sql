{#- Incremental copies of the billing figures (docs/dbt.md, "Incremental copies of the billing
    figures"): int_search__supplier_status, int_search__dossier_status,
    int_search__invoice_dossiers and int_margin__actual_costs recompute, on an incremental build,
    the dossiers whose figures may have changed since the last build that applied its changes, and
    keep every other row. Every row of theirs depends on its own dossier's figures only, and those
    change:

    - by a write naming the dossier, or a supplier invoice line whose dossiers are the one the
      matching gives it and those its decisions name (the build's snapshot of app.mart_changes, as
      the daily checks read it: mart_changes_dossiers);
    - by this build's matching moving a line away from or to the dossier (the candidates log those
      dossiers under the build's invocation id: matching_log_moved);
    - by what no log follows (suppliers, exchange rates, today's rate, the settings): then the
      fingerprint differs from the last applied build's, and every dossier is recomputed.

    None (every dossier) on a full refresh, a first build, an `everything` row in the snapshot or
    logged by the candidates (a whole matching), a changed fingerprint, and beyond
    var('billing_incremental_max_dossiers') dossiers. `by_ref=false`: the models read as built, for
    a caller that cannot ref them (a generic test's `where`, after the copy's build). -#}
{% macro billing_changed_dossiers(by_ref=true) -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set applied = adapter.get_relation(
        database=target.database, schema='intermediate', identifier='int_mart_changes_applied') -%}
    {%- if applied is none or 'fingerprint' not in (adapter.get_columns_in_relation(applied) | map(attribute='name') | list) -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set changes = built_relation('int_mart_changes', by_ref) -%}
    {%- set log = source('app', 'mart_changes') -%}
    {%- set everything = run_query(
        "select coalesce(bool_or(everything), false) from " ~ changes
        ~ " union all select exists (select 1 from " ~ log
        ~ " where everything and logged_by = '" ~ invocation_id ~ "')"
        ~ " union all select (select fingerprint from " ~ built_relation('int_mart_changes_fingerprint', by_ref)
        ~ ") is distinct from (select fingerprint from " ~ applied ~ ")"
    ).columns[0].values() -%}
    {%- if true in everything -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set limit = var('billing_incremental_max_dossiers') | int -%}
    {%- set numbers = run_query(
        mart_changes_dossiers_sql(changes, built_relation('int_matching_candidates', by_ref))
        ~ " union select dossier_number from " ~ log
        ~ " where logged_by = '" ~ invocation_id ~ "' and dossier_number is not null"
        ~ " order by 1 limit " ~ (limit + 1)
    ).columns[0].values() -%}
    {{- return(none if numbers | length > limit else numbers) -}}
{%- endmacro %}

{#- Incremental strategy of the billing copies: every row of the changed dossiers deleted (a pair
    that no longer exists goes with them), then what the model recomputed for them inserted; every
    row replaced when every dossier was recomputed. -#}
{% macro get_incremental_replace_billing_dossiers_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set dossiers = billing_changed_dossiers() -%}
    {#- a delete, not a truncate: the searches go on reading the copy while it is rebuilt -#}
    delete from {{ arg_dict['target_relation'] }} where {{ matching_among('dossier_number', dossiers) }};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
{%- endmacro %}

{#- A pre-hook of a billing copy built from views whole (hash joins only: the planner guesses the
    views' rows at 1 and picks nested loops that take minutes), or nothing when it reads the
    changed dossiers one by one, each through the views' indexes. -#}
{% macro billing_whole_settings() -%}
    {%- if not is_incremental() or billing_changed_dossiers() is none -%}
        set enable_nestloop = off
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
