{#- What this build's checks of the per-dossier views look at (docs/dbt.md, "Daily checks of the
    changed dossiers"): a snapshot of app.mart_changes taken at the start of the build, so every
    check reads the same dossiers. int_mart_changes_applied deletes these rows from the log once
    the checks passed; a change committed after the snapshot stays there for the next build. -#}
{{ config(schema='intermediate', materialized='table') }}

select seq, dossier_number, supplier_code, invoice_number, line_number, everything
from {{ source('app', 'mart_changes') }}
