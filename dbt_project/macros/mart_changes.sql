{#- Daily checks of the changed dossiers (docs/dbt.md): the dossiers whose rows of the per-dossier
    views a build checks, or none for "every dossier". Every dossier on a full build
    (`--full-refresh`), with var('mart_checks_all') (the pipeline's weekly build), when the snapshot (int_mart_changes) holds an `everything` row, and when
    more than var('mart_checks_max_share') of the dossiers changed: reading each changed dossier
    costs more than reading the whole views then. A logged supplier invoice line stands for the
    dossier the matching gives it (its first candidate) and those its decisions name. -#}
{% macro mart_changed_dossiers() -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set changes = ref('int_mart_changes') -%}
    {{- return(dossiers_within_share(changes, mart_changes_dossiers_sql(changes))) -}}
{%- endmacro %}

{#- The dossiers the change log names as it stands (app.mart_changes, not the build's snapshot),
    or none for "every row", with the rules of mart_changed_dossiers. For the staging views' and
    the sources' checks (`where: logged_dossiers`, macros/where_subquery.sql): a duplicate key or a
    refused value there is written by a statement on a table the log follows by its dossier
    (migration 0029), and stays in the log until int_mart_changes_applied empties it, after every
    check of the views it depends on. Read without a ref: a generic test's `where` has no
    depends_on of its own. -#}
{% macro logged_dossiers() -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set log = change_log() -%}
    {{- return(dossiers_within_share(log, "select distinct dossier_number from " ~ log ~ " where dossier_number is not null")) -}}
{%- endmacro %}

{#- The change log's relation (app.mart_changes). -#}
{% macro change_log() -%}
    {{- return(api.Relation.create(database=target.database, schema='app', identifier='mart_changes')) -}}
{%- endmacro %}

{#- The dossiers `dossiers_sql` lists, or none for "every dossier": on a full build, with
    var('mart_checks_all'), when `changes` holds an `everything` row, and when more than
    var('mart_checks_max_share') of the dossiers are listed. -#}
{% macro dossiers_within_share(changes, dossiers_sql) -%}
    {%- if flags.FULL_REFRESH or var('mart_checks_all') -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set everything = run_query("select coalesce(bool_or(everything), false) from " ~ changes) -%}
    {%- if everything.columns[0].values()[0] -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set limit = run_query(
        "select ceil(count(*) * " ~ var('mart_checks_max_share') ~ ")::bigint from " ~ source('app', 'dossiers')
    ).columns[0].values()[0] | int -%}
    {%- set numbers = run_query(dossiers_sql ~ " order by 1 limit " ~ (limit + 1)).columns[0].values() -%}
    {{- return(none if numbers | length > limit else numbers) -}}
{%- endmacro %}

{#- The dossiers the rows of `changes` (app.mart_changes or its snapshot) name, as a query: a row's
    dossier, and for a supplier invoice line the dossier the matching gives it (its first
    candidate) and those its decisions name. `candidates`: int_matching_candidates' relation, for a
    caller that cannot ref it. -#}
{% macro mart_changes_dossiers_sql(changes, candidates=none) -%}
    select dossier_number from {{ changes }} where dossier_number is not null
    union select c.dossier_number from {{ changes }} as m
    join {{ candidates if candidates is not none else ref('int_matching_candidates') }} as c
    using (supplier_code, invoice_number, line_number) where c.candidate_rank = 1
    union select d.dossier_number from {{ changes }} as m
    join {{ source('app', 'reconciliation_decisions') }} as d
    using (supplier_code, invoice_number, line_number) where d.dossier_number is not null
{%- endmacro %}

{#- `columns` of `relation`'s rows whose `column` is one of `dossiers` (every row when none), each
    dossier read through the relation filtered on it: the per-dossier views serve that filter from
    their indexes ("Views read for one dossier"). offset 0 keeps it a query per dossier: flattened
    into a join, the view would be computed for every dossier and hashed (as slow as the whole
    view), and `column = any(array[...])` does not reach the tables under the views' joins. -#}
{% macro rows_of_dossiers(relation, columns, column, dossiers) -%}
    {%- if dossiers is none -%}
    select {{ columns | join(', ') }} from {{ relation }}
    {%- else -%}
    select dossier_rows.* from unnest({{ text_array(dossiers) }}) as scope (scope_dossier)
    cross join lateral (
        select {{ columns | join(', ') }} from {{ relation }} where {{ column }} = scope.scope_dossier offset 0
    ) as dossier_rows
    {%- endif -%}
{%- endmacro %}

{#- The lines a daily build's line-level checks read: `scope` (the relation of a model listing
    supplier invoice lines with an `everything` column), or none for every line: on a full build,
    with var('mart_checks_all') (the weekly build), when it says `everything` or does not exist. -#}
{% macro changed_lines(scope) -%}
    {%- if not execute or flags.FULL_REFRESH or var('mart_checks_all') or scope is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set everything = run_query(
        "select coalesce(bool_or(everything), false) from " ~ scope
    ).columns[0].values()[0] -%}
    {{- return(none if everything else scope) -}}
{%- endmacro %}

{#- `columns` of `relation`'s rows of the supplier invoice lines `lines` lists (a relation; every
    row when none), each line read through the relation filtered on its key, as rows_of_dossiers
    reads a dossier: the matching's views serve that filter from their indexes. -#}
{% macro rows_of_lines(relation, columns, lines) -%}
    {%- if lines is none -%}
    select {{ columns | join(', ') }} from {{ relation }}
    {%- else -%}
    select line_rows.* from (
        select distinct supplier_code, invoice_number, line_number from {{ lines }}
        where supplier_code is not null
    ) as scope
    cross join lateral (
        select {{ columns | join(', ') }} from {{ relation }} as r
        where r.supplier_code = scope.supplier_code and r.invoice_number = scope.invoice_number
            and r.line_number = scope.line_number
        offset 0
    ) as line_rows
    {%- endif -%}
{%- endmacro %}

{#- `name`'s relation: ref(name), or with `by_ref=false`, for a caller that cannot ref it (a generic
    test's `where` has no depends_on of its own), the model as built in the intermediate schema. -#}
{% macro built_relation(name, by_ref=true) -%}
    {%- if by_ref -%}
        {{- return(ref(name)) -}}
    {%- endif -%}
    {{- return(adapter.get_relation(database=target.database, schema='intermediate', identifier=name)) -}}
{%- endmacro %}
