{#-
    Every column rule of one model in a single pass: not_null on each column of `not_null`,
    uniqueness of each item of `unique` (a column, or a list of columns unique together), and
    `accepted_values` ({column: [values]}; nulls are left to not_null, as dbt's test does).

    For views. dbt's built-in tests each select from the model, and a view is evaluated again by
    every one of them: supplier_billing_status computes the whole billing status (the Devis, the
    matched lines, the currency conversion) for each of its 13 tests, 70 % of a build's time at
    100,000 dossiers (docs/dbt.md). Here the view is read once into a materialized CTE and every
    rule looks at that.

    Returns the rows that disagree, one per offending row and rule: `rule`, `column_name`, `value`
    (the offending value or key; null for not_null; keys with a null part are not compared, as in
    dbt's unique test), so a failure says which column broke which rule.

    With `scope_column` (a per-dossier view's dossier number), a daily build checks only the rows
    of the dossiers changed since the last build (macro mart_changed_dossiers; docs/dbt.md, "Daily
    checks of the changed dossiers"), each read through the view for that dossier alone; a full
    build, all of them. `scope_dossiers` names the dossiers instead (the test of this test).

    With `scope_entries` (a source type: payment, client_invoice, write_off, supplier_invoice), on
    a view accounting_entries posts records from, the rows of the records the journal has no line
    for yet: what this build posts (macro entries_to_post), read through the view filtered on
    their ids (the supplier invoices: the view's SQL restricted to them, as the journal reads them,
    macro entries_supplier_invoices). A posted entry is never written again, so the records posted before were checked when
    they were posted; every row on a full build, with var('mart_checks_all') (the weekly build),
    or when the journal does not exist yet.

    With `scope_lines` (a model listing supplier invoice lines with an `everything` column: the
    dirty lines of int_matching_candidates, or int_mart_changed_lines), on a table an incremental
    build replaces line by line or a view of the lines, the rows of the lines that may differ since
    the last build, each read by its key (macro rows_of_lines): the others were checked when they
    were written. Every row when it says `everything`, on a full build and on the weekly one.
-#}
{% test rows_hold(model, not_null=[], unique=[], accepted_values={}, scope_column=none, scope_dossiers=none,
                  scope_entries=none, scope_lines=none) %}
{%- set keys = [] -%}
{%- for item in unique -%}{%- do keys.append([item] if item is string else item) -%}{%- endfor -%}
{%- set columns = [] -%}
{%- for column in not_null + (keys | sum(start=[])) + (accepted_values.keys() | list) -%}
    {%- if column not in columns -%}{%- do columns.append(column) -%}{%- endif -%}
{%- endfor -%}
{%- set checks = [] -%}
{%- for column in not_null -%}
    {%- do checks.append(
        "select 'not_null' as rule, '" ~ column ~ "' as column_name, null::text as value"
        ~ " from checked where " ~ column ~ " is null"
    ) -%}
{%- endfor -%}
{%- for key in keys -%}
    {%- do checks.append(
        "select 'unique' as rule, '" ~ key | join(', ') ~ "' as column_name,"
        ~ " concat_ws(' / ', " ~ key | join('::text, ') ~ "::text) as value"
        ~ " from checked where " ~ key | join(' is not null and ') ~ " is not null"
        ~ " group by " ~ key | join(', ') ~ " having count(*) > 1"
    ) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set quoted = [] -%}
    {%- for v in values -%}{%- do quoted.append("'" ~ (v | replace("'", "''")) ~ "'") -%}{%- endfor -%}
    {%- do checks.append(
        "select 'accepted_values' as rule, '" ~ column ~ "' as column_name, " ~ column ~ "::text as value"
        ~ " from checked where " ~ column ~ "::text not in (" ~ quoted | join(', ') ~ ")"
    ) -%}
{%- endfor -%}
{%- set dossiers = none -%}
{%- if scope_column %}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{%- set dossiers = scope_dossiers if scope_dossiers is not none else mart_changed_dossiers() -%}
{%- endif %}
{%- set journal = none -%}
{%- if scope_entries %}
-- depends_on: {{ ref('stg_app__payments') }}
-- depends_on: {{ ref('stg_app__client_invoices') }}
-- depends_on: {{ ref('stg_app__write_offs') }}
-- depends_on: {{ ref('stg_app__supplier_invoices') }}
{%- if scope_entries == 'supplier_invoice' %}
-- depends_on: {{ ref('stg_app__supplier_invoice_lines') }}
-- depends_on: {{ ref('stg_app__suppliers') }}
-- depends_on: {{ ref('int_margin__actual_costs') }}
-- depends_on: {{ ref('int_margin__exchange_rates') }}
{%- endif %}
{%- if execute and not flags.FULL_REFRESH and not var('mart_checks_all') -%}
{%- set journal = entries_journal() -%}
{%- endif -%}
{%- endif %}
{%- set lines = none -%}
{%- if scope_lines %}
-- depends_on: {{ ref(scope_lines) }}
{%- set lines = changed_lines(ref(scope_lines)) -%}
{%- endif %}
with checked as materialized (
    {%- if lines is not none %}
    {{ rows_of_lines(model, columns, lines) }}
    {%- elif journal is not none and scope_entries == 'supplier_invoice' %}
    select {{ columns | join(', ') }}
    from ({{ entries_supplier_invoices(invoices=entries_to_post('supplier_invoice', journal)) }}) as to_post
    {%- elif journal is not none %}
    select {{ columns | join(', ') }} from {{ model }}
    where source_id = any(array({{ entries_to_post(scope_entries, journal) }}))
    {%- else %}
    {{ rows_of_dossiers(model, columns, scope_column, dossiers) }}
    {%- endif %}
)
{{ checks | join('\nunion all\n') }}
{% endtest %}
