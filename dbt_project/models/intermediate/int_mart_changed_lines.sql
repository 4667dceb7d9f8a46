{#- The supplier invoice lines whose rows of the matching's views (int_invoice_lines__matched,
    supplier_invoice_line_matches) may read differently since the last build: those whose
    candidates this build recomputed (int_matching_dirty_lines) and those the build's snapshot of
    app.mart_changes names (a decision, a line registered or changed); `everything` when either
    says so. What a daily build's line-level checks read (rows_hold's scope_lines,
    matching_every_line_once; docs/dbt.md, "Daily checks of the changed lines"). -#}
{{ config(schema='intermediate', materialized='view') }}

select supplier_code, invoice_number, line_number, everything
from {{ ref('int_matching_dirty_lines') }}
union
select supplier_code, invoice_number, line_number, everything
from {{ ref('int_mart_changes') }}
where invoice_number is not null or everything
